#include "tests/integration/icapd_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <stdexcept>

#include "shared/icap/writer.hpp"
#include "tests/support/samples.hpp"

namespace imapav::test {
namespace {

void encapsulatedHeads(const RespmodRequest& r, std::string& reqHdr, std::string& resHdr) {
  reqHdr = "GET " + r.url + " HTTP/1.1\r\nHost: mail.example\r\n\r\n";
  if (r.method == "REQMOD") {
    reqHdr = "POST " + r.url + " HTTP/1.1\r\nHost: mail.example\r\nContent-Length: " +
             std::to_string(r.message.size()) + "\r\n\r\n";
    resHdr.clear();
  } else {
    resHdr = "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: " +
             std::to_string(r.message.size()) + "\r\n\r\n";
  }
}

}  // namespace

std::string cleanMessage(const std::string& subject, std::size_t bodyBytes) {
  std::string m =
      "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: " + subject +
      "\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\nMessage-ID: <clean-1@example.org>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
  std::string line = "The quick brown fox jumps over the lazy dog. 0123456789\r\n";
  while (bodyBytes > 0) {
    const auto n = std::min(bodyBytes, line.size());
    m += line.substr(0, n);
    bodyBytes -= n;
  }
  return m;
}

// A large clean message whose scan takes a noticeable time (random base64 text).
std::string bigMessage(std::size_t bytes, unsigned seed) {
  std::string m = cleanMessage("big", 10);
  std::uint32_t x = seed * 2654435761u + 1;
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  m.reserve(bytes + 100);
  std::size_t col = 0;
  while (m.size() < bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m += kAlphabet[x & 63];
    if (++col == 76) {
      m += "\r\n";
      col = 0;
    }
  }
  return m;
}


std::string infectedMessage(const std::string& subject) {
  return "From: Mallory <mallory@example.com>\r\nTo: Bob <bob@example.net>\r\nCc: carol@example.net\r\n"
         "Subject: " + subject + "\r\nDate: Sat, 28 Nov 2026 09:05:00 +0000\r\n"
         "Message-ID: <infected-1@example.com>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
         "--b1\r\nContent-Type: application/octet-stream; name=\"a.com\"\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\n" + base64Lines(eicar()) + "--b1--\r\n";
}

std::string buildRequest(const RespmodRequest& r) {
  std::string reqHdr, resHdr;
  encapsulatedHeads(r, reqHdr, resHdr);
  icap::Headers h;
  h.add("Host", "127.0.0.1");
  if (r.allow204) h.add("Allow", "204");
  if (r.preview) h.add("Preview", std::to_string(*r.preview));
  if (r.connectionClose) h.add("Connection", "close");
  for (const auto& [k, v] : r.extraHeaders) h.add(k, v);
  std::string out;
  icap::appendRequestHead(out, r.method, "icap://127.0.0.1/" + r.service, h, reqHdr, resHdr,
                          r.method == "REQMOD" ? 1 : 2);
  if (r.preview) {
    const auto n = std::min(*r.preview, r.message.size());
    icap::appendChunk(out, std::string_view(r.message).substr(0, n));
    icap::appendLastChunk(out, n == r.message.size());
  } else {
    // Several chunks, as real clients send them.
    for (std::size_t off = 0; off < r.message.size(); off += 4000) {
      icap::appendChunk(out, std::string_view(r.message).substr(off, 4000));
    }
    icap::appendLastChunk(out);
  }
  return out;
}

std::string buildRemainder(const RespmodRequest& r) {
  std::string out;
  const auto start = std::min(r.preview.value_or(0), r.message.size());
  for (std::size_t off = start; off < r.message.size(); off += 4000) {
    icap::appendChunk(out, std::string_view(r.message).substr(off, 4000));
  }
  icap::appendLastChunk(out);
  return out;
}

IcapConnection::IcapConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

IcapConnection::~IcapConnection() { ::close(fd_); }

bool IcapConnection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<IcapResponse> IcapConnection::read(std::chrono::milliseconds timeout) {
  IcapResponse response;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (bool more = true; more;) {
      const auto step = parser_.feed(buffer_);
      using Ev = icap::ResponseParser::Event;
      if (step.event == Ev::Body) response.body.append(parser_.bodyData());  // a view into buffer_
      buffer_.erase(0, step.consumed);
      switch (step.event) {
        case Ev::NeedMore: more = false; break;
        case Ev::Head: response.head = parser_.head(); break;
        case Ev::Body: break;
        case Ev::Complete: return response;
        case Ev::Error:
          error_ = "parse error: " + parser_.errorText();
          return std::nullopt;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error_ = "timeout";
      return std::nullopt;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      error_ = "connection closed";
      return std::nullopt;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

bool IcapConnection::closedByPeer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

IcapdFixture::IcapdFixture(const std::map<std::string, std::string>& extra, bool startNow) {
  std::filesystem::create_directory(signatureDir());
  for (const auto& e : std::filesystem::directory_iterator(std::string(IMAPAV_SOURCE_DIR) + "/tests/data/signatures")) {
    if (e.path().extension() == ".ndb" || e.path().extension() == ".hdb") {
      std::filesystem::copy_file(e.path(), signatureDir() + "/" + e.path().filename().string());
    }
  }
  writeConfig(extra);
  if (startNow) start();
}

void IcapdFixture::writeConfig(const std::map<std::string, std::string>& extra) {
  if (port_ == 0) port_ = freePort();
  std::map<std::string, std::string> cfg = {
      {"icap.listen", "127.0.0.1:" + std::to_string(port_)},
      {"scan.database_dir", signatureDir()},
      {"scan.tmp_dir", dir_.path()},
      {"scan.spill_dir", dir_.path()},
      {"log.database", database()},
      {"policy.fail_mode", "drop"},
  };
  for (const auto& [k, v] : extra) cfg[k] = v;
  std::string text;
  for (const auto& [k, v] : cfg) text += k + " = " + v + "\n";
  writeFile(configFile(), text);
}

IcapdFixture::~IcapdFixture() {
  if (process_) process_->stop(SIGTERM, std::chrono::seconds(20));
}

void IcapdFixture::start() {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{std::string(IMAPAV_BINARY_DIR) + "/icap-server/imapav-icapd", "--config", configFile()},
      dir_.file("icapd.log"));
  if (!waitForPort(port_, std::chrono::seconds(20))) {
    BOOST_FAIL("imapav-icapd did not start listening; its log:\n" + log());
  }
}

int IcapdFixture::stop() {
  if (!process_) return -1;
  const int rc = process_->stop(SIGTERM, std::chrono::seconds(30));
  process_.reset();
  return rc;
}

void IcapdFixture::kill() {
  if (process_) process_->stop(SIGKILL, std::chrono::seconds(10));
  process_.reset();
}

void IcapdFixture::reload() {
  BOOST_REQUIRE(process_);
  BOOST_REQUIRE(::kill(process_->pid(), SIGHUP) == 0);
}

std::string IcapdFixture::log() const { return readFile(dir_.file("icapd.log")); }

IcapResponse IcapdFixture::exchange(const RespmodRequest& r) {
  IcapConnection c(port_);
  BOOST_REQUIRE(c.send(buildRequest(r)));
  if (r.preview && *r.preview < r.message.size()) {
    auto cont = c.read();
    BOOST_REQUIRE_MESSAGE(cont, "no answer to the preview: " + c.error());
    BOOST_REQUIRE_EQUAL(cont->head.status, 100);
    BOOST_REQUIRE(c.send(buildRemainder(r)));
  }
  auto resp = c.read();
  BOOST_REQUIRE_MESSAGE(resp, "no response: " + c.error() + "\nserver log:\n" + log());
  return *resp;
}

std::vector<std::map<std::string, std::string>> IcapdFixture::query(const std::string& sql) const {
  sqlite3* db = nullptr;
  std::vector<std::map<std::string, std::string>> rows;
  if (sqlite3_open_v2(database().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    BOOST_FAIL("cannot open " + database());
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    const std::string err = sqlite3_errmsg(db);
    sqlite3_close(db);
    BOOST_FAIL("bad query: " + err);
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::map<std::string, std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const auto* text = sqlite3_column_text(st, i);
      row[sqlite3_column_name(st, i)] = text ? reinterpret_cast<const char*>(text) : "NULL";
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

}  // namespace imapav::test
