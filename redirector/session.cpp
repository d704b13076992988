#include "redirector/session.hpp"

#include <Poco/Logger.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "shared/common/ascii.hpp"
#include "redirector/message_buffer.hpp"
#include "shared/imap/capabilities.hpp"
#include "shared/imap/imap_url.hpp"
#include "shared/mime/encoded_word.hpp"
#include "shared/mime/notice.hpp"

namespace imapav::redirector {
namespace {

constexpr std::size_t kReadBlock = 64 * 1024;
constexpr std::size_t kKeepCapacity = 4 * 1024;  // larger empty buffers are given back
constexpr std::size_t kPauseAbove = 4u << 20;   // stop reading the other side above this backlog
constexpr std::size_t kResumeBelow = 1u << 20;
constexpr std::size_t kHoldSmallLiteral = 256 * 1024;  // literals kept inside a held response
constexpr std::size_t kDeliveryChunk = 256 * 1024;     // output buffered ahead of a slow client
constexpr std::size_t kHeaderPrefix = 256 * 1024;      // of a message, enough for its header
constexpr std::size_t kMaxTrackedTags = 1000;          // FETCH commands in flight we remember

Poco::Logger& sessionLog() { return Poco::Logger::get("redirector.session"); }

using ascii::upper;

// Splits off the next word of a command line (atom or quoted string); "" at the end.
// quoted tells whether it was a quoted string; a literal marker comes back as written.
std::string nextWord(std::string_view& s, bool* quoted = nullptr) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (quoted) *quoted = false;
  if (s.empty()) return {};
  std::string out;
  if (s.front() == '"') {
    if (quoted) *quoted = true;
    std::size_t i = 1;
    for (; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      out.push_back(s[i]);
    }
    s.remove_prefix(std::min(i + 1, s.size()));
    return out;
  }
  std::size_t i = 0;
  while (i < s.size() && s[i] != ' ' && s[i] != '\r' && s[i] != '\n') ++i;
  out = std::string(s.substr(0, i));
  s.remove_prefix(i);
  return out;
}

// "authzid NUL authcid NUL password" (RFC 4616): the login name is authcid.
std::string plainUser(std::string_view response) {
  const auto decoded = mime::decodeBase64(response).value_or(std::string());
  const auto first = decoded.find('\0');
  if (first == std::string::npos) return {};
  const auto second = decoded.find('\0', first + 1);
  if (second == std::string::npos) return {};
  return decoded.substr(first + 1, std::min<std::size_t>(second - first - 1, 256));
}

std::string printable(std::string s) {
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s;
}

bool setNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

}  // namespace

void Session::Endpoint::onIo(std::uint32_t events) { session->onIo(*this, events); }

Session::Session(SessionHost& host, int clientFd, std::string clientAddress, bool implicitTls)
    : host_(host),
      config_(host.config()),
      clientAddress_(std::move(clientAddress)),
      fromClient_(imap::Direction::ClientToServer, imap::FramingLimits{config_.maxLineBytes, config_.maxMessageSize * 4}),
      fromServer_(imap::Direction::ServerToClient, imap::FramingLimits{config_.maxLineBytes, 1ull << 40}) {
  client_.session = this;
  client_.isClient = true;
  client_.fd = clientFd;
  implicitTls_ = implicitTls;
  upstream_.session = this;
  started_ = lastActivity_ = lastUpstreamData_ = std::chrono::steady_clock::now();
}

Session::~Session() {
  if (capture_) capture_->abort("session ended");
  if (client_.fd >= 0) ::close(client_.fd);
  if (upstream_.fd >= 0) ::close(upstream_.fd);
}

