#pragma once
// The avscan ICAP service: given a parsed request and its body, scan, decide and write
// the answer. Knows nothing about sockets: the connection hands it a send function.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>

#include "db/notification_event.hpp"
#include "db/scan_event.hpp"
#include "icap-server/notify/notifier.hpp"
#include "icap-server/config.hpp"
#include "icap-server/metrics.hpp"
#include "icap-server/policy.hpp"
#include "icap-server/scan/message_body.hpp"
#include "icap-server/scan/scanner.hpp"
#include "icap-server/scan/verdict_cache.hpp"
#include "shared/icap/request_parser.hpp"
#include "shared/mime/notice.hpp"
#include "shared/mime/template.hpp"

namespace imapav::icapd {

// Where scan events go (the SQLite writer in production, a vector in tests).
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void record(db::ScanEvent event) = 0;
  virtual void recordNotification(db::NotificationEvent) {}
};

// Writes bytes to the peer; false once the peer is gone.
using Send = std::function<bool(std::string_view)>;

struct Templates {
  mime::Template virus;
  mime::Template error;
  mime::Template sender;         // body of a notification to the sender
  mime::Template senderSubject;  // its subject (notify.subject)
  std::optional<mime::Template> virusSubject, errorSubject;  // notice.*_subject, if set
};

// The built-in notice templates (conf/templates/*.txt, embedded at build time), or the
// files the configuration names. Throws ConfigError on a bad template.
Templates loadTemplates(const Config& config);

// The engine to scan a request with (EngineManager::current in production); may change
// between requests when the signatures are reloaded.
using EngineSource = std::function<std::shared_ptr<scan::Scanner>()>;

// ISTag of an engine, quoted as sent: it changes with the signatures (RFC 3507 4.7).
std::string istagOf(const scan::Scanner* engine);

class Service {
 public:
  Service(const Config& config, EngineSource engines, EventSink* events, Templates templates);
  // One engine for the service's life (tests).
  Service(const Config& config, std::shared_ptr<scan::Scanner> scanner, EventSink* events,
          Templates templates);

  const Config& config() const { return config_; }
  std::string istag() const;  // of the engine in use, quoted, as sent
  const std::string& hostname() const { return hostname_; }

  // The whole OPTIONS answer; service: the name asked for (a profile's, or icap.service).
  std::string optionsResponse(bool close, const std::string& service = {}) const;
  // icap.service or a profile's service name.
  bool offers(std::string_view service) const;
  // An error answer (400, 404, 405, 408, 413, 500, 501, 503, 505) with null-body.
  std::string errorResponse(int status, bool close) const;

  // What a scan found and what policy made of it, with what the answer needs.
  struct Outcome {
    scan::ScanResult result;
    Decision decision;
    std::string url;     // the request URL of the encapsulated HTTP request, if any
    std::string prefix;  // the message's first bytes, where its header section is
    mime::MessageSummary summary;
    std::int64_t scanUs = 0;
    std::string profile;            // "" for the base policy
    const Policy* policy = nullptr;  // the one decided by (the profile's or the base policy)
    std::shared_ptr<scan::Scanner> engine;  // the one scanned with (or whose cache answered)
    std::string sha256;                     // of the message
    bool cached = false;                    // the result came from the verdict cache
  };

  // Scans the body of a REQMOD/RESPMOD request, decides, logs and records the event.
  Outcome evaluate(const icap::RequestHead& head, const scan::MessageBody& body,
                   const std::string& gateway);
  // Sends the answer for an evaluated request. ieof: the whole body came inside the
  // preview. close: say "Connection: close". Returns false when sending failed.
  bool answer(const icap::RequestHead& head, const scan::MessageBody& body, bool ieof,
              const Outcome& outcome, const std::string& gateway, bool close, const Send& send);
  // evaluate() then answer().
  bool respond(const icap::RequestHead& head, const scan::MessageBody& body, bool ieof,
               const std::string& gateway, bool close, const Send& send);

  // Counted here and by the connections; thread-safe.
  IcapdMetrics& metrics() const { return metrics_; }
  // The verdict cache's counters; nullopt when cache.max_entries is 0.
  std::optional<scan::VerdictCache::Stats> cacheStats() const;
  // Where notifications go; without one, a due notification is logged as skipped.
  void setNotifier(notify::Notifier* notifier) { notifier_ = notifier; }

 private:
  scan::ScanResult scanWithSlot(const scan::MessageBody& body, scan::Scanner* engine);
  // The result for body: from the cache, else a scan (then cached when it may be).
  void scanOrRecall(const scan::MessageBody& body, Outcome& out);
  void commonHeaders(icap::Headers& h, bool close, const std::string& istag) const;
  // The variables of the notice and notification templates.
  std::map<std::string, std::string, std::less<>> templateVariables(const Outcome& outcome, const std::string& gateway) const;
  void notifySender(const Outcome& outcome, const std::string& gateway);

  const Config& config_;
  EngineSource engines_;
  std::unique_ptr<scan::VerdictCache> cache_;  // null when off
  EventSink* events_;
  Templates templates_;
  Policy basePolicy_;
  std::vector<Policy> profilePolicies_;  // parallel to config_.profiles
  std::string hostname_;
  std::counting_semaphore<1 << 20> slots_;
  mutable IcapdMetrics metrics_;  // counting is not a change of the service's state
  notify::Notifier* notifier_ = nullptr;
  std::atomic<std::uint64_t> notificationSeq_{0};
};

}  // namespace imapav::icapd
