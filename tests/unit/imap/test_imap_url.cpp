#include <boost/test/unit_test.hpp>

#include "shared/imap/imap_url.hpp"

using imapav::imap::formatImapUrl;
using imapav::imap::ImapUrl;
using imapav::imap::parseImapUrl;

BOOST_AUTO_TEST_CASE(parses_a_message_url) {
  auto u = parseImapUrl("imap://alice@mail.example:143/INBOX;UIDVALIDITY=7/;UID=42");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->user == "alice");
  BOOST_TEST(u->host == "mail.example:143");
  BOOST_TEST(u->mailbox == "INBOX");
  BOOST_TEST(*u->uidValidity == 7u);
  BOOST_TEST(*u->uid == 42u);
}

BOOST_AUTO_TEST_CASE(decodes_and_keeps_hierarchy) {
  auto u = parseImapUrl("IMAP://bob%40example.net;AUTH=*@h/Archive/2026%20Q4;UIDVALIDITY=1/;UID=9/;SECTION=2.1");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->user == "bob@example.net");
  BOOST_TEST(u->mailbox == "Archive/2026 Q4");
  BOOST_TEST(*u->uid == 9u);
  BOOST_TEST(u->section == "2.1");
}

BOOST_AUTO_TEST_CASE(without_optional_parts) {
  auto u = parseImapUrl("imap://h/INBOX");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->user.empty());
  BOOST_TEST(!u->uidValidity);
  BOOST_TEST(!u->uid);
  BOOST_TEST(parseImapUrl("imap://h")->mailbox.empty());
}

BOOST_AUTO_TEST_CASE(rejects_what_is_not_an_imap_url) {
  BOOST_TEST(!parseImapUrl("http://h/INBOX"));
  BOOST_TEST(!parseImapUrl("imap:///INBOX"));
  BOOST_TEST(!parseImapUrl("imap://h/INBOX;UIDVALIDITY=x"));
  BOOST_TEST(!parseImapUrl("imap://h/INBOX/;UID=99999999999"));
  BOOST_TEST(!parseImapUrl("imap://h/IN%zzBOX"));
  BOOST_TEST(!parseImapUrl(""));
}

BOOST_AUTO_TEST_CASE(format_round_trips) {
  ImapUrl u;
  u.user = "bob@example.net";
  u.host = "mail.example";
  u.mailbox = "Sent Items/2026";
  u.uidValidity = 1700000000u;
  u.uid = 4711u;
  const auto text = formatImapUrl(u);
  BOOST_TEST(text == "imap://bob%40example.net@mail.example/Sent%20Items/2026;UIDVALIDITY=1700000000/;UID=4711");
  auto back = parseImapUrl(text);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->user == u.user);
  BOOST_TEST(back->mailbox == u.mailbox);
  BOOST_TEST(*back->uid == 4711u);
}

// Found by fuzzing (tests/fuzz/corpus/imap_url/crash-mailbox-leading-slash): a mailbox
// starting or ending with '/' did not survive formatImapUrl and parseImapUrl.
BOOST_AUTO_TEST_CASE(format_round_trips_mailbox_slashes) {
  for (const char* mailbox : {"/D", "Archive/", "/", "//", "a//b", "/a/b/"}) {
    ImapUrl u;
    u.host = "h";
    u.mailbox = mailbox;
    u.uid = 5u;
    const auto back = parseImapUrl(formatImapUrl(u));
    BOOST_REQUIRE(back);
    BOOST_TEST(back->mailbox == mailbox);
    BOOST_TEST(*back->uid == 5u);
  }
  ImapUrl u;
  u.host = "h";
  u.mailbox = "/D";
  BOOST_TEST(formatImapUrl(u) == "imap://h/%2FD");
}
