// Fault injection through the whole chain: the ICAP server killed mid-scan or answering
// garbage, the mail server dying or stalling mid-literal, clients vanishing mid-download
// or mid-APPEND, a client trickling bytes. In every case: no crash, no hang, the client
// gets a well-formed IMAP stream or a clean disconnect, the fail mode applies, and the
// event is counted.

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <regex>
#include <thread>

#include "tests/integration/redirector/redirector_fixture.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;
namespace data = boost::unit_test::data;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Every message the client got is the local drop notice, with the size it was told.
void checkDropped(const std::string& dir, const CommandResult& r, int count) {
  const auto sizes = sizesOf(r.output);
  for (int uid = 1; uid <= count; ++uid) {
    BOOST_TEST_CONTEXT("uid " << uid) {
      const auto got = readFile(dir + "/" + std::to_string(uid) + ".eml");
      BOOST_TEST(contains(got, "X-Imapav-Status: dropped"));
      BOOST_TEST(contains(got, "could not have this message checked"));
      BOOST_TEST(!contains(got, "EICAR"));
      BOOST_TEST((sizes.count(uid) == 1u && sizes.at(uid) == got.size()));
    }
  }
}

std::string metricsListen(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

}  // namespace

BOOST_AUTO_TEST_SUITE(faults)

BOOST_AUTO_TEST_CASE(an_icap_server_killed_mid_scan_gives_the_local_fail_mode) {
  const auto iport = freePort();
  const auto rport = freePort();
  // A message large enough that its scan is still running when the server is killed.
  RedirectorFixture f({bigMessage(40u << 20, 7), cleanMessage("small", 300)},
                      {{"fail_mode", "drop"}, {"icap.timeout", "30"}, {"metrics.listen", metricsListen(rport)},
                       {"scan.spill_threshold", "1M"}},
                      false, {{"metrics.listen", metricsListen(iport)}, {"icap.max_body_size", "100M"}});
  TempDir out;
  CommandResult r;
  std::thread client([&] { r = f.fetchAll(f.port(), out.path()); });
  bool scanning = false;
  for (int i = 0; i < 1500 && !scanning; ++i) {
    const auto s = scrape(iport);
    scanning = s.has("imapav_icapd_scans_in_progress") && s.samples.at("imapav_icapd_scans_in_progress") == 1;
    if (!scanning) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(scanning);
  f.icapd.kill();
  client.join();
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
  checkDropped(out.path(), r, 2);  // the killed scan, then the next one with no server
  const auto s = scrape(rport);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"failed_dropped\"}") == 2);
  BOOST_TEST(s.value("imapav_redirector_icap_up{server=\"127.0.0.1:" + std::to_string(f.icapd.port()) + "\"}") == 0);
}

