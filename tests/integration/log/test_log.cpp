// imapav-log as operators run it: the real binary on a log the real imapav-icapd wrote
// (clean, infected, passed unscanned and dropped scans), every command, filter and format,
// and the mistakes: missing or foreign files, bad dates, unknown options, exit codes.

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/text_sql.hpp"
#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "db/event_store.hpp"
#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/process.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;
using Settings = std::map<std::string, std::string>;

namespace {

const std::string kBinary = std::string(IMAPAV_BINARY_DIR) + "/tools/log/imapav-log";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::vector<std::string> lines(const std::string& text) { return imapav::test::splitLines(text); }

void sqlExec(const std::string& path, const std::string& sql) { imapav::test::sqliteExec(path, sql); }

std::string sqlText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const auto* t = sqlite3_column_text(st, 0);
    out = t != nullptr ? reinterpret_cast<const char*>(t) : "NULL";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The scan log the tests read, written once by two real servers in turn:
//   1 infected (bob, "Archive 2026"/4711, UTF-8 subject)   4 clean too big: pass-unscanned
//   2 clean (alice, INBOX/42)                               5 clean too big: error, replace
//   3 clean, subject with a comma and quotes
struct ServerLog {
  TempDir dir;
  std::string db = dir.file("events.sqlite");
  std::int64_t firstTimeUs = 0;

  ServerLog() {
    const std::string big = cleanMessage("too big to scan", 20000);
    const Settings limits = {{"log.database", db}, {"scan.max_file_size", "4k"}, {"scan.max_scan_size", "4k"}};
    {
      Settings s = limits;
      s["policy.fail_mode"] = "pass";
      IcapdFixture f(s);
      RespmodRequest infected;
      infected.message = infectedMessage("=?UTF-8?B?UmVjaG51bmcgZsO8ciBTaWU=?=");
      infected.extraHeaders = {{"X-Client-IP", "192.0.2.25"}, {"X-Authenticated-User", "Ym9iQGV4YW1wbGUubmV0"}};
      infected.url = "imap://bob@mail.example/Archive%202026;UIDVALIDITY=1700000000/;UID=4711";
      BOOST_REQUIRE(f.exchange(infected).head.status == 200);
      RespmodRequest clean;
      clean.message = cleanMessage("Hi");
      BOOST_REQUIRE(f.exchange(clean).head.status == 204);
      clean.message = cleanMessage("He said \"hi\", then left");
      BOOST_REQUIRE(f.exchange(clean).head.status == 204);
      RespmodRequest tooBig;
      tooBig.message = big;
      BOOST_REQUIRE(f.exchange(tooBig).head.status == 204);  // passed unscanned
      const int rc = f.stop();
      BOOST_REQUIRE_MESSAGE(rc == 0, "imapav-icapd exit " << rc << ", its log:\n" << f.log());
    }
    {
      Settings s = limits;
      s["policy.fail_mode"] = "drop";
      IcapdFixture f(s);
      RespmodRequest tooBig;
      tooBig.message = big;
      BOOST_REQUIRE(f.exchange(tooBig).head.status == 200);  // replaced by a notice
      const int rc = f.stop();
      BOOST_REQUIRE_MESSAGE(rc == 0, "imapav-icapd exit " << rc << ", its log:\n" << f.log());
    }
    BOOST_REQUIRE(sqlText(db, "SELECT count(*) FROM scan_events") == "5");
    firstTimeUs = std::stoll(sqlText(db, "SELECT time_us FROM scan_events WHERE id = 1"));
  }
};

const ServerLog& serverLog() {
  static const ServerLog log;
  return log;
}

// A log across a signature reload, written by one real server with the verdict cache on:
//   1 "Hello", scanned with the first signatures    4 the marked message: the new ones find it
//   2 "Hello" again, answered from the cache        5 the marked message again, from the cache
//   3 the marked message: the first ones miss it    6 "Hello", scanned again (new signatures, so
//                                                     the cache has no answer for it)
struct ReloadLog {
  TempDir dir;
  std::string db = dir.file("events.sqlite");
  std::string oldVersion;
  std::string newVersion;

