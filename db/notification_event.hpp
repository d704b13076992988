#pragma once
#include <cstdint>
#include <string>

namespace imapav::db {

// One row of the notification log: a notification mail the scanning server sent, failed
// to send, or decided not to send, and why.
struct NotificationEvent {
  std::int64_t timeUs = 0;  // unix epoch microseconds (the final outcome)
  std::string kind;         // "sender-virus" | "sender-error-drop"
  std::string recipient;    // the address it went (or would have gone) to
  std::string outcome;      // "sent" | "failed" | "rate-limited" | "queue-full" | "skipped"
  std::int64_t attempts = 0;  // SMTP sessions tried
  std::string detail;       // the relay's last reply, the error, or why it was skipped
  std::string messageId;    // Message-ID of the scanned message it is about
  std::string gateway;      // ICAP client (the gateway) IP address

  bool operator==(const NotificationEvent&) const = default;
};

}  // namespace imapav::db
