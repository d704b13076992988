#include "shared/imap/imap_url.hpp"

#include <charconv>

#include "shared/common/ascii.hpp"

namespace imapav::imap {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hexValue(s[i + 1]);
    const int lo = hexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// RFC 5092 "achar"/"bchar" less the separators we use: keep unreserved and a few
// sub-delims literal, encode everything else.
std::string percentEncode(std::string_view s, std::string_view extraSafe) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                      c == '~' || c == '!' || c == '$' || c == '\'' || c == '(' ||
                      c == ')' || c == '*' || c == '+' || c == ',' || c == '&' ||
                      c == '=' || extraSafe.find(ch) != std::string_view::npos;
    if (safe) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<std::uint32_t> parseNumber(std::string_view s) {
  std::uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<ImapUrl> parseImapUrl(std::string_view text) {
  if (!ascii::startsWithNoCase(text, "imap://")) return std::nullopt;
  text.remove_prefix(7);
  const auto slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash + 1);

  ImapUrl url;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view user = authority.substr(0, at);
    user = user.substr(0, user.find(';'));  // drop ";AUTH=..."
    auto decoded = percentDecode(user);
    if (!decoded) return std::nullopt;
    url.user = std::move(*decoded);
    authority.remove_prefix(at + 1);
  }
  if (authority.empty()) return std::nullopt;
  url.host = std::string(authority);

  // path: MAILBOX[;UIDVALIDITY=n][/;UID=n][/;SECTION=s][/;PARTIAL=..]
  bool first = true;
  while (!path.empty()) {
    const auto next = path.find('/');
    std::string_view segment = path.substr(0, next);
    path = next == std::string_view::npos ? std::string_view{} : path.substr(next + 1);
    if (first) {
      first = false;
      if (!segment.empty() && segment.front() != ';') {
        auto semi = segment.find(';');
        // A mailbox can contain '/' (hierarchy); RFC 5092 keeps it literal, so glue
        // segments back together until one starts with ';'.
        std::string mailbox(segment.substr(0, semi));
        std::string_view params = semi == std::string_view::npos ? std::string_view{} : segment.substr(semi);
        while (params.empty() && !path.empty() && path.front() != ';') {
          const auto n2 = path.find('/');
          std::string_view more = path.substr(0, n2);
          path = n2 == std::string_view::npos ? std::string_view{} : path.substr(n2 + 1);
          semi = more.find(';');
          mailbox += '/';
          mailbox += more.substr(0, semi);
          params = semi == std::string_view::npos ? std::string_view{} : more.substr(semi);
        }
        auto decoded = percentDecode(mailbox);
        if (!decoded) return std::nullopt;
        url.mailbox = std::move(*decoded);
        if (ascii::startsWithNoCase(params, ";uidvalidity=")) {
          url.uidValidity = parseNumber(params.substr(13));
          if (!url.uidValidity) return std::nullopt;
        }
        continue;
      }
    }
    if (ascii::startsWithNoCase(segment, ";uid=")) {
      url.uid = parseNumber(segment.substr(5));
      if (!url.uid) return std::nullopt;
    } else if (ascii::startsWithNoCase(segment, ";section=")) {
      auto decoded = percentDecode(segment.substr(9));
      if (!decoded) return std::nullopt;
      url.section = std::move(*decoded);
    }
  }
  return url;
}

std::string formatImapUrl(const ImapUrl& url) {
  std::string out = "imap://";
  if (!url.user.empty()) {
    out += percentEncode(url.user, "");
    out += '@';
  }
  out += url.host;
  out += '/';
  // '/' stays literal inside the mailbox (hierarchy), but a leading or trailing one would
  // read back as an empty path segment and be lost (found by fuzzing): encode those.
  std::string mailbox = percentEncode(url.mailbox, "/:@");
  if (mailbox.starts_with('/')) mailbox.replace(0, 1, "%2F");
  if (mailbox.ends_with('/')) mailbox.replace(mailbox.size() - 1, 1, "%2F");
  out += mailbox;
  if (url.uidValidity) {
    out += ";UIDVALIDITY=";
    out += std::to_string(*url.uidValidity);
  }
  if (url.uid) {
    out += "/;UID=";
    out += std::to_string(*url.uid);
  }
  if (!url.section.empty()) {
    out += "/;SECTION=";
    out += percentEncode(url.section, "");
  }
  return out;
}

}  // namespace imapav::imap
