#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <variant>

#include "db/notification_event.hpp"
#include "db/scan_event.hpp"

namespace imapav::db {

struct WriterOptions {
  // Rows waiting, scan events and notifications together (one bound, one queue: the
  // rare notification needs no reserve of its own); beyond this submit*() drops.
  std::size_t maxQueue = 100000;
  std::size_t batchSize = 500;  // rows of both kinds per transaction; a full batch goes at once
  std::chrono::milliseconds flushInterval{200};    // a partial batch waits at most this
  std::chrono::milliseconds reopenInterval{5000};  // between attempts to open a failing DB
  std::chrono::milliseconds busyTimeout{2000};     // one batch's wait on another's lock
};

// Row counters cover both kinds; the notification* fields say how many of them were
// notifications (scan events = total - notifications).
struct WriterStats {
  std::uint64_t queued = 0;        // accepted by submit() / submitNotification()
  std::uint64_t written = 0;       // committed to the database
  std::uint64_t dropped = 0;       // refused by submit*(): queue full or writer stopped
  std::uint64_t failed = 0;        // lost to database errors
  std::uint64_t batches = 0;       // committed transactions
  std::uint64_t openFailures = 0;  // attempts to open the database that failed
  std::uint64_t notificationsQueued = 0;   // of queued
  std::uint64_t notificationsWritten = 0;  // of written
  std::uint64_t notificationsDropped = 0;  // of dropped
  std::uint64_t notificationsFailed = 0;   // of failed
};

// The server's side of the event log: a bounded queue drained by one background thread
// that owns the EventStore. A scan never waits on the database. A batch that cannot be
// written is lost and counted (not kept), so an outage costs rows, never memory or latency.
class EventWriter {
 public:
  // Starts the thread; the database is opened there, and reopened every reopenInterval
  // while that fails.
  explicit EventWriter(std::string path, WriterOptions options = {});
  ~EventWriter();  // stop()
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // O(1) under a short lock; false when the queue is full or the writer stopped.
  bool submit(ScanEvent event) noexcept;
  // The same for a notification row: same queue, same bound, same batches (a batch holding
  // both kinds is one transaction), rows arrive in submission order.
  bool submitNotification(NotificationEvent event) noexcept;
  // Writes everything queued (one last open attempt even if the DB was failing), then
  // joins. Idempotent.
  void stop();
  WriterStats stats() const;
  bool healthy() const;  // the last open or write succeeded

 private:
  // At most one log line per kind per interval; counts what it held back.
  struct LogThrottle {
    std::chrono::steady_clock::time_point next{};
    std::uint64_t suppressed = 0;
    bool allow(std::chrono::steady_clock::time_point now, std::uint64_t& heldBack);
  };

  using Row = std::variant<ScanEvent, NotificationEvent>;

  bool enqueue(Row row) noexcept;
  void run();
  void work();
  void logFailure(const std::string& what, std::size_t rows);

  const std::string path_;
  const WriterOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Row> queue_;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  LogThrottle dropLog_;          // guarded by mutex_
  LogThrottle failLog_;          // writer thread only

  std::atomic<std::uint64_t> queued_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> openFailures_{0};
  std::atomic<std::uint64_t> notificationsQueued_{0};
  std::atomic<std::uint64_t> notificationsWritten_{0};
  std::atomic<std::uint64_t> notificationsDropped_{0};
  std::atomic<std::uint64_t> notificationsFailed_{0};
  std::atomic<bool> healthy_{false};

  std::mutex stopMutex_;
  std::thread thread_;  // last: starts once every other member exists
};

}  // namespace imapav::db
