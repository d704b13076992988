#include "shared/icap/writer.hpp"

#include <array>
#include <charconv>

namespace imapav::icap {

namespace {

void appendNumber(std::string& out, std::size_t n, int base = 10) {
  std::array<char, 24> buf{};
  const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), n, base).ptr;
  out.append(buf.data(), end);
}

// Appends "name=offset" to an Encapsulated value, comma-separated after the first.
void appendPart(std::string& out, bool& first, std::string_view name, std::size_t offset) {
  if (!first) out.append(", ");
  first = false;
  out.append(name).append("=");
  appendNumber(out, offset);
}

}  // namespace

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Service Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Request Entity Too Large";
    case 500: return "Server Error";
    case 501: return "Method Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Overloaded";
    case 505: return "ICAP Version Not Supported";
    default: return "Unknown";
  }
}

void appendResponseHead(std::string& out, int status, const Headers& headers, EncapPart part,
                        std::string_view httpHead, bool hasBody) {
  out.append("ICAP/1.0 ").append(std::to_string(status)).append(" ").append(reasonPhrase(status));
  out.append("\r\n");
  headers.serialize(out);
  // 100 and 204 must not carry Encapsulated (RFC 3507 errata): many clients break on it.
  const bool encapsulates = status != 100 && status != 204;
  if (encapsulates) {
    out.append("Encapsulated: ");
    if (part == EncapPart::None) {
      out.append("null-body=0");
    } else {
      bool first = true;
      appendPart(out, first, part == EncapPart::ReqHdr ? "req-hdr" : "res-hdr", 0);
      appendPart(out, first, !hasBody ? "null-body" : part == EncapPart::ReqHdr ? "req-body" : "res-body",
                 httpHead.size());
    }
    out.append("\r\n");
  }
  out.append("\r\n");
  if (encapsulates && part != EncapPart::None) out.append(httpHead);
}

void appendRequestHead(std::string& out, std::string_view method, std::string_view uri,
                       const Headers& headers, std::string_view reqHdr,
                       std::string_view resHdr, int bodyKind) {
  out.append(method).append(" ").append(uri).append(" ICAP/1.0\r\n");
  headers.serialize(out);
  out.append("Encapsulated: ");
  std::size_t offset = 0;
  bool first = true;
  if (!reqHdr.empty()) {
    appendPart(out, first, "req-hdr", offset);
    offset += reqHdr.size();
  }
  if (!resHdr.empty()) {
    appendPart(out, first, "res-hdr", offset);
    offset += resHdr.size();
  }
  appendPart(out, first, bodyKind == 1 ? "req-body" : bodyKind == 2 ? "res-body" : "null-body", offset);
  out.append("\r\n\r\n").append(reqHdr).append(resHdr);
}

void appendChunk(std::string& out, std::string_view data) {
  if (data.empty()) return;
  appendNumber(out, data.size(), 16);
  out.append("\r\n").append(data).append("\r\n");
}

void appendLastChunk(std::string& out, bool ieof) {
  out.append(ieof ? "0; ieof\r\n\r\n" : "0\r\n\r\n");
}

}  // namespace imapav::icap
