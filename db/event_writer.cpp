#include "db/event_writer.hpp"

#include <Poco/Logger.h>
#include <sqlite3.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "db/event_store.hpp"

namespace imapav::db {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kLogInterval{10};

Poco::Logger& logger() { return Poco::Logger::get("icapd.eventlog"); }

// Logging must never take the writer (or a scan thread in submit) down.
void logError(const std::string& message) noexcept {
  try {
    poco_error(logger(), message);
  } catch (...) {
  }
}

void logInfo(const std::string& message) noexcept {
  try {
    poco_information(logger(), message);
  } catch (...) {
  }
}

// Lock waits and a full disk pass; anything else (read-only, not a database, I/O error,
// corruption) may be cured by a fresh connection, e.g. after the file was replaced.
bool keepConnectionAfter(int sqliteCode) {
  return sqliteCode == SQLITE_BUSY || sqliteCode == SQLITE_LOCKED || sqliteCode == SQLITE_FULL;
}

WriterOptions sanitize(WriterOptions options) {
  options.batchSize = std::max<std::size_t>(options.batchSize, 1);
  return options;
}

}  // namespace

bool EventWriter::LogThrottle::allow(Clock::time_point now, std::uint64_t& heldBack) {
  if (now < next) {
    ++suppressed;
    return false;
  }
  next = now + kLogInterval;
  heldBack = std::exchange(suppressed, 0);
  return true;
}

EventWriter::EventWriter(std::string path, WriterOptions options)
    : path_(std::move(path)), options_(sanitize(options)), thread_([this] { run(); }) {}

EventWriter::~EventWriter() {
  try {
    stop();
  } catch (...) {
    // join() can only fail on a broken thread; nothing useful to do in a destructor.
  }
}

bool EventWriter::submit(ScanEvent event) noexcept {
  bool accepted = false;
  try {
    bool wakeWriter = false;
    bool logDrop = false;
    std::uint64_t heldBack = 0;
    {
      const std::lock_guard lock(mutex_);
      if (!stopping_ && queue_.size() < options_.maxQueue) {
        queue_.push_back(std::move(event));
        accepted = true;
        queued_.fetch_add(1, std::memory_order_relaxed);
        wakeWriter = queue_.size() == options_.batchSize;
      } else {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        logDrop = dropLog_.allow(Clock::now(), heldBack);
      }
    }
    if (wakeWriter) wake_.notify_one();
    if (logDrop) {
      logError("event log queue full or writer stopped, scan events dropped path=" + path_ +
               " max_queue=" + std::to_string(options_.maxQueue) +
               " dropped_total=" + std::to_string(dropped_.load()) +
               " log_lines_suppressed=" + std::to_string(heldBack));
    }
  } catch (...) {
    // Only allocation can throw above; a row that did not make it in is a dropped row.
    if (!accepted) dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  return accepted;
}

void EventWriter::stop() {
  const std::lock_guard stopLock(stopMutex_);
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

WriterStats EventWriter::stats() const {
  WriterStats s;
  s.queued = queued_.load();
  s.written = written_.load();
  s.dropped = dropped_.load();
  s.failed = failed_.load();
  s.batches = batches_.load();
  s.openFailures = openFailures_.load();
  return s;
}

bool EventWriter::healthy() const { return healthy_.load(); }

void EventWriter::run() {
  try {
    work();
  } catch (const std::exception& e) {
    // Not expected (EventStore errors are handled in work()); say so rather than terminate.
    healthy_ = false;
    try {
      logError("event log writer died path=" + path_ + " error=" + e.what());
    } catch (...) {
    }
  } catch (...) {
    healthy_ = false;
    logError("event log writer died error=unknown");
  }
}

void EventWriter::work() {
  std::optional<EventStore> store;
  auto nextOpen = Clock::now();
  bool wasFailing = false;
  bool lastAttemptMade = false;  // during the final drain: one try, not one per batch

  auto tryOpen = [&] {
    try {
      store.emplace(path_, options_.busyTimeout);
      healthy_ = true;
      if (wasFailing) logInfo("event log reopened path=" + path_);
      wasFailing = false;
    } catch (const std::exception& e) {
      store.reset();
      openFailures_.fetch_add(1);
      healthy_ = false;
      wasFailing = true;
      nextOpen = Clock::now() + options_.reopenInterval;
      logFailure(e.what(), 0);  // names the path and SQLite's reason
    }
  };

  auto onWriteFailure = [&](const char* error, int sqliteCode, std::size_t rows, bool stopping) {
    failed_.fetch_add(rows);
    healthy_ = false;
    wasFailing = true;
    if (stopping) lastAttemptMade = true;
    logFailure(error, rows);
    if (!keepConnectionAfter(sqliteCode)) {
      store.reset();
      nextOpen = Clock::now() + options_.reopenInterval;
    }
  };

  tryOpen();
  std::vector<ScanEvent> batch;  // reused: keeps its capacity across batches
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.flushInterval,
                     [&] { return stopping_ || queue_.size() >= options_.batchSize; });
      stopping = stopping_;
    }
    for (;;) {
      batch.clear();
      {
        const std::lock_guard lock(mutex_);
        const auto n = std::min(options_.batchSize, queue_.size());
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (batch.empty()) break;

      if (!store && stopping && !lastAttemptMade) {
        lastAttemptMade = true;
        tryOpen();
      } else if (!store && !stopping && Clock::now() >= nextOpen) {
        tryOpen();
      }
      if (!store) {
        failed_.fetch_add(batch.size());
        logFailure("database unavailable path=" + path_, batch.size());
        continue;
      }
      if (stopping && lastAttemptMade && !healthy_) {
        // The final drain already failed once; do not wait busyTimeout per batch at exit.
        failed_.fetch_add(batch.size());
        continue;
      }
      try {
        store->insert(batch);
        written_.fetch_add(batch.size());
        batches_.fetch_add(1);
        healthy_ = true;
        if (wasFailing) logInfo("event log writing again path=" + path_);
        wasFailing = false;
      } catch (const EventStoreError& e) {
        onWriteFailure(e.what(), e.sqliteCode(), batch.size(), stopping);
      } catch (const std::exception& e) {
        onWriteFailure(e.what(), 0, batch.size(), stopping);
      }
    }
    // Reopen while idle too, so healthy() recovers before the next scan arrives.
    if (!store && !stopping && Clock::now() >= nextOpen) tryOpen();
    if (stopping) return;
  }
}

void EventWriter::logFailure(const std::string& what, std::size_t rows) {
  std::uint64_t heldBack = 0;
  if (!failLog_.allow(Clock::now(), heldBack)) return;
  std::string line = "event log failure: " + what;
  if (rows > 0) line += " rows_lost=" + std::to_string(rows);
  line += " failed_total=" + std::to_string(failed_.load()) +
          " log_lines_suppressed=" + std::to_string(heldBack);
  logError(line);
}

}  // namespace imapav::db
