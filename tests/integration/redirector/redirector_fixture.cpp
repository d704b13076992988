#include "tests/integration/redirector/redirector_fixture.hpp"

#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <regex>

namespace imapav::test {

RedirectorFixture::RedirectorFixture(const std::vector<std::string>& messages,
                                     const std::map<std::string, std::string>& extra, bool dovecotTls,
                                     const std::map<std::string, std::string>& icapdSettings)
    : icapd(icapdSettings) {
  std::filesystem::create_directories(dovecot.dir().file("certs"));
  certs = makeTestCerts(dovecot.dir().file("certs"));
  dovecot.deliver("bob", messages);
  if (dovecotTls) dovecot.enableTls(certs.serverCert, certs.serverKey);
  dovecot.start();
  port_ = freePort();
  std::map<std::string, std::string> cfg = {
      {"imap.listen", "127.0.0.1:" + std::to_string(port_)},
      {"upstream.address", "127.0.0.1:" + std::to_string(dovecot.port())},
      {"icap.servers", "icap://127.0.0.1:" + std::to_string(icapd.port()) + "/avscan"},
      {"icap.timeout", "3"},
      {"fail_mode", "drop"},
  };
  for (auto [k, v] : extra) {
    for (const auto& [name, path] : std::map<std::string, std::string>{
             {"@CA@", certs.caCert}, {"@CERT@", certs.serverCert}, {"@KEY@", certs.serverKey}, {"@ROGUE@", certs.rogueCert},
             {"@DOVECOT_TLS_PORT@", std::to_string(dovecot.tlsPort())},
             {"@ICAP@", "icap://127.0.0.1:" + std::to_string(icapd.port()) + "/avscan"}}) {
      for (auto at = v.find(name); at != std::string::npos; at = v.find(name)) v.replace(at, name.size(), path);
    }
    if (k == "imaps.listen" && v == "auto") {
      tlsPort_ = freePort();
      v = "127.0.0.1:" + std::to_string(tlsPort_);
    }
    cfg[k] = v;
  }
  std::string text;
  for (const auto& [k, v] : cfg) text += k + " = " + v + "\n";
  const std::string conf = dovecot.dir().file("redirector.conf");
  writeFile(conf, text);
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{std::string(IMAPAV_BINARY_DIR) + "/redirector/imapav-redirector", "--config", conf},
      dovecot.dir().file("redirector.log"));
  if (!waitForPort(port_, std::chrono::seconds(20))) BOOST_FAIL("imapav-redirector did not start:\n" + log());
}

RedirectorFixture::~RedirectorFixture() { stop(); }

std::map<int, std::size_t> sizesOf(const std::string& json) {
  std::map<int, std::size_t> out;
  const std::regex re("\"(\\d+)\": (\\d+)");
  const auto start = json.find("\"sizes\"");
  if (start == std::string::npos) return out;
  const std::string part = json.substr(start, json.find('}', start) - start);
  for (std::sregex_iterator it(part.begin(), part.end(), re), last; it != last; ++it)
    out[std::stoi((*it)[1])] = std::stoul((*it)[2]);
  return out;
}

SlowIcap::SlowIcap(const std::string& delay, const std::string& mode)
    : port(freePort()),
      process({"/usr/bin/python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/slow_icap.py", "--port",
               std::to_string(port), "--delay", delay, "--mode", mode},
              logs.file("slow_icap.log")) {
  BOOST_REQUIRE(waitForPort(port, std::chrono::seconds(10)));
}

int RedirectorFixture::stop() {
  if (!process_) return -1;
  const int rc = process_->stop(SIGTERM, std::chrono::seconds(20));
  process_.reset();
  return rc;
}

std::string RedirectorFixture::log() const { return readFile(dovecot.dir().file("redirector.log")); }

CommandResult RedirectorFixture::fetchAll(std::uint16_t port, const std::string& out,
                                          const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {"python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_fetch.py",
                                   "--port", std::to_string(port), "--user", "bob", "--password",
                                   DovecotFixture::kPassword, "--out", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return runCommand(argv, std::chrono::seconds(120));
}

}  // namespace imapav::test
