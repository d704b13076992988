#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "redirector/tls.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls_certs.hpp"

using imapav::redirector::TlsConnection;
using imapav::redirector::TlsContext;
using Status = TlsConnection::Status;

namespace {

// A connected, non-blocking AF_UNIX stream pair: a is the client end, b the server end.
struct SocketPair {
  int a = -1, b = -1;
  explicit SocketPair(int sendBuffer = 0) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::runtime_error("socketpair failed");
    a = fds[0];
    b = fds[1];
    if (sendBuffer > 0) {
      for (int fd : fds) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, sizeof(sendBuffer));
    }
  }
  ~SocketPair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

short eventsFor(Status s) {
  if (s == Status::WantRead) return POLLIN;
  if (s == Status::WantWrite) return POLLOUT;
  return 0;
}

bool finished(Status s) { return s == Status::Ok || s == Status::Error; }

// Drives both handshakes to the end as a reactor would: call, then wait for what was asked.
void handshakeBoth(TlsConnection& client, int cfd, Status& c, TlsConnection& server, int sfd, Status& s) {
  c = Status::WantWrite;
  s = Status::WantRead;
  for (int round = 0; round < 100; ++round) {
    if (!finished(c)) c = client.handshake();
    if (!finished(s)) s = server.handshake();
    if (finished(c) && finished(s)) return;
    pollfd p[2] = {{finished(c) ? -1 : cfd, eventsFor(c), 0}, {finished(s) ? -1 : sfd, eventsFor(s), 0}};
    if (::poll(p, 2, 5000) <= 0) return;  // stalled: the caller's checks fail
  }
}

struct Fixture {
  imapav::test::TempDir dir;
  imapav::test::TestCerts certs = imapav::test::makeTestCerts(dir.path());
};

// One TLS pair over a socketpair, with the handshake already run.
struct Session {
  SocketPair sockets;
  TlsConnection client, server;
  Status c = Status::Error, s = Status::Error;
  Session(std::shared_ptr<TlsContext> clientCtx, std::shared_ptr<TlsContext> serverCtx,
          const std::string& serverName, int sendBuffer = 0)
      : sockets(sendBuffer),
        client(std::move(clientCtx), sockets.a, false, serverName),
        server(std::move(serverCtx), sockets.b, true, "") {
    handshakeBoth(client, sockets.a, c, server, sockets.b, s);
  }
};

// One direction's sender and receiver state for pump().
struct Flow {
  std::string data;
  std::size_t sent = 0;
  std::size_t retryLen = 0;  // after a Want*, write() must be retried with at least this much
  Status writeWait = Status::Ok, readWait = Status::Ok;
  std::string received;
};

struct PumpStats {
  unsigned wantWrite = 0, partialWrites = 0, pendingReads = 0;
};

// Moves both flows to completion with random write and read sizes; returns false on a
// stall (nothing to do and no readiness for 5 s) or an error.
bool pump(TlsConnection& client, int cfd, TlsConnection& server, int sfd, Flow& up, Flow& down,
          std::mt19937& rng, PumpStats& stats) {
  std::uniform_int_distribution<std::size_t> writeSize(1, 64 * 1024), readSize(1, 40 * 1024);
  std::string buf(40 * 1024, '\0');
  struct End {
    TlsConnection& conn;
    int fd;
    Flow& out;
    Flow& in;
  };
  End ends[2] = {{client, cfd, up, down}, {server, sfd, down, up}};
  for (int round = 0; round < 1000000; ++round) {
    bool progress = false;
    for (End& e : ends) {
      if (e.out.sent < e.out.data.size()) {
        const std::size_t left = e.out.data.size() - e.out.sent;
        const std::size_t n = std::min(left, std::max(writeSize(rng), e.out.retryLen));
        Status st = Status::Error;
        const std::size_t w = e.conn.write(e.out.data.data() + e.out.sent, n, st);
        if (st == Status::Ok) {
          if (w < n) ++stats.partialWrites;
          e.out.sent += w;
          e.out.retryLen = 0;
          e.out.writeWait = Status::Ok;
          progress = true;
        } else if (st == Status::WantRead || st == Status::WantWrite) {
          if (st == Status::WantWrite) ++stats.wantWrite;
          e.out.retryLen = n;
          e.out.writeWait = st;
        } else {
          BOOST_TEST_MESSAGE("write failed: " << e.conn.error());
          return false;
        }
      } else {
        e.out.writeWait = Status::Ok;
      }
      if (e.in.received.size() < e.in.data.size()) {
        Status st = Status::Error;
        const std::size_t r = e.conn.read(buf.data(), readSize(rng), st);
        if (st == Status::Ok) {
          e.in.received.append(buf.data(), r);
          e.in.readWait = Status::Ok;
          if (e.conn.pending()) ++stats.pendingReads;
          progress = true;
        } else if (st == Status::WantRead || st == Status::WantWrite) {
          e.in.readWait = st;
        } else {
          BOOST_TEST_MESSAGE("read failed: " << e.conn.error());
          return false;
        }
      } else {
        e.in.readWait = Status::Ok;
      }
    }
    if (up.received.size() == up.data.size() && down.received.size() == down.data.size()) return true;
    // Buffered plaintext never shows up as socket readiness: read it before waiting.
    if (progress || client.pending() || server.pending()) continue;
    pollfd p[2];
    for (int i = 0; i < 2; ++i) {
      p[i] = {ends[i].fd,
              static_cast<short>(eventsFor(ends[i].out.writeWait) | eventsFor(ends[i].in.readWait)), 0};
    }
    if (::poll(p, 2, 5000) <= 0) {
      BOOST_TEST_MESSAGE("stalled");
      return false;
    }
  }
  return false;
}

