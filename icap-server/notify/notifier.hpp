#pragma once
// Notification mails (e.g. to the sender of an infected message) sent through an SMTP relay
// from a queue of our own, so a scan never waits for mail: enqueue() only takes a lock,
// one thread delivers, retries temporary failures later and reports every final outcome.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace imapav::notify {

// One notification, fully built by the caller.
struct Mail {
  std::string envelopeFrom;  // "" = null reverse-path <>, the default for notifications (RFC 3834)
  std::string recipient;     // one address, e.g. "alice@example.com"
  std::string data;          // the whole RFC 5322 message (CRLF line ends), headers included
  std::string kind;          // e.g. "sender-virus", "sender-error-drop": for logs and results
  std::string rateKey;       // rate limiting key (e.g. the original sender address)
  std::string reference;     // opaque, handed back in Result (e.g. the Message-ID it is about)
  std::string origin;        // opaque, handed back in Result (e.g. the gateway's address)
};

struct NotifierOptions {
  std::string relayHost = "127.0.0.1";
  std::uint16_t relayPort = 25;
  std::chrono::milliseconds timeout{10000};     // connect, each SMTP reply, each send
  std::string heloName = "imapav";
  unsigned maxAttempts = 4;                     // then it counts as failed
  std::chrono::milliseconds retryDelay{30000};  // first retry; doubles each time
  std::size_t maxQueue = 1000;                  // waiting mails (incl. retries); more is refused
  unsigned ratePerKey = 10;                     // per rateKey and window; 0 = unlimited
  std::chrono::seconds rateWindow{3600};
};

enum class Outcome {
  Sent,         // the relay accepted it (250 after DATA)
  Failed,       // permanent reply, attempts used up, invalid mail, or shutdown
  RateLimited,  // refused by enqueue: too many for this rateKey in the window
  QueueFull,    // refused by enqueue: maxQueue mails already waiting
};
std::string_view outcomeName(Outcome outcome);

struct Result {
  std::string kind;
  std::string recipient;
  std::string rateKey;
  Outcome outcome = Outcome::Failed;
  unsigned attempts = 0;  // SMTP sessions tried; 0 for refusals
  std::string detail;     // last SMTP reply or error, or why it was refused
  std::string reference;  // Mail::reference
  std::string origin;     // Mail::origin
};

// False for addresses a notification must not go to: empty, "<>", MAILER-DAEMON, and
// malformed ones (no '@' with text on both sides, spaces, control characters, SMTP
// specials, longer than 254). One pair of enclosing angle brackets is allowed.
bool isNotifiableSender(std::string_view address);

class Notifier {
 public:
  using ResultHandler = std::function<void(const Result&)>;

  // onResult is called on the notifier's thread, once for every mail's final outcome,
  // refusals by enqueue() included. It should not block for long: it delays delivery.
  Notifier(NotifierOptions options, ResultHandler onResult);
  // Waits at most about one SMTP timeout for the mail being sent; mails still queued are
  // reported as Failed "shutdown".
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Never blocks on the network. False when refused (queue full, rate limited, invalid
  // envelope address or oversized data); the refusal is reported through onResult too.
  bool enqueue(Mail mail);

  struct Stats {
    std::uint64_t sent = 0;
    std::uint64_t failed = 0;
    std::uint64_t rateLimited = 0;
    std::uint64_t queueFull = 0;
    std::size_t queued = 0;  // waiting now, first tries and retries
  };
  Stats stats() const;

 private:
  struct Entry {
    Mail mail;
    unsigned attempts = 0;
  };
  struct RateWindow {
    std::chrono::steady_clock::time_point start;
    unsigned count = 0;
  };

  void run();
  bool admitRate(const std::string& key, std::chrono::steady_clock::time_point now);
  void pruneRates(std::chrono::steady_clock::time_point now);
  void report(Result result);  // queue a report for the worker; needs mutex_
  void deliverReports(std::unique_lock<std::mutex>& lock);
  void attempt(Entry entry, std::unique_lock<std::mutex>& lock);

  const NotifierOptions options_;
  const ResultHandler onResult_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  // Set when stopping_ becomes true; bounds the session in flight.
  std::chrono::steady_clock::time_point stopDeadline_;
  // Due time -> mail; equal times keep their order, so first tries stay FIFO.
  std::multimap<std::chrono::steady_clock::time_point, Entry> queue_;
  std::deque<Result> reports_;  // bounded by kMaxPendingReports
  std::unordered_map<std::string, RateWindow> rates_;
  std::chrono::steady_clock::time_point lastPrune_;
  Stats stats_;

  std::thread worker_;  // last: starts after everything above exists
};

}  // namespace imapav::notify
