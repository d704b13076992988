// EngineManager with engines that are only a version: a "database" the test rewrites.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "icap-server/scan/engine_manager.hpp"

using namespace imapav::scan;
using namespace std::chrono_literals;

namespace {

struct Database {
  std::mutex mutex;
  std::string content = "v1";  // what the next load builds; "broken" fails
  std::atomic<int> loads{0};
  std::atomic<int> freed{0};
  std::vector<std::thread::id> freedOn;

  void set(const std::string& c) {
    const std::lock_guard lock(mutex);
    content = c;
  }
  std::string get() {
    const std::lock_guard lock(mutex);
    return content;
  }
};

class FakeEngine final : public Scanner {
 public:
  FakeEngine(Database& db, std::string version) : db_(db), version_(std::move(version)) {}
  ~FakeEngine() override {
    const std::lock_guard lock(db_.mutex);
    db_.freedOn.push_back(std::this_thread::get_id());
    ++db_.freed;
  }
  ScanResult scan(const MessageBody&) override { return {}; }
  std::string engineVersion() const override { return "Fake"; }
  std::string signatureVersion() const override { return version_; }
  unsigned signatureCount() const override { return version_.rfind("small", 0) == 0 ? 1 : 3; }

 private:
  Database& db_;
  std::string version_;
};

struct Env {
  Database db;
  std::mutex reportsMutex;
  std::vector<EngineManager::Report> reports;
  EngineManager manager;

  explicit Env(std::chrono::milliseconds interval, std::chrono::milliseconds settle = 0ms)
      : manager(
            [this]() -> std::unique_ptr<Scanner> {
              ++db.loads;
              const std::string c = db.get();
              if (c == "broken") throw std::runtime_error("cannot load signatures: malformed database");
              return std::make_unique<FakeEngine>(db, c);
            },
            [this] { return db.get(); }, interval, settle, [this](const EngineManager::Report& r) {
              const std::lock_guard lock(reportsMutex);
              reports.push_back(r);
            }) {}

  std::size_t reportCount() {
    const std::lock_guard lock(reportsMutex);
    return reports.size();
  }
  EngineManager::Report lastReport() {
    const std::lock_guard lock(reportsMutex);
    return reports.back();
  }
};

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_manager)

