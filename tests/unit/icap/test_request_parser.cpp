#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "shared/icap/request_parser.hpp"
#include "tests/unit/icap/drive.hpp"

using namespace imapav::icap;
using imapav::icap::test::AtPreview;
using imapav::icap::test::driveAllWays;

namespace {

const std::string kReqHdr = "GET imap://u@h/INBOX;UIDVALIDITY=7/;UID=42 HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kResHdr =
    "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: 11\r\n\r\n";
const std::string kOptions =
    "OPTIONS icap://127.0.0.1:1344/avscan ICAP/1.0\r\nHost: 127.0.0.1\r\n"
    "User-Agent: C-ICAP-Client-Library/0.5.10\r\n\r\n";

std::string respmod(const std::string& extraHeaders, const std::string& chunks) {
  return "RESPMOD icap://127.0.0.1:1344/avscan?mode=x ICAP/1.0\r\nHost: 127.0.0.1\r\n" +
         extraHeaders + "Encapsulated: req-hdr=0, res-hdr=" + std::to_string(kReqHdr.size()) +
         ", res-body=" + std::to_string(kReqHdr.size() + kResHdr.size()) + "\r\n\r\n" + kReqHdr +
         kResHdr + chunks;
}

const std::string kBodyChunks = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(request_parser)

BOOST_AUTO_TEST_CASE(options_without_encapsulated) {
  const auto out = driveAllWays<RequestParser>(kOptions);
  BOOST_TEST(out.transcript.ends_with("complete 0\n"));
  BOOST_REQUIRE(out.heads.size() == 1u);
  const auto& h = out.heads[0];
  BOOST_TEST((h.method == Method::Options));
  BOOST_TEST(h.methodText == "OPTIONS");
  BOOST_TEST(h.uri == "icap://127.0.0.1:1344/avscan");
  BOOST_TEST(h.service == "avscan");
  BOOST_TEST(h.version == "ICAP/1.0");
  BOOST_TEST(h.encapsulated.format() == "null-body=0");
  BOOST_TEST(*h.headers.find("user-agent") == "C-ICAP-Client-Library/0.5.10");
  BOOST_TEST(!out.error);
  BOOST_TEST(out.unconsumed == 0u);
}

BOOST_AUTO_TEST_CASE(options_with_encapsulated) {
  const auto out = driveAllWays<RequestParser>(
      "OPTIONS /echo ICAP/1.0\r\nEncapsulated: null-body=0\r\nConnection: close\r\n\r\n");
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST(out.heads[0].service == "echo");
  BOOST_TEST(out.heads[0].connectionClose);
  BOOST_TEST((out.heads[0].encapsulated.nullBody == std::optional<std::size_t>(0)));
  BOOST_TEST(out.bodies == std::vector<std::string>{""}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(respmod_with_both_heads_and_body) {
  const auto out = driveAllWays<RequestParser>(respmod("Allow: 204, 206\r\n", kBodyChunks));
  BOOST_REQUIRE(out.heads.size() == 1u);
  const auto& h = out.heads[0];
  BOOST_TEST((h.method == Method::Respmod));
  BOOST_TEST(h.service == "avscan");
  BOOST_TEST(h.reqHdr == kReqHdr);
  BOOST_TEST(h.resHdr == kResHdr);
  BOOST_TEST(h.allow204);
  BOOST_TEST(!h.connectionClose);
  BOOST_TEST(!h.preview.has_value());
  BOOST_REQUIRE(out.bodies.size() == 1u);
  BOOST_TEST(out.bodies[0] == "hello world");
  BOOST_TEST(out.ieof == std::vector<bool>{false}, boost::test_tools::per_element());
  BOOST_TEST(out.unconsumed == 0u);
}

BOOST_AUTO_TEST_CASE(respmod_with_null_body) {
  const std::string in = "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, null-body=" +
                         std::to_string(kResHdr.size()) + "\r\n\r\n" + kResHdr;
  const auto out = driveAllWays<RequestParser>(in);
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST(out.heads[0].reqHdr == "");
  BOOST_TEST(out.heads[0].resHdr == kResHdr);
  BOOST_TEST(!out.heads[0].encapsulated.hasBody());
  BOOST_TEST(out.transcript.ends_with("complete 0\n"));
}

BOOST_AUTO_TEST_CASE(reqmod_with_body) {
  const std::string post = "POST /x HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string in = "REQMOD icap://h:1344/reqscan ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=" +
                         std::to_string(post.size()) + "\r\n\r\n" + post + "3\r\nabc\r\n0\r\n\r\n";
  const auto out = driveAllWays<RequestParser>(in);
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST((out.heads[0].method == Method::Reqmod));
  BOOST_TEST(out.heads[0].service == "reqscan");
  BOOST_TEST(out.heads[0].reqHdr == post);
  BOOST_TEST(out.bodies[0] == "abc");
}

BOOST_AUTO_TEST_CASE(unknown_method_is_reported_for_501) {
  const auto out = driveAllWays<RequestParser>("PATCH icap://h/avscan ICAP/1.0\r\n\r\n");
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST((out.heads[0].method == Method::Other));
  BOOST_TEST(out.heads[0].methodText == "PATCH");
  BOOST_TEST(!out.error);
}

BOOST_AUTO_TEST_CASE(service_from_uri_forms) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"icap://127.0.0.1:1344/avscan?mode=x", "avscan"},
      {"icap://host/a/b", "a/b"},
      {"ICAP://host:1344", ""},
      {"icap://host?x=1", ""},
      {"icaps://host/secure", "secure"},
      {"/avscan", "avscan"},
      {"/avscan?x", "avscan"},
      {"/", ""},
  };
  for (const auto& [uri, service] : cases) {
    const auto out = driveAllWays<RequestParser>("OPTIONS " + uri + " ICAP/1.0\r\n\r\n");
    BOOST_TEST_CONTEXT(uri) {
      BOOST_REQUIRE(out.heads.size() == 1u);
      BOOST_TEST(out.heads[0].uri == uri);
      BOOST_TEST(out.heads[0].service == service);
    }
  }
}

