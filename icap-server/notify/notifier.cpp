#include "icap-server/notify/notifier.hpp"

#include <sys/socket.h>

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <utility>

namespace imapav::notify {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Waits are cut into slices so a shutdown is noticed while a relay is slow.
constexpr auto kSlice = 50ms;
constexpr std::size_t kMaxReplyLine = 2048;
constexpr std::size_t kMaxReplyLines = 64;
constexpr std::size_t kMaxDetail = 300;
constexpr std::size_t kMaxDataBytes = std::size_t{8} << 20;
constexpr std::size_t kMaxRateKeys = 10000;
constexpr std::size_t kMaxPendingReports = 10000;
constexpr std::size_t kMaxAddress = 254;
constexpr auto kMaxRetryDelay = std::chrono::milliseconds(std::chrono::hours(24));
constexpr auto kQuitWait = 1000ms;
constexpr auto kIdleWait = 1000ms;

Poco::Logger& notifyLog() { return Poco::Logger::get("icapd.notify"); }

bool isSpecialOrControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u == 0x7f) return true;
  return std::string_view("<>()[],;:\\\"").find(c) != std::string_view::npos;
}

// An address that is safe inside "MAIL FROM:<...>" / "RCPT TO:<...>": nothing that could
// end the command or the angle brackets. Syntax beyond that is the relay's business.
bool isSafeEnvelopeAddress(std::string_view address) {
  if (address.size() > kMaxAddress) return false;
  return std::none_of(address.begin(), address.end(), isSpecialOrControl);
}

// Reply text goes to logs and results: printable ASCII only, bounded.
std::string cleanDetail(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxDetail)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

// RFC 5321 4.5.2: every line that starts with "." gets one more; line ends become CRLF
// (bare LF or CR would be rejected or misread by relays); the terminator follows.
std::string stuffData(std::string_view data) {
  std::string out;
  out.reserve(data.size() + data.size() / 32 + 8);
  bool lineStart = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      out += "\r\n";
      lineStart = true;
      continue;
    }
    if (lineStart && c == '.') out.push_back('.');
    out.push_back(c);
    lineStart = false;
  }
  if (!lineStart) out += "\r\n";
  out += ".\r\n";
  return out;
}

enum class Verdict {
  Sent,       // 250 after the data
  Temporary,  // 4xx, network error or timeout: retry later
  Permanent,  // 5xx: retrying cannot help
};

struct AttemptResult {
  Verdict verdict = Verdict::Temporary;
  std::string detail;
};

struct Reply {
  int code = 0;
  std::string text;  // "<code> <text>" of all lines, joined by " "
};

// Network trouble inside one session; deliver() turns it into a Temporary verdict.
class SessionError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One SMTP transaction over a plain socket. Poco's SMTPClientSession connects in its
// constructor without a timeout, and its raw-stream sendMessage() leaves the envelope to
// sendCommands() with MailMessage; a minimal client keeps every wait timed and sliced.
class SmtpSession {
 public:
  SmtpSession(const NotifierOptions& options, std::function<Clock::time_point()> hardDeadline)
      : options_(options), hardDeadline_(std::move(hardDeadline)) {}

  AttemptResult deliver(const Mail& mail) {
    try {
      return transact(mail);
    } catch (const SessionError& e) {
      return {Verdict::Temporary, cleanDetail(e.what())};
    } catch (const Poco::Exception& e) {
      return {Verdict::Temporary, cleanDetail(stage_ + ": " + e.displayText())};
    } catch (const std::exception& e) {
      return {Verdict::Temporary, cleanDetail(stage_ + ": " + e.what())};
    }
  }

