#include "redirector/metrics.hpp"

namespace imapav::redirector {

namespace {
constexpr const char* kSessions = "imapav_redirector_sessions_total";
constexpr const char* kClientBytes = "imapav_redirector_client_bytes_total";
constexpr const char* kMessages = "imapav_redirector_messages_total";
constexpr const char* kUnscanned = "imapav_redirector_unscanned_total";
}  // namespace

RedirectorMetrics::RedirectorMetrics()
    : sessionsActive(registry_.gauge("imapav_redirector_sessions_active", "IMAP client sessions open now.")),
      sessionsPlain(registry_.counter(kSessions, "IMAP client sessions accepted, by listener.", {{"listener", "imap"}})),
      sessionsImplicit(
          registry_.counter(kSessions, "IMAP client sessions accepted, by listener.", {{"listener", "imaps"}})),
      clientBytesReceived(registry_.counter(kClientBytes, "Bytes exchanged with IMAP clients (after TLS).",
                                            {{"direction", "received"}})),
      clientBytesSent(
          registry_.counter(kClientBytes, "Bytes exchanged with IMAP clients (after TLS).", {{"direction", "sent"}})),
      scansInProgress(registry_.gauge("imapav_redirector_scans_in_progress",
                                      "Scan workers busy with a message (from its first byte to the verdict).")) {
  const char* outcomes[] = {"clean", "replaced", "withheld", "passed_unscanned", "failed_passed", "failed_dropped"};
  for (std::size_t i = 0; i < outcomes_.size(); ++i)
    outcomes_[i] = &registry_.counter(
        kMessages,
        "Downloaded messages by outcome: clean, replaced by a notice, withheld (protocol-only notice), "
        "passed unscanned by the server's policy, or no ICAP server answered and the local fail mode passed or "
        "dropped it.",
        {{"outcome", outcomes[i]}});
  const char* reasons[] = {"partial", "section", "upload", "too_large"};
  for (std::size_t i = 0; i < unscanned_.size(); ++i)
    unscanned_[i] = &registry_.counter(
        kUnscanned,
        "Content relayed without a scan, by reason: partial fetch, body section, upload (APPEND), message over "
        "scan.max_message_size.",
        {{"reason", reasons[i]}});
  spilled_ = &registry_.counter("imapav_redirector_spilled_total",
                                "Messages held in a temporary file (over scan.spill_threshold) instead of memory.");
  bytes_ = &registry_.counter("imapav_redirector_scanned_bytes_total", "Bytes of downloaded messages submitted to scan.");
  scanSeconds_ = &registry_.histogram("imapav_redirector_scan_duration_seconds",
                                      "Time from a message's first byte to its verdict (download and ICAP round trip).",
                                      metrics::exponentialBounds(0.001, 2, 17));
  messageBytes_ = &registry_.histogram("imapav_redirector_message_size_bytes", "Size of the messages submitted to scan.",
                                       metrics::exponentialBounds(1024, 4, 10));
}

void RedirectorMetrics::delivered(const ScanReply& reply, bool failOpen, std::uint64_t bytes, bool spilled) noexcept {
  std::size_t i = 0;
  switch (reply.status) {
    case ScanStatus::Clean: i = 0; break;
    case ScanStatus::Replaced: i = reply.protocolOnly ? 2 : 1; break;
    case ScanStatus::PassedUnscanned: i = 3; break;
    case ScanStatus::Failed: i = failOpen ? 4 : 5; break;
  }
  outcomes_[i]->inc();
  if (spilled) spilled_->inc();
  bytes_->inc(bytes);
  scanSeconds_->observe(std::chrono::duration<double>(reply.elapsed).count());
  messageBytes_->observe(static_cast<double>(bytes));
}

}  // namespace imapav::redirector
