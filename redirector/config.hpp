#pragma once
// imapav-redirector configuration (POCO properties). Start-up code: throws ConfigError.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/config/settings.hpp"

namespace imapav::redirector {

using config::ConfigError;
using config::HostPort;

enum class UpstreamSecurity { None, StartTls, Tls };
enum class LocalFailMode { Pass, Drop };

struct Config {
  std::optional<HostPort> imapListen;   // plain IMAP (STARTTLS once TLS is configured)
  std::optional<HostPort> imapsListen;  // implicit TLS (RFC 8314)
  std::optional<HostPort> metricsListen;  // Prometheus /metrics; off when unset
  std::string tlsCertificate, tlsPrivateKey;

  HostPort upstream;
  UpstreamSecurity upstreamSecurity = UpstreamSecurity::None;
  std::string upstreamCaFile;
  bool upstreamVerify = true;

  std::vector<std::string> icapServers;
  std::chrono::seconds icapTimeout{30};
  unsigned icapConnections = 8;  // per ICAP server
  unsigned scanWorkers = 8;      // messages scanned at once

  // When no ICAP server gives an answer: pass (delivered, logged as unscanned) or drop
  // (replaced by a notice).
  LocalFailMode failMode = LocalFailMode::Drop;
  // Largest message captured for scanning; a larger one is handled by fail_mode.
  std::size_t maxMessageSize = 64u << 20;
  // A message (or an ICAP answer) larger than this is kept in an unlinked file in spillDir
  // rather than in memory.
  std::size_t spillThreshold = 1u << 20;
  std::string spillDir = "/var/tmp";
  std::size_t maxLineBytes = 64u << 10;
  std::chrono::milliseconds keepaliveInterval{15'000};  // "* OK" to a client waiting for a scan
  std::chrono::milliseconds idleTimeout{35 * 60'000};   // IMAP autologout is at least 30 min
  // A client's command line must be complete this long after its first byte: a client that
  // trickles bytes (slowloris) is never idle, but cannot hold a session this way.
  std::chrono::milliseconds lineTimeout{60'000};
  std::chrono::milliseconds connectTimeout{10'000};      // to the upstream server
  // The longest silence of the upstream server inside a response it has begun (mid-literal).
  std::chrono::milliseconds upstreamTimeout{60'000};
  std::string logLevel = "information";
};

Config loadConfig(const std::string& path);

}  // namespace imapav::redirector
