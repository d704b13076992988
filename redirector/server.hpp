#pragma once
// The redirector's listener and session registry, on one reactor thread.

#include <cstdint>
#include <map>
#include <memory>

#include "redirector/config.hpp"
#include "redirector/message_scanner.hpp"
#include "redirector/metrics.hpp"
#include "redirector/reactor.hpp"
#include "redirector/scan_pool.hpp"
#include "redirector/session.hpp"

namespace imapav::redirector {

class Server final : public SessionHost {
 public:
  // clientTls: for imaps.listen and STARTTLS (null: neither); upstreamTls: for
  // upstream.security tls/starttls (null for none).
  Server(const Config& config, MessageScanner& scanner, std::shared_ptr<TlsContext> clientTls,
         std::shared_ptr<TlsContext> upstreamTls);
  ~Server() override;

  // Binds imap.listen and imaps.listen (those configured); throws std::runtime_error.
  // Returns the bound ports (0 for one not configured).
  std::pair<std::uint16_t, std::uint16_t> listen();
  void run();   // the reactor loop, until stop()
  // Thread-safe. Stops accepting; every session finishes the response it is delivering
  // (a scan in flight included), says "* BYE" and closes; then run() returns, at the
  // latest after grace.
  void stop(std::chrono::milliseconds grace);
  std::size_t sessions() const { return sessions_.size(); }

  Reactor& reactor() override { return reactor_; }
  const Config& config() const override { return config_; }
  std::shared_ptr<TlsContext> clientTls() const override { return clientTls_; }
  std::shared_ptr<TlsContext> upstreamTls() const override { return upstreamTls_; }
  void scanAsync(ScanRequest request, std::weak_ptr<Session> session,
                 std::function<void(Session&, ScanReply)> done) override;
  void sessionClosed(Session& session) override;
  RedirectorMetrics& metrics() override { return metrics_; }

 private:
  struct Listener final : IoHandler {
    Server* server = nullptr;
    int fd = -1;
    bool implicitTls = false;
    void onIo(std::uint32_t events) override;
  };
  std::uint16_t bind(Listener& l, const HostPort& hp, const char* key);
  void accept(Listener& l);

  const Config& config_;
  MessageScanner& scanner_;
  RedirectorMetrics metrics_;  // before pool_: its workers count into it
  std::shared_ptr<TlsContext> clientTls_, upstreamTls_;
  Reactor reactor_;
  ScanPool pool_;
  Listener plain_, implicit_;
  bool draining_ = false;
  std::chrono::steady_clock::time_point drainDeadline_;
  std::map<Session*, std::shared_ptr<Session>> sessions_;
};

}  // namespace imapav::redirector
