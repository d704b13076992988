#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "tools/log/log_query.hpp"

using namespace imapav::logtool;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

constexpr std::int64_t kNow = 1795824000LL * kUsPerSecond;  // 2026-11-28T00:00:00Z

std::string text(const SqlParam& p) { return std::get<std::string>(p); }
std::int64_t integer(const SqlParam& p) { return std::get<std::int64_t>(p); }

}  // namespace

BOOST_AUTO_TEST_SUITE(filters_to_sql)

BOOST_AUTO_TEST_CASE(no_filters_no_where) {
  const auto q = eventsQuery(Filters{}, kNow, 50);
  BOOST_TEST(!contains(q.sql, "WHERE"));
  BOOST_TEST(contains(q.sql, "ORDER BY time_us DESC, id DESC LIMIT ?"));
  BOOST_REQUIRE(q.params.size() == 1u);
  BOOST_TEST(integer(q.params[0]) == 50);
  BOOST_TEST(!contains(eventsQuery(Filters{}, kNow, 0).sql, "LIMIT"));  // 0 = all
  BOOST_TEST(eventsQuery(Filters{}, kNow, 0).params.empty());
}

BOOST_AUTO_TEST_CASE(every_filter_is_a_parameter) {
  Filters f;
  f.since = parseTime("2h").value();
  f.until = parseTime("2026-11-28T10:00:00Z").value();
  f.verdict = "infected";
  f.action = "replace";
  f.threat = "Eicar*";
  f.user = "o'brien";  // a quote that would break spliced SQL
  f.sender = "x@y'; DROP TABLE scan_events; --";
  f.recipient = " Bob@Example.NET ";
  f.gateway = "10.0.0.1";
  f.mailbox = "INBOX";
  f.messageId = "<m@x>";
  f.errorClass = "too_large";
  f.cached = true;
  f.signatureVersion = "27400-0123456789ab";
  const auto q = eventsQuery(f, kNow, 10);
  BOOST_TEST(q.sql ==
             "SELECT id, time_us, time_iso, gateway, service, method, client_ip, user, imap_url, "
             "mailbox, uid_validity, uid, message_id, sender, recipients, subject, size, sha256, "
             "verdict, threats, action, error_class, scan_time_us, engine_version, "
             "signature_version, cached FROM scan_events WHERE time_us >= ? AND time_us < ? AND "
             "verdict = ? AND action = ? AND threats <> '' AND imapav_threat_match(threats, ?) AND "
             "user = ? AND sender = ? AND recipients LIKE ? ESCAPE '\\' AND "
             "instr(',' || replace(lower(recipients), ' ', '') || ',', ?) > 0 AND gateway = ? AND mailbox = ? AND message_id = ? AND error_class = ? "
             "AND cached = 1 AND signature_version = ? "
             "ORDER BY time_us DESC, id DESC LIMIT ?");
  BOOST_REQUIRE(q.params.size() == 15u);
  BOOST_TEST(integer(q.params[0]) == kNow - 7200 * kUsPerSecond);
  BOOST_TEST(integer(q.params[1]) == kNow + 36000 * kUsPerSecond);
  BOOST_TEST(text(q.params[2]) == "infected");
  BOOST_TEST(text(q.params[4]) == "Eicar*");
  BOOST_TEST(text(q.params[5]) == "o'brien");
  BOOST_TEST(text(q.params[7]) == "%Bob@Example.NET%");   // LIKE ignores ASCII case itself
  BOOST_TEST(text(q.params[8]) == ",bob@example.net,");  // trimmed, lower case, delimited
  BOOST_TEST(text(q.params[12]) == "too_large");
  BOOST_TEST(text(q.params[13]) == "27400-0123456789ab");
  BOOST_TEST(integer(q.params[14]) == 10);
  BOOST_TEST(!contains(q.sql, "brien"));
  BOOST_TEST(!contains(q.sql, "DROP"));
}

BOOST_AUTO_TEST_CASE(cached_is_a_constant_term) {
  // Written out, not bound: SQLite uses the partial index of cached rows only for a term it reads.
  Filters f;
  f.cached = false;
  auto q = eventsQuery(f, kNow, 0);
  BOOST_TEST(contains(q.sql, " WHERE cached = 0 ORDER BY"));
  BOOST_TEST(q.params.empty());
  f.cached = true;
  f.signatureVersion = "";  // rows no engine answered: an exact match too
  q = eventsQuery(f, kNow, 0);
  BOOST_TEST(contains(q.sql, " WHERE cached = 1 AND signature_version = ? ORDER BY"));
  BOOST_REQUIRE(q.params.size() == 1u);
  BOOST_TEST(text(q.params[0]).empty());
}

BOOST_AUTO_TEST_CASE(like_wildcards_in_a_recipient_are_escaped) {
  Filters f;
  f.recipient = "a_b%c\\d@x";
  const auto q = eventsQuery(f, kNow, 0);
  BOOST_REQUIRE(q.params.size() == 2u);
  BOOST_TEST(text(q.params[0]) == "%a\\_b\\%c\\\\d@x%");
  BOOST_TEST(text(q.params[1]) == ",a_b%c\\d@x,");
}

