#pragma once
// Scraping /metrics as Prometheus does: with a real HTTP client (curl), the text checked
// by promtool (the Prometheus project's own linter), the samples read into a map.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace imapav::test {

struct Scrape {
  int status = 0;  // HTTP status; 0 when curl failed
  std::string contentType;
  std::string body;
  std::map<std::string, double> samples;  // `name{labels}` exactly as written -> value

  // The sample's value; 0 and a test failure when it is missing.
  double value(const std::string& key) const;
  bool has(const std::string& key) const { return samples.count(key) != 0; }
};

// GET http://127.0.0.1:port/metrics with curl (10 s limit).
Scrape scrape(std::uint16_t port);
// The sample lines of an exposition.
std::map<std::string, double> parseSamples(const std::string& text);
// promtool check metrics: empty when the text is valid, else promtool's complaints.
std::string promtoolProblems(const std::string& text);

}  // namespace imapav::test
