#pragma once
// The redirector's listener and session registry, on one reactor thread.

#include <cstdint>
#include <map>
#include <memory>

#include "redirector/config.hpp"
#include "redirector/message_scanner.hpp"
#include "redirector/reactor.hpp"
#include "redirector/scan_pool.hpp"
#include "redirector/session.hpp"

namespace imapav::redirector {

class Server final : public SessionHost, private IoHandler {
 public:
  Server(const Config& config, MessageScanner& scanner);
  ~Server() override;

  // Binds imap.listen; throws std::runtime_error. Returns the bound port.
  std::uint16_t listen();
  void run();   // the reactor loop, until stop()
  void stop();  // thread-safe
  std::size_t sessions() const { return sessions_.size(); }

  Reactor& reactor() override { return reactor_; }
  const Config& config() const override { return config_; }
  void scanAsync(ScanRequest request, std::string message, std::weak_ptr<Session> session,
                 std::function<void(Session&, ScanReply)> done) override;
  void sessionClosed(Session& session) override;

 private:
  void onIo(std::uint32_t events) override;  // the listening socket

  const Config& config_;
  MessageScanner& scanner_;
  Reactor reactor_;
  ScanPool pool_;
  int listenFd_ = -1;
  std::map<Session*, std::shared_ptr<Session>> sessions_;
};

}  // namespace imapav::redirector
