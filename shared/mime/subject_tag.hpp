#pragma once
// Scanning-server policy helpers on a whole message: tagging the Subject of a message that
// passes unscanned, and spotting RFC 2046 message/partial fragments, which libclamav cannot
// scan and which must therefore never be called clean. No I/O, never throws.

#include <cstddef>
#include <string>
#include <string_view>

namespace imapav::mime {

// A longer tag is cut (at a character boundary) to this many bytes.
inline constexpr std::size_t kMaxSubjectTagBytes = 512;

// The whole message with tag appended to the first Subject field, separated by one space
// (none added when the field's last line already ends in white space). Every other byte,
// the body included, is unchanged.
//  - tag: invalid UTF-8 -> U+FFFD, control characters (C0 incl. CR/LF/NUL, DEL, C1) ->
//    space, then trimmed and cut to kMaxSubjectTagBytes; empty -> message returned as is.
//    Tags with non-ASCII bytes or "=?" become UTF-8 B encoded-words (each <= 75 chars);
//    others stay plain text. After an encoded-word, an encoded tag starts with an encoded
//    space, since white space between two encoded-words is not displayed.
//  - goes at the end of the field's last line (folds kept); a fold (line end + space) goes
//    before the tag, or between its encoded-words, when the line would exceed 78 bytes.
//    No line is made longer than 998 bytes.
//  - no Subject: "Subject: <tag>" is added as the last field (before the empty line); for
//    a header-only message at the end, with a line end added if the last line had none.
//    When the end of the header is not within parseMessageHeaders' 256 KiB window, the
//    field goes first instead (after an mbox "From " line) and a Subject beyond that
//    window is not seen.
//  - line ends follow the header's first line end (CRLF or bare LF); CRLF when it has none.
// Not idempotent: tagging twice appends the tag twice. Callers that must not tag twice
// check subjectOf() first.
std::string appendSubjectTag(std::string_view message, std::string_view tag);

// The decoded (decodeEncodedWords) value of the first Subject field, or "".
std::string subjectOf(std::string_view message);

// Bounds of the multipart walk in isMessagePartial.
inline constexpr std::size_t kMaxPartialScanBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxPartialScanParts = 1000;

// True when a top-level Content-Type field (any of several) is message/partial, or when
// the first is multipart/* and a direct child part's Content-Type (any) is message/partial. Type and
// subtype are case-insensitive; comments, folds and white space around '/' are allowed.
// Only delimiter lines of the top-level boundary (quoted or not) start a child, so text in
// a body, preamble or epilogue does not count. The walk stops after the close delimiter,
// kMaxPartialScanParts parts or kMaxPartialScanBytes bytes of body.
bool isMessagePartial(std::string_view message);

}  // namespace imapav::mime
