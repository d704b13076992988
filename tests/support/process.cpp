#include "tests/support/process.hpp"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace imapav::test {
namespace {

std::vector<char*> toArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int decodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = "/tmp/imapav-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TempFile::TempFile(const std::string& content) {
  std::string tmpl = "/tmp/imapav-test-XXXXXX";
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  path_ = tmpl;
  writeFile(path_, content);
}

TempFile::~TempFile() { std::remove(path_.c_str()); }

std::uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    throw std::runtime_error("freePort: bind failed");
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool waitForPort(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string sanitizerReport(const std::string& output) {
  static const char* const kMarkers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ",
                                         "SUMMARY: UndefinedBehaviorSanitizer"};
  std::size_t at = std::string::npos;
  for (const char* m : kMarkers) at = std::min(at, output.find(m));
  if (at == std::string::npos) return {};
  const auto from = output.rfind('\n', at);
  return output.substr(from == std::string::npos ? 0 : from + 1, 4000);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& logFile)
    : name_(argv.empty() ? std::string() : argv[0]), logFile_(logFile) {
  auto args = toArgv(argv);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(errno));
  if (pid_ == 0) {
    // Only async-signal-safe calls here. If the test process dies without running its
    // destructors (a crash, a timeout kill), the child gets SIGTERM instead of lingering
    // on its port.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && status_ < 0) stop(SIGTERM, std::chrono::seconds(10));
}

bool ChildProcess::running() {
  if (status_ >= 0) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    ended(st);
    return false;
  }
  return true;
}

void ChildProcess::ended(int status) {
  status_ = status;
  const auto report = sanitizerReport(readFile(logFile_));
  if (!report.empty()) BOOST_ERROR("sanitizer report from " + name_ + " (" + logFile_ + "):\n" + report);
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return decodeStatus(status_);
}

int ChildProcess::stop(int sig, std::chrono::milliseconds timeout) {
  if (!running()) return decodeStatus(status_);
  ::kill(pid_, sig);
  const int rc = wait(timeout);
  if (rc == -1) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    ended(st);
    return -1;
  }
  return rc;
}

CommandResult runCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::string& stdinData) {
  int inPipe[2];
  int outPipe[2];
  if (pipe2(inPipe, O_CLOEXEC) != 0 || pipe2(outPipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, inPipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, outPipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, outPipe[1], 2);
  auto args = toArgv(argv);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(inPipe[0]);
  ::close(outPipe[1]);
  if (rc != 0) {
    ::close(inPipe[1]);
    ::close(outPipe[0]);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  // Feed stdin and drain stdout together so neither side blocks on a full pipe.
  std::size_t written = 0;
  if (stdinData.empty()) ::close(inPipe[1]);
  bool inOpen = !stdinData.empty();
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool outOpen = true;
  while (outOpen && std::chrono::steady_clock::now() < deadline) {
    pollfd p[2] = {{outPipe[0], POLLIN, 0}, {inOpen ? inPipe[1] : -1, POLLOUT, 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    if (p[0].revents) {
      char buf[65536];
      const ssize_t n = ::read(outPipe[0], buf, sizeof(buf));
      if (n <= 0) outOpen = false;
      else result.output.append(buf, static_cast<std::size_t>(n));
    }
    if (inOpen && p[1].revents) {
      const ssize_t n = ::write(inPipe[1], stdinData.data() + written, stdinData.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n <= 0 || written == stdinData.size()) {
        ::close(inPipe[1]);
        inOpen = false;
      }
    }
  }
  if (inOpen) ::close(inPipe[1]);
  ::close(outPipe[0]);
  int st = 0;
  if (outOpen) {  // timed out
    ::kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    result.exitCode = -1;
    return result;
  }
  waitpid(pid, &st, 0);
  result.exitCode = decodeStatus(st);
  if (const auto report = sanitizerReport(result.output); !report.empty())
    BOOST_ERROR("sanitizer report from " + argv[0] + ":\n" + report);
  return result;
}

}  // namespace imapav::test