  ReloadLog() {
    IcapdFixture f(Settings{{"log.database", db}, {"scan.reload_check", "1s"}});
    RespmodRequest hello;
    hello.message = cleanMessage("Hello");
    RespmodRequest marked;
    marked.message = cleanMessage("Quarterly figures IMAPAV-LOG-RELOAD-MARKER");
    BOOST_REQUIRE(f.exchange(hello).head.status == 204);
    BOOST_REQUIRE(f.exchange(hello).header("X-Imapav-Cache") != nullptr);
    BOOST_REQUIRE(f.exchange(marked).head.status == 204);
    // Renamed into place: the server never reads half a file. The hex is the marker.
    const std::string tmp = f.dir().file("reload.ndb.tmp");
    writeFile(tmp, "Imapav.Log.Reload:0:*:494d415041562d4c4f472d52454c4f41442d4d41524b4552\n");
    std::filesystem::rename(tmp, f.signatureDir() + "/reload.ndb");
    for (int i = 0; i < 300 && !contains(f.log(), "signatures reloaded"); ++i) std::this_thread::sleep_for(100ms);
    BOOST_REQUIRE_MESSAGE(contains(f.log(), "signatures reloaded"), f.log());
    BOOST_REQUIRE(f.exchange(marked).head.status == 200);
    BOOST_REQUIRE(f.exchange(marked).header("X-Imapav-Cache") != nullptr);
    BOOST_REQUIRE(f.exchange(hello).header("X-Imapav-Cache") == nullptr);
    const int rc = f.stop();
    BOOST_REQUIRE_MESSAGE(rc == 0, "imapav-icapd exit " << rc << ", its log:\n" << f.log());
    BOOST_REQUIRE(sqlText(db, "SELECT group_concat(cached, '') FROM (SELECT cached FROM scan_events ORDER BY id)") == "010010");
    oldVersion = sqlText(db, "SELECT signature_version FROM scan_events WHERE id = 1");
    newVersion = sqlText(db, "SELECT signature_version FROM scan_events WHERE id = 6");
    BOOST_REQUIRE(!oldVersion.empty());
    BOOST_REQUIRE(oldVersion != newVersion);
  }

  // A row's time as the tool prints it.
  std::string seen(int id) const {
    return sqlText(db, "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', time_us / 1000000, 'unixepoch') FROM scan_events"
                       " WHERE id = " + std::to_string(id));
  }
};

const ReloadLog& reloadLog() {
  static const ReloadLog log;
  return log;
}

CommandResult run(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, 60s);
}

// imapav-log --db <server log> args...
CommandResult logCmd(std::vector<std::string> args, const std::string& db = serverLog().db) {
  args.insert(args.begin(), {"--db", db});
  return run(args);
}

// The ids "events" prints as JSON, newest first.
std::vector<long long> eventIds(std::vector<std::string> args, const std::string& db = serverLog().db) {
  args.insert(args.begin(), "events");
  args.insert(args.end(), {"--format", "json", "--limit", "0"});
  const auto r = logCmd(args, db);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  std::vector<long long> ids;
  for (const auto& line : lines(r.output)) {
    BOOST_REQUIRE(line.rfind("{\"id\":", 0) == 0u);
    ids.push_back(std::stoll(line.substr(6)));
  }
  return ids;
}

using Ids = std::vector<long long>;

