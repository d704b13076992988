#include "icap-server/server.hpp"

#include <Poco/Logger.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "icap-server/connection.hpp"

namespace imapav::icapd {
namespace {

constexpr unsigned kMaxRejecters = 32;  // threads answering 503 at once; beyond, just close

Poco::Logger& serverLog() { return Poco::Logger::get("icapd.server"); }

std::string peerName(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
  }
  return host;
}

}  // namespace

Server::Server(Service& service) : service_(service) {}

Server::~Server() { stop(); }

std::uint16_t Server::start() {
  const auto& cfg = service_.config();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(cfg.listenPort);
  if (const int rc = getaddrinfo(cfg.listenHost.c_str(), port.c_str(), &hints, &res); rc != 0) {
    throw std::runtime_error("icap.listen: cannot resolve " + cfg.listenHost + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);

  listenFd_ = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (listenFd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listenFd_, res->ai_addr, res->ai_addrlen) != 0 || ::listen(listenFd_, 512) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listenFd_);
    listenFd_ = -1;
    throw std::runtime_error("icap.listen: cannot listen on " + cfg.listenHost + ":" + port + ": " + why);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(listenFd_, reinterpret_cast<sockaddr*>(&bound), &len);
  const auto boundPort = ntohs(bound.ss_family == AF_INET6
                                   ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                   : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
  return boundPort;
}

void Server::acceptLoop() {
  const unsigned limit = service_.config().maxConnections;
  while (!stopping_.load()) {
    pollfd p{listenFd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, 200);
    if (rc <= 0) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    const int fd = ::accept4(listenFd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        serverLog().error("accept: out of file descriptors");
        ::poll(nullptr, 0, 100);
      }
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (active_.load() >= limit) {
      service_.metrics().connectionsRejected.inc();
      if (rejecting_.load() >= kMaxRejecters) {
        ::close(fd);
        continue;
      }
      ++rejecting_;
      std::thread([this, fd] { reject(fd); }).detach();
      continue;
    }
    ++active_;
    service_.metrics().connectionsTotal.inc();
    service_.metrics().connectionsActive.add(1);
    std::thread([this, fd, peer = peerName(ss)]() mutable { serve(fd, std::move(peer)); }).detach();
  }
}

void Server::serve(int fd, std::string peer) {
  try {
    Connection(fd, std::move(peer), service_, stopping_).run();
  } catch (const std::exception& e) {
    // The data plane reports errors by value; anything thrown here is a bug or
    // bad_alloc. Keep the server up, drop this connection.
    serverLog().critical("connection failed: %s", std::string(e.what()));
  }
  ::close(fd);
  service_.metrics().connectionsActive.add(-1);
  std::lock_guard lock(mu_);
  --active_;
  idle_.notify_all();
}

void Server::reject(int fd) {
  serverLog().warning("connection limit reached (%u): answering 503", service_.config().maxConnections);
  const std::string answer = service_.errorResponse(503, true);
  (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  // Read what the gateway already sent, briefly, so closing does not reset the
  // connection before it has read the 503.
  char sink[4096];
  for (int i = 0; i < 10; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (::recv(fd, sink, sizeof(sink), 0) <= 0) break;
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  --rejecting_;
  idle_.notify_all();
}

bool Server::stop() {
  if (stopping_.exchange(true)) return active_.load() == 0;
  if (acceptor_.joinable()) acceptor_.join();
  if (listenFd_ >= 0) {
    ::close(listenFd_);
    listenFd_ = -1;
  }
  const auto& cfg = service_.config();
  const auto grace = cfg.readTimeout + cfg.queueTimeout + std::chrono::milliseconds(cfg.engine.maxScanTimeMs) +
                     std::chrono::seconds(5);
  std::unique_lock lock(mu_);
  if (!idle_.wait_for(lock, grace, [this] { return active_.load() == 0 && rejecting_.load() == 0; })) {
    serverLog().error("stop: %u connections still busy after the grace period", active_.load());
    return false;
  }
  return true;
}

}  // namespace imapav::icapd
