// Scan policy end to end (issue 4): real Dovecot, imapav-redirector, imapav-icapd with
// errors caused for real, and real clients (python imaplib, curl).

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <filesystem>
#include <regex>
#include <thread>

#include "tests/integration/redirector/redirector_fixture.hpp"
#include "tests/support/samples.hpp"

using namespace imapav::test;
using Settings = std::map<std::string, std::string>;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string fragment() {
  return "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: big file (part 1/2)\r\n"
         "Message-ID: <frag-1@example.org>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: message/partial; id=\"frag@example.org\"; number=1; total=2\r\n\r\n"
         "From: Alice <alice@example.org>\r\nSubject: big file\r\n\r\nfirst half of the message\r\n";
}

std::string nestedZip() {
  std::string nested = "innermost";
  for (int i = 0; i < 6; ++i) nested = makeZip({{"layer" + std::to_string(i) + ".zip", nested}});
  return mimeMessage("deep", "deep.zip", nested);
}

// UID -> what each message provokes in imapav-icapd with the settings below.
struct Case {
  std::string message;
  std::string errorClass;  // "" = clean
};

std::vector<Case> cases() {
  return {
      {cleanMessage("clean one", 300), ""},
      {mimeMessage("locked", "secret.zip", makeZip({{"a.txt", "hello"}}, true)), "encrypted"},
      {nestedZip(), "archive_limit"},
      {mimeMessage("setup", "setup.exe", "MZ" + std::string(20, '\0')), "corrupt"},
      {fragment(), "fragmented"},
      {cleanMessage("too big", 100000), "too_large"},
  };
}

