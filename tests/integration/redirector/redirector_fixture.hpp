#pragma once
// The whole chain on loopback: a real Dovecot with a generated mailbox, the real
// imapav-icapd, and imapav-redirector in front of Dovecot.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/dovecot.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls_certs.hpp"

namespace imapav::test {

// RFC822.SIZE per UID from imap_fetch.py's JSON ("sizes": {"1": N, ...}).
std::map<int, std::size_t> sizesOf(const std::string& json);

// tests/integration/clients/slow_icap.py: every RESPMOD answered after delay seconds with
// what mode says (204, garbage, truncated, close).
struct SlowIcap {
  explicit SlowIcap(const std::string& delay, const std::string& mode = "204");
  std::string url() const { return "icap://127.0.0.1:" + std::to_string(port) + "/avscan"; }
  std::uint16_t port;
  TempDir logs;
  ChildProcess process;
};

class RedirectorFixture {
 public:
  // messages: INBOX of user "bob", UIDs 1.. in order. extra: redirector settings, in
  // whose values @CA@, @CERT@, @KEY@ and @ROGUE@ stand for the test certificates and
  // @DOVECOT_TLS_PORT@ for Dovecot's implicit-TLS port, @ICAP@ for the fixture's icapd; imaps.listen = auto picks a port.
  // dovecotTls: Dovecot offers STARTTLS and implicit TLS with the test certificate.
  // icapdSettings: imapav-icapd settings added to the fixture's defaults.
  RedirectorFixture(const std::vector<std::string>& messages, const std::map<std::string, std::string>& extra = {},
                    bool dovecotTls = false, const std::map<std::string, std::string>& icapdSettings = {});
  ~RedirectorFixture();

  std::uint16_t port() const { return port_; }         // the redirector (plain + STARTTLS)
  std::uint16_t tlsPort() const { return tlsPort_; }   // the redirector (implicit TLS), if configured
  std::uint16_t dovecotPort() const { return dovecot.port(); }
  std::string log() const;                             // the redirector's
  int stop();                                          // the redirector; its exit status

  // python imaplib (tests/integration/clients/imap_fetch.py) against port; the messages
  // land in OUT/<uid>.eml. Returns the command's result (JSON on stdout).
  CommandResult fetchAll(std::uint16_t port, const std::string& out, const std::vector<std::string>& extra = {}) const;

  DovecotFixture dovecot;
  IcapdFixture icapd;
  TestCerts certs;

 private:
  std::uint16_t port_ = 0;
  std::uint16_t tlsPort_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace imapav::test
