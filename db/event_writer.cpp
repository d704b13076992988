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
  return enqueue(Row(std::in_place_type<ScanEvent>, std::move(event)));  // moves never throw
}

bool EventWriter::submitNotification(NotificationEvent event) noexcept {
  return enqueue(Row(std::in_place_type<NotificationEvent>, std::move(event)));
}

bool EventWriter::enqueue(Row row) noexcept {
  const bool notification = std::holds_alternative<NotificationEvent>(row);
  const auto countDrop = [&] {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    if (notification) notificationsDropped_.fetch_add(1, std::memory_order_relaxed);
  };
  bool accepted = false;
  try {
    bool wakeWriter = false;
    bool logDrop = false;
    std::uint64_t heldBack = 0;
    {
      const std::lock_guard lock(mutex_);
      if (!stopping_ && queue_.size() < options_.maxQueue) {
        queue_.push_back(std::move(row));
        accepted = true;
        queued_.fetch_add(1, std::memory_order_relaxed);
        if (notification) notificationsQueued_.fetch_add(1, std::memory_order_relaxed);
        wakeWriter = queue_.size() == options_.batchSize;
      } else {
        countDrop();
        logDrop = dropLog_.allow(Clock::now(), heldBack);
      }
    }
    if (wakeWriter) wake_.notify_one();
    if (logDrop) {
      logError(std::string("event log queue full or writer stopped, ") +
               (notification ? "notifications" : "scan events") + " dropped path=" + path_ +
               " max_queue=" + std::to_string(options_.maxQueue) +
               " dropped_total=" + std::to_string(dropped_.load()) +
               " notifications_dropped_total=" + std::to_string(notificationsDropped_.load()) +
               " log_lines_suppressed=" + std::to_string(heldBack));
    }
  } catch (...) {
    // Only allocation can throw above; a row that did not make it in is a dropped row.
    if (!accepted) countDrop();
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
  s.notificationsQueued = notificationsQueued_.load();
  s.notificationsWritten = notificationsWritten_.load();
  s.notificationsDropped = notificationsDropped_.load();
  s.notificationsFailed = notificationsFailed_.load();
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

  std::vector<ScanEvent> scans;  // one batch, split by kind; reused: keeps its capacity
  std::vector<NotificationEvent> notifications;
  const auto countFailed = [&] {
    failed_.fetch_add(scans.size() + notifications.size());
    notificationsFailed_.fetch_add(notifications.size());
  };

  auto onWriteFailure = [&](const char* error, int sqliteCode, std::size_t rows, bool stopping) {
    countFailed();
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
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.flushInterval,
                     [&] { return stopping_ || queue_.size() >= options_.batchSize; });
      stopping = stopping_;
    }
    for (;;) {
      scans.clear();
      notifications.clear();
      {
        const std::lock_guard lock(mutex_);
        const auto n = std::min(options_.batchSize, queue_.size());
        for (std::size_t i = 0; i < n; ++i) {
          Row& row = queue_.front();
          if (auto* scan = std::get_if<ScanEvent>(&row)) {
            scans.push_back(std::move(*scan));
          } else {
            notifications.push_back(std::get<NotificationEvent>(std::move(row)));
          }
          queue_.pop_front();
        }
      }
      const std::size_t rows = scans.size() + notifications.size();
      if (rows == 0) break;

      if (!store && stopping && !lastAttemptMade) {
        lastAttemptMade = true;
        tryOpen();
      } else if (!store && !stopping && Clock::now() >= nextOpen) {
        tryOpen();
      }
      if (!store) {
        countFailed();
        logFailure("database unavailable path=" + path_, rows);
        continue;
      }
      if (stopping && lastAttemptMade && !healthy_) {
        // The final drain already failed once; do not wait busyTimeout per batch at exit.
        countFailed();
        continue;
      }
      try {
        store->insert(scans, notifications);  // one transaction for both kinds
        written_.fetch_add(rows);
        notificationsWritten_.fetch_add(notifications.size());
        batches_.fetch_add(1);
        healthy_ = true;
        if (wasFailing) logInfo("event log writing again path=" + path_);
        wasFailing = false;
      } catch (const EventStoreError& e) {
        onWriteFailure(e.what(), e.sqliteCode(), rows, stopping);
      } catch (const std::exception& e) {
        onWriteFailure(e.what(), 0, rows, stopping);
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
