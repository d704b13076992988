#pragma once
// What happens to a message, given its scan result. The per-error-class table is where
// the fallback actions of a later issue plug in; today every class follows fail_mode.

#include <array>
#include <string>
#include <string_view>

#include "icap-server/scan/scanner.hpp"

namespace imapav::icapd {

enum class FailMode { Pass, Drop };

enum class Action {
  Pass,           // deliver the original unchanged (clean)
  Replace,        // drop the original, deliver a notice (infected, or error with drop)
  PassUnscanned,  // deliver the original, marked and logged as not scanned (error with pass)
};

std::string_view toString(Action action);
std::string_view toString(FailMode mode);

struct Decision {
  Action action = Action::Replace;
  std::string reason;  // for the notice and the log: threat names or the error class
};

class Policy {
 public:
  explicit Policy(FailMode failMode);
  Decision decide(const scan::ScanResult& result) const;
  FailMode onError(scan::ErrorClass error) const;

 private:
  static constexpr std::size_t kClasses = 10;
  std::array<FailMode, kClasses> onError_{};
};

}  // namespace imapav::icapd
