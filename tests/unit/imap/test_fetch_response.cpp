#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <string>
#include <vector>

#include "shared/imap/fetch_response.hpp"

using imapav::imap::FetchResponseParser;
using imapav::imap::LiteralKind;
using imapav::imap::rewriteLiteralSize;
using imapav::imap::rewriteNumberAt;

BOOST_TEST_DONT_PRINT_LOG_VALUE(imapav::imap::LiteralKind)

namespace {

// Feeds every segment; true if all were accepted.
bool feedAll(FetchResponseParser& p, const std::vector<std::string>& segments) {
  bool ok = true;
  for (std::size_t i = 0; i < segments.size(); ++i) ok = p.segment(segments[i], i == 0) && ok;
  return ok;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fetch_response)

BOOST_AUTO_TEST_CASE(dovecot_whole_body_fetch) {
  FetchResponseParser p;
  const std::string head = "* 1 FETCH (UID 7 RFC822.SIZE 342 FLAGS (\\Seen) BODY[] {342}\r\n";
  BOOST_TEST(p.segment(head, true));
  BOOST_TEST(p.isFetch());
  BOOST_TEST(!p.complete());
  BOOST_TEST(p.sequence() == 1u);
  BOOST_REQUIRE(p.uid());
  BOOST_TEST(*p.uid() == 7u);
  auto size = p.rfc822Size();
  BOOST_REQUIRE(size);
  BOOST_TEST(size->segmentIndex == 0u);
  BOOST_TEST(size->offset == head.find("342"));
  BOOST_TEST(size->length == 3u);
  BOOST_TEST(size->value == 342u);
  auto lit = p.pendingLiteral();
  BOOST_REQUIRE(lit);
  BOOST_TEST(lit->kind == LiteralKind::WholeMessage);
  BOOST_TEST(lit->item == "BODY[]");
  BOOST_TEST(lit->size == 342u);
  BOOST_TEST(!lit->literal8);

  BOOST_TEST(p.segment(")\r\n", false));
  BOOST_TEST(p.complete());
  BOOST_TEST(!p.malformed());
  BOOST_TEST(!p.pendingLiteral());
  // Nothing may follow the end of a response.
  BOOST_TEST(!p.segment(")\r\n", false));
  BOOST_TEST(p.malformed());
}

BOOST_AUTO_TEST_CASE(rfc822_and_binary) {
  FetchResponseParser p;
  BOOST_TEST(p.segment("* 12 FETCH (RFC822 {100}\r\n", true));
  BOOST_TEST(p.sequence() == 12u);
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::WholeMessage);
  BOOST_TEST(p.pendingLiteral()->item == "RFC822");
  BOOST_TEST(p.segment(" UID 9)\r\n", false));
  BOOST_TEST(p.complete());
  BOOST_TEST(*p.uid() == 9u);

  BOOST_TEST(p.segment("* 2 FETCH (UID 3 BINARY[] ~{55}\r\n", true));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::WholeMessage);
  BOOST_TEST(p.pendingLiteral()->item == "BINARY[]");
  BOOST_TEST(p.pendingLiteral()->literal8);
  BOOST_TEST(p.pendingLiteral()->size == 55u);
  BOOST_TEST(!p.rfc822Size());  // reset by the new response
  BOOST_TEST(p.segment(")\r\n", false));
  BOOST_TEST(p.complete());
}

BOOST_AUTO_TEST_CASE(partial_fetch_from_zero) {
  FetchResponseParser p;
  BOOST_TEST(p.segment("* 5 FETCH (UID 10 BODY[]<0> {2048}\r\n", true));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::PartialFromZero);
  BOOST_TEST(p.pendingLiteral()->item == "BODY[]<0>");
  BOOST_TEST(p.pendingLiteral()->size == 2048u);
  BOOST_TEST(p.segment(")\r\n", false));

  BOOST_TEST(p.segment("* 5 FETCH (UID 10 BINARY[]<0> ~{10}\r\n", true));
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::PartialFromZero);

  // A later chunk is not the start of the message.
  BOOST_TEST(p.segment("* 5 FETCH (UID 10 BODY[]<65536> {2048}\r\n", true));
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::Other);
  BOOST_TEST(p.pendingLiteral()->item == "BODY[]<65536>");
}

