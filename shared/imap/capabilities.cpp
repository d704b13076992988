#include "shared/imap/capabilities.hpp"

#include <algorithm>
#include <cstddef>

#include "shared/common/ascii.hpp"

namespace imapav::imap {

namespace {

using ascii::equalsNoCase;
using ascii::startsWithNoCase;
using ascii::toUpper;

bool isRemoved(std::string_view token, const std::vector<std::string>& remove) {
  for (const auto& entry : remove) {
    if (entry.empty()) continue;
    bool prefixRule = entry.back() == '=';
    if (prefixRule ? startsWithNoCase(token, entry) : equalsNoCase(token, entry)) return true;
  }
  return false;
}

// The next space-separated word at pos (pos moves past it and one space), or "".
std::string_view nextWord(std::string_view text, std::size_t& pos) {
  std::size_t start = pos;
  while (pos < text.size() && text[pos] != ' ') ++pos;
  std::string_view word = text.substr(start, pos - start);
  if (pos < text.size()) ++pos;
  return word;
}

// Copies line with the removed tokens of [begin, end) dropped, each with the space before it.
// begin is just after the keyword, so every token there is preceded by a space.
std::string filterRange(std::string_view line, std::size_t begin, std::size_t end,
                        const std::vector<std::string>& remove) {
  std::string out(line.substr(0, begin));
  std::size_t pos = begin;
  while (pos < end) {
    std::size_t spaceStart = pos;
    while (pos < end && line[pos] == ' ') ++pos;
    std::size_t tokenStart = pos;
    while (pos < end && line[pos] != ' ') ++pos;
    std::string_view token = line.substr(tokenStart, pos - tokenStart);
    if (!token.empty() && isRemoved(token, remove)) {
      // Keep all but one of the spaces before it, so odd spacing elsewhere survives.
      if (tokenStart > spaceStart) out.append(line.substr(spaceStart, tokenStart - spaceStart - 1));
    } else {
      out.append(line.substr(spaceStart, pos - spaceStart));
    }
  }
  out.append(line.substr(end));
  return out;
}

// Where the line's content ends: before its CRLF or LF.
std::size_t contentEnd(std::string_view line) {
  std::size_t end = line.size();
  if (end > 0 && line[end - 1] == '\n') --end;
  if (end > 0 && line[end - 1] == '\r') --end;
  return end;
}

}  // namespace

std::string filterCapabilities(std::string_view line, const std::vector<std::string>& remove) {
  std::size_t end = contentEnd(line);
  std::string_view content = line.substr(0, end);
  std::size_t pos = 0;
  std::string_view tag = nextWord(content, pos);
  std::string_view word = nextWord(content, pos);
  if (tag.empty() || word.empty()) return std::string(line);

  if (tag == "*" && (equalsNoCase(word, "CAPABILITY") || equalsNoCase(word, "ENABLED"))) {
    // pos is past the space after the keyword; filter from that space on.
    std::size_t keywordEnd = 2 + word.size();
    return filterRange(line, keywordEnd, end, remove);
  }

  bool untaggedStatus = tag == "*" && (equalsNoCase(word, "OK") || equalsNoCase(word, "PREAUTH") ||
                                       equalsNoCase(word, "BYE"));
  bool taggedStatus = tag != "*" && tag != "+" &&
                      (equalsNoCase(word, "OK") || equalsNoCase(word, "NO") ||
                       equalsNoCase(word, "BAD"));
  if (!untaggedStatus && !taggedStatus) return std::string(line);
  constexpr std::string_view kCode = "[CAPABILITY";
  std::string_view rest = content.substr(pos);
  if (!startsWithNoCase(rest, kCode)) return std::string(line);
  std::size_t codeEnd = content.find(']', pos);
  if (codeEnd == std::string_view::npos) return std::string(line);
  std::size_t listStart = pos + kCode.size();
  // "[CAPABILITYX ...]" is another code; the keyword must end at a space or "]".
  if (listStart < codeEnd && content[listStart] != ' ') return std::string(line);
  return filterRange(line, listStart, codeEnd, remove);
}

const std::vector<std::string>& defaultStrippedCapabilities() {
  static const std::vector<std::string> kDefault = {
      "COMPRESS=", "URLAUTH", "URLAUTH=", "URL-PARTIAL", "UIDONLY", "NOTIFY", "BINARY",
      "IMAP4rev2"};
  return kDefault;
}

std::string addCapability(std::string_view line, std::string_view capability) {
  const std::string upperLine = ascii::upper(line.substr(0, std::min<std::size_t>(line.size(), 8192)));
  std::size_t at = std::string::npos;
  if (upperLine.rfind("* CAPABILITY ", 0) == 0) at = 13;
  else if (const auto code = upperLine.find("[CAPABILITY "); code != std::string::npos && upperLine.find(']', code) != std::string::npos) at = code + 12;
  if (at == std::string::npos) return std::string(line);
  // Already listed?
  const std::string wanted = ascii::upper(capability);
  const auto end = upperLine.find_first_of("]\r\n", at);
  const std::string list = " " + upperLine.substr(at, end == std::string::npos ? std::string::npos : end - at) + " ";
  if (list.find(" " + wanted + " ") != std::string::npos) return std::string(line);
  std::string out(line);
  out.insert(at, std::string(capability) + " ");
  return out;
}

}  // namespace imapav::imap
