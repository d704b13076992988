#include "redirector/icap_client.hpp"

extern "C" {
#include <c_icap/c-icap.h>
#include <c_icap/header.h>
#include <c_icap/net_io.h>
#include <c_icap/request.h>
#include <c_icap/simple_api.h>
}

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace imapav::redirector {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxHeaderValue = 2048;

// One ICAP connection and the libicapapi request bound to it. libicapapi 0.5.10:
// ci_request_destroy() frees the connection struct but leaves its socket open, and
// ci_connection_destroy() closes and frees it, so calling both is a double free. Once a
// request owns the connection we close the socket ourselves and destroy only the request.
class Connection {
 public:
  Connection(ci_connection_t* conn, ci_request_t* req) : conn_(conn), req_(req) {}
  ~Connection() {
    if (req_ != nullptr) {
      if (req_->connection != nullptr && req_->connection->fd >= 0) ::close(req_->connection->fd);
      ci_request_destroy(req_);
    } else if (conn_ != nullptr) {
      ci_connection_destroy(conn_);
    }
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ci_request_t* req() const { return req_; }
  int fd() const { return conn_->fd; }

  // An idle connection with something to read (EOF after the server's idle timeout or
  // shutdown, or stray bytes) is unusable: the next response would be misread.
  bool stale() const {
    pollfd p{};
    p.fd = conn_->fd;
    p.events = POLLIN;
    return ::poll(&p, 1, 0) != 0;
  }

 private:
  ci_connection_t* conn_;
  ci_request_t* req_;
};

using ConnectionPtr = std::unique_ptr<Connection>;

struct HeadersDeleter {
  void operator()(ci_headers_list_t* h) const { ci_headers_destroy(h); }
};
using HeadersPtr = std::unique_ptr<ci_headers_list_t, HeadersDeleter>;

// Header values go on one line: control bytes become '?' and length is capped.
std::string headerSafe(std::string_view v) {
  std::string out(v.substr(0, kMaxHeaderValue));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// The request target must not contain spaces or control bytes: percent-encode them.
std::string urlSafe(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : v.substr(0, kMaxHeaderValue)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      out += '%';
      out += kHex[u >> 4U];
      out += kHex[u & 0xfU];
    } else {
      out += c;
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16U) |
                   (static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8U) |
                   static_cast<unsigned>(static_cast<unsigned char>(in[i + 2]));
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += kAlphabet[(n >> 6U) & 63U];
    out += kAlphabet[n & 63U];
  }
  if (i < in.size()) {
    auto n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16U;
    if (i + 1 < in.size()) n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8U;
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::string headerValue(ci_headers_list_t* h, const char* name) {
  if (h == nullptr) return {};
  const char* v = ci_headers_value(h, name);
  return v == nullptr ? std::string() : headerSafe(v);
}

std::optional<std::uint64_t> parseNumber(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

// The status of the response whose first line is in h ("ICAP/1.0 200 OK"), or -1.
int statusOf(ci_headers_list_t* h) {
  if (h == nullptr || h->used < 1 || h->headers == nullptr || h->headers[0] == nullptr) return -1;
  const std::string_view line(h->headers[0]);
  if (line.size() < 12 || line.substr(0, 5) != "ICAP/") return -1;
  const auto n = parseNumber(line.substr(9, 3));
  return n ? static_cast<int>(*n) : -1;
}

bool wantsClose(ci_headers_list_t* h) {
  const auto v = headerValue(h, "Connection");
  return v.size() >= 5 && strncasecmp(v.c_str(), "close", 5) == 0;
}

// The host of an IMAP URL (imap://user@host:port/...), for the HTTP Host header.
std::string imapHost(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find('/'));
  if (const auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  return std::string(url);
}

// libicapapi pulls the request body through this callback. It blocks until the mail
// server has sent more of the message: the scan runs while the message arrives.
// libicapapi sends the body in chunks of about 4 KB, one write each: corked, the kernel
// sends full segments instead of a packet per chunk, and the server wakes far less often.
void setCork(int fd, bool on) {
  const int v = on ? 1 : 0;
  ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof v);
}

struct Source {
  const MessageBuffer* message = nullptr;
  std::size_t pos = 0;
  int fd = -1;  // uncorked at the end of the body, so the last chunk leaves at once
};

int readSource(void* p, char* buf, int len) {
  auto* s = static_cast<Source*>(p);
  if (len <= 0) return CI_EOF;
  const long n = s->message->read(s->pos, buf, static_cast<std::size_t>(len));
  // libicapapi busy-loops on 0: the end must be CI_EOF.
  if (n == 0) {
    setCork(s->fd, false);
    return CI_EOF;
  }
  if (n < 0) return CI_ERROR;
  s->pos += static_cast<std::size_t>(n);
  return static_cast<int>(n);
}

struct Sink {
  std::shared_ptr<MessageBuffer> data;
  std::size_t limit = 0;
  bool overflow = false;
};

int writeSink(void* p, char* buf, int len) {
  auto* s = static_cast<Sink*>(p);
  const auto n = static_cast<std::size_t>(std::max(len, 0));
  if (s->data->size() + n > s->limit) {
    s->overflow = true;
    return -1;  // the library turns this into CI_ERROR
  }
  if (!s->data->append(std::string_view(buf, n))) return -1;
  return len;
}

void initLibrary() {
  static std::once_flag once;
  std::call_once(once, [] {
    ci_client_library_init();
    // libicapapi writes with write(), not send(MSG_NOSIGNAL): a server that closed the
    // connection would raise SIGPIPE and kill the process. Ignore it unless someone
    // installed a handler.
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      struct sigaction ign {};
      ign.sa_handler = SIG_IGN;
      ::sigemptyset(&ign.sa_mask);
      ::sigaction(SIGPIPE, &ign, nullptr);
    }
  });
}

struct OptionsInfo {
  std::string istag;
  unsigned maxConnections = 0;
  std::chrono::seconds ttl{0};
};

// OPTIONS on conn. libicapapi stores Preview and Allow in the request; the rest we read.
bool sendOptions(Connection& conn, int timeoutSec, OptionsInfo& info, std::string& error) {
  ci_request_t* req = conn.req();
  ci_client_request_reuse(req);
  if (ci_client_get_server_options(req, timeoutSec) != CI_OK) {
    error = "OPTIONS failed (connection closed, timeout or bad answer)";
    return false;
  }
  const int status = statusOf(req->response_header);
  if (status != 200) {
    error = "OPTIONS answered " + std::to_string(status);
    return false;
  }
  if (wantsClose(req->response_header)) {
    error = "OPTIONS answered with Connection: close";
    return false;
  }
  info.istag = headerValue(req->response_header, "ISTag");
  if (const auto n = parseNumber(headerValue(req->response_header, "Max-Connections"))) {
    info.maxConnections = static_cast<unsigned>(std::min<std::uint64_t>(*n, 1U << 20U));
  }
  if (const auto n = parseNumber(headerValue(req->response_header, "Options-TTL"))) {
    info.ttl = std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*n, 365ULL * 86400ULL)));
  }
  return true;
}

}  // namespace