// Python's own parsers judge the output: "<rows> <fields of each row, as a set>".
std::string pythonCheck(const std::string& script, const std::string& input) {
  const auto r = runCommand({"python3", "-c", script}, 30s, input);
  BOOST_TEST(r.exitCode == 0, r.output);
  return r.output;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(imapav_log)

BOOST_AUTO_TEST_CASE(events_table_newest_first) {
  const auto r = logCmd({"events"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  const auto ls = lines(r.output);
  BOOST_REQUIRE_EQUAL(ls.size(), 6u);
  BOOST_TEST(ls[0].rfind("ID  TIME (UTC)", 0) == 0u);
  BOOST_TEST(contains(ls[0], "MAILBOX/UID"));
  BOOST_TEST(ls[1].rfind(" 5  ", 0) == 0u);  // ids right-aligned
  BOOST_TEST(ls[5].rfind(" 1  ", 0) == 0u);
  BOOST_TEST(contains(ls[5], "Archive 2026/4711"));
  BOOST_TEST(contains(ls[5], "bob@example.net"));
  BOOST_TEST(contains(ls[5], "Rechnung f\xc3\xbcr Sie"));
  BOOST_TEST(contains(ls[5], "Eicar-Test-Signature"));
  BOOST_TEST(contains(ls[2], "pass-unscanned"));
  BOOST_TEST(contains(ls[2], "too_large"));
  BOOST_TEST(contains(ls[4], "INBOX/42"));
  // Aligned: every row's VERDICT cell starts under the header.
  const auto col = ls[0].find("VERDICT");
  BOOST_TEST(ls[1].substr(col, 5) == "error");
  BOOST_TEST(ls[4].substr(col, 5) == "clean");
  BOOST_TEST((eventIds({}) == Ids{5, 4, 3, 2, 1}));
  BOOST_TEST(lines(logCmd({"events", "--limit", "2"}).output).size() == 3u);
}

BOOST_AUTO_TEST_CASE(every_filter) {
  const ServerLog& log = serverLog();
  BOOST_TEST((eventIds({"--verdict", "infected"}) == Ids{1}));
  BOOST_TEST((eventIds({"--verdict", "clean"}) == Ids{3, 2}));
  BOOST_TEST((eventIds({"--verdict", "error"}) == Ids{5, 4}));
  BOOST_TEST((eventIds({"--action", "pass-unscanned"}) == Ids{4}));
  BOOST_TEST((eventIds({"--action", "replace"}) == Ids{5, 1}));
  BOOST_TEST((eventIds({"--threat", "Eicar*"}) == Ids{1}));
  BOOST_TEST((eventIds({"--threat", "*Test-Signature*"}) == Ids{1}));
  BOOST_TEST(eventIds({"--threat", "Signature*"}).empty());  // a whole name, not a substring
  BOOST_TEST(eventIds({"--threat", "eicar*"}).empty());      // GLOB is case-sensitive
  BOOST_TEST((eventIds({"--user", "bob@example.net"}) == Ids{1}));
  BOOST_TEST((eventIds({"--user", "alice"}) == Ids{5, 4, 3, 2}));
  BOOST_TEST((eventIds({"--sender", "mallory@example.com"}) == Ids{1}));
  BOOST_TEST((eventIds({"--recipient", "carol@example.net"}) == Ids{1}));
  BOOST_TEST((eventIds({"--recipient", "Bob@Example.NET"}) == Ids{5, 4, 3, 2, 1}));
  BOOST_TEST(eventIds({"--recipient", "arol@example.net"}).empty());
  BOOST_TEST(eventIds({"--gateway", "127.0.0.1"}).size() == 5u);
  BOOST_TEST(eventIds({"--gateway", "127.0.0.2"}).empty());
  BOOST_TEST((eventIds({"--mailbox", "Archive 2026"}) == Ids{1}));
  BOOST_TEST((eventIds({"--message-id", "<infected-1@example.com>"}) == Ids{1}));
  BOOST_TEST((eventIds({"--error-class", "too_large"}) == Ids{5, 4}));
  BOOST_TEST((eventIds({"--verdict", "error", "--action", "replace", "--error-class", "too_large"}) == Ids{5}));
  // Times: relative, and absolute in UTC around the first row (half-open range).
  BOOST_TEST(eventIds({"--since", "1h"}).size() == 5u);
  BOOST_TEST(eventIds({"--until", "1h"}).empty());
  BOOST_TEST(eventIds({"--since", "2000-01-01", "--until", "2000-01-02"}).empty());
  const std::int64_t t = log.firstTimeUs;
  const auto iso = sqlText(log.db, "SELECT time_iso FROM scan_events WHERE id = 1");
  BOOST_TEST(eventIds({"--until", iso}).empty());
  BOOST_TEST((eventIds({"--since", iso, "--verdict", "infected"}) == Ids{1}));
  BOOST_TEST(t > 0);
}

BOOST_AUTO_TEST_CASE(json_lines_have_every_column) {
  const auto r = logCmd({"events", "--format", "json"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(pythonCheck("import json,sys\n"
                         "rows=[json.loads(l) for l in sys.stdin]\n"
                         "print(len(rows), sorted({len(r) for r in rows}), rows[4]['uid'], rows[4]['subject'], rows[4]['verdict'])\n",
                         r.output) == "5 [26] 4711 Rechnung f\xc3\xbcr Sie infected\n");
  const auto ls = lines(r.output);
  BOOST_TEST(contains(ls[4], "\"time_iso\":\"20"));
  BOOST_TEST(contains(ls[4], "\"uid_validity\":1700000000,"));
  BOOST_TEST(contains(ls[4], "\"recipients\":\"bob@example.net,carol@example.net\""));
  BOOST_TEST(contains(ls[2], "\"subject\":\"He said \\\"hi\\\", then left\""));
}

BOOST_AUTO_TEST_CASE(csv_with_header) {
  const auto r = logCmd({"events", "--format", "csv"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(lines(r.output)[0].rfind("id,time_us,time_iso,gateway,service,method,", 0) == 0u);
  BOOST_TEST(pythonCheck("import csv,sys\n"
                         "rows=list(csv.reader(sys.stdin))\n"
                         "print(len(rows), sorted({len(r) for r in rows}), rows[3][15])\n",
                         r.output) == "6 [26] He said \"hi\", then left\n");
  BOOST_TEST(contains(r.output, ",\"He said \"\"hi\"\", then left\","));
  // No rows: the header alone, exit 0.
  const auto none = logCmd({"events", "--format", "csv", "--verdict", "infected", "--gateway", "x"});
  BOOST_TEST(none.exitCode == 0);
  BOOST_TEST(lines(none.output).size() == 1u);
}

BOOST_AUTO_TEST_CASE(show_one_event) {
  auto r = logCmd({"show", "1"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  std::set<std::string> names;
  for (const auto& line : lines(r.output)) names.insert(line.substr(0, line.find(' ')));
  for (const char* field : {"id", "time_us", "time_iso", "gateway", "service", "method", "client_ip", "user",
                            "imap_url", "mailbox", "uid_validity", "uid", "message_id", "sender",
                            "recipients", "subject", "size", "sha256", "verdict", "threats", "action",
                            "error_class", "scan_time_us", "engine_version", "signature_version", "cached"}) {
    BOOST_TEST_INFO(field);
    BOOST_TEST(names.count(field) == 1u);
  }
  BOOST_TEST(contains(r.output, "192.0.2.25"));
  BOOST_TEST(contains(r.output, "imap://bob@mail.example/Archive%202026;UIDVALIDITY=1700000000/;UID=4711"));
  r = logCmd({"show", "4", "--format", "json"});
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(lines(r.output).size() == 1u);
  BOOST_TEST(contains(r.output, "\"action\":\"pass-unscanned\",\"error_class\":\"too_large\""));
  r = logCmd({"show", "2", "--format", "csv"});
  BOOST_TEST(lines(r.output).size() == 2u);
  r = logCmd({"show", "99"});
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(contains(r.output, "no scan event with id 99"));
}

BOOST_AUTO_TEST_CASE(stats_sections) {
  auto r = logCmd({"stats"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(contains(r.output, ": 5\n"));
  for (const char* title : {"By verdict", "By action", "Top threats", "Top recipients of infected mail",
                            "Passed unscanned, by reason", "By gateway", "By signature version", "By hour (UTC)"}) {
    BOOST_TEST_INFO(title);
    BOOST_TEST(contains(r.output, "\n" + std::string(title) + "\n"));
  }
  BOOST_TEST(contains(r.output, "127.0.0.1      5         1       2"));
  BOOST_TEST(contains(r.output, ": 5\nAnswered from the verdict cache: 0 (0.0%)\n"));  // two servers, no repeats

  r = logCmd({"stats", "--format", "json", "--by", "day"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(pythonCheck("import json,sys\n"
                         "rows=[json.loads(l) for l in sys.stdin]\n"
                         "c={(r['section'],r.get('key')):r.get('count') for r in rows}\n"
                         "print(c[('total','')], c[('verdict','clean')], c[('verdict','infected')], c[('verdict','error')],"
                         " c[('action','replace')], c[('unscanned','too_large')], c[('recipient','carol@example.net')],"
                         " sum(v for (s,k),v in c.items() if s=='threat'), sum(v for (s,k),v in c.items() if s=='day'))\n",
                         r.output) == "5 2 1 2 2 1 1 1 5\n");
  BOOST_TEST(contains(r.output, "{\"section\":\"gateway\",\"key\":\"127.0.0.1\",\"count\":5,\"infected\":1,\"errors\":2}"));

  r = logCmd({"stats", "--format", "csv", "--top", "1"});
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(lines(r.output)[0] == "section,key,count,infected,errors,cached,first_seen,last_seen");
  BOOST_TEST(contains(r.output, "\ntotal,,5,,,0,,\n"));
  BOOST_TEST(contains(r.output, "\nverdict,infected,1,,,,,\n"));
  BOOST_TEST(contains(r.output, "\nunscanned,too_large,1,,,,,\n"));

  // A range without events: zero counts, exit 0.
  r = logCmd({"stats", "--since", "2000-01-01", "--until", "2000-01-02"});
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(contains(r.output, ": 0\n"));
}

BOOST_AUTO_TEST_CASE(stats_by_signature_version_across_a_reload) {
  const ReloadLog& log = reloadLog();
  auto r = logCmd({"stats"}, log.db);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(contains(r.output, ": 6\nAnswered from the verdict cache: 2 (33.3%)\n\nBy verdict\n"), r.output);
  // In order of first seen: the new signatures answered from row 4 on.
  const std::size_t width = std::max<std::size_t>(17, std::max(log.oldVersion.size(), log.newVersion.size()));
  const auto key = [width](const std::string& k) { return "  " + k + std::string(width - k.size(), ' '); };
  BOOST_TEST(contains(r.output, "\nBy gateway\n"));
  BOOST_TEST(contains(r.output,
                      "\nBy signature version\n" + key("SIGNATURE VERSION") +
                          "  COUNT  CACHED  INFECTED  ERRORS  FIRST SEEN            LAST SEEN\n" +
                          key(log.oldVersion) + "      3       1         0       0  " + log.seen(1) + "  " + log.seen(3) + "\n" +
                          key(log.newVersion) + "      3       1         2       0  " + log.seen(4) + "  " + log.seen(6) + "\n" +
                          "\nBy hour (UTC)\n"),
             r.output);

  r = logCmd({"stats", "--format", "json"}, log.db);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(contains(r.output, "\n{\"section\":\"total\",\"key\":\"\",\"count\":6,\"cached\":2}\n"));
  BOOST_TEST(contains(r.output, "\n{\"section\":\"signature_version\",\"key\":\"" + log.newVersion +
                                    "\",\"count\":3,\"cached\":1,\"infected\":2,\"errors\":0,\"first_seen\":\"" +
                                    log.seen(4) + "\",\"last_seen\":\"" + log.seen(6) + "\"}\n"),
             r.output);
  BOOST_TEST(pythonCheck("import json,sys\n"
                         "rows=[json.loads(l) for l in sys.stdin]\n"
                         "v=[r for r in rows if r['section']=='signature_version']\n"
                         "print(len(v), sum(r['count'] for r in v), sum(r['cached'] for r in v), v[0]['first_seen'] < v[1]['first_seen'])\n",
                         r.output) == "2 6 2 True\n");

  r = logCmd({"stats", "--format", "csv"}, log.db);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(contains(r.output, "\ntotal,,6,,,2,,\n"));
  BOOST_TEST(contains(r.output, "\nsignature_version," + log.oldVersion + ",3,0,0,1," + log.seen(1) + "," + log.seen(3) + "\n"),
             r.output);
  BOOST_TEST(contains(r.output, "\nsignature_version," + log.newVersion + ",3,2,0,1," + log.seen(4) + "," + log.seen(6) + "\n"),
             r.output);
  BOOST_TEST(pythonCheck("import csv,sys\n"
                         "rows=list(csv.reader(sys.stdin))\n"
                         "print(sorted({len(r) for r in rows}))\n",
                         r.output) == "[8]\n");

  // A range with only the new signatures.
  r = logCmd({"stats", "--since", sqlText(log.db, "SELECT time_iso FROM scan_events WHERE id = 4")}, log.db);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  BOOST_TEST(contains(r.output, ": 3\nAnswered from the verdict cache: 1 (33.3%)\n"), r.output);
  BOOST_TEST(!contains(r.output, log.oldVersion));
}

BOOST_AUTO_TEST_CASE(events_by_cache_and_signature_version) {
  const ReloadLog& log = reloadLog();
  BOOST_TEST((eventIds({"--cached", "yes"}, log.db) == Ids{5, 2}));
  BOOST_TEST((eventIds({"--cached", "no"}, log.db) == Ids{6, 4, 3, 1}));
  BOOST_TEST((eventIds({"--signature-version", log.oldVersion}, log.db) == Ids{3, 2, 1}));
  BOOST_TEST((eventIds({"--signature-version", log.newVersion, "--cached", "yes"}, log.db) == Ids{5}));
  BOOST_TEST((eventIds({"--signature-version", log.newVersion, "--verdict", "infected"}, log.db) == Ids{5, 4}));
  BOOST_TEST(eventIds({"--signature-version", log.oldVersion.substr(0, 3)}, log.db).empty());  // exact
  BOOST_TEST(eventIds({"--cached", "yes"}).empty());  // the other log: no repeats
  const auto bad = logCmd({"events", "--cached", "maybe"}, log.db);
  BOOST_TEST(bad.exitCode == 2);
  BOOST_TEST(contains(bad.output, "bad value for --cached: 'maybe': expected yes or no"), bad.output);

  // The table marks the answers from the cache under CACHED, beside the verdict.
  const auto r = logCmd({"events"}, log.db);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  const auto ls = lines(r.output);
  BOOST_REQUIRE_EQUAL(ls.size(), 7u);
  BOOST_TEST(contains(ls[0], "VERDICT   CACHED  THREATS"));
  std::string marks;  // the cell after each verdict (a cut subject ends in a 3-byte "…", so no byte column)
  const std::regex cell(" (clean|infected) +(yes|-) ");
  for (std::size_t i = 1; i < ls.size(); ++i) {
    std::smatch m;
    marks += std::regex_search(ls[i], m, cell) ? m[2].str() + " " : "? ";
  }
  BOOST_TEST(marks == "- yes - - yes - ");  // ids 6..1
  BOOST_TEST(contains(ls[2], "infected  yes     Imapav.Log.Reload.UNOFFICIAL"));

  // show: both fields, whole.
  auto show = logCmd({"show", "5"}, log.db);
  BOOST_TEST_REQUIRE(show.exitCode == 0, show.output);
  BOOST_TEST(contains(show.output, "\nsignature_version  " + log.newVersion + "\n"), show.output);
  BOOST_TEST(contains(show.output, "\ncached             1\n"), show.output);
  show = logCmd({"show", "4", "--format", "json"}, log.db);
  BOOST_TEST(contains(show.output, "\"signature_version\":\"" + log.newVersion + "\",\"cached\":0}"), show.output);
}

BOOST_AUTO_TEST_CASE(follow_prints_new_rows_while_the_server_writes) {
  TempDir d;
  const std::string db = d.file("events.sqlite");
  std::filesystem::copy_file(serverLog().db, db);
  const std::string out = d.file("follow.out");
  ChildProcess follow({kBinary, "--db", db, "follow", "--interval", "100ms", "--format", "json",
                       "--verdict", "infected"},
                      out);
  ChildProcess followTable({kBinary, "--db", db, "follow", "--interval", "100ms"}, d.file("follow-table.out"));
  {
    IcapdFixture f(Settings{{"log.database", db}});
    std::this_thread::sleep_for(300ms);  // both have read the last id by now
    RespmodRequest infected;
    infected.message = infectedMessage("new one");
    BOOST_TEST(f.exchange(infected).head.status == 200);
    RespmodRequest clean;
    clean.message = cleanMessage("also new");
    BOOST_TEST(f.exchange(clean).head.status == 204);
    // The writer flushes on its own schedule; wait for follow to see it (server running).
    for (int i = 0; i < 100 && !contains(readFile(out), "new one"); ++i) std::this_thread::sleep_for(100ms);
    for (int i = 0; i < 100 && !contains(readFile(d.file("follow-table.out")), "also new"); ++i) {
      std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(f.stop() == 0);
  }
  BOOST_TEST(follow.stop(SIGTERM, 5s) == 0);
  BOOST_TEST(followTable.stop(SIGINT, 5s) == 0);
  const auto ls = lines(readFile(out));
  BOOST_REQUIRE_EQUAL(ls.size(), 1u);  // only the new infected row, none of the old ones
  BOOST_TEST(ls[0].rfind("{\"id\":6,", 0) == 0u);
  BOOST_TEST(contains(ls[0], "\"subject\":\"new one\""));
  const auto table = lines(readFile(d.file("follow-table.out")));
  BOOST_REQUIRE_EQUAL(table.size(), 3u);  // header, 6, 7
  BOOST_TEST(table[0].rfind("      ID  TIME (UTC)", 0) == 0u);
  BOOST_TEST(contains(table[2], "also new"));
}

BOOST_AUTO_TEST_CASE(prune_counts_then_deletes) {
  TempDir d;
  const std::string db = d.file("events.sqlite");
  std::filesystem::copy_file(serverLog().db, db);
  {
    imapav::db::EventStore store(db);  // two old notifications, one new
    imapav::db::NotificationEvent old;
    old.timeUs = 1000;
    old.kind = "virus";
    imapav::db::NotificationEvent recent = old;
    recent.timeUs = serverLog().firstTimeUs;
    store.insertNotifications({old, old, recent});
  }
  auto r = logCmd({"prune", "--older-than", "1d"}, db);
  BOOST_TEST(r.exitCode == 0, r.output);
  BOOST_TEST(r.output.rfind("pruned 0 scan events and 2 notifications older than 20", 0) == 0u, r.output);
  r = logCmd({"prune", "--older-than", "0s", "--dry-run"}, db);
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(r.output.rfind("would prune 5 scan events and 1 notifications older than ", 0) == 0u, r.output);
  BOOST_TEST(sqlText(db, "SELECT count(*) FROM scan_events") == "5");
  r = logCmd({"prune", "--older-than", "0s"}, db);
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(r.output.rfind("pruned 5 scan events and 1 notifications older than ", 0) == 0u, r.output);
  BOOST_TEST(sqlText(db, "SELECT count(*) FROM scan_events") == "0");
  BOOST_TEST(sqlText(db, "SELECT count(*) FROM notifications") == "0");
  r = logCmd({"events"}, db);
  BOOST_TEST(r.exitCode == 0);  // no rows is success
  BOOST_TEST(lines(r.output).size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_version_2_database_still_works_and_is_not_migrated) {
  TempDir d;
  const std::string db = d.file("events.sqlite");
  std::filesystem::copy_file(serverLog().db, db);
  sqlExec(db, "DROP INDEX scan_events_action_time; DROP INDEX scan_events_error_class_time;"
              "DROP INDEX scan_events_mailbox_time; DROP INDEX scan_events_threats_time;"
              "DROP INDEX scan_events_time_stats; DROP TRIGGER scan_events_recipients_insert;"
              "DROP TRIGGER scan_events_recipients_delete; DROP TRIGGER scan_events_recipients_update;"
              "DROP TABLE scan_events_recipients; DROP INDEX scan_events_signature_version_time;"
              "DROP INDEX scan_events_cached_time;"
              "PRAGMA user_version = 2;");
  BOOST_TEST((eventIds({"--threat", "Eicar*"}, db) == Ids{1}));
  BOOST_TEST((eventIds({"--action", "pass-unscanned", "--mailbox", "INBOX"}, db) == Ids{4}));
  BOOST_TEST((eventIds({"--recipient", "carol@example.net"}, db) == Ids{1}));
  BOOST_TEST(logCmd({"stats"}, db).exitCode == 0);
  BOOST_TEST(contains(logCmd({"stats"}, db).output, "Answered from the verdict cache: 0 (0.0%)\n"));
  BOOST_TEST((eventIds({"--cached", "no", "--verdict", "infected"}, db) == Ids{1}));
  BOOST_TEST(sqlText(db, "PRAGMA user_version") == "2");
  BOOST_TEST(sqlText(db, "SELECT count(*) FROM sqlite_master WHERE name = 'scan_events_action_time'") == "0");
}

BOOST_AUTO_TEST_CASE(database_from_the_environment) {
  ::setenv("IMAPAV_LOG_DB", serverLog().db.c_str(), 1);
  const auto r = run({"events", "--verdict", "infected", "--format", "json"});
  ::unsetenv("IMAPAV_LOG_DB");
  BOOST_TEST(r.exitCode == 0, r.output);
  BOOST_TEST(lines(r.output).size() == 1u);
}

BOOST_AUTO_TEST_CASE(runtime_errors_exit_1) {
  TempDir d;
  const std::string missing = d.file("missing.sqlite");
  auto r = logCmd({"events"}, missing);
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(contains(r.output, "imapav-log: cannot open " + missing + ": No such file"), r.output);
  BOOST_TEST(!std::filesystem::exists(missing));  // never creates one
  r = logCmd({"prune", "--older-than", "1d"}, missing);
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(!std::filesystem::exists(missing));

  const std::string foreign = d.file("foreign.sqlite");
  sqlite3* raw = nullptr;
  sqlite3_open(foreign.c_str(), &raw);
  sqlite3_exec(raw, "CREATE TABLE contacts (name TEXT)", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  r = logCmd({"events"}, foreign);
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(contains(r.output, "not an imapav event database"), r.output);
  r = logCmd({"prune", "--older-than", "1d"}, foreign);
  BOOST_TEST(r.exitCode == 1);

  const std::string text = d.file("notes.txt");
  writeFile(text, std::string(4096, 'x'));
  r = logCmd({"stats"}, text);
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(contains(r.output, "not a readable SQLite database"), r.output);

  const std::string newer = d.file("newer.sqlite");
  std::filesystem::copy_file(serverLog().db, newer);
  sqlExec(newer, "PRAGMA user_version = 99");
  r = logCmd({"events"}, newer);
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(contains(r.output, "schema version 99, newer than this imapav-log knows"), r.output);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"events", "--bogus"},
      {"events", "--since", "2026-13-01"},
      {"events", "--since", "2026-02-30"},
      {"events", "--until", "yesterday"},
      {"events", "--since", "2026-11-28T25:00"},
      {"events", "--verdict", "dirty"},
      {"events", "--limit", "-3"},
      {"events", "--format", "xml"},
      {"stats", "--by", "week"},
      {"stats", "--verdict", "infected"},
      {"show", "x"},
      {"prune"},
      {"prune", "--older-than", "2026-01-01"},
      {"follow", "--interval", "0s"},
  };
  for (const auto& args : cases) {
    const auto r = logCmd(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    BOOST_TEST_INFO("imapav-log " << line);
    BOOST_TEST(r.exitCode == 2);
    BOOST_TEST(contains(r.output, "imapav-log: "));
    BOOST_TEST(contains(r.output, "Try 'imapav-log --help'."));
  }
  // A usage error wins over a missing database: nothing is opened.
  BOOST_TEST(logCmd({"events", "--verdict", "dirty"}, "/nonexistent/x.sqlite").exitCode == 2);
  // --since after --until.
  BOOST_TEST(logCmd({"stats", "--since", "1h", "--until", "2h"}).exitCode == 2);
}

BOOST_AUTO_TEST_CASE(help_exits_0) {
  auto r = run({"--help"});
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(contains(r.output, "Usage: imapav-log [--db PATH] COMMAND"));
  for (const char* command : {"events", "show", "stats", "follow", "prune"}) {
    r = run({command, "--help"});
    BOOST_TEST_INFO(command);
    BOOST_TEST(r.exitCode == 0);
    BOOST_TEST(contains(r.output, std::string("imapav-log [--db PATH] ") + command));
  }
}

BOOST_AUTO_TEST_SUITE_END()
