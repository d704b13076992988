// imapav-icapd as gateways see it: the real binary on a free port, raw ICAP over TCP.

#include <openssl/evp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <thread>

#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/samples.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;
using Settings = std::map<std::string, std::string>;

namespace {

std::string sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string value(const IcapResponse& r, const std::string& name) {
  const auto* v = r.header(name);
  return v ? *v : std::string("<missing>");
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(icapd)

BOOST_AUTO_TEST_CASE(options_announce_the_service) {
  IcapdFixture f;
  IcapConnection c(f.port());
  BOOST_REQUIRE(c.send("OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n"));
  auto r = c.read();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.status == 200);
  BOOST_TEST(contains(value(*r, "Methods"), "RESPMOD"));
  BOOST_TEST(contains(value(*r, "Methods"), "REQMOD"));
  const auto istag = value(*r, "ISTag");
  BOOST_TEST(istag.size() >= 3);
  BOOST_TEST(istag.size() <= 34);
  BOOST_TEST(istag.front() == '"');
  BOOST_TEST(istag.back() == '"');
  BOOST_TEST(value(*r, "Allow") == "204");
  BOOST_TEST(value(*r, "Preview") == "1024");
  BOOST_TEST(value(*r, "Transfer-Preview") == "*");
  BOOST_TEST(value(*r, "Max-Connections") == "200");
  BOOST_TEST(value(*r, "Options-TTL") == "3600");
  BOOST_TEST(r->header("Service") != nullptr);
  BOOST_TEST(value(*r, "Encapsulated") == "null-body=0");
  BOOST_TEST(r->body.empty());
}

BOOST_AUTO_TEST_CASE(clean_message_gets_204_when_allowed) {
  IcapdFixture f;
  RespmodRequest req;
  req.message = cleanMessage();
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 204);
  BOOST_TEST(value(r, "X-Imapav-Verdict") == "clean");
  BOOST_TEST(r.header("Encapsulated") == nullptr);  // RFC 3507 errata: none on 204
  BOOST_TEST(r.header("X-Infection-Found") == nullptr);
}

BOOST_AUTO_TEST_CASE(clean_message_comes_back_whole_without_allow_204) {
  IcapdFixture f;
  RespmodRequest req;
  req.message = cleanMessage("whole", 20000);
  req.allow204 = false;
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(r.body == req.message);
  BOOST_TEST(contains(r.head.resHdr, "Content-Length: " + std::to_string(req.message.size()) + "\r\n"));
  BOOST_TEST(value(r, "X-Imapav-Action") == "pass");
}

BOOST_AUTO_TEST_CASE(infected_message_is_replaced_by_a_notice) {
  IcapdFixture f;
  RespmodRequest req;
  req.message = infectedMessage("Invoice 2026-11");
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(contains(value(r, "X-Infection-Found"), "Type=0; Resolution=2; Threat=Eicar-Test-Signature"));
  BOOST_TEST(contains(value(r, "X-Virus-ID"), "Eicar-Test-Signature"));
  BOOST_TEST(value(r, "X-Violations-Found").substr(0, 3) == "1\r\n");
  BOOST_TEST(value(r, "X-Imapav-Verdict") == "infected");
  BOOST_TEST(value(r, "X-Imapav-Action") == "replace");
  BOOST_TEST(r.head.encapsulated.resHdr.has_value());
  BOOST_TEST(r.head.encapsulated.resBody.has_value());
  BOOST_TEST(contains(r.head.resHdr, "Content-Length: " + std::to_string(r.body.size()) + "\r\n"));
  // The notice keeps the identifying headers and names the threat ...
  BOOST_TEST(contains(r.body, "From: Mallory <mallory@example.com>\r\n"));
  BOOST_TEST(contains(r.body, "To: Bob <bob@example.net>\r\n"));
  BOOST_TEST(contains(r.body, "Cc: carol@example.net\r\n"));
  BOOST_TEST(contains(r.body, "Subject: Invoice 2026-11\r\n"));
  BOOST_TEST(contains(r.body, "Date: Sat, 28 Nov 2026 09:05:00 +0000\r\n"));
  BOOST_TEST(contains(r.body, "Message-ID: <infected-1@example.com>\r\n"));
  BOOST_TEST(contains(r.body, "Eicar-Test-Signature"));
  // ... and holds nothing of the original content.
  BOOST_TEST(!contains(r.body, "See attachment."));
  BOOST_TEST(!contains(r.body, "WDVPIVAlQEFQ"));  // start of EICAR in base64
  BOOST_TEST(!contains(r.body, "boundary="));
}

