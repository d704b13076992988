#pragma once
// A single-threaded epoll loop: every IMAP session lives on it, so thousands of idle
// sessions cost a few kilobytes each and no thread. Other threads (the scan workers) hand
// work back with post().

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace imapav::redirector {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void onIo(std::uint32_t events) = 0;  // EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP
};

class Reactor {
 public:
  Reactor();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Level-triggered interest in fd; the handler must outlive the registration.
  void add(int fd, std::uint32_t events, IoHandler* handler);
  void modify(int fd, std::uint32_t events, IoHandler* handler);
  void remove(int fd);

  // Runs fn on the reactor thread, soon. Thread-safe.
  void post(std::function<void()> fn);
  // Runs fn on the reactor thread after the events of the current batch: a handler that
  // closes itself parks its last reference here, so no later event in the batch can
  // reach freed memory. Reactor thread only.
  void afterBatch(std::function<void()> fn) { afterBatch_.push_back(std::move(fn)); }
  // Called about once a second on the reactor thread, for timeouts and keep-alives.
  void onTick(std::function<void(std::chrono::steady_clock::time_point)> fn) { tick_ = std::move(fn); }

  void run();   // until stop()
  void stop();  // thread-safe

 private:
  void drainPosted();

  int epoll_ = -1;
  int wake_ = -1;  // eventfd for post() and stop()
  bool stopping_ = false;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::function<void(std::chrono::steady_clock::time_point)> tick_;
  std::vector<std::function<void()>> afterBatch_;
};

}  // namespace imapav::redirector
