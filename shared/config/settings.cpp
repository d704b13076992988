#include "shared/config/settings.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/Exception.h>
#include <Poco/FileStream.h>
#include <Poco/StreamCopier.h>
#include <Poco/Util/PropertyFileConfiguration.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>
#include <vector>

namespace imapav::config {
namespace {

std::string trim(std::string s) {
  const auto notSpace = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), notSpace));
  s.erase(std::find_if(s.rbegin(), s.rend(), notSpace).base(), s.end());
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::uint64_t parseUnsigned(const std::string& key, const std::string& text) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    throw ConfigError(key + ": '" + text + "' is not a non-negative whole number");
  }
  return v;
}

// Splits "123abc" into the number and the unit.
std::pair<std::uint64_t, std::string> numberAndUnit(const std::string& key, const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) throw ConfigError(key + ": '" + text + "' does not start with a number");
  return {parseUnsigned(key, text.substr(0, i)), lower(trim(text.substr(i)))};
}

// Gives the parsed keys as stored. Walking them as a tree with AbstractConfiguration::keys()
// lost a key that is also the parent of others ("a" beside "a.b": its value silently
// ignored), and a line with an empty key or first part ("= x", ".a = x") made the walk
// recurse on "" until the stack overflowed.
class SettingsReader : public Poco::Util::PropertyFileConfiguration {
 public:
  explicit SettingsReader(std::istream& in) : PropertyFileConfiguration(in) {}
  std::vector<Setting> settings() const {
    std::vector<Setting> out;
    for (auto it = begin(); it != end(); ++it) out.push_back({it->first, trim(it->second)});
    return out;
  }

 protected:
  ~SettingsReader() override = default;  // reference counted, as its base
};

}  // namespace

std::vector<Setting> parseSettingsText(std::string_view text, const std::string& origin) {
  std::istringstream in{std::string(text)};
  std::vector<Setting> settings;
  try {
    const Poco::AutoPtr<SettingsReader> reader(new SettingsReader(in));
    settings = reader->settings();
  } catch (const Poco::Exception& e) {
    throw ConfigError("cannot parse configuration " + origin + ": " + e.displayText());
  }
  // Error texts start with the key; one with a NUL in it printed as an empty message, one
  // with a CR or an escape sequence could rewrite the operator's terminal (found by fuzzing).
  for (const auto& s : settings) {
    if (std::any_of(s.key.begin(), s.key.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      throw ConfigError(origin + ": a key contains a control character");
    }
  }
  return settings;
}

void loadSettings(const std::string& path, const std::map<std::string, Setter>& setters, const Fallback& fallback) {
  std::string text;
  try {
    // As PropertyFileConfiguration(path) did, for the same error texts.
    Poco::FileInputStream in(path);
    if (!in.good()) throw Poco::OpenFileException(path);
    Poco::StreamCopier::copyToString(in, text);
  } catch (const Poco::Exception& e) {
    throw ConfigError("cannot read configuration file " + path + ": " + e.displayText());
  }
  for (const auto& [key, value] : parseSettingsText(text, path)) {
    const auto it = setters.find(key);
    if (it != setters.end()) {
      it->second(key, value);
    } else if (!fallback || !fallback(key, value)) {
      throw ConfigError(path + ": unknown setting '" + key + "'");
    }
  }
}

std::uint64_t parseSize(const std::string& key, const std::string& text) {
  const auto [n, unit] = numberAndUnit(key, trim(text));
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1ull << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1ull << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1ull << 30;
  else throw ConfigError(key + ": unknown size unit '" + unit + "' (use k, M or G)");
  if (n > (~0ull) / mult) throw ConfigError(key + ": '" + text + "' is too large");
  return n * mult;
}

std::chrono::milliseconds parseDuration(const std::string& key, const std::string& text) {
  const auto [n, unit] = numberAndUnit(key, trim(text));
  std::uint64_t ms = 0;
  if (unit.empty() || unit == "s") ms = n * 1000;
  else if (unit == "ms") ms = n;
  else if (unit == "m" || unit == "min") ms = n * 60'000;
  else if (unit == "h") ms = n * 3'600'000;
  else throw ConfigError(key + ": unknown time unit '" + unit + "' (use ms, s, m or h)");
  if (ms > 24ull * 3600 * 1000) throw ConfigError(key + ": '" + text + "' is longer than a day");
  return std::chrono::milliseconds(ms);
}

std::uint64_t parseNumber(const std::string& key, const std::string& text, std::uint64_t min, std::uint64_t max) {
  const auto v = parseUnsigned(key, trim(text));
  if (v < min || v > max) {
    throw ConfigError(key + ": " + std::to_string(v) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
  }
  return v;
}

bool parseBool(const std::string& key, const std::string& text) {
  const auto v = lower(trim(text));
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  throw ConfigError(key + ": expected true or false, got '" + text + "'");
}

HostPort parseHostPort(const std::string& key, const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) throw ConfigError(key + ": expected HOST:PORT, got '" + text + "'");
  HostPort hp;
  hp.host = text.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') hp.host = hp.host.substr(1, hp.host.size() - 2);
  hp.port = static_cast<std::uint16_t>(parseNumber(key, text.substr(colon + 1), 0, 65535));
  return hp;
}

}  // namespace imapav::config