// The message with "[NOT SCANNED]" appended to its Subject line (these have one unfolded).
std::string tagged(std::string m, const std::string& tag) {
  const auto at = m.find("Subject: ");
  const auto eol = m.find("\r\n", at);
  m.insert(eol, " " + tag);
  return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(policy)

BOOST_AUTO_TEST_CASE(each_error_class_is_blocked_or_permitted_as_configured) {
  std::vector<std::string> box;
  for (const auto& c : cases()) box.push_back(c.message);
  for (const std::string action : {"block", "permit"}) {
    BOOST_TEST_CONTEXT("action " << action) {
      Settings icapd = {{"scan.max_recursion", "3"}, {"scan.max_file_size", "64k"}, {"scan.max_scan_size", "64k"},
                        {"policy.fail_mode", action == "block" ? "pass" : "drop"},  // the classes must win
                        {"policy.notify_recipient_on_error_pass", "true"}, {"policy.subject_tag", "[NOT SCANNED]"}};
      for (const auto& c : cases()) {
        if (!c.errorClass.empty()) icapd["policy.on_error." + c.errorClass] = action;
      }
      RedirectorFixture f(box, {}, false, icapd);
      const std::string dir = f.dovecot.dir().file("out");
      const auto r = f.fetchAll(f.port(), dir);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
      const auto sizes = sizesOf(r.output);
      const auto all = cases();
      for (std::size_t i = 0; i < all.size(); ++i) {
        const int uid = static_cast<int>(i + 1);
        BOOST_TEST_CONTEXT("uid " << uid << " " << all[i].errorClass) {
          const auto got = readFile(dir + "/" + std::to_string(uid) + ".eml");
          BOOST_TEST(sizes.at(uid) == got.size());  // the size told is the size delivered
          if (all[i].errorClass.empty()) {
            BOOST_TEST(got == all[i].message);
          } else if (action == "block") {
            BOOST_TEST(contains(got, "X-Imapav-Status: dropped"));
            BOOST_TEST(contains(got, "X-Imapav-Reason: " + all[i].errorClass));
            BOOST_TEST(got.size() < all[i].message.size() + 2000);
            BOOST_TEST(!contains(got, "first half of the message"));
          } else {
            BOOST_TEST(got == tagged(all[i].message, "[NOT SCANNED]"));  // delivered, and the user is told
          }
        }
      }
      f.stop();
      f.icapd.stop();
      const auto rows = f.icapd.query("SELECT uid, verdict, action, error_class FROM scan_events ORDER BY uid");
      BOOST_REQUIRE_EQUAL(rows.size(), all.size());
      for (std::size_t i = 0; i < all.size(); ++i) {
        BOOST_TEST_CONTEXT("row " << i) {
          const auto& row = rows[i];
          BOOST_TEST(row.at("error_class") == all[i].errorClass);
          if (all[i].errorClass.empty()) {
            BOOST_TEST(row.at("action") == "pass");
          } else {
            BOOST_TEST(row.at("verdict") == "error");  // a fragment is never "clean"
            BOOST_TEST(row.at("action") == (action == "block" ? "replace" : "pass-unscanned"));
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(subject_tags_on_real_subjects_keep_sizes_consistent) {
  const std::string body(3000, 'x');
  const std::vector<std::string> box = {
      "From: a@example.org\r\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n",
      "From: a@example.org\r\nSubject: a long subject that was folded by the sender's\r\n mail program\r\n\r\n" +
          body + "\r\n",
      "From: a@example.org\r\nTo: b@example.net\r\n\r\n" + body + "\r\n",  // no Subject at all
  };
  // Every message is too large to scan and permitted: each gets the tag.
  RedirectorFixture f(box, {}, false,
                      {{"scan.max_file_size", "1k"}, {"scan.max_scan_size", "1k"}, {"policy.fail_mode", "pass"},
                       {"policy.notify_recipient_on_error_pass", "true"}, {"policy.subject_tag", "[UNSCANNED]"}});
  const std::string dir = f.dovecot.dir().file("tags");
  const auto r = f.fetchAll(f.port(), dir, {"--batch"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  const auto sizes = sizesOf(r.output);
  const auto one = readFile(dir + "/1.eml");
  BOOST_TEST(contains(one, "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?= [UNSCANNED]\r\n"));
  const auto two = readFile(dir + "/2.eml");
  BOOST_TEST(contains(two, "Subject: a long subject that was folded by the sender's\r\n mail program [UNSCANNED]\r\n"));
  const auto three = readFile(dir + "/3.eml");
  BOOST_TEST(contains(three, "Subject: [UNSCANNED]\r\n"));
  for (int uid = 1; uid <= 3; ++uid) {
    const auto got = readFile(dir + "/" + std::to_string(uid) + ".eml");
    BOOST_TEST(sizes.at(uid) == got.size());
    BOOST_TEST(got.substr(got.size() - body.size() - 2) == body + "\r\n");  // the body untouched
  }
}

BOOST_AUTO_TEST_CASE(protocol_only_virus_notice_as_imaplib_and_curl_see_it) {
  const std::vector<std::string> box = {cleanMessage("fine", 300), infectedMessage("bad invoice"),
                                        cleanMessage("also fine", 300)};
  RedirectorFixture f(box, {}, false, {{"policy.virus_notice", "protocol-only"}});
  // imaplib, one FETCH per message: the infected one is answered NO [ALERT], no data.
  const std::string dir = f.dovecot.dir().file("po");
  auto r = f.fetchAll(f.port(), dir, {"--allow-no"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  BOOST_TEST(readFile(dir + "/1.eml") == box[0]);
  BOOST_TEST(readFile(dir + "/3.eml") == box[2]);
  BOOST_TEST(!std::filesystem::exists(dir + "/2.eml"));
  BOOST_TEST_MESSAGE(r.output);
  BOOST_TEST(contains(r.output, "\"2\": \"[ALERT] imapav: message withheld, malware found: UID 2 (Eicar"));
  // One FETCH of all three: the clean ones arrive, the command ends NO [ALERT].
  const std::string batch = f.dovecot.dir().file("po-batch");
  r = f.fetchAll(f.port(), batch, {"--allow-no", "--batch"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  BOOST_TEST(readFile(batch + "/1.eml") == box[0]);
  BOOST_TEST(readFile(batch + "/3.eml") == box[2]);
  BOOST_TEST(!std::filesystem::exists(batch + "/2.eml"));
  BOOST_TEST(contains(r.output, "\"1,2,3\": \"[ALERT] imapav: message withheld"));
  // curl: the download fails, with nothing of the message written.
  const std::string out = f.dovecot.dir().file("curl-2.eml");
  const auto c = runCommand({"curl", "-s", "-S", "--max-time", "30", "--user", std::string("bob:") + DovecotFixture::kPassword,
                             "-o", out, "imap://127.0.0.1:" + std::to_string(f.port()) + "/INBOX;UID=2"},
                            std::chrono::seconds(40));
  BOOST_TEST(c.exitCode != 0);
  BOOST_TEST_MESSAGE("curl: " << c.output);
  BOOST_TEST((!std::filesystem::exists(out) || readFile(out).find("EICAR") == std::string::npos));
  const auto clean = runCommand({"curl", "-s", "--max-time", "30", "--user", std::string("bob:") + DovecotFixture::kPassword,
                                 "imap://127.0.0.1:" + std::to_string(f.port()) + "/INBOX;UID=3"},
                                std::chrono::seconds(40));
  BOOST_TEST(clean.exitCode == 0);
  BOOST_TEST(clean.output == box[2]);
  f.stop();
  BOOST_TEST(contains(f.log(), "outcome=withheld"));
  BOOST_TEST(contains(f.log(), "withheld=1"));
}

BOOST_AUTO_TEST_CASE(profiles_by_service_name_give_gateways_different_rules) {
  const std::vector<std::string> box = {mimeMessage("locked", "secret.zip", makeZip({{"a.txt", "hello"}}, true))};
  // The base policy permits encrypted archives; the strict profile blocks them. Two
  // gateways ask one imapav-icapd for different services.
  const Settings icapd = {{"policy.on_error.encrypted", "permit"},
                          {"profile.strict.services", "avscan-strict"},
                          {"profile.strict.on_error.encrypted", "block"}};
  for (const std::string suffix : {"", "-strict"}) {
    BOOST_TEST_CONTEXT("service avscan" << suffix) {
      RedirectorFixture f(box, {{"icap.servers", "@ICAP@" + suffix}}, false, icapd);
      const std::string dir = f.dovecot.dir().file("profile");
      const auto r = f.fetchAll(f.port(), dir);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
      const auto got = readFile(dir + "/1.eml");
      if (suffix.empty()) {
        BOOST_TEST(got == box[0]);
      } else {
        BOOST_TEST(contains(got, "X-Imapav-Reason: encrypted"));
      }
      f.icapd.stop();
      const auto rows = f.icapd.query("SELECT service, action FROM scan_events");
      BOOST_REQUIRE_EQUAL(rows.size(), 1u);
      BOOST_TEST(rows[0].at("service") == "avscan" + suffix);
      BOOST_TEST(rows[0].at("action") == (suffix.empty() ? "pass-unscanned" : "replace"));
    }
  }
}


BOOST_AUTO_TEST_CASE(notifications_reach_the_sender_and_only_where_they_may) {
  TempDir mail;
  const auto smtpPort = freePort();
  ChildProcess sink({"/usr/bin/python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/notify/smtp_sink.py",
                     "--port", std::to_string(smtpPort), "--dir", mail.path()},
                    mail.file("sink.log"));
  BOOST_REQUIRE(waitForPort(smtpPort, std::chrono::seconds(10)));
  const auto infectedFrom = [](const std::string& extraHeaders, const std::string& from) {
    std::string m = infectedMessage("bad invoice");
    m.replace(0, m.find("\r\n") + 2, extraHeaders + "From: " + from + "\r\n");
    return m;
  };
  const std::vector<std::string> box = {
      infectedMessage("bad invoice"),                                        // Mallory: notified
      infectedFrom("Return-Path: <>\r\n", "Mail System <mallory@example.com>"),  // a bounce: never
      infectedFrom("Auto-Submitted: auto-replied\r\n", "mallory@example.com"),   // automatic: never
      mimeMessage("locked", "secret.zip", makeZip({{"a.txt", "hello"}}, true)),  // error drop: alice
      infectedFrom("", "MAILER-DAEMON@example.com"),                             // never
  };
  RedirectorFixture f(box, {}, false,
                      {{"policy.notify_sender_on_virus", "true"},
                       {"policy.notify_sender_on_error_drop", "true"},
                       {"notify.relay", "127.0.0.1:" + std::to_string(smtpPort)},
                       {"notify.from", "Mail Gateway <postmaster@gw.example>"},
                       {"notify.rate_per_sender", "1"}});
  for (int round = 0; round < 2; ++round) {  // the second round is over the rate limit
    const std::string dir = f.dovecot.dir().file("n" + std::to_string(round));
    const auto r = f.fetchAll(f.port(), dir);
    BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
  }
  std::vector<std::string> envelopes;
  for (int i = 0; i < 150 && envelopes.size() < 2; ++i) {
    envelopes.clear();
    for (const auto& e : std::filesystem::directory_iterator(mail.path())) {
      if (e.path().extension() == ".envelope") envelopes.push_back(e.path().string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::sort(envelopes.begin(), envelopes.end());
  BOOST_REQUIRE_MESSAGE(envelopes.size() == 2u, readFile(mail.file("sink.log")) + f.icapd.log());
  std::map<std::string, std::string> byRecipient;  // recipient -> message
  for (const auto& e : envelopes) {
    const auto env = readFile(e);
    BOOST_TEST(contains(env, "MAIL FROM:<>\n"));  // RFC 3834: never answerable
    const auto eml = readFile(e.substr(0, e.size() - std::string(".envelope").size()) + ".eml");
    if (contains(env, "RCPT TO:<mallory@example.com>")) byRecipient["mallory"] = eml;
    if (contains(env, "RCPT TO:<alice@example.com>")) byRecipient["alice"] = eml;
  }
  const auto virus = byRecipient["mallory"];
  BOOST_TEST(contains(virus, "From: Mail Gateway <postmaster@gw.example>\r\n"));
  BOOST_TEST(contains(virus, "To: mallory@example.com\r\n"));
  BOOST_TEST(contains(virus, "Subject: Undelivered: your message \"bad invoice\" was blocked\r\n"));
  BOOST_TEST(contains(virus, "Auto-Submitted: auto-generated\r\n"));
  BOOST_TEST(contains(virus, "X-Imapav-Notification: sender-virus\r\n"));
  BOOST_TEST(contains(virus, "malware was found: Eicar"));
  BOOST_TEST(contains(virus, "Message-ID:  <infected-1@example.com>"));
  BOOST_TEST(!contains(virus, "See attachment."));  // nothing of the original
  const auto error = byRecipient["alice"];
  BOOST_TEST(contains(error, "X-Imapav-Notification: sender-error-drop\r\n"));
  BOOST_TEST(contains(error, "encrypted or password protected"));
  BOOST_TEST(!contains(error, base64Lines(makeZip({{"a.txt", "hello"}}, true)).substr(0, 40)));
  f.stop();
  f.icapd.stop();
  const auto rows = f.icapd.query("SELECT kind, recipient, outcome, detail FROM notifications ORDER BY id");
  std::map<std::string, int> counts;  // "kind recipient outcome" -> rows
  for (const auto& row : rows) counts[row.at("kind") + " " + row.at("recipient") + " " + row.at("outcome")]++;
  for (const auto& [k, n] : counts) BOOST_TEST_MESSAGE(k << ": " << n);
  BOOST_TEST(counts["sender-virus mallory@example.com sent"] == 1);
  BOOST_TEST(counts["sender-virus mallory@example.com rate-limited"] == 1);
  BOOST_TEST(counts["sender-error-drop alice@example.com sent"] == 1);
  BOOST_TEST(counts["sender-error-drop alice@example.com rate-limited"] == 1);
  BOOST_TEST(counts["sender-virus mallory@example.com skipped"] == 4);  // bounce and auto-replied, twice
  BOOST_TEST(counts["sender-virus MAILER-DAEMON@example.com skipped"] == 2);
  BOOST_TEST(rows.size() == 10u);
}

BOOST_AUTO_TEST_CASE(a_scan_time_limit_is_blocked_or_permitted_as_configured) {
  std::vector<ZipEntry> files;
  for (int i = 0; i < 3000; ++i) files.push_back({"f" + std::to_string(i) + ".txt", "x"});
  const std::vector<std::string> box = {mimeMessage("many files", "many.zip", makeZip(files))};
  for (const std::string action : {"block", "permit"}) {
    BOOST_TEST_CONTEXT("action " << action) {
      RedirectorFixture f(box, {}, false,
                          {{"scan.max_scan_time", "1ms"}, {"policy.on_error.timeout", action},
                           {"policy.notify_recipient_on_error_pass", "true"},
                           {"policy.subject_tag", "[unscanned: ${error_class}]"}});
      const std::string dir = f.dovecot.dir().file("t");
      const auto r = f.fetchAll(f.port(), dir);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
      const auto got = readFile(dir + "/1.eml");
      BOOST_TEST(sizesOf(r.output).at(1) == got.size());
      if (action == "block") {
        BOOST_TEST(contains(got, "X-Imapav-Reason: timeout"));
      } else {
        BOOST_TEST(got == tagged(box[0], "[unscanned: timeout]"));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_scanner_out_of_temporary_space_is_blocked_or_permitted_as_configured) {
  // libclamav's scratch directory vanishes under the running server: it reports an error
  // and returns "clean" without having scanned; imapav-icapd makes that out_of_resources.
  const std::vector<std::string> box = {infectedMessage("bad invoice")};
  for (const std::string action : {"block", "permit"}) {
    BOOST_TEST_CONTEXT("action " << action) {
      auto scratch = std::make_unique<TempDir>();
      RedirectorFixture f(box, {}, false,
                          {{"scan.tmp_dir", scratch->path()}, {"policy.on_error.out_of_resources", action}});
      scratch.reset();
      const std::string dir = f.dovecot.dir().file("oor");
      const auto r = f.fetchAll(f.port(), dir);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
      const auto got = readFile(dir + "/1.eml");
      if (action == "block") {
        BOOST_TEST(contains(got, "X-Imapav-Reason: out_of_resources"));
        BOOST_TEST(!contains(got, "See attachment."));
      } else {
        BOOST_TEST(got == box[0]);  // permitted unscanned, as configured: the log says so
      }
      f.icapd.stop();
      const auto rows = f.icapd.query("SELECT verdict, action, error_class FROM scan_events");
      BOOST_REQUIRE_EQUAL(rows.size(), 1u);
      BOOST_TEST(rows[0].at("verdict") == "error");  // never "clean"
      BOOST_TEST(rows[0].at("error_class") == "out_of_resources");
      BOOST_TEST(rows[0].at("action") == (action == "block" ? "replace" : "pass-unscanned"));
    }
  }
}

BOOST_AUTO_TEST_CASE(an_overloaded_scanner_is_blocked_or_permitted_as_configured) {
  // One scan slot, held by a 40 MB scan another gateway sent straight to imapav-icapd: the
  // redirector's request waits 100 ms for the slot and is then "overloaded".
  const std::vector<std::string> box = {cleanMessage("while busy", 300)};
  for (const std::string action : {"block", "permit"}) {
    BOOST_TEST_CONTEXT("action " << action) {
      RedirectorFixture f(box, {}, false,
                          {{"scan.threads", "1"}, {"scan.queue_timeout", "100ms"},
                           {"policy.on_error.overloaded", action}});
      RespmodRequest slow;
      slow.message = bigMessage(40u << 20, action == "block" ? 1 : 2);
      IcapConnection other(f.icapd.port());
      BOOST_REQUIRE(other.send(buildRequest(slow)));
      bool overloaded = false;
      for (int i = 0; i < 40 && !overloaded; ++i) {  // until the big upload holds the slot
        const std::string dir = f.dovecot.dir().file("ov" + std::to_string(i));
        const auto r = f.fetchAll(f.port(), dir);
        BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + f.log());
        const auto got = readFile(dir + "/1.eml");
        overloaded = contains(f.log(), "outcome=replaced") || contains(f.log(), "outcome=unscanned ");
        if (overloaded && action == "block") {
          BOOST_TEST(contains(got, "X-Imapav-Reason: overloaded"));
        } else {
          BOOST_TEST(got == box[0]);
        }
        if (!overloaded) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      BOOST_TEST(overloaded);
      BOOST_TEST(other.read(std::chrono::seconds(60)).has_value());
      f.icapd.stop();
      const auto rows = f.icapd.query("SELECT action, error_class FROM scan_events WHERE error_class = 'overloaded'");
      BOOST_REQUIRE_EQUAL(rows.size(), 1u);
      BOOST_TEST(rows[0].at("action") == (action == "block" ? "replace" : "pass-unscanned"));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
