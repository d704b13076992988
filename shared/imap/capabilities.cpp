#include "shared/imap/capabilities.hpp"

#include <cstddef>
#include <optional>

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

// The capability list of a response line: from just after its keyword to the line end
// ("* CAPABILITY ...", "* ENABLED ..." when enabledToo) or to the "]" of a "[CAPABILITY
// ...]" response code right after the status of a status response. nullopt otherwise.
struct ListRange {
  std::size_t begin = 0;
  std::size_t end = 0;
};
std::optional<ListRange> capabilityList(std::string_view line, bool enabledToo) {
  std::size_t end = contentEnd(line);
  std::string_view content = line.substr(0, end);
  std::size_t pos = 0;
  std::string_view tag = nextWord(content, pos);
  std::string_view word = nextWord(content, pos);
  if (tag.empty() || word.empty()) return std::nullopt;

  if (tag == "*" && (equalsNoCase(word, "CAPABILITY") || (enabledToo && equalsNoCase(word, "ENABLED")))) {
    return ListRange{2 + word.size(), end};
  }

  bool untaggedStatus = tag == "*" && (equalsNoCase(word, "OK") || equalsNoCase(word, "PREAUTH") ||
                                       equalsNoCase(word, "BYE"));
  bool taggedStatus = tag != "*" && tag != "+" &&
                      (equalsNoCase(word, "OK") || equalsNoCase(word, "NO") ||
                       equalsNoCase(word, "BAD"));
  if (!untaggedStatus && !taggedStatus) return std::nullopt;
  constexpr std::string_view kCode = "[CAPABILITY";
  std::string_view rest = content.substr(pos);
  if (!startsWithNoCase(rest, kCode)) return std::nullopt;
  std::size_t codeEnd = content.find(']', pos);
  if (codeEnd == std::string_view::npos) return std::nullopt;
  std::size_t listStart = pos + kCode.size();
  // "[CAPABILITYX ...]" is another code; the keyword must end at a space or "]".
  if (listStart < codeEnd && content[listStart] != ' ') return std::nullopt;
  return ListRange{listStart, codeEnd};
}

}  // namespace

std::string filterCapabilities(std::string_view line, const std::vector<std::string>& remove) {
  const auto list = capabilityList(line, true);
  if (!list) return std::string(line);
  return filterRange(line, list->begin, list->end, remove);
}

const std::vector<std::string>& defaultStrippedCapabilities() {
  static const std::vector<std::string> kDefault = {
      "COMPRESS=", "URLAUTH", "URLAUTH=", "URL-PARTIAL", "UIDONLY", "NOTIFY", "BINARY",
      "IMAP4rev2"};
  return kDefault;
}

std::string addCapability(std::string_view line, std::string_view capability) {
  // The same lines as filterCapabilities: searching the line for "[CAPABILITY " anywhere
  // also rewrote a FETCH response's ENVELOPE subject or a LIST mailbox name holding that
  // text (found by fuzzing).
  const auto list = capabilityList(line, false);
  if (!list) return std::string(line);
  std::size_t pos = list->begin;
  while (pos < list->end) {
    while (pos < list->end && line[pos] == ' ') ++pos;
    const std::size_t start = pos;
    while (pos < list->end && line[pos] != ' ') ++pos;
    if (pos > start && equalsNoCase(line.substr(start, pos - start), capability)) return std::string(line);
  }
  std::string out(line);
  out.insert(list->begin, " " + std::string(capability));
  return out;
}

}  // namespace imapav::imap