BOOST_AUTO_TEST_CASE(two_threats_are_all_named) {
  IcapdFixture f;
  RespmodRequest req;
  req.message = cleanMessage("two", 10) + "IMAPAV-TEST-VIRUS-MARKER\r\nIMAPAV-TEST-VIRUS-SECOND\r\n";
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(contains(value(r, "X-Virus-ID"), "Imapav.Test.Marker"));
  BOOST_TEST(contains(value(r, "X-Virus-ID"), "Imapav.Test.Second"));
  BOOST_TEST(value(r, "X-Violations-Found").substr(0, 3) == "2\r\n");
}

BOOST_AUTO_TEST_CASE(preview_with_ieof_is_answered_at_once) {
  IcapdFixture f;
  for (const bool infected : {false, true}) {
    RespmodRequest req;
    req.message = infected ? infectedMessage() : cleanMessage();
    req.preview = 4096;  // the whole message fits: "0; ieof"
    req.allow204 = false;  // 204 is still allowed in answer to a complete preview
    IcapConnection c(f.port());
    BOOST_REQUIRE(c.send(buildRequest(req)));
    auto r = c.read();
    BOOST_REQUIRE_MESSAGE(r, c.error());
    BOOST_TEST(r->head.status == (infected ? 200 : 204));
  }
}

BOOST_AUTO_TEST_CASE(preview_without_ieof_gets_100_continue) {
  IcapdFixture f;
  for (const bool infected : {false, true}) {
    RespmodRequest req;
    req.message = infected ? infectedMessage() : cleanMessage("long", 5000);
    req.preview = 100;
    auto r = f.exchange(req);  // asserts the 100 Continue
    BOOST_TEST(r.head.status == (infected ? 200 : 204));
    if (infected) BOOST_TEST(contains(value(r, "X-Virus-ID"), "Eicar-Test-Signature"));
  }
}

BOOST_AUTO_TEST_CASE(pipelined_requests_on_one_connection) {
  IcapdFixture f;
  IcapConnection c(f.port());
  RespmodRequest clean, infected;
  clean.message = cleanMessage();
  infected.message = infectedMessage();
  // Three requests in one write; answers must come in order.
  BOOST_REQUIRE(c.send(buildRequest(clean) + buildRequest(infected) + buildRequest(clean)));
  for (const int expected : {204, 200, 204}) {
    auto r = c.read();
    BOOST_REQUIRE_MESSAGE(r, c.error());
    BOOST_TEST(r->head.status == expected);
  }
  // And then many in sequence on the same connection.
  for (int i = 0; i < 40; ++i) {
    const bool bad = i % 4 == 0;
    BOOST_REQUIRE(c.send(buildRequest(bad ? infected : clean)));
    auto r = c.read();
    BOOST_REQUIRE_MESSAGE(r, c.error());
    BOOST_TEST(r->head.status == (bad ? 200 : 204));
  }
}

BOOST_AUTO_TEST_CASE(chunk_extensions_and_odd_chunking_are_accepted) {
  IcapdFixture f;
  const std::string msg = infectedMessage();
  std::string req =
      "RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nAllow: 204\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\n"
      "HTTP/1.1 200 OK\r\n\r\n";
  // One-byte chunks for the first 50 bytes, with extensions, then the rest.
  for (std::size_t i = 0; i < 50; ++i) req += "1;name=value\r\n" + msg.substr(i, 1) + "\r\n";
  char size[32];
  std::snprintf(size, sizeof(size), "%zX ; ext\r\n", msg.size() - 50);
  req += size + msg.substr(50) + "\r\n0\r\n\r\n";
  IcapConnection c(f.port());
  BOOST_REQUIRE(c.send(req));
  auto r = c.read();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.status == 200);
  BOOST_TEST(contains(value(*r, "X-Virus-ID"), "Eicar"));
}

