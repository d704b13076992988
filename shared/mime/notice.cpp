#include "shared/mime/notice.hpp"

#include <algorithm>
#include <cctype>

#include "shared/mime/subject_tag.hpp"

#include <array>
#include <cstdio>

#include "shared/mime/address.hpp"
#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"

namespace imapav::mime {

namespace {

constexpr std::size_t kMaxLine = 998;  // RFC 5322 2.1.1, without the CRLF

bool isWsp(char c) { return c == ' ' || c == '\t'; }

bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The largest n <= limit such that s[0, n) does not end inside a UTF-8 sequence; at
// least 1 so progress is always made.
std::size_t utf8Boundary(std::string_view s, std::size_t limit) {
  if (limit >= s.size()) return s.size();
  std::size_t n = limit;
  while (n > 0 && isContinuationByte(s[n])) --n;
  return n == 0 ? limit : n;
}

std::string bounded(std::string text) {
  if (text.size() > kMaxSummaryText) text.resize(utf8Boundary(text, kMaxSummaryText));
  return text;
}

// Appends one header line, folding it so that no line exceeds kMaxLine.
void appendHeaderLine(std::string& out, std::string_view line) {
  bool insertedFold = false;  // the next piece starts with a space we inserted
  while (true) {
    const std::size_t prefix = insertedFold ? 1 : 0;
    if (insertedFold) out.push_back(' ');
    if (prefix + line.size() <= kMaxLine) break;
    const std::size_t budget = kMaxLine - prefix;
    // Fold before the last white space that fits; a continuation line's own leading
    // white space (index 0) cannot be used.
    std::size_t cut = 0;
    for (std::size_t k = budget; k >= 1; --k) {
      if (isWsp(line[k])) {
        cut = k;
        break;
      }
    }
    insertedFold = cut == 0;
    if (insertedFold) cut = utf8Boundary(line, budget);
    out.append(line.substr(0, cut));
    out += "\r\n";
    line.remove_prefix(cut);
  }
  out.append(line);
  out += "\r\n";
}

// Appends a copied field (raw, lines separated by CRLF), made safe as buildNotice says.
void appendCopiedField(std::string& out, std::string_view raw) {
  bool first = true;
  while (true) {
    const std::size_t crlf = raw.find("\r\n");
    const std::string_view part = raw.substr(0, crlf);
    std::string line(part);
    for (char& c : line) {
      if (c == '\r' || c == '\n' || c == '\0') c = ' ';
    }
    const bool blank = line.find_first_not_of(" \t") == std::string::npos;
    if (first || !blank) appendHeaderLine(out, line);
    first = false;
    if (crlf == std::string_view::npos) break;
    raw.remove_prefix(crlf + 2);
  }
}

std::string cleanHeaderName(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 33 && u <= 126 && c != ':') out.push_back(c);
  }
  return out;
}

std::string cleanHeaderValue(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 32 && c != '\t') || u == 127) continue;
    out.push_back(c);
  }
  // Trailing white space would make a white-space-only last line after folding.
  while (!out.empty() && isWsp(out.back())) out.pop_back();
  return out;
}

// Appends one body line (no line end) wrapped at kMaxLine, each piece ending in CRLF.
void appendBodyLine(std::string& out, std::string_view line) {
  while (line.size() > kMaxLine) {
    std::size_t cut = 0;
    for (std::size_t k = kMaxLine; k > kMaxLine / 2; --k) {
      if (isWsp(line[k - 1])) {
        cut = k;  // break after the white space
        break;
      }
    }
    if (cut == 0) cut = utf8Boundary(line, kMaxLine);
    out.append(line.substr(0, cut));
    out += "\r\n";
    line.remove_prefix(cut);
  }
  out.append(line);
  out += "\r\n";
}

constexpr std::array<std::string_view, 9> kOwnFields = {
    "From", "To", "Cc", "Date", "Subject", "Message-ID",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};

bool isOwnField(std::string_view name) {
  for (const std::string_view f : kOwnFields) {
    if (iequals(f, name)) return true;
  }
  return false;
}

void addRecipients(const MessageHeaders& h, std::string_view name, MessageSummary& s) {
  for (const Field* f : h.findAll(name)) {
    for (std::string& a : extractAddresses(f->value(), kMaxSummaryRecipients)) {
      if (s.recipients.size() >= kMaxSummaryRecipients) return;
      std::string safe = bounded(logSafe(a));
      bool seen = false;
      for (const std::string& r : s.recipients) seen = seen || iequals(r, safe);
      if (!seen) s.recipients.push_back(std::move(safe));
    }
  }
}

}  // namespace

MessageSummary summarize(std::string_view message) {
  const MessageHeaders h = parseMessageHeaders(message);
  MessageSummary s;
  s.messageId = bounded(logSafe(h.value("Message-ID")));
  for (const std::string_view name : {"From", "Sender", "Return-Path"}) {
    const Field* f = h.find(name);
    if (!f) continue;
    const std::vector<std::string> a = extractAddresses(f->value(), 1);
    if (!a.empty()) {
      s.sender = bounded(logSafe(a.front()));
      break;
    }
  }
  addRecipients(h, "To", s);
  addRecipients(h, "Cc", s);
  s.subject = bounded(decodeEncodedWords(h.value("Subject")));
  s.date = bounded(logSafe(h.value("Date")));
  return s;
}

