#pragma once
// TLS certificates made at test time with the openssl command line tool, so no key is
// stored in the repository: a test CA, a "localhost" server certificate it signed, and a
// self-signed "localhost" certificate nobody trusts.

#include <string>

namespace imapav::test {

struct TestCerts {
  std::string caCert;      // PEM, the trust anchor
  std::string serverCert;  // PEM, CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by the CA
  std::string serverKey;
  std::string rogueCert;   // PEM, same names, self-signed: fails verification against caCert
  std::string rogueKey;
};

// Writes the files into dir (which must exist); throws std::runtime_error if openssl fails.
TestCerts makeTestCerts(const std::string& dir);

}  // namespace imapav::test