BOOST_AUTO_TEST_CASE(sections_with_spaces_and_parts) {
  FetchResponseParser p;
  BOOST_TEST(p.segment("* 1 FETCH (UID 7 BODY[HEADER.FIELDS (DATE FROM)] {80}\r\n", true));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::Other);
  BOOST_TEST(p.pendingLiteral()->item == "BODY[HEADER.FIELDS (DATE FROM)]");
  BOOST_TEST(p.segment(")\r\n", false));
  BOOST_TEST(p.complete());

  // Thunderbird: attachments part by part; several literals and items after them.
  BOOST_TEST(p.segment("* 3 FETCH (BODY[1] {10}\r\n", true));
  BOOST_TEST(p.pendingLiteral()->item == "BODY[1]");
  BOOST_TEST(p.segment(" BODY[2] {20}\r\n", false));
  BOOST_TEST(p.pendingLiteral()->item == "BODY[2]");
  BOOST_TEST(p.pendingLiteral()->size == 20u);
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::Other);
  BOOST_TEST(p.segment(" UID 5 FLAGS (\\Seen \\Answered))\r\n", false));
  BOOST_TEST(p.complete());
  BOOST_TEST(*p.uid() == 5u);
}

BOOST_AUTO_TEST_CASE(envelope_literal_then_body) {
  FetchResponseParser p;
  std::vector<std::string> segs = {
      "* 4 FETCH (UID 20 ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" {12}\r\n",
      " ((\"Fred \\\"F\\\" Foo\" NIL \"fred\" \"example.org\")) ((\"Fred\" NIL \"fred\" "
      "\"example.org\")) NIL NIL NIL NIL NIL \"<b27@example.org>\") BODY[] {500}\r\n",
      " RFC822.SIZE 500)\r\n"};
  BOOST_TEST(p.segment(segs[0], true));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::Other);
  BOOST_TEST(p.pendingLiteral()->item == "ENVELOPE");
  BOOST_TEST(p.pendingLiteral()->size == 12u);
  BOOST_TEST(p.segment(segs[1], false));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::WholeMessage);
  BOOST_TEST(p.pendingLiteral()->size == 500u);
  BOOST_TEST(p.segment(segs[2], false));
  BOOST_TEST(p.complete());
  BOOST_TEST(*p.uid() == 20u);
  BOOST_REQUIRE(p.rfc822Size());
  BOOST_TEST(p.rfc822Size()->segmentIndex == 2u);
  BOOST_TEST(p.rfc822Size()->offset == 13u);
  BOOST_TEST(rewriteNumberAt(segs[2], p.rfc822Size()->offset, p.rfc822Size()->length, 61) ==
             " RFC822.SIZE 61)\r\n");
}

BOOST_AUTO_TEST_CASE(literal_deep_inside_bodystructure) {
  FetchResponseParser p;
  BOOST_TEST(p.segment("* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\" \"NAME\" {9}\r\n", true));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::Other);
  BOOST_TEST(p.pendingLiteral()->item == "BODYSTRUCTURE");
  BOOST_TEST(p.segment(") NIL NIL \"8BIT\" 10 1 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" NIL NIL NIL "
                       "\"BASE64\" 100 NIL NIL NIL NIL) \"MIXED\" NIL NIL NIL NIL) UID 3)\r\n",
                       false));
  BOOST_TEST(p.complete());
  BOOST_TEST(!p.pendingLiteral());
  BOOST_TEST(*p.uid() == 3u);
}

// Found by fuzzing (tests/fuzz/corpus/imap_fetch/crash-literal8-glued-to-atom): the framer
// reads "N~{5}" as a literal8 marker, so the parser must report the same literal.
BOOST_AUTO_TEST_CASE(literal8_marker_glued_to_an_atom) {
  FetchResponseParser p;
  BOOST_TEST(p.segment("* 4 FETCH (ENVELOPE (NIL N~{5}\r\n", true));
  BOOST_REQUIRE(p.pendingLiteral());
  BOOST_TEST(p.pendingLiteral()->literal8);
  BOOST_TEST(p.pendingLiteral()->size == 5u);
  BOOST_TEST(p.segment(" NIL) UID 3)\r\n", false));
  BOOST_TEST(p.complete());
  // An atom with '~' elsewhere is still one atom.
  BOOST_TEST(p.segment("* 4 FETCH (FLAGS (a~b ~c) UID 3)\r\n", true));
  BOOST_TEST(p.complete());
}

