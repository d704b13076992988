#pragma once
// The engine in service, and its replacement without downtime: a watcher thread notices a
// changed signature database (or is asked to reload), builds a new engine beside the one
// in use, and swaps it in. Scans hold the engine they started with; a replaced engine is
// freed on the watcher thread once its last scan has finished, never on a scanning thread.
// A database that fails to load leaves the engine in use in service.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "icap-server/scan/scanner.hpp"

namespace imapav::scan {

class EngineManager {
 public:
  // Builds an engine from the database as it is now; throws std::exception when it cannot.
  using Loader = std::function<std::unique_ptr<Scanner>()>;
  // Cheap; changes whenever the database changes (databaseFingerprint). May throw.
  using Fingerprint = std::function<std::string()>;
  // A load attempt: success, and the old and new versions or the error.
  struct Report {
    bool success = false;
    std::string reason;  // "start", "requested" (SIGHUP), "changed" (the periodic check)
    std::string oldVersion, newVersion;
    unsigned signatures = 0;
    double loadSeconds = 0;
    std::string error;
  };
  using OnReport = std::function<void(const Report&)>;

  struct Stats {
    std::uint64_t successes = 0;  // reloads after the first load
    std::uint64_t failures = 0;
    bool failing = false;         // the last attempt failed
    double loadSeconds = 0;       // load + compile time of the engine in use
    std::int64_t loadedAtUnix = 0;  // when the engine in use was swapped in
    int engines = 0;              // in memory: the one in use and replaced ones still scanning
  };

  // checkInterval: how often the fingerprint is compared; zero: only on requestReload().
  // settle: a change must hold this long before loading (files still being written).
  EngineManager(Loader loader, Fingerprint fingerprint, std::chrono::milliseconds checkInterval,
                std::chrono::milliseconds settle = std::chrono::seconds(1), OnReport onReport = {});
  ~EngineManager();
  EngineManager(const EngineManager&) = delete;
  EngineManager& operator=(const EngineManager&) = delete;

  // A database found changed by the periodic check that holds fewer than ratio x the
  // signatures in use is refused (a truncated or half-removed update), and reported as a
  // failure; requestReload() (the operator's SIGHUP) accepts it. 0 = no check. Before start().
  void setMinimumRatio(double ratio) { minimumRatio_ = ratio; }

  // Loads the first engine (throws what the loader throws) and starts the watcher.
  void start();
  // Stops the watcher (a load in progress finishes first). Engines stay usable.
  void stop();

  // The engine to scan with; hold it for the whole scan. Never null after start().
  std::shared_ptr<Scanner> current() const;
  // Reload now, changed or not (SIGHUP); returns at once, the watcher does the work.
  void requestReload();
  // Loads and swaps on the calling thread; for tests and the watcher.
  Report reload(const std::string& reason);

  Stats stats() const;

 private:
  void watch();
  bool changedAndSettled();
  Report load(const std::string& reason, bool first);
  std::shared_ptr<Scanner> track(std::unique_ptr<Scanner> engine);
  void dropFinishedEngines();

  Loader loader_;
  Fingerprint fingerprint_;
  const std::chrono::milliseconds checkInterval_;
  const std::chrono::milliseconds settle_;
  OnReport onReport_;
  double minimumRatio_ = 0;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::shared_ptr<Scanner> current_;
  std::vector<std::shared_ptr<Scanner>> replaced_;  // still held by scans
  std::string fingerprint_seen_;  // of the last attempt, good or bad: a broken update is tried once
  bool reloadRequested_ = false;
  bool stopping_ = false;
  Stats stats_;
  std::shared_ptr<std::atomic<int>> liveEngines_ = std::make_shared<std::atomic<int>>(0);
  std::mutex loadMutex_;  // one load at a time
  std::thread watcher_;
};

}  // namespace imapav::scan
