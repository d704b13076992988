// Both daemons' /metrics with real traffic: python imaplib downloads through the
// redirector from Dovecot, curl scrapes, promtool checks, and a real Prometheus server
// scrapes both daemons and answers queries on what it collected.

#include <boost/test/unit_test.hpp>
#include <thread>

#include "tests/integration/redirector/redirector_fixture.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> threeMessages() {
  return {cleanMessage("one", 300), infectedMessage("bad"), cleanMessage("two", 5000)};
}

// Polls until the sample equals want (sessions close and counters settle asynchronously).
Scrape scrapeUntilEqual(std::uint16_t port, const std::string& key, double want) {
  Scrape s;
  for (int i = 0; i < 100; ++i) {
    s = scrape(port);
    if (s.has(key) && s.samples.at(key) == want) break;
    std::this_thread::sleep_for(100ms);
  }
  return s;
}

std::string engineIstag(const Scrape& icapd) {
  for (const auto& [key, value] : icapd.samples) {
    const auto at = key.find("istag=\"");
    if (key.rfind("imapav_icapd_engine_info{", 0) == 0 && at != std::string::npos)
      return key.substr(at + 7, key.find('"', at + 7) - at - 7);
  }
  return "(none)";
}

// The value of a one-element PromQL answer, as Prometheus's HTTP API gives it; "(no answer)"
// without one.
std::string promQuery(std::uint16_t port, const std::string& expr) {
  const auto r = runCommand({"curl", "-sS", "--max-time", "10", "-G", "--data-urlencode", "query=" + expr,
                             "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query"},
                            15s);
  // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[1.7e9,"2"]}]}}
  const auto v = r.output.find("\"value\":[");
  if (r.exitCode != 0 || v == std::string::npos) return "(no answer: " + r.output + ")";
  const auto open = r.output.find(",\"", v);
  const auto close = r.output.find('"', open + 2);
  if (open == std::string::npos || close == std::string::npos) return "(no answer)";
  return r.output.substr(open + 2, close - open - 2);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redirector_metrics)

