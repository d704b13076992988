// imapav-bench-icap: throughput of an ICAP scanning server (RESPMOD over persistent
// connections), or of libclamav alone in-process, on unique generated mail. One result line
// per run; tools/bench.sh runs the matrix and prints the comparison table.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "icap-server/scan/clamav_scanner.hpp"
#include "icap-server/scan/message_body.hpp"
#include "shared/icap/headers.hpp"
#include "shared/icap/response_parser.hpp"
#include "shared/icap/writer.hpp"
#include "tools/bench/bench_message.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using imapav::bench::BenchMessage;

constexpr std::size_t kChunkBytes = 64 * 1024;
constexpr std::size_t kReadBytes = 256 * 1024;
constexpr int kIoTimeoutMs = 120'000;  // a 5 MB scan on a loaded machine stays far below
constexpr std::size_t kSpillThreshold = 8u << 20;  // imapav-icapd's scan.spill_threshold default

struct Options {
  std::string icapTarget;  // HOST:PORT/SERVICE
  std::string host, port, service;
  std::string clamavDir;
  std::string tmpDir = "/tmp";
  std::string label;  // shown as the target; defaults to the address or the directory
  unsigned workers = 1;
  std::size_t size = 50'000;
  std::uint64_t requests = 0;
  double seconds = 0;
  double warmup = 0;
  bool infected = false;
};

[[noreturn]] void usage(const std::string& error) {
  if (!error.empty()) std::cerr << "imapav-bench-icap: " << error << "\n";
  std::cerr <<
      "usage: imapav-bench-icap --icap HOST:PORT/SERVICE --connections N --size BYTES\n"
      "                         (--requests N | --seconds S) [--warmup S] [--infected] [--label TEXT]\n"
      "       imapav-bench-icap --clamav DBDIR --threads N --size BYTES\n"
      "                         (--requests N | --seconds S) [--warmup S] [--infected]\n"
      "                         [--tmp-dir DIR] [--label TEXT]\n"
      "BYTES takes k or M (1000-based). Every request carries unique content.\n";
  std::exit(2);
}

std::uint64_t parseCount(const std::string& name, const std::string& text) {
  std::size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    usage(name + ": not a number: " + text);
  }
  std::uint64_t mult = 1;
  const std::string unit = text.substr(used);
  if (unit == "k" || unit == "K") mult = 1000;
  else if (unit == "M") mult = 1000 * 1000;
  else if (!unit.empty()) usage(name + ": unknown unit in " + text);
  return value * mult;
}

double parseSeconds(const std::string& name, const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size() && value >= 0) return value;
  } catch (const std::exception&) {
  }
  usage(name + ": not a number of seconds: " + text);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--icap") o.icapTarget = value();
    else if (arg == "--clamav") o.clamavDir = value();
    else if (arg == "--connections" || arg == "--threads") {
      o.workers = static_cast<unsigned>(parseCount(arg, value()));
    } else if (arg == "--size") o.size = parseCount(arg, value());
    else if (arg == "--requests") o.requests = parseCount(arg, value());
    else if (arg == "--seconds") o.seconds = parseSeconds(arg, value());
    else if (arg == "--warmup") o.warmup = parseSeconds(arg, value());
    else if (arg == "--tmp-dir") o.tmpDir = value();
    else if (arg == "--label") o.label = value();
    else if (arg == "--infected") o.infected = true;
    else if (arg == "--help" || arg == "-h") usage("");
    else usage("unknown argument " + arg);
  }
  if (o.icapTarget.empty() == o.clamavDir.empty()) usage("give exactly one of --icap and --clamav");
  if ((o.requests == 0) == (o.seconds <= 0)) usage("give exactly one of --requests and --seconds");
  if (o.workers == 0 || o.workers > 256) usage("connections/threads must be 1..256");
  if (o.size < 1000 || o.size > 1'000'000'000) usage("--size must be 1k..1000M");
  if (!o.icapTarget.empty()) {
    const auto slash = o.icapTarget.find('/');
    const auto hostPort = o.icapTarget.substr(0, slash);
    const auto colon = hostPort.rfind(':');
    if (slash == std::string::npos || colon == std::string::npos || colon == 0) {
      usage("--icap expects HOST:PORT/SERVICE");
    }
    o.host = hostPort.substr(0, colon);
    o.port = hostPort.substr(colon + 1);
    o.service = o.icapTarget.substr(slash + 1);
    if (o.service.empty()) usage("--icap expects HOST:PORT/SERVICE");
  }
  if (o.label.empty()) o.label = o.icapTarget.empty() ? "libclamav" : o.icapTarget;
  return o;
}