BOOST_AUTO_TEST_CASE(reqmod_upload_is_scanned) {
  IcapdFixture f;
  RespmodRequest req;
  req.method = "REQMOD";
  req.message = infectedMessage();
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(r.head.encapsulated.reqHdr.has_value());
  BOOST_TEST(r.head.encapsulated.reqBody.has_value());
  BOOST_TEST(contains(r.head.reqHdr, "Content-Length: " + std::to_string(r.body.size()) + "\r\n"));
  BOOST_TEST(contains(r.body, "Eicar-Test-Signature"));
  req.message = cleanMessage();
  BOOST_TEST(f.exchange(req).head.status == 204);
}

struct ErrorCase {
  std::string name;
  std::string request;
  int status;
};

BOOST_AUTO_TEST_CASE(protocol_errors_get_their_status_and_close) {
  IcapdFixture f(Settings{{"icap.max_header_size", "4k"}, {"icap.max_body_size", "64k"}});
  RespmodRequest big;
  big.message = cleanMessage("big", 100000);
  const std::vector<ErrorCase> cases = {
      {"unknown service", "OPTIONS icap://127.0.0.1/nosuch ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n", 404},
      {"unknown method", "FROB icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n", 501},
      {"version", "OPTIONS icap://127.0.0.1/avscan ICAP/2.0\r\nEncapsulated: null-body=0\r\n\r\n", 505},
      {"garbage", "hello there\r\n\r\n", 400},
      {"no encapsulated", "RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\n\r\n", 400},
      {"bad chunk", "RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: res-body=0\r\n\r\nzz\r\n", 400},
      {"header too large", "OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n", 413},
      {"body too large", buildRequest(big), 413},
      {"reqmod with res-body", "REQMOD icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: res-body=0\r\n\r\n0\r\n\r\n", 400},
  };
  for (const auto& ec : cases) {
    BOOST_TEST_CONTEXT(ec.name) {
      IcapConnection c(f.port());
      c.send(ec.request);
      auto r = c.read();
      BOOST_REQUIRE_MESSAGE(r, c.error());
      BOOST_TEST(r->head.status == ec.status);
      BOOST_TEST(value(*r, "Connection") == "close");
      BOOST_TEST(r->header("ISTag") != nullptr);
      BOOST_TEST(c.closedByPeer());
    }
  }
  // The server is still fine afterwards.
  RespmodRequest ok;
  ok.message = cleanMessage();
  BOOST_TEST(f.exchange(ok).head.status == 204);
}

BOOST_AUTO_TEST_CASE(stalled_request_gets_408) {
  IcapdFixture f(Settings{{"icap.read_timeout", "1s"}});
  RespmodRequest req;
  req.message = cleanMessage();
  const auto full = buildRequest(req);
  IcapConnection c(f.port());
  BOOST_REQUIRE(c.send(full.substr(0, full.size() / 2)));
  const auto started = std::chrono::steady_clock::now();
  auto r = c.read(10s);
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.status == 408);
  BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
  BOOST_TEST(c.closedByPeer());
}

BOOST_AUTO_TEST_CASE(a_trickling_request_hits_the_request_deadline) {
  // One byte every 200 ms never trips the 1 s read timeout, but the whole request may
  // take 2 s at most (slowloris).
  IcapdFixture f(Settings{{"icap.read_timeout", "1s"}, {"icap.request_timeout", "2s"}});
  RespmodRequest req;
  req.message = cleanMessage();
  const auto full = buildRequest(req);
  IcapConnection c(f.port());
  const auto started = std::chrono::steady_clock::now();
  std::optional<IcapResponse> r;
  for (std::size_t i = 0; i < full.size() && std::chrono::steady_clock::now() - started < 8s; ++i) {
    if (!c.send(full.substr(i, 1))) break;
    r = c.read(200ms);
    if (r) break;
  }
  BOOST_REQUIRE_MESSAGE(r, "no answer to the trickling request");
  BOOST_TEST(r->head.status == 408);
  const auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST((took >= 1900ms && took < 5s));
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_get_503) {
  IcapdFixture f(Settings{{"icap.max_connections", "1"}});
  const std::string options = "OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n";
  // The fixture's start-up probe may still hold the slot for a moment: retry until the
  // first connection is served; then it certainly holds the only slot.
  std::unique_ptr<IcapConnection> held;
  for (int i = 0; i < 50 && !held; ++i) {
    auto c = std::make_unique<IcapConnection>(f.port());
    BOOST_REQUIRE(c->send(options));
    auto r = c->read();
    BOOST_REQUIRE(r);
    if (r->head.status == 200) held = std::move(c);
    else std::this_thread::sleep_for(100ms);
  }
  BOOST_REQUIRE(held);
  IcapConnection& first = *held;
  IcapConnection second(f.port());
  second.send(options);
  auto r = second.read();
  BOOST_REQUIRE_MESSAGE(r, second.error());
  BOOST_TEST(r->head.status == 503);
  BOOST_TEST(value(*r, "Connection") == "close");
  // The first connection still works.
  BOOST_REQUIRE(first.send(options));
  auto again = first.read();
  BOOST_REQUIRE(again);
  BOOST_TEST(again->head.status == 200);
}