std::string randomBytes(std::size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (auto& ch : s) ch = static_cast<char>(byte(rng));
  return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(tls, Fixture)

BOOST_AUTO_TEST_CASE(handshake_verifies_ca_and_hostname) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_TEST(t.client.error() == "");
  BOOST_REQUIRE(t.c == Status::Ok);
  BOOST_REQUIRE(t.s == Status::Ok);
  BOOST_TEST(t.client.handshakeDone());
  BOOST_TEST(t.client.peerSummary().rfind("TLSv1.3 TLS_", 0) == 0, t.client.peerSummary());
  BOOST_TEST(t.server.peerSummary() == t.client.peerSummary());
}

BOOST_AUTO_TEST_CASE(handshake_verifies_ip_address) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "127.0.0.1");
  BOOST_TEST(t.client.error() == "");
  BOOST_TEST((t.c == Status::Ok && t.s == Status::Ok));
}

BOOST_AUTO_TEST_CASE(untrusted_certificate_fails) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.rogueCert, certs.rogueKey),
            "localhost");
  BOOST_TEST((t.c == Status::Error));
  BOOST_TEST(contains(t.client.error(), "certificate verify failed: "), t.client.error());
  BOOST_TEST((t.s == Status::Error));  // the client's alert reaches the server
  BOOST_TEST(contains(t.server.error(), "alert"), t.server.error());
  BOOST_TEST(t.client.peerSummary() == "");
}

BOOST_AUTO_TEST_CASE(hostname_mismatch_fails) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "imap.example.com");
  BOOST_TEST((t.c == Status::Error));
  BOOST_TEST(t.client.error() == "certificate verify failed: hostname mismatch");
}

BOOST_AUTO_TEST_CASE(ip_mismatch_fails) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "127.0.0.2");
  BOOST_TEST((t.c == Status::Error));
  BOOST_TEST(t.client.error() == "certificate verify failed: IP address mismatch");
}

BOOST_AUTO_TEST_CASE(system_store_does_not_trust_test_ca) {
  Session t(TlsContext::client("", true), TlsContext::server(certs.serverCert, certs.serverKey), "localhost");
  BOOST_TEST((t.c == Status::Error));
  BOOST_TEST(contains(t.client.error(), "certificate verify failed: "), t.client.error());
}

BOOST_AUTO_TEST_CASE(verify_off_accepts_any_certificate) {
  Session t(TlsContext::client("", false), TlsContext::server(certs.rogueCert, certs.rogueKey),
            "imap.example.com");
  BOOST_TEST(t.client.error() == "");
  BOOST_TEST((t.c == Status::Ok && t.s == Status::Ok));
}

BOOST_AUTO_TEST_CASE(verification_needs_a_server_name) {
  SocketPair sockets;
  TlsConnection client(TlsContext::client(certs.caCert, true), sockets.a, false, "");
  BOOST_TEST((client.handshake() == Status::Error));
  BOOST_TEST(contains(client.error(), "needs a server name"), client.error());
}

BOOST_AUTO_TEST_CASE(context_role_must_match) {
  SocketPair sockets;
  TlsConnection conn(TlsContext::client(certs.caCert, true), sockets.a, true, "");
  BOOST_TEST((conn.handshake() == Status::Error));
  BOOST_TEST(contains(conn.error(), "role"));
}