BOOST_AUTO_TEST_CASE(counters_follow_real_imap_downloads) {
  const auto rport = freePort();
  const auto iport = freePort();
  const auto messages = threeMessages();
  RedirectorFixture f(messages, {{"metrics.listen", "127.0.0.1:" + std::to_string(rport)}}, false,
                      {{"metrics.listen", "127.0.0.1:" + std::to_string(iport)}});
  const std::string server = "{server=\"127.0.0.1:" + std::to_string(f.icapd.port()) + "\"}";
  const auto before = scrape(rport);
  BOOST_REQUIRE(before.status == 200);
  BOOST_TEST(promtoolProblems(before.body) == "");
  BOOST_TEST(before.value("imapav_redirector_icap_requests_total" + server) == 0);

  TempDir out;
  auto r = f.fetchAll(f.port(), out.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\n" + f.log());
  auto s = scrapeUntilEqual(rport, "imapav_redirector_sessions_active", 0);
  BOOST_TEST(promtoolProblems(s.body) == "");
  BOOST_TEST(s.value("imapav_redirector_sessions_active") == 0);
  // One: the fixture's start-up probe is a session too.
  BOOST_TEST(s.value("imapav_redirector_sessions_total{listener=\"imap\"}") -
                 before.value("imapav_redirector_sessions_total{listener=\"imap\"}") ==
             1);
  BOOST_TEST(s.value("imapav_redirector_sessions_total{listener=\"imaps\"}") == 0);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"clean\"}") == 2);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"replaced\"}") == 1);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"failed_dropped\"}") == 0);
  double total = 0, delivered = 0;
  for (const auto& m : messages) total += static_cast<double>(m.size());
  for (int uid = 1; uid <= 3; ++uid) delivered += static_cast<double>(readFile(out.file(std::to_string(uid) + ".eml")).size());
  BOOST_TEST(s.value("imapav_redirector_scanned_bytes_total") == total);
  BOOST_TEST(s.value("imapav_redirector_message_size_bytes_sum") == total);
  BOOST_TEST(s.value("imapav_redirector_scan_duration_seconds_count") == 3);
  BOOST_TEST(s.value("imapav_redirector_client_bytes_total{direction=\"sent\"}") > delivered);  // plus the protocol
  BOOST_TEST(s.value("imapav_redirector_client_bytes_total{direction=\"received\"}") > 0);
  BOOST_TEST(s.value("imapav_redirector_unscanned_total{reason=\"partial\"}") == 0);
  BOOST_TEST(s.value("imapav_redirector_scans_in_progress") == 0);
  BOOST_TEST(s.value("imapav_redirector_scan_queue_depth") == 0);
  // The ICAP server as this redirector sees it, and the same ISTag the server reports.
  BOOST_TEST(s.value("imapav_redirector_icap_up" + server) == 1);
  BOOST_TEST(s.value("imapav_redirector_icap_requests_total" + server) == 3);
  BOOST_TEST(s.value("imapav_redirector_icap_answered_total" + server) == 3);
  BOOST_TEST(s.value("imapav_redirector_icap_failures_total" + server) == 0);
  BOOST_TEST(s.value("imapav_redirector_icap_options_total" + server) >= 1);
  BOOST_TEST(s.value("imapav_redirector_icap_connections_open" + server) >= 1);
  const auto icapd = scrape(iport);
  BOOST_TEST(icapd.value("imapav_icapd_scans_total{verdict=\"infected\"}") == 1);
  const std::string info = "imapav_redirector_icap_server_info{server=\"127.0.0.1:" + std::to_string(f.icapd.port()) +
                           "\",istag=\"" + engineIstag(icapd) + "\"}";
  BOOST_TEST(s.value(info) == 1);

  // A partial fetch is relayed unscanned: counted, by reason.
  TempDir partial;
  r = f.fetchAll(f.port(), partial.path(), {"--fetch", "BODY.PEEK[]<0.100>"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  s = scrapeUntilEqual(rport, "imapav_redirector_unscanned_total{reason=\"partial\"}", 3);
  BOOST_TEST(s.value("imapav_redirector_unscanned_total{reason=\"partial\"}") == 3);

  // The scanner goes away: the local fail mode (drop) applies and the server is marked down.
  f.icapd.stop();
  TempDir dropped;
  r = f.fetchAll(f.port(), dropped.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);
  s = scrapeUntilEqual(rport, "imapav_redirector_sessions_active", 0);
  BOOST_TEST(s.value("imapav_redirector_messages_total{outcome=\"failed_dropped\"}") == 3);
  BOOST_TEST(s.value("imapav_redirector_icap_up" + server) == 0);
  BOOST_TEST(s.value("imapav_redirector_icap_failures_total" + server) >= 1);
  BOOST_TEST(s.value("imapav_redirector_icap_skipped_total" + server) >= 1);
  BOOST_TEST(promtoolProblems(s.body) == "");
}

BOOST_AUTO_TEST_CASE(a_real_prometheus_scrapes_both_daemons) {
  const auto rport = freePort();
  const auto iport = freePort();
  RedirectorFixture f(threeMessages(), {{"metrics.listen", "127.0.0.1:" + std::to_string(rport)}}, false,
                      {{"metrics.listen", "127.0.0.1:" + std::to_string(iport)}});
  TempDir out;
  const auto r = f.fetchAll(f.port(), out.path());
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output);

  TempDir prom;
  writeFile(prom.file("prometheus.yml"),
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: imapav-redirector\n    static_configs:\n      - targets: ['127.0.0.1:" +
                std::to_string(rport) + "']\n"
            "  - job_name: imapav-icapd\n    static_configs:\n      - targets: ['127.0.0.1:" +
                std::to_string(iport) + "']\n");
  const auto pport = freePort();
  ChildProcess prometheus({"/usr/bin/prometheus", "--config.file=" + prom.file("prometheus.yml"),
                           "--storage.tsdb.path=" + prom.file("data"),
                           "--web.listen-address=127.0.0.1:" + std::to_string(pport)},
                          prom.file("prometheus.log"));
  BOOST_REQUIRE_MESSAGE(waitForPort(pport, 30s), readFile(prom.file("prometheus.log")));
  // Both targets up (Prometheus scrapes every second) and the data in its store.
  std::string up;
  for (int i = 0; i < 60 && up != "2"; ++i) {
    std::this_thread::sleep_for(500ms);
    up = promQuery(pport, "sum(up{job=~\"imapav-.*\"})");
  }
  BOOST_REQUIRE_MESSAGE(up == "2", "targets not up: " + up + "\n" +
                                       readFile(prom.file("prometheus.log")));
  BOOST_TEST(promQuery(pport, "sum(imapav_redirector_messages_total{outcome=\"clean\"})") == "2");
  BOOST_TEST(promQuery(pport, "sum(imapav_redirector_messages_total{outcome=\"replaced\"})") == "1");
  BOOST_TEST(promQuery(pport, "sum(imapav_icapd_scans_total{verdict=\"infected\"})") == "1");
  BOOST_TEST(promQuery(pport, "sum(imapav_icapd_scan_duration_seconds_count)") == "3");
  BOOST_TEST(promQuery(pport, "sum(imapav_redirector_icap_up)") == "1");
  // A histogram Prometheus can compute a quantile from.
  const auto p99 = promQuery(pport, "histogram_quantile(0.99, sum by (le) (imapav_icapd_scan_duration_seconds_bucket))");
  BOOST_REQUIRE_MESSAGE(p99 != "(no answer)" && p99 != "NaN", p99);
  BOOST_TEST(std::stod(p99) > 0);
  BOOST_TEST(std::stod(p99) <= 65.536);
}

BOOST_AUTO_TEST_SUITE_END()
