#include "shared/imap/framing.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

namespace imapav::imap {

namespace {

// More digits than this could overflow uint64 (and no real literal comes close).
constexpr std::size_t kMaxLiteralDigits = 19;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

// The segment without its line end (LF or CRLF).
std::string_view withoutLineEnd(std::string_view segment) {
  if (segment.ends_with('\n')) segment.remove_suffix(1);
  if (segment.ends_with('\r')) segment.remove_suffix(1);
  return segment;
}

}  // namespace

Framer::Framer(Direction direction, FramingLimits limits)
    : direction_(direction), limits_(limits) {}

Framer::Step Framer::fail(std::string text, std::size_t consumed) {
  state_ = State::Failed;
  atMessageStart_ = false;
  errorText_ = std::move(text);
  text_ = {};
  literalSize_.reset();
  return {consumed, Event::Error};
}

// resp-text of a status response or a continuation request may end in "{5}" but never
// announces a literal; taking it for one would desynchronise the stream.
bool Framer::isStatusResponse(std::string_view line) const {
  if (line.starts_with('+')) return true;
  const auto sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  const auto tag = line.substr(0, sp);
  const auto rest = line.substr(sp + 1);
  const auto word = rest.substr(0, rest.find(' '));
  if (iequals(word, "OK") || iequals(word, "NO") || iequals(word, "BAD")) return true;
  return tag == "*" && (iequals(word, "BYE") || iequals(word, "PREAUTH"));
}

bool Framer::classifySegment() {
  literalSize_.reset();
  literal8_ = false;
  nonSynchronizing_ = false;
  auto line = withoutLineEnd(text_);
  if (direction_ == Direction::ServerToClient && firstSegment_ && isStatusResponse(line)) {
    return true;
  }
  if (!line.ends_with('}')) return true;
  line.remove_suffix(1);
  const bool plus = line.ends_with('+');
  if (plus) line.remove_suffix(1);
  const auto open = line.find_last_not_of("0123456789");
  if (open == std::string_view::npos || line[open] != '{') return true;  // "}" of plain text
  const auto digits = line.substr(open + 1);
  if (digits.empty()) {
    errorText_ = "bad literal marker";
    return false;
  }
  if (digits.size() > kMaxLiteralDigits) {
    errorText_ = "literal size has too many digits";
    return false;
  }
  std::uint64_t size = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), size);
  if (size > limits_.maxLiteralBytes) {
    errorText_ = "literal too large";
    return false;
  }
  if (plus && direction_ == Direction::ServerToClient) {
    errorText_ = "non-synchronizing literal from the server";
    return false;
  }
  literalSize_ = size;
  literal8_ = open > 0 && line[open - 1] == '~';
  nonSynchronizing_ = plus;
  return true;
}

Framer::Step Framer::feed(std::string_view data) {
  text_ = {};
  literalData_ = {};
  if (lineDone_) {
    line_.clear();
    lineDone_ = false;
  }
  switch (state_) {
    case State::Failed:
      return {0, Event::Error};
    case State::Literal: {
      if (literalLeft_ == 0) {
        state_ = State::Text;
        firstSegment_ = false;
        return {0, Event::LiteralEnd};
      }
      if (data.empty()) return {0, Event::NeedMore};
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(literalLeft_, data.size()));
      literalLeft_ -= n;
      literalData_ = data.substr(0, n);
      return {n, Event::LiteralData};
    }
    case State::Text:
      break;
  }

  // A segment may hold maxLineBytes plus its CR before the LF shows where it ends.
  const std::size_t cap = limits_.maxLineBytes == std::numeric_limits<std::size_t>::max()
                              ? limits_.maxLineBytes
                              : limits_.maxLineBytes + 1;
  const auto nl = data.find('\n');
  const std::size_t upTo = nl == std::string_view::npos ? data.size() : nl;
  if (upTo > cap || line_.size() > cap - upTo) return fail("line too long", 0);
  if (nl == std::string_view::npos) {
    if (!data.empty()) atMessageStart_ = false;
    line_.append(data);
    return {data.size(), Event::NeedMore};
  }
  const std::size_t consumed = nl + 1;
  if (line_.empty()) {
    text_ = data.substr(0, consumed);
  } else {
    line_.append(data.substr(0, consumed));
    text_ = line_;
    lineDone_ = true;
  }
  if (withoutLineEnd(text_).size() > limits_.maxLineBytes) return fail("line too long", consumed);
  if (!classifySegment()) return fail(std::move(errorText_), consumed);
  if (literalSize_) {
    state_ = State::Literal;
    literalLeft_ = *literalSize_;
    atMessageStart_ = false;
  } else {
    firstSegment_ = true;
    atMessageStart_ = true;
  }
  return {consumed, Event::Text};
}

}  // namespace imapav::imap
