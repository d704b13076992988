#include "tools/log/event_db.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "db/event_store.hpp"

namespace imapav::logtool {

namespace {

constexpr int kBusyTimeoutMs = 5000;

// imapav_threat_match(threats, glob): 1 when one comma-separated name GLOBs the pattern.
void threatMatch(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const auto* list = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const auto listBytes = static_cast<std::size_t>(sqlite3_value_bytes(argv[0]));
  const auto* glob = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
  int match = 0;
  if (list != nullptr && glob != nullptr) {
    for (const auto name : splitList(std::string_view(list, listBytes))) {
      if (sqlite3_strglob(glob, std::string(name).c_str()) == 0) {
        match = 1;
        break;
      }
    }
  }
  sqlite3_result_int(ctx, match);
}

// Into a Value of the previous row: its string keeps its capacity, so a pass over a day of
// rows does not allocate a string for each text column of each row.
void readColumn(sqlite3_stmt* stmt, int i, Value& out) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_NULL:
      out.type = Value::Type::kNull;
      out.integer = 0;
      out.text.clear();
      break;
    case SQLITE_INTEGER:
      out.type = Value::Type::kInteger;
      out.integer = static_cast<std::int64_t>(sqlite3_column_int64(stmt, i));
      out.text.clear();
      break;
    default: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      const auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(stmt, i));
      out.type = Value::Type::kText;
      out.integer = 0;
      if (text == nullptr) out.text.clear();
      else out.text.assign(text, bytes);
    }
  }
}

}  // namespace

void EventDb::DbCloser::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

void EventDb::StmtFinalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

EventDb::EventDb(const std::string& path, Mode mode) : path_(path) {
  // SQLite's own "unable to open database file" does not say why.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw DbError("cannot open " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw DbError("cannot open " + path + ": not a regular file");
  // Never SQLITE_OPEN_CREATE: the tool must not leave an empty database behind. NOMUTEX:
  // one connection on one thread, so no lock around every sqlite3_column_* call (a tenth of
  // the CPU time of stats).
  const int flags =
      (mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) fail("open");
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
  sqlite3_extended_result_codes(db_.get(), 1);

  // The first read is what reveals a file that is not a database.
  std::int64_t version = 0;
  try {
    version = scalar(Query{"PRAGMA user_version", {}});
  } catch (const DbError& e) {
    throw DbError(path + " is not a readable SQLite database (" + sqlite3_errmsg(db_.get()) + ")");
  }
  const int latest = db::EventStore::latestVersion();
  if (version > latest) {
    throw DbError(path + " has schema version " + std::to_string(version) +
                  ", newer than this imapav-log knows (" + std::to_string(latest) +
                  "); upgrade imapav");
  }
  if (version <= 0 || !hasTable("scan_events")) {
    throw DbError(path + " is not an imapav event database (schema version " +
                  std::to_string(version) + (version > 0 ? ", no scan_events table)" : ")"));
  }
  version_ = static_cast<int>(version);
  schema_.recipientIndex = hasTable("scan_events_recipients");
  if (sqlite3_create_function_v2(db_.get(), kThreatMatchFunction, 2,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, threatMatch,
                                 nullptr, nullptr, nullptr) != SQLITE_OK) {
    fail("register " + std::string(kThreatMatchFunction));
  }
}

void EventDb::fail(const std::string& doing) const {
  const std::string why = db_ ? sqlite3_errmsg(db_.get()) : "out of memory";
  throw DbError(path_ + ": " + doing + ": " + why);
}

bool EventDb::hasTable(const std::string& name) {
  return scalar(Query{"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                      {name}}) > 0;
}

EventDb::StmtPtr EventDb::prepare(const std::string& sql, const std::vector<SqlParam>& params) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &raw,
                                    nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) fail("query");
  int index = 0;
  for (const auto& p : params) {
    ++index;
    int brc = SQLITE_OK;
    if (const auto* i = std::get_if<std::int64_t>(&p)) {
      brc = sqlite3_bind_int64(raw, index, static_cast<sqlite3_int64>(*i));
    } else {
      // Destructor nullptr (SQLITE_STATIC, whose macro trips -Wold-style-cast): the
      // parameters outlive the statement's steps.
      const auto& s = std::get<std::string>(p);
      brc = sqlite3_bind_text64(raw, index, s.data(), static_cast<sqlite3_uint64>(s.size()),
                                nullptr, SQLITE_UTF8);
    }
    if (brc != SQLITE_OK) fail("bind");
  }
  return stmt;
}

void EventDb::forEach(const Query& q, const std::function<void(const Row&)>& onRow) {
  auto stmt = prepare(q.sql, q.params);
  const int columns = sqlite3_column_count(stmt.get());
  Row row(static_cast<std::size_t>(columns));
  for (;;) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) fail("query");
    for (int i = 0; i < columns; ++i) readColumn(stmt.get(), i, row[static_cast<std::size_t>(i)]);
    onRow(row);
  }
}

std::vector<Row> EventDb::rows(const Query& q) {
  std::vector<Row> out;
  forEach(q, [&out](const Row& r) { out.push_back(r); });
  return out;
}

std::int64_t EventDb::scalar(const Query& q) {
  auto stmt = prepare(q.sql, q.params);
  const int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) fail("query");
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt.get(), 0));
}

std::int64_t EventDb::execute(const Query& q) {
  auto stmt = prepare(q.sql, q.params);
  int rc = SQLITE_ROW;
  while (rc == SQLITE_ROW) rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_DONE) fail("write");
  return static_cast<std::int64_t>(sqlite3_changes64(db_.get()));
}

std::vector<std::string> EventDb::queryPlan(const Query& q) {
  std::vector<std::string> lines;
  forEach(Query{"EXPLAIN QUERY PLAN " + q.sql, q.params},
          [&lines](const Row& r) { lines.push_back(valueText(r.back())); });
  return lines;
}

StatsCounts countStats(EventDb& db, const StatsRange& r) {
  CubeBuilder cube(r.bucket);
  VersionCounter versions;
  // verdict, action, error_class, gateway, time_us, signature_version, cached
  db.forEach(statsCubeQuery(r), [&cube, &versions](const Row& row) {
    versions.add(row[5].text, row[0].text, row[6].integer != 0, row[4].integer);
    cube.add(row[0].text, row[1].text, row[2].text, row[3].text, row[4].integer);
  });
  return StatsCounts{cube.rows(), versions.rows()};
}

}  // namespace imapav::logtool
