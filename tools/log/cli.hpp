#pragma once
// imapav-log's command line: parsed and validated without I/O. A usage error is an
// Error with code 2 and a message for stderr.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/common/result.hpp"
#include "tools/log/format.hpp"
#include "tools/log/log_query.hpp"

namespace imapav::logtool {

inline constexpr const char* kDefaultDatabase = "/var/lib/imapav/events.sqlite";
inline constexpr std::int64_t kDefaultLimit = 50;

enum class Command { kEvents, kShow, kStats, kFollow, kPrune };

struct Options {
  std::string db;
  std::optional<Command> command;  // empty only with help
  bool help = false;
  Filters filters;
  std::int64_t limit = kDefaultLimit;  // 0 = all
  std::optional<Format> format;
  std::int64_t id = 0;  // show
  std::optional<Bucket> by;
  std::int64_t top = 10;
  std::int64_t intervalUs = kUsPerSecond;
  std::int64_t olderThanUs = 0;  // prune, required
  bool dryRun = false;
};

// args without the program name; defaultDb from $IMAPAV_LOG_DB or kDefaultDatabase.
Result<Options> parseArgs(const std::vector<std::string>& args, const std::string& defaultDb);
// The whole help, or one command's.
std::string helpText(std::optional<Command> command);

}  // namespace imapav::logtool