BOOST_AUTO_TEST_CASE(recipient_through_the_fts_index) {
  BOOST_TEST(recipientMatch(" Bob@Example.net ") == "\"Bob@Example.net\"");
  BOOST_TEST(recipientMatch("a\"b@x") == "\"a\"\"b@x\"");  // FTS5 doubles quotes
  BOOST_TEST(recipientMatch("o'brien@x") == "\"o'brien@x\"");
  BOOST_TEST(recipientMatch("%%").empty());  // nothing the tokenizer keeps
  BOOST_TEST(recipientMatch("").empty());
  Filters f;
  f.recipient = "Bob@Example.net";
  const auto q = eventsQuery(f, kNow, 0, Schema{true});
  BOOST_TEST(contains(q.sql, " WHERE id IN (SELECT rowid FROM scan_events_recipients WHERE "
                             "scan_events_recipients MATCH ?) AND instr("));
  BOOST_REQUIRE(q.params.size() == 2u);
  BOOST_TEST(text(q.params[0]) == "\"Bob@Example.net\"");
  BOOST_TEST(text(q.params[1]) == ",bob@example.net,");
  f.recipient = "%";  // falls back to the scan
  BOOST_TEST(contains(eventsQuery(f, kNow, 0, Schema{true}).sql, "recipients LIKE ?"));
}

BOOST_AUTO_TEST_CASE(show_and_follow) {
  const auto show = showQuery(42);
  BOOST_TEST(contains(show.sql, "WHERE id = ?"));
  BOOST_TEST(integer(show.params.at(0)) == 42);

  Filters f;
  BOOST_TEST(contains(followQuery(f, kNow, 5, 9).sql, "FROM scan_events WHERE id > ? AND id <= ? ORDER BY id"));
  f.verdict = "infected";
  const auto q = followQuery(f, kNow, 5, 9);
  BOOST_TEST(contains(q.sql, "WHERE verdict = ? AND id > ? AND id <= ? ORDER BY id"));
  BOOST_REQUIRE(q.params.size() == 3u);
  BOOST_TEST(integer(q.params[1]) == 5);
  BOOST_TEST(integer(q.params[2]) == 9);
}

