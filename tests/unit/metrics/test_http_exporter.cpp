// The HTTP listener with real clients: curl for GET, HEAD, a wrong path and method; a raw
// socket for a client that says nothing (it must not hold the listener).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>

#include "shared/metrics/http_exporter.hpp"
#include "tests/support/process.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::metrics;
using imapav::test::runCommand;

namespace {

imapav::config::HostPort loopback(std::uint16_t port = 0) { return {"127.0.0.1", port}; }

std::string curl(std::uint16_t port, const std::vector<std::string>& extra, const std::string& path = "/metrics") {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{content_type}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + path);
  return runCommand(argv, std::chrono::seconds(15)).output;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_exporter)

BOOST_AUTO_TEST_CASE(serves_the_registry_as_prometheus_text) {
  Registry r;
  auto& c = r.counter("imapav_test_total", "Test.");
  addProcessMetrics(r);
  HttpExporter exporter(r, loopback());
  BOOST_REQUIRE(exporter.port() != 0);
  c.inc(7);
  auto s = imapav::test::scrape(exporter.port());
  BOOST_TEST(s.status == 200);
  BOOST_TEST(s.contentType == "text/plain; version=0.0.4; charset=utf-8");
  BOOST_TEST(s.value("imapav_test_total") == 7);
  // The process collector reads this process: it has threads, memory and open files.
  BOOST_TEST(s.value("process_resident_memory_bytes") > 1e6);
  BOOST_TEST(s.value("process_open_fds") >= 3);
  BOOST_TEST(s.value("process_threads") >= 2);
  const auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  BOOST_TEST(s.value("process_start_time_seconds") > now - 3600);
  BOOST_TEST(s.value("process_start_time_seconds") <= now + 1);
  BOOST_TEST(imapav::test::promtoolProblems(s.body) == "");
  c.inc();
  BOOST_TEST(imapav::test::scrape(exporter.port()).value("imapav_test_total") == 8);  // each scrape is fresh
}

BOOST_AUTO_TEST_CASE(other_paths_and_methods_are_refused) {
  Registry r;
  HttpExporter exporter(r, loopback());
  BOOST_TEST(curl(exporter.port(), {}, "/") == "404 text/plain; charset=utf-8");
  BOOST_TEST(curl(exporter.port(), {}, "/metricsx") == "404 text/plain; charset=utf-8");
  BOOST_TEST(curl(exporter.port(), {"-X", "POST", "-d", "x"}) == "405 text/plain; charset=utf-8");
  BOOST_TEST(curl(exporter.port(), {"-I"}) == "200 text/plain; version=0.0.4; charset=utf-8");
  BOOST_TEST(curl(exporter.port(), {}, "/metrics?x=1") == "200 text/plain; version=0.0.4; charset=utf-8");
}

BOOST_AUTO_TEST_CASE(a_failing_collector_gives_500_not_a_crash) {
  Registry r;
  r.addCollector([](Exposition&) { throw std::runtime_error("boom"); });
  HttpExporter exporter(r, loopback());
  BOOST_TEST(curl(exporter.port(), {}) == "500 text/plain; charset=utf-8");
}

BOOST_AUTO_TEST_CASE(a_port_in_use_is_a_clear_error) {
  Registry r;
  HttpExporter first(r, loopback());
  try {
    HttpExporter second(r, loopback(first.port()));
    BOOST_ERROR("a second listener on the same port started");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("metrics.listen 127.0.0.1:" + std::to_string(first.port())) == 0, what);
  }
}

BOOST_AUTO_TEST_CASE(silent_clients_do_not_block_scrapes) {
  Registry r;
  r.gauge("g", "G.").set(1);
  HttpExporter exporter(r, loopback());
  // More idle connections than the listener has threads: each is dropped after its
  // timeout, and meanwhile a real scrape still gets through (queued, then served).
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(exporter.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    idle.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  BOOST_TEST(imapav::test::scrape(exporter.port()).value("g") == 1);
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST(took < 9.0);
  for (int fd : idle) ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()
