#pragma once
// What the scanning server needs from a message: a summary for the scan log, and the
// plain-text message that replaces a blocked one.

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imapav::mime {

// Every member is logSafe() (valid UTF-8, no control characters) and at most
// kMaxSummaryText bytes, so it can go into a log line or a notice as is.
struct MessageSummary {
  std::string messageId;                // Message-ID value, trimmed
  std::string sender;                   // first addr-spec of From (fallback: Sender, Return-Path)
  std::vector<std::string> recipients;  // addr-specs of To and Cc, in order, de-duplicated
  std::string subject;                  // decoded (decodeEncodedWords)
  std::string date;                     // Date value
};

inline constexpr std::size_t kMaxSummaryText = 998;
inline constexpr std::size_t kMaxSummaryRecipients = 1000;

// Summarises the header of message (parseMessageHeaders with its default limits). All
// To and Cc fields count, To first; duplicates compare ASCII case-insensitively.
MessageSummary summarize(std::string_view message);

struct NoticeSpec {
  std::string body;  // the rendered template text (any line endings)
  std::vector<std::pair<std::string, std::string>> extraHeaders;  // e.g. {"X-Imapav-Status","infected"}
  std::string fallbackFrom;  // used when the original has no From; "" -> kDefaultNoticeFrom
  std::string date;          // used when the original has no Date; "" -> the current time
  std::string subject;       // replaces the original's Subject (RFC 2047-encoded as needed); "" -> kept
};

inline constexpr std::string_view kDefaultNoticeFrom = "imapav <postmaster@localhost>";

// A valid RFC 5322 message that replaces original:
//  - the original's first From, To, Cc, Date, Subject and Message-ID fields, in that
//    order, copied as written (folds kept); From and Date from spec when absent;
//  - MIME-Version: 1.0, Content-Type: text/plain; charset=utf-8,
//    Content-Transfer-Encoding: 8bit;
//  - spec.extraHeaders: CR, LF, NUL and other control characters except HTAB removed from
//    values; names reduced to printable ASCII without ':'; an empty name, or one of the
//    fields above, is dropped (the notice must not carry two Content-Types);
//  - the empty line, then spec.body as valid UTF-8 (invalid bytes -> U+FFFD, NUL -> space)
//    with every line end (CRLF, LF, CR) made CRLF, ending with CRLF unless empty.
// Every line is at most 998 bytes: long body lines are wrapped after white space or at a
// character boundary; long header lines are folded before white space or, failing that,
// by inserting a fold (which adds a space to that value). In copied fields, a CR not
// ending a line or a NUL becomes a space and white-space-only continuation lines are
// dropped, so no reader can see a field boundary the parser did not. Nothing else of the
// original (no other field, no body byte) is included.
std::string buildNotice(std::string_view original, const NoticeSpec& spec);

// A notification mail of our own (to the sender of a blocked message): From, To,
// Subject (RFC 2047-encoded and folded when needed), Date, Message-ID,
// "Auto-Submitted: auto-generated" (RFC 3834), MIME-Version and a text/plain UTF-8 body;
// values cleaned and lines bounded as in buildNotice.
struct NotificationSpec {
  std::string from, to, subject, body;
  std::string date;       // "" -> the current time
  std::string messageId;  // "" -> none
  std::vector<std::pair<std::string, std::string>> extraHeaders;
};
std::string buildNotification(const NotificationSpec& spec);

// Why original must not be answered by a notification (RFC 3834: a bounce, an automatic
// message, bulk or list mail), or "" when it may. logSafe(), for a log line as it is.
std::string notificationBlocker(std::string_view original);

// t as an RFC 5322 date in UTC, e.g. "Sat, 28 Nov 2026 09:07:57 +0000". Locale-independent.
std::string rfc5322Date(std::time_t t);

}  // namespace imapav::mime
