#include <boost/test/unit_test.hpp>

#include "tests/support/process.hpp"
#include <cstdio>
#include <fstream>

#include "redirector/config.hpp"

using namespace imapav::redirector;

namespace {
using ConfigFile = imapav::test::TempFile;

std::string errorOf(const std::string& text) {
  ConfigFile f(text);
  try {
    loadConfig(f.path());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

const std::string kMinimal =
    "imap.listen = 127.0.0.1:1143\nupstream.address = 127.0.0.1:143\nicap.servers = icap://127.0.0.1:1344/avscan\n";
}  // namespace

BOOST_AUTO_TEST_CASE(the_example_configuration_loads_with_its_documented_defaults) {
  const auto c = loadConfig(std::string(IMAPAV_SOURCE_DIR) + "/conf/imapav-redirector.conf");
  BOOST_TEST(c.imapListen->port == 143);
  BOOST_TEST(c.upstream.port == 10143);
  BOOST_TEST((c.upstreamSecurity == UpstreamSecurity::None));
  BOOST_TEST(c.upstreamVerify);
  BOOST_TEST(c.icapServers.size() == 1u);
  BOOST_TEST(c.icapTimeout.count() == 30);
  BOOST_TEST((c.failMode == LocalFailMode::Drop));
  // The file documents the defaults: loading a minimal file gives the same values.
  ConfigFile minimal(kMinimal);
  const auto d = loadConfig(minimal.path());
  BOOST_TEST(d.maxMessageSize == c.maxMessageSize);
  BOOST_TEST(d.keepaliveInterval.count() == c.keepaliveInterval.count());
  BOOST_TEST(d.idleTimeout.count() == c.idleTimeout.count());
  BOOST_TEST(d.lineTimeout.count() == c.lineTimeout.count());
  BOOST_TEST(d.upstreamTimeout.count() == c.upstreamTimeout.count());
  BOOST_TEST(!c.metricsListen);  // off unless set
  BOOST_TEST(d.scanWorkers == c.scanWorkers);
  BOOST_TEST(d.icapConnections == c.icapConnections);
  BOOST_TEST(d.maxLineBytes == c.maxLineBytes);
  BOOST_TEST(d.connectTimeout.count() == c.connectTimeout.count());
}

BOOST_AUTO_TEST_CASE(servers_list_and_mistakes) {
  ConfigFile f(kMinimal + "icap.servers = icap://a:1/avscan, icap://b:2/avscan\n");
  BOOST_TEST(loadConfig(f.path()).icapServers.size() == 2u);
  BOOST_TEST(errorOf("upstream.address = h:1\nicap.servers = icap://a/s\n").find("imap.listen") != std::string::npos);
  BOOST_TEST(errorOf("imap.listen = h:1\nicap.servers = icap://a/s\n").find("upstream.address") != std::string::npos);
  BOOST_TEST(errorOf("imap.listen = h:1\nupstream.address = h:2\n").find("icap.servers") != std::string::npos);
  BOOST_TEST(errorOf(kMinimal + "icap.servers = http://x/\n").find("icap://") != std::string::npos);
  BOOST_TEST(errorOf(kMinimal + "fail_mode = maybe\n").find("fail_mode") != std::string::npos);
  BOOST_TEST(errorOf(kMinimal + "upstream.security = ssl\n").find("upstream.security") != std::string::npos);
  BOOST_TEST(errorOf(kMinimal + "upstream.verify = perhaps\n").find("upstream.verify") != std::string::npos);
  BOOST_TEST(errorOf(kMinimal + "icap.timeout = 200ms\n").find("icap.timeout") != std::string::npos);
  BOOST_TEST(errorOf(kMinimal + "imap.lisen = h:1\n").find("imap.lisen") != std::string::npos);
}
