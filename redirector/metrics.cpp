#include "redirector/metrics.hpp"

#include <iterator>
#include <string>
#include <tuple>

namespace imapav::redirector {

namespace {

// Session::close's reasons, by the start of their text; the last kind catches the rest.
struct CloseKind {
  std::string_view prefix, label;
};
constexpr CloseKind kCloseKinds[] = {
    {"client closed", "client"},           {"client: ", "client"},  {"client write", "client"},
    {"server closed", "server"},           {"server: ", "server"},  {"server write", "server"},
    {"client TLS", "client_tls"},          {"upstream", "upstream_unavailable"},
    {"cannot resolve upstream", "upstream_unavailable"},
    {"client protocol error", "client_protocol_error"},
    {"server protocol error", "server_protocol_error"},
    {"FETCH response with two large literals", "server_protocol_error"},
    {"idle timeout", "idle_timeout"},      {"line timeout", "line_timeout"},
    {"shutdown", "shutdown"},
};
constexpr std::string_view kCloseLabels[] = {"client", "server", "client_tls", "upstream_unavailable",
                                             "client_protocol_error", "server_protocol_error", "idle_timeout",
                                             "line_timeout", "shutdown", "internal", "other"};

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
  static_assert(std::size(kCloseLabels) == std::tuple_size_v<decltype(closed_)>);
  for (std::size_t i = 0; i < closed_.size(); ++i)
    closed_[i] = &registry_.counter("imapav_redirector_sessions_closed_total",
                                    "IMAP client sessions ended, by why: the client or server closed, TLS or protocol "
                                    "errors, the mail server unavailable, idle or line timeout, shutdown, internal.",
                                    {{"reason", std::string(kCloseLabels[i])}});
  spilled_ = &registry_.counter("imapav_redirector_spilled_total",
                                "Messages held in a temporary file (over scan.spill_threshold) instead of memory.");
  bytes_ = &registry_.counter("imapav_redirector_scanned_bytes_total", "Bytes of downloaded messages submitted to scan.");
  scanSeconds_ = &registry_.histogram("imapav_redirector_scan_duration_seconds",
                                      "Time from a message's first byte to its verdict (download and ICAP round trip).",
                                      metrics::exponentialBounds(0.001, 2, 17));
  messageBytes_ = &registry_.histogram("imapav_redirector_message_size_bytes", "Size of the messages submitted to scan.",
                                       metrics::exponentialBounds(1024, 4, 10));
}

void RedirectorMetrics::sessionClosed(std::string_view why) noexcept {
  std::string_view label = "internal";  // capture or spill-file failures
  if (why.rfind("capture failed", 0) != 0 && why.rfind("cannot read a held message", 0) != 0) label = "other";
  for (const auto& k : kCloseKinds) {
    if (why.rfind(k.prefix, 0) == 0) {
      label = k.label;
      break;
    }
  }
  for (std::size_t i = 0; i < closed_.size(); ++i) {
    if (kCloseLabels[i] == label) return closed_[i]->inc();
  }
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
