#include "shared/mime/subject_tag.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"

namespace imapav::mime {

namespace {

// Must match parseMessageHeaders' defaults, so the Subject we tag is the one it reports.
constexpr std::size_t kHeaderWindow = 256 * 1024;
constexpr std::size_t kHeaderMaxFields = 1000;
constexpr std::size_t kFoldAt = 78;     // RFC 5322 2.1.1 SHOULD limit
constexpr std::size_t kMaxLine = 998;   // RFC 5322 2.1.1 MUST limit
// "=?UTF-8?B?" + 60 base64 chars + "?=" is 72 <= 75 (RFC 2047 limit); 60 chars carry 45 bytes.
constexpr std::size_t kEncodedChunkBytes = 45;
constexpr std::string_view kEncodedPrefix = "=?UTF-8?B?";

bool isWsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool isUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U; }

// Same rule as parseMessageHeaders: printable ASCII name, optional WSP before the colon.
// Returns the colon's offset in line, or npos when line is not a field.
std::size_t fieldColon(std::string_view line, std::string_view& name) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return colon;
  name = line.substr(0, colon);
  while (!name.empty() && isWsp(name.back())) name.remove_suffix(1);
  if (name.empty()) return std::string_view::npos;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126) return std::string_view::npos;
  }
  return colon;
}

// Byte offsets in the message, found by the same line walk as parseMessageHeaders.
struct HeaderLayout {
  bool hasSubject = false;
  std::size_t subjectValueStart = 0;     // just after the colon
  std::size_t subjectLastLineStart = 0;  // start of the field's last line
  std::size_t subjectLastLineEnd = 0;    // end of that line, before its CR/LF
  bool complete = false;                 // an empty line ends the header
  std::size_t emptyLineStart = 0;        // when complete
  bool truncated = false;                // the window ended before the header did
  // Start of an unterminated last line that is only "\r" (not a field, not an empty line).
  std::optional<std::size_t> strayCrStart;
  std::string eol = "\r\n";
};

HeaderLayout layoutOf(std::string_view message) {
  HeaderLayout l;
  const std::string_view window = message.substr(0, std::min(kHeaderWindow, message.size()));
  l.truncated = window.size() < message.size();
  const std::size_t firstLf = window.find('\n');
  if (firstLf != std::string_view::npos && (firstLf == 0 || window[firstLf - 1] != '\r')) {
    l.eol = "\n";
  }
  bool inSubject = false;  // continuation lines extend the first Subject
  std::size_t fields = 0;
  std::size_t pos = 0;
  while (pos < window.size()) {
    const std::size_t lf = window.find('\n', pos);
    if (lf == std::string_view::npos && l.truncated) return l;
    const std::size_t end = (lf == std::string_view::npos) ? window.size() : lf;
    const std::size_t lineStart = pos;
    std::size_t lineEnd = end;
    if (lineEnd > lineStart && window[lineEnd - 1] == '\r') --lineEnd;
    pos = (lf == std::string_view::npos) ? window.size() : lf + 1;
    const std::string_view line = window.substr(lineStart, lineEnd - lineStart);

    if (line.empty()) {
      if (lf == std::string_view::npos) {
        l.strayCrStart = lineStart;
        break;
      }
      l.complete = true;
      l.emptyLineStart = lineStart;
      l.truncated = false;
      return l;
    }
    if (isWsp(line.front())) {
      if (inSubject) {
        l.subjectLastLineStart = lineStart;
        l.subjectLastLineEnd = lineEnd;
      }
      continue;
    }
    std::string_view name;
    const std::size_t colon = fieldColon(line, name);
    inSubject = false;
    if (colon == std::string_view::npos || fields >= kHeaderMaxFields) continue;
    ++fields;
    if (!l.hasSubject && iequals(name, "Subject")) {
      l.hasSubject = true;
      inSubject = true;
      l.subjectValueStart = lineStart + colon + 1;
      l.subjectLastLineStart = lineStart;
      l.subjectLastLineEnd = lineEnd;
    }
  }
  return l;
}

