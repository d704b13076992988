#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "shared/icap/encapsulated.hpp"
#include "shared/icap/headers.hpp"
#include "shared/icap/http_head.hpp"

using namespace imapav::icap;

BOOST_AUTO_TEST_SUITE(headers)

BOOST_AUTO_TEST_CASE(iequals_ignores_ascii_case_only) {
  BOOST_TEST(iequals("Encapsulated", "eNCAPSULATED"));
  BOOST_TEST(iequals("", ""));
  BOOST_TEST(!iequals("Allow", "Allo"));
  BOOST_TEST(!iequals("a-b", "a_b"));
}

BOOST_AUTO_TEST_CASE(add_find_set_remove) {
  Headers h;
  h.add("ISTag", "\"a\"");
  h.add("X-One", "1");
  h.add("istag", "\"b\"");
  BOOST_REQUIRE(h.find("ISTAG") != nullptr);
  BOOST_TEST(*h.find("ISTAG") == "\"a\"");
  BOOST_TEST(h.find("Missing") == nullptr);
  h.set("IsTag", "\"c\"");  // replaces both, keeps the first position and its name
  BOOST_REQUIRE(h.fields().size() == 2u);
  BOOST_TEST(h.fields()[0].name == "ISTag");
  BOOST_TEST(h.fields()[0].value == "\"c\"");
  h.set("New", "v");
  BOOST_TEST(h.fields().back().name == "New");
  h.remove("x-one");
  BOOST_TEST(!h.has("X-One"));
  std::string out;
  h.serialize(out);
  BOOST_TEST(out == "ISTag: \"c\"\r\nNew: v\r\n");
}

BOOST_AUTO_TEST_CASE(list_has_reads_comma_lists_over_all_fields) {
  Headers h;
  h.add("Allow", "204, 206");
  h.add("Connection", "keep-alive");
  h.add("connection", " Close ");
  BOOST_TEST(h.listHas("allow", "204"));
  BOOST_TEST(h.listHas("Allow", "206"));
  BOOST_TEST(!h.listHas("Allow", "20"));
  BOOST_TEST(h.listHas("Connection", "close"));
  BOOST_TEST(!h.listHas("Preview", "0"));
}

BOOST_AUTO_TEST_CASE(parse_lines_crlf_lf_and_folds) {
  Headers h;
  BOOST_REQUIRE(parseHeaderLines("A: 1\r\nB:two  \nX-Violations-Found: 1\r\n\teicar.com\r\n"
                                 "\tEicar-Signature  \r\n\t0\n\t2\r\nC: \r\n\r\nIgnored: x\r\n",
                                 h));
  BOOST_REQUIRE(h.fields().size() == 4u);
  BOOST_TEST(*h.find("a") == "1");
  BOOST_TEST(*h.find("b") == "two");
  BOOST_TEST(*h.find("X-Violations-Found") ==
             "1\r\n\teicar.com\r\n\tEicar-Signature\r\n\t0\r\n\t2");
  BOOST_TEST(*h.find("C") == "");
  BOOST_TEST(!h.has("Ignored"));
  std::string out;
  h.serialize(out);
  BOOST_TEST(out ==
             "A: 1\r\nB: two\r\nX-Violations-Found: 1\r\n\teicar.com\r\n\tEicar-Signature\r\n"
             "\t0\r\n\t2\r\nC: \r\n");
}

BOOST_DATA_TEST_CASE(parse_lines_rejects,
                     boost::unit_test::data::make(std::vector<std::string>{
                         "no colon\r\n\r\n", ": empty name\r\n\r\n", "Bad Name: x\r\n\r\n",
                         "\tfolded first\r\n\r\n", "Ctl\x01: x\r\n\r\n"}),
                     block) {
  Headers h;
  BOOST_TEST(!parseHeaderLines(block, h));
  BOOST_TEST(h.empty());  // nothing half-parsed is left behind
}

BOOST_AUTO_TEST_CASE(http_request_head) {
  const std::string block =
      "GET imap://u@h/INBOX;UIDVALIDITY=7/;UID=42 HTTP/1.1\r\nHost: h\r\n\r\n";
  const auto head = parseHttpHead(block);
  BOOST_REQUIRE(head.has_value());
  BOOST_TEST(head->startLine == "GET imap://u@h/INBOX;UIDVALIDITY=7/;UID=42 HTTP/1.1");
  BOOST_TEST(head->requestTarget() == "imap://u@h/INBOX;UIDVALIDITY=7/;UID=42");
  BOOST_TEST(*head->headers.find("host") == "h");
  BOOST_TEST(head->serialize() == block);
}