BOOST_AUTO_TEST_CASE(scan_errors_follow_the_fail_mode) {
  // A file-size limit below the message: libclamav reports the limit, which is a
  // too_large scan error, never "clean".
  const std::string msg = cleanMessage("too big to scan", 20000);
  {
    IcapdFixture f(Settings{{"scan.max_file_size", "4k"}, {"scan.max_scan_size", "4k"}, {"policy.fail_mode", "drop"}});
    RespmodRequest req;
    req.message = msg;
    auto r = f.exchange(req);
    BOOST_TEST(r.head.status == 200);
    BOOST_TEST(value(r, "X-Imapav-Verdict") == "error");
    BOOST_TEST(value(r, "X-Imapav-Error") == "too_large");
    BOOST_TEST(value(r, "X-Imapav-Action") == "replace");
    BOOST_TEST(r.header("X-Infection-Found") == nullptr);
    BOOST_TEST(contains(r.body, "Subject: too big to scan\r\n"));
    BOOST_TEST(contains(r.body, "larger than"));
    BOOST_TEST(!contains(r.body, "quick brown fox"));
    f.stop();
    auto rows = f.query("SELECT verdict, action, error_class FROM scan_events");
    BOOST_REQUIRE_EQUAL(rows.size(), 1u);
    BOOST_TEST(rows[0]["verdict"] == "error");
    BOOST_TEST(rows[0]["action"] == "replace");
    BOOST_TEST(rows[0]["error_class"] == "too_large");
  }
  {
    IcapdFixture f(Settings{{"scan.max_file_size", "4k"}, {"scan.max_scan_size", "4k"}, {"policy.fail_mode", "pass"}});
    RespmodRequest req;
    req.message = msg;
    auto r = f.exchange(req);
    BOOST_TEST(r.head.status == 204);
    BOOST_TEST(value(r, "X-Imapav-Action") == "pass-unscanned");
    BOOST_TEST(value(r, "X-Imapav-Error") == "too_large");
    req.allow204 = false;
    r = f.exchange(req);
    BOOST_TEST(r.head.status == 200);
    BOOST_TEST(r.body == msg);  // unchanged ...
    BOOST_TEST(contains(r.head.resHdr, "X-Imapav-Unscanned: too_large\r\n"));  // ... and marked
    f.stop();
    auto rows = f.query("SELECT action, error_class FROM scan_events");
    BOOST_REQUIRE_EQUAL(rows.size(), 2u);
    for (auto& row : rows) {
      BOOST_TEST(row["action"] == "pass-unscanned");
      BOOST_TEST(row["error_class"] == "too_large");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_full_scan_queue_is_an_overload_error) {
  IcapdFixture f(Settings{{"scan.threads", "1"}, {"scan.queue_timeout", "100ms"}, {"policy.fail_mode", "drop"}});
  RespmodRequest slow;
  slow.message = bigMessage(40u << 20, 1);
  IcapConnection a(f.port());
  BOOST_REQUIRE(a.send(buildRequest(slow)));
  // While a's 40 MB scan holds the only slot, a quick request waits 100 ms and is then an
  // overload error. Until a's upload has arrived the quick one may still get the slot, so
  // try a few times instead of guessing how long the upload takes.
  RespmodRequest quick;
  bool overloaded = false;
  for (int i = 0; i < 40 && !overloaded; ++i) {
    // A new message each time: a repeated one would be answered from the verdict cache,
    // which needs no slot.
    quick.message = cleanMessage("quick " + std::to_string(i));
    auto r = f.exchange(quick);
    if (value(r, "X-Imapav-Error") == "overloaded") {
      overloaded = true;
      BOOST_TEST(r.head.status == 200);
      BOOST_TEST(value(r, "X-Imapav-Action") == "replace");
      BOOST_TEST(contains(r.body, "overloaded"));
    } else {
      BOOST_TEST(r.head.status == 204);
      std::this_thread::sleep_for(50ms);
    }
  }
  BOOST_TEST(overloaded);
  auto ra = a.read(60s);
  BOOST_REQUIRE_MESSAGE(ra, a.error());
  BOOST_TEST(ra->head.status == 204);
}

BOOST_AUTO_TEST_CASE(every_scan_is_a_row_in_the_event_log) {
  IcapdFixture f;
  RespmodRequest infected;
  infected.message = infectedMessage("=?UTF-8?B?UmVjaG51bmcgZsO8ciBTaWU=?=");
  infected.extraHeaders = {{"X-Client-IP", "192.0.2.25"}, {"X-Authenticated-User", "Ym9iQGV4YW1wbGUubmV0"}};
  infected.url = "imap://bob@mail.example/Archive%202026;UIDVALIDITY=1700000000/;UID=4711";
  BOOST_TEST(f.exchange(infected).head.status == 200);
  RespmodRequest clean;
  clean.message = cleanMessage("Hi");
  BOOST_TEST(f.exchange(clean).head.status == 204);
  BOOST_TEST(f.stop() == 0);  // SIGTERM flushes the writer

  auto rows = f.query("SELECT * FROM scan_events ORDER BY id");
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  auto& a = rows[0];
  BOOST_TEST(a["gateway"] == "127.0.0.1");
  BOOST_TEST(a["service"] == "avscan");
  BOOST_TEST(a["method"] == "RESPMOD");
  BOOST_TEST(a["client_ip"] == "192.0.2.25");
  BOOST_TEST(a["user"] == "bob@example.net");
  BOOST_TEST(a["imap_url"] == infected.url);
  BOOST_TEST(a["mailbox"] == "Archive 2026");
  BOOST_TEST(a["uid_validity"] == "1700000000");
  BOOST_TEST(a["uid"] == "4711");
  BOOST_TEST(a["message_id"] == "<infected-1@example.com>");
  BOOST_TEST(a["sender"] == "mallory@example.com");
  BOOST_TEST(a["recipients"] == "bob@example.net,carol@example.net");
  BOOST_TEST(a["subject"] == "Rechnung f\xc3\xbcr Sie");
  BOOST_TEST(a["size"] == std::to_string(infected.message.size()));
  BOOST_TEST(a["sha256"] == sha256Hex(infected.message));
  BOOST_TEST(a["verdict"] == "infected");
  BOOST_TEST(contains(a["threats"], "Eicar-Test-Signature"));
  BOOST_TEST(a["action"] == "replace");
  BOOST_TEST(a["error_class"] == "");
  BOOST_TEST(std::stoll(a["scan_time_us"]) > 0);
  BOOST_TEST(contains(a["engine_version"], "1."));
  BOOST_TEST(!a["signature_version"].empty());
  auto& b = rows[1];
  BOOST_TEST(b["verdict"] == "clean");
  BOOST_TEST(b["action"] == "pass");
  BOOST_TEST(b["uid"] == "42");
  BOOST_TEST(b["user"] == "alice");  // from the URL when no header says it
  BOOST_TEST(b["subject"] == "Hi");
  BOOST_TEST(std::stoll(b["time_us"]) >= std::stoll(a["time_us"]));
}

BOOST_AUTO_TEST_CASE(istag_follows_the_signature_database) {
  IcapdFixture f;
  auto optionsTag = [&] {
    IcapConnection c(f.port());
    c.send("OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n");
    auto r = c.read();
    BOOST_REQUIRE(r);
    return value(*r, "ISTag");
  };
  const auto before = optionsTag();
  RespmodRequest req;
  req.message = cleanMessage("new threat", 10) + "IMAPAV-NEW-SIGNATURE-SAMPLE\r\n";
  BOOST_TEST(f.exchange(req).head.status == 204);  // unknown to the old signatures
  f.stop();
  std::ofstream(f.signatureDir() + "/extra.ndb")
      << "Imapav.Test.New:0:*:494d415041562d4e45572d5349474e41545552452d53414d504c45\n";
  f.start();
  const auto after = optionsTag();
  BOOST_TEST(before != after);
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(contains(value(r, "X-Virus-ID"), "Imapav.Test.New"));
  BOOST_TEST(value(r, "ISTag") == after);
}

BOOST_AUTO_TEST_CASE(refuses_to_start_without_signatures) {
  IcapdFixture f(Settings{}, false);
  for (const auto& e : std::filesystem::directory_iterator(f.signatureDir())) std::filesystem::remove(e.path());
  ChildProcess p({std::string(IMAPAV_BINARY_DIR) + "/icap-server/imapav-icapd", "--config", f.configFile()},
                 f.dir().file("refuse.log"));
  const int rc = p.wait(30s);
  BOOST_TEST(rc != 0);
  BOOST_TEST(rc != -1);
  const auto log = readFile(f.dir().file("refuse.log"));
  BOOST_TEST_MESSAGE(log);
  BOOST_TEST(contains(log, "signature"));
  BOOST_TEST(!waitForPort(f.port(), 200ms));
}

BOOST_AUTO_TEST_CASE(bad_configuration_is_a_clear_error) {
  TempDir d;
  writeFile(d.file("bad.conf"), "scan.database_dir = /tmp\nicap.listne = 127.0.0.1:1\n");
  const std::string bin = std::string(IMAPAV_BINARY_DIR) + "/icap-server/imapav-icapd";
  auto r = runCommand({bin, "--config", d.file("bad.conf")}, 20s);
  BOOST_TEST(r.exitCode == 78);
  BOOST_TEST(contains(r.output, "icap.listne"));
  writeFile(d.file("bad2.conf"), "scan.database_dir = /tmp\npolicy.fail_mode = maybe\n");
  r = runCommand({bin, "--config", d.file("bad2.conf")}, 20s);
  BOOST_TEST(r.exitCode == 78);
  BOOST_TEST(contains(r.output, "policy.fail_mode"));
  r = runCommand({bin, "--help"}, 20s);
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(contains(r.output, "--config"));
}

BOOST_AUTO_TEST_CASE(sigterm_lets_a_scan_in_flight_finish) {
  IcapdFixture f;
  RespmodRequest req;
  req.message = bigMessage(30u << 20, 2) + "\r\nIMAPAV-TEST-VIRUS-MARKER\r\n";
  IcapConnection c(f.port());
  BOOST_REQUIRE(c.send(buildRequest(req)));
  std::this_thread::sleep_for(300ms);
  std::thread stopper([&] { f.stop(); });
  auto r = c.read(60s);
  stopper.join();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.status == 200);
  BOOST_TEST(contains(value(*r, "X-Virus-ID"), "Imapav.Test.Marker"));
  BOOST_TEST(value(*r, "Connection") == "close");
  auto rows = f.query("SELECT verdict FROM scan_events");
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0]["verdict"] == "infected");
}

