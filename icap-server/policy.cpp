#include "icap-server/policy.hpp"

namespace imapav::icapd {

std::string_view toString(Action action) {
  switch (action) {
    case Action::Pass: return "pass";
    case Action::Replace: return "replace";
    case Action::PassUnscanned: return "pass-unscanned";
  }
  return "replace";
}

std::string_view toString(FailMode mode) { return mode == FailMode::Pass ? "pass" : "drop"; }

Policy::Policy(FailMode failMode) { onError_.fill(failMode); }

FailMode Policy::onError(scan::ErrorClass error) const {
  const auto i = static_cast<std::size_t>(error);
  return i < onError_.size() ? onError_[i] : FailMode::Drop;
}

Decision Policy::decide(const scan::ScanResult& result) const {
  switch (result.verdict) {
    case scan::Verdict::Clean:
      return {Action::Pass, ""};
    case scan::Verdict::Infected: {
      std::string names;
      for (const auto& t : result.threats) {
        if (!names.empty()) names += ", ";
        names += t;
      }
      return {Action::Replace, names};
    }
    case scan::Verdict::Error:
      break;
  }
  // An error without a class must still be decided: treat it as internal, never clean.
  const auto error = result.error == scan::ErrorClass::None ? scan::ErrorClass::Internal : result.error;
  const auto mode = onError(error);
  return {mode == FailMode::Pass ? Action::PassUnscanned : Action::Replace,
          std::string(scan::toString(error))};
}

}  // namespace imapav::icapd
