#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

#include "shared/mime/message_headers.hpp"

using imapav::mime::MessageHeaders;
using imapav::mime::parseMessageHeaders;

namespace {

const std::string kMessage =
    "Return-Path: <alice@example.org>\r\n"
    "Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
    "\tby mail.example.com with ESMTPS id 4Xyz\r\n"
    "\tfor <bob@example.com>; Sat, 28 Nov 2026 09:07:57 +0000\r\n"
    "From: Alice Example <alice@example.org>\r\n"
    "To: bob@example.com\r\n"
    "Subject: Quarterly report\r\n"
    " and the invoice\r\n"
    "Date: Sat, 28 Nov 2026 09:07:50 +0100\r\n"
    "Message-ID: <20261128090750.1234@example.org>\r\n"
    "\r\n"
    "Hello Bob,\r\nSubject: not a header\r\n";

}  // namespace

BOOST_AUTO_TEST_CASE(parses_fields_folds_and_body_offset) {
  const MessageHeaders h = parseMessageHeaders(kMessage);
  BOOST_TEST(h.complete);
  BOOST_REQUIRE_EQUAL(h.fields.size(), 7u);
  BOOST_TEST(h.fields[1].name == "Received");
  BOOST_TEST(h.fields[1].raw ==
             "Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
             "\tby mail.example.com with ESMTPS id 4Xyz\r\n"
             "\tfor <bob@example.com>; Sat, 28 Nov 2026 09:07:57 +0000");
  const auto* subject = h.find("subject");
  BOOST_REQUIRE(subject != nullptr);
  BOOST_TEST(subject->raw == "Subject: Quarterly report\r\n and the invoice");
  BOOST_TEST(subject->value() == "Quarterly report and the invoice");
  BOOST_TEST(h.value("MESSAGE-ID") == "<20261128090750.1234@example.org>");
  BOOST_TEST(h.value("Cc") == "");
  BOOST_TEST(h.find("Cc") == nullptr);
  BOOST_TEST(kMessage.substr(h.bodyOffset) == "Hello Bob,\r\nSubject: not a header\r\n");
  // The body line that looks like a field is not one.
  BOOST_TEST(h.findAll("Subject").size() == 1u);
}

BOOST_AUTO_TEST_CASE(bare_lf_message) {
  const std::string m = "From: a@example.org\nSubject: one\n  two\nTo: b@example.com\n\nbody\n";
  const MessageHeaders h = parseMessageHeaders(m);
  BOOST_TEST(h.complete);
  BOOST_REQUIRE_EQUAL(h.fields.size(), 3u);
  // Line ends inside raw are normalised to CRLF.
  BOOST_TEST(h.fields[1].raw == "Subject: one\r\n  two");
  BOOST_TEST(h.fields[1].value() == "one  two");
  BOOST_TEST(h.bodyOffset == m.find("body"));
}

BOOST_AUTO_TEST_CASE(header_only_message_without_empty_line) {
  const std::string m = "From: a@example.org\r\nSubject: no body";
  const MessageHeaders h = parseMessageHeaders(m);
  BOOST_TEST(!h.complete);
  BOOST_TEST(h.bodyOffset == m.size());
  BOOST_REQUIRE_EQUAL(h.fields.size(), 2u);
  BOOST_TEST(h.value("Subject") == "no body");
}

BOOST_AUTO_TEST_CASE(header_only_message_with_empty_line) {
  const std::string m = "From: a@example.org\r\nSubject: x\r\n\r\n";
  const MessageHeaders h = parseMessageHeaders(m);
  BOOST_TEST(h.complete);
  BOOST_TEST(h.bodyOffset == m.size());
}

BOOST_AUTO_TEST_CASE(empty_and_headerless_messages) {
  const MessageHeaders empty = parseMessageHeaders("");
  BOOST_TEST(!empty.complete);
  BOOST_TEST(empty.fields.empty());
  BOOST_TEST(empty.bodyOffset == 0u);

  const MessageHeaders bodyOnly = parseMessageHeaders("\r\njust a body\r\n");
  BOOST_TEST(bodyOnly.complete);
  BOOST_TEST(bodyOnly.fields.empty());
  BOOST_TEST(bodyOnly.bodyOffset == 2u);
}

BOOST_AUTO_TEST_CASE(mbox_from_line_is_skipped) {
  const std::string m =
      "From alice@example.org Sat Nov 28 09:07:57 2026\n"
      "From: Alice <alice@example.org>\n"
      "Subject: hi\n\nbody";
  const MessageHeaders h = parseMessageHeaders(m);
  BOOST_REQUIRE_EQUAL(h.fields.size(), 2u);
  BOOST_TEST(h.fields[0].name == "From");
  BOOST_TEST(h.value("From") == "Alice <alice@example.org>");
}

