#pragma once
// The HTTP request or response head carried inside an ICAP message (req-hdr, res-hdr).

#include <optional>
#include <string>
#include <string_view>

#include "shared/icap/headers.hpp"

namespace imapav::icap {

struct HttpHead {
  std::string startLine;  // "GET imap://... HTTP/1.1" or "HTTP/1.1 200 OK", no CRLF
  Headers headers;

  // Start line, headers, empty line, all with CRLF.
  std::string serialize() const;
  // For a request head: the request target (the second word), else empty.
  std::string_view requestTarget() const;
};

// Parses a whole head block as it arrives in req-hdr/res-hdr (ending with an empty
// line). nullopt when it is malformed.
std::optional<HttpHead> parseHttpHead(std::string_view block);

}  // namespace imapav::icap
