#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>
#include <vector>

#include "shared/icap/http_head.hpp"
#include "shared/icap/request_parser.hpp"
#include "shared/icap/response_parser.hpp"
#include "shared/icap/writer.hpp"
#include "tests/unit/icap/drive.hpp"

using namespace imapav::icap;
using imapav::icap::test::driveAllWays;

namespace {

Headers istag() {
  Headers h;
  h.add("ISTag", "\"db-1\"");
  return h;
}

const std::string kResHdr = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";  // 38 bytes

}  // namespace

BOOST_AUTO_TEST_SUITE(writer)

BOOST_AUTO_TEST_CASE(reason_phrases) {
  const std::vector<std::pair<int, std::string>> expected{
      {100, "Continue"}, {200, "OK"}, {204, "No Content"}, {206, "Partial Content"},
      {400, "Bad Request"}, {403, "Forbidden"}, {404, "Service Not Found"},
      {405, "Method Not Allowed"}, {408, "Request Timeout"}, {409, "Conflict"},
      {413, "Request Entity Too Large"}, {500, "Server Error"},
      {501, "Method Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Overloaded"},
      {505, "ICAP Version Not Supported"}, {299, "Unknown"}};
  for (const auto& [status, reason] : expected) BOOST_TEST(reasonPhrase(status) == reason);
}

