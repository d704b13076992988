// imapav-redirector: the IMAP proxy that has every downloaded message scanned over ICAP.
// Start-up may throw; main turns that into a clear message and exit code 78 (EX_CONFIG)
// or 69 (EX_UNAVAILABLE).

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "redirector/config.hpp"
#include "redirector/icap_client.hpp"
#include "redirector/server.hpp"

namespace {

using namespace imapav::redirector;

void setupLogging(const std::string& level) {
  Poco::AutoPtr<Poco::PatternFormatter> fmt(new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
  Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
  Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(fmt, console));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::root().setLevel(level);
  Poco::Logger::setChannel("", channel);
  Poco::Logger::setLevel("", Poco::Logger::parseLevel(level));
}

class RedirectorApp final : public Poco::Util::ServerApplication {
 protected:
  void defineOptions(Poco::Util::OptionSet& options) override {
    ServerApplication::defineOptions(options);
    options.addOption(Poco::Util::Option("help", "h", "show this help and exit")
                          .required(false).repeatable(false)
                          .callback(Poco::Util::OptionCallback<RedirectorApp>(this, &RedirectorApp::onHelp)));
    options.addOption(Poco::Util::Option("config", "c", "configuration file (POCO properties)")
                          .required(false).repeatable(false).argument("FILE")
                          .callback(Poco::Util::OptionCallback<RedirectorApp>(this, &RedirectorApp::onConfig)));
  }

  int main(const std::vector<std::string>&) override {
    std::signal(SIGPIPE, SIG_IGN);  // libicapapi and OpenSSL write to sockets with write()
    if (help_) return EXIT_OK;
    if (configPath_.empty()) {
      std::cerr << "imapav-redirector: --config FILE is required (see --help)\n";
      return EXIT_USAGE;
    }
    Config config;
    try {
      config = loadConfig(configPath_);
    } catch (const std::exception& e) {
      std::cerr << "imapav-redirector: " << e.what() << "\n";
      return EXIT_CONFIG;
    }
    setupLogging(config.logLevel);
    auto& log = Poco::Logger::get("redirector");
    try {
      IcapClientOptions icap;
      icap.servers = config.icapServers;
      icap.timeout = config.icapTimeout;
      icap.maxConnectionsPerServer = config.icapConnections;
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
      log.information("listening imap=%hu (STARTTLS %s) imaps=%hu upstream=%s:%hu (%s) icap=%s fail_mode=%s", plain,
                      std::string(clientTls ? "offered" : "off"), implicit, config.upstream.host,
                      config.upstream.port, std::string(kSecurity[static_cast<int>(config.upstreamSecurity)]),
                      config.icapServers.front(), std::string(config.failMode == LocalFailMode::Pass ? "pass" : "drop"));
      std::thread loop([&] { server.run(); });
      waitForTerminationRequest();
      log.information("stopping");
      server.stop();
      loop.join();
      log.information("stopped");
    } catch (const std::exception& e) {
      log.fatal(e.what());
      return EXIT_UNAVAILABLE;
    }
    return EXIT_OK;
  }

 private:
  void onHelp(const std::string&, const std::string&) {
    help_ = true;
    Poco::Util::HelpFormatter hf(options());
    hf.setCommand(commandName());
    hf.setUsage("--config FILE");
    hf.setHeader(
        "imapav-redirector: IMAP proxy that has every downloaded message scanned by an ICAP server\n"
        "(imapav-icapd). Runs in the foreground until SIGTERM or SIGINT. Settings: conf/imapav-redirector.conf.");
    hf.format(std::cout);
    stopOptionsProcessing();
  }
  void onConfig(const std::string&, const std::string& value) { configPath_ = value; }

  bool help_ = false;
  std::string configPath_;
};

}  // namespace

POCO_SERVER_MAIN(RedirectorApp)
