#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"
#include "shared/mime/notice.hpp"
#include "shared/mime/subject_tag.hpp"

using imapav::mime::buildNotice;
using imapav::mime::MessageSummary;
using imapav::mime::NoticeSpec;
using imapav::mime::parseMessageHeaders;
using imapav::mime::rfc5322Date;
using imapav::mime::summarize;
using Lines = std::vector<std::string>;

namespace {

// The lines of a notice; checks that every line ends in CRLF and has no bare CR or LF.
Lines crlfLines(const std::string& text) {
  Lines lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t crlf = text.find("\r\n", pos);
    BOOST_REQUIRE_MESSAGE(crlf != std::string::npos, "text does not end with CRLF");
    std::string line = text.substr(pos, crlf - pos);
    BOOST_TEST(line.find('\r') == std::string::npos, "bare CR in: " << line);
    BOOST_TEST(line.find('\n') == std::string::npos, "bare LF in: " << line);
    BOOST_TEST(line.size() <= 998u);
    lines.push_back(std::move(line));
    pos = crlf + 2;
  }
  return lines;
}

const std::string kInfected =
    "Return-Path: <attacker@evil.example>\r\n"
    "Received: from evil.example by mx.example.com; Sat, 28 Nov 2026 09:00:00 +0000\r\n"
    "From: \"Accounts Payable\" <attacker@evil.example>\r\n"
    "To: Bob <bob@example.com>, carol@example.com\r\n"
    "Cc: dave@example.com\r\n"
    "Subject: =?UTF-8?B?UmVjaG51bmc=?= =?UTF-8?Q?_f=C3=BCr_November?=\r\n"
    "\tand more\r\n"
    "Date: Sat, 28 Nov 2026 08:59:00 +0100\r\n"
    "Message-ID: <evil-123@evil.example>\r\n"
    "X-Mailer: EvilMailer 1.0\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
    "\r\n"
    "--XYZ\r\n"
    "Content-Type: application/octet-stream; name=\"invoice.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=\r\n"
    "--XYZ--\r\n";

NoticeSpec virusSpec() {
  NoticeSpec spec;
  spec.body = "Your message was blocked.\nThreats: Eicar-Signature\n\nContact your administrator.";
  spec.extraHeaders = {{"X-Imapav-Status", "infected"}, {"X-Virus-ID", "Eicar-Signature"}};
  spec.fallbackFrom = "imapav <postmaster@example.com>";
  spec.date = "Sun, 29 Nov 2026 10:00:00 +0000";
  return spec;
}

}  // namespace