// What one worker measured. Written by the worker only, read by main after join().
// The requests that started in the measuring phase count (those still in flight when it
// ends are waited for), and the window runs from the start of the first to the end of the
// last of them: a slow case (a few 5 MB scans per second) is then not rounded to whole
// requests per time slice, and a worker always measures at least one request.
struct Counters {
  std::uint64_t done = 0;    // measured requests completed (any status)
  std::uint64_t bytes = 0;   // their message bytes
  std::uint64_t busyNs = 0;  // time inside them (ICAP) or inside the scan call (libclamav)
  std::uint64_t s204 = 0, s200 = 0, other = 0, replaced = 0;
  std::uint64_t responseBodyBytes = 0;  // what 200 answers carried back
  std::uint64_t clean = 0, infected = 0, scanErrors = 0;
  std::uint64_t errors = 0;  // connection and protocol failures, in any phase
  int lastOther = 0;
  Clock::time_point windowStart{}, windowEnd{};
  bool started = false;

  // Call with the start and end of each measured request.
  void count(Clock::time_point begin, Clock::time_point end, std::uint64_t size, Clock::duration busy) {
    if (!started) {
      windowStart = begin;
      started = true;
    }
    windowEnd = end;
    ++done;
    bytes += size;
    busyNs += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(busy).count());
  }
  double seconds() const { return started ? std::chrono::duration<double>(windowEnd - windowStart).count() : 0; }
};

enum class Phase { Warmup, Measure, Stop };

struct Shared {
  Options options;
  std::uint64_t runId = 0;
  std::atomic<std::uint64_t> sequence{0};  // unique per request in this run
  std::atomic<Phase> phase{Phase::Warmup};
  std::atomic<std::uint64_t> tickets{0};   // --requests: measured requests handed out
  std::vector<Counters> counters;
  std::mutex errorMutex;
  std::string firstError;

  void reportError(const std::string& text) {
    std::lock_guard lock(errorMutex);
    if (firstError.empty()) firstError = text;
  }
  // Whether a worker may start another request, and whether that one is measured.
  bool mayStart(bool& measured) {
    const Phase p = phase.load();
    measured = p == Phase::Measure;
    if (p == Phase::Stop) return false;
    if (p == Phase::Warmup || options.requests == 0) return true;
    return tickets.fetch_add(1) < options.requests;
  }
};

// The messages one worker cycles through; generated before timing starts.
std::vector<BenchMessage> makePool(const Options& o, std::uint64_t runId, unsigned worker) {
  const std::size_t count = o.size >= 1'000'000 ? 2 : 16;
  std::vector<BenchMessage> pool;
  for (std::size_t i = 0; i < count; ++i) {
    pool.push_back(imapav::bench::makeMessage(o.size, runId ^ (std::uint64_t{worker} << 32) ^ i, o.infected));
  }
  return pool;
}

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// ---------------------------------------------------------------------------------------
// ICAP mode

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { reset(); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Connects (blocking), then switches to non-blocking with TCP_NODELAY. Empty on success.
std::string connectTo(const Options& o, FileDescriptor& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (const int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &list); rc != 0) {
    return "resolve " + o.host + ": " + ::gai_strerror(rc);
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(list, ::freeaddrinfo);
  std::string error = "no address for " + o.host;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    FileDescriptor fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      error = errnoText("socket");
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      error = errnoText(("connect " + o.host + ":" + o.port).c_str());
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    out.reset(fd.release());
    return {};
  }
  return error;
}

struct Outcome {
  bool ok = false;          // a complete response arrived and the connection is reusable
  bool keepOpen = false;
  int status = 0;
  bool replaced = false;    // 200 carrying a verdict header
  std::uint64_t bodyBytes = 0;  // decoded body bytes of the response
  std::string error;
};

