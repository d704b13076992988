#include "redirector/reactor.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace imapav::redirector {

Reactor::Reactor() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_ < 0 || wake_ < 0) throw std::runtime_error(std::string("epoll/eventfd: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up descriptor
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
}

Reactor::~Reactor() {
  ::close(wake_);
  ::close(epoll_);
}

void Reactor::add(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl add: ") + std::strerror(errno));
  }
}

void Reactor::modify(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
}

void Reactor::remove(int fd) { epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr); }

void Reactor::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_, &one, sizeof(one));
}

void Reactor::stop() {
  post([this] { stopping_ = true; });
}

void Reactor::drainPosted() {
  std::uint64_t count = 0;
  [[maybe_unused]] const auto n = ::read(wake_, &count, sizeof(count));
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(mu_);
    work.swap(posted_);
  }
  for (auto& fn : work) fn();
}

void Reactor::run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  auto nextTick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= nextTick) {
      if (tick_) tick_(now);
      nextTick = now + std::chrono::seconds(1);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(nextTick - now).count();
    const int n = epoll_wait(epoll_, events, kMaxEvents, static_cast<int>(std::max<long long>(wait, 0) + 1));
    if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
      if (handler == nullptr) {
        drainPosted();
      } else {
        handler->onIo(events[i].events);
      }
    }
    while (!afterBatch_.empty()) {
      auto work = std::move(afterBatch_);
      afterBatch_.clear();
      for (auto& fn : work) fn();
    }
  }
}

}  // namespace imapav::redirector