BOOST_AUTO_TEST_CASE(response_heads_exact_bytes) {
  BOOST_REQUIRE(kResHdr.size() == 38u);
  std::string out;
  appendResponseHead(out, 200, istag(), EncapPart::ResHdr, kResHdr, true);
  BOOST_TEST(out == "ICAP/1.0 200 OK\r\nISTag: \"db-1\"\r\nEncapsulated: res-hdr=0, res-body=38\r\n\r\n" +
                        kResHdr);
  out.clear();
  appendResponseHead(out, 200, istag(), EncapPart::ResHdr, kResHdr, false);
  BOOST_TEST(out == "ICAP/1.0 200 OK\r\nISTag: \"db-1\"\r\nEncapsulated: res-hdr=0, null-body=38\r\n\r\n" +
                        kResHdr);
  out.clear();
  appendResponseHead(out, 200, istag(), EncapPart::ReqHdr, "GET / HTTP/1.1\r\n\r\n", true);
  BOOST_TEST(out == "ICAP/1.0 200 OK\r\nISTag: \"db-1\"\r\nEncapsulated: req-hdr=0, req-body=18\r\n\r\n"
                    "GET / HTTP/1.1\r\n\r\n");
  out.clear();
  appendResponseHead(out, 204, istag(), EncapPart::None, "", false);
  BOOST_TEST(out == "ICAP/1.0 204 No Content\r\nISTag: \"db-1\"\r\n\r\n");
  out.clear();
  appendResponseHead(out, 100, Headers{}, EncapPart::None, "", false);
  BOOST_TEST(out == "ICAP/1.0 100 Continue\r\n\r\n");
  out = "prefix|";
  Headers options = istag();
  options.add("Methods", "RESPMOD");
  appendResponseHead(out, 200, options, EncapPart::None, "", false);
  BOOST_TEST(out == "prefix|ICAP/1.0 200 OK\r\nISTag: \"db-1\"\r\nMethods: RESPMOD\r\n"
                    "Encapsulated: null-body=0\r\n\r\n");
  out.clear();
  appendResponseHead(out, 400, Headers{}, EncapPart::None, "", false);
  BOOST_TEST(out == "ICAP/1.0 400 Bad Request\r\nEncapsulated: null-body=0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(request_heads_exact_bytes) {
  const std::string reqHdr = "GET / HTTP/1.1\r\n\r\n";  // 18 bytes
  Headers h;
  h.add("Host", "h");
  std::string out;
  appendRequestHead(out, "RESPMOD", "icap://h/avscan", h, reqHdr, kResHdr, 2);
  BOOST_TEST(out == "RESPMOD icap://h/avscan ICAP/1.0\r\nHost: h\r\n"
                    "Encapsulated: req-hdr=0, res-hdr=18, res-body=56\r\n\r\n" + reqHdr + kResHdr);
  out.clear();
  appendRequestHead(out, "REQMOD", "/x", Headers{}, reqHdr, "", 1);
  BOOST_TEST(out == "REQMOD /x ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=18\r\n\r\n" + reqHdr);
  out.clear();
  appendRequestHead(out, "RESPMOD", "/x", Headers{}, "", kResHdr, 0);
  BOOST_TEST(out == "RESPMOD /x ICAP/1.0\r\nEncapsulated: res-hdr=0, null-body=38\r\n\r\n" + kResHdr);
  out.clear();
  appendRequestHead(out, "OPTIONS", "/x", Headers{}, "", "", 0);
  BOOST_TEST(out == "OPTIONS /x ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(chunks) {
  std::string out;
  appendChunk(out, "");
  BOOST_TEST(out == "");
  appendChunk(out, "abc");
  appendChunk(out, std::string(26, 'z'));
  appendLastChunk(out);
  BOOST_TEST(out == "3\r\nabc\r\n1a\r\n" + std::string(26, 'z') + "\r\n0\r\n\r\n");
  out.clear();
  appendLastChunk(out, true);
  BOOST_TEST(out == "0; ieof\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(request_round_trip) {
  HttpHead req;
  req.startLine = "GET imap://u@h/INBOX;UIDVALIDITY=7/;UID=42 HTTP/1.1";
  req.headers.add("Host", "h");
  HttpHead res;
  res.startLine = "HTTP/1.1 200 OK";
  res.headers.add("Content-Type", "message/rfc822");
  Headers h;
  h.add("Host", "127.0.0.1");
  h.add("Allow", "204");
  h.add("Preview", "4");
  std::string wire;
  appendRequestHead(wire, "RESPMOD", "icap://127.0.0.1:1344/avscan", h, req.serialize(),
                    res.serialize(), 2);
  appendChunk(wire, "From");
  appendLastChunk(wire);
  appendChunk(wire, ": a@b\r\n\r\nbody");
  appendLastChunk(wire);
  const auto out = driveAllWays<RequestParser>(wire);
  BOOST_REQUIRE(out.heads.size() == 1u);
  const auto& head = out.heads[0];
  BOOST_TEST(head.service == "avscan");
  BOOST_TEST(head.allow204);
  BOOST_TEST((head.preview == std::optional<std::size_t>(4)));
  const auto parsedReq = parseHttpHead(head.reqHdr);
  BOOST_REQUIRE(parsedReq.has_value());
  BOOST_TEST(parsedReq->requestTarget() == "imap://u@h/INBOX;UIDVALIDITY=7/;UID=42");
  BOOST_TEST(head.resHdr == res.serialize());
  BOOST_TEST(out.transcript.ends_with("preview-end 4\ncomplete 17\n"));
  BOOST_TEST(out.bodies.back() == "From: a@b\r\n\r\nbody");
}

BOOST_AUTO_TEST_CASE(response_round_trip) {
  std::string wire;
  appendResponseHead(wire, 100, Headers{}, EncapPart::None, "", false);
  appendResponseHead(wire, 200, istag(), EncapPart::ResHdr, kResHdr, true);
  appendChunk(wire, "abc");
  appendLastChunk(wire);
  appendResponseHead(wire, 204, istag(), EncapPart::None, "", false);
  const auto out = driveAllWays<ResponseParser>(wire);
  BOOST_REQUIRE(out.heads.size() == 3u);
  BOOST_TEST(out.heads[0].status == 100);
  BOOST_TEST(out.heads[1].resHdr == kResHdr);
  BOOST_TEST(out.heads[1].encapsulated.format() == "res-hdr=0, res-body=38");
  BOOST_TEST(out.heads[2].status == 204);
  BOOST_TEST(out.bodies == (std::vector<std::string>{"", "abc", ""}), boost::test_tools::per_element());
  BOOST_TEST(out.unconsumed == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
