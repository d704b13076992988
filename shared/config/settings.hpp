#pragma once
// Reading the daemons' configuration files (POCO properties, "key = value") and the value
// syntax both daemons share. Start-up code: errors throw ConfigError naming the key.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace imapav::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Called with the key and its trimmed value.
using Setter = std::function<void(const std::string& key, const std::string& value)>;

// For keys without a setter (families such as "profile.NAME.*"): true when it took the key.
using Fallback = std::function<bool(const std::string& key, const std::string& value)>;

struct Setting {
  std::string key;
  std::string value;  // trimmed
};

// The settings in the text of a configuration file (POCO properties: "key = value" or
// "key: value", '#' and '!' comment lines, '\\' escapes and continuation lines), ordered
// by key; a key given twice keeps its last value. No I/O; whether a key is known is for
// the caller to check. Throws ConfigError, naming origin, if the text cannot be parsed or
// a key contains a control character.
std::vector<Setting> parseSettingsText(std::string_view text, const std::string& origin);

// Reads FILE (parseSettingsText) and calls the setter of every key in it. A key that
// neither a setter nor the fallback takes is an error, so a typo cannot silently fall back
// to a default.
void loadSettings(const std::string& path, const std::map<std::string, Setter>& setters,
                  const Fallback& fallback = {});

// "10M", "512k", "1G", "4096" -> bytes (1024-based).
std::uint64_t parseSize(const std::string& key, const std::string& text);
// "30", "30s", "500ms", "2m", "1h" -> milliseconds (plain numbers are seconds); at most a day.
std::chrono::milliseconds parseDuration(const std::string& key, const std::string& text);
// A whole number within [min, max].
std::uint64_t parseNumber(const std::string& key, const std::string& text, std::uint64_t min, std::uint64_t max);
// true/false, yes/no, on/off, 1/0.
bool parseBool(const std::string& key, const std::string& text);
// "HOST:PORT" or "[v6]:PORT".
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
HostPort parseHostPort(const std::string& key, const std::string& text);

}  // namespace imapav::config
