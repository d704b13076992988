// imapav-icapd: the ICAP scanning server. Start-up may throw; main turns that into a
// clear message and exit code 78 (EX_CONFIG) or 69 (EX_UNAVAILABLE).

#include <Poco/Logger.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "db/event_writer.hpp"
#include "icap-server/config.hpp"
#include "icap-server/scan/clamav_scanner.hpp"
#include "icap-server/scan/engine_manager.hpp"
#include "icap-server/server.hpp"
#include "icap-server/service.hpp"
#include "shared/config/daemon.hpp"
#include "shared/metrics/http_exporter.hpp"

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

// What the scrape reads from objects main owns: the event log, the notifier, the engines.
void addCollectors(imapav::metrics::Registry& registry, const imapav::db::EventWriter* writer,
                   const imapav::notify::Notifier* notifier, const imapav::scan::EngineManager& engines,
                   const imapav::icapd::Service& service) {
  using imapav::metrics::Type;
  registry.addCollector([writer](imapav::metrics::Exposition& e) {
    const auto st = writer ? writer->stats() : imapav::db::WriterStats{};
    e.family("imapav_icapd_event_log_enabled", "1 when log.database is set and events are recorded.", Type::Gauge);
    e.sample("imapav_icapd_event_log_enabled", {}, writer ? 1 : 0);
    e.family("imapav_icapd_event_log_healthy",
             "1 while the event database takes rows; 0 after a failure, until it is written to again.", Type::Gauge);
    e.sample("imapav_icapd_event_log_healthy", {}, writer && writer->healthy() ? 1 : 0);
    e.family("imapav_icapd_event_log_queue_depth", "Event rows waiting to be written.", Type::Gauge);
    e.sample("imapav_icapd_event_log_queue_depth", {},
             static_cast<double>(st.queued - std::min(st.queued, st.written + st.failed)));
    const auto rows = [&](const char* name, const char* help, std::uint64_t total, std::uint64_t notifications) {
      e.family(name, help, Type::Counter);
      e.sample(name, {{"kind", "scan"}}, static_cast<double>(total - notifications));
      e.sample(name, {{"kind", "notification"}}, static_cast<double>(notifications));
    };
    rows("imapav_icapd_event_log_written_total", "Event rows committed to the database.", st.written,
         st.notificationsWritten);
    rows("imapav_icapd_event_log_dropped_total", "Event rows refused because the queue was full.", st.dropped,
         st.notificationsDropped);
    rows("imapav_icapd_event_log_failed_total", "Event rows lost to database write failures.", st.failed,
         st.notificationsFailed);
    e.family("imapav_icapd_event_log_open_failures_total", "Failed attempts to open the event database.", Type::Counter);
    e.sample("imapav_icapd_event_log_open_failures_total", {}, static_cast<double>(st.openFailures));
  });
  registry.addCollector([notifier](imapav::metrics::Exposition& e) {
    const auto st = notifier ? notifier->stats() : imapav::notify::Notifier::Stats{};
    e.family("imapav_icapd_notifications_total", "Sender notifications, by outcome.", Type::Counter);
    e.sample("imapav_icapd_notifications_total", {{"outcome", "sent"}}, static_cast<double>(st.sent));
    e.sample("imapav_icapd_notifications_total", {{"outcome", "failed"}}, static_cast<double>(st.failed));
    e.sample("imapav_icapd_notifications_total", {{"outcome", "rate_limited"}}, static_cast<double>(st.rateLimited));
    e.sample("imapav_icapd_notifications_total", {{"outcome", "queue_full"}}, static_cast<double>(st.queueFull));
    e.family("imapav_icapd_notifications_queued", "Sender notifications waiting to be sent (retries included).", Type::Gauge);
    e.sample("imapav_icapd_notifications_queued", {}, static_cast<double>(st.queued));
  });
  registry.addCollector([&engines, &service](imapav::metrics::Exposition& e) {
    const auto engine = engines.current();
    const auto st = engines.stats();
    e.family("imapav_icapd_signatures", "Signatures in the engine in use.", Type::Gauge);
    e.sample("imapav_icapd_signatures", {}, static_cast<double>(engine->signatureCount()));
    e.family("imapav_icapd_engine_info", "The engine in use: libclamav version, signature version and ISTag.", Type::Gauge);
    const std::string istag = imapav::icapd::istagOf(engine.get());
    e.sample("imapav_icapd_engine_info", {{"engine", engine->engineVersion()}, {"signatures", engine->signatureVersion()},
             {"istag", istag.substr(1, istag.size() - 2)}}, 1);
    e.family("imapav_icapd_signature_reloads_total", "Signature reloads after start-up, by outcome.", Type::Counter);
    e.sample("imapav_icapd_signature_reloads_total", {{"outcome", "success"}}, static_cast<double>(st.successes));
    e.sample("imapav_icapd_signature_reloads_total", {{"outcome", "failure"}}, static_cast<double>(st.failures));
    e.family("imapav_icapd_signature_reload_failing",
             "1 when the last reload failed (the previous signatures are still in use).", Type::Gauge);
    e.sample("imapav_icapd_signature_reload_failing", {}, st.failing ? 1 : 0);
    e.family("imapav_icapd_signature_load_seconds", "Time to load and compile the engine in use.", Type::Gauge);
    e.sample("imapav_icapd_signature_load_seconds", {}, st.loadSeconds);
    e.family("imapav_icapd_signature_loaded_timestamp_seconds", "When the engine in use went into service (unix time).",
             Type::Gauge);
    e.sample("imapav_icapd_signature_loaded_timestamp_seconds", {}, static_cast<double>(st.loadedAtUnix));
    e.family("imapav_icapd_engines", "Engines in memory: the one in use and replaced ones still finishing scans.",
             Type::Gauge);
    e.sample("imapav_icapd_engines", {}, st.engines);
    if (const auto cache = service.cacheStats()) {
      e.family("imapav_icapd_verdict_cache_entries", "Verdicts held by the cache.", Type::Gauge);
      e.sample("imapav_icapd_verdict_cache_entries", {}, static_cast<double>(cache->entries));
      e.family("imapav_icapd_verdict_cache_evictions_total",
               "Cache entries dropped, by reason (full: least recently used; expired: older than cache.max_age).",
               Type::Counter);
      e.sample("imapav_icapd_verdict_cache_evictions_total", {{"reason", "full"}}, static_cast<double>(cache->evictions));
      e.sample("imapav_icapd_verdict_cache_evictions_total", {{"reason", "expired"}}, static_cast<double>(cache->expired));
    }
  });
}

