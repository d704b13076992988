#include "icap-server/profile.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace imapav::icapd {
namespace {

// inet_pton parses text only; it touches no network.
std::optional<AddressRange> parseAddress(const std::string& text) {
  AddressRange r;
  if (::inet_pton(AF_INET, text.c_str(), r.bytes.data()) == 1) {
    r.prefix = 32;
    return r;
  }
  if (::inet_pton(AF_INET6, text.c_str(), r.bytes.data()) == 1) {
    static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped.begin(), kMapped.end(), r.bytes.begin())) {  // ::ffff:a.b.c.d
      std::copy(r.bytes.begin() + 12, r.bytes.end(), r.bytes.begin());
      std::fill(r.bytes.begin() + 4, r.bytes.end(), 0);
      r.prefix = 32;
      return r;
    }
    r.v6 = true;
    r.prefix = 128;
    return r;
  }
  return std::nullopt;
}

}  // namespace

std::optional<AddressRange> parseAddressRange(std::string_view text) {
  const auto slash = text.find('/');
  auto r = parseAddress(std::string(text.substr(0, slash)));
  if (!r) return std::nullopt;
  if (slash == std::string_view::npos) return r;
  const auto len = text.substr(slash + 1);
  unsigned prefix = 0;
  const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (ec != std::errc() || end != len.data() + len.size() || len.empty() || prefix > (r->v6 ? 128U : 32U)) {
    return std::nullopt;
  }
  r->prefix = prefix;
  return r;
}

bool AddressRange::contains(std::string_view address) const {
  const auto a = parseAddress(std::string(address.substr(0, 64)));
  if (!a || a->v6 != v6) return false;
  for (unsigned bit = 0; bit < prefix; ++bit) {
    const unsigned mask = 0x80U >> (bit % 8);
    if ((a->bytes[bit / 8] & mask) != (bytes[bit / 8] & mask)) return false;
  }
  return true;
}

const Profile* selectProfile(const std::vector<Profile>& profiles, std::string_view service,
                             std::string_view gatewayAddress) {
  for (const auto& p : profiles) {
    if (std::find(p.services.begin(), p.services.end(), service) != p.services.end()) return &p;
  }
  for (const auto& p : profiles) {
    for (const auto& range : p.clients) {
      if (range.contains(gatewayAddress)) return &p;
    }
  }
  return nullptr;
}

}  // namespace imapav::icapd