namespace {

// body as valid UTF-8 (invalid bytes -> U+FFFD, NUL -> space), every line end CRLF.
void appendTextBody(std::string& out, std::string_view text) {
  std::string body = toValidUtf8(text);
  for (char& c : body) {
    if (c == '\0') c = ' ';
  }
  std::string_view rest = body;
  while (!rest.empty()) {
    const std::size_t end = rest.find_first_of("\r\n");
    appendBodyLine(out, rest.substr(0, end));
    if (end == std::string_view::npos) break;
    const std::size_t next = (rest[end] == '\r' && end + 1 < rest.size() && rest[end + 1] == '\n')
                                 ? end + 2
                                 : end + 1;
    rest.remove_prefix(next);
  }
}

}  // namespace

std::string buildNotice(std::string_view original, const NoticeSpec& spec) {
  const MessageHeaders h = parseMessageHeaders(original);
  std::string out;
  for (const std::string_view name : {"From", "To", "Cc", "Date", "Subject", "Message-ID"}) {
    if (name == "Subject" && !cleanHeaderValue(spec.subject).empty()) {
      out = appendSubjectTag(out, cleanHeaderValue(spec.subject));  // adds the field, encoded
    } else if (const Field* f = h.find(name)) {
      appendCopiedField(out, f->raw);
    } else if (name == "From") {
      const std::string from = cleanHeaderValue(spec.fallbackFrom);
      appendHeaderLine(out, "From: " + (from.empty() ? std::string(kDefaultNoticeFrom) : from));
    } else if (name == "Date") {
      const std::string date = cleanHeaderValue(spec.date);
      appendHeaderLine(out, "Date: " + (date.empty() ? rfc5322Date(std::time(nullptr)) : date));
    }
  }
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n";
  for (const auto& [rawName, rawValue] : spec.extraHeaders) {
    const std::string name = cleanHeaderName(rawName);
    if (name.empty() || isOwnField(name)) continue;
    const std::string value = cleanHeaderValue(rawValue);
    appendHeaderLine(out, value.empty() ? name + ":" : name + ": " + value);
  }
  out += "\r\n";
  appendTextBody(out, spec.body);
  return out;
}

std::string buildNotification(const NotificationSpec& spec) {
  std::string out;
  const std::string from = cleanHeaderValue(spec.from);
  appendHeaderLine(out, "From: " + (from.empty() ? std::string(kDefaultNoticeFrom) : from));
  appendHeaderLine(out, "To: " + cleanHeaderValue(spec.to));
  // appendSubjectTag adds the missing Subject field, RFC 2047-encoded and folded as needed.
  std::string subject = cleanHeaderValue(spec.subject);
  if (subject.empty()) subject = "(no subject)";
  out = appendSubjectTag(out, subject);
  const std::string date = cleanHeaderValue(spec.date);
  appendHeaderLine(out, "Date: " + (date.empty() ? rfc5322Date(std::time(nullptr)) : date));
  if (const auto id = cleanHeaderValue(spec.messageId); !id.empty()) appendHeaderLine(out, "Message-ID: " + id);
  // RFC 3834: an automatic message; responders must not answer it, which stops loops.
  out += "Auto-Submitted: auto-generated\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n";
  for (const auto& [rawName, rawValue] : spec.extraHeaders) {
    const std::string name = cleanHeaderName(rawName);
    if (name.empty() || isOwnField(name) || iequals(name, "Auto-Submitted")) continue;
    const std::string value = cleanHeaderValue(rawValue);
    appendHeaderLine(out, value.empty() ? name + ":" : name + ": " + value);
  }
  out += "\r\n";
  appendTextBody(out, spec.body);
  return out;
}

std::string notificationBlocker(std::string_view original) {
  const MessageHeaders h = parseMessageHeaders(original);
  const auto lower = [](std::string v) {
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  // A bounce (null reverse-path) must never be answered.
  std::string returnPath = h.value("Return-Path");
  returnPath.erase(std::remove_if(returnPath.begin(), returnPath.end(), [](char c) { return c == ' ' || c == '\t'; }),
                   returnPath.end());
  if (h.find("Return-Path") && returnPath == "<>") return "bounce (Return-Path <>)";
  if (const std::string a = lower(h.value("Auto-Submitted")); !a.empty() && a.rfind("no", 0) != 0) {
    // The value goes into a log line and the event log: made logSafe and cut at a
    // character boundary, or a CR or an escape sequence in it would reach them (found by
    // fuzzing).
    const std::string safe = logSafe(a);
    return "automatic message (Auto-Submitted: " + safe.substr(0, utf8Boundary(safe, 64)) + ")";
  }
  if (const std::string p = lower(h.value("Precedence")); p == "bulk" || p == "junk" || p == "list") {
    return "bulk or list mail (Precedence: " + p + ")";
  }
  if (h.find("List-Id")) return "mailing list message (List-Id)";
  return {};
}

std::string rfc5322Date(std::time_t t) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "Thu, 01 Jan 1970 00:00:00 +0000";
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%s, %02d %s %04d %02d:%02d:%02d +0000",
                kDays[static_cast<std::size_t>(tm.tm_wday) % 7],
                tm.tm_mday, kMonths[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return std::string(buf.data());
}

}  // namespace imapav::mime
