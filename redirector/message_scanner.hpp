#pragma once
// What an IMAP session needs from a scanning service: one blocking call per message.
// The ICAP client implements it; tests put a fake behind it.

#include <chrono>
#include <string>
#include <string_view>

namespace imapav::redirector {

struct ScanRequest {
  std::string_view message;  // the whole message, held by the caller for the call's duration
  std::string imapUrl;       // imap://user@host/MAILBOX;UIDVALIDITY=V/;UID=U
  std::string clientIp;      // sent as X-Client-IP
  std::string user;          // sent as X-Authenticated-User (base64)
};

enum class ScanStatus {
  Clean,            // deliver the original
  Replaced,         // deliver ScanReply::content instead
  PassedUnscanned,  // could not be scanned, policy says deliver it unchanged
  Failed,           // no server gave a usable answer
};

struct ScanReply {
  ScanStatus status = ScanStatus::Failed;
  std::string content;  // Replaced: the new message; PassedUnscanned after a 200: the message as returned
  std::string verdict, action, errorClass, threats;  // X-Imapav-Verdict/-Action/-Error, X-Virus-ID
  std::string server;   // "host:port" that answered
  std::string failure;  // Failed: each server tried and its problem
  std::chrono::microseconds elapsed{0};
};

class MessageScanner {
 public:
  virtual ~MessageScanner() = default;
  virtual ScanReply scan(const ScanRequest& request) = 0;  // blocking; thread-safe
};

}  // namespace imapav::redirector
