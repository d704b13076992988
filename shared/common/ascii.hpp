#pragma once
// ASCII case handling for protocol tokens (IMAP, ICAP and mail header names are ASCII and
// case-insensitive; locale-aware functions would be wrong and slow here).

#include <cstddef>
#include <string>
#include <string_view>

namespace imapav::ascii {

constexpr char toUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

constexpr bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (toUpper(a[i]) != toUpper(b[i])) return false;
  }
  return true;
}

constexpr bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && equalsNoCase(text.substr(0, prefix.size()), prefix);
}

inline std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = toUpper(c);
  return out;
}

}  // namespace imapav::ascii
