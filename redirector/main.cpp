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
#include "shared/metrics/http_exporter.hpp"

namespace {

using namespace imapav::redirector;

// Each ICAP server as this redirector sees it, read at each scrape.
void addIcapHealth(imapav::metrics::Registry& registry, const IcapClient& client) {
  using imapav::metrics::Type;
  registry.addCollector([&client](imapav::metrics::Exposition& e) {
    const auto servers = client.health();
    const auto each = [&](const char* name, const char* help, Type type, auto value) {
      e.family(name, help, type);
      for (const auto& h : servers) e.sample(name, {{"server", h.server}}, static_cast<double>(value(h)));
    };
    each("imapav_redirector_icap_up", "1 while the ICAP server is in use, 0 while it is skipped after a failure.",
         Type::Gauge, [](const IcapServerHealth& h) { return h.up ? 1 : 0; });
    each("imapav_redirector_icap_connections_open", "Connections to the ICAP server, idle and busy.", Type::Gauge,
         [](const IcapServerHealth& h) { return h.openConnections; });
    each("imapav_redirector_icap_connections_idle", "Idle connections to the ICAP server.", Type::Gauge,
         [](const IcapServerHealth& h) { return h.idleConnections; });
    each("imapav_redirector_icap_max_connections", "The ICAP server's Max-Connections (0: not announced).",
         Type::Gauge, [](const IcapServerHealth& h) { return h.maxConnections; });
    each("imapav_redirector_icap_connect_attempts_total", "Connection attempts to the ICAP server, failed ones included.",
         Type::Counter, [](const IcapServerHealth& h) { return h.connectAttempts; });
    each("imapav_redirector_icap_connections_opened_total", "Connections to the ICAP server opened.", Type::Counter,
         [](const IcapServerHealth& h) { return h.connectionsOpened; });
    each("imapav_redirector_icap_options_total", "OPTIONS requests sent to the ICAP server.", Type::Counter,
         [](const IcapServerHealth& h) { return h.optionsSent; });
    each("imapav_redirector_icap_requests_total", "RESPMOD requests sent to the ICAP server (a retry counts again).",
         Type::Counter, [](const IcapServerHealth& h) { return h.requests; });
    each("imapav_redirector_icap_answered_total", "RESPMOD requests the ICAP server answered usably.", Type::Counter,
         [](const IcapServerHealth& h) { return h.answered; });
    each("imapav_redirector_icap_failures_total",
         "Failed attempts with the ICAP server: no connection, OPTIONS or RESPMOD failed.", Type::Counter,
         [](const IcapServerHealth& h) { return h.failed; });
    each("imapav_redirector_icap_skipped_total", "Scans that passed the ICAP server by while it was down.",
         Type::Counter, [](const IcapServerHealth& h) { return h.skipped; });
    e.family("imapav_redirector_icap_server_info", "The ICAP server's ISTag from its last OPTIONS answer.", Type::Gauge);
    for (const auto& h : servers) {
      std::string istag = h.istag.substr(0, 64);  // the ICAP server says what it is: bound it
      if (istag.size() >= 2 && istag.front() == '"' && istag.back() == '"') istag = istag.substr(1, istag.size() - 2);
      e.sample("imapav_redirector_icap_server_info", {{"server", h.server}, {"istag", istag}}, 1);
    }
  });
}

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
      auto& registry = server.metrics().registry();
      addIcapHealth(registry, scanner);
      imapav::metrics::addProcessMetrics(registry);
      std::unique_ptr<imapav::metrics::HttpExporter> exporter;
      if (config.metricsListen) {
        exporter = std::make_unique<imapav::metrics::HttpExporter>(registry, *config.metricsListen);
        log.information("metrics on http://%s:%hu/metrics", config.metricsListen->host, exporter->port());
      }
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
