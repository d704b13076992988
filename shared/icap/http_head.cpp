#include "shared/icap/http_head.hpp"

namespace imapav::icap {

std::string HttpHead::serialize() const {
  std::string out = startLine;
  out.append("\r\n");
  headers.serialize(out);
  out.append("\r\n");
  return out;
}

std::string_view HttpHead::requestTarget() const {
  const std::string_view line = startLine;
  if (line.starts_with("HTTP/")) return {};  // a status line
  const auto first = line.find(' ');
  if (first == std::string_view::npos) return {};
  const auto rest = line.substr(first + 1);
  return rest.substr(0, rest.find(' '));
}

std::optional<HttpHead> parseHttpHead(std::string_view block) {
  const auto nl = block.find('\n');
  std::string_view start = block.substr(0, nl);
  if (!start.empty() && start.back() == '\r') start.remove_suffix(1);
  if (start.empty() || start.front() == ' ' || start.front() == '\t') return std::nullopt;
  HttpHead head;
  head.startLine = std::string(start);
  if (nl != std::string_view::npos && !parseHeaderLines(block.substr(nl + 1), head.headers)) {
    return std::nullopt;
  }
  return head;
}

}  // namespace imapav::icap