BOOST_AUTO_TEST_CASE(lowercase_items) {
  FetchResponseParser p;
  BOOST_TEST(p.segment("* 1 fetch (uid 7 rfc822.size 10 body[] {10}\r\n", true));
  BOOST_TEST(*p.uid() == 7u);
  BOOST_TEST(p.rfc822Size()->value == 10u);
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::WholeMessage);
  BOOST_TEST(p.segment(")\n", false));  // bare LF is accepted as the framer accepts it
  BOOST_TEST(p.complete());

  BOOST_TEST(p.segment("* 1 FETCH (Body[Header] {10}\r\n", true));
  BOOST_TEST(p.pendingLiteral()->item == "BODY[HEADER]");
  BOOST_TEST(p.segment("* 1 FETCH (Rfc822 {10}\r\n", true));
  BOOST_TEST(p.pendingLiteral()->kind == LiteralKind::WholeMessage);
}

BOOST_AUTO_TEST_CASE(items_without_literals) {
  FetchResponseParser p;
  BOOST_TEST(feedAll(p, {"* 9 FETCH (FLAGS (\\Seen $Junk) UID 4294967295 BINARY.SIZE[] 123 "
                         "BODY[]<0> NIL MODSEQ (12345) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n"}));
  BOOST_TEST(p.complete());
  BOOST_TEST(*p.uid() == 4294967295u);
  BOOST_TEST(!p.pendingLiteral());
  BOOST_TEST(!p.rfc822Size());

  // Unsolicited flag change (IDLE).
  BOOST_TEST(p.segment("* 3 FETCH (FLAGS (\\Deleted))\r\n", true));
  BOOST_TEST(p.complete());
  BOOST_TEST(!p.uid());
}

BOOST_AUTO_TEST_CASE(not_a_fetch_response) {
  FetchResponseParser p;
  BOOST_TEST(!p.segment("* LIST () \"/\" {5}\r\n", true));
  BOOST_TEST(!p.isFetch());
  BOOST_TEST(!p.malformed());
  BOOST_TEST(!p.pendingLiteral());
  BOOST_TEST(!p.segment("\r\n", false));

  for (const char* line : {"* 3 EXISTS\r\n", "a1 OK FETCH completed\r\n", "* 3 FETCHED (UID 1)\r\n",
                           "* 0 FETCH (UID 1)\r\n", "* 4294967296 FETCH (UID 1)\r\n",
                           "* x FETCH (UID 1)\r\n", "+ go ahead\r\n", "", "*", "* 1 FETCH(UID 1)\r\n"}) {
    BOOST_TEST(!p.segment(line, true), line);
    BOOST_TEST(!p.isFetch());
  }
  // The first segment must come first.
  FetchResponseParser q;
  BOOST_TEST(!q.segment(" UID 1)\r\n", false));
}

const std::vector<std::vector<std::string>> kMalformed = {
    {"* 1 FETCH (UID 7\r\n"},
    {"* 1 FETCH (UID x)\r\n"},
    {"* 1 FETCH (UID 0)\r\n"},
    {"* 1 FETCH (RFC822.SIZE 99999999999999999999999)\r\n"},
    {"* 1 FETCH (RFC822.SIZE (1))\r\n"},
    {"* 1 FETCH (RFC822.SIZE \"1\")\r\n"},
    {"* 1 FETCH (UID {1}\r\n", ")\r\n"},
    {"* 1 FETCH (BODY[] {12x}\r\n"},
    {"* 1 FETCH (BODY[] {}\r\n"},
    {"* 1 FETCH (BODY[] {5} x\r\n"},
    {"* 1 FETCH (BODY[] ~{5+}\r\n"},
    {"* 1 FETCH (BODY[ {5}\r\n"},
    {"* 1 FETCH (BODY[]<x> {5}\r\n"},
    {"* 1 FETCH ({5}\r\n"},
    {"* 1 FETCH (ENVELOPE (\"unterminated)\r\n"},
    {"* 1 FETCH (ENVELOPE (NIL NIL)\r\n"},
    {"* 1 FETCH (UID 7))\r\n"},
    {"* 1 FETCH (UID 7) junk\r\n"},
    {"* 1 FETCH (UID 7 FLAGS\r\n"},
    {"* 1 FETCH (UID 7 FLAGS )\r\n"},
    {"* 1 FETCH (UID 7BODY[] {5}\r\n", ")\r\n"},
    {"* 1 FETCH (BODY[] {5}\r\n", "\r\n"},
    {"* 1 FETCH (ENVELOPE ({5}\r\n", ")\r\n"},
    {"* 1 FETCH (" + std::string(200, '(') + ")\r\n"},
    {"* 1 FETCH (BODY[" + std::string(2000, 'X') + "] NIL)\r\n"},
    {std::string("* 1 FETCH (UID 7\0)\r\n", 19)},
};

