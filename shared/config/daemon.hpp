#pragma once
// What both daemons share at start-up: the command line (--config FILE, --help), running
// in the foreground until SIGTERM or SIGINT, and logging to stderr.

#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include <string>
#include <vector>

namespace imapav::config {

// Every logger (existing and future) writes "time level source: text" lines to stderr.
void setupLogging(const std::string& level);

class DaemonApp : public Poco::Util::ServerApplication {
 protected:
  DaemonApp(std::string name, std::string description);
  // Runs the daemon; returns the exit code (EXIT_CONFIG for a bad configuration).
  virtual int serve(const std::string& configPath) = 0;

  void defineOptions(Poco::Util::OptionSet& options) override;
  int main(const std::vector<std::string>& args) override;

 private:
  void onHelp(const std::string&, const std::string&);
  void onConfig(const std::string&, const std::string& value) { configPath_ = value; }

  std::string name_, description_;
  bool help_ = false;
  std::string configPath_;
};

}  // namespace imapav::config
