#pragma once
#include <string_view>
#include <vector>

namespace imapav::db {

struct Migration {
  std::string_view name;  // file name, e.g. "0001_initial.sql"; its number is the version
  std::string_view sql;
};

// Every migration in db/migrations/, in order.
const std::vector<Migration>& migrations();

}  // namespace imapav::db
