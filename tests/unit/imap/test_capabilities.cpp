#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "shared/imap/capabilities.hpp"

using imapav::imap::defaultStrippedCapabilities;
using imapav::imap::filterCapabilities;

namespace {

std::string strip(const std::string& line) {
  return filterCapabilities(line, defaultStrippedCapabilities());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(capabilities)

BOOST_AUTO_TEST_CASE(dovecot_greeting) {
  BOOST_TEST(strip("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                   "STARTTLS AUTH=PLAIN] Dovecot ready.\r\n") ==
             "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
             "STARTTLS AUTH=PLAIN] Dovecot ready.\r\n");
  BOOST_TEST(strip("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 COMPRESS=DEFLATE IDLE] ready\r\n") ==
             "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n");
  BOOST_TEST(strip("* PREAUTH [CAPABILITY IMAP4rev1 NOTIFY] Logged in as alice\r\n") ==
             "* PREAUTH [CAPABILITY IMAP4rev1] Logged in as alice\r\n");
}

BOOST_AUTO_TEST_CASE(tagged_ok_after_login) {
  BOOST_TEST(strip("a1 OK [CAPABILITY IMAP4rev1 SASL-IR SORT THREAD=REFERENCES MULTIAPPEND "
                   "URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
                   "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH URLAUTH URLAUTH=BINARY COMPRESS=DEFLATE "
                   "BINARY UIDONLY] Logged in\r\n") ==
             "a1 OK [CAPABILITY IMAP4rev1 SASL-IR SORT THREAD=REFERENCES MULTIAPPEND CATENATE "
             "UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC "
             "ESEARCH] Logged in\r\n");
  // The text after "]" is never touched, even if it looks like capabilities.
  BOOST_TEST(strip("A0002 OK [CAPABILITY IMAP4rev1 BINARY] BINARY NOTIFY fine\r\n") ==
             "A0002 OK [CAPABILITY IMAP4rev1] BINARY NOTIFY fine\r\n");
}

BOOST_AUTO_TEST_CASE(untagged_capability_and_enabled) {
  BOOST_TEST(strip("* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN "
                   "X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT "
                   "LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584\r\n") ==
             "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN "
             "X-GM-EXT-1 UIDPLUS ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT "
             "LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584\r\n");
  BOOST_TEST(strip("* ENABLED CONDSTORE UIDONLY\r\n") == "* ENABLED CONDSTORE\r\n");
  BOOST_TEST(strip("* ENABLED IMAP4rev2\r\n") == "* ENABLED\r\n");
  BOOST_TEST(strip("* ENABLED\r\n") == "* ENABLED\r\n");
}

BOOST_AUTO_TEST_CASE(case_insensitive_and_prefix_rules) {
  BOOST_TEST(strip("* capability imap4rev1 compress=deflate Compress=ZSTD binary imap4REV2 idle\r\n") ==
             "* capability imap4rev1 idle\r\n");
  BOOST_TEST(strip("* ok [capability IMAP4rev1 COMPRESS=ZSTD notify] hi\r\n") ==
             "* ok [capability IMAP4rev1] hi\r\n");
  // Whole tokens only: BINARY does not remove BINARYX, URLAUTH does not remove URLAUTHX.
  BOOST_TEST(strip("* CAPABILITY IMAP4rev1 BINARYX URLAUTHX NOTIFYME\r\n") ==
             "* CAPABILITY IMAP4rev1 BINARYX URLAUTHX NOTIFYME\r\n");
  // An exact entry with "=" matches only that token.
  std::vector<std::string> only = {"compress=deflate"};
  BOOST_TEST(filterCapabilities("* CAPABILITY IMAP4rev1 COMPRESS=DEFLATE COMPRESS=ZSTD\r\n", only) ==
             "* CAPABILITY IMAP4rev1 COMPRESS=ZSTD\r\n");
  // Everything but IMAP4rev1 may go.
  std::vector<std::string> all = {"IDLE", "AUTH="};
  BOOST_TEST(filterCapabilities("* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN AUTH=LOGIN] ok\r\n", all) ==
             "* OK [CAPABILITY IMAP4rev1] ok\r\n");
  BOOST_TEST(filterCapabilities("* CAPABILITY IMAP4rev1 IDLE\r\n", {}) == "* CAPABILITY IMAP4rev1 IDLE\r\n");
}

BOOST_AUTO_TEST_CASE(line_ends_kept) {
  BOOST_TEST(strip("* CAPABILITY IMAP4rev1 BINARY\n") == "* CAPABILITY IMAP4rev1\n");
  BOOST_TEST(strip("* CAPABILITY IMAP4rev1 BINARY") == "* CAPABILITY IMAP4rev1");
  BOOST_TEST(strip("* CAPABILITY BINARY  IDLE\r\n") == "* CAPABILITY  IDLE\r\n");
}

BOOST_AUTO_TEST_CASE(other_lines_unchanged) {
  for (const char* line :
       {"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", "* OK BINARY NOTIFY\r\n",
        "* 3 EXISTS\r\n", "* LIST () \"/\" BINARY\r\n", "a1 CAPABILITY\r\n",
        "+ BINARY\r\n", "* OK [CAPABILITYX BINARY] x\r\n", "* OK [CAPABILITY IMAP4rev1 BINARY\r\n",
        "* SEARCH 1 2\r\n", "", "*", "* CAPABILITYBINARY\r\n",
        "* 1 FETCH (BODY[] {5}\r\n"}) {
    BOOST_TEST(strip(line) == line);
  }
}

BOOST_AUTO_TEST_CASE(default_list) {
  const auto& d = defaultStrippedCapabilities();
  BOOST_TEST(d.size() == 8u);
  for (const char* name : {"COMPRESS=", "URLAUTH", "URLAUTH=", "URL-PARTIAL", "UIDONLY", "NOTIFY",
                           "BINARY", "IMAP4rev2"}) {
    BOOST_TEST((std::find(d.begin(), d.end(), name) != d.end()), name);
  }
  BOOST_TEST((std::find(d.begin(), d.end(), "STARTTLS") == d.end()));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(add_capability_to_every_kind_of_list) {
  using imapav::imap::addCapability;
  BOOST_TEST(addCapability("* CAPABILITY IMAP4rev1 IDLE\r\n", "STARTTLS") == "* CAPABILITY STARTTLS IMAP4rev1 IDLE\r\n");
  BOOST_TEST(addCapability("* OK [CAPABILITY IMAP4rev1 SASL-IR] Dovecot ready.\r\n", "STARTTLS") ==
             "* OK [CAPABILITY STARTTLS IMAP4rev1 SASL-IR] Dovecot ready.\r\n");
  BOOST_TEST(addCapability("a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n", "STARTTLS") ==
             "a1 OK [CAPABILITY STARTTLS IMAP4rev1] Logged in\r\n");
  // Already there (any case), or not a capability list: unchanged.
  BOOST_TEST(addCapability("* CAPABILITY IMAP4rev1 starttls\r\n", "STARTTLS") == "* CAPABILITY IMAP4rev1 starttls\r\n");
  BOOST_TEST(addCapability("* OK [UIDVALIDITY 7] ok\r\n", "STARTTLS") == "* OK [UIDVALIDITY 7] ok\r\n");
  BOOST_TEST(addCapability("* 1 FETCH (UID 2)\r\n", "STARTTLS") == "* 1 FETCH (UID 2)\r\n");
  BOOST_TEST(addCapability("* OK [CAPABILITY IMAP4rev1 unterminated\r\n", "STARTTLS") ==
             "* OK [CAPABILITY IMAP4rev1 unterminated\r\n");
}

// Found by fuzzing (tests/fuzz/corpus/imap_capabilities/crash-capability-code-in-fetch):
// "[CAPABILITY " inside other responses is text, not a capability list.
BOOST_AUTO_TEST_CASE(add_capability_only_where_filtering_looks) {
  using imapav::imap::addCapability;
  for (const char* line : {"* 1 FETCH (ENVELOPE (NIL \"[CAPABILITY x]\"))\r\n",
                           "* LIST () \"/\" \"[CAPABILITY IMAP4rev1]\"\r\n",
                           "+ [CAPABILITY IMAP4rev1]\r\n",
                           "* OK [ALERT] see [CAPABILITY IMAP4rev1]\r\n",
                           "* 3 FETCH (BODY[HEADER.FIELDS ([CAPABILITY ])] {5}\r\n"}) {
    BOOST_TEST(addCapability(line, "STARTTLS") == line);
  }
  // An empty list gets the capability too, and a second call changes nothing.
  BOOST_TEST(addCapability("* CAPABILITY\r\n", "STARTTLS") == "* CAPABILITY STARTTLS\r\n");
  BOOST_TEST(addCapability("a2 NO [CAPABILITY] no\r\n", "STARTTLS") == "a2 NO [CAPABILITY STARTTLS] no\r\n");
  BOOST_TEST(addCapability("a2 NO [CAPABILITY STARTTLS] no\r\n", "STARTTLS") == "a2 NO [CAPABILITY STARTTLS] no\r\n");
}
