#include "icap-server/metrics.hpp"

#include <string>

#include "icap-server/scan/error_class.hpp"

namespace imapav::icapd {

namespace {

constexpr const char* kRequests = "imapav_icapd_requests_total";
constexpr const char* kResponses = "imapav_icapd_responses_total";
constexpr const char* kScans = "imapav_icapd_scans_total";
constexpr const char* kActions = "imapav_icapd_actions_total";
constexpr const char* kErrors = "imapav_icapd_scan_errors_total";

}  // namespace

IcapdMetrics::IcapdMetrics()
    : connectionsActive(registry_.gauge("imapav_icapd_connections_active", "Gateway connections open now.")),
      connectionsTotal(registry_.counter("imapav_icapd_connections_total", "Gateway connections accepted.")),
      connectionsRejected(registry_.counter(
          "imapav_icapd_connections_rejected_total",
          "Gateway connections refused with 503 because icap.max_connections were open.")),
      scansInProgress(registry_.gauge("imapav_icapd_scans_in_progress", "Scans holding a scan slot now.")) {
  const char* methods[] = {"OPTIONS", "REQMOD", "RESPMOD", "other"};
  for (std::size_t i = 0; i < requests_.size(); ++i)
    requests_[i] = &registry_.counter(kRequests, "ICAP requests received, by method.", {{"method", methods[i]}});
  for (std::size_t i = 0; i < kStatuses.size(); ++i)
    responses_[i] = &registry_.counter(kResponses, "ICAP responses sent, by status code.",
                                      {{"status", std::to_string(kStatuses[i])}});
  responses_.back() = &registry_.counter(kResponses, "ICAP responses sent, by status code.", {{"status", "other"}});
  const char* verdicts[] = {"clean", "infected", "error"};
  for (std::size_t i = 0; i < verdicts_.size(); ++i)
    verdicts_[i] = &registry_.counter(kScans, "Messages scanned, by verdict (error: could not be scanned).",
                                      {{"verdict", verdicts[i]}});
  for (std::size_t i = 0; i < actions_.size(); ++i)
    actions_[i] = &registry_.counter(kActions, "Policy actions taken on scanned messages.",
                                     {{"action", std::string(toString(static_cast<Action>(i)))}});
  for (std::size_t i = 1; i < errors_.size(); ++i)
    errors_[i] = &registry_.counter(kErrors, "Messages that could not be scanned, by error class.",
                                    {{"class", std::string(scan::toString(static_cast<scan::ErrorClass>(i)))}});
  bytes_ = &registry_.counter("imapav_icapd_scanned_bytes_total", "Bytes of message bodies scanned.");
  constexpr const char* kCache = "imapav_icapd_verdict_cache_lookups_total";
  cacheHits_ = &registry_.counter(kCache, "Verdict cache lookups, by result.", {{"result", "hit"}});
  cacheMisses_ = &registry_.counter(kCache, "Verdict cache lookups, by result.", {{"result", "miss"}});
  // 1 ms to about 65 s; message sizes 1 KiB to 256 MiB.
  scanSeconds_ = &registry_.histogram("imapav_icapd_scan_duration_seconds",
                                      "Time to scan one message (for overload errors, the time waited for a slot).",
                                      metrics::exponentialBounds(0.001, 2, 17));
  messageBytes_ = &registry_.histogram("imapav_icapd_message_size_bytes", "Size of the messages scanned.",
                                       metrics::exponentialBounds(1024, 4, 10));
}

void IcapdMetrics::request(icap::Method method) noexcept {
  switch (method) {
    case icap::Method::Options: requests_[0]->inc(); return;
    case icap::Method::Reqmod: requests_[1]->inc(); return;
    case icap::Method::Respmod: requests_[2]->inc(); return;
    case icap::Method::Other: requests_[3]->inc(); return;
  }
}

void IcapdMetrics::response(int status) noexcept {
  std::size_t i = 0;
  while (i < kStatuses.size() && kStatuses[i] != status) ++i;
  responses_[i]->inc();
}

void IcapdMetrics::scanned(const scan::ScanResult& result, const Decision& decision, std::uint64_t bytes,
                           std::int64_t scanUs, bool cached) noexcept {
  // As the answer and the event row say: a fragment that scanned clean is an error.
  const auto v = result.verdict == scan::Verdict::Infected ? 1
                 : decision.error != scan::ErrorClass::None ? 2
                                                            : static_cast<std::size_t>(result.verdict);
  if (v < verdicts_.size()) verdicts_[v]->inc();
  const auto a = static_cast<std::size_t>(decision.action);
  if (a < actions_.size()) actions_[a]->inc();
  const auto e = static_cast<std::size_t>(decision.error);
  if (e > 0 && e < errors_.size()) errors_[e]->inc();
  if (cached) return;
  bytes_->inc(bytes);
  scanSeconds_->observe(static_cast<double>(scanUs) / 1e6);
  messageBytes_->observe(static_cast<double>(bytes));
}

}  // namespace imapav::icapd