BOOST_DATA_TEST_CASE(an_icap_server_answering_garbage_gives_the_local_fail_mode,
                     data::make({"garbage", "truncated", "close"}), mode) {
  SlowIcap broken("0", mode);
  const auto rport = freePort();
  const std::vector<std::string> messages = {cleanMessage("one", 300), infectedMessage("bad")};
  {
    RedirectorFixture f(messages,
                        {{"icap.servers", broken.url()}, {"fail_mode", "drop"}, {"metrics.listen", metricsListen(rport)}});
    TempDir out;
    const auto r = f.fetchAll(f.port(), out.path());
    BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
    checkDropped(out.path(), r, 2);
    BOOST_TEST(scrape(rport).value("imapav_redirector_messages_total{outcome=\"failed_dropped\"}") == 2);
    BOOST_TEST(f.stop() == 0);
  }
  // fail_mode = pass: the originals, byte for byte, counted as passed unscanned.
  RedirectorFixture f(messages,
                      {{"icap.servers", broken.url()}, {"fail_mode", "pass"}, {"metrics.listen", metricsListen(rport)}});
  TempDir out;
  const auto r = f.fetchAll(f.port(), out.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
  for (std::size_t i = 0; i < messages.size(); ++i)
    BOOST_TEST(readFile(out.file(std::to_string(i + 1) + ".eml")) == messages[i]);
  BOOST_TEST(scrape(rport).value("imapav_redirector_messages_total{outcome=\"failed_passed\"}") == 2);
  BOOST_TEST(contains(f.log(), "outcome=unscanned-failed"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(upstream_faults)

BOOST_DATA_TEST_CASE(the_mail_server_failing_mid_literal_never_truncates_one, data::make({"die", "stall"}), mode) {
  const auto fakePort = freePort();
  TempDir logs;
  ChildProcess fake({"/usr/bin/python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/fake_imap.py",
                     "--port", std::to_string(fakePort), "--mode", mode},
                    logs.file("fake_imap.log"));
  BOOST_REQUIRE(waitForPort(fakePort, 10s));
  const auto rport = freePort();
  RedirectorFixture f({cleanMessage()}, {{"upstream.address", "127.0.0.1:" + std::to_string(fakePort)},
                                         {"metrics.listen", "127.0.0.1:" + std::to_string(rport)},
                                         {"upstream.timeout", "2s"}});
  for (int round = 0; round < 2; ++round) {  // the second session shows the redirector still serves
    const auto r = runCommand({"/usr/bin/python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/raw_fetch.py",
                               "--port", std::to_string(f.port()), "--timeout", "30"},
                              60s);
    BOOST_TEST_MESSAGE(r.output);
    BOOST_REQUIRE(r.exitCode == 0);
    BOOST_TEST(contains(r.output, "\"closed\": true"));       // a clean disconnect, no hang
    BOOST_TEST(contains(r.output, "\"literals\": []"));        // nothing of the half literal
    BOOST_TEST(contains(r.output, "* BYE [UNAVAILABLE] imapav: the mail server"));  // and why
    BOOST_TEST(!contains(r.output, "a3 OK"));
  }
  const auto s = scrape(rport);
  const std::string reason = std::string(mode) == "die" ? "server" : "upstream_unavailable";
  BOOST_TEST(s.value("imapav_redirector_sessions_closed_total{reason=\"" + reason + "\"}") == 2);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"clean\"}") == 0);
  BOOST_TEST(f.stop() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(client_faults)

namespace {
CommandResult misbehave(std::uint16_t port, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/misbehaving_client.py",
                                   "--port", std::to_string(port), "--password", DovecotFixture::kPassword};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, 60s);
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_client_trickling_a_command_is_cut_at_the_line_timeout_and_others_are_served) {
  const auto rport = freePort();
  const std::vector<std::string> messages = {cleanMessage("one", 300), infectedMessage("bad")};
  RedirectorFixture f(messages, {{"imap.line_timeout", "2s"}, {"metrics.listen", metricsListen(rport)}});
  CommandResult trickle;
  std::thread slow([&] { trickle = misbehave(f.port(), {"--mode", "trickle", "--interval", "0.5", "--timeout", "20"}); });
  // Meanwhile a normal client is served in full.
  TempDir out;
  const auto r = f.fetchAll(f.port(), out.path());
  slow.join();
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  BOOST_TEST(readFile(out.file("1.eml")) == messages[0]);
  BOOST_TEST_MESSAGE(trickle.output);
  BOOST_TEST(contains(trickle.output, "\"closed\": true"));
  BOOST_TEST(contains(trickle.output, "* BYE [ALERT] command line not completed in time"));
  const auto seconds = std::stod(trickle.output.substr(trickle.output.find("\"seconds\": ") + 11));
  BOOST_TEST(seconds >= 2.0);
  BOOST_TEST(seconds < 8.0);  // 2 s and the next tick, not the 35 min idle timeout
  BOOST_TEST(scrape(rport).value("imapav_redirector_sessions_closed_total{reason=\"line_timeout\"}") == 1);
}

BOOST_AUTO_TEST_CASE(clients_vanishing_mid_download_or_mid_append_leave_nothing_behind) {
  const auto rport = freePort();
  TempDir spill;
  const std::vector<std::string> messages = {bigMessage(3u << 20, 3), cleanMessage("two", 300)};
  RedirectorFixture f(messages, {{"scan.spill_threshold", "256k"}, {"scan.spill_dir", spill.path()},
                                 {"metrics.listen", metricsListen(rport)}});
  // Gone after 64 KB of the 3 MB literal (delivery from a spill file in progress), and
  // gone a tenth into an APPEND literal.
  for (int i = 0; i < 3; ++i) {
    const auto d = misbehave(f.port(), {"--mode", "vanish-download", "--bytes", "65536"});
    BOOST_TEST(d.exitCode == 0, d.output);
    const auto a = misbehave(f.port(), {"--mode", "vanish-append", "--bytes", "100000"});
    BOOST_TEST(a.exitCode == 0, a.output);
  }
  // The redirector still serves, whole and unchanged; the half APPENDs were not stored.
  TempDir out;
  const auto r = f.fetchAll(f.port(), out.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
  BOOST_TEST(contains(r.output, "\"uids\": [1, 2]"), r.output);
  BOOST_TEST(readFile(out.file("1.eml")) == messages[0]);
  auto s = scrape(rport);
  for (int i = 0; i < 50 && s.value("imapav_redirector_sessions_active") != 0; ++i) {
    std::this_thread::sleep_for(100ms);
    s = scrape(rport);
  }
  BOOST_TEST(s.value("imapav_redirector_sessions_active") == 0);
  BOOST_TEST(s.value("imapav_redirector_sessions_closed_total{reason=\"client\"}") >= 6);
  BOOST_TEST(s.value("imapav_redirector_sessions_closed_total{reason=\"other\"}") == 0);
  BOOST_TEST(s.value("imapav_redirector_scans_in_progress") == 0);
  BOOST_TEST(std::filesystem::is_empty(spill.path()));  // spill files are unlinked from the start
  BOOST_TEST(f.stop() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(limits)

BOOST_DATA_TEST_CASE(a_message_over_the_size_limit_follows_the_fail_mode, data::make({"drop", "pass"}), mode) {
  const auto rport = freePort();
  const std::vector<std::string> messages = {bigMessage(300000, 5), cleanMessage("small", 300)};
  RedirectorFixture f(messages, {{"scan.max_message_size", "100k"}, {"fail_mode", mode},
                                 {"metrics.listen", metricsListen(rport)}});
  TempDir out;
  const auto r = f.fetchAll(f.port(), out.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
  const auto sizes = sizesOf(r.output);
  const auto big = readFile(out.file("1.eml"));
  BOOST_TEST((sizes.count(1) == 1u && sizes.at(1) == big.size()));
  BOOST_TEST(readFile(out.file("2.eml")) == messages[1]);
  const auto s = scrape(rport);
  if (std::string(mode) == "drop") {
    BOOST_TEST(contains(big, "X-Imapav-Reason: too large to scan (scan.max_message_size)"));
    BOOST_TEST(big.size() < 10000u);
    BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"failed_dropped\"}") == 1);
    BOOST_TEST(s.value("imapav_redirector_unscanned_total{reason=\"too_large\"}") == 0);
  } else {
    BOOST_TEST(big == messages[0]);
    BOOST_TEST(s.value("imapav_redirector_unscanned_total{reason=\"too_large\"}") == 1);
    BOOST_TEST(contains(f.log(), "UNSCANNED message of"));
  }
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"clean\"}") == 1);
}

BOOST_AUTO_TEST_CASE(an_icap_body_over_the_servers_limit_is_refused_for_that_message_only) {
  const auto rport = freePort();
  const std::vector<std::string> messages = {bigMessage(300000, 6), cleanMessage("small", 300)};
  RedirectorFixture f(messages, {{"fail_mode", "drop"}, {"metrics.listen", metricsListen(rport)}}, false,
                      {{"icap.max_body_size", "100k"}});
  TempDir out;
  const auto r = f.fetchAll(f.port(), out.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
  BOOST_TEST(contains(readFile(out.file("1.eml")), "X-Imapav-Status: dropped"));
  BOOST_TEST(contains(f.log(), "ICAP status 413"));  // 413: the fail mode
  BOOST_TEST(readFile(out.file("2.eml")) == messages[1]);  // and the server still scans the next one
  const auto s = scrape(rport);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"clean\"}") == 1);
  BOOST_TEST(s.value("imapav_redirector_icap_up{server=\"127.0.0.1:" + std::to_string(f.icapd.port()) + "\"}") == 1);
}

BOOST_AUTO_TEST_SUITE_END()