std::optional<IcapUrl> parseIcapUrl(std::string_view url) {
  constexpr std::string_view kScheme = "icap://";
  if (url.size() <= kScheme.size() || url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  url.remove_prefix(kScheme.size());
  const auto slash = url.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view authority = url.substr(0, slash);
  std::string_view service = url.substr(slash + 1);
  if (const auto q = service.find('?'); q != std::string_view::npos) service = service.substr(0, q);
  if (service.empty() || service.size() > 255) return std::nullopt;
  for (const char c : service) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/') return std::nullopt;
  }
  IcapUrl out;
  out.service = std::string(service);
  std::string_view portText;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      portText = rest.substr(1);
      if (portText.empty()) return std::nullopt;
    }
  } else {
    const auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = authority.substr(colon + 1);
      if (portText.empty()) return std::nullopt;
    }
  }
  if (out.host.empty() || out.host.size() > 253) return std::nullopt;
  for (const char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '@' || c == '/') return std::nullopt;
  }
  if (!portText.empty()) {
    const auto port = parseNumber(portText);
    if (!port || *port == 0 || *port > 65535) return std::nullopt;
    out.port = static_cast<std::uint16_t>(*port);
  }
  return out;
}

struct IcapClient::Server {
  IcapUrl url;
  std::string name;  // host:port
  mutable std::mutex mutex;
  std::condition_variable freed;
  std::vector<ConnectionPtr> idle;  // LIFO: the most recently used is warm
  unsigned open = 0;                // idle plus checked out plus being connected
  Clock::time_point downUntil{};
  std::string lastFailure;
  OptionsInfo options;
  Clock::time_point optionsExpire{};
  std::uint64_t connectAttempts = 0;
  std::uint64_t opened = 0;
  std::uint64_t optionsSent = 0;
  // Without the mutex: counted on every request.
  std::atomic<std::uint64_t> requests{0}, answered{0}, failed{0}, skipped{0};

