// The redirector's ICAP client (libicapapi) against the real imapav-icapd, dead ports,
// silent peers and a lying fake server.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <boost/test/unit_test.hpp>
#include <stdexcept>
#include <thread>

#include "redirector/icap_client.hpp"
#include "tests/integration/icapd_fixture.hpp"

using namespace imapav::redirector;
using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }
bool contains(const std::shared_ptr<MessageBuffer>& hay, const std::string& needle) {
  return hay && hay->toString().find(needle) != std::string::npos;
}

std::string url(std::uint16_t port) { return "icap://127.0.0.1:" + std::to_string(port) + "/avscan"; }
std::string name(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

IcapClientOptions options(std::vector<std::string> servers, std::chrono::seconds timeout = 10s) {
  IcapClientOptions o;
  o.servers = std::move(servers);
  o.timeout = timeout;
  o.retryAfter = 60s;
  return o;
}

ScanRequest request(const std::string& message, unsigned uid = 42) {
  return ScanRequest{MessageBuffer::fromString(message), "imap://alice@mail.example/INBOX;UIDVALIDITY=7/;UID=" + std::to_string(uid),
                     "192.0.2.10", "alice"};
}

IcapServerHealth healthOf(const IcapClient& c, std::uint16_t port) {
  for (auto& h : c.health()) {
    if (h.server == name(port)) return h;
  }
  BOOST_FAIL("no health entry for port " << port);
  return {};
}

// A socket that accepts TCP connections (the kernel's backlog) and never reads or answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0);
    BOOST_REQUIRE(::listen(fd_, 16) == 0);
    BOOST_REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::uint16_t port() const { return port_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// Reads from fd until `end` is in got (or 10 s pass); returns got with what came.
std::string readUntil(int fd, const std::string& end, std::string got = {}) {
  char buf[4096];
  while (!contains(got, end)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

void writeAll(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const auto n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// Answers OPTIONS, then every RESPMOD with a 200 whose body is either shorter than its
// Content-Length claims (Lie: a server bug the client must not pass on as a message) or
// trickles one byte every 100 ms for 30 s (Trickle: each wait is short, the whole is not).
// headersSeen() tells whether a RESPMOD's headers arrived.
class LyingServer {
 public:
  enum class Mode { Lie, Trickle };
  explicit LyingServer(Mode mode = Mode::Lie) : mode_(mode), thread_([this] { run(); }) {}
  ~LyingServer() {
    stop_ = true;
    thread_.join();
  }
  LyingServer(const LyingServer&) = delete;
  LyingServer& operator=(const LyingServer&) = delete;
  std::uint16_t port() const { return listener_.port(); }
  std::string lastRequest() const {
    const std::lock_guard lock(mutex_);
    return last_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int fd = ::accept(listener_.fd(), nullptr, nullptr);
      if (fd < 0) continue;
      serve(fd);
      ::close(fd);
    }
  }
  void serve(int fd) {
    if (!contains(readUntil(fd, "\r\n\r\n"), "OPTIONS")) return;
    writeAll(fd,
             "ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nISTag: \"lying\"\r\nMax-Connections: 3\r\n"
             "Options-TTL: 60\r\nEncapsulated: null-body=0\r\n\r\n");
    for (;;) {
      std::string req = readUntil(fd, "\r\n\r\n");
      if (!contains(req, "RESPMOD")) return;
      headersSeen_ = true;
      req = readUntil(fd, "\r\n0\r\n\r\n", std::move(req));
      {
        const std::lock_guard lock(mutex_);
        last_ = req;
      }
      const std::string http = "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: 1000\r\n\r\n";
      const std::string head = "ICAP/1.0 200 OK\r\nISTag: \"lying\"\r\nEncapsulated: res-hdr=0, res-body=" +
                               std::to_string(http.size()) + "\r\n\r\n" + http;
      if (mode_ == Mode::Lie) {
        writeAll(fd, head + "a\r\nshort body\r\n0\r\n\r\n");
        continue;
      }
      writeAll(fd, head);
      for (int i = 0; i < 300 && !stop_; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (::send(fd, "1\r\nx\r\n", 6, MSG_NOSIGNAL) != 6) return;
      }
      return;
    }
  }

 public:
  bool headersSeen() const { return headersSeen_; }

 private:
  Mode mode_;
  std::atomic<bool> headersSeen_{false};

  SilentListener listener_;
  mutable std::mutex mutex_;
  std::string last_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(icap_client)

BOOST_AUTO_TEST_CASE(urls_are_checked) {
  const auto u = parseIcapUrl("icap://scan.example:1345/avscan");
  BOOST_REQUIRE(u);
  BOOST_TEST(u->host == "scan.example");
  BOOST_TEST(u->port == 1345);
  BOOST_TEST(u->service == "avscan");
  BOOST_TEST(parseIcapUrl("icap://scan.example/avscan")->port == 1344);
  BOOST_TEST(parseIcapUrl("icap://[::1]:99/s")->host == "::1");
  for (const char* bad : {"http://x/avscan", "icap://x", "icap://x/", "icap://:1344/s", "icap://x:0/s",
                          "icap://x:70000/s", "icap://x:/s", "icap://a b/s", "icap://[::1/s"}) {
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!parseIcapUrl(bad)); }
  }
  BOOST_CHECK_THROW(IcapClient(options({"icap://nope"})), std::invalid_argument);
  IcapClient none(options({}));
  const auto r = none.scan(request(cleanMessage()));
  BOOST_TEST((r.status == ScanStatus::Failed));
}

BOOST_AUTO_TEST_CASE(clean_message_is_clean_and_logged_with_identity) {
  IcapdFixture f;
  IcapClient client(options({url(f.port())}));
  const std::string msg = cleanMessage("hello", 6000);
  const auto r = client.scan(request(msg));
  BOOST_TEST_MESSAGE(r.failure);
  BOOST_TEST((r.status == ScanStatus::Clean));
  BOOST_TEST(r.verdict == "clean");
  BOOST_TEST(r.action == "pass");
  BOOST_TEST(!r.content);
  BOOST_TEST(r.server == name(f.port()));
  const auto h = healthOf(client, f.port());
  BOOST_TEST(h.up);
  BOOST_TEST(!h.istag.empty());
  BOOST_TEST(h.maxConnections == 200u);
  BOOST_TEST(h.optionsTtl.count() == 3600);
  BOOST_TEST(h.connectionsOpened == 1u);
  BOOST_TEST(h.idleConnections == 1u);
  f.stop();
  const auto rows = f.query("SELECT imap_url, client_ip, user, size, verdict FROM scan_events");
  BOOST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0].at("imap_url") == "imap://alice@mail.example/INBOX;UIDVALIDITY=7/;UID=42");
  BOOST_TEST(rows[0].at("client_ip") == "192.0.2.10");
  BOOST_TEST(rows[0].at("user") == "alice");
  BOOST_TEST(rows[0].at("size") == std::to_string(msg.size()));  // the whole message, no preview
  BOOST_TEST(rows[0].at("verdict") == "clean");
}

BOOST_AUTO_TEST_CASE(infected_message_is_replaced_by_a_notice) {
  IcapdFixture f;
  IcapClient client(options({url(f.port())}));
  for (int i = 0; i < 2; ++i) {  // the second over the pooled connection
    const auto r = client.scan(request(infectedMessage("bad invoice")));
    BOOST_TEST((r.status == ScanStatus::Replaced));
    BOOST_TEST(r.verdict == "infected");
    BOOST_TEST(r.action == "replace");
    BOOST_TEST(contains(r.threats, "Eicar"));
    BOOST_TEST(contains(r.content, "Subject: bad invoice\r\n"));
    BOOST_TEST(contains(r.content, "Eicar"));
    BOOST_TEST(!contains(r.content, "See attachment."));
  }
  BOOST_TEST(healthOf(client, f.port()).connectionsOpened == 1u);
}

BOOST_AUTO_TEST_CASE(scan_error_with_fail_mode_pass_is_passed_unscanned) {
  IcapdFixture f(std::map<std::string, std::string>{
      {"policy.fail_mode", "pass"}, {"scan.max_file_size", "4k"}, {"scan.max_scan_size", "4k"}});
  IcapClient client(options({url(f.port())}));
  const auto r = client.scan(request(cleanMessage("big", 20000)));
  BOOST_TEST_MESSAGE(r.failure);
  BOOST_TEST((r.status == ScanStatus::PassedUnscanned));
  BOOST_TEST(r.verdict == "error");
  BOOST_TEST(r.action == "pass-unscanned");
  BOOST_TEST(!r.errorClass.empty());
  BOOST_TEST(!r.content);  // a 204: the caller delivers its original
}

BOOST_AUTO_TEST_CASE(eight_threads_share_a_small_pool) {
  IcapdFixture f;
  auto o = options({url(f.port())});
  o.maxConnectionsPerServer = 2;
  IcapClient client(o);
  const std::string clean = cleanMessage("clean", 3000);
  const std::string infected = infectedMessage("bad");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (unsigned i = 0; i < 10; ++i) {
        const bool bad = (t + i) % 4 == 0;
        const auto r = client.scan(request(bad ? infected : clean, t * 100 + i));
        if (r.status != (bad ? ScanStatus::Replaced : ScanStatus::Clean)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(wrong.load() == 0);
  const auto h = healthOf(client, f.port());
  BOOST_TEST(h.connectionsOpened >= 1u);
  BOOST_TEST(h.connectionsOpened <= 2u);
  BOOST_TEST(h.openConnections <= 2u);
  f.stop();
  // Each connection has its own source port: the server saw at most two.
  const auto rows = f.query("SELECT COUNT(*) AS n, COUNT(DISTINCT gateway) AS g FROM scan_events");
  BOOST_REQUIRE(rows.size() == 1u);
  BOOST_TEST(rows[0].at("n") == "80");
  BOOST_TEST(std::stoi(rows[0].at("g")) <= 2);
}

BOOST_AUTO_TEST_CASE(options_are_sent_again_when_their_ttl_expires) {
  IcapdFixture f(std::map<std::string, std::string>{{"icap.options_ttl", "1"}});
  IcapClient client(options({url(f.port())}));
  BOOST_TEST((client.scan(request(cleanMessage())).status == ScanStatus::Clean));
  BOOST_TEST(healthOf(client, f.port()).optionsSent == 1u);
  BOOST_TEST((client.scan(request(cleanMessage())).status == ScanStatus::Clean));
  std::this_thread::sleep_for(1100ms);
  BOOST_TEST((client.scan(request(cleanMessage())).status == ScanStatus::Clean));
  const auto h = healthOf(client, f.port());
  BOOST_TEST(h.optionsSent == 2u);
  BOOST_TEST(h.connectionsOpened == 1u);  // on the same connection
}

BOOST_AUTO_TEST_CASE(dead_server_is_skipped_until_retry_after) {
  IcapdFixture f;
  const std::uint16_t dead = freePort();  // nothing listens there
  auto o = options({url(dead), url(f.port())});
  o.retryAfter = 2s;
  IcapClient client(o);
  for (unsigned i = 0; i < 5; ++i) {
    const auto r = client.scan(request(cleanMessage(), i));
    BOOST_TEST((r.status == ScanStatus::Clean));
    BOOST_TEST(r.server == name(f.port()));
  }
  // Only the first request tried to connect to the dead server.
  auto h = healthOf(client, dead);
  BOOST_TEST(!h.up);
  BOOST_TEST(h.connectAttempts == 1u);
  BOOST_TEST(contains(h.lastFailure, "cannot connect"));
  std::this_thread::sleep_for(2100ms);
  BOOST_TEST((client.scan(request(cleanMessage())).status == ScanStatus::Clean));
  BOOST_TEST(healthOf(client, dead).connectAttempts == 2u);  // tried again after retryAfter
  BOOST_TEST(healthOf(client, f.port()).connectionsOpened == 1u);
}

BOOST_AUTO_TEST_CASE(stopped_server_fails_over_then_fails) {
  IcapdFixture a;
  IcapdFixture b;
  IcapClient client(options({url(a.port()), url(b.port())}, 2s));
  for (unsigned i = 0; i < 3; ++i) {
    const auto r = client.scan(request(cleanMessage(), i));
    BOOST_TEST((r.status == ScanStatus::Clean));
    BOOST_TEST(r.server == name(a.port()));
  }
  a.stop();
  for (unsigned i = 0; i < 3; ++i) {
    const auto r = client.scan(request(infectedMessage(), i));
    BOOST_TEST_MESSAGE(r.failure);
    BOOST_TEST((r.status == ScanStatus::Replaced));
    BOOST_TEST(r.server == name(b.port()));
  }
  BOOST_TEST(!healthOf(client, a.port()).up);
  b.stop();
  const auto r = client.scan(request(cleanMessage()));
  BOOST_TEST((r.status == ScanStatus::Failed));
  BOOST_TEST(!r.content);
  BOOST_TEST(contains(r.failure, name(a.port()) + ": skipped"));
  BOOST_TEST(contains(r.failure, name(b.port()) + ": "));
  BOOST_TEST(r.elapsed < std::chrono::microseconds(10s));  // bounded, not a hang
  BOOST_TEST(!healthOf(client, b.port()).up);
}

BOOST_AUTO_TEST_CASE(server_that_never_answers_times_out) {
  SilentListener silent;
  IcapdFixture f;
  {
    IcapClient client(options({url(silent.port()), url(f.port())}, 1s));
    const auto r = client.scan(request(cleanMessage()));
    BOOST_TEST((r.status == ScanStatus::Clean));
    BOOST_TEST(r.server == name(f.port()));
    BOOST_TEST(contains(healthOf(client, silent.port()).lastFailure, "OPTIONS"));
  }
  IcapClient alone(options({url(silent.port())}, 1s));
  const auto r = alone.scan(request(cleanMessage()));
  BOOST_TEST((r.status == ScanStatus::Failed));
  BOOST_TEST(contains(r.failure, name(silent.port())));
  BOOST_TEST(r.elapsed >= std::chrono::microseconds(900ms));  // it did wait for the answer
  BOOST_TEST(r.elapsed < std::chrono::microseconds(10s));
}

BOOST_AUTO_TEST_CASE(trickling_answer_is_cut_at_the_deadline) {
  // libicapapi's timeout is per wait: one byte every 100 ms would keep it happy for 30 s.
  LyingServer trickler(LyingServer::Mode::Trickle);
  IcapClient client(options({url(trickler.port())}, 2s));
  const auto r = client.scan(request(cleanMessage()));
  BOOST_TEST((r.status == ScanStatus::Failed));
  BOOST_TEST_MESSAGE(r.failure);
  BOOST_TEST(contains(r.failure, "no answer within 2 s (timeout)"));
  BOOST_TEST(r.elapsed >= std::chrono::microseconds(2s));
  BOOST_TEST(r.elapsed < std::chrono::microseconds(10s));
  BOOST_TEST(!healthOf(client, trickler.port()).up);
}

BOOST_AUTO_TEST_CASE(message_is_streamed_to_the_server_while_it_arrives) {
  LyingServer server;  // records when a request's headers arrive
  IcapClient client(options({url(server.port())}, 5s));
  const std::string msg = cleanMessage("streamed", 50000);
  auto buffer = std::make_shared<MessageBuffer>(1U << 20U, "/tmp", msg.size());
  buffer->append(msg.substr(0, 1000));
  bool seenBeforeEnd = false;
  std::thread writer([&] {
    // The rest comes only once the server has the request (or after 5 s: a failure).
    for (int i = 0; i < 500 && !server.headersSeen(); ++i) std::this_thread::sleep_for(10ms);
    seenBeforeEnd = server.headersSeen();
    buffer->append(msg.substr(1000));
    buffer->finish();
  });
  ScanRequest req = request(msg);
  req.message = buffer;
  client.scan(req);  // the liar's answer is wrong: what counts is what it received, when
  writer.join();
  BOOST_TEST(seenBeforeEnd);
  BOOST_TEST(contains(server.lastRequest(), msg.substr(40000, 100)));
}

BOOST_AUTO_TEST_CASE(aborted_message_fails_without_blaming_the_server) {
  IcapdFixture f;
  IcapClient client(options({url(f.port())}, 5s));
  const std::string msg = cleanMessage("abandoned", 50000);
  auto buffer = std::make_shared<MessageBuffer>(1U << 20U, "/tmp", msg.size());
  buffer->append(msg.substr(0, 20000));
  std::thread writer([&] {
    std::this_thread::sleep_for(200ms);
    buffer->abort("client closed");
  });
  ScanRequest req = request(msg);
  req.message = buffer;
  const auto r = client.scan(req);
  writer.join();
  BOOST_TEST((r.status == ScanStatus::Failed));
  BOOST_TEST(contains(r.failure, "message aborted: client closed"));
  BOOST_TEST(healthOf(client, f.port()).up);
  BOOST_TEST((client.scan(request(msg)).status == ScanStatus::Clean));  // and it still serves
}

BOOST_AUTO_TEST_CASE(a_mail_server_stall_is_not_held_against_the_icap_server) {
  // The message stops arriving for longer than imapav-icapd waits for request bytes: its
  // 408 comes from the slow mail server, so the client tries again with the whole message.
  IcapdFixture f(std::map<std::string, std::string>{{"icap.read_timeout", "1s"}});
  IcapClient client(options({url(f.port())}, 5s));
  const std::string msg = cleanMessage("stalled", 50000);
  auto buffer = std::make_shared<MessageBuffer>(1U << 20U, "/tmp", msg.size());
  buffer->append(msg.substr(0, 20000));
  std::thread writer([&] {
    std::this_thread::sleep_for(2500ms);
    buffer->append(msg.substr(20000));
    buffer->finish();
  });
  ScanRequest req = request(msg);
  req.message = buffer;
  const auto r = client.scan(req);
  writer.join();
  BOOST_TEST_MESSAGE(r.failure);
  BOOST_TEST((r.status == ScanStatus::Clean));
  BOOST_TEST(healthOf(client, f.port()).up);
  BOOST_TEST(healthOf(client, f.port()).connectionsOpened == 2u);  // the first one was dropped
}

BOOST_AUTO_TEST_CASE(truncated_answer_is_a_failure_not_content) {
  LyingServer liar;
  IcapdFixture f;
  IcapClient client(options({url(liar.port()), url(f.port())}, 5s));
  const auto r = client.scan(request(cleanMessage()));
  BOOST_TEST((r.status == ScanStatus::Clean));
  BOOST_TEST(r.server == name(f.port()));  // the liar's 10 bytes were not taken
  BOOST_TEST(contains(healthOf(client, liar.port()).lastFailure, "Content-Length"));
  IcapClient alone(options({url(liar.port())}, 5s));
  const auto only = alone.scan(request(cleanMessage()));
  BOOST_TEST((only.status == ScanStatus::Failed));
  BOOST_TEST(!only.content);
  BOOST_TEST(contains(only.failure, "disagrees with Content-Length 1000"));
  // What went on the wire: no preview, 204 allowed, the identity headers, the whole body.
  const std::string sent = liar.lastRequest();
  const std::string head = sent.substr(0, sent.find("\r\n\r\n"));
  BOOST_TEST_MESSAGE(head);
  BOOST_TEST(contains(head, "RESPMOD icap://127.0.0.1/avscan ICAP/1.0"));
  BOOST_TEST(!contains(head, "Preview:"));
  BOOST_TEST(contains(head, "Allow: 204"));
  BOOST_TEST(contains(head, "X-Client-IP: 192.0.2.10"));
  BOOST_TEST(contains(head, "X-Authenticated-User: YWxpY2U="));
  BOOST_TEST(contains(sent, "GET imap://alice@mail.example/INBOX;UIDVALIDITY=7/;UID=42 HTTP/1.1\r\n"));
  BOOST_TEST(contains(sent, "Content-Length: " + std::to_string(cleanMessage().size()) + "\r\n"));
  BOOST_TEST(contains(sent, "\r\n0\r\n\r\n"));
}

BOOST_AUTO_TEST_SUITE_END()
