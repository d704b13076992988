#include "shared/mime/encoded_word.hpp"

#include <array>
#include <cstdint>
#include <optional>

#include "shared/mime/message_headers.hpp"

namespace imapav::mime {

namespace {

constexpr char32_t kReplacement = 0xFFFD;
constexpr std::size_t kMaxCharsetName = 64;

enum class Charset { kUtf8, kAscii, kLatin1, kLatin9, kWindows1252 };

void appendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes one UTF-8 sequence at text[i]; returns its code point and length, or nullopt
// for an ill-formed sequence (RFC 3629: no overlongs, no surrogates, max U+10FFFF).
std::optional<std::pair<char32_t, std::size_t>> decodeUtf8(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return std::make_pair(static_cast<char32_t>(b0), std::size_t{1});
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1Fu, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0Fu, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (i + len > text.size()) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return std::make_pair(cp, len);
}

std::optional<Charset> charsetByName(std::string_view name) {
  // RFC 2231: "charset*language".
  if (const std::size_t star = name.find('*'); star != std::string_view::npos) {
    name = name.substr(0, star);
  }
  if (iequals(name, "utf-8") || iequals(name, "utf8")) return Charset::kUtf8;
  if (iequals(name, "us-ascii") || iequals(name, "ascii")) return Charset::kAscii;
  if (iequals(name, "iso-8859-1") || iequals(name, "iso8859-1") || iequals(name, "iso_8859-1") ||
      iequals(name, "latin1") || iequals(name, "latin-1")) {
    return Charset::kLatin1;
  }
  if (iequals(name, "iso-8859-15") || iequals(name, "iso8859-15") ||
      iequals(name, "iso_8859-15") || iequals(name, "latin-9") || iequals(name, "latin9")) {
    return Charset::kLatin9;
  }
  if (iequals(name, "windows-1252") || iequals(name, "cp1252")) return Charset::kWindows1252;
  return std::nullopt;
}

// windows-1252 0x80..0x9F; 0 marks the five unassigned bytes.
constexpr std::array<char16_t, 32> kCp1252High = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

char32_t latin9(unsigned char b) {
  switch (b) {
    case 0xA4: return 0x20AC;
    case 0xA6: return 0x0160;
    case 0xA8: return 0x0161;
    case 0xB4: return 0x017D;
    case 0xB8: return 0x017E;
    case 0xBC: return 0x0152;
    case 0xBD: return 0x0153;
    case 0xBE: return 0x0178;
    default: return b;
  }
}

void convert(std::string& out, std::string_view bytes, Charset cs) {
  if (cs == Charset::kUtf8) {
    out += toValidUtf8(bytes);
    return;
  }
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    char32_t cp = b;
    if (b >= 0x80) {
      switch (cs) {
        case Charset::kAscii: cp = kReplacement; break;
        case Charset::kLatin9: cp = latin9(b); break;
        case Charset::kWindows1252:
          if (b < 0xA0) cp = kCp1252High[b - 0x80] ? kCp1252High[b - 0x80] : kReplacement;
          break;
        case Charset::kUtf8:
        case Charset::kLatin1: break;
      }
    }
    appendUtf8(out, cp);
  }
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<std::string> decodeQ(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=') {
      if (i + 2 >= text.size()) return std::nullopt;  // '=' must be followed by two hex digits
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> decodeBase64(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = base64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  return out;
}

namespace {

struct EncodedWord {
  std::size_t end = 0;  // one past "?="
  Charset charset = Charset::kUtf8;
  std::string bytes;  // decoded, still in charset
};

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool isTokenChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 32 && u < 127 && c != '?';
}

// An encoded-word starting at value[pos] ("=?"), or nullopt if there is none there that
// we can decode.
std::optional<EncodedWord> parseEncodedWord(std::string_view value, std::size_t pos) {
  if (value.substr(pos, 2) != "=?") return std::nullopt;
  std::size_t i = pos + 2;
  const std::size_t csStart = i;
  while (i < value.size() && isTokenChar(value[i]) && i - csStart < kMaxCharsetName) ++i;
  if (i == csStart || i + 3 > value.size() || value[i] != '?') return std::nullopt;
  const std::string_view csName = value.substr(csStart, i - csStart);
  const char enc = value[i + 1];
  if (value[i + 2] != '?') return std::nullopt;
  const std::size_t textStart = i + 3;
  std::size_t j = textStart;
  while (j < value.size() && !isSpace(value[j]) && value[j] != '?') ++j;
  if (j + 1 >= value.size() || value[j] != '?' || value[j + 1] != '=') return std::nullopt;
  const std::optional<Charset> cs = charsetByName(csName);
  if (!cs) return std::nullopt;
  const std::string_view text = value.substr(textStart, j - textStart);
  std::optional<std::string> bytes;
  if (enc == 'B' || enc == 'b') {
    bytes = decodeBase64(text);
  } else if (enc == 'Q' || enc == 'q') {
    bytes = decodeQ(text);
  }
  if (!bytes) return std::nullopt;
  EncodedWord w;
  w.end = j + 2;
  w.charset = *cs;
  w.bytes = std::move(*bytes);
  return w;
}

}  // namespace

std::string toValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (const auto d = decodeUtf8(text, i)) {
      out.append(text.substr(i, d->second));
      i += d->second;
    } else {
      appendUtf8(out, kReplacement);
      ++i;
    }
  }
  return out;
}

std::string logSafe(std::string_view text) {
  const std::string valid = toValidUtf8(text);
  std::string out;
  out.reserve(valid.size());
  std::size_t i = 0;
  while (i < valid.size()) {
    const auto d = decodeUtf8(valid, i);  // always well-formed here
    const std::size_t len = d ? d->second : 1;
    const char32_t cp = d ? d->first : kReplacement;
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) {
      out.push_back(' ');
    } else {
      out.append(valid, i, len);
    }
    i += len;
  }
  return out;
}

std::string decodeEncodedWords(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  // Bytes of a run of adjacent encoded-words in one charset, converted when it ends.
  std::string pending;
  std::optional<Charset> pendingCharset;
  const auto flush = [&] {
    if (pendingCharset) convert(out, pending, *pendingCharset);
    pending.clear();
    pendingCharset.reset();
  };

  std::size_t i = 0;
  bool lastWasWord = false;
  while (i < value.size()) {
    if (value[i] == '=' && i + 1 < value.size() && value[i + 1] == '?') {
      if (auto w = parseEncodedWord(value, i)) {
        if (pendingCharset && *pendingCharset != w->charset) flush();
        pendingCharset = w->charset;
        pending += w->bytes;
        i = w->end;
        lastWasWord = true;
        continue;
      }
    }
    if (lastWasWord && isSpace(value[i])) {
      // White space between two encoded-words vanishes; elsewhere it stays.
      std::size_t j = i;
      while (j < value.size() && isSpace(value[j])) ++j;
      if (j < value.size() && parseEncodedWord(value, j)) {
        i = j;
        continue;
      }
    }
    flush();
    lastWasWord = false;
    out.push_back(value[i]);
    ++i;
  }
  flush();
  return logSafe(out);
}

}  // namespace imapav::mime
