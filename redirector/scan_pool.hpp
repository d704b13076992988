#pragma once
// Worker threads that run the blocking MessageScanner calls, so the reactor never waits
// for an ICAP server. Results go back to the reactor through Reactor::post.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace imapav::redirector {

class ScanPool {
 public:
  explicit ScanPool(unsigned workers);
  ~ScanPool();  // finishes the jobs that are running, drops the queued ones
  ScanPool(const ScanPool&) = delete;
  ScanPool& operator=(const ScanPool&) = delete;

  void submit(std::function<void()> job);
  std::size_t queued() const;

 private:
  void work();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace imapav::redirector