// Whether the last word of value is an RFC 2047 encoded-word "=?charset?B|Q?text?=".
bool endsWithEncodedWord(std::string_view value) {
  while (!value.empty() && (isWsp(value.back()) || value.back() == '\r' || value.back() == '\n')) {
    value.remove_suffix(1);
  }
  if (value.size() < 2 || value.substr(value.size() - 2) != "?=") return false;
  const std::string_view word = value.substr(0, value.size() - 2);
  const std::size_t textStart = word.rfind('?');
  if (textStart == std::string_view::npos || textStart < 2 || word[textStart - 2] != '?') {
    return false;
  }
  const char enc = lower(word[textStart - 1]);
  if (enc != 'b' && enc != 'q') return false;
  const std::size_t open = word.rfind("=?", textStart - 2);
  if (open == std::string_view::npos || open + 2 >= textStart - 2) return false;  // no charset
  const std::string_view charset = word.substr(open + 2, textStart - 2 - (open + 2));
  const std::string_view text = word.substr(textStart + 1);
  const auto bad = [](char c) { return c == '?' || isWsp(c) || c == '\r' || c == '\n'; };
  return std::none_of(charset.begin(), charset.end(), bad) &&
         std::none_of(text.begin(), text.end(), bad);
}

std::string encodeBase64(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      v <<= 8;
      if (k < n) v |= static_cast<unsigned char>(bytes[i + k]);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out.push_back(k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 0x3FU] : '=');
    }
  }
  return out;
}

// The tag as sanitised text, "" when nothing is left.
std::string sanitizeTag(std::string_view tag) {
  std::string t = logSafe(tag);  // also makes it valid UTF-8
  std::size_t begin = 0;
  while (begin < t.size() && t[begin] == ' ') ++begin;
  t.erase(0, begin);
  if (t.size() > kMaxSubjectTagBytes) {
    std::size_t cut = kMaxSubjectTagBytes;
    while (cut > 0 && isUtf8Continuation(t[cut])) --cut;
    t.resize(cut);
  }
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// The words to append: the tag itself, or its UTF-8 encoded-words.
std::vector<std::string> tagWords(const std::string& tag, bool afterEncodedWord) {
  const bool nonAscii = std::any_of(tag.begin(), tag.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x80;
  });
  // A plain "=?...?=" in the tag would be decoded by readers, so encode it too.
  if (!nonAscii && tag.find("=?") == std::string::npos) return {tag};
  const std::string text = afterEncodedWord ? " " + tag : tag;
  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t len = std::min(kEncodedChunkBytes, text.size() - pos);
    // Each encoded-word must hold whole characters (RFC 2047 section 5).
    while (pos + len < text.size() && len > 0 && isUtf8Continuation(text[pos + len])) --len;
    if (len == 0) len = std::min(kEncodedChunkBytes, text.size() - pos);  // cannot happen
    words.push_back(std::string(kEncodedPrefix) +
                    encodeBase64(std::string_view(text).substr(pos, len)) + "?=");
    pos += len;
  }
  return words;
}

// The bytes to insert at the end of a line lineLength bytes long, folding before a word
// that would take the line past kFoldAt. No fold before the first word when the line has
// no text of the value yet (that would only leave "Subject:" alone on its line), unless
// the word would take the line past kMaxLine: a Subject of only white space can be long.
std::string appendWords(const std::vector<std::string>& words, std::size_t lineLength,
                        bool lineHasText, bool lineEndsWithWsp, const std::string& eol) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string_view sep = (i == 0 && lineEndsWithWsp) ? "" : " ";
    const bool mayFold =
        i > 0 || lineHasText || lineLength + sep.size() + words[i].size() > kMaxLine;
    if (mayFold && lineLength + sep.size() + words[i].size() > kFoldAt) {
      out += eol;
      out += ' ';
      lineLength = 1;
    } else {
      out += sep;
      lineLength += sep.size();
    }
    out += words[i];
    lineLength += words[i].size();
  }
  return out;
}

