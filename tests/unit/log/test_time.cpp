#include <stdlib.h>
#include <time.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "tools/log/log_query.hpp"

using namespace imapav::logtool;
namespace data = boost::unit_test::data;

namespace {

constexpr std::int64_t k20261128 = 1795824000LL * kUsPerSecond;  // 2026-11-28T00:00:00Z

TimeSpec utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0, int us = 0) {
  TimeSpec t;
  t.kind = TimeSpec::Kind::kUtc;
  t.civil = CivilTime{y, mo, d, h, mi, s, us};
  return t;
}

// Sets TZ for one test and restores it.
struct ScopedTz {
  explicit ScopedTz(const char* tz) {
    if (const char* old = ::getenv("TZ")) old_ = old, had_ = true;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTz() {
    if (had_) ::setenv("TZ", old_.c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
  }
  std::string old_;
  bool had_ = false;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(time_parsing)

BOOST_AUTO_TEST_CASE(durations) {
  BOOST_TEST(parseDurationUs("45s").value() == 45 * kUsPerSecond);
  BOOST_TEST(parseDurationUs("30m").value() == 1800 * kUsPerSecond);
  BOOST_TEST(parseDurationUs("2h").value() == 7200 * kUsPerSecond);
  BOOST_TEST(parseDurationUs("7d").value() == 7 * 86400 * kUsPerSecond);
  BOOST_TEST(parseDurationUs("0s").value() == 0);
  BOOST_TEST(parseDurationUs("500ms", true).value() == 500000);
  BOOST_TEST(!parseDurationUs("500ms").ok());  // only --interval takes milliseconds
  for (const char* bad : {"", "s", "10", "10x", "-5m", "1.5h", "10 m", "99999999999999999999d",
                          "9999999999999d"}) {
    const auto r = parseDurationUs(bad);
    BOOST_TEST_INFO("input: '" << bad << "'");
    BOOST_TEST(!r.ok());
    if (!r.ok()) BOOST_TEST(r.error().code == 2);
  }
}

BOOST_AUTO_TEST_CASE(absolute_forms) {
  BOOST_TEST((parseTime("2026-11-28T10:00:00Z").value() == utc(2026, 11, 28, 10)));
  BOOST_TEST((parseTime("2026-11-28T10:00Z").value() == utc(2026, 11, 28, 10)));
  BOOST_TEST((parseTime("2026-11-28Z").value() == utc(2026, 11, 28)));
  BOOST_TEST((parseTime("2026-11-28T10:00:00.5Z").value() == utc(2026, 11, 28, 10, 0, 0, 500000)));
  // time_iso as stored reads back.
  BOOST_TEST((parseTime("2026-11-28T10:00:01.000042Z").value() == utc(2026, 11, 28, 10, 0, 1, 42)));
  const auto local = parseTime("2026-11-28 10:00:00").value();
  BOOST_TEST((local.kind == TimeSpec::Kind::kLocal));
  BOOST_TEST((local.civil == CivilTime{2026, 11, 28, 10, 0, 0, 0}));
  BOOST_TEST((parseTime("2026-11-28T10:00").value().civil == CivilTime{2026, 11, 28, 10, 0, 0, 0}));
  BOOST_TEST((parseTime("2026-11-28").value().civil == CivilTime{2026, 11, 28, 0, 0, 0, 0}));
  BOOST_TEST((parseTime("2024-02-29").value().civil.day == 29));  // leap year
}

BOOST_AUTO_TEST_CASE(relative_forms) {
  const auto t = parseTime("2h").value();
  BOOST_TEST((t.kind == TimeSpec::Kind::kRelative));
  BOOST_TEST(t.agoUs == 7200 * kUsPerSecond);
  BOOST_TEST(resolveTime(t, k20261128) == k20261128 - 7200 * kUsPerSecond);
}

BOOST_DATA_TEST_CASE(bad_times_are_usage_errors,
                     data::make({"", "yesterday", "2026-13-01", "2026-00-10", "2026-02-29",
                                 "2026-11-31", "2026-11-28T24:00", "2026-11-28T10:60",
                                 "2026-11-28T10:00:61", "2026-11-28T10", "2026-11-28T10:00:00+01:00",
                                 "2026-11-28X", "26-11-28", "2026-1-28", "2026-11-28T10:00:00.Z",
                                 "1969-12-31", "2026-11-28ZZ", "10:00", "-2h"}),
                     input) {
  const auto r = parseTime(input);
  BOOST_TEST(!r.ok());
  if (!r.ok()) {
    BOOST_TEST(r.error().code == 2);
    BOOST_TEST(!r.error().text.empty());
  }
}

BOOST_AUTO_TEST_CASE(utc_conversion_round_trips) {
  BOOST_TEST(utcToUnixUs(CivilTime{1970, 1, 1, 0, 0, 0, 0}) == 0);
  BOOST_TEST(utcToUnixUs(CivilTime{2026, 11, 28, 0, 0, 0, 0}) == k20261128);
  BOOST_TEST(resolveTime(utc(2026, 11, 28, 10, 0, 0, 7), 0) == k20261128 + 36000 * kUsPerSecond + 7);
  BOOST_TEST(formatUtc(k20261128 + 36000 * kUsPerSecond + 999999) == "2026-11-28T10:00:00Z");
  BOOST_TEST(formatUtc(utcToUnixUs(CivilTime{2024, 2, 29, 23, 59, 59, 0})) == "2024-02-29T23:59:59Z");
  for (std::int64_t us : {std::int64_t{0}, k20261128, std::int64_t{951782400} * kUsPerSecond + 123,
                          std::int64_t{4102444799} * kUsPerSecond}) {
    BOOST_TEST(utcToUnixUs(unixUsToUtc(us)) == us);
  }
}

BOOST_AUTO_TEST_CASE(local_times_follow_tz) {
  {
    ScopedTz tz("UTC0");
    BOOST_TEST(resolveTime(parseTime("2026-11-28T10:00").value(), 0) == k20261128 + 36000 * kUsPerSecond);
  }
  {
    ScopedTz tz("CET-1");  // POSIX form: needs no zoneinfo
    BOOST_TEST(resolveTime(parseTime("2026-11-28 10:00:00").value(), 0) == k20261128 + 32400 * kUsPerSecond);
    // "Z" is UTC whatever TZ says.
    BOOST_TEST(resolveTime(parseTime("2026-11-28T10:00:00Z").value(), 0) == k20261128 + 36000 * kUsPerSecond);
  }
}

BOOST_AUTO_TEST_SUITE_END()
