#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "shared/icap/response_parser.hpp"
#include "shared/icap/writer.hpp"
#include "tests/unit/icap/drive.hpp"

using namespace imapav::icap;
using imapav::icap::test::driveAllWays;

namespace {

const std::string kResHdr =
    "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: 11\r\n\r\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(response_parser)

BOOST_AUTO_TEST_CASE(continue_100) {
  const auto out = driveAllWays<ResponseParser>("ICAP/1.0 100 Continue\r\n\r\n");
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST(out.heads[0].status == 100);
  BOOST_TEST(out.heads[0].reason == "Continue");
  BOOST_TEST(out.heads[0].version == "ICAP/1.0");
  BOOST_TEST(out.transcript.ends_with("complete 0\n"));
}

BOOST_AUTO_TEST_CASE(no_content_204_with_istag) {
  const auto out = driveAllWays<ResponseParser>(
      "ICAP/1.0 204 No Content\r\nISTag: \"imapav-27000\"\r\nServer: imapav\r\n\r\n");
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST(out.heads[0].status == 204);
  BOOST_TEST(*out.heads[0].headers.find("istag") == "\"imapav-27000\"");
  BOOST_TEST(out.heads[0].encapsulated.format() == "");
  BOOST_TEST(out.bodies == std::vector<std::string>{""}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ok_200_with_res_hdr_and_body) {
  const std::string in = "ICAP/1.0 200 OK\r\nISTag: \"x\"\r\nEncapsulated: res-hdr=0, res-body=" +
                         std::to_string(kResHdr.size()) + "\r\n\r\n" + kResHdr +
                         "b\r\nhello world\r\n0\r\n\r\n";
  const auto out = driveAllWays<ResponseParser>(in);
  BOOST_REQUIRE(out.heads.size() == 1u);
  BOOST_TEST(out.heads[0].status == 200);
  BOOST_TEST(out.heads[0].resHdr == kResHdr);
  BOOST_TEST(out.heads[0].reqHdr == "");
  BOOST_TEST(out.bodies == std::vector<std::string>{"hello world"}, boost::test_tools::per_element());
  BOOST_TEST(out.unconsumed == 0u);
}

BOOST_AUTO_TEST_CASE(ok_200_with_null_body_and_500) {
  const std::string ok = "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, null-body=" +
                         std::to_string(kResHdr.size()) + "\r\n\r\n" + kResHdr;
  const std::string err = "ICAP/1.0 500 Server Error\r\nEncapsulated: null-body=0\r\n\r\n";
  const auto out = driveAllWays<ResponseParser>("ICAP/1.0 100 Continue\r\n\r\n" + ok + err);
  BOOST_REQUIRE(out.heads.size() == 3u);
  BOOST_TEST(out.heads[1].resHdr == kResHdr);
  BOOST_TEST(!out.heads[1].encapsulated.hasBody());
  BOOST_TEST(out.heads[2].status == 500);
  BOOST_TEST(out.heads[2].reason == "Server Error");
  BOOST_TEST(out.transcript.ends_with("complete 0\n"));
}

BOOST_AUTO_TEST_CASE(violations_header_round_trip) {
  const std::string violations = "1\r\n\teicar.com\r\n\tEicar-Signature\r\n\t0\r\n\t2";
  Headers h;
  h.add("ISTag", "\"x\"");
  h.add("X-Infection-Found", "Type=0; Resolution=2; Threat=Eicar-Signature;");
  h.add("X-Violations-Found", violations);
  std::string wire;
  appendResponseHead(wire, 200, h, EncapPart::ResHdr, kResHdr, true);
  appendChunk(wire, "blocked");
  appendLastChunk(wire);
  const auto out = driveAllWays<ResponseParser>(wire);
  BOOST_REQUIRE(out.heads.size() == 1u);
  const auto& got = out.heads[0].headers;
  BOOST_TEST(*got.find("X-Violations-Found") == violations);
  BOOST_TEST(*got.find("X-Infection-Found") == "Type=0; Resolution=2; Threat=Eicar-Signature;");
  std::string again;
  appendResponseHead(again, 200, [&] {
    Headers copy = got;
    copy.remove("Encapsulated");
    return copy;
  }(), EncapPart::ResHdr, out.heads[0].resHdr, true);
  BOOST_TEST(wire.starts_with(again));
  BOOST_TEST(out.bodies[0] == "blocked");
}

BOOST_DATA_TEST_CASE(errors,
                     boost::unit_test::data::make(std::vector<std::string>{
                         "HTTP/1.1 200 OK\r\n\r\n",
                         "ICAP/1.0\r\n\r\n",
                         "ICAP/1.0 20 OK\r\n\r\n",
                         "ICAP/1.0 2000 OK\r\n\r\n",
                         "ICAP/1.0 abc OK\r\n\r\n",
                         "ICAP/1.0 200OK\r\n\r\n",
                         "ICAP/1.0 099 Low\r\n\r\n",
                         "ICAP/1.0 200 OK\r\nISTag: \"x\"\r\n\r\n",  // no Encapsulated
                         "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0\r\n\r\n",
                         "ICAP/1.0 200 OK\r\nbroken header\r\n\r\n",
                         "ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\nq\r\n",
                         "ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\n2\r\nabc\r\n",
                         "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, null-body=4\r\n\r\nabcd",
                         "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, null-body=999999\r\n\r\n",
                     }),
                     input) {
  const auto out = driveAllWays<ResponseParser>(input);
  BOOST_TEST(out.error);
}

BOOST_AUTO_TEST_CASE(error_then_reset) {
  ResponseParser p;
  BOOST_TEST((p.feed("bogus\r\n").event == ResponseParser::Event::Error));
  BOOST_TEST(!p.errorText().empty());
  BOOST_TEST((p.feed("ICAP/1.0 100 Continue\r\n\r\n").event == ResponseParser::Event::Error));
  p.reset();
  BOOST_TEST(p.errorText().empty());
  const std::string ok = "ICAP/1.0 100 Continue\r\n\r\n";
  const auto step = p.feed(ok);
  BOOST_TEST((step.event == ResponseParser::Event::Head));
  BOOST_TEST(step.consumed == ok.size());
}

BOOST_AUTO_TEST_SUITE_END()
