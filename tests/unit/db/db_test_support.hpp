#pragma once
// Shared by the db unit tests: a fresh temporary directory per test, sample rows, and raw
// SQLite access for checks that must not go through the code under test.
#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "db/event_writer.hpp"
#include "db/scan_event.hpp"

namespace imapav::db::test {

// Writer options for tests. holdUntilStop: never flushes on its own, rows stay queued
// until stop(). quick: small batches, short intervals.
inline WriterOptions holdUntilStop(std::size_t maxQueue = 100000) {
  WriterOptions o;
  o.maxQueue = maxQueue;
  o.batchSize = 1000000;
  o.flushInterval = std::chrono::hours(1);
  return o;
}

inline WriterOptions quick() {
  WriterOptions o;
  o.batchSize = 50;
  o.flushInterval = std::chrono::milliseconds(10);
  o.reopenInterval = std::chrono::milliseconds(20);
  o.busyTimeout = std::chrono::milliseconds(50);
  return o;
}

struct TempDir {
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "imapav-db-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path / name).string(); }

  std::filesystem::path path;
};

inline ScanEvent sampleEvent(std::int64_t i) {
  ScanEvent e;
  e.timeUs = 1700000000000000 + i;
  e.gateway = "192.0.2.1";
  e.service = "avscan";
  e.method = "RESPMOD";
  e.user = "user" + std::to_string(i % 7);
  e.imapUrl = "imap://user@mail.example/INBOX;UIDVALIDITY=7/;UID=" + std::to_string(i);
  e.mailbox = "INBOX";
  e.uidValidity = 7;
  e.uid = i;
  e.messageId = "<" + std::to_string(i) + "@example.org>";
  e.sender = "sender@example.org";
  e.recipients = "user@example.net";
  e.subject = "message " + std::to_string(i);
  e.size = 1000 + i;
  e.sha256 = std::string(64, 'a');
  e.verdict = "clean";
  e.action = "pass";
  e.scanTimeUs = 1500;
  return e;
}

// Raw connection, independent of EventStore.
struct RawDb {
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    db.reset(raw);
    if (rc != SQLITE_OK) throw std::runtime_error("raw open failed: " + path);
  }
  void exec(const std::string& sql) {
    if (sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("raw exec failed: ") + sqlite3_errmsg(db.get()));
    }
  }
  // First column of the first row as text; "<null>" for NULL, "<none>" for no row.
  std::string text(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("raw prepare failed: ") + sqlite3_errmsg(db.get()));
    }
    const std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    if (sqlite3_step(raw) != SQLITE_ROW) return "<none>";
    const auto* value = sqlite3_column_text(raw, 0);
    if (value == nullptr) return "<null>";
    return reinterpret_cast<const char*>(value);
  }

  std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db{nullptr, &sqlite3_close_v2};
};

// Collects what the writer logs to "icapd.eventlog" while it exists.
class LogCapture {
 public:
  LogCapture() : channel_(new Sink) {
    auto& logger = Poco::Logger::get("icapd.eventlog");
    logger.setChannel(channel_);  // Poco 1.11 takes an AutoPtr: a raw pointer would be adopted
    logger.setLevel(Poco::Message::PRIO_INFORMATION);
  }
  ~LogCapture() { Poco::Logger::get("icapd.eventlog").setChannel(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> errors() const {
    const std::lock_guard lock(channel_->mutex);
    return channel_->errors;
  }

 private:
  struct Sink : Poco::Channel {
    void log(const Poco::Message& message) override {
      if (message.getPriority() > Poco::Message::PRIO_ERROR) return;
      const std::lock_guard lock(mutex);
      errors.push_back(message.getText());
    }
    mutable std::mutex mutex;
    std::vector<std::string> errors;
  };
  Poco::AutoPtr<Sink> channel_;
};

// Polls until the condition holds; the limit is only a guard against hanging forever.
inline bool waitUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace imapav::db::test