  unsigned cap(unsigned ownCap) const {
    const unsigned c = std::max(ownCap, 1U);
    return options.maxConnections == 0 ? c : std::min(c, options.maxConnections);
  }
};

namespace {

using Server = IcapClient::Server;

void markDown(Server& s, std::chrono::seconds retryAfter, const std::string& why) {
  std::vector<ConnectionPtr> drop;
  {
    const std::lock_guard lock(s.mutex);
    s.downUntil = Clock::now() + retryAfter;
    s.lastFailure = why;
    // Its idle connections are as dead as the one that failed.
    drop.swap(s.idle);
    s.open -= static_cast<unsigned>(drop.size());
  }
  s.freed.notify_all();
}

void release(Server& s, ConnectionPtr conn, bool reusable, unsigned ownCap) {
  {
    const std::lock_guard lock(s.mutex);
    if (reusable && s.open <= s.cap(ownCap)) {
      s.idle.push_back(std::move(conn));
    } else {
      --s.open;
    }
  }
  conn.reset();  // closes outside the lock when not pooled
  s.freed.notify_one();
}

void recordOptions(Server& s, const OptionsInfo& info) {
  const std::lock_guard lock(s.mutex);
  s.options = info;
  ++s.optionsSent;
  // No Options-TTL means the answer stays valid for as long as the connection.
  s.optionsExpire = info.ttl.count() > 0 ? Clock::now() + info.ttl : Clock::time_point::max();
}

// Every ICAP answer carries the service's ISTag (RFC 3507 4.7). A new one means the
// service changed (imapav-icapd: new signatures): ask OPTIONS again with the next request
// instead of trusting the old answer until its Options-TTL ends.
void noteIstag(Server& s, const std::string& istag) {
  if (istag.empty()) return;
  const std::lock_guard lock(s.mutex);
  if (istag != s.options.istag) s.optionsExpire = Clock::now();
}

ConnectionPtr connect(Server& s, int timeoutSec, std::string& error) {
  const int family = s.url.host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  {
    const std::lock_guard lock(s.mutex);
    ++s.connectAttempts;
  }
  ci_connection_t* raw = ci_connect_to(s.url.host.c_str(), s.url.port, family, timeoutSec);
  if (raw == nullptr) {
    error = "cannot connect (refused, unreachable or no answer within " + std::to_string(timeoutSec) + " s)";
    return nullptr;
  }
  ci_request_t* req = ci_client_request(raw, s.url.host.c_str(), s.url.service.c_str());
  if (req == nullptr) {
    ci_connection_destroy(raw);
    error = "cannot allocate an ICAP request";
    return nullptr;
  }
  auto conn = std::make_unique<Connection>(raw, req);
  // Small writes (headers, last chunk) would otherwise each wait ~40 ms for Nagle.
  const int one = 1;
  ::setsockopt(raw->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  {
    const std::lock_guard lock(s.mutex);
    ++s.opened;
  }
  OptionsInfo info;
  if (!sendOptions(*conn, timeoutSec, info, error)) return nullptr;
  recordOptions(s, info);
  return conn;
}

// A pooled connection, or a new one; nullptr with error when none comes within timeout.
// busy is set when the pool stayed full (the server itself did not fail).
ConnectionPtr checkout(Server& s, const IcapClientOptions& o, std::string& error, bool& busy) {
  const auto deadline = Clock::now() + o.timeout;
  std::unique_lock lock(s.mutex);
  for (;;) {
    while (!s.idle.empty()) {
      ConnectionPtr c = std::move(s.idle.back());
      s.idle.pop_back();
      if (!c->stale()) return c;
      --s.open;
    }
    if (s.open < s.cap(o.maxConnectionsPerServer)) {
      ++s.open;
      lock.unlock();
      auto c = connect(s, static_cast<int>(o.timeout.count()), error);
      if (!c) {
        lock.lock();
        --s.open;
        lock.unlock();
        s.freed.notify_one();
      }
      return c;
    }
    if (s.freed.wait_until(lock, deadline) == std::cv_status::timeout && s.idle.empty() &&
        s.open >= s.cap(o.maxConnectionsPerServer)) {
      busy = true;
      error = "busy: no free connection within " + std::to_string(o.timeout.count()) + " s";
      return nullptr;
    }
  }
}

enum class Outcome { Answered, ServerFailed, Refused, MessageAborted };

struct Attempt {
  Outcome outcome = Outcome::ServerFailed;
  std::string why;
};

}  // namespace

// Ends ICAP requests that overrun their deadline: icap.timeout after the last byte of the
// message was available (or after the request started, if later). libicapapi's own timeout
// applies per wait, so a server that trickles its answer could stretch a request without
// end; shutting the socket down makes the waiting worker fail at once.
struct IcapClient::Watchdog {
  struct Entry {
    int fd = -1;
    const MessageBuffer* message = nullptr;
    Clock::time_point started;
    bool fired = false;
  };

