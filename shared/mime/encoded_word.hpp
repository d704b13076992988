#pragma once
// RFC 2047 encoded-words ("=?charset?B|Q?text?=") and text made safe for a log line.

#include <optional>
#include <string>
#include <string_view>

namespace imapav::mime {

// Plain base64 (RFC 4648, no line breaks, padding optional); nullopt on any other byte.
std::optional<std::string> decodeBase64(std::string_view text);


// Decodes RFC 2047 encoded-words (B and Q) to UTF-8 for utf-8, us-ascii, iso-8859-1,
// iso-8859-15 and windows-1252 (RFC 2231 "*language" suffixes ignored). White space
// between adjacent encoded-words is dropped, and their bytes are joined before conversion
// so a character split across two words survives. Unknown charsets and malformed words
// are left as written. Words are recognised even when glued to text, as most mail readers
// do. The result is logSafe().
std::string decodeEncodedWords(std::string_view value);

// Valid UTF-8: every byte that is not part of a well-formed sequence (overlong forms,
// surrogates and code points above U+10FFFF included) becomes U+FFFD.
std::string toValidUtf8(std::string_view text);

// toValidUtf8(), then every control character (C0, DEL, C1) and U+2028/U+2029 replaced by
// a space, so the text stays on one log line and cannot drive a terminal.
std::string logSafe(std::string_view text);

}  // namespace imapav::mime
