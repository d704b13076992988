#include "db/event_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <thread>

#include "db/migrations.hpp"

namespace imapav::db {

namespace {

constexpr const char* kInsertSql =
    "INSERT INTO scan_events (time_us, gateway, service, method, client_ip, user, imap_url,"
    " mailbox, uid_validity, uid, message_id, sender, recipients, subject, size, sha256,"
    " verdict, threats, action, error_class, scan_time_us, engine_version,"
    " signature_version, cached)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

constexpr const char* kSelectSql =
    "SELECT time_us, gateway, service, method, client_ip, user, imap_url, mailbox,"
    " uid_validity, uid, message_id, sender, recipients, subject, size, sha256, verdict,"
    " threats, action, error_class, scan_time_us, engine_version, signature_version, cached"
    " FROM scan_events ORDER BY id";

constexpr const char* kInsertNotificationSql =
    "INSERT INTO notifications (time_us, kind, recipient, outcome, attempts, detail,"
    " message_id, gateway) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

constexpr const char* kSelectNotificationsSql =
    "SELECT time_us, kind, recipient, outcome, attempts, detail, message_id, gateway"
    " FROM notifications ORDER BY id";

// "0001_initial.sql" -> 1; -1 when the name does not start with a positive number.
int versionOf(std::string_view name) {
  int version = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), version);
  if (ec != std::errc{} || end == name.data() || version <= 0) return -1;
  return version;
}

// Binds parameters left to right. Text is bound without a copy (destructor nullptr, i.e.
// SQLITE_STATIC, whose macro would trip -Wold-style-cast): the strings outlive the step.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}
  int rc() const { return rc_; }
  Binder& text(const std::string& value) {
    return check(sqlite3_bind_text64(stmt_, next(), value.data(),
                                     static_cast<sqlite3_uint64>(value.size()), nullptr,
                                     SQLITE_UTF8));
  }
  Binder& integer(std::int64_t value) {
    return check(sqlite3_bind_int64(stmt_, next(), static_cast<sqlite3_int64>(value)));
  }
  Binder& optional(const std::optional<std::int64_t>& value) {
    if (!value) return check(sqlite3_bind_null(stmt_, next()));
    return integer(*value);
  }

 private:
  int next() { return ++index_; }
  Binder& check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3_stmt* stmt_;
  int index_ = 0;
  int rc_ = SQLITE_OK;
};

std::string columnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return {};
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
}

std::optional<std::int64_t> columnOptional(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt, column));
}

