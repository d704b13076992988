#include "shared/icap/wire.hpp"

#include "shared/icap/headers.hpp"

namespace imapav::icap::wire {

namespace {

constexpr std::size_t kMaxChunkSizeDigits = 15;  // 60 bits: no overflow in size_t

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trimBlanks(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && isBlank(s.back())) s.remove_suffix(1);
  return s;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool endsWithEmptyLine(std::string_view s) {
  return s.ends_with("\n\n") || s.ends_with("\n\r\n") || s == "\r\n" || s == "\n";
}

}  // namespace

Take takeLine(std::string_view data, std::size_t& pos, std::string& carry, std::size_t maxLine,
              std::string_view& line) {
  // A carry ending in LF holds the line handed out by the previous call.
  if (!carry.empty() && carry.back() == '\n') carry.clear();
  const auto rest = data.substr(pos);
  const auto nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    if (carry.size() + rest.size() > maxLine + 1) return Take::Bad;  // +1: a CR may follow
    carry.append(rest);
    pos = data.size();
    return Take::NeedMore;
  }
  if (carry.size() + nl > maxLine + 1) return Take::Bad;
  std::string_view raw = rest.substr(0, nl);
  if (!carry.empty()) {
    carry.append(rest.substr(0, nl + 1));
    raw = std::string_view(carry).substr(0, carry.size() - 1);
  }
  pos += nl + 1;
  if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
  if (raw.size() > maxLine) return Take::Bad;
  line = raw;
  return Take::Ok;
}

Take takeChunkEnd(std::string_view data, std::size_t& pos, bool& sawCr) {
  while (pos < data.size()) {
    const char c = data[pos];
    if (c == '\n') {
      ++pos;
      sawCr = false;
      return Take::Ok;
    }
    if (c != '\r' || sawCr) return Take::Bad;
    ++pos;
    sawCr = true;
  }
  return Take::NeedMore;
}

std::optional<ChunkHeader> parseChunkSize(std::string_view line) {
  ChunkHeader chunk;
  std::size_t digits = 0;
  for (; digits < line.size(); ++digits) {
    const int v = hexValue(line[digits]);
    if (v < 0) break;
    if (digits == kMaxChunkSizeDigits) return std::nullopt;
    chunk.size = chunk.size * 16 + static_cast<std::size_t>(v);
  }
  if (digits == 0) return std::nullopt;
  auto rest = trimBlanks(line.substr(digits));
  if (rest.empty()) return chunk;
  if (rest.front() != ';') return std::nullopt;
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the ';'
    const auto next = rest.find(';');
    const auto ext = rest.substr(0, next);
    if (iequals(trimBlanks(ext.substr(0, ext.find('='))), "ieof")) chunk.ieof = true;
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next);
  }
  return chunk;
}

bool isIcapVersion(std::string_view v) {
  if (!v.starts_with("ICAP/")) return false;
  v.remove_prefix(5);
  const auto dot = v.find('.');
  return dot != std::string_view::npos && allDigits(v.substr(0, dot)) &&
         allDigits(v.substr(dot + 1));
}

bool splitHeads(const Encapsulated& e, std::string_view block, std::string& reqHdr,
                std::string& resHdr) {
  // A head block runs from its offset to the next part's offset.
  const auto cut = [&](const std::optional<std::size_t>& at, std::string& out) {
    if (!at) return true;
    std::size_t end = block.size();
    for (const auto& other : {e.reqHdr, e.resHdr}) {
      if (other && *other > *at && *other < end) end = *other;
    }
    out.assign(block.substr(*at, end - *at));
    return endsWithEmptyLine(out);
  };
  return cut(e.reqHdr, reqHdr) && cut(e.resHdr, resHdr);
}

}  // namespace imapav::icap::wire
