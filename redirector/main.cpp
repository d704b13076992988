// imapav-redirector: the IMAP proxy that has every downloaded message scanned over ICAP.
// Start-up may throw; main turns that into a clear message and exit code 78 (EX_CONFIG)
// or 69 (EX_UNAVAILABLE).

#include <Poco/Logger.h>

#include <unistd.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "redirector/config.hpp"
#include "redirector/icap_client.hpp"
#include "redirector/server.hpp"
#include "shared/common/temp_file.hpp"
#include "shared/config/daemon.hpp"

namespace {

using namespace imapav::redirector;

class RedirectorApp final : public imapav::config::DaemonApp {
 public:
  RedirectorApp()
      : DaemonApp("imapav-redirector",
                  "imapav-redirector: IMAP proxy that has every downloaded message scanned by an ICAP server\n"
                  "(imapav-icapd). Runs in the foreground until SIGTERM or SIGINT. Settings: conf/imapav-redirector.conf.") {}

 protected:
  int serve(const std::string& configPath) override {
    std::signal(SIGPIPE, SIG_IGN);  // libicapapi and OpenSSL write to sockets with write()
    Config config;
    try {
      config = loadConfig(configPath);
    } catch (const std::exception& e) {
      std::cerr << "imapav-redirector: " << e.what() << "\n";
      return EXIT_CONFIG;
    }
    {
      // Fail now, not at the first large message.
      std::string error;
      const int fd = imapav::common::openAnonymousFile(config.spillDir, error);
      if (fd < 0) {
        std::cerr << "imapav-redirector: scan.spill_dir: " << error << "\n";
        return EXIT_CONFIG;
      }
      ::close(fd);
    }
    imapav::config::setupLogging(config.logLevel);
    auto& log = Poco::Logger::get("redirector");
    try {
      IcapClientOptions icap;
      icap.servers = config.icapServers;
      icap.timeout = config.icapTimeout;
      icap.maxConnectionsPerServer = config.icapConnections;
      icap.spillThreshold = config.spillThreshold;
      icap.spillDir = config.spillDir;
      IcapClient scanner(icap);
      std::shared_ptr<TlsContext> clientTls, upstreamTls;
      if (!config.tlsCertificate.empty()) clientTls = TlsContext::server(config.tlsCertificate, config.tlsPrivateKey);
      if (config.upstreamSecurity != UpstreamSecurity::None) {
        upstreamTls = TlsContext::client(config.upstreamCaFile, config.upstreamVerify);
        if (!config.upstreamVerify) {
          log.warning("upstream.verify = false: the mail server's certificate is NOT verified");
        }
      }
      Server server(config, scanner, clientTls, upstreamTls);
      const auto [plain, implicit] = server.listen();
      static const char* const kSecurity[] = {"none", "starttls", "tls"};
      const auto portText = [](std::uint16_t p) { return p == 0 ? std::string("off") : std::to_string(p); };
      log.information("listening imap=%s (STARTTLS %s) imaps=%s upstream=%s:%hu (%s) icap=%s fail_mode=%s", portText(plain),
                      std::string(clientTls && plain != 0 ? "offered" : "off"), portText(implicit), config.upstream.host,
                      config.upstream.port, std::string(kSecurity[static_cast<int>(config.upstreamSecurity)]),
                      config.icapServers.front(), std::string(config.failMode == LocalFailMode::Pass ? "pass" : "drop"));
      std::thread loop([&] { server.run(); });
      waitForTerminationRequest();
      log.information("stopping");
      // Scans in flight finish (each may take the ICAP timeout, twice with failover).
      server.stop(2 * config.icapTimeout + std::chrono::seconds(5));
      loop.join();
      log.information("stopped");
    } catch (const std::exception& e) {
      log.fatal(e.what());
      return EXIT_UNAVAILABLE;
    }
    return EXIT_OK;
  }

};

}  // namespace

POCO_SERVER_MAIN(RedirectorApp)
