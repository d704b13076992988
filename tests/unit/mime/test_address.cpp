#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "shared/mime/address.hpp"

using imapav::mime::extractAddresses;
using Addrs = std::vector<std::string>;

namespace {

struct Case {
  const char* value;
  Addrs expected;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.value; }

const std::vector<Case> kCases = {
    {"bob@example.com", {"bob@example.com"}},
    {"  bob@example.com  ", {"bob@example.com"}},
    {"Bob Smith <bob@example.com>", {"bob@example.com"}},
    {"\"Smith, Bob\" <bob@example.com>, \"Doe, Jane\" <jane@example.net>",
     {"bob@example.com", "jane@example.net"}},
    {"\"a@b, c@d\" <real@example.com>", {"real@example.com"}},
    {"bob@example.com (Bob Smith), jane@example.net (Jane (the boss) Doe)",
     {"bob@example.com", "jane@example.net"}},
    {"(comment, with <x@y>) bob@example.com", {"bob@example.com"}},
    {"Team: alice@example.org, Bob <bob@example.com>;, carol@example.net",
     {"alice@example.org", "bob@example.com", "carol@example.net"}},
    {"undisclosed-recipients:;", {}},
    {"Undisclosed recipients:;, dave@example.com", {"dave@example.com"}},
    {"<@relay1.example,@relay2.example:joe@example.com>", {"joe@example.com"}},
    {"\"john doe\"@example.com", {"\"john doe\"@example.com"}},
    {"postmaster@[192.0.2.1]", {"postmaster@[192.0.2.1]"}},
    {"Joe Q. Public <john.q.public@example.com>", {"john.q.public@example.com"}},
    {"<>", {}},
    {"bob @ example.com", {"bob@example.com"}},
    {"<bob@example.com", {"bob@example.com"}},
    {"just some words", {}},
    {"a@b@c, ok@example.com", {"ok@example.com"}},
    {"@example.com, user@, ok@example.com", {"ok@example.com"}},
    {"Bob <bob@example.com> <second@example.com>", {"bob@example.com"}},
    {"\"unterminated <x@example.com>", {}},
    {"=?utf-8?q?J=C3=B6rg?= <joerg@example.de>", {"joerg@example.de"}},
    {"a@example.com,,, ;b@example.com", {"a@example.com", "b@example.com"}},
    {"\"ctl\x01\"@example.com, ok@example.com", {"ok@example.com"}},
    {"j\xc3\xb6rg@example.de", {"j\xc3\xb6rg@example.de"}},
    {"", {}},
};

}  // namespace

BOOST_DATA_TEST_CASE(address_lists, boost::unit_test::data::make(kCases), c) {
  const Addrs got = extractAddresses(c.value);
  BOOST_TEST(got == c.expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(folded_value_with_crlf) {
  // A field value that was not unfolded still works: CRLF is white space.
  BOOST_TEST(extractAddresses("Bob <bob@example.com>,\r\n\tjane@example.net") ==
                 (Addrs{"bob@example.com", "jane@example.net"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(result_count_is_bounded) {
  std::string list;
  for (int i = 0; i < 5000; ++i) list += "u" + std::to_string(i) + "@example.com, ";
  BOOST_TEST(extractAddresses(list).size() == 1000u);
  const Addrs three = extractAddresses(list, 3);
  BOOST_TEST(three == (Addrs{"u0@example.com", "u1@example.com", "u2@example.com"}),
             boost::test_tools::per_element());
  BOOST_TEST(extractAddresses(list, 0).empty());
}

BOOST_AUTO_TEST_CASE(deeply_nested_comment_does_not_hurt) {
  const std::string value = std::string(100000, '(') + "x" + std::string(100000, ')') + " a@example.com";
  BOOST_TEST(extractAddresses(value) == (Addrs{"a@example.com"}), boost::test_tools::per_element());
  // Unterminated: everything after '(' is comment.
  BOOST_TEST(extractAddresses(std::string(1000, '(') + "a@example.com").empty());
}

// Found by a complexity probe while fuzzing (tests/fuzz/corpus/mime_address/
// timeout-whitespace-run): each white-space token looked ahead over the whole run, so the
// time grew with the square of its length (64 KiB of spaces: seconds; this: minutes).
BOOST_AUTO_TEST_CASE(long_white_space_run_is_linear) {
  const std::string value = "a" + std::string(512 * 1024, ' ') + "b@example.com, c @" +
                            std::string(512 * 1024, '\t') + "example.org";
  BOOST_TEST(extractAddresses(value) == (Addrs{"b@example.com", "c@example.org"}),
             boost::test_tools::per_element());
}
