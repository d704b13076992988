#pragma once
// The redirector's ICAP client: RESPMOD over libicapapi (c-icap 0.5.10) with a pool of
// persistent connections per server and failover between servers in order of preference.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redirector/message_scanner.hpp"

namespace imapav::redirector {

struct IcapClientOptions {
  std::vector<std::string> servers;        // "icap://HOST:PORT/SERVICE", in order of preference
  // Per wait (libicapapi counts whole seconds), the pool wait, and the deadline for the
  // answer once the whole message was available.
  std::chrono::seconds timeout{30};
  unsigned maxConnectionsPerServer = 8;    // also capped by the server's Max-Connections
  std::chrono::seconds retryAfter{10};     // a failed server is skipped this long
  std::size_t responseSlack = 1U << 20U;   // a response may hold 2 x message size + this many bytes
  std::size_t spillThreshold = 1U << 20U;  // a response larger than this is kept in a file
  std::string spillDir = "/var/tmp";
};

// "icap://HOST[:PORT]/SERVICE" (port 1344 by default); nullopt when malformed.
struct IcapUrl {
  std::string host;
  std::uint16_t port = 1344;
  std::string service;
  std::string hostPort() const { return host + ":" + std::to_string(port); }
};
std::optional<IcapUrl> parseIcapUrl(std::string_view url);

struct IcapServerHealth {
  std::string server;                  // "host:port"
  bool up = true;                      // false while skipped after a failure
  std::string lastFailure;
  std::string istag;                   // from the last OPTIONS
  std::chrono::seconds optionsTtl{0};  // 0 = not announced
  unsigned maxConnections = 0;         // the server's Max-Connections, 0 = not announced
  unsigned openConnections = 0;        // idle plus checked out
  unsigned idleConnections = 0;
  std::uint64_t connectAttempts = 0;    // since start, failed ones included
  std::uint64_t connectionsOpened = 0;  // since start
  std::uint64_t optionsSent = 0;
  std::uint64_t requests = 0;  // RESPMOD requests sent (a retry counts again)
  std::uint64_t answered = 0;  // ... that got a usable answer
  std::uint64_t failed = 0;    // failed attempts: no connection, OPTIONS or RESPMOD failed
  std::uint64_t skipped = 0;   // scans that passed this server by while it was down
};

class IcapClient final : public MessageScanner {
 public:
  explicit IcapClient(IcapClientOptions options);  // throws std::invalid_argument; connects lazily
  ~IcapClient() override;
  IcapClient(const IcapClient&) = delete;
  IcapClient& operator=(const IcapClient&) = delete;

  ScanReply scan(const ScanRequest& request) override;
  std::vector<IcapServerHealth> health() const;

  struct Server;    // pool and state of one server (icap_client.cpp)
  struct Watchdog;  // per-request deadlines (icap_client.cpp)

 private:
  IcapClientOptions options_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace imapav::redirector
