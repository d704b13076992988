#include <boost/test/unit_test.hpp>

#include "tests/support/process.hpp"
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "icap-server/config.hpp"

using namespace imapav::icapd;

namespace {
using ConfigFile = imapav::test::TempFile;

bool throwsMentioning(const std::string& text, const std::string& needle) {
  ConfigFile f(text);
  try {
    loadConfig(f.path());
  } catch (const ConfigError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}
}  // namespace

BOOST_AUTO_TEST_CASE(sizes_and_durations) {
  BOOST_TEST(parseSize("k", "4096") == 4096u);
  BOOST_TEST(parseSize("k", "64k") == 65536u);
  BOOST_TEST(parseSize("k", "8M") == 8u << 20);
  BOOST_TEST(parseSize("k", "1 GiB") == 1ull << 30);
  BOOST_CHECK_THROW(parseSize("k", "12X"), ConfigError);
  BOOST_CHECK_THROW(parseSize("k", "-1"), ConfigError);
  BOOST_CHECK_THROW(parseSize("k", "99999999999999999999999"), ConfigError);
  BOOST_CHECK_THROW(parseSize("k", "99999999999G"), ConfigError);
  BOOST_TEST(parseDuration("d", "30").count() == 30000);
  BOOST_TEST(parseDuration("d", "250ms").count() == 250);
  BOOST_TEST(parseDuration("d", "2m").count() == 120000);
  BOOST_CHECK_THROW(parseDuration("d", "3h"), ConfigError);
  BOOST_CHECK_THROW(parseDuration("d", "s"), ConfigError);
}

BOOST_AUTO_TEST_CASE(defaults_and_overrides) {
  ConfigFile f(
      "# comment\nicap.listen = [::1]:11344\nscan.database_dir = /var/lib/clamav\npolicy.fail_mode = pass\n"
      "scan.max_scan_time = 500ms\nicap.max_connections = 7\n");
  const auto c = loadConfig(f.path());
  BOOST_TEST(c.listenHost == "::1");
  BOOST_TEST(c.listenPort == 11344);
  BOOST_TEST((c.failMode == FailMode::Pass));
  BOOST_TEST(c.engine.maxScanTimeMs == 500u);
  BOOST_TEST(c.maxConnections == 7u);
  BOOST_TEST(c.service == "avscan");
  BOOST_TEST(c.scanThreads >= 1u);
}

BOOST_AUTO_TEST_CASE(mistakes_are_named) {
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\nicap.lisen = 1.2.3.4:5\n", "icap.lisen"));
  BOOST_TEST(throwsMentioning("icap.listen = 127.0.0.1:1344\n", "scan.database_dir"));
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\nicap.listen = 127.0.0.1\n", "HOST:PORT"));
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\nicap.listen = h:70000\n", "icap.listen"));
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\npolicy.fail_mode = open\n", "policy.fail_mode"));
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\nicap.max_connections = 0\n", "icap.max_connections"));
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\nicap.service = a/b\n", "icap.service"));
  BOOST_CHECK_THROW(loadConfig("/nonexistent/imapav.conf"), ConfigError);
}

BOOST_AUTO_TEST_CASE(scratch_on_tmpfs_and_spill_on_disk_by_default) {
  ConfigFile f("scan.database_dir = /x\n");
  const auto c = loadConfig(f.path());
  BOOST_TEST(c.engine.tmpDir == (std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp"));
  BOOST_TEST(c.spillDir == "/var/tmp");
  ConfigFile g("scan.database_dir = /x\nscan.tmp_dir = /a\nscan.spill_dir = /b\n");
  const auto d = loadConfig(g.path());
  BOOST_TEST(d.engine.tmpDir == "/a");
  BOOST_TEST(d.spillDir == "/b");
}

BOOST_AUTO_TEST_CASE(the_example_configuration_loads_and_documents_the_defaults) {
  const auto c = loadConfig(std::string(IMAPAV_SOURCE_DIR) + "/conf/imapav-icapd.conf");
  ConfigFile minimal("scan.database_dir = /var/lib/clamav\n");
  const auto d = loadConfig(minimal.path());
  BOOST_TEST(c.listenPort == d.listenPort);
  BOOST_TEST(c.maxConnections == d.maxConnections);
  BOOST_TEST(c.readTimeout.count() == d.readTimeout.count());
  BOOST_TEST(c.requestTimeout.count() == d.requestTimeout.count());
  BOOST_TEST(c.idleTimeout.count() == d.idleTimeout.count());
  BOOST_TEST(c.preview == d.preview);
  BOOST_TEST(c.maxBodySize == d.maxBodySize);
  BOOST_TEST(c.spillThreshold == d.spillThreshold);
  BOOST_TEST(c.spillDir == d.spillDir);
  BOOST_TEST(c.engine.maxScanSize == d.engine.maxScanSize);
  BOOST_TEST(c.engine.maxFileSize == d.engine.maxFileSize);
  BOOST_TEST(c.engine.maxRecursion == d.engine.maxRecursion);
  BOOST_TEST(c.engine.maxFiles == d.engine.maxFiles);
  BOOST_TEST(c.engine.maxScanTimeMs == d.engine.maxScanTimeMs);
  BOOST_TEST((c.failMode == d.failMode));
  BOOST_TEST(c.respmod == d.respmod);
  BOOST_TEST(c.reqmod == d.reqmod);
}
