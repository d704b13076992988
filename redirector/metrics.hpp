#pragma once
// imapav-redirector's Prometheus metrics: sessions, client bytes, what became of each
// downloaded message, what was relayed unscanned and why, and the scan workers. Per-server
// ICAP health is read from the IcapClient at each scrape (see main.cpp).

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "redirector/message_scanner.hpp"
#include "shared/metrics/registry.hpp"

namespace imapav::redirector {

// Content the redirector let through without a scan (the holes later issues close).
enum class Unscanned { Partial, Section, Upload, TooLarge };

class RedirectorMetrics {
  metrics::Registry registry_;  // first: the references below point into it

 public:
  RedirectorMetrics();
  RedirectorMetrics(const RedirectorMetrics&) = delete;
  RedirectorMetrics& operator=(const RedirectorMetrics&) = delete;

  metrics::Registry& registry() { return registry_; }

  // A message whose scan ended: its outcome (from the reply, the protocol-only notice and
  // the local fail mode), size and time from the first byte to the verdict.
  void delivered(const ScanReply& reply, bool failOpen, std::uint64_t bytes, bool spilled) noexcept;
  void unscanned(Unscanned why) noexcept { unscanned_[static_cast<std::size_t>(why)]->inc(); }
  // A session ended; why: Session::close's text, counted by its kind.
  void sessionClosed(std::string_view why) noexcept;

  metrics::Gauge& sessionsActive;
  metrics::Counter& sessionsPlain;     // accepted on imap.listen
  metrics::Counter& sessionsImplicit;  // accepted on imaps.listen
  metrics::Counter& clientBytesReceived;
  metrics::Counter& clientBytesSent;
  metrics::Gauge& scansInProgress;  // workers busy with a scan (from the message's first byte)

 private:
  // clean, replaced, withheld, passed_unscanned, failed_passed, failed_dropped
  std::array<metrics::Counter*, 6> outcomes_{};
  std::array<metrics::Counter*, 4> unscanned_{};
  std::array<metrics::Counter*, 11> closed_{};
  metrics::Counter* spilled_ = nullptr;
  metrics::Counter* bytes_ = nullptr;
  metrics::Histogram* scanSeconds_ = nullptr;
  metrics::Histogram* messageBytes_ = nullptr;
};

}  // namespace imapav::redirector
