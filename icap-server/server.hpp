#pragma once
// The listener: accepts gateways, one thread per connection up to max_connections,
// 503 beyond, graceful stop.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "icap-server/service.hpp"

namespace imapav::icapd {

class Server {
 public:
  explicit Server(Service& service);
  ~Server();

  // Binds and listens; throws std::runtime_error with the reason. Returns the bound port
  // (useful when the configuration asks for port 0).
  std::uint16_t start();
  // Stops accepting, lets requests in flight finish (their answers say Connection:
  // close), closes idle connections, and waits for every connection thread. Returns
  // false if some were still busy after the grace period (the caller should then exit
  // without running destructors the threads still use).
  bool stop();
  unsigned activeConnections() const { return active_.load(); }

 private:
  void acceptLoop();
  void serve(int fd, std::string peer);
  void reject(int fd);

  Service& service_;
  int listenFd_ = -1;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> active_{0};
  std::atomic<unsigned> rejecting_{0};
  std::mutex mu_;
  std::condition_variable idle_;
};

}  // namespace imapav::icapd
