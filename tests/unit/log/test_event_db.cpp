// The SQLite adapter against databases the real EventStore wrote: the threat GLOB function,
// recipient matching, the plans SQLite picks for each filter, and what it refuses to open.

#include <sqlite3.h>
#include <stdlib.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/text_sql.hpp"
#include <filesystem>
#include <fstream>

#include "db/event_store.hpp"
#include "db/migrations.hpp"
#include "tools/log/event_db.hpp"

using namespace imapav::logtool;
using imapav::db::EventStore;
using imapav::db::ScanEvent;

namespace {

constexpr std::int64_t kT0 = 1795824000LL * kUsPerSecond;  // 2026-11-28T00:00:00Z

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct TempDb {
  TempDb() {
    std::string pattern = (std::filesystem::temp_directory_path() / "imapav-log-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    path = dir + "/events.sqlite";
  }
  ~TempDb() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempDb(const TempDb&) = delete;
  TempDb& operator=(const TempDb&) = delete;
  std::string dir;
  std::string path;
};

void rawExec(const std::string& path, const std::string& sql) { imapav::test::sqliteExec(path, sql); }

ScanEvent event(std::int64_t timeUs, const std::string& verdict, const std::string& threats,
                const std::string& recipients) {
  ScanEvent e;
  e.timeUs = timeUs;
  e.gateway = "10.0.0.1";
  e.verdict = verdict;
  e.threats = threats;
  e.recipients = recipients;
  e.action = verdict == "clean" ? "pass" : "replace";
  e.mailbox = "INBOX";
  return e;
}

constexpr const char* kV1 = "27400-09f1fd9d03f0";
constexpr const char* kV2 = "27401-ec262d56afb8";

ScanEvent answered(ScanEvent e, const std::string& signatureVersion, bool cached) {
  e.signatureVersion = signatureVersion;
  e.cached = cached;
  return e;
}

// Rows 1..4 (ids follow insertion order): signatures kV1 for 1 and 2, kV2 (a reload) for 3
// and 4; 2 and 4 answered from the verdict cache.
void fill(const std::string& path) {
  EventStore store(path);
  store.insert({answered(event(kT0, "clean", "", "bob@example.net"), kV1, false),
                answered(event(kT0 + 1, "infected", "Win.Trojan.Agent-1,Eicar-Test-Signature", "Bob@Example.net,carol@example.net"), kV1, true),
                answered(event(kT0 + 2, "infected", "Xls.Eicar-Lookalike", "carol@example.net"), kV2, false),
                answered(event(kT0 + 3, "error", "", "robert@example.net, O'Brien+tag@example.net,j\xc3\xb6rg@example.net"), kV2, true)});
}

std::vector<std::int64_t> ids(EventDb& db, const Filters& f, const Schema& schema = {}) {
  std::vector<std::int64_t> out;
  db.forEach(eventsQuery(f, kT0 + 100, 0, schema), [&out](const Row& r) { out.push_back(r[0].integer); });
  return out;
}

std::string planText(EventDb& db, const Query& q) {
  std::string text;
  for (const auto& line : db.queryPlan(q)) text += line + "\n";
  return text;
}

std::string errorOf(const std::string& path) {
  try {
    EventDb db(path, EventDb::Mode::kReadOnly);
  } catch (const DbError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_db)

BOOST_AUTO_TEST_CASE(threat_glob_matches_whole_names) {
  TempDb t;
  fill(t.path);
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  const auto threat = [&](const std::string& glob) {
    Filters f;
    f.threat = glob;
    return ids(db, f);
  };
  BOOST_TEST((threat("Eicar*") == std::vector<std::int64_t>{2}));  // not "Xls.Eicar-Lookalike"
  BOOST_TEST((threat("*Eicar*") == std::vector<std::int64_t>{3, 2}));
  BOOST_TEST((threat("Eicar-Test-Signature") == std::vector<std::int64_t>{2}));
  BOOST_TEST((threat("Win.Trojan.*") == std::vector<std::int64_t>{2}));
  BOOST_TEST(threat("Signature*").empty());
  BOOST_TEST(threat("eicar*").empty());  // GLOB is case-sensitive
  BOOST_TEST((threat("Xls.Eicar-Lookalik?") == std::vector<std::int64_t>{3}));
  BOOST_TEST((threat("[WX]*") == std::vector<std::int64_t>{3, 2}));
  BOOST_TEST(threat("*").size() == 2u);  // rows without a threat have no name to match
}

BOOST_AUTO_TEST_CASE(recipient_is_one_whole_address) {
  TempDb t;
  fill(t.path);
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  BOOST_TEST(db.schema().recipientIndex);
  const auto recipient = [&](const std::string& r) {
    Filters f;
    f.recipient = r;
    const auto viaIndex = ids(db, f, db.schema());
    BOOST_TEST((viaIndex == ids(db, f)), "index and scan disagree for " << r);
    return viaIndex;
  };
  BOOST_TEST((recipient("bob@example.net") == std::vector<std::int64_t>{2, 1}));
  BOOST_TEST((recipient("CAROL@example.NET") == std::vector<std::int64_t>{3, 2}));
  BOOST_TEST(recipient("ob@example.net").empty());
  BOOST_TEST(recipient("example.net").empty());
  BOOST_TEST(recipient("bob_example.net").empty());  // '_' is no LIKE wildcard here
  BOOST_TEST(recipient("%").empty());
  BOOST_TEST(recipient("example").empty());
  BOOST_TEST((recipient("o'brien+tag@example.net") == std::vector<std::int64_t>{4}));
  BOOST_TEST((recipient("J\xc3\xb6rg@example.net") == std::vector<std::int64_t>{4}));
  BOOST_TEST(recipient("brien+tag@example.net").empty());
}

BOOST_AUTO_TEST_CASE(filters_and_order) {
  TempDb t;
  fill(t.path);
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  BOOST_TEST((ids(db, Filters{}) == std::vector<std::int64_t>{4, 3, 2, 1}));  // newest first
  Filters f;
  f.since = parseTime("2026-11-28T00:00:00.000001Z").value();
  f.until = parseTime("2026-11-28T00:00:00.000003Z").value();
  BOOST_TEST((ids(db, f) == std::vector<std::int64_t>{3, 2}));  // half-open
  f.verdict = "infected";
  f.action = "replace";
  f.mailbox = "INBOX";
  f.gateway = "10.0.0.1";
  BOOST_TEST((ids(db, f) == std::vector<std::int64_t>{3, 2}));
  f.gateway = "10.0.0.2";
  BOOST_TEST(ids(db, f).empty());
  const auto rows = db.rows(showQuery(2));
  BOOST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0].size() == eventColumns().size());
  BOOST_TEST(rows[0][2].text == "2026-11-28T00:00:00.000001Z");  // time_iso
  BOOST_TEST((rows[0][11].type == Value::Type::kNull));           // uid
  BOOST_TEST(db.rows(followQuery(Filters{}, kT0, 2, 3)).size() == 1u);
}

BOOST_AUTO_TEST_CASE(cache_and_signature_version_filters) {
  TempDb t;
  fill(t.path);
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  const auto with = [&](std::optional<bool> cached, std::optional<std::string> version) {
    Filters f;
    f.cached = cached;
    f.signatureVersion = std::move(version);
    return ids(db, f);
  };
  BOOST_TEST((with(true, std::nullopt) == std::vector<std::int64_t>{4, 2}));
  BOOST_TEST((with(false, std::nullopt) == std::vector<std::int64_t>{3, 1}));
  BOOST_TEST((with(std::nullopt, kV1) == std::vector<std::int64_t>{2, 1}));
  BOOST_TEST((with(std::nullopt, kV2) == std::vector<std::int64_t>{4, 3}));
  BOOST_TEST((with(true, kV2) == std::vector<std::int64_t>{4}));
  BOOST_TEST(with(std::nullopt, "27400").empty());  // exact, not a prefix
  BOOST_TEST(with(std::nullopt, "").empty());
  // show has both fields.
  const auto rows = db.rows(showQuery(2));
  BOOST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0][24].text == kV1);  // signature_version
  BOOST_TEST(rows[0][25].integer == 1);  // cached
}

