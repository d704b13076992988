#include "tests/support/prometheus.hpp"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "tests/support/process.hpp"

namespace imapav::test {

double Scrape::value(const std::string& key) const {
  const auto it = samples.find(key);
  if (it == samples.end()) {
    BOOST_ERROR("no sample " + key + " in the scrape");
    return 0;
  }
  return it->second;
}

std::map<std::string, double> parseSamples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const std::string v = line.substr(space + 1);
    double value = 0;
    if (v == "+Inf") value = HUGE_VAL;
    else if (v == "-Inf") value = -HUGE_VAL;
    else value = std::strtod(v.c_str(), nullptr);
    out[line.substr(0, space)] = value;
  }
  return out;
}

Scrape scrape(std::uint16_t port) {
  Scrape s;
  // -i: the status line and headers first; -sS: quiet but report errors.
  const auto r = runCommand({"curl", "-sS", "-i", "--max-time", "10",
                             "http://127.0.0.1:" + std::to_string(port) + "/metrics"},
                            std::chrono::seconds(15));
  if (r.exitCode != 0) {
    BOOST_ERROR("curl failed: " + r.output);
    return s;
  }
  const auto end = r.output.find("\r\n\r\n");
  if (end == std::string::npos) return s;
  const std::string head = r.output.substr(0, end);
  s.body = r.output.substr(end + 4);
  std::istringstream in(head);
  std::string line;
  std::getline(in, line);
  if (line.rfind("HTTP/", 0) == 0 && line.size() > 12) s.status = std::atoi(line.c_str() + line.find(' ') + 1);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "content-type") s.contentType = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  s.samples = parseSamples(s.body);
  return s;
}

std::string promtoolProblems(const std::string& text) {
  const auto r = runCommand({"promtool", "check", "metrics"}, std::chrono::seconds(30), text);
  return r.exitCode == 0 ? std::string() : "promtool exit " + std::to_string(r.exitCode) + ": " + r.output;
}

}  // namespace imapav::test