std::string spliced(std::string_view message, std::size_t at, std::string_view insert) {
  std::string out;
  out.reserve(message.size() + insert.size());
  out.append(message.substr(0, at));
  out.append(insert);
  out.append(message.substr(at));
  return out;
}

// --- Content-Type parsing (RFC 2045 section 5.1), lenient ---

bool isTspecialOrSpace(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 32 || u >= 127) return true;
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos;
}

// Skips white space and (nested) comments.
void skipCfws(std::string_view s, std::size_t& pos) {
  while (pos < s.size()) {
    const char c = s[pos];
    if (isWsp(c) || c == '\r' || c == '\n') {
      ++pos;
    } else if (c == '(') {
      std::size_t depth = 0;
      while (pos < s.size()) {
        const char d = s[pos++];
        if (d == '\\') {
          // An escape as the last byte escapes nothing. Stepping over it anyway left pos
          // past the end, and the next substr() threw out_of_range: the ICAP request
          // failed, so such a message was never scanned (found by fuzzing).
          if (pos < s.size()) ++pos;
        } else if (d == '(') {
          ++depth;
        } else if (d == ')' && --depth == 0) {
          break;
        }
      }
    } else {
      return;
    }
  }
}

std::string_view readToken(std::string_view s, std::size_t& pos) {
  const std::size_t start = pos;
  while (pos < s.size() && !isTspecialOrSpace(s[pos])) ++pos;
  return s.substr(start, pos - start);
}

struct MediaType {
  std::string type;
  std::string subtype;
  std::string boundary;  // "" when absent
};

MediaType parseMediaType(std::string_view value) {
  MediaType mt;
  std::size_t pos = 0;
  skipCfws(value, pos);
  mt.type = std::string(readToken(value, pos));
  skipCfws(value, pos);
  if (pos >= value.size() || value[pos] != '/') return MediaType{};
  ++pos;
  skipCfws(value, pos);
  mt.subtype = std::string(readToken(value, pos));
  while (pos < value.size()) {
    // Resynchronise on the next ';' after anything unexpected.
    pos = value.find(';', pos);
    if (pos == std::string_view::npos) break;
    ++pos;
    skipCfws(value, pos);
    const std::string_view attribute = readToken(value, pos);
    skipCfws(value, pos);
    if (pos >= value.size() || value[pos] != '=') continue;
    ++pos;
    skipCfws(value, pos);
    std::string v;
    if (pos < value.size() && value[pos] == '"') {
      for (++pos; pos < value.size() && value[pos] != '"'; ++pos) {
        if (value[pos] == '\\' && pos + 1 < value.size()) ++pos;
        v.push_back(value[pos]);
      }
      if (pos < value.size()) ++pos;  // closing quote
    } else {
      // Wider than a token: boundaries with '/', '=' or '?' unquoted are common.
      const std::size_t start = pos;
      while (pos < value.size() && value[pos] != ';' && value[pos] != '(' && !isWsp(value[pos])) {
        ++pos;
      }
      v = std::string(value.substr(start, pos - start));
    }
    if (mt.boundary.empty() && iequals(attribute, "boundary")) mt.boundary = std::move(v);
  }
  return mt;
}

bool isPartialType(const MediaType& mt) {
  return iequals(mt.type, "message") && iequals(mt.subtype, "partial");
}

// Any Content-Type field, not just the first: readers differ on which of several they
// obey, and a fragment must not slip through as the one we ignored.
bool headerSaysPartial(const MessageHeaders& h) {
  const std::vector<const Field*> all = h.findAll("Content-Type");
  return std::any_of(all.begin(), all.end(),
                     [](const Field* f) { return isPartialType(parseMediaType(f->value())); });
}

enum class Delimiter { kNone, kPart, kClose };

