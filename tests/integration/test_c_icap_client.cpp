// Interoperability with the reference ICAP client: the c-icap-client tool and the
// c-icap client library (libicapapi), which the redirector will use.

extern "C" {
#include <c_icap/c-icap.h>
#include <c_icap/header.h>
#include <c_icap/net_io.h>
#include <c_icap/request.h>
#include <c_icap/simple_api.h>
}

#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>

#include "tests/integration/icapd_fixture.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

CommandResult cicapClient(const IcapdFixture& f, const std::string& in, const std::string& out,
                          const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"c-icap-client", "-i", "127.0.0.1", "-p", std::to_string(f.port()),
                                   "-s", "avscan", "-v", "-f", in, "-o", out,
                                   "-resp", "imap://bob@mail.example/INBOX;UIDVALIDITY=3/;UID=9"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return runCommand(argv, 60s);
}

struct Source {
  const std::string* data;
  std::size_t pos = 0;
};

int readSource(void* p, char* buf, int len) {
  auto* s = static_cast<Source*>(p);
  if (s->pos >= s->data->size()) return CI_EOF;  // 0 would make the library busy-loop
  const auto n = std::min(static_cast<std::size_t>(len), s->data->size() - s->pos);
  std::memcpy(buf, s->data->data() + s->pos, n);
  s->pos += n;
  return static_cast<int>(n);
}

int writeDest(void* p, char* buf, int len) {
  static_cast<std::string*>(p)->append(buf, static_cast<std::size_t>(len));
  return len;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(c_icap_client)

BOOST_AUTO_TEST_CASE(tool_clean_and_infected_with_and_without_preview) {
  IcapdFixture f;
  writeFile(f.dir().file("clean.eml"), cleanMessage("clean", 3000));
  writeFile(f.dir().file("infected.eml"), infectedMessage("bad"));
  for (const bool preview : {true, false}) {
    BOOST_TEST_CONTEXT("preview " << preview) {
      const std::vector<std::string> extra = preview ? std::vector<std::string>{} : std::vector<std::string>{"-nopreview"};
      std::filesystem::remove(f.dir().file("clean.out"));
      auto r = cicapClient(f, f.dir().file("clean.eml"), f.dir().file("clean.out"), extra);
      BOOST_TEST_MESSAGE(r.output);
      BOOST_TEST(r.exitCode == 0);
      BOOST_TEST(contains(r.output, "204"));
      BOOST_TEST(!contains(r.output, "X-Infection-Found"));

      std::filesystem::remove(f.dir().file("infected.out"));  // c-icap-client will not overwrite
      r = cicapClient(f, f.dir().file("infected.eml"), f.dir().file("infected.out"), extra);
      BOOST_TEST_MESSAGE(r.output);
      BOOST_TEST(r.exitCode == 0);
      BOOST_TEST(contains(r.output, "X-Infection-Found"));
      BOOST_TEST(contains(r.output, "Eicar-Test-Signature"));
      const auto notice = readFile(f.dir().file("infected.out"));
      BOOST_TEST(contains(notice, "Subject: bad\r\n"));
      BOOST_TEST(contains(notice, "Eicar-Test-Signature"));
      BOOST_TEST(!contains(notice, "See attachment."));
    }
  }
  f.stop();
  BOOST_TEST(f.query("SELECT id FROM scan_events").size() == 4u);
}

BOOST_AUTO_TEST_CASE(library_many_requests_over_one_connection) {
  IcapdFixture f;
  ci_client_library_init();
  ci_connection_t* conn = ci_connect_to("127.0.0.1", f.port(), AF_INET, 10);
  BOOST_REQUIRE(conn);
  ci_request_t* req = ci_client_request(conn, "127.0.0.1", "avscan");
  BOOST_REQUIRE(req);
  BOOST_REQUIRE_EQUAL(ci_client_get_server_options(req, 10), 1);
  BOOST_TEST(req->preview == 1024);

  const std::string clean = cleanMessage("clean", 6000);  // longer than the preview
  const std::string small = cleanMessage("small", 100);   // fits in the preview: ieof
  const std::string infected = infectedMessage("bad");
  for (int i = 0; i < 30; ++i) {
    const std::string& msg = i % 3 == 0 ? infected : (i % 3 == 1 ? clean : small);
    BOOST_TEST_CONTEXT("request " << i) {
      ci_client_request_reuse(req);
      req->type = ICAP_RESPMOD;
      req->allow204 = 1;  // reset by ci_client_request_reuse
      req->preview = (i % 2 == 0) ? 1024 : -1;
      ci_headers_list_t* reqh = ci_headers_create();
      ci_headers_list_t* resh = ci_headers_create();
      const std::string line = "GET imap://bob@mail.example/INBOX;UIDVALIDITY=3/;UID=" + std::to_string(i) + " HTTP/1.1";
      ci_headers_add(reqh, line.c_str());
      ci_headers_add(resh, "HTTP/1.1 200 OK");
      ci_headers_add(resh, "Content-Type: message/rfc822");
      const std::string len = "Content-Length: " + std::to_string(msg.size());
      ci_headers_add(resh, len.c_str());
      Source src{&msg};
      std::string out;
      const int status = ci_client_icapfilter(req, 20, reqh, resh, &src, readSource, &out, writeDest);
      ci_headers_destroy(reqh);
      ci_headers_destroy(resh);
      if (&msg == &infected) {
        BOOST_TEST(status == 200);
        const char* virus = ci_headers_value(req->response_header, "X-Virus-ID");
        BOOST_TEST((virus && contains(virus, "Eicar-Test-Signature")));
        BOOST_TEST(contains(out, "Subject: bad\r\n"));
        BOOST_TEST(contains(out, "Eicar-Test-Signature"));
        ci_headers_list_t* http = ci_http_response_headers(req);
        const char* cl = http ? ci_headers_value(http, "Content-Length") : nullptr;
        BOOST_TEST((cl && std::stoul(cl) == out.size()));
      } else {
        BOOST_TEST(status == 204);
        BOOST_TEST(out.empty());
      }
    }
  }
  // ci_request_destroy frees the connection struct but leaves the socket open, and
  // ci_connection_destroy would free it a second time: close the socket ourselves.
  ::close(conn->fd);
  ci_request_destroy(req);
  ci_client_library_release();
  f.stop();
  BOOST_TEST(f.query("SELECT id FROM scan_events").size() == 30u);
}

BOOST_AUTO_TEST_SUITE_END()
