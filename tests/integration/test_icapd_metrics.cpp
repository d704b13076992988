// imapav-icapd's /metrics scraped by curl while real ICAP traffic runs: every counter the
// traffic should move moves by exactly what was sent, and promtool accepts the text.

#include <boost/test/unit_test.hpp>
#include <thread>

#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

const std::string kOptions = "OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n";

// Polls until the sample reaches want (the event log writes in batches); the last scrape.
Scrape scrapeUntil(std::uint16_t port, const std::string& key, double want) {
  Scrape s;
  for (int i = 0; i < 100; ++i) {
    s = scrape(port);
    if (s.has(key) && s.samples.at(key) >= want) break;
    std::this_thread::sleep_for(100ms);
  }
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(icapd_metrics)

BOOST_AUTO_TEST_CASE(counters_follow_real_icap_traffic) {
  const auto mport = freePort();
  IcapdFixture f({{"metrics.listen", "127.0.0.1:" + std::to_string(mport)},
                  {"scan.max_file_size", "64k"},
                  {"scan.max_scan_size", "64k"},
                  {"policy.fail_mode", "drop"}});
  BOOST_TEST(f.log().find("metrics on http://127.0.0.1:" + std::to_string(mport) + "/metrics") != std::string::npos);
  const auto before = scrape(mport);
  BOOST_REQUIRE(before.status == 200);
  BOOST_TEST(before.contentType == "text/plain; version=0.0.4; charset=utf-8");
  BOOST_TEST(promtoolProblems(before.body) == "");

  // OPTIONS, then clean (204), infected (replaced), too large (an error, dropped by policy),
  // and a request for a service that does not exist (404).
  std::string istag;
  {
    IcapConnection c(f.port());
    BOOST_REQUIRE(c.send(kOptions));
    auto r = c.read();
    BOOST_REQUIRE(r);
    istag = *r->header("ISTag");
  }
  const auto clean = cleanMessage("hi", 2000);
  const auto infected = infectedMessage();
  const auto big = cleanMessage("too big", 100000);
  RespmodRequest rq;
  rq.message = clean;
  BOOST_TEST(f.exchange(rq).head.status == 204);
  rq.message = infected;
  BOOST_TEST(f.exchange(rq).head.status == 200);
  rq.message = big;
  auto bigAnswer = f.exchange(rq);
  BOOST_TEST(bigAnswer.head.status == 200);
  BOOST_TEST(*bigAnswer.header("X-Imapav-Error") == "too_large");
  rq.message = clean;
  rq.service = "nosuch";
  BOOST_TEST(f.exchange(rq).head.status == 404);

  const auto after = scrapeUntil(mport, "imapav_icapd_event_log_written_total{kind=\"scan\"}", 3);
  BOOST_TEST(promtoolProblems(after.body) == "");
  const auto delta = [&](const std::string& key) { return after.value(key) - before.value(key); };
  BOOST_TEST(delta("imapav_icapd_requests_total{method=\"OPTIONS\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_requests_total{method=\"RESPMOD\"}") == 4);  // the 404 one included
  BOOST_TEST(delta("imapav_icapd_requests_total{method=\"REQMOD\"}") == 0);
  BOOST_TEST(delta("imapav_icapd_responses_total{status=\"204\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_responses_total{status=\"200\"}") == 3);  // OPTIONS, infected, too large
  BOOST_TEST(delta("imapav_icapd_responses_total{status=\"404\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_scans_total{verdict=\"clean\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_scans_total{verdict=\"infected\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_scans_total{verdict=\"error\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_actions_total{action=\"pass\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_actions_total{action=\"replace\"}") == 2);
  BOOST_TEST(delta("imapav_icapd_actions_total{action=\"pass-unscanned\"}") == 0);
  BOOST_TEST(delta("imapav_icapd_scan_errors_total{class=\"too_large\"}") == 1);
  BOOST_TEST(delta("imapav_icapd_scan_errors_total{class=\"timeout\"}") == 0);
  const double bytes = static_cast<double>(clean.size() + infected.size() + big.size());
  BOOST_TEST(delta("imapav_icapd_scanned_bytes_total") == bytes);
  BOOST_TEST(delta("imapav_icapd_message_size_bytes_sum") == bytes);
  BOOST_TEST(delta("imapav_icapd_message_size_bytes_count") == 3);
  BOOST_TEST(delta("imapav_icapd_message_size_bytes_bucket{le=\"4096\"}") == 2);  // clean and infected
  BOOST_TEST(delta("imapav_icapd_message_size_bytes_bucket{le=\"65536\"}") == 2);
  BOOST_TEST(delta("imapav_icapd_message_size_bytes_bucket{le=\"262144\"}") == 3);
  BOOST_TEST(delta("imapav_icapd_scan_duration_seconds_count") == 3);
  BOOST_TEST(delta("imapav_icapd_scan_duration_seconds_sum") > 0);
  BOOST_TEST(delta("imapav_icapd_connections_total") == 5);
  BOOST_TEST(after.value("imapav_icapd_scans_in_progress") == 0);
  BOOST_TEST(after.value("imapav_icapd_event_log_enabled") == 1);
  BOOST_TEST(delta("imapav_icapd_event_log_written_total{kind=\"scan\"}") == 3);
  BOOST_TEST(after.value("imapav_icapd_event_log_failed_total{kind=\"scan\"}") == 0);
  BOOST_TEST(after.value("imapav_icapd_event_log_queue_depth") == 0);
  BOOST_TEST(after.value("imapav_icapd_signatures") > 0);
  BOOST_TEST(after.value("imapav_icapd_scan_slots") > 0);
  // The engine the answers name: the same ISTag as OPTIONS, without its quotes.
  bool engineFound = false;
  for (const auto& [key, value] : after.samples) {
    if (key.rfind("imapav_icapd_engine_info{", 0) != 0) continue;
    engineFound = true;
    BOOST_TEST(value == 1);
    BOOST_TEST(key.find("istag=\"" + istag.substr(1, istag.size() - 2) + "\"") != std::string::npos, key);
    BOOST_TEST(key.find("engine=\"ClamAV ") != std::string::npos, key);
  }
  BOOST_TEST(engineFound);
  BOOST_TEST(after.value("process_open_fds") > 0);
}

BOOST_AUTO_TEST_CASE(open_connections_and_refusals_at_the_limit_are_counted) {
  const auto mport = freePort();
  IcapdFixture f({{"metrics.listen", "127.0.0.1:" + std::to_string(mport)}, {"icap.max_connections", "1"}});
  // The fixture's start-up probe may still hold the slot a moment: wait until it is free.
  Scrape s;
  for (int i = 0; i < 50; ++i) {
    s = scrape(mport);
    if (s.value("imapav_icapd_connections_active") == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  const auto rejectedBefore = s.value("imapav_icapd_connections_rejected_total");
  IcapConnection held(f.port());
  BOOST_REQUIRE(held.send(kOptions));
  BOOST_REQUIRE(held.read());  // served: it holds the only slot
  IcapConnection refused(f.port());
  BOOST_REQUIRE(refused.send(kOptions));
  auto r = refused.read();
  BOOST_REQUIRE(r);
  BOOST_TEST(r->head.status == 503);
  s = scrape(mport);
  BOOST_TEST(s.value("imapav_icapd_connections_active") == 1);
  BOOST_TEST(s.value("imapav_icapd_max_connections") == 1);
  BOOST_TEST(s.value("imapav_icapd_connections_rejected_total") - rejectedBefore == 1);
  BOOST_TEST(s.value("imapav_icapd_responses_total{status=\"503\"}") >= 1);
}

BOOST_AUTO_TEST_CASE(without_the_setting_there_is_no_listener_and_a_taken_port_stops_the_start) {
  IcapdFixture quiet;
  BOOST_TEST(quiet.log().find("metrics on") == std::string::npos);

  const auto mport = freePort();
  IcapdFixture first({{"metrics.listen", "127.0.0.1:" + std::to_string(mport)}});
  IcapdFixture second({{"metrics.listen", "127.0.0.1:" + std::to_string(mport)}}, false);
  const auto r = runCommand({std::string(IMAPAV_BINARY_DIR) + "/icap-server/imapav-icapd", "--config", second.configFile()},
                            20s);
  BOOST_TEST(r.exitCode == 69);  // EX_UNAVAILABLE, not a daemon without its metrics
  BOOST_TEST(r.output.find("metrics.listen 127.0.0.1:" + std::to_string(mport)) != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