 private:
  AttemptResult transact(const Mail& mail) {
    stage_ = "connect " + options_.relayHost + ":" + std::to_string(options_.relayPort);
    // Resolution of a host name is not timed (getaddrinfo); configure an address literal
    // when the resolver may hang.
    const Poco::Net::SocketAddress address(options_.relayHost, options_.relayPort);
    const auto connectWait = waitBound(Clock::now() + options_.timeout);
    if (connectWait <= Clock::duration::zero()) throw SessionError(stage_ + ": shutdown");
    socket_.connect(address, toTimespan(connectWait));
    socket_.setNoDelay(true);

    stage_ = "greeting";
    if (auto bad = expect(readReply(), {220})) return *bad;

    stage_ = "EHLO";
    send("EHLO " + options_.heloName + "\r\n");
    Reply ehlo = readReply();
    if (ehlo.code >= 500) {  // a relay from before RFC 1869
      stage_ = "HELO";
      send("HELO " + options_.heloName + "\r\n");
      ehlo = readReply();
    }
    if (auto bad = expect(ehlo, {250})) return *bad;

    stage_ = "MAIL FROM";
    send("MAIL FROM:<" + mail.envelopeFrom + ">\r\n");
    if (auto bad = expect(readReply(), {250})) return *bad;

    stage_ = "RCPT TO";
    send("RCPT TO:<" + mail.recipient + ">\r\n");
    if (auto bad = expect(readReply(), {250, 251})) return *bad;

    stage_ = "DATA";
    send("DATA\r\n");
    if (auto bad = expect(readReply(), {354})) return *bad;

    stage_ = "end of data";
    send(stuffData(mail.data));
    const Reply accepted = readReply();
    if (auto bad = expect(accepted, {250})) return *bad;
    quit();
    return {Verdict::Sent, cleanDetail(accepted.text)};
  }

  // The failure verdict for an unexpected reply, or nothing when it is one of codes.
  std::optional<AttemptResult> expect(const Reply& reply, std::initializer_list<int> codes) {
    if (std::find(codes.begin(), codes.end(), reply.code) != codes.end()) return std::nullopt;
    quit();
    // Anything that is neither success nor 5xx is treated as transient (RFC 5321 4.2.1).
    const Verdict verdict = reply.code >= 500 && reply.code < 600 ? Verdict::Permanent
                                                                   : Verdict::Temporary;
    return AttemptResult{verdict, cleanDetail(stage_ + ": " + reply.text)};
  }

  // Polite, but never worth more than a short wait.
  void quit() {
    try {
      send("QUIT\r\n");
      (void)readReply(kQuitWait);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the outcome is already known
    }
  }

  // How long one wait may take: until limit, and never past the shutdown deadline.
  Clock::duration waitBound(Clock::time_point limit) const {
    return std::min(limit, hardDeadline_()) - Clock::now();
  }

  static Poco::Timespan toTimespan(Clock::duration d) {
    return Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  }

  void send(std::string_view bytes) {
    socket_.setSendTimeout(toTimespan(kSlice));
    auto limit = Clock::now() + options_.timeout;
    while (!bytes.empty()) {
      if (waitBound(limit) <= Clock::duration::zero()) throw SessionError(stage_ + ": send timed out");
      const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size(), 64 * 1024));
      int sent = 0;
      try {
        // MSG_NOSIGNAL: a relay that hangs up must not raise SIGPIPE in the daemon.
        sent = socket_.sendBytes(bytes.data(), chunk, MSG_NOSIGNAL);
      } catch (const Poco::TimeoutException&) {
        continue;
      }
      if (sent <= 0) throw SessionError(stage_ + ": connection closed while sending");
      bytes.remove_prefix(static_cast<std::size_t>(sent));
      limit = Clock::now() + options_.timeout;  // the timeout is per stall, not per mail
    }
  }

  // One complete (possibly multi-line) reply within the timeout.
  Reply readReply() { return readReply(options_.timeout); }
  Reply readReply(std::chrono::milliseconds timeout) {
    const auto limit = Clock::now() + timeout;
    Reply reply;
    std::size_t lines = 0;
    while (true) {
      const std::string line = readLine(limit);
      if (line.size() < 3 || !std::all_of(line.begin(), line.begin() + 3, [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
          })) {
        throw SessionError(stage_ + ": malformed reply \"" + cleanDetail(line) + "\"");
      }
      const int code = std::stoi(line.substr(0, 3));
      if (lines > 0 && code != reply.code) throw SessionError(stage_ + ": inconsistent reply");
      reply.code = code;
      if (!reply.text.empty()) reply.text += ' ';
      reply.text += lines == 0 ? line : line.substr(std::min<std::size_t>(4, line.size()));
      if (++lines > kMaxReplyLines) throw SessionError(stage_ + ": reply too long");
      if (line.size() == 3 || line[3] != '-') break;
    }
    // Continuation lines were joined as "250-a b"; show the reply as "250 a b".
    if (reply.text.size() > 3 && reply.text[3] == '-') reply.text[3] = ' ';
    return reply;
  }

  std::string readLine(Clock::time_point limit) {
    while (true) {
      const auto end = buffer_.find('\n');
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buffer_.size() > kMaxReplyLine) throw SessionError(stage_ + ": reply line too long");
      const auto left = waitBound(limit);
      if (left <= Clock::duration::zero()) {
        throw SessionError(stage_ + ": no reply within " + std::to_string(options_.timeout.count()) + " ms");
      }
      if (!socket_.poll(toTimespan(std::min<Clock::duration>(left, kSlice)),
                        Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR)) {
        continue;
      }
      std::array<char, 4096> chunk{};
      const int got = socket_.receiveBytes(chunk.data(), static_cast<int>(chunk.size()));
      if (got <= 0) throw SessionError(stage_ + ": connection closed by relay");
      buffer_.append(chunk.data(), static_cast<std::size_t>(got));
    }
  }

  const NotifierOptions& options_;
  std::function<Clock::time_point()> hardDeadline_;
  Poco::Net::StreamSocket socket_;
  std::string buffer_;  // received, not yet consumed; bounded by kMaxReplyLine
  std::string stage_;   // what we were doing, for the detail of an error
};

