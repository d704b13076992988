#pragma once
// What happens to a message, given its scan result: the fallback action of each error
// class, the kind of virus notice, and which notifications go out. A server holds a base
// policy and named profiles (config.hpp) and picks one per request.

#include <array>
#include <string>
#include <string_view>

#include "icap-server/scan/scanner.hpp"

namespace imapav::icapd {

// Also the fallback action of an error class: Pass = permit (delivered, logged as
// unscanned), Drop = block (replaced by a notice).
enum class FailMode { Pass, Drop };

// How a client learns of a virus: a replacement message, or at the protocol level only
// (the redirector withholds the message and fails the command; see README).
enum class VirusNotice { Message, ProtocolOnly };

enum class Action {
  Pass,           // deliver the original unchanged (clean)
  Replace,        // drop the original, deliver a notice (infected, or error with drop)
  PassUnscanned,  // deliver the original, marked and logged as not scanned (error with pass)
};

std::string_view toString(Action action);
std::string_view toString(FailMode mode);
std::string_view toString(VirusNotice notice);

struct PolicySettings {
  static constexpr std::size_t kClasses = 12;  // by scan::ErrorClass value
  std::array<FailMode, kClasses> onError{};
  VirusNotice virusNotice = VirusNotice::Message;
  bool notifySenderOnVirus = false;         // off: forged senders make notifications backscatter
  bool notifySenderOnErrorDrop = false;
  bool notifyRecipientOnErrorPass = false;  // the subject tag
  std::string subjectTag = "[not virus scanned]";

  explicit PolicySettings(FailMode all = FailMode::Drop) { onError.fill(all); }
};

// Applies one policy setting; key is relative ("fail_mode", "on_error.encrypted", ...),
// fullKey names it in errors. fail_mode sets every error class at once, so apply it
// before the per-class keys. Returns false for a key that is not a policy setting; throws
// config::ConfigError for a bad value.
bool applyPolicySetting(PolicySettings& s, const std::string& key, const std::string& fullKey,
                        const std::string& value);

struct Decision {
  Action action = Action::Replace;
  std::string reason;  // for the notice and the log: threat names or the error class
  scan::ErrorClass error = scan::ErrorClass::None;  // the class decided on (Fragmented included)
  bool protocolOnly = false;  // Replace of a virus, notice at the protocol level only
  bool notifySender = false;  // a notification to the original sender is due
  bool tagSubject = false;    // PassUnscanned: append PolicySettings::subjectTag
};

class Policy {
 public:
  explicit Policy(FailMode failMode) : Policy(PolicySettings(failMode)) {}
  explicit Policy(PolicySettings settings) : settings_(std::move(settings)) {}
  // fragment: the message is a message/partial fragment, which a clean scan cannot clear.
  Decision decide(const scan::ScanResult& result, bool fragment = false) const;
  FailMode onError(scan::ErrorClass error) const;
  const PolicySettings& settings() const { return settings_; }

 private:
  PolicySettings settings_;
};

}  // namespace imapav::icapd
