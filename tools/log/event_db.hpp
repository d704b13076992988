#pragma once
// imapav-log's SQLite adapter: opens an existing imapav event database (never creates or
// migrates one), registers the threat GLOB function, runs the queries log_query builds.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/log/format.hpp"
#include "tools/log/log_query.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace imapav::logtool {

// Anything that makes the command fail at run time (exit status 1).
class DbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class EventDb {
 public:
  enum class Mode { kReadOnly, kReadWrite };
  // Refuses a missing file, a file that is not SQLite, a database without imapav's schema
  // (user_version 0 or no scan_events) and a schema newer than this build.
  EventDb(const std::string& path, Mode mode);

  int schemaVersion() const { return version_; }
  const Schema& schema() const { return schema_; }
  bool hasTable(const std::string& name);
  // Each result row, read as Values.
  void forEach(const Query& q, const std::function<void(const Row&)>& onRow);
  std::vector<Row> rows(const Query& q);
  // The first column of the first row as an integer (0 when there is none).
  std::int64_t scalar(const Query& q);
  // Runs a statement that returns no rows; the number of rows it changed.
  std::int64_t execute(const Query& q);
  // The detail lines of EXPLAIN QUERY PLAN.
  std::vector<std::string> queryPlan(const Query& q);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const noexcept;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  StmtPtr prepare(const std::string& sql, const std::vector<SqlParam>& params);
  [[noreturn]] void fail(const std::string& doing) const;

  std::string path_;
  std::unique_ptr<sqlite3, DbCloser> db_;
  int version_ = 0;
  Schema schema_;
};

// The one pass of stats over a range (statsCubeQuery), counted.
struct StatsCounts {
  std::vector<CubeRow> cube;
  std::vector<VersionCount> versions;
};
StatsCounts countStats(EventDb& db, const StatsRange& r);

}  // namespace imapav::logtool
