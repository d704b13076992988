#include "icap-server/policy.hpp"

#include "shared/config/settings.hpp"

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

std::string_view toString(VirusNotice notice) {
  return notice == VirusNotice::ProtocolOnly ? "protocol-only" : "message";
}

namespace {

FailMode parseAction(const std::string& key, const std::string& value) {
  if (value == "block" || value == "drop") return FailMode::Drop;
  if (value == "permit" || value == "pass") return FailMode::Pass;
  throw config::ConfigError(key + ": expected block or permit, got '" + value + "'");
}

}  // namespace

bool applyPolicySetting(PolicySettings& s, const std::string& key, const std::string& fullKey,
                        const std::string& value) {
  constexpr std::string_view kOnError = "on_error.";
  if (key == "fail_mode") {
    if (value != "pass" && value != "drop") {
      throw config::ConfigError(fullKey + ": expected pass or drop, got '" + value + "'");
    }
    s.onError.fill(parseAction(fullKey, value));
  } else if (key.rfind(kOnError, 0) == 0) {
    const auto name = key.substr(kOnError.size());
    const auto cls = scan::errorClassFromString(name);
    if (!cls || *cls == scan::ErrorClass::None) {
      throw config::ConfigError(fullKey + ": unknown error class '" + name +
                                "' (too_large, timeout, corrupt, encrypted, archive_limit, engine_not_ready, "
                                "out_of_resources, overloaded, fragmented, internal)");
    }
    s.onError[static_cast<std::size_t>(*cls)] = parseAction(fullKey, value);
  } else if (key == "virus_notice") {
    if (value == "message") s.virusNotice = VirusNotice::Message;
    else if (value == "protocol-only") s.virusNotice = VirusNotice::ProtocolOnly;
    else throw config::ConfigError(fullKey + ": expected message or protocol-only, got '" + value + "'");
  } else if (key == "notify_sender_on_virus") {
    s.notifySenderOnVirus = config::parseBool(fullKey, value);
  } else if (key == "notify_sender_on_error_drop") {
    s.notifySenderOnErrorDrop = config::parseBool(fullKey, value);
  } else if (key == "notify_recipient_on_error_pass") {
    s.notifyRecipientOnErrorPass = config::parseBool(fullKey, value);
  } else if (key == "subject_tag") {
    if (value.size() > 200) throw config::ConfigError(fullKey + ": longer than 200 characters");
    s.subjectTag = value;
  } else {
    return false;
  }
  return true;
}

FailMode Policy::onError(scan::ErrorClass error) const {
  const auto i = static_cast<std::size_t>(error);
  return i < settings_.onError.size() ? settings_.onError[i] : FailMode::Drop;
}

Decision Policy::decide(const scan::ScanResult& result, bool fragment) const {
  Decision d;
  auto error = result.error;
  switch (result.verdict) {
    case scan::Verdict::Infected: {
      for (const auto& t : result.threats) {
        if (!d.reason.empty()) d.reason += ", ";
        d.reason += t;
      }
      d.action = Action::Replace;
      d.protocolOnly = settings_.virusNotice == VirusNotice::ProtocolOnly;
      d.notifySender = settings_.notifySenderOnVirus;
      return d;
    }
    case scan::Verdict::Clean:
      // A fragment is only a part of a message: nothing can call the whole clean.
      if (!fragment) {
        d.action = Action::Pass;
        return d;
      }
      error = scan::ErrorClass::Fragmented;
      break;
    case scan::Verdict::Error:
      break;
  }
  // An error without a class must still be decided: treat it as internal, never clean.
  if (error == scan::ErrorClass::None) error = scan::ErrorClass::Internal;
  d.error = error;
  d.reason = std::string(scan::toString(error));
  if (onError(error) == FailMode::Pass) {
    d.action = Action::PassUnscanned;
    d.tagSubject = settings_.notifyRecipientOnErrorPass;
  } else {
    d.action = Action::Replace;
    d.notifySender = settings_.notifySenderOnErrorDrop;
  }
  return d;
}

}  // namespace imapav::icapd
