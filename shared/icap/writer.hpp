#pragma once
// Serialization of ICAP messages. No I/O: everything is appended to a string.

#include <string>
#include <string_view>

#include "shared/icap/headers.hpp"

namespace imapav::icap {

std::string_view reasonPhrase(int status);  // "OK", "No Content", ... ; "Unknown" else

enum class EncapPart { None, ReqHdr, ResHdr };

// Appends "ICAP/1.0 <status> <reason>\r\n", the headers, an Encapsulated header
// computed from httpHead (unless status is 100 or 204, which carry none; for other
// statuses with part None it is "null-body=0"), the empty line, and httpHead itself
// (only when an Encapsulated header announces it: not for 100, 204 or part None).
// hasBody selects res-body/req-body versus null-body. Headers must not contain
// Encapsulated.
void appendResponseHead(std::string& out, int status, const Headers& headers, EncapPart part,
                        std::string_view httpHead, bool hasBody);

// Appends a request head the same way (for clients): "METHOD uri ICAP/1.0", headers,
// Encapsulated from the parts given (reqHdr and resHdr may be empty), the heads.
// bodyKind: 0 none (null-body), 1 req-body, 2 res-body.
void appendRequestHead(std::string& out, std::string_view method, std::string_view uri,
                       const Headers& headers, std::string_view reqHdr,
                       std::string_view resHdr, int bodyKind);

// One chunk: "<hex size>\r\n<data>\r\n". Appends nothing for empty data.
void appendChunk(std::string& out, std::string_view data);
// The last chunk: "0\r\n\r\n", or "0; ieof\r\n\r\n".
void appendLastChunk(std::string& out, bool ieof = false);

}  // namespace imapav::icap
