#include "redirector/server.hpp"

#include <Poco/Logger.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace imapav::redirector {
namespace {

std::string addressOf(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, host, sizeof(host));
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, host, sizeof(host));
  }
  return host;
}

}  // namespace

Server::Server(const Config& config, MessageScanner& scanner, std::shared_ptr<TlsContext> clientTls,
               std::shared_ptr<TlsContext> upstreamTls)
    : config_(config),
      scanner_(scanner),
      clientTls_(std::move(clientTls)),
      upstreamTls_(std::move(upstreamTls)),
      pool_(config.scanWorkers) {
  auto& registry = metrics_.registry();
  registry.gauge("imapav_redirector_scan_workers", "Messages that may be scanned at once (scan.workers).")
      .set(config.scanWorkers);
  registry.addCollector([this](metrics::Exposition& e) {
    e.family("imapav_redirector_scan_queue_depth", "Messages waiting for a free scan worker.", metrics::Type::Gauge);
    e.sample("imapav_redirector_scan_queue_depth", {}, static_cast<double>(pool_.queued()));
  });
  plain_.server = implicit_.server = this;
  implicit_.implicitTls = true;
  reactor_.onTick([this](std::chrono::steady_clock::time_point now) {
    // Copy: a tick may close sessions.
    std::vector<std::shared_ptr<Session>> all;
    all.reserve(sessions_.size());
    for (auto& [p, s] : sessions_) all.push_back(s);
    for (auto& s : all) s->tick(now);
    if (draining_ && now > drainDeadline_) {
      Poco::Logger::get("redirector").warning("stop: %z sessions still busy after the grace period", sessions_.size());
      for (auto& s : all) s->close("shutdown");
      reactor_.stop();
    }
  });
}

Server::~Server() {
  for (Listener* l : {&plain_, &implicit_}) {
    if (l->fd >= 0) ::close(l->fd);
  }
}

std::pair<std::uint16_t, std::uint16_t> Server::listen() {
  std::pair<std::uint16_t, std::uint16_t> ports{0, 0};
  if (config_.imapListen) ports.first = bind(plain_, *config_.imapListen, "imap.listen");
  if (config_.imapsListen) ports.second = bind(implicit_, *config_.imapsListen, "imaps.listen");
  return ports;
}

std::uint16_t Server::bind(Listener& l, const HostPort& hp, const char* key) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(hp.port);
  if (const int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    throw std::runtime_error(std::string(key) + ": cannot resolve " + hp.host + ": " + gai_strerror(rc));
  }
  l.fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool ok = l.fd >= 0 && ::bind(l.fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(l.fd, 1024) == 0;
  const int err = errno;
  freeaddrinfo(res);
  if (!ok) throw std::runtime_error(std::string(key) + ": cannot listen on " + hp.host + ":" + port + ": " + std::strerror(err));
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(l.fd, reinterpret_cast<sockaddr*>(&bound), &len);
  reactor_.add(l.fd, EPOLLIN, &l);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
}

void Server::run() { reactor_.run(); }

void Server::stop(std::chrono::milliseconds grace) {
  reactor_.post([this, grace] {
    draining_ = true;
    drainDeadline_ = std::chrono::steady_clock::now() + grace;
    for (Listener* l : {&plain_, &implicit_}) {
      if (l->fd >= 0) {
        reactor_.remove(l->fd);
        ::close(l->fd);
        l->fd = -1;
      }
    }
    std::vector<std::shared_ptr<Session>> all;
    for (auto& [p, session] : sessions_) all.push_back(session);
    for (auto& session : all) session->drain();
    if (sessions_.empty()) reactor_.stop();
  });
}

void Server::Listener::onIo(std::uint32_t) { server->accept(*this); }

void Server::accept(Listener& l) {
  for (int i = 0; i < 64; ++i) {  // a burst of connections, but do not starve the others
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    const int fd = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) Poco::Logger::get("redirector").error("accept: out of file descriptors");
      return;
    }
    auto session = std::make_shared<Session>(*this, fd, addressOf(ss), l.implicitTls);
    sessions_[session.get()] = session;
    (l.implicitTls ? metrics_.sessionsImplicit : metrics_.sessionsPlain).inc();
    metrics_.sessionsActive.add(1);
    session->start();
  }
}

void Server::scanAsync(ScanRequest request, std::weak_ptr<Session> session,
                       std::function<void(Session&, ScanReply)> done) {
  pool_.submit([this, request = std::move(request), session = std::move(session), done = std::move(done)]() mutable {
    ScanReply reply;
    if (!session.expired()) {  // the client may have gone while the job waited
      metrics_.scansInProgress.add(1);
      reply = scanner_.scan(request);
      metrics_.scansInProgress.add(-1);
    }
    reactor_.post([session = std::move(session), done = std::move(done), reply = std::move(reply)]() mutable {
      if (auto s = session.lock()) done(*s, std::move(reply));
    });
  });
}

void Server::sessionClosed(Session& session) {
  auto it = sessions_.find(&session);
  if (it == sessions_.end()) return;
  // Keep the session alive until the current batch of events is handled.
  reactor_.afterBatch([keep = std::move(it->second)] {});
  sessions_.erase(it);
  metrics_.sessionsActive.add(-1);
  if (draining_ && sessions_.empty()) reactor_.stop();
}

}  // namespace imapav::redirector