BOOST_AUTO_TEST_CASE(tls12_peer_is_accepted) {
  auto clientCtx = TlsContext::client(certs.caCert, true);
  SSL_CTX_set_max_proto_version(clientCtx->native(), TLS1_2_VERSION);
  Session t(clientCtx, TlsContext::server(certs.serverCert, certs.serverKey), "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  BOOST_TEST(t.client.peerSummary().rfind("TLSv1.2 ", 0) == 0, t.client.peerSummary());
  std::mt19937 rng(7);
  Flow up, down;
  up.data = randomBytes(300000, rng);
  down.data = randomBytes(300000, rng);
  PumpStats stats;
  BOOST_REQUIRE(pump(t.client, t.sockets.a, t.server, t.sockets.b, up, down, rng, stats));
  BOOST_TEST((up.received == up.data));
  BOOST_TEST((down.received == down.data));
}

BOOST_AUTO_TEST_CASE(five_megabytes_each_way_random_sizes) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  std::mt19937 rng(20261128);
  Flow up, down;
  up.data = randomBytes(5 * 1024 * 1024, rng);
  down.data = randomBytes(5 * 1024 * 1024, rng);
  PumpStats stats;
  BOOST_REQUIRE(pump(t.client, t.sockets.a, t.server, t.sockets.b, up, down, rng, stats));
  BOOST_TEST((up.received == up.data));
  BOOST_TEST((down.received == down.data));
  // The run went through every path the reactor must handle.
  BOOST_TEST(stats.wantWrite > 0u);
  BOOST_TEST(stats.partialWrites > 0u);
  BOOST_TEST(stats.pendingReads > 0u);
}

// A socket that never takes a whole record: write() keeps answering WantWrite until the
// whole n it was given is out, so every retry must offer at least as much again.
BOOST_AUTO_TEST_CASE(tiny_socket_buffers) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost", 4096);
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  std::mt19937 rng(11);
  Flow up, down;
  up.data = randomBytes(1024 * 1024, rng);
  down.data = randomBytes(1024 * 1024, rng);
  PumpStats stats;
  BOOST_REQUIRE(pump(t.client, t.sockets.a, t.server, t.sockets.b, up, down, rng, stats));
  BOOST_TEST((up.received == up.data));
  BOOST_TEST((down.received == down.data));
  BOOST_TEST(stats.wantWrite > 0u);
}

BOOST_AUTO_TEST_CASE(partial_write_then_want_write_then_resume) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  std::mt19937 rng(3);
  Flow up, down;
  down.data = randomBytes(1024 * 1024, rng);
  Status st = Status::Error;
  // One record at most per call: the rest is the caller's to offer again.
  const std::size_t first = t.server.write(down.data.data(), down.data.size(), st);
  BOOST_REQUIRE((st == Status::Ok));
  BOOST_TEST(first > 0u);
  BOOST_TEST(first <= 16384u);
  down.sent = first;
  // With nobody reading, the socket fills up and write() asks for EPOLLOUT.
  int calls = 0;
  while (st == Status::Ok && calls++ < 1000) {
    const std::size_t w = t.server.write(down.data.data() + down.sent, down.data.size() - down.sent, st);
    down.sent += w;
  }
  BOOST_REQUIRE((st == Status::WantWrite));
  BOOST_TEST(down.sent < down.data.size());
  down.retryLen = down.data.size() - down.sent;
  down.writeWait = st;
  PumpStats stats;
  BOOST_REQUIRE(pump(t.client, t.sockets.a, t.server, t.sockets.b, up, down, rng, stats));
  BOOST_TEST((down.received == down.data));
}

BOOST_AUTO_TEST_CASE(pending_reports_buffered_plaintext) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  const std::string message(1000, 'x');
  Status st = Status::Error;
  BOOST_REQUIRE(t.server.write(message.data(), message.size(), st) == message.size());
  char buf[1000];
  std::size_t got = 0;
  // The first reads may only consume the server's session tickets.
  for (int i = 0; i < 10 && got == 0; ++i) {
    got = t.client.read(buf, 10, st);
    if (got == 0) {
      BOOST_REQUIRE((st == Status::WantRead));
      pollfd p{t.sockets.a, POLLIN, 0};
      BOOST_REQUIRE(::poll(&p, 1, 5000) == 1);
    }
  }
  BOOST_REQUIRE(got == 10u);
  BOOST_TEST(t.client.pending());
  pollfd p{t.sockets.a, POLLIN, 0};
  BOOST_TEST(::poll(&p, 1, 0) == 0);  // the socket itself has nothing left
  BOOST_TEST(t.client.read(buf + 10, sizeof(buf) - 10, st) == 990u);
  BOOST_TEST((st == Status::Ok));
  BOOST_TEST(!t.client.pending());
  BOOST_TEST(std::string(buf, sizeof(buf)) == message);
}

