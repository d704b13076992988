#pragma once
// A real Dovecot IMAP server for integration tests: its own configuration, run and mail
// directories under a private temporary directory, listening on a free loopback port,
// with a static password for every user. Mail runs as "nobody" (Dovecot refuses uid 0).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace imapav::test {

class DovecotFixture {
 public:
  static constexpr const char* kPassword = "imapav-secret";

  DovecotFixture();
  ~DovecotFixture();

  // Puts messages into INBOX of user (before or after start); Dovecot gives them UIDs
  // 1, 2, ... in the order given.
  void deliver(const std::string& user, const std::vector<std::string>& messages);
  // TLS on (before start()): STARTTLS on port(), implicit TLS on tlsPort().
  void enableTls(const std::string& certFile, const std::string& keyFile);
  void start();
  void stop();

  std::uint16_t port() const { return port_; }
  std::uint16_t tlsPort() const { return tlsPort_; }
  const TempDir& dir() const { return dir_; }
  std::string log() const;

 private:
  TempDir dir_;
  void writeConfig(const std::string& tlsLines);

  std::uint16_t port_ = 0;
  std::uint16_t tlsPort_ = 0;
  unsigned delivered_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace imapav::test
