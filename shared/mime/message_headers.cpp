#include "shared/mime/message_headers.hpp"

#include <algorithm>

namespace imapav::mime {

namespace {

bool isWsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trimWsp(std::string_view s) {
  while (!s.empty() && isWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWsp(s.back())) s.remove_suffix(1);
  return s;
}

// The field name of a header line, or "" if the line is not a field. RFC 5322 names are
// printable ASCII without ':'; obsolete syntax allows white space before the colon.
std::string_view fieldName(std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return {};
  std::string_view name = line.substr(0, colon);
  while (!name.empty() && isWsp(name.back())) name.remove_suffix(1);
  if (name.empty()) return {};
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126) return {};
  }
  return name;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string Field::value() const {
  const std::size_t colon = raw.find(':');
  if (colon == std::string::npos) return {};
  const std::string_view rest = std::string_view(raw).substr(colon + 1);
  std::string out;
  out.reserve(rest.size());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    // Unfold: a CRLF followed by WSP disappears, the WSP stays.
    if (rest[i] == '\r' && i + 1 < rest.size() && rest[i + 1] == '\n') {
      ++i;
      continue;
    }
    out.push_back(rest[i]);
  }
  return std::string(trimWsp(out));
}

const Field* MessageHeaders::find(std::string_view name) const {
  const auto it = std::find_if(fields.begin(), fields.end(),
                               [name](const Field& f) { return iequals(f.name, name); });
  return it == fields.end() ? nullptr : &*it;
}

std::string MessageHeaders::value(std::string_view name) const {
  const Field* f = find(name);
  return f ? f->value() : std::string();
}

std::vector<const Field*> MessageHeaders::findAll(std::string_view name) const {
  std::vector<const Field*> out;
  for (const Field& f : fields) {
    if (iequals(f.name, name)) out.push_back(&f);
  }
  return out;
}

MessageHeaders parseMessageHeaders(std::string_view message, std::size_t maxBytes,
                                   std::size_t maxFields) {
  MessageHeaders h;
  const std::string_view window = message.substr(0, std::min(maxBytes, message.size()));
  const bool truncated = window.size() < message.size();
  // The field that continuation lines extend; nullptr after a skipped line, so the
  // continuation of a garbage or surplus field is skipped with it.
  Field* current = nullptr;
  std::size_t pos = 0;
  while (pos < window.size()) {
    const std::size_t lf = window.find('\n', pos);
    if (lf == std::string_view::npos && truncated) break;  // a line cut by maxBytes
    const std::size_t end = (lf == std::string_view::npos) ? window.size() : lf;
    const std::size_t next = (lf == std::string_view::npos) ? window.size() : lf + 1;
    std::string_view line = window.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = next;

    if (line.empty()) {
      if (lf == std::string_view::npos) break;  // "\r" at the very end is not an empty line
      h.complete = true;
      h.bodyOffset = next;
      return h;
    }
    if (isWsp(line.front())) {
      if (current) {
        current->raw += "\r\n";
        current->raw += line;
      }
      continue;
    }
    // Garbage, and also an mbox "From sender date" line: a field name has no space.
    const std::string_view name = fieldName(line);
    if (name.empty() || h.fields.size() >= maxFields) {
      current = nullptr;
      continue;
    }
    h.fields.push_back(Field{std::string(name), std::string(line)});
    current = &h.fields.back();
  }
  h.bodyOffset = message.size();
  return h;
}

}  // namespace imapav::mime