BOOST_AUTO_TEST_CASE(notice_line_by_line) {
  const std::string notice = buildNotice(kInfected, virusSpec());
  const Lines expected = {
      "From: \"Accounts Payable\" <attacker@evil.example>",
      "To: Bob <bob@example.com>, carol@example.com",
      "Cc: dave@example.com",
      "Date: Sat, 28 Nov 2026 08:59:00 +0100",
      "Subject: =?UTF-8?B?UmVjaG51bmc=?= =?UTF-8?Q?_f=C3=BCr_November?=",
      "\tand more",
      "Message-ID: <evil-123@evil.example>",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "X-Imapav-Status: infected",
      "X-Virus-ID: Eicar-Signature",
      "",
      "Your message was blocked.",
      "Threats: Eicar-Signature",
      "",
      "Contact your administrator.",
  };
  BOOST_TEST(crlfLines(notice) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(notice_holds_nothing_else_of_the_original) {
  const std::string notice = buildNotice(kInfected, virusSpec());
  for (const char* part : {"WDVPIVAlQEFQ", "invoice.exe", "--XYZ", "multipart", "EvilMailer",
                           "Received", "Return-Path", "base64"}) {
    BOOST_TEST(notice.find(part) == std::string::npos, part);
  }
  // Exactly one of each MIME field: the notice's own.
  const auto h = parseMessageHeaders(notice);
  BOOST_TEST(h.complete);
  BOOST_TEST(h.findAll("Content-Type").size() == 1u);
  BOOST_TEST(h.value("Content-Type") == "text/plain; charset=utf-8");
  BOOST_TEST(h.findAll("MIME-Version").size() == 1u);
}

BOOST_AUTO_TEST_CASE(missing_fields_use_the_fallbacks) {
  const std::string original = "X-Only: junk\nContent-Type: application/zip\n\nPK\x03\x04 zipdata";
  const std::string notice = buildNotice(original, virusSpec());
  const Lines lines = crlfLines(notice);
  BOOST_REQUIRE(lines.size() >= 2u);
  BOOST_TEST(lines[0] == "From: imapav <postmaster@example.com>");
  BOOST_TEST(lines[1] == "Date: Sun, 29 Nov 2026 10:00:00 +0000");
  BOOST_TEST(lines[2] == "MIME-Version: 1.0");
  const auto h = parseMessageHeaders(notice);
  BOOST_TEST(h.find("Subject") == nullptr);
  BOOST_TEST(h.find("To") == nullptr);
  BOOST_TEST(notice.find("zipdata") == std::string::npos);
  BOOST_TEST(notice.find("X-Only") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_fallbacks_still_give_from_and_date) {
  NoticeSpec spec;
  spec.body = "x";
  const auto h = parseMessageHeaders(buildNotice("", spec));
  BOOST_TEST(h.value("From") == "imapav <postmaster@localhost>");
  const std::string date = h.value("Date");
  BOOST_TEST(date.size() == 31u, date);
  BOOST_TEST(date.substr(date.size() - 5) == "+0000");
}

BOOST_AUTO_TEST_CASE(header_injection_through_extra_headers_is_neutralised) {
  NoticeSpec spec = virusSpec();
  spec.extraHeaders = {
      {"X-Imapav-Threat", "Eicar\r\nBcc: victim@example.net\r\n\r\n<html>evil"},
      {"X-Bad\r\nName: x", "v\0w"},
      {"Content-Type", "text/html"},
      {"\r\n", "dropped"},
      {"X-Empty", ""},
  };
  spec.extraHeaders[1].second = std::string("v\0w", 3);
  const std::string notice = buildNotice(kInfected, spec);
  const Lines lines = crlfLines(notice);
  for (const std::string& line : lines) {
    BOOST_TEST(line.rfind("Bcc:", 0) != 0u, line);
    BOOST_TEST(line.rfind("<html>", 0) != 0u, line);
    BOOST_TEST(line.find('\0') == std::string::npos);
  }
  const auto h = parseMessageHeaders(notice);
  BOOST_TEST(h.value("X-Imapav-Threat") == "EicarBcc: victim@example.net<html>evil");
  // Name reduced to printable ASCII without ':' (the space goes too), NUL gone from the value.
  BOOST_REQUIRE(h.find("X-BadNamex") != nullptr);
  BOOST_TEST(h.find("X-BadNamex")->raw == "X-BadNamex: vw");
  BOOST_TEST(h.findAll("Content-Type").size() == 1u);
  BOOST_TEST(h.value("Content-Type") == "text/plain; charset=utf-8");
  BOOST_TEST(notice.find("dropped") == std::string::npos);
  BOOST_TEST(h.find("X-Empty") != nullptr);
  BOOST_TEST(h.find("Bcc") == nullptr);
  // The header still ends exactly once, before the body.
  BOOST_TEST(notice.substr(h.bodyOffset).rfind("Your message was blocked.", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(body_line_ends_are_normalised) {
  NoticeSpec spec = virusSpec();
  spec.body = "a\nb\r\nc\rd\r\n\r\ne";
  const std::string notice = buildNotice("Subject: s\r\n\r\n", spec);
  const auto h = parseMessageHeaders(notice);
  BOOST_TEST(notice.substr(h.bodyOffset) == "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n");
  crlfLines(notice);
}

BOOST_AUTO_TEST_CASE(body_is_made_valid_utf8_without_nul) {
  NoticeSpec spec = virusSpec();
  spec.body = std::string("caf\xc3\xa9 \xff nul\0end", 15);
  const std::string notice = buildNotice("", spec);
  const auto h = parseMessageHeaders(notice);
  BOOST_TEST(notice.substr(h.bodyOffset) == "caf\xc3\xa9 \xef\xbf\xbd nul end\r\n");
}

BOOST_AUTO_TEST_CASE(long_body_lines_are_wrapped) {
  NoticeSpec spec = virusSpec();
  const std::string words = [] {
    std::string s;
    while (s.size() < 3000) s += "word ";
    return s;
  }();
  // 2000 two-byte characters without white space: must not be cut inside one.
  std::string umlauts;
  for (int i = 0; i < 2000; ++i) umlauts += "\xc3\xa4";
  spec.body = words + "\n" + umlauts + "\n" + std::string(2500, 'x');
  const std::string notice = buildNotice("", spec);
  const auto h = parseMessageHeaders(notice);
  const Lines body = crlfLines(notice.substr(h.bodyOffset));
  BOOST_TEST(body.size() >= 9u);
  std::string joined;
  for (const std::string& line : body) {
    BOOST_TEST(line.size() <= 998u);
    joined += line;
  }
  // Wrapping only inserts line breaks: no byte is lost or added.
  BOOST_TEST(joined == words + umlauts + std::string(2500, 'x'));
  for (const std::string& line : body) {
    if (!line.empty() && line[0] == '\xc3') BOOST_TEST(line.size() % 2 == 0u);
  }
}

BOOST_AUTO_TEST_CASE(long_copied_subject_is_folded) {
  std::string subject = "Subject:";
  while (subject.size() < 2500) subject += " spam";
  const std::string original = subject + "\r\nFrom: a@example.org\r\n\r\nbody";
  const std::string notice = buildNotice(original, virusSpec());
  crlfLines(notice);  // every line <= 998
  const auto h = parseMessageHeaders(notice);
  // Folding at white space keeps the value.
  BOOST_TEST(h.value("Subject") == parseMessageHeaders(original).value("Subject"));

  // A value without any white space cannot be folded cleanly, but stays within limits.
  const std::string noSpace = "Subject: " + std::string(3000, 'z') + "\r\n\r\n";
  const std::string notice2 = buildNotice(noSpace, virusSpec());
  crlfLines(notice2);
  const std::string v = parseMessageHeaders(notice2).value("Subject");
  std::string withoutSpaces;
  for (const char c : v) {
    if (c != ' ') withoutSpaces += c;
  }
  BOOST_TEST(withoutSpaces == std::string(3000, 'z'));
}

BOOST_AUTO_TEST_CASE(copied_fields_with_bare_cr_or_nul_are_defused) {
  static const char kRaw[] = "Subject: hi\rBcc: x@example.net\0tail\r\n  \r\nTo: b@x\r\n\r\n";
  const std::string original(kRaw, sizeof kRaw - 1);
  const std::string notice = buildNotice(original, virusSpec());
  const Lines lines = crlfLines(notice);
  BOOST_REQUIRE(lines.size() > 4u);
  BOOST_TEST(lines[1] == "To: b@x");
  BOOST_TEST(lines[3] == "Subject: hi Bcc: x@example.net tail");
  // The white-space-only continuation line of Subject was dropped.
  BOOST_TEST(lines[4] == "MIME-Version: 1.0");
  BOOST_TEST(parseMessageHeaders(notice).find("Bcc") == nullptr);
}

BOOST_AUTO_TEST_CASE(bare_lf_original_copies_with_crlf) {
  const std::string original = "From: a@example.org\nSubject: one\n two\n\nbody text\n";
  const std::string notice = buildNotice(original, virusSpec());
  const Lines lines = crlfLines(notice);
  BOOST_TEST(lines[0] == "From: a@example.org");
  BOOST_TEST(lines[2] == "Subject: one");
  BOOST_TEST(lines[3] == " two");
  BOOST_TEST(notice.find("body text") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(summary_of_a_realistic_message) {
  const MessageSummary s = summarize(kInfected);
  BOOST_TEST(s.messageId == "<evil-123@evil.example>");
  BOOST_TEST(s.sender == "attacker@evil.example");
  BOOST_TEST(s.recipients == (Lines{"bob@example.com", "carol@example.com", "dave@example.com"}),
             boost::test_tools::per_element());
  BOOST_TEST(s.subject == "Rechnung f\xc3\xbcr November and more");
  BOOST_TEST(s.date == "Sat, 28 Nov 2026 08:59:00 +0100");
}

BOOST_AUTO_TEST_CASE(summary_falls_back_and_dedupes) {
  const std::string m =
      "From \"nobody\" Sat Nov 28 09:07:57 2026\n"
      "Return-Path: <bounce@lists.example>\n"
      "Sender: list-owner@lists.example\n"
      "To: A <a@example.com>, b@example.com\n"
      "Cc: A@EXAMPLE.COM, c@example.com\n"
      "To: second-to@example.com\n"
      "Subject: =?iso-8859-1?q?H=E9llo?=\n\nbody";
  const MessageSummary s = summarize(m);
  BOOST_TEST(s.sender == "list-owner@lists.example");
  BOOST_TEST(s.recipients == (Lines{"a@example.com", "b@example.com", "second-to@example.com",
                                    "c@example.com"}),
             boost::test_tools::per_element());
  BOOST_TEST(s.subject == "H\xc3\xa9llo");
  BOOST_TEST(s.messageId.empty());
  BOOST_TEST(s.date.empty());

  BOOST_TEST(summarize("Return-Path: <bounce@x.example>\n\n").sender == "bounce@x.example");
  BOOST_TEST(summarize("From: Undisclosed:;\nReturn-Path: <r@x.example>\n\n").sender ==
             "r@x.example");
  BOOST_TEST(summarize("Return-Path: <>\n\n").sender.empty());
}

BOOST_AUTO_TEST_CASE(summary_is_log_safe_and_bounded) {
  const std::string m = "Subject: " + std::string(3000, 'a') + "\r\nMessage-ID: <a\x01" "b@x>\r\n"
                        "Date: \xff Sat\r\n\r\n";
  const MessageSummary s = summarize(m);
  BOOST_TEST(s.subject.size() == 998u);
  BOOST_TEST(s.messageId == "<a b@x>");
  BOOST_TEST(s.date == "\xef\xbf\xbd Sat");

  // Truncation never splits a UTF-8 character.
  std::string umlauts;
  for (int i = 0; i < 600; ++i) umlauts += "\xc3\xbc";
  const MessageSummary u = summarize("Subject: a" + umlauts + "\r\n\r\n");
  BOOST_TEST(u.subject.size() == 997u);
  BOOST_TEST(u.subject.back() == '\xbc');
}

BOOST_AUTO_TEST_CASE(rfc5322_dates) {
  BOOST_TEST(rfc5322Date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  BOOST_TEST(rfc5322Date(1795856877) == "Sat, 28 Nov 2026 09:07:57 +0000");
  BOOST_TEST(rfc5322Date(951782400) == "Tue, 29 Feb 2000 00:00:00 +0000");
}

BOOST_AUTO_TEST_SUITE(notification)

BOOST_AUTO_TEST_CASE(a_notification_is_an_automatic_text_mail) {
  imapav::mime::NotificationSpec spec;
  spec.from = "Mail Gateway <postmaster@gw.example>";
  spec.to = "alice@example.org";
  spec.subject = "Virus found in your message to bob@example.net";
  spec.body = "Your message was blocked.\nThreat: Eicar\n";
  spec.date = "Sat, 28 Nov 2026 12:00:00 +0000";
  spec.messageId = "<n1@gw.example>";
  spec.extraHeaders = {{"X-Imapav-Notification", "sender-virus"}, {"Auto-Submitted", "no"}, {"Subject", "evil"}};
  const auto m = imapav::mime::buildNotification(spec);
  BOOST_TEST(m ==
             "From: Mail Gateway <postmaster@gw.example>\r\nTo: alice@example.org\r\n"
             "Subject: Virus found in your message to bob@example.net\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
             "Message-ID: <n1@gw.example>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
             "X-Imapav-Notification: sender-virus\r\n\r\nYour message was blocked.\r\nThreat: Eicar\r\n");
}

BOOST_AUTO_TEST_CASE(non_ascii_subjects_are_encoded_and_injection_is_cut) {
  imapav::mime::NotificationSpec spec;
  spec.to = "alice@example.org\r\nBcc: everyone@example.org";
  spec.subject = "Virus in \xC2\xBBGr\xC3\xBC\xC3\x9F""e\xC2\xAB";
  const auto m = imapav::mime::buildNotification(spec);
  const auto headers = imapav::mime::parseMessageHeaders(m);
  BOOST_TEST(headers.findAll("Bcc").empty());
  BOOST_TEST(headers.value("From") == "imapav <postmaster@localhost>");
  BOOST_TEST(headers.value("Subject").find("=?UTF-8?B?") != std::string::npos);
  BOOST_TEST(imapav::mime::subjectOf(m) == "Virus in \xC2\xBBGr\xC3\xBC\xC3\x9F""e\xC2\xAB");
  BOOST_TEST(!headers.value("Date").empty());
}

BOOST_AUTO_TEST_CASE(bounces_automatic_and_list_mail_are_never_answered) {
  using imapav::mime::notificationBlocker;
  BOOST_TEST(notificationBlocker("From: a@example.org\r\nSubject: hi\r\n\r\nx").empty());
  BOOST_TEST(notificationBlocker("Return-Path: <a@example.org>\r\nFrom: a@example.org\r\n\r\nx").empty());
  BOOST_TEST(notificationBlocker("Auto-Submitted: no\r\nFrom: a@example.org\r\n\r\nx").empty());
  BOOST_TEST(!notificationBlocker("Return-Path: <>\r\nFrom: MAILER-DAEMON@example.org\r\n\r\nx").empty());
  BOOST_TEST(!notificationBlocker("Return-Path: < >\r\nFrom: a@example.org\r\n\r\nx").empty());
  BOOST_TEST(!notificationBlocker("Auto-Submitted: auto-replied\r\nFrom: a@example.org\r\n\r\nx").empty());
  BOOST_TEST(!notificationBlocker("Precedence: bulk\r\nFrom: a@example.org\r\n\r\nx").empty());
  BOOST_TEST(!notificationBlocker("Precedence: List\r\nFrom: a@example.org\r\n\r\nx").empty());
  BOOST_TEST(!notificationBlocker("List-Id: <dev.lists.example.org>\r\nFrom: a@example.org\r\n\r\nx").empty());
}

// Found by fuzzing (tests/fuzz/corpus/mime_headers/crash-auto-submitted-control-chars): the
// reason quotes the Auto-Submitted value into a log line, so it must be logSafe and cut at
// a character boundary.
BOOST_AUTO_TEST_CASE(notification_blocker_reason_is_log_safe) {
  using imapav::mime::logSafe;
  using imapav::mime::notificationBlocker;
  const std::string reason =
      notificationBlocker("Auto-Submitted: auto\rreplied\x1b[31m\xff\r\nFrom: a@example.org\r\n\r\nx");
  BOOST_TEST(reason == "automatic message (Auto-Submitted: auto replied [31m\xef\xbf\xbd)");
  const std::string longValue =
      notificationBlocker("Auto-Submitted: " + std::string(63, 'a') + "\xc3\xa4\xc3\xa4\r\n\r\n");
  BOOST_TEST(longValue == "automatic message (Auto-Submitted: " + std::string(63, 'a') + ")");
  BOOST_TEST(logSafe(longValue) == longValue);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(a_notice_may_carry_its_own_subject) {
  NoticeSpec spec;
  spec.body = "blocked";
  spec.subject = "Blocked: Gr\xC3\xBC\xC3\x9F""e\r\nBcc: x@example.org";
  const auto n = buildNotice("From: a@example.org\r\nSubject: original\r\nMessage-ID: <m@x>\r\n\r\nbody", spec);
  const auto h = parseMessageHeaders(n);
  BOOST_TEST(h.findAll("Subject").size() == 1u);
  BOOST_TEST(h.findAll("Bcc").empty());
  BOOST_TEST(imapav::mime::subjectOf(n).rfind("Blocked: Gr\xC3\xBC\xC3\x9F""e", 0) == 0u);
  BOOST_TEST(n.find("original") == std::string::npos);
  BOOST_TEST(h.value("Message-ID") == "<m@x>");  // the other fields stay in their order
}
