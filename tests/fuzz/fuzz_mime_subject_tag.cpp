// Subject tagging and the message/partial check of the scanning server: the first line of
// the input is the tag, the rest the message. appendSubjectTag must only insert (every
// original byte kept, in order), leave a header that parses to the same fields, make no
// new line longer than 998 bytes, and put the tag at the end of what subjectOf() reads.

#include <algorithm>
#include <set>
#include <string>

#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"
#include "shared/mime/subject_tag.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace imapav;

// The tag as appendSubjectTag documents it: logSafe, trimmed, cut at a character boundary.
std::string cleanTag(std::string_view tag) {
  std::string t = mime::logSafe(tag);
  t.erase(0, t.find_first_not_of(' ') == std::string::npos ? t.size() : t.find_first_not_of(' '));
  if (t.size() > mime::kMaxSubjectTagBytes) {
    std::size_t cut = mime::kMaxSubjectTagBytes;
    while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
    t.resize(cut);
  }
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// Lines without their CR: ending an unterminated last line adds one, which is no longer.
std::set<std::string_view> linesOf(std::string_view text) {
  std::set<std::string_view> lines;
  while (!text.empty()) {
    std::string_view line = fuzz::takeLine(text);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.insert(line);
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view message = fuzz::asText(data, size);
  const std::string_view tag = fuzz::takeLine(message);
  const std::string clean = cleanTag(tag);
  const std::string out = mime::appendSubjectTag(message, tag);
  if (clean.empty()) {
    FUZZ_CHECK(out == message);
    return 0;
  }
  // Only an insertion: a common prefix and suffix cover the whole original.
  FUZZ_CHECK(out.size() > message.size());
  std::size_t prefix = 0;
  while (prefix < message.size() && out[prefix] == message[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < message.size() - prefix && out[out.size() - 1 - suffix] == message[message.size() - 1 - suffix]) {
    ++suffix;
  }
  FUZZ_CHECK(prefix + suffix == message.size());

  const auto before = mime::parseMessageHeaders(message);
  const auto after = mime::parseMessageHeaders(out);
  if (message.size() <= 256 * 1024 && before.fields.size() < 1000) {
    const bool hadSubject = before.find("Subject") != nullptr;
    FUZZ_CHECK(after.complete == before.complete);
    FUZZ_CHECK(after.fields.size() == before.fields.size() + (hadSubject ? 0 : 1));
    for (std::size_t i = 0, k = 0; i < before.fields.size(); ++i, ++k) {
      if (!hadSubject && after.fields[k].name == "Subject") ++k;  // the added field
      FUZZ_CHECK(after.fields[k].name == before.fields[i].name);
      if (&before.fields[i] != before.find("Subject")) FUZZ_CHECK(after.fields[k].raw == before.fields[i].raw);
    }
    const std::string subject = mime::subjectOf(out);
    FUZZ_CHECK(subject.ends_with(clean));
  }
  // No line made longer than 998 bytes: a longer line of the result was there before, or
  // is the start of one (the tag folded in before a stray CR ending it).
  const auto original = linesOf(message);
  for (const auto line : linesOf(out)) {
    FUZZ_CHECK(line.size() <= 998 || original.contains(line) ||
               std::any_of(original.begin(), original.end(), [&](std::string_view o) { return o.starts_with(line); }));
  }

  FUZZ_CHECK(mime::isMessagePartial(out) == mime::isMessagePartial(message));
  return 0;
}
