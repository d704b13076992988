// imapav-icapd: the ICAP scanning server. Start-up may throw; main turns that into a
// clear message and exit code 78 (EX_CONFIG) or 69 (EX_UNAVAILABLE).

#include <Poco/Logger.h>


#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "db/event_writer.hpp"
#include "icap-server/config.hpp"
#include "icap-server/scan/clamav_scanner.hpp"
#include "icap-server/server.hpp"
#include "shared/config/daemon.hpp"
#include "icap-server/service.hpp"

namespace {

using imapav::icapd::Config;

class WriterSink final : public imapav::icapd::EventSink {
 public:
  explicit WriterSink(imapav::db::EventWriter& writer) : writer_(writer) {}
  void record(imapav::db::ScanEvent event) override { writer_.submit(std::move(event)); }
  void recordNotification(imapav::db::NotificationEvent event) override {
    writer_.submitNotification(std::move(event));
  }

 private:
  imapav::db::EventWriter& writer_;
};

// libclamav's messages go to the icapd.clamav logger.
void onClamavMessage(int severity, std::string_view text) {
  auto& log = Poco::Logger::get("icapd.clamav");
  if (severity <= 3) log.error("libclamav: %s", std::string(text));
  else if (severity == 4) log.warning("libclamav: %s", std::string(text));
  else log.debug("libclamav: %s", std::string(text));
}

class IcapdApp final : public imapav::config::DaemonApp {
 public:
  IcapdApp()
      : DaemonApp("imapav-icapd",
                  "imapav-icapd: ICAP antivirus server (RFC 3507) for IMAP mail, scanning with libclamav.\n"
                  "Runs in the foreground until SIGTERM or SIGINT. Settings: see conf/imapav-icapd.conf.") {}

 protected:
  int serve(const std::string& configPath) override {
    Config config;
    try {
      config = imapav::icapd::loadConfig(configPath);
    } catch (const std::exception& e) {
      std::cerr << "imapav-icapd: " << e.what() << "\n";
      return EXIT_CONFIG;
    }
    imapav::config::setupLogging(config.logLevel);
    imapav::scan::ClamavScanner::setLog(onClamavMessage);
    auto& log = Poco::Logger::get("icapd");

    try {
      auto templates = imapav::icapd::loadTemplates(config);
      // Never start without signatures: a scanner that finds nothing would pass everything.
      std::shared_ptr<imapav::scan::Scanner> scanner = imapav::scan::ClamavScanner::load(config.engine);
      log.information("engine=\"%s\" signatures=%s database_dir=%s", scanner->engineVersion(),
                      scanner->signatureVersion(), config.engine.databaseDir);

      std::unique_ptr<imapav::db::EventWriter> writer;
      std::unique_ptr<WriterSink> sink;
      if (config.database.empty()) {
        log.warning("log.database is not set: scan events are NOT recorded");
      } else {
        writer = std::make_unique<imapav::db::EventWriter>(config.database);
        sink = std::make_unique<WriterSink>(*writer);
      }

      imapav::icapd::Service service(config, scanner, sink.get(), std::move(templates));
      // Notification mails: their own queue and thread; each outcome becomes a log row.
      std::unique_ptr<imapav::notify::Notifier> notifier;
      if (config.notifyRelay) {
        imapav::notify::NotifierOptions o;
        o.relayHost = config.notifyRelay->host;
        o.relayPort = config.notifyRelay->port;
        o.timeout = config.notifyTimeout;
        o.heloName = service.hostname();
        o.maxAttempts = config.notifyMaxAttempts;
        o.retryDelay = config.notifyRetryDelay;
        o.maxQueue = config.notifyMaxQueue;
        o.ratePerKey = config.notifyRatePerSender;
        o.rateWindow = std::chrono::duration_cast<std::chrono::seconds>(config.notifyRateWindow);
        notifier = std::make_unique<imapav::notify::Notifier>(o, [sink = sink.get()](const imapav::notify::Result& r) {
          if (!sink) return;
          imapav::db::NotificationEvent ev;
          ev.timeUs = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
          ev.kind = r.kind;
          ev.recipient = r.recipient;
          ev.outcome = std::string(imapav::notify::outcomeName(r.outcome));
          ev.attempts = r.attempts;
          ev.detail = r.detail;
          ev.messageId = r.reference;
          ev.gateway = r.origin;
          sink->recordNotification(std::move(ev));
        });
        service.setNotifier(notifier.get());
        log.information("notifications via %s:%hu", config.notifyRelay->host, config.notifyRelay->port);
      }
      imapav::icapd::Server server(service);
      const auto port = server.start();
      log.information("listening on %s:%hu service=%s istag=%s max_connections=%u scan_threads=%u profiles=%s",
                      config.listenHost, port, config.service, service.istag(), config.maxConnections,
                      config.scanThreads, std::to_string(config.profiles.size()));
      waitForTerminationRequest();
      log.information("stopping: finishing requests in flight");
      const bool clean = server.stop();
      service.setNotifier(nullptr);
      notifier.reset();  // its last outcomes ("shutdown") still reach the event log
      if (writer) {
        writer->stop();
        const auto st = writer->stats();
        log.information("event log: written=%Lu dropped=%Lu failed=%Lu", static_cast<Poco::UInt64>(st.written),
                        static_cast<Poco::UInt64>(st.dropped), static_cast<Poco::UInt64>(st.failed));
      }
      if (!clean) {
        // Connection threads still run and use the service: leave without destructors.
        log.error("stopped with connections still busy");
        std::_Exit(EXIT_SOFTWARE);
      }
      log.information("stopped");
    } catch (const imapav::icapd::ConfigError& e) {
      log.fatal(e.what());
      return EXIT_CONFIG;
    } catch (const std::exception& e) {
      log.fatal(e.what());
      return EXIT_UNAVAILABLE;
    }
    return EXIT_OK;
  }

};

}  // namespace

POCO_SERVER_MAIN(IcapdApp)