BOOST_AUTO_TEST_CASE(preview_with_ieof) {
  const auto out =
      driveAllWays<RequestParser>(respmod("Preview: 1024\r\n", "3\r\nabc\r\n0; ieof\r\n\r\n"));
  BOOST_TEST((out.heads[0].preview == std::optional<std::size_t>(1024)));
  BOOST_TEST(out.transcript.ends_with("complete 3\n"));
  BOOST_TEST(out.ieof == std::vector<bool>{true}, boost::test_tools::per_element());
  BOOST_TEST(out.transcript.find("preview-end") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(preview_then_continue) {
  const auto out = driveAllWays<RequestParser>(
      respmod("Preview: 4\r\n", "4\r\nabcd\r\n0\r\n\r\n5\r\nefghi\r\n0\r\n\r\n"));
  BOOST_TEST(out.transcript.ends_with("preview-end 4\ncomplete 9\n"));
  BOOST_TEST(out.bodies == (std::vector<std::string>{"abcd", "abcdefghi"}),
             boost::test_tools::per_element());
  BOOST_TEST(out.ieof == std::vector<bool>{false}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(preview_zero_then_continue) {
  const auto out =
      driveAllWays<RequestParser>(respmod("Preview: 0\r\n", "0\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"));
  BOOST_TEST(out.transcript.ends_with("preview-end 0\ncomplete 3\n"));
}

BOOST_AUTO_TEST_CASE(preview_answered_by_reset_then_next_request) {
  const auto out = driveAllWays<RequestParser>(
      respmod("Preview: 4\r\n", "4\r\nabcd\r\n0\r\n\r\n") + kOptions, AtPreview::Reset);
  BOOST_REQUIRE(out.heads.size() == 2u);
  BOOST_TEST((out.heads[1].method == Method::Options));
  BOOST_TEST(out.transcript.find("preview-end 4\nreset\nhead OPTIONS") != std::string::npos);
  BOOST_TEST(out.transcript.ends_with("complete 0\n"));
  BOOST_TEST(out.unconsumed == 0u);
}

BOOST_AUTO_TEST_CASE(waits_after_preview_until_told) {
  RequestParser p;
  const std::string in = respmod("Preview: 2\r\n", "2\r\nab\r\n0\r\n\r\n");
  const std::string rest = "1\r\nc\r\n0\r\n\r\n";
  std::string_view view = in;
  std::vector<RequestParser::Event> events;
  for (;;) {
    const auto step = p.feed(view);
    view.remove_prefix(step.consumed);
    events.push_back(step.event);
    if (step.event == RequestParser::Event::PreviewEnd) break;
    BOOST_REQUIRE(events.size() < 10u);
  }
  BOOST_TEST(view.empty());
  for (int i = 0; i < 3; ++i) {
    const auto step = p.feed(rest);
    BOOST_TEST(step.consumed == 0u);
    BOOST_TEST((step.event == RequestParser::Event::NeedMore));
  }
  p.continueAfterPreview();
  auto step = p.feed(rest);
  BOOST_TEST((step.event == RequestParser::Event::Body));
  BOOST_TEST(p.bodyData() == "c");
  BOOST_TEST(p.bodyBytes() == 3u);
  step = p.feed(std::string_view(rest).substr(step.consumed));
  BOOST_TEST((step.event == RequestParser::Event::Complete));
  BOOST_TEST(!p.ieof());
}

BOOST_AUTO_TEST_CASE(body_is_a_view_into_the_input_and_complete_needs_a_feed) {
  RequestParser p;
  const std::string in = respmod("", "5\r\nhello\r\n0\r\n\r\n");
  std::string_view view = in;
  auto step = p.feed(view);
  BOOST_TEST((step.event == RequestParser::Event::Head));
  view.remove_prefix(step.consumed);
  step = p.feed(view);
  BOOST_REQUIRE((step.event == RequestParser::Event::Body));
  BOOST_TEST((p.bodyData().data() >= in.data()));
  BOOST_TEST((p.bodyData().data() + p.bodyData().size() <= in.data() + in.size()));

  RequestParser options;
  step = options.feed(kOptions);
  BOOST_TEST((step.event == RequestParser::Event::Head));
  BOOST_TEST(step.consumed == kOptions.size());
  step = options.feed({});
  BOOST_TEST((step.event == RequestParser::Event::Complete));
  BOOST_TEST(step.consumed == 0u);
  BOOST_TEST(options.head().service == "avscan");  // still readable after Complete
}

BOOST_AUTO_TEST_CASE(two_and_three_pipelined_requests) {
  const std::string a = respmod("Allow: 204\r\n", kBodyChunks);
  const std::string b = "RESPMOD /avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, null-body=" +
                        std::to_string(kResHdr.size()) + "\r\n\r\n" + kResHdr;
  auto two = driveAllWays<RequestParser>(a + kOptions);
  BOOST_REQUIRE(two.heads.size() == 2u);
  BOOST_TEST(two.bodies == (std::vector<std::string>{"hello world", ""}),
             boost::test_tools::per_element());
  auto three = driveAllWays<RequestParser>(a + b + "\r\n" + a);  // a stray CRLF is skipped
  BOOST_REQUIRE(three.heads.size() == 3u);
  BOOST_TEST(three.heads[1].resHdr == kResHdr);
  BOOST_TEST(!three.heads[1].allow204);
  BOOST_TEST(three.heads[2].allow204);
  BOOST_TEST(three.bodies == (std::vector<std::string>{"hello world", "", "hello world"}),
             boost::test_tools::per_element());
  BOOST_TEST(three.unconsumed == 0u);
}

BOOST_AUTO_TEST_CASE(chunk_extensions) {
  const std::string letters = "abcdefghijklmnopqrstuvwxyz";
  const auto out = driveAllWays<RequestParser>(
      respmod("", "1a;name=value\r\n" + letters + "\r\n3 ; a=b;c\r\nxyz\r\n1A\t\r\n" + letters +
                      "\r\n0; ieof\r\n\r\n"));  // ieof outside a preview is harmless
  BOOST_TEST(out.bodies[0] == letters + "xyz" + letters);
  BOOST_TEST(out.ieof == std::vector<bool>{false}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(trailers_are_skipped) {
  const auto out = driveAllWays<RequestParser>(
      respmod("", "2\r\nok\r\n0\r\nX-Trailer: a\r\nY: b\r\n\r\n") + kOptions);
  BOOST_REQUIRE(out.heads.size() == 2u);
  BOOST_TEST(out.bodies[0] == "ok");
  BOOST_TEST(out.heads[1].service == "avscan");
}

BOOST_AUTO_TEST_CASE(folded_icap_header) {
  const auto out = driveAllWays<RequestParser>(
      "OPTIONS /avscan ICAP/1.0\r\nX-Note: first\r\n\tsecond\r\n  third\r\nHost: h\r\n\r\n");
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST(*out.heads[0].headers.find("X-Note") == "first\r\n\tsecond\r\n  third");
  BOOST_TEST(*out.heads[0].headers.find("Host") == "h");
}

BOOST_AUTO_TEST_CASE(bare_lf_everywhere) {
  const std::string resHdr = "HTTP/1.1 200 OK\nContent-Length: 3\n\n";
  const std::string in = "RESPMOD icap://h/avscan ICAP/1.0\nAllow: 204\nEncapsulated: res-hdr=0, "
                         "res-body=" + std::to_string(resHdr.size()) + "\n\n" + resHdr +
                         "3\nabc\n0\n\n";
  const auto out = driveAllWays<RequestParser>(in + in);
  BOOST_REQUIRE(out.heads.size() == 2u);
  BOOST_TEST(out.heads[0].resHdr == resHdr);
  BOOST_TEST(out.heads[0].allow204);
  BOOST_TEST(out.bodies == (std::vector<std::string>{"abc", "abc"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(large_body_in_many_chunks) {
  constexpr std::size_t kSize = 2 * 1024 * 1024 + 123;
  constexpr std::size_t kChunk = 4064;  // what libicapapi sends
  std::string body(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i) body[i] = static_cast<char>((i * 7 + i / 4096) % 251);
  std::string chunks;
  for (std::size_t at = 0; at < kSize; at += kChunk) {
    const auto piece = std::string_view(body).substr(at, kChunk);
    char size[16];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    chunks.append(size, static_cast<std::size_t>(n)).append(piece).append("\r\n");
  }
  chunks += "0\r\n\r\n";
  const auto out = driveAllWays<RequestParser>(respmod("", chunks), AtPreview::Continue, {}, 4);
  BOOST_REQUIRE(out.bodies.size() == 1u);
  BOOST_TEST(out.bodies[0].size() == kSize);
  BOOST_TEST((out.bodies[0] == body));
}

struct ErrorCase {
  std::string name;
  std::string input;
  int status;
};
std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.name; }

std::string withEncap(const std::string& encapsulated, const std::string& rest = "") {
  return "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: " + encapsulated + "\r\n\r\n" + rest;
}
std::string withBody(const std::string& chunks) {
  return withEncap("res-hdr=0, res-body=" + std::to_string(kResHdr.size()), kResHdr + chunks);
}
std::string manyHeaders(std::size_t count, std::size_t valueSize) {
  std::string s = "OPTIONS /avscan ICAP/1.0\r\n";
  for (std::size_t i = 0; i < count; ++i) s += "X-H" + std::to_string(i) + ": " + std::string(valueSize, 'v') + "\r\n";
  return s + "\r\n";
}

const std::vector<ErrorCase> kErrorCases{
    {"one word", "GARBAGE\r\n\r\n", 400},
    {"two words", "OPTIONS icap://h/avscan\r\n\r\n", 400},
    {"empty uri", "OPTIONS  ICAP/1.0\r\n\r\n", 400},
    {"leading space", " OPTIONS /a ICAP/1.0\r\n\r\n", 400},
    {"http version", "OPTIONS /avscan HTTP/1.1\r\n\r\n", 400},
    {"junk version", "OPTIONS /avscan ICAP/one\r\n\r\n", 400},
    {"relative uri", "OPTIONS avscan ICAP/1.0\r\n\r\n", 400},
    {"space in uri", "OPTIONS /a b ICAP/1.0\r\n\r\n", 400},
    {"version 2.0", "OPTIONS /avscan ICAP/2.0\r\n\r\n", 505},
    {"version 1.1", "RESPMOD /avscan ICAP/1.1\r\nEncapsulated: null-body=0\r\n\r\n", 505},
    {"header without colon", "OPTIONS /avscan ICAP/1.0\r\nno colon\r\n\r\n", 400},
    {"fold without field", "OPTIONS /avscan ICAP/1.0\r\n\tfolded\r\n\r\n", 400},
    {"request line too long", "OPTIONS /" + std::string(9000, 'a') + " ICAP/1.0\r\n\r\n", 400},
    {"header line too long", manyHeaders(1, 8300), 400},
    {"header block too big", manyHeaders(100, 1000), 413},
    {"missing encapsulated", "RESPMOD /avscan ICAP/1.0\r\nHost: h\r\n\r\n", 400},
    {"missing encapsulated reqmod", "REQMOD /avscan ICAP/1.0\r\n\r\n", 400},
    {"bad encapsulated", withEncap("res-hdr=0, res-body=x"), 400},
    {"unordered encapsulated", withEncap("res-hdr=10, res-body=5"), 400},
    {"encapsulated too big", withEncap("res-hdr=0, res-body=300000"), 413},
    {"head not matching offsets", withEncap("res-hdr=0, res-body=10", std::string(10, 'x')), 400},
    {"bad preview", "OPTIONS /avscan ICAP/1.0\r\nPreview: ten\r\n\r\n", 400},
    {"negative preview", "OPTIONS /avscan ICAP/1.0\r\nPreview: -1\r\n\r\n", 400},
    {"non-hex chunk size", withBody("zz\r\n"), 400},
    {"empty chunk size", withBody("\r\n"), 400},
    {"junk after chunk size", withBody("3 x\r\nabc\r\n"), 400},
    {"16 hex digits", withBody("1000000000000000\r\n"), 400},
    {"chunk-size line too long", withBody("1;" + std::string(9000, 'e') + "\r\n"), 400},
    {"no CRLF after chunk data", withBody("3\r\nabcX\r\n0\r\n\r\n"), 400},
    {"CR CR after chunk data", withBody("3\r\nabc\r\r\n0\r\n\r\n"), 400},
};

BOOST_DATA_TEST_CASE(errors, boost::unit_test::data::make(kErrorCases), c) {
  const auto out = driveAllWays<RequestParser>(c.input);
  BOOST_TEST(out.error);
  BOOST_TEST(out.errorStatus == c.status);
}

BOOST_AUTO_TEST_CASE(error_is_sticky_until_reset) {
  RequestParser p;
  auto step = p.feed("OPTIONS /avscan ICAP/9.0\r\n\r\n");
  BOOST_TEST((step.event == RequestParser::Event::Error));
  BOOST_TEST(p.errorStatus() == 505);
  step = p.feed(kOptions);
  BOOST_TEST((step.event == RequestParser::Event::Error));
  BOOST_TEST(step.consumed == 0u);
  p.reset();
  step = p.feed(kOptions);
  BOOST_TEST((step.event == RequestParser::Event::Head));
  BOOST_TEST(p.head().service == "avscan");
}

BOOST_AUTO_TEST_CASE(limits_are_configurable) {
  ParserLimits small;
  small.maxLineBytes = 40;
  small.maxHeaderBytes = 60;
  small.maxEncapsulatedBytes = 10;
  BOOST_TEST(driveAllWays<RequestParser>("OPTIONS /avscan ICAP/1.0\r\nA: " + std::string(37, 'x') +
                                             "\r\n\r\n", AtPreview::Continue, small).error == false);
  BOOST_TEST(driveAllWays<RequestParser>("OPTIONS /avscan ICAP/1.0\r\nA: " + std::string(38, 'x') +
                                             "\r\n\r\n", AtPreview::Continue, small).errorStatus == 400);
  BOOST_TEST(driveAllWays<RequestParser>(manyHeaders(4, 10), AtPreview::Continue, small).errorStatus == 413);
  BOOST_TEST(driveAllWays<RequestParser>(withEncap("res-hdr=0, res-body=11"), AtPreview::Continue,
                                         small).errorStatus == 413);
}

BOOST_AUTO_TEST_CASE(fifteen_hex_digits_are_accepted) {
  const auto out = driveAllWays<RequestParser>(withBody("00000000000000a\r\n0123456789\r\n0\r\n\r\n"));
  BOOST_TEST(!out.error);
  BOOST_TEST(out.bodies[0] == "0123456789");
}

BOOST_AUTO_TEST_SUITE_END()
