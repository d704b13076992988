#include "shared/icap/headers.hpp"

#include <algorithm>

namespace imapav::icap {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && (isBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool validName(std::string_view name) {
  if (name.empty()) return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

void Headers::add(std::string name, std::string value) {
  fields_.push_back({std::move(name), std::move(value)});
}

void Headers::set(std::string_view name, std::string value) {
  auto it = std::find_if(fields_.begin(), fields_.end(),
                         [&](const HeaderField& f) { return iequals(f.name, name); });
  if (it == fields_.end()) {
    fields_.push_back({std::string(name), std::move(value)});
    return;
  }
  it->value = std::move(value);
  fields_.erase(std::remove_if(std::next(it), fields_.end(),
                               [&](const HeaderField& f) { return iequals(f.name, name); }),
                fields_.end());
}

void Headers::remove(std::string_view name) {
  std::erase_if(fields_, [&](const HeaderField& f) { return iequals(f.name, name); });
}

const std::string* Headers::find(std::string_view name) const {
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) return &f.value;
  }
  return nullptr;
}

bool Headers::listHas(std::string_view name, std::string_view token) const {
  for (const auto& f : fields_) {
    if (!iequals(f.name, name)) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return false;
}

void Headers::serialize(std::string& out) const {
  for (const auto& f : fields_) out.append(f.name).append(": ").append(f.value).append("\r\n");
}

bool parseHeaderLines(std::string_view block, Headers& out) {
  std::vector<HeaderField> fields;
  while (!block.empty()) {
    const auto nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    block = nl == std::string_view::npos ? std::string_view{} : block.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the empty line ends the block
    if (isBlank(line.front())) {
      // A folded continuation: keep the fold so the field serializes back as sent.
      if (fields.empty()) return false;
      while (line.size() > 1 && isBlank(line.back())) line.remove_suffix(1);
      fields.back().value.append("\r\n").append(line);
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !validName(line.substr(0, colon))) return false;
    fields.push_back({std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1)))});
  }
  for (auto& f : fields) out.add(std::move(f.name), std::move(f.value));
  return true;
}

}  // namespace imapav::icap
