#pragma once
// The header section of an Internet message (RFC 5322), parsed leniently: the input is
// whatever a mail store handed to the scanner, so it may use bare LF, lack the empty line,
// start with an mbox "From " line, carry garbage or 8-bit bytes. No I/O, never throws.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imapav::mime {

struct Field {
  std::string name;  // as written (trailing white space before the colon removed)
  // The whole field as in the message, e.g. "Subject: a\r\n b": folds kept, each line end
  // inside normalised to CRLF, no final line break. Other bytes are untouched.
  std::string raw;
  // The text after the first colon, unfolded (CRLF + WSP -> the WSP) and trimmed.
  std::string value() const;
};

struct MessageHeaders {
  std::vector<Field> fields;
  // Offset of the body in the message (just after the empty line); the message size
  // when there is no empty line.
  std::size_t bodyOffset = 0;
  // The empty line ending the header was found within maxBytes.
  bool complete = false;

  // The first field called name (ASCII case-insensitive), or nullptr.
  const Field* find(std::string_view name) const;
  // find(name)->value(), or "" when absent.
  std::string value(std::string_view name) const;
  // Every field called name, in message order.
  std::vector<const Field*> findAll(std::string_view name) const;
};

// Parses the header section. Line ends may be CRLF or bare LF. A leading mbox "From "
// line is skipped; so are lines that are neither a field ("name:" with a printable
// ASCII name) nor a continuation of one. Looks at no more than maxBytes bytes; fields
// beyond maxFields are skipped, but the end of the header is still looked for.
MessageHeaders parseMessageHeaders(std::string_view message, std::size_t maxBytes = 256 * 1024,
                                   std::size_t maxFields = 1000);

// ASCII case-insensitive comparison, for field names.
bool iequals(std::string_view a, std::string_view b);

}  // namespace imapav::mime
