#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>

#include "tools/log/cli.hpp"

using namespace imapav::logtool;
namespace data = boost::unit_test::data;

namespace {

std::vector<std::string> split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

imapav::Result<Options> parse(const std::string& line) { return parseArgs(split(line), "/default.sqlite"); }

}  // namespace

BOOST_AUTO_TEST_SUITE(command_line)

BOOST_AUTO_TEST_CASE(events_defaults_and_filters) {
  auto r = parse("events");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((r.value().command == Command::kEvents));
  BOOST_TEST(r.value().db == "/default.sqlite");
  BOOST_TEST(r.value().limit == 50);
  BOOST_TEST(!r.value().format.has_value());

  r = parse("--db /x.sqlite events --verdict infected --threat Eicar* --since 2h --until=2026-11-28 "
            "--recipient a@b --user u --sender s --gateway g --mailbox m --message-id <id> "
            "--error-class too_large --action replace --limit 0 --format csv");
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().text));
  const Options& o = r.value();
  BOOST_TEST(o.db == "/x.sqlite");
  BOOST_TEST(o.limit == 0);
  BOOST_TEST((o.format == Format::kCsv));
  BOOST_TEST((o.filters.verdict == std::optional<std::string>("infected")));
  BOOST_TEST((o.filters.threat == std::optional<std::string>("Eicar*")));
  BOOST_TEST((o.filters.messageId == std::optional<std::string>("<id>")));
  BOOST_TEST((o.filters.errorClass == std::optional<std::string>("too_large")));
  BOOST_TEST((o.filters.since->kind == TimeSpec::Kind::kRelative));
  BOOST_TEST((o.filters.until->civil == CivilTime{2026, 11, 28, 0, 0, 0, 0}));
  BOOST_TEST(!o.filters.cached.has_value());
  BOOST_TEST(!o.filters.signatureVersion.has_value());
  // --db may also follow the command.
  BOOST_TEST(parse("events --db /y").value().db == "/y");
}

BOOST_AUTO_TEST_CASE(cache_and_signature_filters) {
  auto r = parse("events --cached yes --signature-version 27400-09f1fd9d03f0");
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().text));
  BOOST_TEST((r.value().filters.cached == std::optional<bool>(true)));
  BOOST_TEST((r.value().filters.signatureVersion == std::optional<std::string>("27400-09f1fd9d03f0")));
  r = parse("follow --cached=no");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((r.value().filters.cached == std::optional<bool>(false)));
  // An empty version is a value too: the rows no engine answered.
  r = parseArgs({"events", "--signature-version", ""}, "/d");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((r.value().filters.signatureVersion == std::optional<std::string>("")));
  r = parse("events --cached maybe");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().text == "bad value for --cached: 'maybe': expected yes or no");
}

BOOST_AUTO_TEST_CASE(times_with_a_space_are_one_argument) {
  const auto r = parseArgs({"events", "--since", "2026-11-28 10:00:00"}, "/d");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((r.value().filters.since->civil == CivilTime{2026, 11, 28, 10, 0, 0, 0}));
}

BOOST_AUTO_TEST_CASE(other_commands) {
  auto r = parse("show 42 --format json");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((r.value().command == Command::kShow));
  BOOST_TEST(r.value().id == 42);
  BOOST_TEST((r.value().format == Format::kJson));

  r = parse("stats --since 7d --by day --top 3");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((r.value().by == Bucket::kDay));
  BOOST_TEST(r.value().top == 3);

  r = parse("follow --verdict infected --interval 250ms");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r.value().intervalUs == 250000);

  r = parse("prune --older-than 30d --dry-run");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r.value().olderThanUs == 30 * 86400 * kUsPerSecond);
  BOOST_TEST(r.value().dryRun);
}

BOOST_AUTO_TEST_CASE(help) {
  for (const char* line : {"--help", "-h", "events --help", "stats -h", "--help prune", "show --help"}) {
    const auto r = parse(line);
    BOOST_TEST_INFO(line);
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(r.value().help);
  }
  BOOST_TEST(!parse("--help").value().command.has_value());
  BOOST_TEST(helpText(std::nullopt).find("Usage: imapav-log [--db PATH] COMMAND") == 0u);
  BOOST_TEST(helpText(Command::kEvents).find("--threat GLOB") != std::string::npos);
  BOOST_TEST(helpText(Command::kEvents).find("--cached yes|no") != std::string::npos);
  BOOST_TEST(helpText(Command::kFollow).find("--signature-version V") != std::string::npos);
  BOOST_TEST(helpText(Command::kStats).find("per signature version") != std::string::npos);
  BOOST_TEST(helpText(Command::kPrune).find("--older-than AGE") != std::string::npos);
}

BOOST_DATA_TEST_CASE(usage_errors,
                     data::make({"", "bogus", "events --bogus", "events -x", "events --verdict maybe",
                                 "events --limit -1", "events --limit ten", "events --limit",
                                 "events --since yesterday", "events --until 2026-02-30",
                                 "events --format xml", "events extra", "events --threat=",
                                 "show", "show abc", "show 0", "show 1 2", "show 1 --verdict clean",
                                 "stats --verdict infected", "stats --by week", "stats --top 0",
                                 "stats --limit 5", "follow --interval 0s", "follow --interval soon",
                                 "follow --limit 5", "prune", "prune --older-than 2026-01-01",
                                 "prune --older-than 30d --format json", "prune --dry-run",
                                 "events --dry-run=yes", "--db", "events --db=",
                                 "events --cached", "events --cached 1", "events --cached YES",
                                 "stats --cached yes", "stats --signature-version v",
                                 "show 1 --cached yes", "prune --older-than 1d --signature-version v"}),
                     line) {
  const auto r = parse(line);
  BOOST_TEST(!r.ok());
  if (!r.ok()) {
    BOOST_TEST(r.error().code == 2);
    BOOST_TEST(!r.error().text.empty());
  }
}

BOOST_AUTO_TEST_SUITE_END()