BOOST_AUTO_TEST_CASE(obsolete_space_before_colon_on_first_line_is_a_field) {
  const MessageHeaders h = parseMessageHeaders("From : a@example.org\r\nTo: b@example.com\r\n\r\n");
  BOOST_REQUIRE_EQUAL(h.fields.size(), 2u);
  BOOST_TEST(h.fields[0].name == "From");
  BOOST_TEST(h.fields[0].value() == "a@example.org");
}

BOOST_AUTO_TEST_CASE(garbage_lines_and_their_continuations_are_skipped) {
  const std::string m =
      "From: a@example.org\r\n"
      "this line has no colon\r\n"
      " and this continues the garbage\r\n"
      "bad name: x\r\n"
      ": empty name\r\n"
      "Subject: kept\r\n"
      "\r\n";
  const MessageHeaders h = parseMessageHeaders(m);
  BOOST_REQUIRE_EQUAL(h.fields.size(), 2u);
  BOOST_TEST(h.fields[0].raw == "From: a@example.org");
  BOOST_TEST(h.fields[1].raw == "Subject: kept");
  BOOST_TEST(h.complete);
}

BOOST_AUTO_TEST_CASE(continuation_before_any_field_is_skipped) {
  const MessageHeaders h = parseMessageHeaders(" stray\r\nSubject: s\r\n\r\n");
  BOOST_REQUIRE_EQUAL(h.fields.size(), 1u);
  BOOST_TEST(h.fields[0].raw == "Subject: s");
}

BOOST_AUTO_TEST_CASE(eight_bit_header_bytes_are_kept) {
  const std::string m = "Subject: Gr\xfc\xdf" "e \xc3\xa9t\xc3\xa9\r\nX-\xff: y\r\n\r\n";
  const MessageHeaders h = parseMessageHeaders(m);
  // A name must be printable ASCII, so "X-\xff" is garbage; the value keeps its bytes.
  BOOST_REQUIRE_EQUAL(h.fields.size(), 1u);
  BOOST_TEST(h.value("Subject") == "Gr\xfc\xdf" "e \xc3\xa9t\xc3\xa9");
}

BOOST_AUTO_TEST_CASE(field_count_is_bounded_but_header_end_is_found) {
  std::string m;
  for (int i = 0; i < 1500; ++i) m += "X-Spam-" + std::to_string(i) + ": v\r\n";
  m += "Subject: after the flood\r\n\r\nbody";
  const MessageHeaders h = parseMessageHeaders(m, 256 * 1024, 1000);
  BOOST_TEST(h.fields.size() == 1000u);
  BOOST_TEST(h.fields.back().name == "X-Spam-999");
  BOOST_TEST(h.find("Subject") == nullptr);
  BOOST_TEST(h.complete);
  BOOST_TEST(m.substr(h.bodyOffset) == "body");
}

BOOST_AUTO_TEST_CASE(byte_limit_is_respected) {
  const std::string m = "Subject: short\r\nX-Long: " + std::string(1000, 'a') + "\r\n\r\nbody";
  // The limit cuts the second field: it is dropped, not kept half.
  const MessageHeaders h = parseMessageHeaders(m, 100);
  BOOST_TEST(!h.complete);
  BOOST_REQUIRE_EQUAL(h.fields.size(), 1u);
  BOOST_TEST(h.fields[0].name == "Subject");
  BOOST_TEST(h.bodyOffset == m.size());

  // The empty line itself must lie within the limit.
  const std::string small = "A: b\r\n\r\n";
  BOOST_TEST(!parseMessageHeaders(small, small.size() - 1).complete);
  BOOST_TEST(parseMessageHeaders(small, small.size()).complete);
}

BOOST_AUTO_TEST_CASE(find_returns_first_of_duplicates) {
  const MessageHeaders h = parseMessageHeaders("To: a@x\r\nto: b@x\r\n\r\n");
  BOOST_TEST(h.value("TO") == "a@x");
  BOOST_TEST(h.findAll("To").size() == 2u);
}

// The same message split anywhere must parse the same way (the parser is whole-buffer,
// but a truncated prefix must never produce a field the full message does not have).
BOOST_DATA_TEST_CASE(every_prefix_is_safe, boost::unit_test::data::xrange(kMessage.size() + 1),
                     cut) {
  const MessageHeaders h = parseMessageHeaders(kMessage.substr(0, cut));
  const MessageHeaders full = parseMessageHeaders(kMessage);
  BOOST_TEST(h.fields.size() <= full.fields.size());
  for (std::size_t i = 0; i < h.fields.size(); ++i) {
    BOOST_TEST(h.fields[i].name == full.fields[i].name);
    BOOST_TEST(full.fields[i].raw.substr(0, h.fields[i].raw.size()) == h.fields[i].raw);
  }
  BOOST_TEST(h.bodyOffset <= cut);
}
