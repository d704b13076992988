#include <boost/test/unit_test.hpp>

#include "tests/support/text_sql.hpp"

#include <algorithm>
#include <tuple>

#include "tools/log/format.hpp"

using namespace imapav::logtool;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> lines(const std::string& text) { return imapav::test::splitLines(text); }

// The screen column where part starts.
std::size_t column(const std::string& line, const std::string& part) {
  return displayWidth(line.substr(0, line.find(part)));
}

std::size_t columnIndex(const std::string& name) {
  const auto& cols = eventColumns();
  return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
}

// A full row in eventColumns() order.
Row sampleRow(std::int64_t id, const std::string& subject, std::optional<std::int64_t> uid) {
  Row r;
  for (const auto& c : eventColumns()) {
    if (c == "id") r.push_back(Value::of(id));
    else if (c == "time_us") r.push_back(Value::of(std::int64_t{1795824000LL * kUsPerSecond + 5}));
    else if (c == "uid") r.push_back(uid ? Value::of(*uid) : Value::null());
    else if (c == "uid_validity") r.push_back(Value::null());
    else if (c == "size" || c == "scan_time_us" || c == "cached") r.push_back(Value::of(std::int64_t{7}));
    else if (c == "subject") r.push_back(Value::of(subject));
    else if (c == "mailbox") r.push_back(Value::of(std::string("INBOX")));
    else if (c == "verdict") r.push_back(Value::of(std::string("infected")));
    else r.push_back(Value::of(c + "-v"));
  }
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(output_formats)

BOOST_AUTO_TEST_CASE(json_escaping) {
  BOOST_TEST(jsonString("plain") == "\"plain\"");
  BOOST_TEST(jsonString("a\"b\\c") == "\"a\\\"b\\\\c\"");
  BOOST_TEST(jsonString("l1\nl2\r\t\b\f") == "\"l1\\nl2\\r\\t\\b\\f\"");
  BOOST_TEST(jsonString(std::string("\x1b[2J\x01\x7f", 6)) == "\"\\u001b[2J\\u0001\\u007f\"");
  BOOST_TEST(jsonString(std::string("nul\0x", 5)) == "\"nul\\u0000x\"");
  BOOST_TEST(jsonString("f\xc3\xbcr \xe2\x82\xac \xf0\x9f\x98\x80") == "\"f\xc3\xbcr \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate, and Latin-1 "für".
  BOOST_TEST(jsonString("a\x80z") == "\"a\\ufffdz\"");
  BOOST_TEST(jsonString("\xe2\x82") == "\"\\ufffd\\ufffd\"");
  BOOST_TEST(jsonString("\xc0\xaf") == "\"\\ufffd\\ufffd\"");
  BOOST_TEST(jsonString("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");
  BOOST_TEST(jsonString("f\xfcr") == "\"f\\ufffdr\"");
  BOOST_TEST(jsonString("\xe2\x80\xa8") == "\"\\u2028\"");
}

BOOST_AUTO_TEST_CASE(json_objects_keep_types) {
  const Row r = {Value::of(std::int64_t{42}), Value::null(), Value::of(std::string("x\"y"))};
  BOOST_TEST(jsonObject({"id", "uid", "subject"}, r) == "{\"id\":42,\"uid\":null,\"subject\":\"x\\\"y\"}");
  const auto all = renderEvents({sampleRow(1, "s", 42), sampleRow(2, "t", std::nullopt)}, Format::kJson);
  const auto ls = lines(all);
  BOOST_REQUIRE(ls.size() == 2u);
  BOOST_TEST(contains(ls[0], "\"id\":1,\"time_us\":1795824000000005,"));
  BOOST_TEST(contains(ls[0], "\"uid\":42,"));
  BOOST_TEST(contains(ls[1], "\"uid\":null,"));
  BOOST_TEST(contains(ls[1], "\"cached\":7}"));
}

BOOST_AUTO_TEST_CASE(csv_quoting) {
  BOOST_TEST(csvField("plain") == "plain");
  BOOST_TEST(csvField("") == "");
  BOOST_TEST(csvField("a,b") == "\"a,b\"");
  BOOST_TEST(csvField("say \"hi\"") == "\"say \"\"hi\"\"\"");
  BOOST_TEST(csvField("l1\nl2") == "\"l1\nl2\"");
  BOOST_TEST(csvField("cr\r") == "\"cr\r\"");
  BOOST_TEST(csvField("f\xfcr") == "f\xef\xbf\xbdr");  // kept valid UTF-8
  BOOST_TEST(csvRecord({"a", "b,c", ""}) == "a,\"b,c\",\n");
  const auto csv = renderEvents({sampleRow(1, "x, \"y\"", std::nullopt)}, Format::kCsv);
  const auto ls = lines(csv);
  BOOST_REQUIRE(ls.size() == 2u);
  BOOST_TEST(ls[0].rfind("id,time_us,time_iso,gateway,", 0) == 0u);
  BOOST_TEST(contains(ls[1], ",\"x, \"\"y\"\"\","));
  BOOST_TEST(contains(ls[1], ",INBOX,,,"));  // uid_validity and uid NULL: empty
  BOOST_TEST(renderEvents({}, Format::kCsv) == csvRecord(eventColumns()));  // header alone
}

BOOST_AUTO_TEST_CASE(terminal_text_is_safe_and_cut) {
  BOOST_TEST(terminalText("\x1b[31mred\x07") == "?[31mred?");
  BOOST_TEST(terminalText("a\nb\tc") == "a?b?c");
  BOOST_TEST(terminalText("\xc2\x9b" "x") == "?x");  // C1 CSI
  BOOST_TEST(terminalText("bad\xff") == "bad\xef\xbf\xbd");
  BOOST_TEST(terminalText("abcdef", 6) == "abcdef");
  BOOST_TEST(terminalText("abcdefg", 6) == "abcde\xe2\x80\xa6");
  BOOST_TEST(terminalText("\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc", 3) == "\xc3\xbc\xc3\xbc\xe2\x80\xa6");
  BOOST_TEST(terminalText("abc", 1) == "\xe2\x80\xa6");
  BOOST_TEST(displayWidth("f\xc3\xbcr") == 3u);
}

BOOST_AUTO_TEST_CASE(tables_align) {
  const auto t = renderTable({"NAME", "N"}, {{"f\xc3\xbcr", "5"}, {"longer name", "12345"}}, {false, true});
  BOOST_TEST(t ==
             "NAME             N\n"
             "f\xc3\xbcr              5\n"
             "longer name  12345\n");
  // No trailing spaces on a left-aligned last column.
  BOOST_TEST(renderTable({"A", "B"}, {{"x", ""}}) == "A  B\nx\n");
}

BOOST_AUTO_TEST_CASE(events_table) {
  const std::string longSubject(100, 's');
  Row scanned = sampleRow(1234, "\x1b]0;pwned\x07", std::nullopt);
  scanned[columnIndex("cached")] = Value::of(std::int64_t{0});
  const auto t = renderEventsTable({sampleRow(7, longSubject, 42), scanned});
  const auto ls = lines(t);
  BOOST_REQUIRE(ls.size() == 3u);
  BOOST_TEST(ls[0].rfind("  ID  TIME (UTC)            GATEWAY", 0) == 0u);
  BOOST_TEST(ls[1].rfind("   7  2026-11-28T00:00:00Z  gateway-v", 0) == 0u);
  BOOST_TEST(contains(ls[1], "INBOX/42"));
  BOOST_TEST(contains(ls[1], std::string(31, 's') + "\xe2\x80\xa6"));
  BOOST_TEST(!contains(ls[1], std::string(32, 's')));
  BOOST_TEST(contains(ls[2], "?]0;pwned?"));
  BOOST_TEST(!contains(t, "\x1b"));
  // Columns line up on screen: VERDICT starts in the same column on every line.
  const auto col = column(ls[0], "VERDICT");
  BOOST_TEST(column(ls[1], "infected") == col);
  BOOST_TEST(column(ls[2], "infected") == col);
  // An answer from the verdict cache: "yes" in CACHED, right after VERDICT; a scan: "-".
  BOOST_TEST(contains(ls[0], "VERDICT   CACHED  THREATS"));
  BOOST_TEST(contains(ls[1], "infected  yes     threats-v"));
  BOOST_TEST(contains(ls[2], "infected  -       threats-v"));
  // No rows: the header alone.
  BOOST_TEST(lines(renderEventsTable({})).size() == 1u);
}

BOOST_AUTO_TEST_CASE(follow_rows_have_fixed_widths) {
  const auto a = renderFixedRow(eventTableCells(sampleRow(1, "short", 1)));
  const auto b = renderFixedRow(eventTableCells(sampleRow(99999, std::string(80, 'x'), 123456)));
  BOOST_TEST(column(a, "infected") == column(b, "infected"));
  BOOST_TEST(column(followTableHeader(), "VERDICT") == column(a, "infected"));
  BOOST_TEST(column(followTableHeader(), "CACHED") == column(a, "yes"));
  BOOST_TEST(column(followTableHeader(), "THREATS") == column(a, "threats-v"));
}

BOOST_AUTO_TEST_CASE(show_record_has_every_field) {
  const auto t = renderRecord(sampleRow(3, "hello", std::nullopt));
  const auto ls = lines(t);
  BOOST_REQUIRE(ls.size() == eventColumns().size() + 1);
  BOOST_TEST(ls[1] == "id                 3");
  BOOST_TEST(contains(t, "\nuid                NULL\n"));
  BOOST_TEST(contains(t, "\nsignature_version  signature_version-v\n"));
  BOOST_TEST(contains(t, "\ncached             7\n"));
}

namespace {

// Two signature versions (a reload at 00:40:00), some answers from the verdict cache.
std::vector<StatsRow> versionRows() {
  const std::int64_t t0 = 1795824000LL * kUsPerSecond;
  std::vector<StatsRow> rows;
  rows.emplace_back("total", "", 8);
  rows.back().cached = 3;
  rows.emplace_back("verdict", "clean", 8);
  for (const auto& [version, count, cached, infected, errors, first, last] :
       {std::tuple{"27400-09f1fd9d03f0", 5, 1, 1, 0, t0 + 5, t0 + 2399 * kUsPerSecond + 999999},
        std::tuple{"27401-ec262d56afb8", 3, 2, 0, 1, t0 + 2400 * kUsPerSecond, t0 + 3599 * kUsPerSecond}}) {
    StatsRow& r = rows.emplace_back("signature_version", version, count, infected, errors);
    r.cached = cached;
    r.firstUs = first;
    r.lastUs = last;
  }
  rows.emplace_back("hour", "2026-11-28T00:00:00Z", 8, 1, 1);
  return rows;
}

}  // namespace

BOOST_AUTO_TEST_CASE(stats_by_signature_version) {
  StatsRange range{1795824000LL * kUsPerSecond, 1795824000LL * kUsPerSecond + 3600 * kUsPerSecond,
                   Bucket::kHour, 10};
  const auto rows = versionRows();
  const auto table = renderStats(range, rows, Format::kTable);
  BOOST_TEST(table.rfind("Scan events 2026-11-28T00:00:00Z .. 2026-11-28T01:00:00Z: 8\n"
                         "Answered from the verdict cache: 3 (37.5%)\n\n", 0) == 0u, table);
  BOOST_TEST(contains(table,
                      "\nBy signature version\n"
                      "  SIGNATURE VERSION   COUNT  CACHED  INFECTED  ERRORS  FIRST SEEN            LAST SEEN\n"
                      "  27400-09f1fd9d03f0      5       1         1       0  2026-11-28T00:00:00Z  2026-11-28T00:39:59Z\n"
                      "  27401-ec262d56afb8      3       2         0       1  2026-11-28T00:40:00Z  2026-11-28T00:59:59Z\n"
                      "\nBy hour (UTC)\n"),
             table);

  const auto json = lines(renderStats(range, rows, Format::kJson));
  BOOST_REQUIRE(json.size() == 6u);
  BOOST_TEST(json[1] == "{\"section\":\"total\",\"key\":\"\",\"count\":8,\"cached\":3}");
  BOOST_TEST(json[3] == "{\"section\":\"signature_version\",\"key\":\"27400-09f1fd9d03f0\",\"count\":5,\"cached\":1,"
                        "\"infected\":1,\"errors\":0,\"first_seen\":\"2026-11-28T00:00:00Z\",\"last_seen\":\"2026-11-28T00:39:59Z\"}");
  BOOST_TEST(json[4] == "{\"section\":\"signature_version\",\"key\":\"27401-ec262d56afb8\",\"count\":3,\"cached\":2,"
                        "\"infected\":0,\"errors\":1,\"first_seen\":\"2026-11-28T00:40:00Z\",\"last_seen\":\"2026-11-28T00:59:59Z\"}");

  const auto csv = lines(renderStats(range, rows, Format::kCsv));
  BOOST_REQUIRE(csv.size() == 7u);
  BOOST_TEST(csv[0] == "section,key,count,infected,errors,cached,first_seen,last_seen");
  BOOST_TEST(csv[2] == "total,,8,,,3,,");
  BOOST_TEST(csv[4] == "signature_version,27400-09f1fd9d03f0,5,1,0,1,2026-11-28T00:00:00Z,2026-11-28T00:39:59Z");
  BOOST_TEST(csv[5] == "signature_version,27401-ec262d56afb8,3,0,1,2,2026-11-28T00:40:00Z,2026-11-28T00:59:59Z");

  // An empty range: no share of nothing, and the section says so.
  std::vector<StatsRow> none;
  none.emplace_back("total", "", 0);
  none.back().cached = 0;
  const auto empty = renderStats(range, none, Format::kTable);
  BOOST_TEST(contains(empty, ": 0\nAnswered from the verdict cache: 0\n\n"));
  BOOST_TEST(contains(empty, "\nBy signature version\n  (none)\n"));
}

BOOST_AUTO_TEST_CASE(stats_formats) {
  StatsRange range{1795824000LL * kUsPerSecond, 1795824000LL * kUsPerSecond + 3600 * kUsPerSecond,
                   Bucket::kHour, 10};
  const std::vector<StatsRow> rows = {{"total", "", 3, {}, {}},
                                      {"verdict", "clean", 3, {}, {}},
                                      {"unscanned", "", 1, {}, {}},
                                      {"gateway", "g\"1", 3, 1, 0},
                                      {"hour", "2026-11-28T00:00:00Z", 3, 1, 0}};
  const auto json = lines(renderStats(range, rows, Format::kJson));
  BOOST_REQUIRE(json.size() == 6u);
  BOOST_TEST(json[0] == "{\"section\":\"range\",\"since\":\"2026-11-28T00:00:00Z\",\"until\":\"2026-11-28T01:00:00Z\"}");
  BOOST_TEST(json[2] == "{\"section\":\"verdict\",\"key\":\"clean\",\"count\":3}");
  BOOST_TEST(json[4] == "{\"section\":\"gateway\",\"key\":\"g\\\"1\",\"count\":3,\"infected\":1,\"errors\":0}");

  const auto csv = lines(renderStats(range, rows, Format::kCsv));
  BOOST_REQUIRE(csv.size() == 7u);
  BOOST_TEST(csv[0] == "section,key,count,infected,errors,cached,first_seen,last_seen");
  BOOST_TEST(csv[1] == "range,2026-11-28T00:00:00Z/2026-11-28T01:00:00Z,,,,,,");
  BOOST_TEST(csv[3] == "verdict,clean,3,,,,,");
  BOOST_TEST(csv[5] == "gateway,\"g\"\"1\",3,1,0,,,");

  const auto table = renderStats(range, rows, Format::kTable);
  BOOST_TEST(contains(table, "Scan events 2026-11-28T00:00:00Z .. 2026-11-28T01:00:00Z: 3\n"));
  BOOST_TEST(contains(table, "\nBy verdict\n  VERDICT  COUNT\n  clean        3\n"));
  BOOST_TEST(contains(table, "\nTop threats\n  (none)\n"));
  BOOST_TEST(contains(table, "\nPassed unscanned, by reason\n  ERROR CLASS  COUNT\n  -                1\n"));
  BOOST_TEST(contains(table, "  GATEWAY  COUNT  INFECTED  ERRORS\n  g\"1          3         1       0\n"));
  BOOST_TEST(contains(table, "By hour (UTC)"));
  BOOST_TEST(!contains(table, "By day"));
}

BOOST_AUTO_TEST_SUITE_END()