int busyMillis(std::chrono::milliseconds timeout) {
  const auto ms = timeout.count();
  if (ms < 0) return 0;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace

void EventStore::DbCloser::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

void EventStore::StmtFinalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

int EventStore::latestVersion() {
  int latest = 0;
  for (const Migration& m : migrations()) latest = std::max(latest, versionOf(m.name));
  return latest;
}

EventStore::EventStore(const std::string& path, std::chrono::milliseconds busyTimeout)
    : EventStore(path, Mode::kReadWrite, busyTimeout) {}

EventStore EventStore::openReadOnly(const std::string& path,
                                    std::chrono::milliseconds busyTimeout) {
  return EventStore(path, Mode::kReadOnly, busyTimeout);
}

EventStore::EventStore(const std::string& path, Mode mode, std::chrono::milliseconds busyTimeout)
    : path_(path) {
  const int flags =
      mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  db_.reset(raw);  // owned even on failure: sqlite3_open_v2 may hand back a handle anyway
  if (rc != SQLITE_OK) fail("open", rc);
  sqlite3_busy_timeout(db_.get(), busyMillis(busyTimeout));

  // Reading the version first is also what reveals a file that is not a database.
  const auto version = queryInt("PRAGMA user_version", "read schema version");
  if (version > latestVersion()) {
    throw EventStoreError("event store " + path_ + ": schema version " + std::to_string(version) +
                          " is newer than this build knows (" + std::to_string(latestVersion()) +
                          "); upgrade imapav");
  }
  if (mode == Mode::kReadOnly) {
    if (version == 0) {
      throw EventStoreError("event store " + path_ +
                            ": not an imapav event database (schema version 0)");
    }
    return;
  }
  // Switching a new file to WAL needs an exclusive lock, and SQLite may answer BUSY at once
  // instead of calling the busy handler (another process opening the same new file at the
  // same moment): retry within the busy timeout.
  const auto walDeadline = std::chrono::steady_clock::now() + busyTimeout;
  for (;;) {
    const int walRc = sqlite3_exec(db_.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (walRc == SQLITE_OK) break;
    if ((walRc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= walDeadline) fail("enable WAL", walRc);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  exec("PRAGMA synchronous=NORMAL", "set synchronous");
  migrate();
  prepare(kInsertSql, insert_, "prepare insert");
  prepare(kInsertNotificationSql, insertNotification_, "prepare notification insert");
}

void EventStore::prepare(const char* sql, StmtPtr& stmt, const std::string& doing) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  stmt.reset(raw);
  if (rc != SQLITE_OK) fail(doing, rc);
}

void EventStore::migrate() {
  int previous = 0;
  for (const Migration& m : migrations()) {
    const int version = versionOf(m.name);
    if (version <= previous) {
      throw EventStoreError("event store: migration " + std::string(m.name) +
                            " is misnamed or out of order (want NNNN_name.sql, increasing)");
    }
    previous = version;
    const std::string doing = "apply migration " + std::string(m.name);
    // IMMEDIATE takes the write lock up front, so two processes starting together
    // serialise here and the second sees the first one's version below.
    exec("BEGIN IMMEDIATE", doing);
    try {
      if (queryInt("PRAGMA user_version", doing) < version) {
        const std::string sql(m.sql);
        exec(sql.c_str(), doing);
        const std::string setVersion = "PRAGMA user_version = " + std::to_string(version);
        exec(setVersion.c_str(), doing);
      }
      exec("COMMIT", doing);
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

void EventStore::insert(const std::vector<ScanEvent>& batch) { insert(batch, {}); }

void EventStore::insertNotifications(const std::vector<NotificationEvent>& batch) {
  insert({}, batch);
}

void EventStore::insert(const std::vector<ScanEvent>& scans,
                        const std::vector<NotificationEvent>& notifications) {
  if (scans.empty() && notifications.empty()) return;
  if (!insert_) {
    throw EventStoreError("event store " + path_ + ": opened read-only", SQLITE_READONLY);
  }
  exec("BEGIN IMMEDIATE", "begin insert");
  try {
    insertRows(scans);
    insertRows(notifications);
    exec("COMMIT", "commit insert");
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void EventStore::insertRows(const std::vector<ScanEvent>& batch) {
  sqlite3_stmt* stmt = insert_.get();
  for (const ScanEvent& e : batch) {
    Binder bind(stmt);
    bind.integer(e.timeUs)
        .text(e.gateway)
        .text(e.service)
        .text(e.method)
        .text(e.clientIp)
        .text(e.user)
        .text(e.imapUrl)
        .text(e.mailbox)
        .optional(e.uidValidity)
        .optional(e.uid)
        .text(e.messageId)
        .text(e.sender)
        .text(e.recipients)
        .text(e.subject)
        .integer(e.size)
        .text(e.sha256)
        .text(e.verdict)
        .text(e.threats)
        .text(e.action)
        .text(e.errorClass)
        .integer(e.scanTimeUs)
        .text(e.engineVersion)
        .text(e.signatureVersion)
        .integer(e.cached ? 1 : 0);
    if (bind.rc() != SQLITE_OK) {
      sqlite3_reset(stmt);
      fail("bind insert", bind.rc());
    }
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) fail("insert", rc);
  }
}

void EventStore::insertRows(const std::vector<NotificationEvent>& batch) {
  sqlite3_stmt* stmt = insertNotification_.get();
  for (const NotificationEvent& e : batch) {
    Binder bind(stmt);
    bind.integer(e.timeUs)
        .text(e.kind)
        .text(e.recipient)
        .text(e.outcome)
        .integer(e.attempts)
        .text(e.detail)
        .text(e.messageId)
        .text(e.gateway);
    if (bind.rc() != SQLITE_OK) {
      sqlite3_reset(stmt);
      fail("bind notification insert", bind.rc());
    }
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) fail("insert notification", rc);
  }
}

int EventStore::schemaVersion() const {
  return static_cast<int>(queryInt("PRAGMA user_version", "read schema version"));
}

std::int64_t EventStore::count() const {
  return queryInt("SELECT count(*) FROM scan_events", "count rows");
}

std::int64_t EventStore::countNotifications() const {
  return queryInt("SELECT count(*) FROM notifications", "count notifications");
}

std::vector<ScanEvent> EventStore::readAll() const {
  sqlite3_stmt* raw = nullptr;
  const int prc = sqlite3_prepare_v2(db_.get(), kSelectSql, -1, &raw, nullptr);
  const StmtPtr stmt(raw);
  if (prc != SQLITE_OK) fail("prepare select", prc);
  std::vector<ScanEvent> rows;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    ScanEvent& e = rows.emplace_back();
    int c = 0;
    e.timeUs = sqlite3_column_int64(raw, c++);
    e.gateway = columnText(raw, c++);
    e.service = columnText(raw, c++);
    e.method = columnText(raw, c++);
    e.clientIp = columnText(raw, c++);
    e.user = columnText(raw, c++);
    e.imapUrl = columnText(raw, c++);
    e.mailbox = columnText(raw, c++);
    e.uidValidity = columnOptional(raw, c++);
    e.uid = columnOptional(raw, c++);
    e.messageId = columnText(raw, c++);
    e.sender = columnText(raw, c++);
    e.recipients = columnText(raw, c++);
    e.subject = columnText(raw, c++);
    e.size = sqlite3_column_int64(raw, c++);
    e.sha256 = columnText(raw, c++);
    e.verdict = columnText(raw, c++);
    e.threats = columnText(raw, c++);
    e.action = columnText(raw, c++);
    e.errorClass = columnText(raw, c++);
    e.scanTimeUs = sqlite3_column_int64(raw, c++);
    e.engineVersion = columnText(raw, c++);
    e.signatureVersion = columnText(raw, c++);
    e.cached = sqlite3_column_int64(raw, c++) != 0;
  }
  if (rc != SQLITE_DONE) fail("select", rc);
  return rows;
}

std::vector<NotificationEvent> EventStore::readNotifications() const {
  sqlite3_stmt* raw = nullptr;
  const int prc = sqlite3_prepare_v2(db_.get(), kSelectNotificationsSql, -1, &raw, nullptr);
  const StmtPtr stmt(raw);
  if (prc != SQLITE_OK) fail("prepare notification select", prc);
  std::vector<NotificationEvent> rows;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    NotificationEvent& e = rows.emplace_back();
    int c = 0;
    e.timeUs = sqlite3_column_int64(raw, c++);
    e.kind = columnText(raw, c++);
    e.recipient = columnText(raw, c++);
    e.outcome = columnText(raw, c++);
    e.attempts = sqlite3_column_int64(raw, c++);
    e.detail = columnText(raw, c++);
    e.messageId = columnText(raw, c++);
    e.gateway = columnText(raw, c++);
  }
  if (rc != SQLITE_DONE) fail("notification select", rc);
  return rows;
}

void EventStore::fail(const std::string& doing, int rc) const {
  // The connection's message is more specific ("no such table: x") than the code's.
  const char* detail = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  throw EventStoreError("event store " + path_ + ": " + doing + " failed: " + detail +
                            " (SQLite code " + std::to_string(rc) + ")",
                        rc & 0xff);
}

void EventStore::exec(const char* sql, const std::string& doing) {
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(doing, rc);
}

std::int64_t EventStore::queryInt(const char* sql, const std::string& doing) const {
  sqlite3_stmt* raw = nullptr;
  const int prc = sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr);
  const StmtPtr stmt(raw);
  if (prc != SQLITE_OK) fail(doing, prc);
  const int rc = sqlite3_step(raw);
  if (rc != SQLITE_ROW) fail(doing, rc);
  return static_cast<std::int64_t>(sqlite3_column_int64(raw, 0));
}

}  // namespace imapav::db