BOOST_DATA_TEST_CASE(malformed_fetch_is_rejected, boost::unit_test::data::xrange(kMalformed.size()), i) {
  FetchResponseParser p;
  BOOST_TEST(!feedAll(p, kMalformed[i]));
  BOOST_TEST(p.isFetch());
  BOOST_TEST(p.malformed());
  BOOST_TEST(!p.complete());
  BOOST_TEST(!p.pendingLiteral());
}

BOOST_AUTO_TEST_CASE(every_prefix_and_byte_is_handled) {
  const std::string whole = "* 1 FETCH (UID 7 RFC822.SIZE 342 ENVELOPE (\"a\\\"b\" NIL) BODY[] {342}\r\n";
  for (std::size_t n = 0; n <= whole.size(); ++n) {
    FetchResponseParser p;
    bool ok = p.segment(std::string_view(whole).substr(0, n), true);
    // Only the whole segment ends in a literal marker; no prefix may look complete.
    BOOST_TEST(ok == (n == whole.size()), n);
    BOOST_TEST(!p.complete());
    BOOST_TEST(p.pendingLiteral().has_value() == (n == whole.size()), n);
  }
  // Every single-byte corruption is either accepted or rejected, never a crash.
  for (std::size_t i = 0; i < whole.size(); ++i) {
    for (int c : {0, int{'('}, int{')'}, int{'"'}, int{'{'}, int{'}'}, int{' '}, int{'\r'}, int{'\n'}, int{'['}, int{']'}, int{'~'}, 0xff}) {
      std::string s = whole;
      s[i] = static_cast<char>(c);
      FetchResponseParser p;
      p.segment(s, true);
      p.segment(")\r\n", false);
      BOOST_TEST(!(p.malformed() && p.complete()));
    }
  }
}

BOOST_AUTO_TEST_CASE(rewrite_number_exact) {
  const std::string seg = "* 1 FETCH (UID 7 RFC822.SIZE 342 FLAGS (\\Seen) BODY[] {342}\r\n";
  FetchResponseParser p;
  BOOST_REQUIRE(p.segment(seg, true));
  auto f = *p.rfc822Size();
  BOOST_TEST(rewriteNumberAt(seg, f.offset, f.length, 1200) ==
             "* 1 FETCH (UID 7 RFC822.SIZE 1200 FLAGS (\\Seen) BODY[] {342}\r\n");
  BOOST_TEST(rewriteNumberAt(seg, f.offset, f.length, 0) ==
             "* 1 FETCH (UID 7 RFC822.SIZE 0 FLAGS (\\Seen) BODY[] {342}\r\n");
  // Out of range or not a number: unchanged.
  BOOST_TEST(rewriteNumberAt(seg, seg.size(), 3, 1) == seg);
  BOOST_TEST(rewriteNumberAt(seg, seg.size() - 1, 3, 1) == seg);
  BOOST_TEST(rewriteNumberAt(seg, 0, 3, 1) == seg);
  BOOST_TEST(rewriteNumberAt(seg, f.offset, 0, 1) == seg);
}

BOOST_AUTO_TEST_CASE(rewrite_literal_size_exact) {
  BOOST_TEST(rewriteLiteralSize("* 1 FETCH (UID 7 BODY[] {342}\r\n", 1200) == "* 1 FETCH (UID 7 BODY[] {1200}\r\n");
  BOOST_TEST(rewriteLiteralSize(" BINARY[] ~{55}\r\n", 7) == " BINARY[] ~{7}\r\n");
  BOOST_TEST(rewriteLiteralSize("A1 APPEND INBOX {5+}\r\n", 66) == "A1 APPEND INBOX {66+}\r\n");
  BOOST_TEST(rewriteLiteralSize("x {5}\n", 10) == "x {10}\n");
  BOOST_TEST(rewriteLiteralSize("* 1 FETCH (UID 7)\r\n", 10) == "* 1 FETCH (UID 7)\r\n");
  BOOST_TEST(rewriteLiteralSize("x {abc}\r\n", 10) == "x {abc}\r\n");
  BOOST_TEST(rewriteLiteralSize("x {5} y\r\n", 10) == "x {5} y\r\n");
  BOOST_TEST(rewriteLiteralSize("", 10) == "");
}

BOOST_AUTO_TEST_SUITE_END()