BOOST_AUTO_TEST_CASE(lists_split_on_commas) {
  const auto names = splitList(" a.b , ,Eicar-Test,c,");
  BOOST_REQUIRE(names.size() == 3u);
  BOOST_TEST(names[0] == "a.b");
  BOOST_TEST(names[1] == "Eicar-Test");
  BOOST_TEST(names[2] == "c");
  BOOST_TEST(splitList("").empty());
  BOOST_TEST(splitList(",,").empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stats)

BOOST_AUTO_TEST_CASE(cube_counts_per_bucket) {
  CubeBuilder b(Bucket::kHour);
  const std::int64_t h = 3600 * kUsPerSecond;
  b.add("clean", "pass", "", "g1", kNow + 1);
  b.add("clean", "pass", "", "g1", kNow + h - 1);
  b.add("clean", "pass", "", "g1", kNow + h);
  b.add("error", "pass-unscanned", "too_large", "g2", kNow + 5);
  const auto rows = b.rows();
  BOOST_REQUIRE(rows.size() == 3u);
  std::int64_t total = 0;
  for (const auto& r : rows) total += r.count;
  BOOST_TEST(total == 4);
  BOOST_TEST(rows[0].verdict == "clean");
  BOOST_TEST(rows[0].bucket == kNow / h);
  BOOST_TEST(rows[0].count == 2);
  BOOST_TEST(rows[1].bucket == kNow / h + 1);
}

BOOST_AUTO_TEST_CASE(summary_sections) {
  const std::int64_t h = 3600 * kUsPerSecond;
  StatsRange range{kNow, kNow + 3 * h, Bucket::kHour, 2};
  const std::vector<CubeRow> cube = {
      {"clean", "pass", "", "10.0.0.1", kNow / h, 5},
      {"infected", "replace", "", "10.0.0.1", kNow / h, 2},
      {"infected", "replace", "", "10.0.0.2", kNow / h + 2, 1},
      {"error", "pass-unscanned", "too_large", "10.0.0.2", kNow / h + 2, 3},
      {"error", "replace", "timeout", "10.0.0.2", kNow / h + 2, 1},
  };
  const std::vector<ListCount> threats = {{"Eicar,Trojan.X", 2}, {"Eicar,Eicar", 1}, {"Worm.Y", 1}};
  const std::vector<ListCount> recipients = {{"a@x,b@x", 2}, {"b@x", 1}};
  // What VersionCounter gives for the same 12 rows: a reload at kNow + 2h.
  const std::vector<VersionCount> versions = {{"27400-aaaa", 7, 3, 2, 0, kNow + 10, kNow + h - 1},
                                              {"27401-bbbb", 5, 1, 1, 4, kNow + 2 * h + 5, kNow + 3 * h - 1}};
  const auto rows = summarize(range, cube, versions, threats, recipients);
  const auto section = [&](const std::string& name) {
    std::vector<StatsRow> out;
    for (const auto& r : rows) {
      if (r.section == name) out.push_back(r);
    }
    return out;
  };
  StatsRow total("total", "", 12);
  total.cached = 4;  // the versions' cached rows
  BOOST_TEST((section("total") == std::vector<StatsRow>{total}));
  BOOST_TEST((section("verdict") == std::vector<StatsRow>{{"verdict", "clean", 5, {}, {}},
                                                           {"verdict", "error", 4, {}, {}},
                                                           {"verdict", "infected", 3, {}, {}}}));
  BOOST_TEST((section("action") == std::vector<StatsRow>{{"action", "pass", 5, {}, {}},
                                                          {"action", "replace", 4, {}, {}},
                                                          {"action", "pass-unscanned", 3, {}, {}}}));
  // A name listed twice in one row counts once; --top 2 keeps two.
  BOOST_TEST((section("threat") == std::vector<StatsRow>{{"threat", "Eicar", 3, {}, {}},
                                                          {"threat", "Trojan.X", 2, {}, {}}}));
  BOOST_TEST((section("recipient") == std::vector<StatsRow>{{"recipient", "b@x", 3, {}, {}},
                                                             {"recipient", "a@x", 2, {}, {}}}));
  BOOST_TEST((section("unscanned") == std::vector<StatsRow>{{"unscanned", "too_large", 3, {}, {}}}));
  BOOST_TEST((section("gateway") == std::vector<StatsRow>{{"gateway", "10.0.0.1", 7, 2, 0},
                                                           {"gateway", "10.0.0.2", 5, 1, 4}}));
  // In the order of first seen, with every count and both times.
  const auto version = [](const VersionCount& v) {
    StatsRow r("signature_version", v.version, v.count, v.infected, v.errors);
    r.cached = v.cached;
    r.firstUs = v.firstUs;
    r.lastUs = v.lastUs;
    return r;
  };
  BOOST_TEST((section("signature_version") == std::vector<StatsRow>{version(versions[0]), version(versions[1])}));
  // Between gateways and hours.
  const auto at = [&](const std::string& name) {
    return std::find_if(rows.begin(), rows.end(), [&](const StatsRow& r) { return r.section == name; }) - rows.begin();
  };
  BOOST_TEST(at("gateway") < at("signature_version"));
  BOOST_TEST(at("signature_version") < at("hour"));
  // Every hour of the range, the empty one too.
  BOOST_TEST((section("hour") == std::vector<StatsRow>{
                  {"hour", "2026-11-28T00:00:00Z", 7, 2, 0},
                  {"hour", "2026-11-28T01:00:00Z", 0, 0, 0},
                  {"hour", "2026-11-28T02:00:00Z", 5, 1, 4}}));
}

BOOST_AUTO_TEST_CASE(huge_ranges_list_only_busy_buckets) {
  StatsRange range{0, kNow, Bucket::kHour, 10};  // 1970 .. 2026 by hour
  const auto rows = summarize(range, {{"clean", "pass", "", "g", kNow / (3600 * kUsPerSecond) - 1, 1}}, {}, {}, {});
  std::size_t hours = 0;
  for (const auto& r : rows) hours += r.section == "hour" ? 1u : 0u;
  BOOST_TEST(hours == 1u);
}

BOOST_AUTO_TEST_CASE(versions_in_order_of_first_seen) {
  VersionCounter c;
  // A reload to v2, a rollback to v1 (its row spans both), rows of no engine ("").
  c.add("v1", "clean", false, kNow + 1);
  c.add("v1", "infected", true, kNow + 2);
  c.add("v2", "clean", true, kNow + 3);
  c.add("v2", "error", false, kNow + 4);
  c.add("", "error", false, kNow + 5);
  c.add("v1", "infected", false, kNow + 6);
  c.add("v1", "clean", true, kNow + 7);
  c.add("v0", "clean", false, kNow);  // out of time order: first seen still the earliest
  BOOST_TEST((c.rows() == std::vector<VersionCount>{{"v0", 1, 0, 0, 0, kNow, kNow},
                                                    {"v1", 4, 2, 2, 0, kNow + 1, kNow + 7},
                                                    {"v2", 2, 1, 0, 1, kNow + 3, kNow + 4},
                                                    {"", 1, 0, 0, 1, kNow + 5, kNow + 5}}));
  BOOST_TEST(VersionCounter().rows().empty());
}

BOOST_AUTO_TEST_CASE(stats_queries_are_parameterised) {
  StatsRange range{kNow, kNow + 1, Bucket::kDay, 10};
  for (const auto& q : {statsCubeQuery(range), statsThreatsQuery(range), statsRecipientsQuery(range)}) {
    BOOST_TEST(contains(q.sql, "time_us >= ? AND time_us < ?"));
    BOOST_REQUIRE(q.params.size() == 2u);
    BOOST_TEST(integer(q.params[0]) == kNow);
    BOOST_TEST(integer(q.params[1]) == kNow + 1);
  }
}

BOOST_AUTO_TEST_SUITE_END()
