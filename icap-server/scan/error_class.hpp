#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace imapav::scan {

// Why a scan could not give a verdict. The server maps each class to a policy action.
enum class ErrorClass {
  None,            // no error
  TooLarge,        // the message or a part of it exceeds the size limits
  Timeout,         // the scan ran out of time
  Corrupt,         // a part is malformed (broken executable or media, parse error)
  Encrypted,       // an encrypted archive or document could not be inspected
  ArchiveLimit,    // nesting depth or file count of archives exceeded
  EngineNotReady,  // no engine loaded (start-up or failed reload)
  OutOfResources,  // memory, temporary files or disk
  Overloaded,      // too many concurrent scans
  Internal,        // anything else: a bug or an unexpected libclamav code
  Fragmented,      // a fragment of a message (message/partial): no scanner sees the whole
};

inline constexpr std::size_t kErrorClassCount = 11;  // values of ErrorClass, None included

// Stable lower-case names used in logs, ICAP headers and the event store.
std::string_view toString(ErrorClass errorClass);
std::optional<ErrorClass> errorClassFromString(std::string_view name);

}  // namespace imapav::scan