// One RESPMOD exchange on a non-blocking socket: sends the request in chunks while reading
// whatever comes back, so a server that answers early cannot deadlock us.
class IcapExchange {
 public:
  explicit IcapExchange(int fd) : fd_(fd), readBuffer_(kReadBytes, '\0') {}

  Outcome run(const std::string& head, std::string_view message) {
    head_ = head;
    message_ = message;
    headSent_ = 0;
    messageSent_ = 0;
    lastChunkQueued_ = false;
    chunk_.clear();
    chunkSent_ = 0;
    Outcome out;
    bool complete = false;
    while (!complete) {
      const bool sending = !requestDone();
      pollfd p{fd_, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
      const int rc = ::poll(&p, 1, kIoTimeoutMs);
      if (rc == 0) return fail(out, "timeout waiting for the server");
      if (rc < 0) {
        if (errno == EINTR) continue;
        return fail(out, errnoText("poll"));
      }
      if (p.revents & POLLIN || p.revents & (POLLERR | POLLHUP)) {
        const ssize_t n = ::recv(fd_, readBuffer_.data(), readBuffer_.size(), 0);
        if (n == 0) return fail(out, "server closed the connection");
        if (n < 0) {
          if (errno != EAGAIN && errno != EINTR) return fail(out, errnoText("recv"));
        } else if (!consume(std::string_view(readBuffer_.data(), static_cast<std::size_t>(n)), out,
                            complete)) {
          return out;
        }
      }
      if (!complete && sending && (p.revents & POLLOUT) && !send(out)) return out;
    }
    if (!requestDone()) return fail(out, "response complete before the request was sent");
    out.ok = true;
    return out;
  }


 private:
  bool requestDone() const { return lastChunkQueued_ && chunkSent_ == chunk_.size(); }

  Outcome& fail(Outcome& out, std::string text) {
    out.ok = false;
    out.keepOpen = false;
    out.error = std::move(text);
    parser_.reset();
    return out;
  }

  // Queues the next piece: the head, then chunks of the message, then the last chunk.
  void refill() {
    chunk_.clear();
    chunkSent_ = 0;
    if (headSent_ == 0 && !head_.empty()) {
      chunk_.swap(head_);
      headSent_ = 1;
    }
    if (messageSent_ < message_.size()) {
      const auto piece = message_.substr(messageSent_, kChunkBytes);
      imapav::icap::appendChunk(chunk_, piece);
      messageSent_ += piece.size();
    }
    if (messageSent_ == message_.size() && !lastChunkQueued_) {
      imapav::icap::appendLastChunk(chunk_);
      lastChunkQueued_ = true;
    }
  }

  bool send(Outcome& out) {
    for (;;) {
      if (chunkSent_ == chunk_.size()) {
        if (lastChunkQueued_) return true;
        refill();
      }
      const ssize_t n = ::send(fd_, chunk_.data() + chunkSent_, chunk_.size() - chunkSent_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        fail(out, errnoText("send"));
        return false;
      }
      chunkSent_ += static_cast<std::size_t>(n);
    }
  }

  bool consume(std::string_view data, Outcome& out, bool& complete) {
    using Event = imapav::icap::ResponseParser::Event;
    while (!complete) {
      const auto step = parser_.feed(data);
      data.remove_prefix(step.consumed);
      switch (step.event) {
        case Event::NeedMore:
          return true;  // the parser keeps partial lines itself
        case Event::Head:
          break;
        case Event::Body:
          out.bodyBytes += parser_.bodyData().size();
          break;
        case Event::Complete: {
          const auto& h = parser_.head();
          if (h.status == 100) break;  // not asked for (no preview); wait for the answer
          out.status = h.status;
          out.replaced = h.status == 200 &&
                         (h.headers.has("X-Infection-Found") || h.headers.has("X-Virus-ID"));
          out.keepOpen = !h.headers.listHas("Connection", "close");
          complete = true;
          if (!data.empty()) {
            fail(out, "unexpected bytes after the response");
            return false;
          }
          break;
        }
        case Event::Error:
          fail(out, "bad ICAP response: " + parser_.errorText());
          return false;
      }
    }
    return true;
  }

  int fd_;
  std::string readBuffer_;
  imapav::icap::ResponseParser parser_;
  std::string head_;
  std::string_view message_;
  std::size_t headSent_ = 0;
  std::size_t messageSent_ = 0;
  bool lastChunkQueued_ = false;
  std::string chunk_;
  std::size_t chunkSent_ = 0;
};

std::string buildHead(const Options& o, std::uint64_t uid, std::size_t bodySize) {
  imapav::icap::Headers headers;
  headers.add("Host", o.host + ":" + o.port);
  headers.add("Allow", "204");
  headers.add("User-Agent", "imapav-bench-icap");
  const std::string reqHdr = "GET imap://bench@localhost/INBOX;UIDVALIDITY=1/;UID=" + std::to_string(uid) +
                             " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  const std::string resHdr = "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: " +
                             std::to_string(bodySize) + "\r\n\r\n";
  std::string head;
  imapav::icap::appendRequestHead(head, "RESPMOD", "icap://" + o.host + ":" + o.port + "/" + o.service,
                                  headers, reqHdr, resHdr, 2);
  return head;
}

void icapWorker(Shared& shared, unsigned index, std::vector<BenchMessage> pool) {
  const Options& o = shared.options;
  Counters& c = shared.counters[index];
  FileDescriptor fd;
  std::size_t next = 0;
  bool measured = false;
  while (shared.mayStart(measured)) {
    if (fd.get() < 0) {
      if (auto error = connectTo(o, fd); !error.empty()) {
        c.errors++;
        shared.reportError(error);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
    }
    BenchMessage& message = pool[next++ % pool.size()];
    const std::uint64_t seq = shared.sequence.fetch_add(1);
    imapav::bench::stamp(message, shared.runId, seq);
    const std::string head = buildHead(o, seq, message.bytes.size());
    const auto start = Clock::now();
    IcapExchange exchange(fd.get());
    const Outcome out = exchange.run(head, message.bytes);
    const auto end = Clock::now();
    if (!out.ok) {
      c.errors++;
      shared.reportError(out.error);
      fd.reset();
      continue;
    }
    if (!out.keepOpen) fd.reset();
    if (!measured) continue;
    c.count(start, end, message.bytes.size(), end - start);
    if (out.status == 204) c.s204++;
    else if (out.status == 200) c.s200++;
    else {
      c.other++;
      c.lastOther = out.status;
    }
    if (out.replaced) c.replaced++;
    c.responseBodyBytes += out.bodyBytes;
  }
}

// ---------------------------------------------------------------------------------------
// libclamav mode

void clamavWorker(Shared& shared, unsigned index, std::vector<BenchMessage> pool,
                  imapav::scan::ClamavScanner& scanner) {
  const Options& o = shared.options;
  Counters& c = shared.counters[index];
  std::size_t next = 0;
  imapav::scan::MessageBody body(kSpillThreshold, o.tmpDir);
  bool measured = false;
  while (shared.mayStart(measured)) {
    BenchMessage& message = pool[next++ % pool.size()];
    const auto begin = Clock::now();
    imapav::bench::stamp(message, shared.runId, shared.sequence.fetch_add(1));
    body.clear();
    // Filling the body (a copy and its SHA-256) is imapav-icapd's cost, not libclamav's:
    // it stays out of the busy time.
    if (!body.append(message.bytes)) {
      c.errors++;
      shared.reportError("message body: " + body.error());
      continue;
    }
    const auto start = Clock::now();
    const auto result = scanner.scan(body);
    const auto end = Clock::now();
    if (!measured) continue;
    c.count(begin, end, message.bytes.size(), end - start);
    switch (result.verdict) {
      case imapav::scan::Verdict::Clean: c.clean++; break;
      case imapav::scan::Verdict::Infected: c.infected++; break;
      case imapav::scan::Verdict::Error:
        c.scanErrors++;
        shared.reportError("scan error: " + result.detail);
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Shared shared;
  shared.options = parseOptions(argc, argv);
  const Options& o = shared.options;
  // A run id in every stamp keeps content unique across runs against the same server
  // (its libclamav cache outlives one run).
  shared.runId = (std::random_device{}() * 0x100000001ULL) ^
                 static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());

  std::unique_ptr<imapav::scan::ClamavScanner> scanner;
  if (!o.clamavDir.empty()) {
    imapav::scan::EngineOptions engine;  // imapav-icapd's defaults but for these two
    engine.databaseDir = o.clamavDir;
    engine.tmpDir = o.tmpDir;
    try {
      scanner = imapav::scan::ClamavScanner::load(engine);
    } catch (const std::exception& e) {
      std::cerr << "imapav-bench-icap: " << e.what() << "\n";
      return 1;
    }
  }

  std::vector<std::vector<BenchMessage>> pools;
  std::size_t averageSize = 0;
  shared.counters.resize(o.workers);
  for (unsigned i = 0; i < o.workers; ++i) {
    pools.push_back(makePool(o, shared.runId, i));
    averageSize = pools.back().front().bytes.size();
  }

  shared.phase = o.warmup > 0 ? Phase::Warmup : Phase::Measure;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.workers; ++i) {
    if (scanner) {
      threads.emplace_back(clamavWorker, std::ref(shared), i, std::move(pools[i]), std::ref(*scanner));
    } else {
      threads.emplace_back(icapWorker, std::ref(shared), i, std::move(pools[i]));
    }
  }
  if (o.warmup > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
    shared.phase = Phase::Measure;
  }
  // --seconds: no new requests after the window; --requests: workers stop when the
  // tickets run out.
  if (o.requests == 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    shared.phase = Phase::Stop;
  }
  for (auto& t : threads) t.join();

  Counters total;
  double reqPerSec = 0, mbPerSec = 0, scanReqPerSec = 0, seconds = 0;
  for (const Counters& c : shared.counters) {
    const double s = c.seconds();
    if (s > 0) {
      reqPerSec += static_cast<double>(c.done) / s;
      mbPerSec += static_cast<double>(c.bytes) / 1e6 / s;
    }
    if (c.busyNs > 0) scanReqPerSec += static_cast<double>(c.done) * 1e9 / static_cast<double>(c.busyNs);
    seconds = std::max(seconds, s);
    total.done += c.done;
    total.busyNs += c.busyNs;
    total.s204 += c.s204;
    total.s200 += c.s200;
    total.other += c.other;
    total.replaced += c.replaced;
    total.responseBodyBytes += c.responseBodyBytes;
    total.clean += c.clean;
    total.infected += c.infected;
    total.scanErrors += c.scanErrors;
    total.errors += c.errors;
    if (c.lastOther != 0) total.lastOther = c.lastOther;
  }
  const Counters& result = total;
  const double latencyMs =
      result.done > 0 ? static_cast<double>(result.busyNs) / 1e6 / static_cast<double>(result.done) : 0;
  std::string line = std::string("mode=") + (scanner ? "clamav" : "icap") + " target=" + o.label +
                     (scanner ? " threads=" : " conns=") + std::to_string(o.workers) +
                     " size=" + std::to_string(averageSize) + " requests=" + std::to_string(result.done) +
                     " seconds=" + fixed(seconds, 2) + " req_s=" + fixed(reqPerSec, 2) +
                     " MB_s=" + fixed(mbPerSec, 2) + " lat_ms=" + fixed(latencyMs, 2);
  if (scanner) {
    // Throughput of the scan calls alone (per worker: scans / time inside scan, summed).
    line += " scan_req_s=" + fixed(scanReqPerSec, 2) +
            " scan_MB_s=" + fixed(scanReqPerSec * static_cast<double>(averageSize) / 1e6, 2) +
            " clean=" + std::to_string(result.clean) + " infected=" + std::to_string(result.infected) +
            " scan_errors=" + std::to_string(result.scanErrors);
  } else {
    line += " s204=" + std::to_string(result.s204) + " s200=" + std::to_string(result.s200) +
            " other=" + std::to_string(result.other) + " replaced=" + std::to_string(result.replaced);
    if (result.s200 > 0) {
      // A replacement notice is small; an echo of the message (early sending, or content
      // passed unscanned) is about as large as the message, a truncated echo in between.
      line += " resp_body_avg=" + std::to_string(result.responseBodyBytes / result.s200);
    }
    if (result.other > 0) line += " other_status=" + std::to_string(result.lastOther);
  }
  line += " errors=" + std::to_string(result.errors);
  std::cout << line << std::endl;
  if (!shared.firstError.empty()) std::cerr << "imapav-bench-icap: first error: " << shared.firstError << "\n";
  return result.errors > 0 || result.scanErrors > 0 ? 1 : 0;
}
