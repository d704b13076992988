#include "tests/support/tls_certs.hpp"

#include <chrono>
#include <stdexcept>
#include <vector>

#include "tests/support/process.hpp"

namespace imapav::test {
namespace {

void run(const std::vector<std::string>& argv) {
  const CommandResult r = runCommand(argv, std::chrono::seconds(60));
  if (r.exitCode != 0) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    throw std::runtime_error("makeTestCerts: '" + line + "' failed (" + std::to_string(r.exitCode) +
                             "): " + r.output);
  }
}

// EC P-256 keys: generated in milliseconds, unlike RSA.
const std::vector<std::string> kNewKey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                          "-nodes"};

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TestCerts makeTestCerts(const std::string& dir) {
  TestCerts c{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/rogue.pem",
              dir + "/rogue.key"};
  const std::string caKey = dir + "/ca.key";
  const std::string csr = dir + "/server.csr";
  const std::string ext = dir + "/server.ext";
  writeFile(ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n");

  run(concat(concat({"openssl", "req", "-x509"}, kNewKey),
             {"-keyout", caKey, "-out", c.caCert, "-days", "3650", "-subj", "/CN=imapav test CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
              "keyUsage=critical,keyCertSign,cRLSign"}));
  run(concat(concat({"openssl", "req"}, kNewKey),
             {"-keyout", c.serverKey, "-out", csr, "-subj", "/CN=localhost"}));
  run({"openssl", "x509", "-req", "-in", csr, "-CA", c.caCert, "-CAkey", caKey, "-set_serial", "2",
       "-days", "3650", "-extfile", ext, "-out", c.serverCert});
  run(concat(concat({"openssl", "req", "-x509"}, kNewKey),
             {"-keyout", c.rogueKey, "-out", c.rogueCert, "-days", "3650", "-subj", "/CN=localhost",
              "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"}));
  return c;
}

}  // namespace imapav::test