BOOST_AUTO_TEST_CASE(close_notify_reads_as_closed) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  t.client.shutdown();
  char buf[100];
  Status st = Status::Error;
  std::size_t n = t.server.read(buf, sizeof(buf), st);
  BOOST_TEST(n == 0u);
  BOOST_TEST((st == Status::Closed));
  BOOST_TEST((t.server.read(buf, sizeof(buf), st) == 0u && st == Status::Closed));
  t.server.shutdown();
  // The client first consumes the session tickets, then the close_notify.
  for (int i = 0; i < 10; ++i) {
    n = t.client.read(buf, sizeof(buf), st);
    if (st != Status::WantRead) break;
    pollfd p{t.sockets.a, POLLIN, 0};
    BOOST_REQUIRE(::poll(&p, 1, 5000) == 1);
  }
  BOOST_TEST((st == Status::Closed));
  BOOST_TEST(t.server.write("x", 1, st) == 0u);
  BOOST_TEST((st == Status::Error));
}

BOOST_AUTO_TEST_CASE(tcp_close_without_close_notify_reads_as_closed) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  ::shutdown(t.sockets.a, SHUT_WR);
  char buf[100];
  Status st = Status::Error;
  BOOST_TEST(t.server.read(buf, sizeof(buf), st) == 0u);
  BOOST_TEST((st == Status::Closed));
  t.server.shutdown();  // must be harmless on a dead stream
}

// The socket BIO of OpenSSL 3.0 would write(); ours sends with MSG_NOSIGNAL, so a dead
// peer is an error return, not a SIGPIPE that kills this test.
BOOST_AUTO_TEST_CASE(write_to_closed_peer_is_an_error_not_sigpipe) {
  Session t(TlsContext::client(certs.caCert, true), TlsContext::server(certs.serverCert, certs.serverKey),
            "localhost");
  BOOST_REQUIRE((t.c == Status::Ok && t.s == Status::Ok));
  ::close(t.sockets.a);
  t.sockets.a = -1;
  Status st = Status::Ok;
  BOOST_TEST(t.server.write("hello", 5, st) == 0u);
  BOOST_TEST((st == Status::Error));
  BOOST_TEST(t.server.error() == "TLS write: Broken pipe");
}

BOOST_AUTO_TEST_CASE(peer_closing_during_handshake_is_an_error) {
  SocketPair sockets;
  TlsConnection client(TlsContext::client(certs.caCert, true), sockets.a, false, "localhost");
  BOOST_TEST((client.handshake() == Status::WantRead));
  char hello[4096];
  BOOST_TEST(::recv(sockets.b, hello, sizeof(hello), 0) > 0);  // unread data would make close() a reset
  ::close(sockets.b);
  sockets.b = -1;
  BOOST_TEST((client.handshake() == Status::Error));
  BOOST_TEST(contains(client.error(), "closed"), client.error());
  client.shutdown();
}

BOOST_AUTO_TEST_CASE(server_context_reports_missing_files) {
  const std::string missing = dir.file("nope.pem");
  BOOST_CHECK_EXCEPTION(TlsContext::server(missing, certs.serverKey), std::runtime_error,
                        [&](const std::runtime_error& e) {
                          BOOST_TEST_MESSAGE(e.what());
                          return contains(e.what(), "cannot load certificate chain '" + missing + "'");
                        });
  BOOST_CHECK_EXCEPTION(TlsContext::server(certs.serverCert, missing), std::runtime_error,
                        [&](const std::runtime_error& e) {
                          return contains(e.what(), "cannot load private key '" + missing + "'");
                        });
  BOOST_CHECK_EXCEPTION(TlsContext::client(missing, true), std::runtime_error,
                        [&](const std::runtime_error& e) {
                          return contains(e.what(), "cannot load CA file '" + missing + "'");
                        });
}

BOOST_AUTO_TEST_CASE(server_context_rejects_mismatched_key) {
  BOOST_CHECK_EXCEPTION(TlsContext::server(certs.serverCert, certs.rogueKey), std::runtime_error,
                        [](const std::runtime_error& e) {
                          BOOST_TEST_MESSAGE(e.what());
                          return contains(e.what(), "does not match certificate");
                        });
}

BOOST_AUTO_TEST_SUITE_END()
