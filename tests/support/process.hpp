#pragma once
// What integration tests need to run the real binaries and peers: a private temporary
// directory, a free loopback port, child processes that are always stopped.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace imapav::test {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A file under /tmp with the given content, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& content);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A loopback TCP port that was free a moment ago.
std::uint16_t freePort();
// True once something accepts connections on 127.0.0.1:port.
bool waitForPort(std::uint16_t port, std::chrono::milliseconds timeout);

void writeFile(const std::string& path, const std::string& content);
std::string readFile(const std::string& path);

// A child process with stdout and stderr appended to logFile. The destructor stops it
// (SIGTERM, then SIGKILL after 10 s) so a failing test leaves nothing running. Once it has
// ended, a sanitizer report in its log (sanitizer builds) fails the test.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& logFile);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends sig and waits up to timeout; returns the exit status (exit code, or 128+signal),
  // or -1 if it did not end in time (it is then killed).
  int stop(int sig, std::chrono::milliseconds timeout);
  // Waits for it to end by itself; same return values as stop().
  int wait(std::chrono::milliseconds timeout);

 private:
  void ended(int status);

  pid_t pid_ = -1;
  int status_ = -1;
  std::string name_, logFile_;
};

// The first AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report in a
// process's output, with some context; empty when there is none.
std::string sanitizerReport(const std::string& output);

struct CommandResult {
  int exitCode = -1;   // 128+signal if killed; -1 if it timed out
  std::string output;  // stdout and stderr together
};
// Runs a command to completion with stdin from stdinData (may be empty). A sanitizer
// report in its output fails the test.
CommandResult runCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::string& stdinData = "");

}  // namespace imapav::test
