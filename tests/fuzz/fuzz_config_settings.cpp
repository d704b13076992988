// Configuration text as the daemons read it (parseSettingsText, the parser behind
// loadSettings), and the value syntax their setters use. Start-up code reports bad input
// by throwing ConfigError; anything else escaping, or a wrong value, is a finding.

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/config/settings.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace imapav::config;

bool isSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// What a duration text means in milliseconds, worked out independently of parseDuration:
// nullopt if it is no number and unit, or does not fit in 64 bits.
std::optional<std::uint64_t> expectedMs(std::string_view text) {
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (__builtin_mul_overflow(n, 10u, &n) || __builtin_add_overflow(n, static_cast<unsigned>(text[i] - '0'), &n)) {
      return std::nullopt;
    }
  }
  if (i == 0) return std::nullopt;
  std::string unit(text.substr(i));
  unit.erase(0, std::min(unit.size(), unit.find_first_not_of(" \t\n\v\f\r")));
  for (auto& c : unit) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "s") mult = 1000;
  if (unit == "ms") mult = 1;
  if (unit == "m" || unit == "min") mult = 60'000;
  if (unit == "h") mult = 3'600'000;
  std::uint64_t ms = 0;
  if (mult == 0 || __builtin_mul_overflow(n, mult, &ms)) return std::nullopt;
  return ms;
}

template <class F>
void tryParse(F&& parse) {
  try {
    parse();
  } catch (const ConfigError& e) {
    FUZZ_CHECK(*e.what() != '\0');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<Setting> settings;
  try {
    settings = parseSettingsText(imapav::fuzz::asText(data, size), "fuzz.conf");
  } catch (const ConfigError&) {
    return 0;
  }
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const std::string& key = settings[i].key;
    const std::string& value = settings[i].value;
    if (i > 0) FUZZ_CHECK(settings[i - 1].key < key);  // ordered, each key once
    tryParse([&] { parseSize(key, value); });
    tryParse([&] { parseBool(key, value); });
    tryParse([&] { parseHostPort(key, value); });
    tryParse([&] { FUZZ_CHECK(parseNumber(key, value, 1, 65535) - 1 < 65535); });
    tryParse([&] {
      const auto ms = parseDuration(key, value);
      FUZZ_CHECK(ms.count() >= 0 && ms.count() <= 24 * 3600 * 1000);
      const auto expected = expectedMs(value);
      FUZZ_CHECK(expected && *expected == static_cast<std::uint64_t>(ms.count()));
    });
  }
  return 0;
}