BOOST_AUTO_TEST_CASE(a_sigterm_right_after_start_is_still_a_graceful_stop) {
  // Threads started before the main thread waits for SIGTERM must not receive it: one that
  // did used to kill the process (exit 143) and lose the queued event row.
  for (int i = 0; i < 8; ++i) {
    BOOST_TEST_CONTEXT("run " << i) {
      IcapdFixture f;
      RespmodRequest req;
      req.message = cleanMessage();
      BOOST_TEST(f.exchange(req).head.status == 204);
      BOOST_TEST(f.stop() == 0);
      BOOST_TEST(f.query("SELECT id FROM scan_events").size() == 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(methods_not_offered_get_405) {
  IcapdFixture f(Settings{{"icap.methods", "RESPMOD"}});
  IcapConnection c(f.port());
  c.send("OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n");
  auto o = c.read();
  BOOST_REQUIRE(o);
  BOOST_TEST(value(*o, "Methods") == "RESPMOD");
  RespmodRequest req;
  req.method = "REQMOD";
  req.message = cleanMessage();
  BOOST_TEST(f.exchange(req).head.status == 405);
  req.method = "RESPMOD";
  BOOST_TEST(f.exchange(req).head.status == 204);
}

BOOST_AUTO_TEST_CASE(an_unwritable_event_log_does_not_stop_scanning) {
  IcapdFixture f(Settings{{"log.database", "/nonexistent-dir/imapav/events.sqlite"}});
  RespmodRequest req;
  req.message = infectedMessage();
  BOOST_TEST(f.exchange(req).head.status == 200);
  req.message = cleanMessage();
  BOOST_TEST(f.exchange(req).head.status == 204);
  BOOST_TEST(f.stop() == 0);
  const auto log = f.log();
  BOOST_TEST_MESSAGE(log);
  BOOST_TEST(contains(log, "/nonexistent-dir/imapav/events.sqlite"));  // said loudly, with the path
  BOOST_TEST(contains(log, "failed=2"));                                 // and the loss counted
}

BOOST_AUTO_TEST_CASE(a_body_that_cannot_be_buffered_gets_500) {
  IcapdFixture f(Settings{{"scan.spill_threshold", "1k"}, {"scan.spill_dir", "/nonexistent-dir"}});
  RespmodRequest req;
  req.message = cleanMessage("big", 5000);
  IcapConnection c(f.port());
  BOOST_REQUIRE(c.send(buildRequest(req)));
  auto r = c.read();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->head.status == 500);
  BOOST_TEST(value(*r, "Connection") == "close");
}

BOOST_AUTO_TEST_CASE(scan_time_limit_is_a_timeout_error) {
  IcapdFixture f(Settings{{"scan.max_scan_time", "1ms"}, {"policy.fail_mode", "drop"}});
  std::vector<ZipEntry> files;
  for (int i = 0; i < 3000; ++i) files.push_back({"f" + std::to_string(i) + ".txt", "x"});
  RespmodRequest req;
  req.message = mimeMessage("see attachment", "many.zip", makeZip(files));
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(value(r, "X-Imapav-Error") == "timeout");
  BOOST_TEST(contains(r.body, "took longer than allowed"));
}

BOOST_AUTO_TEST_CASE(encrypted_and_nested_archives_are_errors_not_clean) {
  IcapdFixture f(Settings{{"scan.max_recursion", "3"}, {"policy.fail_mode", "drop"}});
  RespmodRequest req;
  req.message = mimeMessage("locked", "secret.zip", makeZip({{"a.txt", "hello"}}, true));
  auto r = f.exchange(req);
  BOOST_TEST(r.head.status == 200);
  BOOST_TEST(value(r, "X-Imapav-Error") == "encrypted");
  BOOST_TEST(contains(r.body, "encrypted"));
  std::string nested = "innermost";
  for (int i = 0; i < 6; ++i) nested = makeZip({{"layer" + std::to_string(i) + ".zip", nested}});
  req.message = mimeMessage("deep", "deep.zip", nested);
  r = f.exchange(req);
  BOOST_TEST(value(r, "X-Imapav-Error") == "archive_limit");
}

BOOST_AUTO_TEST_CASE(many_gateways_at_once) {
  IcapdFixture f;
  constexpr int kGateways = 16;
  constexpr int kRequests = 12;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < kGateways; ++g) {
    threads.emplace_back([&, g] {
      IcapConnection c(f.port());
      for (int i = 0; i < kRequests; ++i) {
        const bool bad = (g + i) % 3 == 0;
        RespmodRequest req;
        // Unique content per request, as in real traffic.
        req.message = bad ? infectedMessage("bad " + std::to_string(g * 100 + i))
                          : cleanMessage("ok " + std::to_string(g * 100 + i), 2000 + static_cast<std::size_t>(i * 37));
        if (!c.send(buildRequest(req))) {
          ++wrong;
          return;
        }
        auto r = c.read(60s);
        if (!r || r->head.status != (bad ? 200 : 204)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(wrong.load() == 0);
  f.stop();
  auto rows = f.query("SELECT verdict, count(*) AS n FROM scan_events GROUP BY verdict ORDER BY verdict");
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  int infected = 0;
  for (int g = 0; g < kGateways; ++g)
    for (int i = 0; i < kRequests; ++i) infected += (g + i) % 3 == 0;
  BOOST_TEST(rows[0]["verdict"] == "clean");
  BOOST_TEST(std::stoi(rows[0]["n"]) == kGateways * kRequests - infected);
  BOOST_TEST(rows[1]["verdict"] == "infected");
  BOOST_TEST(std::stoi(rows[1]["n"]) == infected);
}

BOOST_AUTO_TEST_SUITE_END()
