#include "icap-server/scan/engine_manager.hpp"

#include <optional>
#include <stdexcept>
#include <utility>

namespace imapav::scan {

namespace {

using Clock = std::chrono::steady_clock;

// How often replaced engines are checked for their last scan.
constexpr std::chrono::milliseconds kDrainPoll{200};

std::string fingerprintOrError(const EngineManager::Fingerprint& fingerprint) {
  try {
    return fingerprint();
  } catch (const std::exception& e) {
    // Unreadable: a load attempt reports why, once, until it changes.
    return std::string("error: ") + e.what();
  }
}

}  // namespace

EngineManager::EngineManager(Loader loader, Fingerprint fingerprint, std::chrono::milliseconds checkInterval,
                             std::chrono::milliseconds settle, OnReport onReport)
    : loader_(std::move(loader)),
      fingerprint_(std::move(fingerprint)),
      checkInterval_(checkInterval),
      settle_(settle),
      onReport_(std::move(onReport)) {}

EngineManager::~EngineManager() { stop(); }

void EngineManager::start() {
  load("start", true);
  const std::lock_guard lock(mutex_);
  stopping_ = false;
  if (!watcher_.joinable()) watcher_ = std::thread([this] { watch(); });
}

void EngineManager::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::shared_ptr<Scanner> EngineManager::current() const {
  const std::lock_guard lock(mutex_);
  return current_;
}

void EngineManager::requestReload() {
  {
    const std::lock_guard lock(mutex_);
    reloadRequested_ = true;
  }
  wake_.notify_all();
}

EngineManager::Report EngineManager::reload(const std::string& reason) { return load(reason, false); }

EngineManager::Stats EngineManager::stats() const {
  const std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.engines = liveEngines_->load();
  return s;
}

std::shared_ptr<Scanner> EngineManager::track(std::unique_ptr<Scanner> engine) {
  liveEngines_->fetch_add(1);
  return std::shared_ptr<Scanner>(engine.release(), [live = liveEngines_](Scanner* s) {
    delete s;
    live->fetch_sub(1);
  });
}

EngineManager::Report EngineManager::load(const std::string& reason, bool first) {
  const std::lock_guard one(loadMutex_);
  Report report;
  report.reason = reason;
  // Taken before loading: a change during the load is seen by the next check.
  const std::string fingerprint = fingerprintOrError(fingerprint_);
  std::optional<unsigned> oldSignatures;  // not the engine itself: holding it would delay its release
  if (const auto old = current()) {
    report.oldVersion = old->signatureVersion();
    oldSignatures = old->signatureCount();
  }
  const auto started = Clock::now();
  try {
    std::unique_ptr<Scanner> engine = loader_();
    if (!engine) throw std::runtime_error("the engine loader returned nothing");
    report.loadSeconds = std::chrono::duration<double>(Clock::now() - started).count();
    report.newVersion = engine->signatureVersion();
    report.signatures = engine->signatureCount();
    if (reason == "changed" && oldSignatures && minimumRatio_ > 0 &&
        static_cast<double>(engine->signatureCount()) < minimumRatio_ * static_cast<double>(*oldSignatures)) {
      throw std::runtime_error("refused: the new database holds " + std::to_string(engine->signatureCount()) +
                               " signatures, fewer than " + std::to_string(static_cast<int>(minimumRatio_ * 100 + 0.5)) +
                               "% of the " + std::to_string(*oldSignatures) +
                               " in use (an incomplete update?); SIGHUP loads it anyway");
    }
    std::shared_ptr<Scanner> fresh = track(std::move(engine));
    const std::lock_guard lock(mutex_);
    if (current_) {
      replaced_.push_back(std::move(current_));
      ++stats_.successes;
    }
    current_ = std::move(fresh);
    fingerprint_seen_ = fingerprint;
    wake_.notify_all();  // the watcher frees the replaced engine after its last scan
    stats_.failing = false;
    stats_.loadSeconds = report.loadSeconds;
    stats_.loadedAtUnix =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    report.success = true;
  } catch (const std::exception& e) {
    if (first) throw;
    report.error = e.what();
    report.loadSeconds = std::chrono::duration<double>(Clock::now() - started).count();
    const std::lock_guard lock(mutex_);
    fingerprint_seen_ = fingerprint;
    ++stats_.failures;
    stats_.failing = true;
  }
  dropFinishedEngines();
  if (onReport_) onReport_(report);
  return report;
}

void EngineManager::dropFinishedEngines() {
  std::vector<std::shared_ptr<Scanner>> finished;
  {
    const std::lock_guard lock(mutex_);
    // Only current() hands engines out, so a replaced engine's count can only fall: one
    // means nobody but us holds it.
    for (auto it = replaced_.begin(); it != replaced_.end();) {
      if (it->use_count() == 1) {
        finished.push_back(std::move(*it));
        it = replaced_.erase(it);
      } else {
        ++it;
      }
    }
  }
  finished.clear();  // freed here, outside the lock
}

bool EngineManager::changedAndSettled() {
  const std::string now = fingerprintOrError(fingerprint_);
  std::unique_lock lock(mutex_);
  if (now == fingerprint_seen_) return false;
  // An update writes several files: wait until they stop changing.
  if (wake_.wait_for(lock, settle_, [this] { return stopping_; })) return false;
  lock.unlock();
  return fingerprintOrError(fingerprint_) == now;
}

void EngineManager::watch() {
  auto nextCheck = Clock::now() + checkInterval_;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto woken = [this] { return stopping_ || reloadRequested_; };
    // An engine replaced by reload() on another thread must not wait for the next check.
    const auto wokenOrReplaced = [this] { return stopping_ || reloadRequested_ || !replaced_.empty(); };
    const bool periodic = checkInterval_.count() > 0;
    if (!replaced_.empty()) {
      const auto drainAt = Clock::now() + kDrainPoll;
      wake_.wait_until(lock, periodic ? std::min(nextCheck, drainAt) : drainAt, woken);
    } else if (periodic) {
      wake_.wait_until(lock, nextCheck, wokenOrReplaced);
    } else {
      wake_.wait(lock, wokenOrReplaced);
    }
    if (stopping_) break;
    const bool requested = std::exchange(reloadRequested_, false);
    lock.unlock();
    dropFinishedEngines();
    if (requested) {
      load("requested", false);
    } else if (periodic && Clock::now() >= nextCheck) {
      if (changedAndSettled()) load("changed", false);
      nextCheck = Clock::now() + checkInterval_;
    }
    lock.lock();
  }
}

}  // namespace imapav::scan