// stats' one pass through the real SQL: per version, in order of first seen.
BOOST_AUTO_TEST_CASE(stats_count_signature_versions_and_cache_hits) {
  TempDb t;
  fill(t.path);
  EventStore(t.path).insert({answered(event(kT0 + 9, "clean", "", "bob@example.net"), kV1, true)});  // a rollback
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  const StatsRange r{kT0, kT0 + 3600 * kUsPerSecond, Bucket::kHour, 10};
  const auto counts = countStats(db, r);
  BOOST_TEST((counts.versions == std::vector<VersionCount>{{kV1, 3, 2, 1, 0, kT0, kT0 + 9},
                                                           {kV2, 2, 1, 1, 1, kT0 + 2, kT0 + 3}}));
  std::int64_t rows = 0;
  for (const auto& c : counts.cube) rows += c.count;
  BOOST_TEST(rows == 5);
  // The range is half-open and bounds the versions too.
  const auto later = countStats(db, StatsRange{kT0 + 2, kT0 + 9, Bucket::kHour, 10});
  BOOST_TEST((later.versions == std::vector<VersionCount>{{kV2, 2, 1, 1, 1, kT0 + 2, kT0 + 3}}));
  const auto total = summarize(r, counts.cube, counts.versions, {}, {}).front();
  BOOST_TEST(total.count == 5);
  BOOST_TEST((total.cached == std::optional<std::int64_t>(3)));
}

