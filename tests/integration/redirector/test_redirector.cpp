// imapav-redirector between real IMAP clients and a real Dovecot, scanning through the
// real imapav-icapd.

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <regex>
#include <thread>

#include "tests/integration/redirector/redirector_fixture.hpp"
#include "tests/support/prometheus.hpp"
#include "tests/support/samples.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;
using Settings = std::map<std::string, std::string>;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::vector<std::string> mailbox() {
  return {cleanMessage("first clean", 300), infectedMessage("Invoice attached"), cleanMessage("big clean", 150000),
          cleanMessage("=?UTF-8?B?R3LDvMOfZQ==?=", 500), infectedMessage("second bad")};
}

void checkMailbox(const RedirectorFixture& f, const std::string& dir, const CommandResult& r) {
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\nredirector log:\n" + f.log());
  const auto messages = mailbox();
  const auto sizes = sizesOf(r.output);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const int uid = static_cast<int>(i + 1);
    BOOST_TEST_CONTEXT("uid " << uid) {
      const auto got = readFile(dir + "/" + std::to_string(uid) + ".eml");
      const bool infected = contains(messages[i], "a.com");
      if (!infected) {
        BOOST_TEST(got == messages[i]);  // byte for byte
      } else {
        BOOST_TEST(got != messages[i]);
        BOOST_TEST(contains(got, "Eicar-Test-Signature"));
        BOOST_TEST(contains(got, "Message-ID: <infected-1@example.com>\r\n"));
        BOOST_TEST(!contains(got, "See attachment."));
      }
      // The size the client is told is the size it receives.
      BOOST_TEST(sizes.count(uid) == 1u);
      BOOST_TEST((sizes.count(uid) == 1u && sizes.at(uid) == got.size()));
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redirector)

BOOST_AUTO_TEST_CASE(imaplib_gets_clean_mail_unchanged_and_infected_mail_replaced) {
  RedirectorFixture f(mailbox());
  for (const std::string auth : {"login", "plain"}) {
    BOOST_TEST_CONTEXT("auth " << auth) {
      const std::string dir = f.dovecot.dir().file("via-" + auth);
      checkMailbox(f, dir, f.fetchAll(f.port(), dir, {"--auth", auth}));
    }
  }
  // A direct fetch sees the originals: the redirector changed nothing upstream.
  const std::string direct = f.dovecot.dir().file("direct");
  const auto r = f.fetchAll(f.dovecotPort(), direct);
  BOOST_REQUIRE(r.exitCode == 0);
  BOOST_TEST(readFile(direct + "/2.eml") == mailbox()[1]);
  BOOST_TEST(f.stop() == 0);  // a clean exit on SIGTERM (and, in sanitizer builds, no report)
  const auto log = f.log();
  BOOST_TEST_MESSAGE(log);
  BOOST_TEST(contains(log, "user=bob"));
  BOOST_TEST(!contains(log, DovecotFixture::kPassword));  // never a password
  BOOST_TEST(contains(log, "outcome=replaced"));
  BOOST_TEST(contains(log, "scanned=5 clean=3 replaced=2"));
  // Both client sessions know their user: LOGIN, and AUTHENTICATE PLAIN answered on its
  // own line (the fixture's start-up probe is a third session, without a user).
  std::size_t withUser = 0;
  for (std::size_t at = log.find("session client=127.0.0.1 user=bob bytes"); at != std::string::npos;
       at = log.find("session client=127.0.0.1 user=bob bytes", at + 1)) {
    ++withUser;
  }
  BOOST_TEST(withUser == 2u);
}

BOOST_AUTO_TEST_CASE(one_fetch_of_many_messages_mixing_clean_and_infected) {
  RedirectorFixture f(mailbox());
  const std::string dir = f.dovecot.dir().file("batch");
  checkMailbox(f, dir, f.fetchAll(f.port(), dir, {"--batch"}));
}

BOOST_AUTO_TEST_CASE(partial_fetches_shorter_than_asked_are_whole_messages) {
  // iOS Mail and K-9 fetch BODY.PEEK[]<0.N>: an answer shorter than N is the whole
  // message and is scanned; a full N-byte chunk of a bigger one is relayed, logged as
  // unscanned (a later issue scans those too).
  RedirectorFixture f(mailbox());
  const std::string dir = f.dovecot.dir().file("partial");
  const auto r = f.fetchAll(f.port(), dir, {"--fetch", "BODY.PEEK[]<0.65536>"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  const auto messages = mailbox();
  BOOST_TEST(readFile(dir + "/1.eml") == messages[0]);
  BOOST_TEST(contains(readFile(dir + "/2.eml"), "Eicar-Test-Signature"));
  BOOST_TEST(readFile(dir + "/3.eml") == messages[2].substr(0, 65536));
  BOOST_TEST(readFile(dir + "/4.eml") == messages[3]);
  BOOST_TEST(contains(readFile(dir + "/5.eml"), "Eicar-Test-Signature"));
  f.stop();
  BOOST_TEST(contains(f.log(), "unscanned partial fetch BODY[]<0>"));
  BOOST_TEST(contains(f.log(), "scanned=4 clean=2 replaced=2"));
  BOOST_TEST(contains(f.log(), "unscanned_partial=1"));
}

BOOST_AUTO_TEST_CASE(section_fetches_are_relayed_and_logged_as_unscanned) {
  RedirectorFixture f(mailbox());
  const std::string dir = f.dovecot.dir().file("text");
  const auto r = f.fetchAll(f.port(), dir, {"--fetch", "BODY.PEEK[TEXT]"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  const auto first = mailbox()[0];
  BOOST_TEST(readFile(dir + "/1.eml") == first.substr(first.find("\r\n\r\n") + 4));
  f.stop();
  BOOST_TEST(contains(f.log(), "unscanned section fetch BODY[TEXT]"));
  BOOST_TEST(contains(f.log(), "scanned=0"));
  BOOST_TEST(contains(f.log(), "unscanned_section=5"));
}

BOOST_AUTO_TEST_CASE(curl_fetches_by_uid) {
  RedirectorFixture f(mailbox());
  for (const int uid : {1, 2}) {
    const auto r = runCommand({"curl", "-s", "--max-time", "30", "--user", std::string("bob:") + DovecotFixture::kPassword,
                               "imap://127.0.0.1:" + std::to_string(f.port()) + "/INBOX/;UID=" + std::to_string(uid)},
                              60s);
    BOOST_TEST(r.exitCode == 0);
    if (uid == 1) BOOST_TEST(r.output == mailbox()[0]);
    else BOOST_TEST(contains(r.output, "Eicar-Test-Signature"));
  }
}

BOOST_AUTO_TEST_CASE(literal_login_pipelining_idle_and_refused_compress) {
  RedirectorFixture f(mailbox());
  const std::string out = f.dovecot.dir().file("session.eml");
  const auto r = runCommand({"python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_session.py",
                             "--port", std::to_string(f.port()), "--user", "bob", "--password",
                             DovecotFixture::kPassword, "--uid", "2", "--out", out},
                            60s);
  BOOST_TEST_MESSAGE(r.output);
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  BOOST_TEST(contains(readFile(out), "Eicar-Test-Signature"));
  BOOST_TEST(contains(r.output, "\"idle\": \"a5 OK"));
  BOOST_TEST(contains(r.output, "\"compress\": \"a6 NO"));
  BOOST_TEST(contains(r.output, "\"logout\": \"a7 OK"));
  const std::regex sizes("\"rfc822_size\": (\\d+), \"literal_size\": (\\d+)");
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(r.output, m, sizes));
  BOOST_TEST(m[1].str() == m[2].str());
  f.stop();
  BOOST_TEST(contains(f.log(), "user=bob"));
  BOOST_TEST(!contains(f.log(), DovecotFixture::kPassword));
}

BOOST_AUTO_TEST_CASE(no_scanning_server_applies_the_local_fail_mode) {
  for (const std::string mode : {"drop", "pass"}) {
    BOOST_TEST_CONTEXT("fail_mode " << mode) {
      RedirectorFixture f(mailbox(), Settings{{"fail_mode", mode}});
      const std::string before = f.dovecot.dir().file("before");
      BOOST_REQUIRE(f.fetchAll(f.port(), before).exitCode == 0);
      BOOST_TEST(readFile(before + "/1.eml") == mailbox()[0]);
      f.icapd.stop();  // the scanning server goes away mid-session
      const std::string after = f.dovecot.dir().file("after");
      const auto r = f.fetchAll(f.port(), after);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
      const auto sizes = sizesOf(r.output);
      for (int uid = 1; uid <= 5; ++uid) {
        const auto got = readFile(after + "/" + std::to_string(uid) + ".eml");
        BOOST_TEST(sizes.at(uid) == got.size());
        if (mode == "pass") {
          BOOST_TEST(got == mailbox()[static_cast<std::size_t>(uid - 1)]);
        } else {
          BOOST_TEST(contains(got, "X-Imapav-Status: dropped"));
          BOOST_TEST(!contains(got, "quick brown fox"));
        }
      }
      f.stop();
      BOOST_TEST(contains(f.log(), mode == "pass" ? "outcome=unscanned-failed" : "outcome=dropped-failed"));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_dead_icap_server_is_skipped_for_the_next_one) {
  const std::string dead = "icap://127.0.0.1:" + std::to_string(freePort()) + "/avscan";
  RedirectorFixture f(mailbox(), Settings{{"icap.servers", dead + ", @ICAP@"}});
  const std::string dir = f.dovecot.dir().file("failover");
  checkMailbox(f, dir, f.fetchAll(f.port(), dir));
}

BOOST_AUTO_TEST_CASE(large_messages_go_through_unlinked_files_and_arrive_whole) {
  TempDir spill;
  RedirectorFixture f(mailbox(), Settings{{"scan.spill_threshold", "16k"}, {"scan.spill_dir", spill.path()}});
  for (const bool batch : {false, true}) {
    BOOST_TEST_CONTEXT("batch " << batch) {
      const std::string dir = f.dovecot.dir().file(batch ? "spill-batch" : "spill");
      checkMailbox(f, dir, f.fetchAll(f.port(), dir, batch ? std::vector<std::string>{"--batch"} : std::vector<std::string>{}));
    }
  }
  BOOST_TEST(std::filesystem::is_empty(spill.path()));  // never a name on disk
  f.stop();
  // The 150 KB message went through a file, once per fetch.
  const auto log = f.log();
  unsigned long spilled = 0;
  const std::regex re("spilled=(\\d+)");
  for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it) spilled += std::stoul((*it)[1]);
  BOOST_TEST(spilled == 2ul);
}

BOOST_AUTO_TEST_CASE(an_unusable_spill_directory_stops_the_start) {
  TempDir dir;
  const std::string conf = dir.file("redirector.conf");
  writeFile(conf, "imap.listen = 127.0.0.1:" + std::to_string(freePort()) +
                      "\nupstream.address = 127.0.0.1:1\nicap.servers = icap://127.0.0.1:1/avscan\n"
                      "scan.spill_dir = " + dir.file("missing") + "\n");
  const auto r = runCommand({std::string(IMAPAV_BINARY_DIR) + "/redirector/imapav-redirector", "--config", conf}, 20s);
  BOOST_TEST(r.exitCode == 78);  // EX_CONFIG
  BOOST_TEST(contains(r.output, "scan.spill_dir: cannot create temporary file in " + dir.file("missing")));
}

BOOST_AUTO_TEST_CASE(an_icap_server_slower_than_the_timeout_is_given_up) {
  SlowIcap slow("8");
  RedirectorFixture f(mailbox(), Settings{{"icap.servers", slow.url()}, {"icap.timeout", "2"}, {"fail_mode", "drop"}});
  const std::string out = f.dovecot.dir().file("given-up.eml");
  const auto started = std::chrono::steady_clock::now();
  const auto r = runCommand({"python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_session.py",
                             "--port", std::to_string(f.port()), "--user", "bob", "--password", DovecotFixture::kPassword,
                             "--uid", "1", "--out", out},
                            60s);
  const auto took = std::chrono::steady_clock::now() - started;
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  const auto got = readFile(out);
  BOOST_TEST(contains(got, "X-Imapav-Status: dropped"));
  BOOST_TEST(!contains(got, "quick brown fox"));
  BOOST_TEST((took < 7s));  // the 2 s deadline, not the server's 8 s
  f.stop();
  BOOST_TEST(contains(f.log(), "(timeout)"));
}

BOOST_AUTO_TEST_CASE(a_client_waiting_for_a_slow_scan_gets_keepalives_and_others_are_served) {
  // An ICAP server that takes 3.5 s per message; keep-alives every second.
  SlowIcap slow("3.5");
  RedirectorFixture f(mailbox(), Settings{{"icap.servers", slow.url()},
                                          {"icap.timeout", "10"}, {"imap.keepalive_interval", "1s"}});
  const std::string out = f.dovecot.dir().file("slow.eml");
  CommandResult r;
  std::thread waiting([&] {
    r = runCommand({"python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_session.py", "--port",
                    std::to_string(f.port()), "--user", "bob", "--password", DovecotFixture::kPassword, "--uid", "1",
                    "--out", out},
                   60s);
  });
  // While that session waits for its scan, another one is served at once.
  std::this_thread::sleep_for(1500ms);
  const auto started = std::chrono::steady_clock::now();
  const auto other = runCommand({"curl", "-s", "--max-time", "20", "--user", std::string("bob:") + DovecotFixture::kPassword,
                                 "imap://127.0.0.1:" + std::to_string(f.port()) + "/", "-X", "CAPABILITY"},
                                30s);
  const auto took = std::chrono::steady_clock::now() - started;
  waiting.join();
  BOOST_TEST(other.exitCode == 0);
  BOOST_TEST(contains(other.output, "CAPABILITY"));
  BOOST_TEST((took < 1500ms));
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  BOOST_TEST(readFile(out) == mailbox()[0]);
  const std::regex keepalives("\"keepalives\": (\\d+)");
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(r.output, m, keepalives));
  BOOST_TEST(std::stoi(m[1].str()) >= 2);
}

BOOST_AUTO_TEST_CASE(sigterm_lets_a_download_in_flight_finish_then_says_bye) {
  SlowIcap slow("3");
  const auto mport = freePort();
  RedirectorFixture f(mailbox(), Settings{{"icap.servers", slow.url()},
                                          {"icap.timeout", "10"},
                                          {"metrics.listen", "127.0.0.1:" + std::to_string(mport)}});
  const std::string out = f.dovecot.dir().file("during-stop.eml");
  CommandResult r;
  std::thread client([&] {
    r = runCommand({"python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_session.py", "--port",
                    std::to_string(f.port()), "--user", "bob", "--password", DovecotFixture::kPassword, "--uid", "1",
                    "--out", out, "--expect-bye"},
                   60s);
  });
  // Stop once the FETCH is being scanned (a fixed wait lost the race on a loaded machine).
  bool scanning = false;
  for (int i = 0; i < 300 && !scanning; ++i) {
    const auto s = scrape(mport);
    scanning = s.has("imapav_redirector_scans_in_progress") && s.samples.at("imapav_redirector_scans_in_progress") == 1;
    if (!scanning) std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(scanning);
  const int rc = f.stop();
  client.join();
  BOOST_TEST_MESSAGE(r.output);
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  BOOST_TEST(readFile(out) == mailbox()[0]);  // the whole message, not a truncated one
  BOOST_TEST(contains(r.output, "\"after\": \"* BYE"));
  BOOST_TEST(rc == 0);
  BOOST_TEST(contains(f.log(), "end=\"shutdown\""));
}

BOOST_AUTO_TEST_CASE(mbsync_synchronises_the_mailbox) {
  RedirectorFixture f(mailbox());
  const std::string local = f.dovecot.dir().file("local");
  std::filesystem::create_directories(local);
  const std::string conf = f.dovecot.dir().file("mbsyncrc");
  writeFile(conf, "IMAPAccount test\nHost 127.0.0.1\nPort " + std::to_string(f.port()) +
                      "\nUser bob\nPass " + DovecotFixture::kPassword +
                      "\nSSLType None\nAuthMechs LOGIN\n\n"
                      "IMAPStore remote\nAccount test\n\n"
                      "MaildirStore local\nPath " + local + "/\nInbox " + local + "/INBOX\n\n"
                      "Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n");
  const auto r = runCommand({"mbsync", "-c", conf, "-a"}, 120s);
  BOOST_TEST_MESSAGE(r.output);
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  std::vector<std::string> got;
  for (const char* sub : {"/INBOX/cur", "/INBOX/new"}) {
    if (!std::filesystem::exists(local + sub)) continue;
    for (const auto& e : std::filesystem::directory_iterator(local + sub)) got.push_back(readFile(e.path().string()));
  }
  BOOST_REQUIRE_EQUAL(got.size(), mailbox().size());
  // mbsync stores maildir files with LF line ends and adds its own X-TUID header.
  const auto lf = [](std::string text) {
    for (auto at = text.find("\r\n"); at != std::string::npos; at = text.find("\r\n", at)) text.erase(at, 1);
    return text;
  };
  std::size_t identical = 0, replaced = 0;
  for (auto m : got) {
    if (const auto tuid = m.find("X-TUID: "); tuid != std::string::npos) m.erase(tuid, m.find('\n', tuid) + 1 - tuid);
    for (const auto& original : mailbox()) identical += m == lf(original);
    replaced += contains(m, "Eicar-Test-Signature") && contains(m, "X-Imapav-Status: infected");
  }
  BOOST_TEST(identical == 3u);
  BOOST_TEST(replaced == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redirector_tls)

const Settings kClientTls = {{"imaps.listen", "auto"}, {"tls.certificate", "@CERT@"}, {"tls.private_key", "@KEY@"}};

BOOST_AUTO_TEST_CASE(clients_over_implicit_tls_and_starttls) {
  RedirectorFixture f(mailbox(), kClientTls);
  const std::string ca = f.certs.caCert;
  for (const std::string security : {"tls", "starttls"}) {
    BOOST_TEST_CONTEXT("client " << security) {
      const std::string dir = f.dovecot.dir().file("client-" + security);
      const auto port = security == "tls" ? f.tlsPort() : f.port();
      checkMailbox(f, dir, f.fetchAll(port, dir, {"--security", security, "--cafile", ca}));
    }
  }
  // Plain clients are offered STARTTLS; curl over imaps:// with the test CA works.
  const auto plain = f.fetchAll(f.port(), f.dovecot.dir().file("plain"));
  BOOST_TEST(contains(plain.output, "\"STARTTLS\""));
  const auto r = runCommand({"curl", "-s", "--max-time", "30", "--cacert", ca, "--user",
                             std::string("bob:") + DovecotFixture::kPassword,
                             "imaps://127.0.0.1:" + std::to_string(f.tlsPort()) + "/INBOX/;UID=2"},
                            60s);
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(contains(r.output, "Eicar-Test-Signature"));
}

BOOST_AUTO_TEST_CASE(upstream_over_tls_and_starttls_verified) {
  for (const std::string security : {"tls", "starttls"}) {
    BOOST_TEST_CONTEXT("upstream " << security) {
      Settings s = {{"upstream.security", security}, {"upstream.ca_file", "@CA@"}};
      if (security == "tls") s["upstream.address"] = "127.0.0.1:@DOVECOT_TLS_PORT@";
      RedirectorFixture f(mailbox(), s, true);
      const std::string dir = f.dovecot.dir().file("up-" + security);
      checkMailbox(f, dir, f.fetchAll(f.port(), dir));
    }
  }
  Settings both = kClientTls;
  both["upstream.security"] = "tls";
  both["upstream.ca_file"] = "@CA@";
  both["upstream.address"] = "127.0.0.1:@DOVECOT_TLS_PORT@";
  RedirectorFixture f(mailbox(), both, true);
  const std::string dir = f.dovecot.dir().file("both");
  checkMailbox(f, dir, f.fetchAll(f.tlsPort(), dir, {"--security", "tls", "--cafile", f.certs.caCert}));
}

BOOST_AUTO_TEST_CASE(an_unverifiable_upstream_certificate_is_refused) {
  RedirectorFixture f(mailbox(), Settings{{"upstream.security", "starttls"}, {"upstream.ca_file", "@ROGUE@"}}, true);
  const auto r = f.fetchAll(f.port(), f.dovecot.dir().file("refused"));
  BOOST_TEST(r.exitCode != 0);
  f.stop();
  BOOST_TEST_MESSAGE(f.log());
  BOOST_TEST(contains(f.log(), "certificate verify failed"));
  // ... unless verification is turned off explicitly.
  RedirectorFixture g(mailbox(), Settings{{"upstream.security", "starttls"}, {"upstream.ca_file", "@ROGUE@"},
                                          {"upstream.verify", "false"}},
                      true);
  const std::string dir = g.dovecot.dir().file("unverified");
  checkMailbox(g, dir, g.fetchAll(g.port(), dir));
}

BOOST_AUTO_TEST_SUITE_END()
