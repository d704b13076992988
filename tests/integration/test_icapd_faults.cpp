// Fault injection on imapav-icapd's own resources: the event database full, read-only,
// failing or locked in the middle of a run, and the signature directory unreadable at
// start-up. File-system faults come from tests/support/fault_fs.c, preloaded into the
// daemon and switched on and off by a flag file (root ignores chmod, so permissions cannot
// make these faults here). Scans must go on unaffected; lost rows must be counted.

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;
namespace data = boost::unit_test::data;

namespace {

// The environment of a daemon started while it lives: fault_fs.c preloaded with the fault.
class FaultEnv {
 public:
  FaultEnv(const std::string& ops, const std::string& err, const std::string& path, const std::string& flag) {
    set("LD_PRELOAD", std::string(IMAPAV_BINARY_DIR) + "/tests/support/imapav_fault_fs.so");
    set("IMAPAV_FAULT_OPS", ops);
    set("IMAPAV_FAULT_ERRNO", err);
    set("IMAPAV_FAULT_PATH", path);
    set("IMAPAV_FAULT_FLAG", flag);
    // In sanitizer builds the preloaded library comes before the ASan runtime.
    const char* asan = std::getenv("ASAN_OPTIONS");
    set("ASAN_OPTIONS", std::string(asan ? asan : "") + (asan && *asan ? ":" : "") + "verify_asan_link_order=0");
  }
  ~FaultEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) setenv(name.c_str(), old->c_str(), 1);
      else unsetenv(name.c_str());
    }
  }

 private:
  void set(const std::string& name, const std::string& value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    setenv(name.c_str(), value.c_str(), 1);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

double sample(std::uint16_t port, const std::string& key) {
  const auto s = scrape(port);
  return s.has(key) ? s.samples.at(key) : -1;
}

// Polls until the sample reaches at least want; its last value.
double waitFor(std::uint16_t port, const std::string& key, double want, std::chrono::seconds limit = 30s) {
  double v = -1;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end && (v = sample(port, key)) < want) std::this_thread::sleep_for(100ms);
  return v;
}

const std::string kWritten = "imapav_icapd_event_log_written_total{kind=\"scan\"}";
const std::string kFailed = "imapav_icapd_event_log_failed_total{kind=\"scan\"}";

