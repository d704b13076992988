#pragma once
// Small helpers the log tool's unit and integration tests share: splitting output into
// lines, and running SQL on a database file directly (not through the code under test).

#include <sqlite3.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

namespace imapav::test {

// The lines of text, without their '\n'; no empty last line for a final '\n'.
inline std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// Runs sql on the database file at path (created if missing); fails the test on error.
inline void sqliteExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string message = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  BOOST_REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

}  // namespace imapav::test
