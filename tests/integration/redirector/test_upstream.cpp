// The upstream the redirector will sit in front of: a real Dovecot, read by real clients
// (python imaplib, curl). These tests pin down the harness and the direct-fetch baseline
// that the redirector's tests compare against.

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/dovecot.hpp"
#include "tests/support/process.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

const std::string kClient = std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_fetch.py";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(upstream)

BOOST_AUTO_TEST_CASE(imaplib_downloads_every_message_byte_for_byte) {
  DovecotFixture dovecot;
  const std::vector<std::string> messages = {cleanMessage("one", 300), infectedMessage("two"),
                                             cleanMessage("three", 70000)};
  dovecot.deliver("bob", messages);
  dovecot.start();
  for (const std::string auth : {"login", "plain"}) {
    BOOST_TEST_CONTEXT("auth " << auth) {
      const std::string out = dovecot.dir().file("out-" + auth);
      const auto r = runCommand({"python3", kClient, "--port", std::to_string(dovecot.port()), "--user", "bob",
                                 "--password", DovecotFixture::kPassword, "--auth", auth, "--out", out},
                                60s);
      BOOST_TEST_MESSAGE(r.output);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + dovecot.log());
      BOOST_TEST(contains(r.output, "\"uids\": [1, 2, 3]"));
      for (std::size_t i = 0; i < messages.size(); ++i) {
        BOOST_TEST(readFile(out + "/" + std::to_string(i + 1) + ".eml") == messages[i]);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(curl_fetches_one_message_by_uid) {
  DovecotFixture dovecot;
  dovecot.deliver("carol", {cleanMessage("a"), cleanMessage("b", 1234)});
  dovecot.start();
  const auto r = runCommand({"curl", "-s", "--max-time", "20", "--user", std::string("carol:") + DovecotFixture::kPassword,
                             "imap://127.0.0.1:" + std::to_string(dovecot.port()) + "/INBOX/;UID=2"},
                            30s);
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(r.output == cleanMessage("b", 1234));
}

BOOST_AUTO_TEST_SUITE_END()