  explicit Watchdog(std::chrono::milliseconds timeout) : timeout_(timeout), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      const std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  std::uint64_t watch(int fd, const MessageBuffer* message) {
    const std::lock_guard lock(mu_);
    active_[++next_] = Entry{fd, message, Clock::now(), false};
    return next_;
  }
  // Before the connection goes back to the pool. True when the deadline had struck.
  bool unwatch(std::uint64_t id) {
    const std::lock_guard lock(mu_);
    const auto it = active_.find(id);
    const bool fired = it != active_.end() && it->second.fired;
    if (it != active_.end()) active_.erase(it);
    return fired;
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      const auto now = Clock::now();
      for (auto& [id, e] : active_) {
        if (e.fired) continue;
        const auto complete = e.message->completedAt();
        if (complete && now > std::max(*complete, e.started) + timeout_) {
          ::shutdown(e.fd, SHUT_RDWR);
          e.fired = true;
        }
      }
    }
  }

  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::uint64_t, Entry> active_;
  std::uint64_t next_ = 0;
  std::thread thread_;
};

namespace {

Attempt respmod(Connection& conn, const ScanRequest& r, const IcapClientOptions& o, IcapClient::Watchdog& watchdog,
                ScanReply& reply, bool& reusable) {
  reusable = false;
  const MessageBuffer& message = *r.message;
  ci_request_t* req = conn.req();
  ci_client_request_reuse(req);
  req->type = ICAP_RESPMOD;
  req->allow204 = 1;  // reset by ci_client_request_reuse
  // The OPTIONS answer set req->preview and reuse keeps it. -1 sends no Preview header
  // and the whole body at once (prepare_headers/ci_request_t_pack in 0.5.10): an
  // antivirus needs all of it anyway and a preview costs a round trip.
  req->preview = -1;
  if (!r.clientIp.empty()) ci_headers_add(req->xheaders, ("X-Client-IP: " + headerSafe(r.clientIp)).c_str());
  if (!r.user.empty()) {
    ci_headers_add(req->xheaders, ("X-Authenticated-User: " + base64(r.user.substr(0, 512))).c_str());
  }

  HeadersPtr reqh(ci_headers_create());
  HeadersPtr resh(ci_headers_create());
  if (!reqh || !resh) return {Outcome::Refused, "out of memory"};
  ci_headers_add(reqh.get(), ("GET " + urlSafe(r.imapUrl.empty() ? "/" : r.imapUrl) + " HTTP/1.1").c_str());
  if (const auto host = imapHost(r.imapUrl); !host.empty()) {
    ci_headers_add(reqh.get(), ("Host: " + headerSafe(host)).c_str());
  }
  // The announced size (an IMAP literal's) is known before the first byte.
  std::size_t length = message.expectedSize();
  if (length == 0) {
    if (!message.waitComplete()) return {Outcome::MessageAborted, "message aborted: " + message.error()};
    length = message.size();
  }
  ci_headers_add(resh.get(), "HTTP/1.1 200 OK");
  ci_headers_add(resh.get(), "Content-Type: message/rfc822");
  ci_headers_add(resh.get(), ("Content-Length: " + std::to_string(length)).c_str());

  Source src{&message, 0, conn.fd()};
  Sink sink;
  sink.data = std::make_shared<MessageBuffer>(o.spillThreshold, o.spillDir);
  sink.limit = 2 * length + o.responseSlack;
  const int timeoutSec = static_cast<int>(o.timeout.count());
  const auto started = Clock::now();
  const auto watch = watchdog.watch(conn.fd(), &message);
  setCork(conn.fd(), true);
  const int status = ci_client_icapfilter(req, timeoutSec, reqh.get(), resh.get(), &src, readSource, &sink, writeSink);
  setCork(conn.fd(), false);
  const bool overdue = watchdog.unwatch(watch);
  if (status < 0) {
    if (message.failed()) return {Outcome::MessageAborted, "message aborted: " + message.error()};
    if (sink.overflow) return {Outcome::Refused, "response larger than " + std::to_string(sink.limit) + " bytes"};
    if (sink.data->failed()) return {Outcome::Refused, "cannot hold the response: " + sink.data->error()};
    // An error status read before the body was all sent (imapav-icapd's 413 for a body
    // over its limit): the server refused this request; it is not dead.
    if (req->return_code >= 400 && req->return_code < 600 && req->return_code != 408 && req->return_code != 503) {
      return {Outcome::Refused, "ICAP status " + std::to_string(req->return_code) + " before the body was sent"};
    }
    // libicapapi's own per-wait timeout may strike first, at about the same moment.
    const auto completed = message.completedAt();
    if (overdue || (completed && Clock::now() - std::max(*completed, started) >= o.timeout - std::chrono::milliseconds(200))) {
      return {Outcome::ServerFailed, "no answer within " + std::to_string(timeoutSec) + " s (timeout)"};
    }
    return {Outcome::ServerFailed, "connection closed, protocol error or a wait over " + std::to_string(timeoutSec) + " s"};
  }
  sink.data->finish();

  ci_headers_list_t* icap = req->response_header;
  reply.verdict = headerValue(icap, "X-Imapav-Verdict");
  reply.action = headerValue(icap, "X-Imapav-Action");
  reply.errorClass = headerValue(icap, "X-Imapav-Error");
  reply.threats = headerValue(icap, "X-Virus-ID");
  reply.protocolOnly = headerValue(icap, "X-Imapav-Notice") == "protocol-only";
  reply.istag = headerValue(icap, "ISTag");
  const bool infected = !reply.threats.empty() || !headerValue(icap, "X-Infection-Found").empty();
  const bool close = wantsClose(icap);

  if (status == 204) {
    reply.status = reply.action == "pass-unscanned" ? ScanStatus::PassedUnscanned : ScanStatus::Clean;
    reusable = !close;
    return {Outcome::Answered, {}};
  }
  if (status != 200) {
    // 4xx/5xx (503 overloaded ...): the server speaks, but not for this request. Drop the
    // connection: after an error it may be closing it.
    return {Outcome::Refused, "ICAP status " + std::to_string(status)};
  }

  // Never hand on a truncated message: the HTTP Content-Length must match what came.
  ci_headers_list_t* http = ci_http_response_headers(req);
  const auto lengthText = headerValue(http, "Content-Length");
  if (!lengthText.empty()) {
    const auto declared = parseNumber(lengthText);
    if (!declared || *declared != sink.data->size()) {
      return {Outcome::ServerFailed, "body of " + std::to_string(sink.data->size()) +
                                         " bytes disagrees with Content-Length " + lengthText};
    }
  }
  const std::string unscanned = headerValue(http, "X-Imapav-Unscanned");
  if (reply.errorClass.empty()) reply.errorClass = unscanned;
  if (reply.action == "replace" || infected) {
    reply.status = ScanStatus::Replaced;
  } else if (reply.action == "pass-unscanned" || !unscanned.empty()) {
    reply.status = ScanStatus::PassedUnscanned;
  } else if (sink.data->sameContent(message)) {
    reply.status = ScanStatus::Clean;
  } else {
    reply.status = ScanStatus::Replaced;  // a server without our headers changed the message
  }
  if (reply.status != ScanStatus::Clean) reply.content = std::move(sink.data);
  reusable = !close;
  return {Outcome::Answered, {}};
}

}  // namespace