// Each filter, alone and with a time range, walks an index; ORDER BY needs no sort.
BOOST_AUTO_TEST_CASE(query_plans_use_the_indexes) {
  TempDb t;
  fill(t.path);
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  BOOST_TEST(db.schemaVersion() == EventStore::latestVersion());
  struct Case {
    void (*set)(Filters&);
    const char* index;
  };
  const Case cases[] = {
      {[](Filters& f) { f.verdict = "infected"; }, "scan_events_verdict_time"},
      {[](Filters& f) { f.action = "pass-unscanned"; }, "scan_events_action_time"},
      {[](Filters& f) { f.threat = "Eicar*"; }, "scan_events_threats_time"},
      {[](Filters& f) { f.user = "u"; }, "scan_events_user_time"},
      {[](Filters& f) { f.sender = "s"; }, "scan_events_sender_time"},
      {[](Filters& f) { f.gateway = "g"; }, "scan_events_gateway_time"},
      {[](Filters& f) { f.mailbox = "INBOX"; }, "scan_events_mailbox_time"},
      {[](Filters& f) { f.errorClass = "too_large"; }, "scan_events_error_class_time"},
      {[](Filters& f) { f.messageId = "<m>"; }, "scan_events_message_id"},
      {[](Filters& f) { f.recipient = "r@x"; }, "scan_events_recipients VIRTUAL TABLE"},
      {[](Filters& f) { f.signatureVersion = kV1; }, "scan_events_signature_version_time"},
      {[](Filters& f) { f.cached = true; }, "scan_events_cached_time"},
  };
  for (const auto& c : cases) {
    for (const bool timed : {false, true}) {
      Filters f;
      c.set(f);
      if (timed) f.since = parseTime("1d").value();
      const auto plan = planText(db, eventsQuery(f, kT0, 50, db.schema()));
      BOOST_TEST_INFO(c.index << (timed ? " + since" : "") << ":\n" << plan);
      // Untimed --threat and --cached yes walk their whole partial index, in time order.
      BOOST_TEST(contains(plan, std::string(c.index) + (timed || f.threat || f.recipient || f.cached ? "" : " (")));
      BOOST_TEST(!contains(plan, "SCAN scan_events\n"));
      if (!f.messageId && !f.recipient) {  // few rows per Message-ID or address: sorted
        BOOST_TEST(!contains(plan, "TEMP B-TREE"));
      }
    }
  }
  // Scanned rows are most of the log: --cached no walks the time order, no sort.
  Filters scanned;
  scanned.cached = false;
  const auto scannedPlan = planText(db, eventsQuery(scanned, kT0, 50, db.schema()));
  BOOST_TEST(contains(scannedPlan, "scan_events_time"), scannedPlan);
  BOOST_TEST(!contains(scannedPlan, "TEMP B-TREE"), scannedPlan);
  StatsRange r{kT0, kT0 + 86400 * kUsPerSecond, Bucket::kHour, 10};
  // Signature version and cached included (migration 0004), in time order without a sort.
  const auto cubePlan = planText(db, statsCubeQuery(r));
  BOOST_TEST(contains(cubePlan, "COVERING INDEX scan_events_time_stats (time_us>? AND time_us<?)"), cubePlan);
  BOOST_TEST(!contains(cubePlan, "TEMP B-TREE"), cubePlan);
  BOOST_TEST(contains(planText(db, statsThreatsQuery(r)), "scan_events_threats_time (time_us>? AND time_us<?)"));
  BOOST_TEST(contains(planText(db, statsRecipientsQuery(r)), "scan_events_verdict_time (verdict=? AND time_us>? AND time_us<?)"));
  BOOST_TEST(contains(planText(db, followQuery(Filters{}, kT0, 1, 2)), "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"));
}

BOOST_AUTO_TEST_CASE(a_version_2_database_is_queried_without_the_new_indexes) {
  TempDb t;
  {
    // Exactly what a v2 server wrote: migrations 1 and 2 only.
    const auto& all = imapav::db::migrations();
    rawExec(t.path, std::string(all.at(0).sql) + std::string(all.at(1).sql) + "PRAGMA user_version = 2;"
                    "INSERT INTO scan_events (time_us, verdict, threats) VALUES (1, 'infected', 'Eicar-Test-Signature');");
  }
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  BOOST_TEST(db.schemaVersion() == 2);
  Filters f;
  f.threat = "Eicar*";
  BOOST_TEST((ids(db, f) == std::vector<std::int64_t>{1}));
  BOOST_TEST(!db.schema().recipientIndex);
  Filters r;
  r.recipient = "bob@example.net";
  BOOST_TEST(ids(db, r, db.schema()).empty());  // the scan, no error about a missing table
}

