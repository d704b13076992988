#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "db/notification_event.hpp"
#include "db/scan_event.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace imapav::db {

// Everything the store cannot do; the message names the file and carries SQLite's own words.
class EventStoreError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
  EventStoreError(const std::string& what, int sqliteCode)
      : std::runtime_error(what), sqliteCode_(sqliteCode) {}
  // SQLite's primary result code (SQLITE_BUSY, SQLITE_FULL, ...), 0 when not from SQLite.
  int sqliteCode() const noexcept { return sqliteCode_; }

 private:
  int sqliteCode_ = 0;
};

inline constexpr std::chrono::milliseconds kDefaultBusyTimeout{5000};

// Synchronous access to the event database (scan_events, notifications). One instance per
// thread: the writer thread owns one, read-only tools open their own alongside it (WAL lets
// them read while the server writes).
class EventStore {
 public:
  // Opens or creates the file with WAL and synchronous=NORMAL, then applies pending
  // migrations, one transaction each (the schema version lives in PRAGMA user_version).
  // Throws EventStoreError, also for a database newer than this build knows.
  explicit EventStore(const std::string& path,
                      std::chrono::milliseconds busyTimeout = kDefaultBusyTimeout);
  // No creation, no migrations: for tools that only query. Refuses a file that is not an
  // imapav event database (version 0) or is newer than this build.
  static EventStore openReadOnly(const std::string& path,
                                 std::chrono::milliseconds busyTimeout = kDefaultBusyTimeout);

  EventStore(EventStore&&) noexcept = default;
  EventStore& operator=(EventStore&&) noexcept = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  ~EventStore() = default;

  // All rows in one transaction with one reused prepared statement; all or nothing.
  void insert(const std::vector<ScanEvent>& batch);
  void insertNotifications(const std::vector<NotificationEvent>& batch);
  // Both kinds in one transaction, all or nothing: the writer's mixed batch.
  void insert(const std::vector<ScanEvent>& scans,
              const std::vector<NotificationEvent>& notifications);
  int schemaVersion() const;
  std::int64_t count() const;               // rows in scan_events
  std::int64_t countNotifications() const;  // rows in notifications
  // Every row in insertion order. For tests and small tools; the CLI queries with SQL.
  std::vector<ScanEvent> readAll() const;
  std::vector<NotificationEvent> readNotifications() const;
  const std::string& path() const noexcept { return path_; }

  // The highest version among the embedded migrations.
  static int latestVersion();

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const noexcept;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  enum class Mode { kReadWrite, kReadOnly };
  EventStore(const std::string& path, Mode mode, std::chrono::milliseconds busyTimeout);

  void migrate();
  void insertRows(const std::vector<ScanEvent>& batch);  // inside a transaction
  void insertRows(const std::vector<NotificationEvent>& batch);
  void prepare(const char* sql, StmtPtr& stmt, const std::string& doing);
  [[noreturn]] void fail(const std::string& doing, int rc) const;
  void exec(const char* sql, const std::string& doing);
  std::int64_t queryInt(const char* sql, const std::string& doing) const;

  std::string path_;
  DbPtr db_;
  // Declared after db_ so they are finalized before the connection closes; null read-only.
  StmtPtr insert_;
  StmtPtr insertNotification_;
};

}  // namespace imapav::db
