#pragma once
// What an IMAP session needs from a scanning service: one blocking call per message,
// which may start while the message is still arriving. The ICAP client implements it.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "redirector/message_buffer.hpp"

namespace imapav::redirector {

struct ScanRequest {
  // The message; the caller may still be appending to it. The scan reads it as it comes
  // and answers once it is complete (or fails when it is aborted).
  std::shared_ptr<const MessageBuffer> message;
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
  // Replaced: the new message; PassedUnscanned after a 200: the message as returned.
  // Null otherwise: deliver the original.
  std::shared_ptr<MessageBuffer> content;
  std::string verdict, action, errorClass, threats;  // X-Imapav-Verdict/-Action/-Error, X-Virus-ID
  bool protocolOnly = false;  // Replaced: tell the client at the protocol level, deliver nothing
  std::string server;   // "host:port" that answered
  std::string istag;    // the ISTag of that answer
  std::string failure;  // Failed: each server tried and its problem
  std::chrono::microseconds elapsed{0};
};

class MessageScanner {
 public:
  virtual ~MessageScanner() = default;
  virtual ScanReply scan(const ScanRequest& request) = 0;  // blocking; thread-safe
};

}  // namespace imapav::redirector
