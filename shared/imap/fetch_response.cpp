#include "shared/imap/fetch_response.hpp"

#include <limits>

#include "shared/common/ascii.hpp"

namespace imapav::imap {

namespace {

using ascii::equalsNoCase;
using ascii::startsWithNoCase;
using ascii::toUpper;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The rest of the segment is its line end (or nothing, for a caller that strips it).
bool isLineEnd(std::string_view text, std::size_t pos) {
  std::string_view rest = text.substr(pos);
  return rest.empty() || rest == "\r\n" || rest == "\n";
}

// Ends an atom (or number) inside a value. '{' too, so that a marker glued to an atom is
// still seen as the literal the framer saw.
bool isValueDelimiter(char c) {
  return c == ' ' || c == '(' || c == ')' || c == '"' || c == '{' || c == '\r' || c == '\n' ||
         static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

bool startsLiteral8(std::string_view text, std::size_t pos) {
  return text[pos] == '~' && pos + 1 < text.size() && text[pos + 1] == '{';
}

// Ends the name part of an item name ("BODY" of "BODY[1]<0>").
bool isNameDelimiter(char c) {
  return isValueDelimiter(c) || c == '[' || c == ']' || c == '<' || c == '>';
}

// Decimal digits only, no overflow.
std::optional<std::uint64_t> parseNumber(std::string_view digits) {
  if (digits.empty() || digits.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : digits) {
    if (!isDigit(c)) return std::nullopt;
    auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    value = value * 10 + d;
  }
  return value;
}

std::optional<std::uint32_t> parseNzNumber32(std::string_view digits) {
  auto v = parseNumber(digits);
  if (!v || *v == 0 || *v > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

LiteralKind classify(std::string_view item) {
  if (item == "BODY[]" || item == "BINARY[]" || item == "RFC822") return LiteralKind::WholeMessage;
  if (item == "BODY[]<0>" || item == "BINARY[]<0>") return LiteralKind::PartialFromZero;
  return LiteralKind::Other;
}

// The position just past a quoted string starting at pos, or npos if it does not end
// on this line.
std::size_t skipQuoted(std::string_view text, std::size_t pos) {
  for (std::size_t i = pos + 1; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      ++i;
      if (i >= text.size() || text[i] == '\r' || text[i] == '\n') return std::string_view::npos;
    } else if (c == '"') {
      return i + 1;
    } else if (c == '\r' || c == '\n') {
      return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

struct LiteralMarker {
  std::size_t digitsStart = 0;
  std::size_t digitsLength = 0;
  std::uint64_t size = 0;
  bool literal8 = false;
};

// A literal marker "{N}", "{N+}" or "~{N}" starting at pos and running to the end of the
// segment (only its line end may follow).
std::optional<LiteralMarker> parseMarker(std::string_view text, std::size_t pos) {
  LiteralMarker m;
  if (pos < text.size() && text[pos] == '~') {
    m.literal8 = true;
    ++pos;
  }
  if (pos >= text.size() || text[pos] != '{') return std::nullopt;
  ++pos;
  m.digitsStart = pos;
  while (pos < text.size() && isDigit(text[pos])) ++pos;
  m.digitsLength = pos - m.digitsStart;
  auto size = parseNumber(text.substr(m.digitsStart, m.digitsLength));
  if (!size) return std::nullopt;
  m.size = *size;
  if (pos < text.size() && text[pos] == '+' && !m.literal8) ++pos;
  if (pos >= text.size() || text[pos] != '}') return std::nullopt;
  ++pos;
  std::string_view rest = text.substr(pos);
  if (rest != "\r\n" && rest != "\n") return std::nullopt;
  return m;
}

}  // namespace

bool FetchResponseParser::fail() {
  malformed_ = true;
  pending_.reset();
  expect_ = Expect::Done;
  return false;
}

bool FetchResponseParser::segment(std::string_view text, bool isFirst) {
  if (isFirst) {
    expect_ = Expect::Done;
    segmentIndex_ = 0;
    depth_ = 0;
    item_.clear();
    isFetch_ = false;
    malformed_ = false;
    complete_ = false;
    sequence_ = 0;
    pending_.reset();
    uid_.reset();
    rfc822Size_.reset();
    std::size_t pos = 0;
    if (!parseHead(text, pos)) return false;
    return parseBody(text, pos);
  }
  if (!isFetch_ || malformed_) return false;
  pending_.reset();
  // Only a segment that ended with a literal may be followed by another.
  if (expect_ == Expect::Done) return fail();
  ++segmentIndex_;
  return parseBody(text, 0);
}

bool FetchResponseParser::parseHead(std::string_view text, std::size_t& pos) {
  if (text.size() < 2 || text[0] != '*' || text[1] != ' ') return false;
  pos = 2;
  std::size_t start = pos;
  while (pos < text.size() && isDigit(text[pos])) ++pos;
  auto seq = parseNzNumber32(text.substr(start, pos - start));
  if (!seq) return false;
  std::string_view rest = text.substr(pos);
  constexpr std::string_view kFetch = " FETCH (";
  if (rest.size() < kFetch.size() || !equalsNoCase(rest.substr(0, kFetch.size()), kFetch)) {
    return false;
  }
  pos += kFetch.size();
  isFetch_ = true;
  sequence_ = *seq;
  expect_ = Expect::ItemName;
  return true;
}

bool FetchResponseParser::parseItemName(std::string_view text, std::size_t& pos) {
  std::size_t start = pos;
  while (pos < text.size() && !isNameDelimiter(text[pos])) ++pos;
  if (pos == start) return false;
  if (pos < text.size() && text[pos] == '[') {
    // A section may hold spaces, a parenthesised field list and quoted field names.
    ++pos;
    while (pos < text.size() && text[pos] != ']') {
      char c = text[pos];
      if (c == '"') {
        pos = skipQuoted(text, pos);
        if (pos == std::string_view::npos) return false;
        continue;
      }
      if (c == '\r' || c == '\n' || c == '{' || c == '[') return false;
      ++pos;
    }
    if (pos >= text.size()) return false;
    ++pos;  // ']'
  }
  if (pos < text.size() && text[pos] == '<') {
    ++pos;
    std::size_t digits = pos;
    while (pos < text.size() && isDigit(text[pos])) ++pos;
    if (pos == digits || pos >= text.size() || text[pos] != '>') return false;
    ++pos;
  }
  if (pos - start > limits_.maxItemNameBytes) return false;
  if (pos >= text.size() || text[pos] != ' ') return false;
  item_.clear();
  for (std::size_t i = start; i < pos; ++i) item_.push_back(toUpper(text[i]));
  ++pos;  // the space before the value
  return true;
}

bool FetchResponseParser::parseLiteral(std::string_view text, std::size_t pos) {
  auto marker = parseMarker(text, pos);
  if (!marker) return fail();
  LiteralInfo info;
  info.kind = depth_ == 0 ? classify(item_) : LiteralKind::Other;
  info.item = item_;
  info.size = marker->size;
  info.literal8 = marker->literal8;
  pending_ = std::move(info);
  // A literal at the top level is the whole value; the next segment goes on after it.
  if (depth_ == 0) expect_ = Expect::AfterItem;
  return true;
}

void FetchResponseParser::finishTopValue(std::string_view text, std::size_t start,
                                         std::size_t end) {
  expect_ = Expect::AfterItem;
  std::string_view token = text.substr(start, end - start);
  if (item_ == "UID") {
    uid_ = parseNzNumber32(token);
    if (!uid_) fail();
  } else if (item_ == "RFC822.SIZE") {
    auto value = parseNumber(token);
    if (!value) {
      fail();
      return;
    }
    rfc822Size_ = SizeField{segmentIndex_, start, end - start, *value};
  }
}

bool FetchResponseParser::parseValueToken(std::string_view text, std::size_t& pos) {
  char c = text[pos];
  if (c == ' ') {
    ++pos;  // between list elements (or a doubled space)
    return true;
  }
  if (c == '(') {
    if (++depth_ > limits_.maxDepth) return fail();
    ++pos;
    return true;
  }
  if (c == ')') {
    if (depth_ == 0) return fail();
    ++pos;
    if (--depth_ == 0) expect_ = Expect::AfterItem;
    return true;
  }
  std::size_t start = pos;
  if (c == '"') {
    pos = skipQuoted(text, pos);
    if (pos == std::string_view::npos) return fail();
  } else {
    // "~{" ends the atom too: the framer takes "N~{5}" for a literal8 marker, so this
    // parser must see the same literal, with the same literal8 flag (found by fuzzing).
    while (pos < text.size() && !isValueDelimiter(text[pos]) && !startsLiteral8(text, pos)) ++pos;
    if (pos == start) return fail();
  }
  if (depth_ == 0) finishTopValue(text, start, pos);
  return !malformed_;
}

bool FetchResponseParser::parseBody(std::string_view text, std::size_t pos) {
  while (true) {
    switch (expect_) {
      case Expect::ItemName:
        if (isLineEnd(text, pos)) return fail();  // the list never closed
        if (text[pos] == ' ') {
          ++pos;
        } else if (text[pos] == ')') {
          ++pos;
          expect_ = Expect::LineEnd;
        } else if (parseItemName(text, pos)) {
          depth_ = 0;
          expect_ = Expect::Value;
        } else {
          return fail();
        }
        break;
      case Expect::Value:
        if (isLineEnd(text, pos)) return fail();
        // UID and RFC822.SIZE are plain numbers; anything else there is an attack or a bug.
        if (depth_ == 0 && (item_ == "UID" || item_ == "RFC822.SIZE") && text[pos] != ' ' &&
            isValueDelimiter(text[pos])) {
          return fail();
        }
        if (text[pos] == '{' || startsLiteral8(text, pos)) {
          return parseLiteral(text, pos);
        }
        if (!parseValueToken(text, pos)) return false;
        break;
      case Expect::AfterItem:
        if (isLineEnd(text, pos)) return fail();
        if (text[pos] == ' ') {
          expect_ = Expect::ItemName;
        } else if (text[pos] == ')') {
          expect_ = Expect::LineEnd;
        } else {
          return fail();
        }
        ++pos;
        break;
      case Expect::LineEnd:
        if (!isLineEnd(text, pos)) return fail();
        complete_ = true;
        expect_ = Expect::Done;
        return true;
      case Expect::Done:
        return fail();
    }
  }
}

std::string rewriteNumberAt(std::string_view segment, std::size_t offset, std::size_t length,
                            std::uint64_t newValue) {
  if (length == 0 || offset > segment.size() || length > segment.size() - offset ||
      !parseNumber(segment.substr(offset, length))) {
    return std::string(segment);
  }
  std::string out(segment.substr(0, offset));
  out += std::to_string(newValue);
  out += segment.substr(offset + length);
  return out;
}

std::string rewriteLiteralSize(std::string_view segment, std::uint64_t newSize) {
  // Find the marker's '{' from the end: the marker is short and holds no other '{'.
  std::size_t brace = segment.rfind('{');
  if (brace == std::string_view::npos) return std::string(segment);
  std::size_t start = (brace > 0 && segment[brace - 1] == '~') ? brace - 1 : brace;
  auto marker = parseMarker(segment, start);
  if (!marker) return std::string(segment);
  std::string out(segment.substr(0, marker->digitsStart));
  out += std::to_string(newSize);
  out += segment.substr(marker->digitsStart + marker->digitsLength);
  return out;
}

}  // namespace imapav::imap
