#pragma once
// Profiles: several policies in one server. A gateway gets a profile by the ICAP service
// name it asks for (icap://host/avscan-strict) or by its address; otherwise the base
// policy (policy.*) applies.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "icap-server/policy.hpp"

namespace imapav::icapd {

// An IPv4 or IPv6 address with a prefix length: "10.0.0.0/8", "192.0.2.7", "2001:db8::/32".
struct AddressRange {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  unsigned prefix = 0;
  // address: a numeric IPv4 or IPv6 address; an IPv4-mapped IPv6 address counts as IPv4.
  bool contains(std::string_view address) const;
};
std::optional<AddressRange> parseAddressRange(std::string_view text);

struct Profile {
  std::string name;
  std::vector<std::string> services;   // ICAP service names that select this profile
  std::vector<AddressRange> clients;   // gateway addresses that select it
  PolicySettings policy;
};

// The profile asked for by service name; else the first whose clients contain the
// gateway's address; else nullptr (the base policy).
const Profile* selectProfile(const std::vector<Profile>& profiles, std::string_view service,
                             std::string_view gatewayAddress);

}  // namespace imapav::icapd
