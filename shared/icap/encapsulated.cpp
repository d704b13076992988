#include "shared/icap/encapsulated.hpp"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "shared/icap/headers.hpp"

namespace imapav::icap {

namespace {

using Part = std::optional<std::size_t> Encapsulated::*;
struct PartName {
  std::string_view name;
  Part member;
  bool body;
};
constexpr std::array<PartName, 6> kParts{{
    {"req-hdr", &Encapsulated::reqHdr, false},
    {"res-hdr", &Encapsulated::resHdr, false},
    {"req-body", &Encapsulated::reqBody, true},
    {"res-body", &Encapsulated::resBody, true},
    {"opt-body", &Encapsulated::optBody, true},
    {"null-body", &Encapsulated::nullBody, true},
}};
constexpr std::size_t kMaxOffsetDigits = 15;  // keeps offsets far from overflow

std::string_view trimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::size_t Encapsulated::headerBytes() const {
  for (const auto* body : {&reqBody, &resBody, &optBody, &nullBody}) {
    if (*body) return **body;
  }
  return 0;
}

std::string Encapsulated::format() const {
  std::vector<std::pair<std::size_t, std::string_view>> present;
  for (const auto& p : kParts) {
    if (this->*p.member) present.emplace_back(*(this->*p.member), p.name);
  }
  std::stable_sort(present.begin(), present.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& [offset, name] : present) {
    if (!out.empty()) out.append(", ");
    out.append(name).append("=").append(std::to_string(offset));
  }
  return out;
}

std::optional<Encapsulated> parseEncapsulated(std::string_view value) {
  Encapsulated e;
  std::optional<std::size_t> last;
  bool sawBody = false;
  while (true) {
    const auto comma = value.find(',');
    const auto item = trimBlanks(value.substr(0, comma));
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const auto name = trimBlanks(item.substr(0, eq));
    const auto digits = trimBlanks(item.substr(eq + 1));
    if (digits.empty() || digits.size() > kMaxOffsetDigits) return std::nullopt;
    std::size_t offset = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      offset = offset * 10 + static_cast<std::size_t>(c - '0');
    }
    const auto part = std::find_if(kParts.begin(), kParts.end(),
                                   [&](const PartName& p) { return iequals(p.name, name); });
    if (part == kParts.end() || e.*part->member || sawBody) return std::nullopt;
    // The first part starts the encapsulated section; each later one must follow it.
    if (last ? offset <= *last : offset != 0) return std::nullopt;
    e.*part->member = offset;
    last = offset;
    sawBody = part->body;
    if (comma == std::string_view::npos) break;
    value = value.substr(comma + 1);
  }
  // Without a body part the size of the last header block is unknown.
  if (!sawBody) return std::nullopt;
  return e;
}

}  // namespace imapav::icap
