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
  BOOST_TEST(parseDuration("d", "3h").count() == 3 * 3600000);
  BOOST_CHECK_THROW(parseDuration("d", "25h"), ConfigError);  // longer than a day
  BOOST_CHECK_THROW(parseDuration("d", "3d"), ConfigError);
  BOOST_CHECK_THROW(parseDuration("d", "s"), ConfigError);
}

BOOST_AUTO_TEST_CASE(defaults_and_overrides) {
  ConfigFile f(
      "# comment\nicap.listen = [::1]:11344\nscan.database_dir = /var/lib/clamav\npolicy.fail_mode = pass\n"
      "scan.max_scan_time = 500ms\nicap.max_connections = 7\n");
  const auto c = loadConfig(f.path());
  BOOST_TEST(c.listenHost == "::1");
  BOOST_TEST(c.listenPort == 11344);
  BOOST_TEST((c.policy.onError[static_cast<std::size_t>(imapav::scan::ErrorClass::Timeout)] == FailMode::Pass));
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
  BOOST_TEST(!c.metricsListen);  // off unless set
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
  BOOST_TEST((c.policy.onError == d.policy.onError));
  BOOST_TEST((c.policy.virusNotice == d.policy.virusNotice));
  BOOST_TEST(c.policy.notifySenderOnVirus == d.policy.notifySenderOnVirus);
  BOOST_TEST(c.policy.notifySenderOnErrorDrop == d.policy.notifySenderOnErrorDrop);
  BOOST_TEST(c.policy.notifyRecipientOnErrorPass == d.policy.notifyRecipientOnErrorPass);
  BOOST_TEST(c.policy.subjectTag == d.policy.subjectTag);
  BOOST_TEST(c.profiles.empty());
  BOOST_TEST(c.notifyFrom == d.notifyFrom);
  BOOST_TEST(c.notifySubject == d.notifySubject);
  BOOST_TEST(c.notifyTemplateFile == d.notifyTemplateFile);
  BOOST_TEST(c.notifyTimeout.count() == d.notifyTimeout.count());
  BOOST_TEST(c.notifyMaxAttempts == d.notifyMaxAttempts);
  BOOST_TEST(c.notifyRetryDelay.count() == d.notifyRetryDelay.count());
  BOOST_TEST(c.notifyMaxQueue == d.notifyMaxQueue);
  BOOST_TEST(c.notifyRatePerSender == d.notifyRatePerSender);
  BOOST_TEST(c.notifyRateWindow.count() == d.notifyRateWindow.count());
  BOOST_TEST(!c.notifyRelay.has_value());
  BOOST_TEST(c.virusSubject == d.virusSubject);
  BOOST_TEST(c.errorSubject == d.errorSubject);
  BOOST_TEST(c.noticeFrom == d.noticeFrom);
  BOOST_TEST(c.respmod == d.respmod);
  BOOST_TEST(c.reqmod == d.reqmod);
  BOOST_TEST(c.reloadCheck.count() == d.reloadCheck.count());
  BOOST_TEST(c.reloadMinPercent == d.reloadMinPercent);
  BOOST_TEST(c.cacheMaxEntries == d.cacheMaxEntries);
  BOOST_TEST(c.cacheMaxAge.count() == d.cacheMaxAge.count());
}

BOOST_AUTO_TEST_CASE(reload_and_cache_settings) {
  ConfigFile f(
      "scan.database_dir = /x\nscan.reload_check = 0\ncache.max_entries = 0\ncache.max_age = 2h\n"
      "scan.reload_min_percent = 0\n");
  const auto c = loadConfig(f.path());
  BOOST_TEST(c.reloadCheck.count() == 0);
  BOOST_TEST(c.cacheMaxEntries == 0U);
  BOOST_TEST(c.cacheMaxAge.count() == 2 * 3600000);
  BOOST_TEST(c.reloadMinPercent == 0U);
  ConfigFile minimal("scan.database_dir = /x\n");
  const auto d = loadConfig(minimal.path());
  BOOST_TEST(d.reloadCheck.count() == 60000);
  BOOST_TEST(d.cacheMaxEntries == 100000U);
  BOOST_TEST(d.cacheMaxAge.count() == 24 * 3600000);
  BOOST_TEST(d.reloadMinPercent == 50U);
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\nscan.reload_min_percent = 101\n", "scan.reload_min_percent"));
  BOOST_TEST(throwsMentioning("scan.database_dir = /x\ncache.max_entries = lots\n", "cache.max_entries"));
}

