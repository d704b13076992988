// Address lists (From, To, Cc...) as summarize() reads them: extractAddresses.

#include <algorithm>
#include <string>

#include "shared/mime/address.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto value = imapav::fuzz::asText(data, size);
  const std::size_t max = 1 + imapav::fuzz::hashOf(value) % 4;
  const auto all = imapav::mime::extractAddresses(value);
  const auto some = imapav::mime::extractAddresses(value, max);
  FUZZ_CHECK(all.size() <= 1000 && some.size() <= max);
  // A limit only cuts the list short.
  FUZZ_CHECK(some.size() == std::min(all.size(), max));
  for (std::size_t i = 0; i < some.size(); ++i) FUZZ_CHECK(some[i] == all[i]);
  for (const auto& a : all) {
    // An addr-spec: local@domain without control characters (a quoted local part may
    // hold white space).
    FUZZ_CHECK(a.find('@') != std::string::npos && a.front() != '@' && a.back() != '@');
    for (const char c : a) FUZZ_CHECK((static_cast<unsigned char>(c) >= 0x20 || c == '\t') && c != 0x7f);
  }
  return 0;
}