void Session::start() {
  setNonBlocking(client_.fd);
  const int one = 1;
  setsockopt(client_.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(config_.upstream.port);
  if (getaddrinfo(config_.upstream.host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    client_.out = "* BYE [UNAVAILABLE] mail server unknown\r\n";
    flush(client_);
    return close("cannot resolve upstream");
  }
  upstream_.fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int rc = upstream_.fd < 0 ? -1 : ::connect(upstream_.fd, res->ai_addr, res->ai_addrlen);
  const int err = errno;
  freeaddrinfo(res);
  if (upstream_.fd < 0 || (rc != 0 && err != EINPROGRESS)) {
    client_.out = "* BYE [UNAVAILABLE] mail server unreachable\r\n";
    flush(client_);
    return close(std::string("upstream connect: ") + std::strerror(err));
  }
  setsockopt(upstream_.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  connectDeadline_ = std::chrono::steady_clock::now() + config_.connectTimeout;
  host_.reactor().add(upstream_.fd, EPOLLOUT, &upstream_);
  // The client waits for the server's greeting; nothing to read from it yet (but its
  // TLS handshake, for implicit TLS, can begin at once).
  host_.reactor().add(client_.fd, EPOLLIN, &client_);
  if (implicitTls_) startTls(client_);
}

void Session::startTls(Endpoint& ep) {
  auto context = ep.isClient ? host_.clientTls() : host_.upstreamTls();
  ep.tlsConnection = std::make_unique<TlsConnection>(context, ep.fd, ep.isClient,
                                                     ep.isClient ? std::string() : config_.upstream.host);
  ep.tls = Endpoint::Tls::Handshaking;
  ep.startTlsWhenFlushed = false;
  continueHandshake(ep);
}

void Session::continueHandshake(Endpoint& ep) {
  using Status = TlsConnection::Status;
  const auto status = ep.tlsConnection->handshake();
  if (status == Status::Ok) {
    ep.tls = Endpoint::Tls::On;
    ep.tlsWantsWrite = false;
    sessionLog().debug("session client=%s %s TLS: %s", clientAddress_, std::string(ep.isClient ? "client" : "upstream"),
                       ep.tlsConnection->peerSummary());
    return onTlsUp(ep);
  }
  if (status == Status::WantRead || status == Status::WantWrite) {
    ep.tlsWantsWrite = status == Status::WantWrite;
    return updateInterest(ep);
  }
  const std::string why = ep.tlsConnection->error().empty() ? "handshake failed" : ep.tlsConnection->error();
  if (ep.isClient) return close("client TLS: " + why);
  sessionLog().error("session client=%s upstream TLS failed: %s", clientAddress_, why);
  client_.out += "* BYE [UNAVAILABLE] cannot reach the mail server securely\r\n";
  flush(client_);
  close("upstream TLS: " + why);
}

void Session::onTlsUp(Endpoint& ep) {
  if (ep.isClient) {
    updateInterest(client_);
    flush(client_);  // the greeting may be waiting for the handshake
    if (!closed_) processClient();
    return;
  }
  phase_ = Upstream::Ready;
  updateInterest(upstream_);
  flush(upstream_);
  if (!closed_) processUpstream();
  if (!closed_) processClient();  // commands held while upstream was not ready
}

void Session::onConnected() {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(upstream_.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    client_.out += "* BYE [UNAVAILABLE] mail server unreachable\r\n";
    flush(client_);
    return close(std::string("upstream connect: ") + std::strerror(err));
  }
  connected_ = true;
  switch (config_.upstreamSecurity) {
    case UpstreamSecurity::Tls:
      phase_ = Upstream::Handshaking;
      return startTls(upstream_);
    case UpstreamSecurity::StartTls:
      phase_ = Upstream::Greeting;
      return updateInterest(upstream_);
    case UpstreamSecurity::None:
      phase_ = Upstream::Ready;
      updateInterest(upstream_);
      processClient();  // commands that arrived early
      return;
  }
}

void Session::onIo(Endpoint& ep, std::uint32_t events) {
  if (closed_) return;
  if (&ep == &upstream_ && !connected_) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) onConnected();
    return;
  }
  if (ep.tls == Endpoint::Tls::Handshaking) return continueHandshake(ep);
  bool retryRead = false;
  if (events & EPOLLOUT) {
    retryRead = ep.tlsWantsWrite;  // a TLS read waited for the socket to take bytes
    ep.tlsWantsWrite = false;
    flush(ep);
    if (ep.isClient && !delivery_.empty() && !closed_) deliverMore();
  }
  if (closed_) return;
  if (retryRead || (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    if (events & EPOLLIN) flush(ep);  // a TLS write may have waited for input
    if (!readFrom(ep)) return;
    if (ep.isClient) processClient();
    else processUpstream();
  }
}

bool Session::readFrom(Endpoint& ep) {
  if (ep.readPaused || ep.eof) return true;
  // With TLS, decrypted bytes can wait inside OpenSSL where epoll cannot see them: read
  // until it has none (bounded, so one busy connection cannot starve the others).
  // One read buffer for every session on the reactor thread: a session only keeps the
  // bytes it received, so thousands of idle sessions cost little memory.
  static thread_local char buffer[kReadBlock];
  for (int round = 0; round < 16; ++round) {
    ssize_t n = 0;
    bool again = false;
    std::string error;
    if (ep.tls == Endpoint::Tls::On) {
      auto status = TlsConnection::Status::Ok;
      const auto got = ep.tlsConnection->read(buffer, kReadBlock, status);
      n = static_cast<ssize_t>(got);
      if (got == 0) {
        if (status == TlsConnection::Status::WantRead) again = true;
        else if (status == TlsConnection::Status::WantWrite) again = ep.tlsWantsWrite = true;
        else if (status == TlsConnection::Status::Error) {
          n = -1;
          error = ep.tlsConnection->error();
        }
      }
    } else {
      n = ::recv(ep.fd, buffer, kReadBlock, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) again = true;
      if (n < 0 && !again) error = std::strerror(errno);
    }
    if (n > 0) {
      ep.in.append(buffer, static_cast<std::size_t>(n));
      lastActivity_ = std::chrono::steady_clock::now();
      if (!ep.isClient) lastUpstreamData_ = lastActivity_;
      if (ep.isClient) {
        stats_.bytesFromClient += static_cast<std::uint64_t>(n);
        host_.metrics().clientBytesReceived.inc(static_cast<std::uint64_t>(n));
      }
      if (ep.tls == Endpoint::Tls::On && ep.tlsConnection->pending()) continue;
      if (static_cast<std::size_t>(n) == kReadBlock) continue;
      return true;
    }
    if (again) {
      if (ep.tlsWantsWrite) updateInterest(ep);
      return true;
    }
    ep.eof = true;
    if (ep.isClient) {
      close(n == 0 ? "client closed" : "client: " + error);
      return false;
    }
    // The server went away: deliver what is still due, then close.
    if (!scanPending_ && client_.out.empty()) {
      serverGone(n == 0 ? "server closed" : "server: " + error);
      return false;
    }
    updateInterest(upstream_);
    return true;
  }
  return true;
}

void Session::flush(Endpoint& ep) {
  if (closed_ || ep.fd < 0) return;
  if (ep.tls == Endpoint::Tls::Handshaking) return updateInterest(ep);  // nothing in clear yet
  while (!ep.out.empty()) {
    ssize_t n = 0;
    bool again = false;
    std::string error;
    if (ep.tls == Endpoint::Tls::On) {
      auto status = TlsConnection::Status::Ok;
      n = static_cast<ssize_t>(ep.tlsConnection->write(ep.out.data(), ep.out.size(), status));
      if (n == 0) {
        again = status == TlsConnection::Status::WantRead || status == TlsConnection::Status::WantWrite;
        error = ep.tlsConnection->error();
      }
    } else {
      n = ::send(ep.fd, ep.out.data(), ep.out.size(), MSG_NOSIGNAL);
      again = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
      if (n < 0) error = std::strerror(errno);
    }
    if (n > 0) {
      if (ep.isClient) {
        stats_.bytesToClient += static_cast<std::uint64_t>(n);
        host_.metrics().clientBytesSent.inc(static_cast<std::uint64_t>(n));
      }
      ep.out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (again) break;
    return close(std::string(ep.isClient ? "client" : "server") + " write: " + error);
  }
  if (ep.out.empty() && ep.out.capacity() > kKeepCapacity) std::string().swap(ep.out);  // idle sessions stay small
  if (ep.out.empty() && ep.startTlsWhenFlushed) return startTls(ep);  // after "OK Begin TLS"

  if (ep.isClient && upstream_.eof && ep.out.empty() && !scanPending_) {
    return draining_ ? close("shutdown") : serverGone("server closed");
  }
  // Backpressure: a slow side stops the other side's reading.
  Endpoint& other = ep.isClient ? upstream_ : client_;
  if (ep.out.size() > kPauseAbove) other.readPaused = true;
  else if (ep.out.size() < kResumeBelow && other.readPaused && !draining_ && !(other.isClient == false && scanPending_)) {
    other.readPaused = false;
  }
  updateInterest(ep);
  updateInterest(other);
}

void Session::updateInterest(Endpoint& ep) {
  if (closed_ || ep.fd < 0 || (&ep == &upstream_ && !connected_)) return;
  std::uint32_t events = 0;
  if (ep.tls == Endpoint::Tls::Handshaking) {
    events = ep.tlsWantsWrite ? EPOLLOUT : EPOLLIN;
  } else {
    if (!ep.readPaused && !ep.eof) events |= EPOLLIN;
    if (!ep.out.empty() || ep.tlsWantsWrite || (ep.isClient && !delivery_.empty())) events |= EPOLLOUT;
  }
  host_.reactor().modify(ep.fd, events, &ep);
}

void Session::processClient() {
  if (closed_) return;
  if (phase_ != Upstream::Ready || client_.tls == Endpoint::Tls::Handshaking || client_.startTlsWhenFlushed) {
    // Not ready to relay yet: keep what the client sent, but not without bound.
    if (client_.in.size() > kPauseAbove) {
      client_.readPaused = true;
      updateInterest(client_);
    }
    return;
  }
  std::size_t pos = 0;
  for (bool more = true; more && !closed_;) {
    const auto step = fromClient_.feed(std::string_view(client_.in).substr(pos));
    pos += step.consumed;
    using Ev = imap::Framer::Event;
    switch (step.event) {
      case Ev::NeedMore: more = false; break;
      case Ev::Text: {
        const auto seg = fromClient_.text();
        bool forward = true;
        if (authPlainPending_) {
          // The client's SASL PLAIN response: a line of base64, not a command ("*" cancels).
          authPlainPending_ = false;
          if (seg.rfind("*", 0) != 0) user_ = printable(plainUser(seg.substr(0, seg.find_first_of("\r\n"))));
        } else if (clientAtStart_) {
          if (idling_ && upper(seg.substr(0, 4)) == "DONE") {
            idling_ = false;
          } else {
            forward = inspectCommand(seg);
            if (forward) ++outstanding_;
          }
        }
        if (forward) upstream_.out.append(seg);
        clientAtStart_ = fromClient_.messageEnd();
        if (client_.startTlsWhenFlushed) {
          // Nothing a client sent after STARTTLS may be read as if it came over TLS.
          pos = client_.in.size();
          more = false;
        }
        loginUserLiteral_ = loginUserLiteral_ && !clientAtStart_;
        break;
      }
      case Ev::LiteralData:
        if (loginUserLiteral_ && user_.size() < 256) user_ += printable(std::string(fromClient_.literalData()));
        upstream_.out.append(fromClient_.literalData());
        break;
      case Ev::LiteralEnd:
        loginUserLiteral_ = false;  // only the first literal of LOGIN is the user
        break;
      case Ev::Error:
        client_.out += "* BYE [ALERT] " + fromClient_.errorText() + "\r\n";
        flush(client_);
        return close("client protocol error: " + fromClient_.errorText());
    }
  }
  client_.in.erase(0, pos);
  if (client_.in.empty() && !fromClient_.inPartialSegment()) partialLineSince_.reset();
  else if (!partialLineSince_) partialLineSince_ = std::chrono::steady_clock::now();
  if (client_.in.empty() && client_.in.capacity() > kKeepCapacity) std::string().swap(client_.in);
  if (client_.readPaused && !draining_ && upstream_.out.size() < kResumeBelow) {
    client_.readPaused = false;
    updateInterest(client_);
  }
  flush(upstream_);
}

bool Session::inspectCommand(std::string_view segment) {
  std::string_view s = segment;
  const std::string tag = nextWord(s);
  const std::string command = upper(nextWord(s));
  if (command == "LOGIN") {
    bool quoted = false;
    std::string user = nextWord(s, &quoted);
    if (!quoted && !user.empty() && (user.front() == '{' || user.front() == '~')) {
      user_.clear();
      loginUserLiteral_ = true;  // the user name is the literal that follows
    } else {
      user_ = printable(user.substr(0, 256));
    }
  } else if (command == "AUTHENTICATE") {
    const std::string mechanism = upper(nextWord(s));
    if (mechanism == "PLAIN") {
      const std::string initial = nextWord(s);
      if (initial.empty()) authPlainPending_ = true;
      else if (initial != "=") user_ = printable(plainUser(initial));
    }
  } else if (command == "FETCH" || (command == "UID" && upper(nextWord(s)) == "FETCH")) {
    if (fetchTags_.size() >= kMaxTrackedTags) fetchTags_.clear();  // a client that never waits
    fetchTags_.insert(tag);
    // Partial fetches of the whole message: "BODY[]<0.N>", "BODY.PEEK[]<0.N>", "BINARY[]<0.N>".
    const std::string items = upper(s);
    for (std::size_t at = items.find("[]<0."); at != std::string::npos; at = items.find("[]<0.", at + 1)) {
      std::uint64_t n = 0;
      std::size_t i = at + 5;
      for (; i < items.size() && std::isdigit(static_cast<unsigned char>(items[i])) && n < (1ull << 40); ++i) {
        n = n * 10 + static_cast<std::uint64_t>(items[i] - '0');
      }
      if (i < items.size() && items[i] == '>') {
        auto [it, fresh] = partialRequests_.emplace(tag, n);
        if (!fresh) it->second = std::min(it->second, n);
      }
    }
  } else if (command == "IDLE") {
    idling_ = true;
  } else if (command == "APPEND") {
    ++stats_.unscannedUpload;  // uploads are relayed unscanned for now
    host_.metrics().unscanned(Unscanned::Upload);
    sessionLog().information("session client=%s user=%s unscanned upload (APPEND)", clientAddress_, user_);
  } else if (command == "SELECT" || command == "EXAMINE") {
    bool quoted = false;
    std::string mailbox = nextWord(s, &quoted);
    selectTag_ = tag;
    selectMailbox_ = (!quoted && !mailbox.empty() && mailbox.front() == '{') ? std::string() : mailbox;
    pendingUidValidity_.reset();
  } else if (command == "STARTTLS" && host_.clientTls() && client_.tls == Endpoint::Tls::Off) {
    // The proxy terminates the client's TLS itself; the upstream connection has its own.
    client_.out += tag + " OK Begin TLS negotiation now\r\n";
    client_.startTlsWhenFlushed = true;
    flush(client_);
    return false;
  } else if (command == "COMPRESS" || command == "STARTTLS") {
    // The proxy must see every byte in clear: it cannot let the stream become opaque.
    client_.out += tag + " NO " + command + " is not available through this proxy\r\n";
    flush(client_);
    return false;
  }
  return true;
}

void Session::inspectResponse(std::string_view segment) {
  if (!segment.empty() && segment.front() != '*' && segment.front() != '+' && outstanding_ > 0) --outstanding_;
  if (!partialRequests_.empty() && !segment.empty() && segment.front() != '*' && segment.front() != '+') {
    const auto space = segment.find(' ');
    partialRequests_.erase(std::string(segment.substr(0, space)));  // the command completed
  }
  // Tagged completion of SELECT/EXAMINE: the mailbox is now selected.
  if (!selectTag_.empty() && segment.size() > selectTag_.size() && segment.substr(0, selectTag_.size()) == selectTag_ &&
      segment[selectTag_.size()] == ' ') {
    std::string_view rest = segment.substr(selectTag_.size() + 1);
    if (upper(rest.substr(0, 2)) == "OK") {
      mailbox_ = selectMailbox_;
      uidValidity_ = pendingUidValidity_;
    }
    selectTag_.clear();
    return;
  }
  const auto pos = upper(segment.substr(0, std::min<std::size_t>(segment.size(), 64))).find("[UIDVALIDITY ");
  if (segment.rfind("* OK", 0) == 0 && pos != std::string::npos) {
    std::uint32_t v = 0;
    bool any = false;
    for (std::size_t i = pos + 13; i < segment.size() && std::isdigit(static_cast<unsigned char>(segment[i])); ++i) {
      v = v * 10 + static_cast<std::uint32_t>(segment[i] - '0');
      any = true;
    }
    if (any) pendingUidValidity_ = v;
  }
}

std::string Session::completeFetch(std::string segment) {
  const auto space = segment.find(' ');
  if (space == std::string::npos) return segment;
  const auto it = fetchTags_.find(segment.substr(0, space));
  if (it == fetchTags_.end()) return segment;
  fetchTags_.erase(it);
  if (withheld_.empty() || upper(segment.substr(space + 1, 3)) != "OK ") return segment;
  // RFC 3501: [ALERT] text must be shown to the user; NO: the data was not delivered.
  std::string out = segment.substr(0, space) + " NO [ALERT] imapav: message withheld, malware found: " + withheld_ + "\r\n";
  withheld_.clear();
  return out;
}

void Session::sendToClient(std::string_view bytes, bool endsMessage) {
  client_.out.append(bytes);
  clientMidMessage_ = !endsMessage;
}

void Session::flushHeld() {
  for (auto& p : held_) client_.out += p.bytes;
  if (!held_.empty()) clientMidMessage_ = true;
  held_.clear();
  heldBytes_ = 0;
}

// upstream.security = starttls: the answer to our STARTTLS, which the client never sees.
void Session::awaitStartTlsOk() {
  std::size_t pos = 0;
  for (;;) {
    const auto step = fromServer_.feed(std::string_view(upstream_.in).substr(pos));
    pos += step.consumed;
    if (step.event == imap::Framer::Event::NeedMore) break;
    if (step.event == imap::Framer::Event::Error) return close("server protocol error: " + fromServer_.errorText());
    if (step.event != imap::Framer::Event::Text) continue;
    const std::string seg(fromServer_.text());
    if (seg.rfind("imapav0 ", 0) != 0) continue;  // untagged lines before the answer
    if (upper(seg.substr(8, 3)) != "OK ") {
      sessionLog().error("session client=%s upstream refused STARTTLS: %s", clientAddress_, printable(seg));
      client_.out += "* BYE [UNAVAILABLE] cannot reach the mail server securely\r\n";
      flush(client_);
      return close("upstream refused STARTTLS");
    }
    // Bytes after the OK were sent before TLS: never trust them (STARTTLS injection).
    upstream_.in.clear();
    phase_ = Upstream::Handshaking;
    return startTls(upstream_);
  }
  upstream_.in.erase(0, pos);
}

void Session::processUpstream() {
  if (phase_ == Upstream::StartTlsSent) return awaitStartTlsOk();
  // A delivery that completes inside this loop must not re-enter it (deliverMore).
  struct Guard {
    bool& flag;
    explicit Guard(bool& f) : flag(f) { flag = true; }
    ~Guard() { flag = false; }
  } guard(inUpstream_);
  std::size_t pos = 0;
  for (bool more = true; more && !closed_ && !scanPending_;) {
    const auto step = fromServer_.feed(std::string_view(upstream_.in).substr(pos));
    pos += step.consumed;
    using Ev = imap::Framer::Event;
    switch (step.event) {
      case Ev::NeedMore: more = false; break;
      case Ev::Text: {
        std::string seg(fromServer_.text());
        const bool ends = fromServer_.messageEnd();
        if (serverAtStart_) {
          seg = imap::filterCapabilities(seg, imap::defaultStrippedCapabilities());
          seg = imap::filterCapabilities(seg, {"STARTTLS", "LOGINDISABLED"});
          if (host_.clientTls() && client_.tls == Endpoint::Tls::Off && !client_.startTlsWhenFlushed) {
            seg = imap::addCapability(seg, "STARTTLS");
          }
          inspectResponse(seg);
          if (!seg.empty() && seg.front() != '*' && seg.front() != '+') seg = completeFetch(std::move(seg));
          fetch_.segment(seg, true);
          inFetch_ = fetch_.isFetch();  // a malformed FETCH is held too: see below
          segments_ = 0;
          captured_ = capturing_ = holdingLiteral_ = false;
        } else if (inFetch_) {
          fetch_.segment(seg, false);
        }
        if (!inFetch_) {
          sendToClient(seg, ends);
        } else {
          const std::size_t index = segments_++;
          held_.push_back({Piece::Kind::Segment, seg, index, nullptr});
          heldBytes_ += seg.size();
          if (auto size = fromServer_.literalSize()) {
            const auto info = fetch_.pendingLiteral();
            // A FETCH whose items do not parse could hide a message: scan its literal
            // as if it were one, rather than let it through unscanned.
            const bool partial = info && info->kind == imap::LiteralKind::PartialFromZero;
            bool shorterThanAsked = partial && !partialRequests_.empty();
            for (const auto& [tag, asked] : partialRequests_) shorterThanAsked = shorterThanAsked && *size < asked;
            const bool whole = fetch_.malformed() || (info && info->kind == imap::LiteralKind::WholeMessage) ||
                               shorterThanAsked;
            if (whole && !captured_ && (*size <= config_.maxMessageSize || config_.failMode == LocalFailMode::Drop)) {
              captureSegment_ = index;
              startCapture(*size, info ? info->item : std::string("(unparsed FETCH)"));
            } else {
              if (whole) {  // over scan.max_message_size with fail_mode = pass
                ++stats_.unscannedTooLarge;
                host_.metrics().unscanned(Unscanned::TooLarge);
                sessionLog().warning("session client=%s user=%s UNSCANNED message of %Lu bytes over scan.max_message_size",
                                     clientAddress_, user_, static_cast<Poco::UInt64>(*size));
              } else if (!partial && info && info->item.rfind("BODY[", 0) == 0 && info->item.rfind("BODY[]", 0) != 0 &&
                         info->item.find("HEADER") == std::string::npos && info->item.find("MIME") == std::string::npos) {
                // A body part or the text (BODY[2], BODY[TEXT]): content, relayed unscanned for now.
                ++stats_.unscannedSection;
                host_.metrics().unscanned(Unscanned::Section);
                sessionLog().information("session client=%s user=%s unscanned section fetch %s", clientAddress_, user_,
                                         info->item);
              } else if (partial) {
                ++stats_.unscannedPartial;
                host_.metrics().unscanned(Unscanned::Partial);
                sessionLog().information("session client=%s user=%s unscanned partial fetch %s", clientAddress_, user_,
                                         info->item);
              }
              if (*size <= kHoldSmallLiteral && heldBytes_ + *size <= config_.maxMessageSize) {
                holdingLiteral_ = true;  // e.g. a subject inside ENVELOPE: keep the response whole
                held_.push_back({Piece::Kind::Bytes, {}, 0, nullptr});
              } else if (captured_) {
                // A second large literal after the captured message: cannot hold it.
                return close("FETCH response with two large literals");
              } else {
                flushHeld();  // stream it; RFC822.SIZE already sent cannot be corrected any more
                inFetch_ = false;
              }
            }
          }
          if (ends && inFetch_) {
            if (captured_ || capturing_) {
              scanPending_ = true;
              scanStarted_ = lastKeepalive_ = std::chrono::steady_clock::now();
              if (earlyReply_) {
                auto reply = std::move(*earlyReply_);
                earlyReply_.reset();
                deliver(std::move(reply));
              }
            } else {
              flushHeld();
              clientMidMessage_ = false;
            }
            inFetch_ = false;
          }
        }
        serverAtStart_ = ends;
        if (draining_ && ends && readyForBye()) more = false;  // time for BYE
        if (phase_ == Upstream::Greeting && ends) {
          // The greeting went to the client; now secure the upstream connection.
          upstream_.out += "imapav0 STARTTLS\r\n";
          phase_ = Upstream::StartTlsSent;
          more = false;
        }
        break;
      }
      case Ev::LiteralData: {
        const auto data = fromServer_.literalData();
        if (capturing_ && oversized_) {
          const auto keep = kHeaderPrefix - std::min(kHeaderPrefix, capture_->size());
          if (keep > 0 && !capture_->append(data.substr(0, keep))) return close("capture failed: " + capture_->error());
        } else if (capturing_) {
          if (!capture_->append(data)) {
            sessionLog().error("session client=%s cannot hold a message for scanning: %s", clientAddress_,
                               capture_->error());
            client_.out += "* BYE [UNAVAILABLE] the mail gateway cannot hold this message for scanning\r\n";
            flush(client_);
            return close("capture failed: " + capture_->error());
          }
        } else if (holdingLiteral_) {
          held_.back().bytes.append(data);
          heldBytes_ += data.size();
        } else sendToClient(data, false);
        break;
      }
      case Ev::LiteralEnd:
        if (capturing_) {
          capturing_ = false;
          captured_ = true;
          capture_->finish();
        }
        holdingLiteral_ = false;
        break;
      case Ev::Error:
        client_.out += "* BYE [ALERT] the mail server sent a response the proxy cannot read\r\n";
        flush(client_);
        return close("server protocol error: " + fromServer_.errorText());
    }
  }
  upstream_.in.erase(0, pos);
  if (upstream_.in.empty() && upstream_.in.capacity() > kKeepCapacity) std::string().swap(upstream_.in);
  if (phase_ == Upstream::StartTlsSent) {
    flush(upstream_);
    if (!upstream_.in.empty() && !closed_) awaitStartTlsOk();
    return;
  }
  if (scanPending_) upstream_.readPaused = upstream_.in.size() > kResumeBelow;
  flush(client_);
  updateInterest(upstream_);
  if (draining_) byeIfIdle();
}

std::string Session::imapUrl() const {
  imap::ImapUrl url;
  url.user = user_;
  url.host = config_.upstream.host + ":" + std::to_string(config_.upstream.port);
  url.mailbox = mailbox_;
  url.uidValidity = uidValidity_;
  url.uid = fetch_.uid();
  return imap::formatImapUrl(url);
}

// The scan begins with the literal's first byte: the ICAP client reads the message while
// it arrives, so scanning overlaps the download from the mail server.
void Session::startCapture(std::uint64_t size, const std::string& item) {
  capturing_ = true;
  captureItem_ = item;
  held_.push_back({Piece::Kind::Captured, {}, 0, nullptr});
  earlyReply_.reset();
  if (size > config_.maxMessageSize) {
    // Too large to scan, and fail_mode = drop: only the header section is kept (for the
    // notice); the rest is read from the server and discarded, never sent.
    oversized_ = true;
    capture_ = std::make_shared<MessageBuffer>(config_.spillThreshold, config_.spillDir, kHeaderPrefix);
    ScanReply reply;
    reply.status = ScanStatus::Failed;
    reply.failure = "message of " + std::to_string(size) + " bytes over scan.max_message_size";
    earlyReply_ = std::move(reply);
    sessionLog().warning("session client=%s user=%s message of %Lu bytes over scan.max_message_size: dropped (fail_mode)",
                         clientAddress_, user_, static_cast<Poco::UInt64>(size));
    return;
  }
  oversized_ = false;
  capture_ = std::make_shared<MessageBuffer>(config_.spillThreshold, config_.spillDir, static_cast<std::size_t>(size));
  ++stats_.scanned;
  ScanRequest request;
  request.message = capture_;
  request.imapUrl = imapUrl();
  request.clientIp = clientAddress_;
  request.user = user_;
  host_.scanAsync(std::move(request), weak_from_this(),
                  [](Session& s, ScanReply reply) { s.onScanDone(std::move(reply)); });
}

void Session::onScanDone(ScanReply reply) {
  if (closed_) return;
  if (!scanPending_) {
    earlyReply_ = std::move(reply);  // delivered when the rest of the response is in
    return;
  }
  deliver(std::move(reply));
}

void Session::deliver(ScanReply reply) {
  if (capture_->spilled()) ++stats_.spilled;
  host_.metrics().delivered(reply, config_.failMode == LocalFailMode::Pass, capture_->size(), capture_->spilled());
  if (reply.status == ScanStatus::Replaced && reply.protocolOnly) withhold(reply);
  else queueDelivery(std::move(reply));
  held_.clear();
  heldBytes_ = 0;
  capture_.reset();
  captured_ = false;
  clientMidMessage_ = true;
  deliveryOffset_ = 0;
  deliverMore();
}

// Protocol-only notice: the FETCH response of this message is not sent at all, and the
// command's tagged OK becomes NO [ALERT] naming it (completeFetch).
void Session::withhold(const ScanReply& reply) {
  ++stats_.withheld;
  const auto uid = fetch_.uid();
  std::string what = (uid ? "UID " + std::to_string(*uid) : std::string("a message")) + " (" +
                     (reply.threats.empty() ? std::string("unknown") : reply.threats.substr(0, 200)) + ")";
  if (withheld_.size() < 1000) withheld_ += (withheld_.empty() ? "" : ", ") + what;
  sessionLog().information("scan client=%s user=%s url=%s item=%s outcome=withheld verdict=%s threats=\"%s\" server=%s ms=%Ld",
                           clientAddress_, user_, imapUrl(), captureItem_, reply.verdict, reply.threats, reply.server,
                           static_cast<Poco::Int64>(reply.elapsed.count() / 1000));
}

// The held response with corrected sizes, queued to go out as the client takes it.
void Session::queueDelivery(ScanReply reply) {
  // Replaced (and a PassedUnscanned that came back as a 200): the server's message;
  // otherwise the original.
  std::shared_ptr<const MessageBuffer> content = capture_;
  if (reply.content) content = std::move(reply.content);
  std::string outcome;
  switch (reply.status) {
    case ScanStatus::Clean:
      ++stats_.clean;
      outcome = "clean";
      break;
    case ScanStatus::Replaced:
      ++stats_.replaced;
      outcome = "replaced";
      break;
    case ScanStatus::PassedUnscanned:
      ++stats_.unscanned;
      outcome = "unscanned";
      break;
    case ScanStatus::Failed:
      ++stats_.failed;
      outcome = config_.failMode == LocalFailMode::Pass ? "unscanned-failed" : "dropped-failed";
      break;
  }
  if (reply.status == ScanStatus::Failed && config_.failMode == LocalFailMode::Drop) {
    mime::NoticeSpec spec;
    spec.body =
        "The mail gateway could not have this message checked for viruses, so it was\r\n"
        "withheld. Nothing of the original message is contained in this notice.\r\n\r\n"
        "If you need it, contact your mail administrator and quote the Message-ID.\r\n";
    spec.fallbackFrom = "imapav <postmaster@localhost>";
    spec.date = mime::rfc5322Date(std::time(nullptr));
    spec.extraHeaders.emplace_back("X-Imapav-Status", "dropped");
    spec.extraHeaders.emplace_back("X-Imapav-Reason", oversized_ ? "too large to scan (scan.max_message_size)"
                                                                 : "no scanning server answered");
    // The notice keeps From/To/Subject...: the header is enough.
    std::string head(std::min<std::size_t>(capture_->size(), kHeaderPrefix), '\0');
    const long got = capture_->readAvailable(0, head.data(), head.size());
    head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    content = MessageBuffer::fromString(mime::buildNotice(head, spec));
  }
  const std::size_t size = content->size();
  sessionLog().information("scan client=%s user=%s url=%s item=%s size=%z outcome=%s verdict=%s threats=\"%s\" server=%s ms=%Ld%s",
                           clientAddress_, user_, imapUrl(), captureItem_, size, outcome, reply.verdict,
                           reply.threats, reply.server, static_cast<Poco::Int64>(reply.elapsed.count() / 1000),
                           reply.failure.empty() ? std::string() : " failure=\"" + reply.failure + "\"");

  // The held response with corrected sizes, sent as the client takes it.
  const auto sizeField = fetch_.rfc822Size();
  for (auto& piece : held_) {
    if (piece.kind == Piece::Kind::Segment) {
      if (sizeField && sizeField->segmentIndex == piece.segment) {
        piece.bytes = imap::rewriteNumberAt(piece.bytes, sizeField->offset, sizeField->length, size);
      }
      if (piece.segment == captureSegment_) piece.bytes = imap::rewriteLiteralSize(piece.bytes, size);
    } else if (piece.kind == Piece::Kind::Captured) {
      piece.body = content;
    }
    delivery_.push_back(std::move(piece));
  }
}

// Moves the next part of the delivery into the client's output while the client takes it
// (called again on EPOLLOUT); when all is out, the relay resumes.
void Session::deliverMore() {
  while (!closed_ && !delivery_.empty() && client_.out.size() < kDeliveryChunk) {
    Piece& piece = delivery_.front();
    if (!piece.body) {
      client_.out += piece.bytes;
      delivery_.pop_front();
      continue;
    }
    const std::size_t room = kDeliveryChunk - client_.out.size();
    const std::size_t old = client_.out.size();
    client_.out.resize(old + room);
    const long n = piece.body->readAvailable(deliveryOffset_, client_.out.data() + old, room);
    client_.out.resize(old + static_cast<std::size_t>(std::max(n, 0L)));
    if (n < 0) {
      sessionLog().error("session client=%s cannot read a held message back: %s", clientAddress_, piece.body->error());
      return close("cannot read a held message back");
    }
    deliveryOffset_ += static_cast<std::size_t>(n);
    if (n == 0) {  // the whole (complete) message is out
      delivery_.pop_front();
      deliveryOffset_ = 0;
    }
  }
  if (closed_) return;
  if (!delivery_.empty() || !scanPending_) {
    flush(client_);
    return updateInterest(client_);
  }
  clientMidMessage_ = false;
  scanPending_ = false;
  upstream_.readPaused = false;
  if (inUpstream_) return;  // its loop goes on with what follows the response, then flushes
  // What arrived meanwhile (typically the tagged OK) goes out in the same send as the
  // message: one wake-up of the client, not two. When stopping, the BYE once all is out.
  processUpstream();
  if (closed_) return;
  if (upstream_.eof && client_.out.empty() && !scanPending_) serverGone("server closed");
}

// The mail server is gone with commands unanswered: tell the client why before closing,
// if nothing of the response in progress went out (it was held, or there is none). Inside
// a relayed literal only closing is right: more bytes would be read as the literal's.
void Session::serverGone(const std::string& why) {
  if (outstanding_ > 0 && !clientMidMessage_ && (serverAtStart_ || inFetch_) && !closed_) {
    outstanding_ = 0;  // once: flush() may come back here
    client_.out += "* BYE [UNAVAILABLE] imapav: the mail server closed the connection\r\n";
    flush(client_);
  }
  close(why);
}

void Session::drain() {
  draining_ = true;
  client_.readPaused = true;  // no new commands; the response being delivered is finished
  updateInterest(client_);
  byeIfIdle();
}

bool Session::readyForBye() const {
  // At a response boundary, with no answer still due (a client in IDLE waits for nothing).
  return !scanPending_ && !clientMidMessage_ && !inFetch_ && serverAtStart_ && (outstanding_ == 0 || idling_);
}

void Session::byeIfIdle() {
  if (!draining_ || closed_ || !readyForBye()) return;
  upstream_.readPaused = true;
  updateInterest(upstream_);
  client_.out += "* BYE imapav-redirector is shutting down\r\n";
  upstream_.eof = true;  // close as soon as the client has it all
  flush(client_);
  if (!closed_ && client_.out.empty()) close("shutdown");
}

void Session::tick(std::chrono::steady_clock::time_point now) {
  if (closed_) return;
  if (!connected_ && now > connectDeadline_) {
    client_.out += "* BYE [UNAVAILABLE] mail server did not answer\r\n";
    flush(client_);
    return close("upstream connect timeout");
  }
  if (scanPending_ && !clientMidMessage_ && now - lastKeepalive_ >= config_.keepaliveInterval) {
    // Between responses an untagged OK keeps clients from timing out (Thunderbird: 100 s).
    client_.out += "* OK imapav: scanning a message\r\n";
    lastKeepalive_ = now;
    flush(client_);
  }
  if (!scanPending_ && now - lastActivity_ > config_.idleTimeout) {
    client_.out += "* BYE idle for too long\r\n";
    flush(client_);
    return close("idle timeout");
  }
  if (!serverAtStart_ && !clientMidMessage_ && now - lastUpstreamData_ > config_.upstreamTimeout) {
    // Inside a response (a literal it has begun) the server went silent: it will not
    // finish. What was held of the response is dropped; the client gets a BYE instead,
    // unless part of the response was relayed already (see serverGone).
    if (inFetch_) {
      client_.out += "* BYE [UNAVAILABLE] imapav: the mail server stopped in the middle of a response\r\n";
      flush(client_);
    }
    return close("upstream timeout in the middle of a response");
  }
  if (partialLineSince_ && now - *partialLineSince_ > config_.lineTimeout) {
    client_.out += "* BYE [ALERT] command line not completed in time\r\n";
    flush(client_);
    close("line timeout");
  }
}

void Session::close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  if (capture_) capture_->abort("session closed: " + why);  // frees the worker reading it
  for (Endpoint* ep : {&client_, &upstream_}) {
    if (ep->fd >= 0) {
      host_.reactor().remove(ep->fd);
      ::close(ep->fd);
      ep->fd = -1;
    }
  }
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
  sessionLog().information(
      "session client=%s user=%s bytes_in=%Lu bytes_out=%Lu scanned=%u clean=%u replaced=%u unscanned=%u failed=%u "
      "unscanned_partial=%u unscanned_section=%u unscanned_upload=%u unscanned_too_large=%u spilled=%u withheld=%u duration_s=%Ld "
      "end=\"%s\"",
      clientAddress_, user_, static_cast<Poco::UInt64>(stats_.bytesFromClient), static_cast<Poco::UInt64>(stats_.bytesToClient),
      stats_.scanned, stats_.clean, stats_.replaced, stats_.unscanned, stats_.failed, stats_.unscannedPartial,
      stats_.unscannedSection, stats_.unscannedUpload, stats_.unscannedTooLarge, stats_.spilled, stats_.withheld,
      static_cast<Poco::Int64>(seconds), why);
  host_.metrics().sessionClosed(why);
  host_.sessionClosed(*this);
}

}  // namespace imapav::redirector
