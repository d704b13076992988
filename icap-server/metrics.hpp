#pragma once
// imapav-icapd's Prometheus metrics: what the connections and the service count. Every
// label value is registered up front, so counting is one relaxed atomic add.

#include <array>
#include <cstddef>
#include <cstdint>

#include "icap-server/policy.hpp"
#include "icap-server/scan/error_class.hpp"
#include "icap-server/scan/scanner.hpp"
#include "shared/icap/request_parser.hpp"
#include "shared/metrics/registry.hpp"

namespace imapav::icapd {

class IcapdMetrics {
  metrics::Registry registry_;  // first: the references below point into it

 public:
  IcapdMetrics();
  IcapdMetrics(const IcapdMetrics&) = delete;
  IcapdMetrics& operator=(const IcapdMetrics&) = delete;

  metrics::Registry& registry() { return registry_; }

  void request(icap::Method method) noexcept;
  void response(int status) noexcept;  // every answer sent, 503 at the connection limit included
  // One evaluated RESPMOD/REQMOD request: its verdict, action, error class, size and time.
  // A cache hit counts as a request of its verdict, but not as a scan (time, bytes).
  void scanned(const scan::ScanResult& result, const Decision& decision, std::uint64_t bytes,
               std::int64_t scanUs, bool cached = false) noexcept;
  void cacheLookup(bool hit) noexcept { (hit ? cacheHits_ : cacheMisses_)->inc(); }

  metrics::Gauge& connectionsActive;
  metrics::Counter& connectionsTotal;
  metrics::Counter& connectionsRejected;  // 503 at icap.max_connections
  metrics::Gauge& scansInProgress;        // holding a scan slot

  // The status codes imapav-icapd sends; others count as "other".
  static constexpr std::array<int, 12> kStatuses{100, 200, 204, 400, 404, 405, 408, 413, 500, 501, 503, 505};

 private:
  std::array<metrics::Counter*, 4> requests_{};  // OPTIONS, REQMOD, RESPMOD, other
  std::array<metrics::Counter*, kStatuses.size() + 1> responses_{};
  std::array<metrics::Counter*, 3> verdicts_{};   // clean, infected, error
  std::array<metrics::Counter*, 3> actions_{};    // by Action value
  std::array<metrics::Counter*, scan::kErrorClassCount> errors_{};  // by ErrorClass value
  metrics::Counter* bytes_ = nullptr;
  metrics::Counter* cacheHits_ = nullptr;
  metrics::Counter* cacheMisses_ = nullptr;
  metrics::Histogram* scanSeconds_ = nullptr;
  metrics::Histogram* messageBytes_ = nullptr;
};

}  // namespace imapav::icapd