// One RESPMOD, timed: the answer's status and seconds.
std::pair<int, double> timedScan(IcapdFixture& f, const std::string& message) {
  RespmodRequest rq;
  rq.message = message;
  const auto start = std::chrono::steady_clock::now();
  const int status = f.exchange(rq).head.status;
  return {status, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(icapd_faults)

BOOST_DATA_TEST_CASE(the_event_database_failing_mid_run_costs_rows_not_scans, data::make({"ENOSPC", "EROFS", "EIO"}),
                     err) {
  TempDir flags;
  const auto flag = flags.file("on");
  const auto mport = freePort();
  IcapdFixture f({{"metrics.listen", "127.0.0.1:" + std::to_string(mport)}}, false);
  {
    FaultEnv env("write", err, "events.sqlite", flag);
    f.start();
  }
  BOOST_TEST(timedScan(f, cleanMessage("before 1")).first == 204);
  BOOST_TEST(timedScan(f, cleanMessage("before 2")).first == 204);
  BOOST_REQUIRE(waitFor(mport, kWritten, 2) == 2);

  writeFile(flag, "");  // the disk is full (read-only, failing) from now on
  const std::vector<std::pair<std::string, int>> during = {
      {cleanMessage("during 1"), 204}, {infectedMessage("during 2"), 200}, {cleanMessage("during 3"), 204}};
  for (const auto& [message, status] : during) {
    const auto [got, seconds] = timedScan(f, message);
    BOOST_TEST(got == status);
    BOOST_TEST(seconds < 2.0);  // a scan never waits for the database
  }
  BOOST_TEST(waitFor(mport, kFailed, 1) >= 1);  // lost rows are counted

  BOOST_TEST(sample(mport, "imapav_icapd_event_log_healthy") == 0);
  std::filesystem::remove(flag);  // the fault is gone: the writer goes on by itself. A full
  // disk keeps the connection (the next batch is tried at once); after the other errors it
  // reopens the database first, and rows meanwhile are counted lost.
  if (std::string(err) != "ENOSPC") BOOST_TEST(waitFor(mport, "imapav_icapd_event_log_healthy", 1) == 1);
  BOOST_TEST(timedScan(f, cleanMessage("after 1")).first == 204);
  BOOST_TEST(timedScan(f, cleanMessage("after 2")).first == 204);
  BOOST_TEST(waitFor(mport, kWritten, 4) >= 4);
  const double written = sample(mport, kWritten);
  const double failed = sample(mport, kFailed);
  BOOST_TEST(written + failed == 7);  // every scan is a row or a counted loss
  BOOST_TEST(f.stop() == 0);
  const auto rows = f.query("SELECT subject FROM scan_events ORDER BY id");
  BOOST_TEST(static_cast<double>(rows.size()) == written);
  BOOST_TEST(rows.front().at("subject") == "before 1");
  BOOST_TEST(rows.back().at("subject") == "after 2");
  BOOST_TEST(f.log().find("icapd.eventlog") != std::string::npos);  // said in the log, not only counted
}

BOOST_AUTO_TEST_CASE(a_locked_event_database_delays_rows_not_scans) {
  const auto mport = freePort();
  IcapdFixture f({{"metrics.listen", "127.0.0.1:" + std::to_string(mport)}});
  BOOST_TEST(timedScan(f, cleanMessage("before")).first == 204);
  BOOST_REQUIRE(waitFor(mport, kWritten, 1) == 1);
  // Another program holds an exclusive lock on the database for 4 s (longer than the
  // writer's 2 s busy timeout).
  CommandResult locker;
  std::thread lock([&] {
    locker = runCommand({"/usr/bin/python3", "-c",
                         "import sqlite3,sys,time\n"
                         "c=sqlite3.connect(sys.argv[1],isolation_level=None)\n"
                         "c.execute('BEGIN EXCLUSIVE'); print('locked',flush=True); time.sleep(4); c.execute('COMMIT')",
                         f.database()},
                        30s);
  });
  // Until the lock is held: another writer cannot begin a transaction.
  bool locked = false;
  for (int i = 0; i < 100 && !locked; ++i) {
    locked = runCommand({"sqlite3", f.database(), "PRAGMA busy_timeout=0; BEGIN IMMEDIATE; ROLLBACK;"}, 10s).exitCode != 0;
    if (!locked) std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(locked);
  for (int i = 0; i < 3; ++i) {
    const auto [status, seconds] = timedScan(f, cleanMessage("locked " + std::to_string(i)));
    BOOST_TEST(status == 204);
    BOOST_TEST(seconds < 2.0);
  }
  lock.join();
  BOOST_TEST(locker.exitCode == 0, locker.output);
  BOOST_TEST(timedScan(f, cleanMessage("after")).first == 204);
  // Each scan is written once the lock is gone, or counted as lost: none disappears.
  double written = 0, failed = 0;
  for (int i = 0; i < 100 && written + failed < 5; ++i) {
    std::this_thread::sleep_for(100ms);
    written = sample(mport, kWritten);
    failed = sample(mport, kFailed);
  }
  BOOST_TEST(written + failed == 5);
  BOOST_TEST(written >= 2);  // before and after the lock
}

BOOST_AUTO_TEST_CASE(an_unreadable_signature_directory_stops_the_start) {
  TempDir flags;
  const auto flag = flags.file("on");
  writeFile(flag, "");
  IcapdFixture f({}, false);
  CommandResult r;
  {
    FaultEnv env("open", "EACCES", f.signatureDir(), flag);
    r = runCommand({std::string(IMAPAV_BINARY_DIR) + "/icap-server/imapav-icapd", "--config", f.configFile()}, 30s);
  }
  BOOST_TEST_MESSAGE(r.output);
  BOOST_TEST(r.exitCode == 69);  // EX_UNAVAILABLE: never running without signatures
  BOOST_TEST(r.output.find(f.signatureDir()) != std::string::npos);
  BOOST_TEST(!waitForPort(f.port(), 200ms));
}

BOOST_AUTO_TEST_SUITE_END()
