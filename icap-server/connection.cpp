#include "icap-server/connection.hpp"

#include <Poco/Logger.h>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "icap-server/scan/message_body.hpp"
#include "shared/icap/request_parser.hpp"

namespace imapav::icapd {
namespace {

constexpr std::size_t kReadBlock = 64 * 1024;
constexpr int kStopCheckMs = 200;  // how often a waiting connection looks at the stop flag

Poco::Logger& connLog() { return Poco::Logger::get("icapd.conn"); }

// Which parts each method may carry (RFC 3507 4.4.1).
bool partsValid(const icap::RequestHead& head) {
  const auto& e = head.encapsulated;
  switch (head.method) {
    case icap::Method::Reqmod: return !e.resHdr && !e.resBody && !e.optBody;
    case icap::Method::Respmod: return !e.reqBody && !e.optBody;
    case icap::Method::Options: return !e.reqHdr && !e.resHdr && !e.reqBody && !e.resBody;
    case icap::Method::Other: return true;
  }
  return false;
}

}  // namespace

Connection::Connection(int fd, std::string peer, Service& service, const std::atomic<bool>& stopping)
    : fd_(fd), peer_(std::move(peer)), service_(service), stopping_(stopping) {}

Connection::Wait Connection::waitReadable(bool inRequest, std::chrono::steady_clock::time_point requestStart) {
  const auto& cfg = service_.config();
  auto deadline = std::chrono::steady_clock::now() + (inRequest ? cfg.readTimeout : cfg.idleTimeout);
  // A client that sends a byte now and then never hits the read timeout (slowloris):
  // the whole request has a deadline too.
  if (inRequest) deadline = std::min(deadline, requestStart + cfg.requestTimeout);
  for (;;) {
    // Between requests a stop closes the connection at once; inside one, we finish it.
    if (!inRequest && stopping_.load()) return Wait::Stopping;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Wait::Timeout;
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), kStopCheckMs)));
    if (rc > 0) return Wait::Readable;
    if (rc < 0 && errno != EINTR) return Wait::Failed;
  }
}

bool Connection::sendAll(std::string_view data) {
  const auto deadline = std::chrono::steady_clock::now() + service_.config().readTimeout;
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;  // the gateway stopped reading
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return false;
  }
  return true;
}

void Connection::run() {
  const auto& cfg = service_.config();
  icap::ParserLimits limits;
  limits.maxHeaderBytes = cfg.maxHeaderBytes;
  icap::RequestParser parser(limits);
  scan::MessageBody body(cfg.spillThreshold, cfg.spillDir);

  std::string in;
  std::size_t pos = 0;
  bool inRequest = false;
  // After a 413 for a body over the limit, the rest of that body is read and discarded
  // (within the request's deadlines) before closing: a gateway that writes the whole body
  // before reading (libicapapi does) then reads the 413, instead of a reset connection it
  // would take for a dead server.
  bool discarding = false;
  auto requestStart = std::chrono::steady_clock::now();

  const auto fail = [&](int status, const char* why) {
    connLog().warning("conn peer=%s status=%d reason=\"%s\"", peer_, status, std::string(why));
    sendAll(service_.errorResponse(status, true));
  };

  for (;;) {
    // Handle every event the buffered bytes give.
    for (bool more = true; more;) {
      const auto step = parser.feed(std::string_view(in).substr(pos));
      pos += step.consumed;
      using Ev = icap::RequestParser::Event;
      switch (step.event) {
        case Ev::NeedMore:
          more = false;
          break;
        case Ev::Head: {
          const auto& head = parser.head();
          service_.metrics().request(head.method);
          if (head.method == icap::Method::Other) return fail(501, "method not implemented");
          if (!service_.offers(head.service)) return fail(404, "unknown service");
          if ((head.method == icap::Method::Reqmod && !cfg.reqmod) ||
              (head.method == icap::Method::Respmod && !cfg.respmod)) {
            return fail(405, "method not offered by this service (icap.methods)");
          }
          if (!partsValid(head)) return fail(400, "encapsulated parts do not fit the method");
          body.clear();
          break;
        }
        case Ev::Body: {
          const auto data = parser.bodyData();
          if (parser.head().method == icap::Method::Options || discarding) break;  // opt-body: ignored
          if (body.size() + data.size() > cfg.maxBodySize) {
            connLog().warning("conn peer=%s status=413 reason=\"body over icap.max_body_size\"", peer_);
            if (!sendAll(service_.errorResponse(413, true))) return;
            discarding = true;
            body.clear();
            break;
          }
          if (!body.append(data)) {
            connLog().error("conn peer=%s cannot buffer body: %s", peer_, body.error());
            return fail(500, "cannot buffer the body");
          }
          break;
        }
        case Ev::PreviewEnd:
          if (discarding) return;
          // We scan whole messages only, so a preview always asks for the rest.
          service_.metrics().response(100);
          if (!sendAll("ICAP/1.0 100 Continue\r\n\r\n")) return;
          parser.continueAfterPreview();
          break;
        case Ev::Complete: {
          if (discarding) return;  // the 413 went out already
          const auto& head = parser.head();
          bool ok = true;
          bool close = false;
          if (head.method == icap::Method::Options) {
            close = head.connectionClose || stopping_.load();
            ok = sendAll(service_.optionsResponse(close, head.service));
          } else {
            const auto outcome = service_.evaluate(head, body, peer_);
            // A stop that came during the scan is announced in this answer.
            close = head.connectionClose || stopping_.load();
            ok = service_.answer(head, body, parser.ieof(), outcome, peer_, close,
                                 [this](std::string_view d) { return sendAll(d); });
          }
          // Bytes after this request belong to the next one, whose clock starts now
          // (stray line ends between requests do not count).
          inRequest = in.find_first_not_of("\r\n", pos) != std::string::npos;
          requestStart = std::chrono::steady_clock::now();
          body.clear();
          if (!ok || close) return;
          break;
        }
        case Ev::Error:
          if (discarding) return;
          return fail(parser.errorStatus(), parser.errorText().c_str());
      }
    }

    // Everything buffered was consumed: read more.
    if (pos == in.size()) {
      in.clear();
      pos = 0;
    }
    switch (waitReadable(inRequest, requestStart)) {
      case Wait::Readable: break;
      case Wait::Timeout:
        if (inRequest && !discarding) return fail(408, "timed out waiting for the request");
        if (inRequest) return;
        return;  // idle keep-alive connection
      case Wait::Stopping:
      case Wait::Failed:
        return;
    }
    const auto old = in.size();
    in.resize(old + kReadBlock);
    const ssize_t n = ::recv(fd_, in.data() + old, kReadBlock, 0);
    if (n <= 0) {
      in.resize(old);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (inRequest) connLog().warning("conn peer=%s closed inside a request", peer_);
      return;
    }
    in.resize(old + static_cast<std::size_t>(n));
    if (!inRequest) {  // the first bytes of a request
      inRequest = true;
      requestStart = std::chrono::steady_clock::now();
    }
  }
}

}  // namespace imapav::icapd