std::chrono::milliseconds retryDelayFor(const NotifierOptions& options, unsigned attempts) {
  auto delay = options.retryDelay;
  for (unsigned i = 1; i < attempts && delay < kMaxRetryDelay; ++i) delay *= 2;
  return std::min(delay, kMaxRetryDelay);
}

std::string describe(const Result& r) {
  return "kind=" + r.kind + " rcpt=" + r.recipient + " outcome=" + std::string(outcomeName(r.outcome)) +
         " attempts=" + std::to_string(r.attempts) + " detail=\"" + r.detail + "\"";
}

}  // namespace

std::string_view outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::Sent: return "sent";
    case Outcome::Failed: return "failed";
    case Outcome::RateLimited: return "rate-limited";
    case Outcome::QueueFull: return "queue-full";
  }
  return "unknown";
}

bool isNotifiableSender(std::string_view address) {
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
    address = address.substr(1, address.size() - 2);
  }
  if (address.empty() || address.size() > kMaxAddress) return false;
  if (std::any_of(address.begin(), address.end(), isSpecialOrControl)) return false;
  // Quoted local parts (the only place a second '@' may appear) were refused above.
  const auto at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size() || address.rfind('@') != at) {
    return false;
  }
  const auto local = address.substr(0, at);
  const auto domain = address.substr(at + 1);
  if (local.size() > 64) return false;
  if (domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos) {
    return false;
  }
  // Bounces of bounces loop between daemons; postmaster is a real mailbox and stays.
  constexpr std::string_view kDaemon = "mailer-daemon";
  return !std::equal(local.begin(), local.end(), kDaemon.begin(), kDaemon.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

Notifier::Notifier(NotifierOptions options, ResultHandler onResult)
    : options_(std::move(options)), onResult_(std::move(onResult)), lastPrune_(Clock::now()) {
  if (options_.maxAttempts == 0) throw std::invalid_argument("notify: maxAttempts must be at least 1");
  if (options_.timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("notify: timeout must be positive");
  }
  worker_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    stopDeadline_ = Clock::now() + options_.timeout;
  }
  wake_.notify_all();
  worker_.join();
}

bool Notifier::enqueue(Mail mail) {
  const auto now = Clock::now();
  const std::lock_guard lock(mutex_);
  auto refuse = [&](Outcome outcome, std::string detail) {
    switch (outcome) {
      case Outcome::QueueFull: ++stats_.queueFull; break;
      case Outcome::RateLimited: ++stats_.rateLimited; break;
      case Outcome::Sent:
      case Outcome::Failed: ++stats_.failed; break;
    }
    report(Result{mail.kind, mail.recipient, mail.rateKey, outcome, 0, std::move(detail), mail.reference, mail.origin});
    return false;
  };
  if (stopping_) return refuse(Outcome::Failed, "shutdown");
  if (mail.recipient.empty() || !isSafeEnvelopeAddress(mail.recipient)) {
    return refuse(Outcome::Failed, "invalid recipient address");
  }
  if (!isSafeEnvelopeAddress(mail.envelopeFrom)) return refuse(Outcome::Failed, "invalid envelope sender");
  if (mail.data.size() > kMaxDataBytes) return refuse(Outcome::Failed, "message too large");
  // Queue space first, so a refused mail does not use up its key's allowance.
  if (queue_.size() >= options_.maxQueue) return refuse(Outcome::QueueFull, "queue full");
  if (!admitRate(mail.rateKey, now)) return refuse(Outcome::RateLimited, "rate limit for key reached");
  queue_.emplace(now, Entry{std::move(mail), 0});
  wake_.notify_one();
  return true;
}

Notifier::Stats Notifier::stats() const {
  const std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.queued = queue_.size();
  return s;
}