BOOST_AUTO_TEST_CASE(http_response_head) {
  const auto head =
      parseHttpHead("HTTP/1.1 200 OK\nContent-Type: message/rfc822\nContent-Length: 11\n\n");
  BOOST_REQUIRE(head.has_value());
  BOOST_TEST(head->startLine == "HTTP/1.1 200 OK");
  BOOST_TEST(head->requestTarget() == "");
  BOOST_TEST(*head->headers.find("Content-Length") == "11");
  BOOST_TEST(head->serialize() ==
             "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: 11\r\n\r\n");
  const auto bare = parseHttpHead("HTTP/1.1 204 No Content\r\n\r\n");
  BOOST_REQUIRE(bare.has_value());
  BOOST_TEST(bare->headers.empty());
}

BOOST_AUTO_TEST_CASE(http_head_malformed) {
  BOOST_TEST(!parseHttpHead("").has_value());
  BOOST_TEST(!parseHttpHead("\r\n").has_value());
  BOOST_TEST(!parseHttpHead(" GET / HTTP/1.1\r\n\r\n").has_value());
  BOOST_TEST(!parseHttpHead("GET / HTTP/1.1\r\nno colon here\r\n\r\n").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(encapsulated)

struct EncapCase {
  std::string value;
  std::string formatted;  // "" when parsing must fail
  std::size_t headerBytes = 0;
  bool hasBody = false;
};
std::ostream& operator<<(std::ostream& os, const EncapCase& c) { return os << c.value; }

const std::vector<EncapCase> kEncapCases{
    {"null-body=0", "null-body=0", 0, false},
    {"res-hdr=0, res-body=123", "res-hdr=0, res-body=123", 123, true},
    {"req-hdr=0, res-hdr=45, res-body=130", "req-hdr=0, res-hdr=45, res-body=130", 130, true},
    {"req-hdr=0,null-body=17", "req-hdr=0, null-body=17", 17, false},
    {"  RES-HDR = 0 ,\tres-body=9 ", "res-hdr=0, res-body=9", 9, true},
    {"req-hdr=0, req-body=412", "req-hdr=0, req-body=412", 412, true},
    {"opt-body=0", "opt-body=0", 0, true},
    {"res-body=0", "res-body=0", 0, true},
    {"", ""},
    {"res-hdr=0", ""},                        // no body part: the head's size is unknown
    {"res-hdr=5, res-body=10", ""},           // the first part must start at 0
    {"res-hdr=0, res-body=0", ""},            // not strictly increasing
    {"res-hdr=0, req-hdr=10, res-body=5", ""},
    {"res-hdr=0, res-hdr=10, res-body=20", ""},
    {"res-hdr=0, res-body=10, null-body=20", ""},
    {"res-body=0, res-hdr=10", ""},           // body part not last
    {"foo-hdr=0, null-body=1", ""},
    {"res-hdr=0, res-body=", ""},
    {"res-hdr=0, res-body=-1", ""},
    {"res-hdr=0, res-body=1x", ""},
    {"res-hdr=0 res-body=10", ""},
    {"res-hdr=0,, res-body=10", ""},
    {"res-hdr=0, res-body=10,", ""},
    {"res-hdr=0, res-body=1000000000000000", ""},  // 16 digits
};

BOOST_DATA_TEST_CASE(parse_and_format, boost::unit_test::data::make(kEncapCases), c) {
  const auto e = parseEncapsulated(c.value);
  BOOST_TEST(e.has_value() == !c.formatted.empty());
  if (!e) return;
  BOOST_TEST(e->format() == c.formatted);
  BOOST_TEST(e->headerBytes() == c.headerBytes);
  BOOST_TEST(e->hasBody() == c.hasBody);
}

BOOST_AUTO_TEST_CASE(fifteen_digit_offset_is_accepted) {
  const auto e = parseEncapsulated("res-hdr=0, res-body=999999999999999");
  BOOST_REQUIRE(e.has_value());
  BOOST_TEST(e->headerBytes() == 999999999999999u);
}

BOOST_AUTO_TEST_SUITE_END()
