#pragma once
// Serves a Registry over HTTP for Prometheus: GET /metrics on its own listener, apart from
// the daemon's traffic. The one socket adapter in shared/, in its own library
// (imapav_metrics_http) so that imapav_metrics itself stays free of I/O.
//
// The listener is unauthenticated: bind it to loopback or a management network.

#include <cstdint>
#include <memory>

#include "shared/config/settings.hpp"
#include "shared/metrics/registry.hpp"

namespace imapav::metrics {

class HttpExporter {
 public:
  // Binds and starts serving; throws std::runtime_error with the reason (address in use,
  // cannot resolve). A scrape takes at most 5 s of a slow client and one of 2 threads.
  HttpExporter(const Registry& registry, const config::HostPort& listen);
  ~HttpExporter();  // stops; scrapes in progress finish
  HttpExporter(const HttpExporter&) = delete;
  HttpExporter& operator=(const HttpExporter&) = delete;

  std::uint16_t port() const;  // the bound port (for "port 0" in tests)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The process_* metrics every Prometheus client library exports (CPU seconds, resident and
// virtual memory, open and maximum file descriptors, threads, start time), read from /proc
// at each scrape.
void addProcessMetrics(Registry& registry);

}  // namespace imapav::metrics
