#pragma once
// One gateway connection: reads ICAP requests (pipelined, kept alive), feeds the
// parser, and hands complete requests to the Service. Every wait is timed.

#include <atomic>
#include <chrono>
#include <string>

#include "icap-server/service.hpp"

namespace imapav::icapd {

class Connection {
 public:
  Connection(int fd, std::string peer, Service& service, const std::atomic<bool>& stopping);
  // Serves until the peer closes, an error, a timeout, or a stop; does not close fd.
  void run();

 private:
  enum class Wait { Readable, Timeout, Stopping, Failed };
  // inRequest: bytes of a request have arrived since requestStart.
  Wait waitReadable(bool inRequest, std::chrono::steady_clock::time_point requestStart);
  bool sendAll(std::string_view data);

  int fd_;
  std::string peer_;
  Service& service_;
  const std::atomic<bool>& stopping_;
};

}  // namespace imapav::icapd