// line has no line end. Trailing white space (transport padding) is allowed after a
// delimiter; anything after a close delimiter is ignored.
Delimiter delimiterKind(std::string_view line, std::string_view boundary) {
  if (line.size() < boundary.size() + 2 || line.substr(0, 2) != "--" ||
      line.substr(2, boundary.size()) != boundary) {
    return Delimiter::kNone;
  }
  const std::string_view rest = line.substr(boundary.size() + 2);
  if (rest.substr(0, 2) == "--") return Delimiter::kClose;
  return std::all_of(rest.begin(), rest.end(), isWsp) ? Delimiter::kPart : Delimiter::kNone;
}

}  // namespace

std::string appendSubjectTag(std::string_view message, std::string_view tag) {
  const std::string clean = sanitizeTag(tag);
  if (clean.empty()) return std::string(message);
  const HeaderLayout l = layoutOf(message);

  if (l.hasSubject) {
    const std::size_t at = l.subjectLastLineEnd;
    const std::string_view value = message.substr(l.subjectValueStart, at - l.subjectValueStart);
    const bool endsWithWsp = !value.empty() && isWsp(value.back());
    const std::size_t textStart = std::max(l.subjectLastLineStart, l.subjectValueStart);
    const std::string_view lastText = message.substr(textStart, at - textStart);
    const bool hasText = !std::all_of(lastText.begin(), lastText.end(), isWsp);
    const std::string insert =
        appendWords(tagWords(clean, endsWithEncodedWord(value)), at - l.subjectLastLineStart,
                    hasText, endsWithWsp, l.eol);
    return spliced(message, at, insert);
  }

  const std::string field =
      "Subject:" + appendWords(tagWords(clean, false), 8, false, false, l.eol) + l.eol;
  if (l.complete) return spliced(message, l.emptyLineStart, field);
  if (l.truncated) {
    // The end of the header is out of reach: put the field first, after an mbox line.
    std::size_t at = 0;
    if (message.substr(0, 5) == "From ") {
      const std::size_t lf = message.substr(0, kHeaderWindow).find('\n');
      if (lf != std::string_view::npos) at = lf + 1;
    }
    return spliced(message, at, field);
  }
  // Header-only message: the field becomes its last line.
  if (l.strayCrStart) return spliced(message, *l.strayCrStart, field);
  std::string out(message);
  if (!out.empty() && out.back() == '\r') {
    out += '\n';
  } else if (!out.empty() && out.back() != '\n') {
    out += l.eol;
  }
  out += field;
  return out;
}

std::string subjectOf(std::string_view message) {
  return decodeEncodedWords(parseMessageHeaders(message).value("Subject"));
}

bool isMessagePartial(std::string_view message) {
  const MessageHeaders h = parseMessageHeaders(message);
  if (headerSaysPartial(h)) return true;
  const Field* ct = h.find("Content-Type");
  if (ct == nullptr) return false;
  const MediaType mt = parseMediaType(ct->value());
  if (!iequals(mt.type, "multipart") || mt.boundary.empty() || !h.complete) return false;

  const std::string_view rest = message.substr(h.bodyOffset);
  const std::string_view body = rest.substr(0, std::min(kMaxPartialScanBytes, rest.size()));
  std::optional<std::size_t> partStart;  // set once inside a part
  std::size_t parts = 0;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t lf = body.find('\n', pos);
    const std::size_t lineStart = pos;
    std::size_t lineEnd = (lf == std::string_view::npos) ? body.size() : lf;
    pos = (lf == std::string_view::npos) ? body.size() : lf + 1;
    if (lineEnd > lineStart && body[lineEnd - 1] == '\r') --lineEnd;
    const Delimiter d = delimiterKind(body.substr(lineStart, lineEnd - lineStart), mt.boundary);
    if (d == Delimiter::kNone) continue;
    if (partStart) {
      if (headerSaysPartial(
              parseMessageHeaders(body.substr(*partStart, lineStart - *partStart)))) {
        return true;
      }
      if (++parts >= kMaxPartialScanParts) return false;
    }
    if (d == Delimiter::kClose) return false;
    partStart = pos;
  }
  // No close delimiter within reach: the last part still counts as far as we saw it.
  return partStart && headerSaysPartial(parseMessageHeaders(body.substr(*partStart)));
}

}  // namespace imapav::mime