IcapClient::IcapClient(IcapClientOptions options) : options_(std::move(options)) {
  if (options_.timeout.count() <= 0) throw std::invalid_argument("ICAP timeout must be at least 1 s");
  for (const auto& text : options_.servers) {
    auto url = parseIcapUrl(text);
    if (!url) throw std::invalid_argument("malformed ICAP server URL: " + text);
    auto s = std::make_unique<Server>();
    s->url = std::move(*url);
    s->name = s->url.hostPort();
    servers_.push_back(std::move(s));
  }
  initLibrary();
  watchdog_ = std::make_unique<Watchdog>(options_.timeout);
}

IcapClient::~IcapClient() = default;

ScanReply IcapClient::scan(const ScanRequest& request) {
  const auto start = Clock::now();
  ScanReply reply;
  std::string failures;
  const auto fail = [&](const Server& s, const std::string& why) {
    failures += (failures.empty() ? "" : "; ") + s.name + ": " + why;
  };
  const auto finish = [&](ScanStatus status) {
    reply.status = status;
    reply.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    return std::move(reply);
  };
  for (const auto& sp : servers_) {
    Server& s = *sp;
    {
      const std::lock_guard lock(s.mutex);
      if (Clock::now() < s.downUntil) {
        s.skipped.fetch_add(1, std::memory_order_relaxed);
        fail(s, "skipped, down after: " + s.lastFailure);
        continue;
      }
    }
    // A request that began while the message was still arriving may have failed because the
    // mail server was slow (the ICAP server's read timeout, a 408): try once more with all
    // of it before counting it against this server.
    for (int pass = 0; pass < 2; ++pass) {
      const bool hadWholeMessage = request.message->complete();
      std::string error;
      bool busy = false;
      ConnectionPtr conn = checkout(s, options_, error, busy);
      if (!conn) {
        if (!busy) markDown(s, options_.retryAfter, error);
        s.failed.fetch_add(1, std::memory_order_relaxed);
        fail(s, error);
        break;
      }
      bool refresh = false;
      {
        const std::lock_guard lock(s.mutex);
        refresh = Clock::now() >= s.optionsExpire;
      }
      if (refresh) {
        OptionsInfo info;
        if (!sendOptions(*conn, static_cast<int>(options_.timeout.count()), info, error)) {
          release(s, std::move(conn), false, options_.maxConnectionsPerServer);
          markDown(s, options_.retryAfter, error);
          s.failed.fetch_add(1, std::memory_order_relaxed);
          fail(s, error);
          break;
        }
        recordOptions(s, info);
      }
      ScanReply attempt;
      bool reusable = false;
      s.requests.fetch_add(1, std::memory_order_relaxed);
      const auto result = respmod(*conn, request, options_, *watchdog_, attempt, reusable);
      release(s, std::move(conn), reusable, options_.maxConnectionsPerServer);
      if (result.outcome == Outcome::Answered) {
        s.answered.fetch_add(1, std::memory_order_relaxed);
        reply = std::move(attempt);
        reply.server = s.name;
        noteIstag(s, reply.istag);
        return finish(reply.status);
      }
      if (result.outcome == Outcome::MessageAborted) {
        reply.failure = result.why;
        return finish(ScanStatus::Failed);
      }
      if (!hadWholeMessage && pass == 0 && request.message->waitComplete()) continue;
      if (result.outcome == Outcome::ServerFailed) markDown(s, options_.retryAfter, result.why);
      s.failed.fetch_add(1, std::memory_order_relaxed);
      fail(s, result.why);
      break;
    }
  }
  reply.failure = servers_.empty() ? "no ICAP server configured" : failures;
  return finish(ScanStatus::Failed);
}

std::vector<IcapServerHealth> IcapClient::health() const {
  std::vector<IcapServerHealth> out;
  const auto now = Clock::now();
  for (const auto& sp : servers_) {
    const Server& s = *sp;
    const std::lock_guard lock(s.mutex);
    IcapServerHealth h;
    h.server = s.name;
    h.up = now >= s.downUntil;
    h.lastFailure = s.lastFailure;
    h.istag = s.options.istag;
    h.optionsTtl = s.options.ttl;
    h.maxConnections = s.options.maxConnections;
    h.openConnections = s.open;
    h.idleConnections = static_cast<unsigned>(s.idle.size());
    h.connectAttempts = s.connectAttempts;
    h.connectionsOpened = s.opened;
    h.optionsSent = s.optionsSent;
    h.requests = s.requests.load(std::memory_order_relaxed);
    h.answered = s.answered.load(std::memory_order_relaxed);
    h.failed = s.failed.load(std::memory_order_relaxed);
    h.skipped = s.skipped.load(std::memory_order_relaxed);
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace imapav::redirector
