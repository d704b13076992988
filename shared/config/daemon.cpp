#include "shared/config/daemon.hpp"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>

#include <signal.h>

#include <iostream>

namespace imapav::config {

void setupLogging(const std::string& level) {
  Poco::AutoPtr<Poco::PatternFormatter> fmt(new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
  Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
  Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(fmt, console));
  // Loggers copy their parent's channel only when created: set it on those that exist
  // already too.
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::root().setLevel(level);
  Poco::Logger::setChannel("", channel);
  Poco::Logger::setLevel("", Poco::Logger::parseLevel(level));
}

DaemonApp::DaemonApp(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)) {}

void DaemonApp::defineOptions(Poco::Util::OptionSet& options) {
  ServerApplication::defineOptions(options);
  options.addOption(Poco::Util::Option("help", "h", "show this help and exit")
                        .required(false).repeatable(false)
                        .callback(Poco::Util::OptionCallback<DaemonApp>(this, &DaemonApp::onHelp)));
  options.addOption(Poco::Util::Option("config", "c", "configuration file (POCO properties)")
                        .required(false).repeatable(false).argument("FILE")
                        .callback(Poco::Util::OptionCallback<DaemonApp>(this, &DaemonApp::onConfig)));
}

int DaemonApp::main(const std::vector<std::string>&) {
  if (help_) return EXIT_OK;
  if (configPath_.empty()) {
    std::cerr << name_ << ": --config FILE is required (see --help)\n";
    return EXIT_USAGE;
  }
  // Threads inherit the signal mask: block the stop signals before serve() starts any, so
  // only waitForTerminationRequest (sigwait) takes them. Otherwise a SIGTERM that lands in
  // a worker thread kills the process without a graceful stop.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGQUIT);
  // SIGHUP too: a daemon that wants it takes it with sigwait (imapav-icapd: reload the
  // signatures); for the others it is ignored instead of ending the process.
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return serve(configPath_);
}

void DaemonApp::onHelp(const std::string&, const std::string&) {
  help_ = true;
  Poco::Util::HelpFormatter hf(options());
  hf.setCommand(commandName());
  hf.setUsage("--config FILE");
  hf.setHeader(description_);
  hf.format(std::cout);
  stopOptionsProcessing();
}

}  // namespace imapav::config
