#pragma once
// imapav-icapd configuration: a POCO properties file (key = value). Start-up code: it
// throws ConfigError with a message that names the key and the problem.

#include <chrono>
#include <optional>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <vector>

#include "icap-server/policy.hpp"
#include "icap-server/profile.hpp"
#include "shared/config/settings.hpp"
#include "icap-server/scan/clamav_scanner.hpp"

namespace imapav::icapd {

using config::ConfigError;
using config::parseDuration;
using config::parseSize;

struct Config {
  // icap.*
  std::string listenHost = "127.0.0.1";
  std::uint16_t listenPort = 1344;
  std::string service = "avscan";
  bool respmod = true;  // icap.methods: which modification methods the service offers
  bool reqmod = true;   // (uploads); a request for another one gets 405
  unsigned maxConnections = 200;
  std::chrono::milliseconds readTimeout{30'000};   // any wait for bytes inside a request
  std::chrono::milliseconds idleTimeout{300'000};  // a kept-alive connection between requests
  std::chrono::milliseconds requestTimeout{600'000};  // a whole request, however it trickles in
  std::size_t preview = 1024;
  unsigned optionsTtl = 3600;
  std::size_t maxBodySize = 512u << 20;  // beyond this a request gets 413
  std::size_t maxHeaderBytes = 64u << 10;

  // scan.*
  scan::EngineOptions engine;            // database_dir, limits, tmp dir
  std::size_t spillThreshold = 8u << 20;  // bodies above this go to a temporary file ...
  std::string spillDir = "/var/tmp";       // ... in this directory (disk, not memory)
  unsigned scanThreads = 0;               // concurrent scans; 0 = number of cores
  std::chrono::milliseconds queueTimeout{30'000};  // wait for a scan slot, then "overloaded"
  std::chrono::milliseconds reloadCheck{60'000};  // database change check; 0 = only on SIGHUP
  unsigned reloadMinPercent = 50;  // a changed database with fewer % of the signatures is refused (0 = off)

  // cache.*: verdicts by message SHA-256 and signature version
  std::size_t cacheMaxEntries = 100'000;  // 0 = no cache
  std::chrono::milliseconds cacheMaxAge{86'400'000};

  // policy.*: the base policy; profile.NAME.*: profiles that start from it.
  PolicySettings policy;
  std::vector<Profile> profiles;

  // notice.*
  std::string virusTemplateFile;  // "" = the built-in template
  std::string errorTemplateFile;
  std::string noticeFrom;         // From of a notice when the original has none
  std::string virusSubject;       // Subject template of a virus notice; "" = the original's
  std::string errorSubject;       // ... of an error notice

  // notify.*: notification mails (policy notify_sender_on_*), through an SMTP relay.
  std::optional<config::HostPort> metricsListen;  // Prometheus /metrics; off when unset
  std::optional<config::HostPort> notifyRelay;  // required when a policy sends notifications
  std::string notifyFrom;                       // From of a notification
  std::string notifySubject = "Undelivered: your message \"${subject}\" was blocked";
  std::string notifyTemplateFile;               // "" = the built-in template
  std::chrono::milliseconds notifyTimeout{10'000};
  unsigned notifyMaxAttempts = 4;
  std::chrono::milliseconds notifyRetryDelay{30'000};
  std::size_t notifyMaxQueue = 1000;
  unsigned notifyRatePerSender = 10;  // per notify.rate_window; 0 = unlimited
  std::chrono::milliseconds notifyRateWindow{3'600'000};

  // log.*
  std::string database;  // SQLite event log; "" disables it (loudly)
  std::string logLevel = "information";  // daemon log: error, warning, notice, information, debug
};

// Reads and validates FILE. Unknown keys are errors, so a typo cannot silently fall
// back to a default. Every service name a profile claims must differ from icap.service.
Config loadConfig(const std::string& path);


}  // namespace imapav::icapd