// A fixed window per key: simple, bounded, and at most 2x the rate across a boundary.
bool Notifier::admitRate(const std::string& key, Clock::time_point now) {
  if (options_.ratePerKey == 0) return true;
  if (now - lastPrune_ >= options_.rateWindow) pruneRates(now);
  auto it = rates_.find(key);
  if (it == rates_.end()) {
    if (rates_.size() >= kMaxRateKeys) pruneRates(now);
    // Still full: a flood of distinct senders; refusing is the safe side for notices.
    if (rates_.size() >= kMaxRateKeys) return false;
    it = rates_.emplace(key, RateWindow{now, 0}).first;
  } else if (now - it->second.start >= options_.rateWindow) {
    it->second = RateWindow{now, 0};
  }
  if (it->second.count >= options_.ratePerKey) return false;
  ++it->second.count;
  return true;
}

void Notifier::pruneRates(Clock::time_point now) {
  std::erase_if(rates_, [&](const auto& kv) { return now - kv.second.start >= options_.rateWindow; });
  lastPrune_ = now;
}

void Notifier::report(Result result) {
  if (reports_.size() >= kMaxPendingReports) {
    // Stats already counted it; only the per-mail callback is lost.
    notifyLog().warning("notify report dropped, backlog full: " + describe(result));
    return;
  }
  reports_.push_back(std::move(result));
  wake_.notify_one();
}

void Notifier::deliverReports(std::unique_lock<std::mutex>& lock) {
  while (!reports_.empty()) {
    Result result = std::move(reports_.front());
    reports_.pop_front();
    lock.unlock();
    auto& log = notifyLog();
    if (result.outcome == Outcome::Sent) {
      log.information("notify " + describe(result));
    } else {
      log.warning("notify " + describe(result));
    }
    try {
      if (onResult_) onResult_(result);
    } catch (const std::exception& e) {
      log.error(std::string("notify result handler threw: ") + e.what());
    } catch (...) {
      log.error("notify result handler threw");
    }
    lock.lock();
  }
}

void Notifier::attempt(Entry entry, std::unique_lock<std::mutex>& lock) {
  ++entry.attempts;
  lock.unlock();
  SmtpSession session(options_, [this] {
    const std::lock_guard guard(mutex_);
    return stopping_ ? stopDeadline_ : Clock::time_point::max();
  });
  const AttemptResult got = session.deliver(entry.mail);
  lock.lock();

  const Mail& m = entry.mail;
  auto finish = [&](Outcome outcome, std::string detail) {
    ++(outcome == Outcome::Sent ? stats_.sent : stats_.failed);
    report(Result{m.kind, m.recipient, m.rateKey, outcome, entry.attempts, std::move(detail), m.reference, m.origin});
  };
  switch (got.verdict) {
    case Verdict::Sent: finish(Outcome::Sent, got.detail); return;
    case Verdict::Permanent: finish(Outcome::Failed, got.detail); return;
    case Verdict::Temporary: break;
  }
  if (stopping_) return finish(Outcome::Failed, "shutdown; last: " + got.detail);
  if (entry.attempts >= options_.maxAttempts) return finish(Outcome::Failed, got.detail);
  const auto delay = retryDelayFor(options_, entry.attempts);
  notifyLog().notice("notify retry kind=" + m.kind + " rcpt=" + m.recipient + " attempts=" +
                     std::to_string(entry.attempts) + " in_ms=" + std::to_string(delay.count()) +
                     " detail=\"" + got.detail + "\"");
  queue_.emplace(Clock::now() + delay, std::move(entry));
}

void Notifier::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    deliverReports(lock);
    if (stopping_) break;
    const auto now = Clock::now();
    if (!queue_.empty() && queue_.begin()->first <= now) {
      auto node = queue_.extract(queue_.begin());
      attempt(std::move(node.mapped()), lock);
      continue;
    }
    const auto until = queue_.empty() ? now + kIdleWait : std::min(queue_.begin()->first, now + kIdleWait);
    wake_.wait_until(lock, until, [this] {
      return stopping_ || !reports_.empty() || (!queue_.empty() && queue_.begin()->first <= Clock::now());
    });
  }
  for (auto& [due, entry] : queue_) {
    ++stats_.failed;
    report(Result{entry.mail.kind, entry.mail.recipient, entry.mail.rateKey, Outcome::Failed, entry.attempts,
                  "shutdown", entry.mail.reference, entry.mail.origin});
  }
  queue_.clear();
  deliverReports(lock);
}

}  // namespace imapav::notify