// Reports of the engine manager, for the operator: a failed reload is an error.
void logEngineReport(const imapav::scan::EngineManager::Report& r) {
  auto& log = Poco::Logger::get("icapd.engine");
  if (r.reason == "start") {
    log.information("signatures loaded: version=%s signatures=%u load_ms=%.0f", r.newVersion, r.signatures,
                    r.loadSeconds * 1000);
  } else if (r.success) {
    log.notice("signatures reloaded (%s): version=%s -> %s signatures=%u load_ms=%.0f", r.reason, r.oldVersion,
               r.newVersion, r.signatures, r.loadSeconds * 1000);
  } else {
    log.error("signature reload FAILED (%s), still scanning with version=%s: %s", r.reason, r.oldVersion, r.error);
  }
}

// Takes SIGHUP (blocked in every thread by DaemonApp) and asks for a reload.
class HangupListener {
 public:
  explicit HangupListener(imapav::scan::EngineManager& engines)
      : thread_([this, &engines] {
          sigset_t set;
          sigemptyset(&set);
          sigaddset(&set, SIGHUP);
          const timespec poll{0, 200'000'000};
          while (!stop_.load()) {
            if (sigtimedwait(&set, nullptr, &poll) == SIGHUP) {
              Poco::Logger::get("icapd.engine").information("SIGHUP: reloading signatures");
              engines.requestReload();
            }
          }
        }) {}
  ~HangupListener() {
    stop_.store(true);
    thread_.join();
  }
  HangupListener(const HangupListener&) = delete;
  HangupListener& operator=(const HangupListener&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
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
      // A reload that fails keeps the engine in use, for the same reason.
      imapav::scan::EngineManager engines(
          [&config] { return imapav::scan::ClamavScanner::load(config.engine); },
          [&config] { return imapav::scan::databaseFingerprint(config.engine.databaseDir); }, config.reloadCheck,
          std::chrono::seconds(1), logEngineReport);
      engines.setMinimumRatio(config.reloadMinPercent / 100.0);
      engines.start();
      log.information("engine=\"%s\" signatures=%s database_dir=%s reload_check=%Lds", engines.current()->engineVersion(),
                      engines.current()->signatureVersion(), config.engine.databaseDir,
                      static_cast<Poco::Int64>(config.reloadCheck.count() / 1000));
      HangupListener hangups(engines);

      std::unique_ptr<imapav::db::EventWriter> writer;
      std::unique_ptr<WriterSink> sink;
      if (config.database.empty()) {
        log.warning("log.database is not set: scan events are NOT recorded");
      } else {
        writer = std::make_unique<imapav::db::EventWriter>(config.database);
        sink = std::make_unique<WriterSink>(*writer);
      }

      imapav::icapd::Service service(config, [&engines] { return engines.current(); }, sink.get(),
                                     std::move(templates));
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
      auto& registry = service.metrics().registry();
      registry.gauge("imapav_icapd_scan_slots", "Scans that may run at once (scan.threads).").set(config.scanThreads);
      registry.gauge("imapav_icapd_max_connections", "Gateway connections allowed (icap.max_connections).")
          .set(config.maxConnections);
      addCollectors(registry, writer.get(), notifier.get(), engines, service);
      imapav::metrics::addProcessMetrics(registry);
      std::unique_ptr<imapav::metrics::HttpExporter> exporter;
      if (config.metricsListen) {
        exporter = std::make_unique<imapav::metrics::HttpExporter>(registry, *config.metricsListen);
        log.information("metrics on http://%s:%hu/metrics", config.metricsListen->host, exporter->port());
      }
      imapav::icapd::Server server(service);
      const auto port = server.start();
      log.information("listening on %s:%hu service=%s istag=%s max_connections=%u scan_threads=%u profiles=%s "
                      "cache_entries=%z",
                      config.listenHost, port, config.service, service.istag(), config.maxConnections,
                      config.scanThreads, std::to_string(config.profiles.size()), config.cacheMaxEntries);
      waitForTerminationRequest();
      log.information("stopping: finishing requests in flight");
      const bool clean = server.stop();
      exporter.reset();  // its scrapes read the notifier and the writer
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