BOOST_AUTO_TEST_CASE(policy_keys_apply_in_any_order_and_profiles_inherit) {
  ConfigFile f(
      "scan.database_dir = /x\n"
      "policy.on_error.encrypted = permit\npolicy.fail_mode = pass\npolicy.on_error.timeout = block\n"
      "policy.virus_notice = protocol-only\npolicy.subject_tag = [unscanned]\n"
      "policy.notify_recipient_on_error_pass = yes\n"
      "profile.strict.services = avscan-strict, avscan-hard\nprofile.strict.fail_mode = drop\n"
      "profile.branch.clients = 192.0.2.0/24, 2001:db8::/32\nprofile.branch.on_error.corrupt = block\n");
  const auto c = loadConfig(f.path());
  using imapav::scan::ErrorClass;
  const auto at = [](const PolicySettings& p, ErrorClass e) { return p.onError[static_cast<std::size_t>(e)]; };
  BOOST_TEST((at(c.policy, ErrorClass::Encrypted) == FailMode::Pass));
  BOOST_TEST((at(c.policy, ErrorClass::Timeout) == FailMode::Drop));  // the class wins over fail_mode
  BOOST_TEST((at(c.policy, ErrorClass::Corrupt) == FailMode::Pass));
  BOOST_TEST((c.policy.virusNotice == VirusNotice::ProtocolOnly));
  BOOST_TEST(c.policy.subjectTag == "[unscanned]");
  BOOST_REQUIRE(c.profiles.size() == 2u);
  const auto& branch = c.profiles[0];  // by name
  const auto& strict = c.profiles[1];
  BOOST_TEST(strict.name == "strict");
  BOOST_TEST(strict.services == (std::vector<std::string>{"avscan-strict", "avscan-hard"}), boost::test_tools::per_element());
  BOOST_TEST((at(strict.policy, ErrorClass::Encrypted) == FailMode::Drop));  // its fail_mode resets every class
  BOOST_TEST((strict.policy.virusNotice == VirusNotice::ProtocolOnly));     // the rest is inherited
  BOOST_TEST(strict.policy.subjectTag == "[unscanned]");
  BOOST_TEST((at(branch.policy, ErrorClass::Corrupt) == FailMode::Drop));
  BOOST_TEST((at(branch.policy, ErrorClass::Encrypted) == FailMode::Pass));
  BOOST_TEST(branch.clients.size() == 2u);
  BOOST_TEST(branch.clients[0].contains("192.0.2.77"));
  BOOST_TEST(branch.clients[0].contains("::ffff:192.0.2.1"));
  BOOST_TEST(!branch.clients[0].contains("192.0.3.1"));
  BOOST_TEST(branch.clients[1].contains("2001:db8:1::5"));
  BOOST_TEST(!branch.clients[1].contains("2001:db9::5"));
  BOOST_TEST(selectProfile(c.profiles, "avscan-hard", "192.0.2.1") == &strict);
  BOOST_TEST(selectProfile(c.profiles, "avscan", "192.0.2.1") == &branch);
  BOOST_TEST(selectProfile(c.profiles, "avscan", "10.0.0.1") == nullptr);
}

BOOST_AUTO_TEST_CASE(profile_mistakes_are_named) {
  const std::string base = "scan.database_dir = /x\n";
  BOOST_TEST(throwsMentioning(base + "policy.on_error.encrypted = sometimes\n", "policy.on_error.encrypted"));
  BOOST_TEST(throwsMentioning(base + "policy.on_error.hairy = block\n", "hairy"));
  BOOST_TEST(throwsMentioning(base + "policy.colour = red\n", "policy.colour"));
  BOOST_TEST(throwsMentioning(base + "profile.x.fail_mode = drop\n", "nothing selects it"));
  BOOST_TEST(throwsMentioning(base + "profile.x.services = avscan\n", "icap.service"));
  BOOST_TEST(throwsMentioning(base + "profile.x.clients = 10.0.0.0/33\n", "profile.x.clients"));
  BOOST_TEST(throwsMentioning(base + "profile.x.clients = mail.example.com\n", "profile.x.clients"));
  BOOST_TEST(throwsMentioning(base + "profile.x.services = a\nprofile.x.colour = red\n", "profile.x.colour"));
  BOOST_TEST(throwsMentioning(base + "profile.x.services = a\nprofile.y.services = a\n", "belongs to profile"));
  BOOST_TEST(throwsMentioning(base + "profile.b@d.services = a\n", "profile name"));
  BOOST_TEST(throwsMentioning(base + "policy.services = a\n", "belong to a profile"));
  BOOST_TEST(throwsMentioning(base + "policy.subject_tag = [${unknown}]\n", "policy.subject_tag"));
  BOOST_TEST(throwsMentioning(base + "profile.x.services = a\nprofile.x.subject_tag = ${x\n", "profile.x.subject_tag"));
  BOOST_TEST(throwsMentioning(base + "policy.notify_sender_on_virus = true\n", "notify.relay"));
  BOOST_TEST(throwsMentioning(base + "profile.x.services = a\nprofile.x.notify_sender_on_error_drop = yes\n", "notify.relay"));
}