// A log written before migration 0004: the same counts, read from the table rather than
// the index (slower, see the migration), and the filters work without their indexes.
BOOST_AUTO_TEST_CASE(a_version_3_database_counts_versions_without_the_new_indexes) {
  TempDb t;
  TempDb v4;
  {
    const auto& all = imapav::db::migrations();
    std::string sql;
    for (std::size_t i = 0; i < 3; ++i) sql += std::string(all.at(i).sql);
    // fill()'s rows in the columns that matter here (EventStore would migrate the file).
    const std::string t0 = std::to_string(kT0);
    rawExec(t.path, sql + "PRAGMA user_version = 3;"
                    "INSERT INTO scan_events (time_us, verdict, signature_version, cached) VALUES"
                    " (" + t0 + ", 'clean', '" + kV1 + "', 0), (" + t0 + " + 1, 'infected', '" + kV1 + "', 1),"
                    " (" + t0 + " + 2, 'infected', '" + kV2 + "', 0), (" + t0 + " + 3, 'error', '" + kV2 + "', 1);");
  }
  fill(v4.path);
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  BOOST_TEST(db.schemaVersion() == 3);
  EventDb current(v4.path, EventDb::Mode::kReadOnly);
  const StatsRange r{kT0, kT0 + 3600 * kUsPerSecond, Bucket::kHour, 10};
  const auto old = countStats(db, r);
  const auto now = countStats(current, r);
  BOOST_TEST((old.versions == now.versions));
  BOOST_TEST(old.versions.size() == 2u);
  BOOST_TEST(!contains(planText(db, statsCubeQuery(r)), "COVERING INDEX"));
  Filters f;
  f.cached = true;
  f.signatureVersion = kV2;
  BOOST_TEST((ids(db, f) == std::vector<std::int64_t>{4}));
}

BOOST_AUTO_TEST_CASE(refuses_what_is_not_an_imapav_database) {
  TempDb t;
  const std::string missing = t.dir + "/missing.sqlite";
  BOOST_TEST(contains(errorOf(missing), "cannot open " + missing + ": No such file"));
  BOOST_TEST(!std::filesystem::exists(missing));  // never created

  const std::string text = t.dir + "/notes.txt";
  std::ofstream(text) << "this is not a database, just some text that is long enough to matter\n";
  BOOST_TEST(contains(errorOf(text), "is not a readable SQLite database"));

  const std::string other = t.dir + "/other.sqlite";
  rawExec(other, "CREATE TABLE t (x)");
  BOOST_TEST(contains(errorOf(other), "not an imapav event database (schema version 0)"));
  rawExec(other, "PRAGMA user_version = 1");
  BOOST_TEST(contains(errorOf(other), "no scan_events table"));

  fill(t.path);
  rawExec(t.path, "PRAGMA user_version = " + std::to_string(EventStore::latestVersion() + 1));
  BOOST_TEST(contains(errorOf(t.path), "newer than this imapav-log knows"));
  BOOST_TEST(contains(errorOf(t.dir), "not a regular file"));
}

BOOST_AUTO_TEST_CASE(the_recipient_index_follows_inserts_and_deletes) {
  TempDb t;
  fill(t.path);
  {
    EventDb rw(t.path, EventDb::Mode::kReadWrite);
    BOOST_TEST(rw.execute(Query{"DELETE FROM scan_events WHERE id IN (SELECT id FROM scan_events"
                                " WHERE time_us < ? LIMIT ?)", {kT0 + 2, std::int64_t{1}}}) == 1);
    // FTS5 compares its index with scan_events and fails on any difference.
    rw.execute(Query{"INSERT INTO scan_events_recipients(scan_events_recipients, rank)"
                     " VALUES ('integrity-check', 1)", {}});
  }
  EventStore(t.path).insert({event(kT0 + 9, "clean", "", "bob@example.net")});
  EventDb db(t.path, EventDb::Mode::kReadOnly);
  Filters f;
  f.recipient = "bob@example.net";
  BOOST_TEST((ids(db, f, db.schema()) == std::vector<std::int64_t>{5, 2}));
}

BOOST_AUTO_TEST_CASE(read_only_cannot_write) {
  TempDb t;
  fill(t.path);
  EventDb ro(t.path, EventDb::Mode::kReadOnly);
  BOOST_CHECK_THROW(ro.execute(Query{"DELETE FROM scan_events", {}}), DbError);
  EventDb rw(t.path, EventDb::Mode::kReadWrite);
  BOOST_TEST(rw.execute(Query{"DELETE FROM scan_events WHERE time_us < ?", {kT0 + 2}}) == 2);
  BOOST_TEST(ro.scalar(Query{"SELECT count(*) FROM scan_events", {}}) == 2);
}

BOOST_AUTO_TEST_SUITE_END()