BOOST_AUTO_TEST_CASE(a_first_load_that_fails_throws) {
  Env env(0ms);
  env.db.set("broken");
  BOOST_CHECK_THROW(env.manager.start(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(reload_swaps_and_reports_both_versions) {
  Env env(0ms);
  env.manager.start();
  BOOST_TEST(env.manager.current()->signatureVersion() == "v1");
  env.db.set("v2");
  const auto r = env.manager.reload("requested");
  BOOST_TEST(r.success);
  BOOST_TEST(r.oldVersion == "v1");
  BOOST_TEST(r.newVersion == "v2");
  BOOST_TEST(r.signatures == 3U);
  BOOST_TEST(env.manager.current()->signatureVersion() == "v2");
  const auto st = env.manager.stats();
  BOOST_TEST(st.successes == 1U);
  BOOST_TEST(st.failures == 0U);
  BOOST_TEST(!st.failing);
  BOOST_TEST(st.engines == 1);  // v1 was not in use: freed at once
  BOOST_TEST(env.db.freed.load() == 1);
}

BOOST_AUTO_TEST_CASE(a_broken_update_keeps_the_engine_in_use) {
  Env env(0ms);
  env.manager.start();
  const auto before = env.manager.current();
  env.db.set("broken");
  const auto r = env.manager.reload("requested");
  BOOST_TEST(!r.success);
  BOOST_TEST(r.error.find("malformed") != std::string::npos);
  BOOST_TEST(r.oldVersion == "v1");
  BOOST_TEST(env.manager.current() == before);
  BOOST_TEST(env.manager.stats().failing);
  BOOST_TEST(env.manager.stats().failures == 1U);
  // Fixed: the next reload succeeds and clears the flag.
  env.db.set("v3");
  BOOST_TEST(env.manager.reload("requested").success);
  BOOST_TEST(!env.manager.stats().failing);
  BOOST_TEST(env.manager.current()->signatureVersion() == "v3");
}

BOOST_AUTO_TEST_CASE(a_scan_keeps_its_engine_until_it_ends) {
  Env env(0ms);
  env.manager.start();
  auto held = env.manager.current();  // a scan in progress
  env.db.set("v2");
  BOOST_TEST(env.manager.reload("requested").success);
  BOOST_TEST(held->signatureVersion() == "v1");  // still usable
  BOOST_TEST(env.manager.stats().engines == 2);
  BOOST_TEST(env.db.freed.load() == 0);
  held.reset();  // the scan ends; the watcher frees the engine, not this thread
  BOOST_TEST(eventually([&] { return env.db.freed.load() == 1; }));
  BOOST_TEST(env.manager.stats().engines == 1);
  const std::lock_guard lock(env.db.mutex);
  BOOST_TEST((env.db.freedOn.front() != std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(periodic_check_reloads_a_changed_database_once) {
  Env env(20ms, 10ms);
  env.manager.start();
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(env.db.loads.load() == 1);  // unchanged: nothing loaded
  env.db.set("v2");
  BOOST_TEST(eventually([&] { return env.manager.current()->signatureVersion() == "v2"; }));
  BOOST_TEST(env.lastReport().reason == "changed");
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(env.db.loads.load() == 2);
}

BOOST_AUTO_TEST_CASE(a_broken_update_is_tried_once_until_it_changes) {
  Env env(20ms, 0ms);
  env.manager.start();
  env.db.set("broken");
  BOOST_TEST(eventually([&] { return env.manager.stats().failures == 1U; }));
  std::this_thread::sleep_for(150ms);
  BOOST_TEST(env.manager.stats().failures == 1U);  // not once per check
  BOOST_TEST(env.manager.current()->signatureVersion() == "v1");
  env.db.set("v4");
  BOOST_TEST(eventually([&] { return env.manager.current()->signatureVersion() == "v4"; }));
}

BOOST_AUTO_TEST_CASE(request_reloads_even_when_unchanged) {
  Env env(0ms);
  env.manager.start();
  const auto first = env.manager.current();
  env.manager.requestReload();
  BOOST_TEST(eventually([&] { return env.reportCount() == 2U; }));
  BOOST_TEST(env.lastReport().reason == "requested");
  BOOST_TEST(env.lastReport().success);
  BOOST_TEST(env.manager.current() != first);  // a fresh engine of the same version
  BOOST_TEST(env.manager.current()->signatureVersion() == "v1");
}

BOOST_AUTO_TEST_CASE(scans_during_reloads_always_get_an_engine) {
  Env env(0ms);
  env.manager.start();
  std::atomic<bool> stop{false};
  std::atomic<int> nulls{0};
  std::vector<std::thread> scanners;
  for (int i = 0; i < 3; ++i) {
    scanners.emplace_back([&] {
      while (!stop.load()) {
        auto e = env.manager.current();
        if (!e || e->signatureVersion().empty()) ++nulls;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    env.db.set(i % 7 == 3 ? "broken" : "v" + std::to_string(i));
    env.manager.reload("requested");
  }
  stop.store(true);
  for (auto& t : scanners) t.join();
  BOOST_TEST(nulls.load() == 0);
  BOOST_TEST(eventually([&] { return env.manager.stats().engines == 1; }));
  BOOST_TEST(env.db.freed.load() == env.db.loads.load() - 1 - 7);  // every good engine but the current one
}

BOOST_AUTO_TEST_CASE(a_much_smaller_database_is_refused_unless_asked_for) {
  Env env(20ms, 0ms);
  env.manager.setMinimumRatio(0.5);
  env.manager.start();
  env.db.set("small-1");  // 1 signature where 3 are in use
  BOOST_TEST(eventually([&] { return env.manager.stats().failures == 1U; }));
  BOOST_TEST(env.manager.current()->signatureVersion() == "v1");
  BOOST_TEST(env.lastReport().error.find("fewer than 50% of the 3 in use") != std::string::npos);
  BOOST_TEST(env.manager.stats().failing);
  // The operator's SIGHUP: loaded.
  env.manager.requestReload();
  BOOST_TEST(eventually([&] { return env.manager.current()->signatureVersion() == "small-1"; }));
  BOOST_TEST(!env.manager.stats().failing);
  // Growing is always fine.
  env.db.set("v2");
  BOOST_TEST(eventually([&] { return env.manager.current()->signatureVersion() == "v2"; }));
}

BOOST_AUTO_TEST_CASE(stop_ends_the_watcher_promptly) {
  Env env(1h);
  env.manager.start();
  const auto t0 = std::chrono::steady_clock::now();
  env.manager.stop();
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 1s));
}

BOOST_AUTO_TEST_SUITE_END()
