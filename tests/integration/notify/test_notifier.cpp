// The notifier against a real SMTP peer: aiosmtpd (smtp_sink.py) on a free loopback port,
// plus a listener that never answers and a port nobody listens on for the failure cases.

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "icap-server/notify/notifier.hpp"
#include "tests/support/process.hpp"

namespace imapav::notify {

// For Boost.Test messages; found by ADL, so not in the unnamed namespace.
std::ostream& operator<<(std::ostream& out, Outcome outcome) { return out << outcomeName(outcome); }

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kSinkScript = std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/notify/smtp_sink.py";
// Debian's python3-aiosmtpd is installed for the system interpreter only.
const std::string kPython = "/usr/bin/python3";

// The aiosmtpd sink with its own directory and port; stopped by the destructor.
class SmtpSink {
 public:
  explicit SmtpSink(const std::vector<std::string>& extraArgs = {}) : port_(test::freePort()) {
    fs::create_directory(dir_.file("mail"));
    std::vector<std::string> argv{kPython, kSinkScript, "--port", std::to_string(port_), "--dir", mailDir()};
    argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
    process_ = std::make_unique<test::ChildProcess>(argv, dir_.file("sink.log"));
    if (!test::waitForPort(port_, 15s)) {
      BOOST_FAIL("smtp_sink did not start; log:\n" + test::readFile(dir_.file("sink.log")));
    }
  }
  std::uint16_t port() const { return port_; }
  std::string mailDir() const { return dir_.file("mail"); }
  std::string log() const { return test::readFile(dir_.file("sink.log")); }

  // Number of stored messages (their envelope file is written last).
  std::size_t stored() const {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(mailDir())) {
      if (e.path().extension() == ".envelope") ++n;
    }
    return n;
  }
  std::string envelope(int n) const { return test::readFile(base(n) + ".envelope"); }
  std::string data(int n) const { return test::readFile(base(n) + ".eml"); }

 private:
  std::string base(int n) const {
    std::string num = std::to_string(n);
    return mailDir() + "/msg-" + std::string(4 - num.size(), '0') + num;
  }
  test::TempDir dir_;
  std::uint16_t port_;
  std::unique_ptr<test::ChildProcess> process_;
};

// A relay that accepts connections (the kernel completes them) and never says a word.
class SilentRelay {
 public:
  SilentRelay() : socket_(Poco::Net::SocketAddress("127.0.0.1", 0), 64) {}
  std::uint16_t port() const { return socket_.address().port(); }

 private:
  Poco::Net::ServerSocket socket_;
};

// Collects onResult calls from the notifier's thread.
class Results {
 public:
  Notifier::ResultHandler handler() {
    return [this](const Result& r) {
      const std::lock_guard lock(mutex_);
      results_.push_back(r);
      changed_.notify_all();
    };
  }
  // All results once there are at least n, or what arrived before the timeout.
  std::vector<Result> waitFor(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return results_.size() >= n; });
    return results_;
  }
  std::vector<Result> snapshot() {
    const std::lock_guard lock(mutex_);
    return results_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Result> results_;
};

NotifierOptions optionsFor(std::uint16_t port) {
  NotifierOptions o;
  o.relayPort = port;
  o.timeout = 2000ms;
  o.retryDelay = 100ms;
  return o;
}

Mail mailTo(std::string recipient, std::string rateKey = "origin@example.org") {
  Mail m;
  m.recipient = std::move(recipient);
  m.kind = "sender-virus";
  m.rateKey = std::move(rateKey);
  m.data =
      "From: imapav <postmaster@imapav.test>\r\n"
      "To: " + m.recipient + "\r\n"
      "Subject: virus found\r\n"
      "Auto-Submitted: auto-replied\r\n"
      "\r\n"
      "Your message was not delivered.\r\n";
  return m;
}

bool containsNoCase(std::string haystack, std::string needle) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  return lower(std::move(haystack)).find(lower(std::move(needle))) != std::string::npos;
}

bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto limit = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= limit) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(notifier)

BOOST_AUTO_TEST_CASE(delivers_with_null_reverse_path_and_dot_stuffing) {
  SmtpSink sink;
  Results results;
  Mail mail = mailTo("alice@example.com");
  // A lone "." would end DATA early; ".x" and "..y" must come out unchanged.
  mail.data += ".\r\n.hidden line\r\n..two dots\r\n.\r\nlast line\r\n";
  const std::string sentData = mail.data;
  {
    Notifier notifier(optionsFor(sink.port()), results.handler());
    BOOST_TEST(notifier.enqueue(mail));
    const auto got = results.waitFor(1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].outcome == Outcome::Sent, got[0].detail);
    BOOST_TEST(got[0].attempts == 1u);
    BOOST_TEST(got[0].kind == "sender-virus");
    BOOST_TEST(got[0].recipient == "alice@example.com");
    BOOST_TEST(got[0].rateKey == "origin@example.org");
    BOOST_TEST(got[0].detail.starts_with("250"), got[0].detail);
    BOOST_TEST(notifier.stats().sent == 1u);
  }
  BOOST_TEST_REQUIRE(sink.stored() == 1u, sink.log());
  BOOST_TEST(sink.envelope(1) == "MAIL FROM:<>\nRCPT TO:<alice@example.com>\n");
  BOOST_TEST(sink.data(1) == sentData);
}

BOOST_AUTO_TEST_CASE(envelope_sender_and_line_ends_normalised) {
  SmtpSink sink;
  Results results;
  Mail mail = mailTo("bob@example.com");
  mail.envelopeFrom = "bounces@imapav.test";
  mail.data = "Subject: bare\n\n.starts with dot\nno final newline";
  {
    Notifier notifier(optionsFor(sink.port()), results.handler());
    BOOST_TEST(notifier.enqueue(mail));
    const auto got = results.waitFor(1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].outcome == Outcome::Sent, got[0].detail);
  }
  BOOST_TEST_REQUIRE(sink.stored() == 1u, sink.log());
  BOOST_TEST(sink.envelope(1) == "MAIL FROM:<bounces@imapav.test>\nRCPT TO:<bob@example.com>\n");
  BOOST_TEST(sink.data(1) == "Subject: bare\r\n\r\n.starts with dot\r\nno final newline\r\n");
}

BOOST_AUTO_TEST_CASE(enqueue_never_waits_for_the_relay) {
  SilentRelay relay;
  Results results;
  auto options = optionsFor(relay.port());
  options.timeout = 300ms;
  Notifier notifier(options, results.handler());
  const auto start = Clock::now();
  for (int i = 0; i < 50; ++i) BOOST_TEST(notifier.enqueue(mailTo("user" + std::to_string(i) + "@example.com",
                                                                   "key" + std::to_string(i))));
  const auto elapsed = Clock::now() - start;
  BOOST_TEST(elapsed < 100ms, std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  BOOST_TEST(notifier.stats().queued >= 49u);
}

BOOST_AUTO_TEST_CASE(temporary_failures_are_retried_with_backoff) {
  SmtpSink sink({"--fail-first", "2"});
  Results results;
  Notifier notifier(optionsFor(sink.port()), results.handler());
  const auto start = Clock::now();
  BOOST_TEST(notifier.enqueue(mailTo("carol@example.com")));
  const auto got = results.waitFor(1);
  const auto elapsed = Clock::now() - start;
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].outcome == Outcome::Sent, got[0].detail);
  BOOST_TEST(got[0].attempts == 3u);
  // Back-off: 100 ms, then 200 ms.
  BOOST_TEST(elapsed >= 290ms);
  BOOST_TEST(sink.stored() == 1u);
  BOOST_TEST(notifier.stats().sent == 1u);
  BOOST_TEST(notifier.stats().failed == 0u);
}

BOOST_AUTO_TEST_CASE(retry_does_not_hold_up_other_mail) {
  SmtpSink sink({"--fail-first", "1"});
  Results results;
  auto options = optionsFor(sink.port());
  options.retryDelay = 3000ms;
  Notifier notifier(options, results.handler());
  BOOST_TEST(notifier.enqueue(mailTo("first@example.com", "a")));
  BOOST_TEST(notifier.enqueue(mailTo("second@example.com", "b")));
  // The second goes through while the first waits for its retry.
  const auto got = results.waitFor(1, 2000ms);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].recipient == "second@example.com");
  BOOST_TEST(got[0].outcome == Outcome::Sent);
  BOOST_TEST(notifier.stats().queued == 1u);
}

BOOST_AUTO_TEST_CASE(permanent_failure_is_not_retried) {
  SmtpSink sink({"--reject", "dave@example.com"});
  Results results;
  Notifier notifier(optionsFor(sink.port()), results.handler());
  BOOST_TEST(notifier.enqueue(mailTo("dave@example.com")));
  const auto got = results.waitFor(1);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].outcome == Outcome::Failed);
  BOOST_TEST(got[0].attempts == 1u);
  BOOST_TEST(got[0].detail.find("550") != std::string::npos, got[0].detail);
  BOOST_TEST(got[0].detail.find("RCPT TO") != std::string::npos, got[0].detail);
  BOOST_TEST(sink.stored() == 0u);
  BOOST_TEST(notifier.stats().failed == 1u);
}

BOOST_AUTO_TEST_CASE(relay_down_fails_after_max_attempts) {
  const auto port = test::freePort();  // nobody listens here
  Results results;
  auto options = optionsFor(port);
  options.maxAttempts = 3;
  options.retryDelay = 50ms;
  Notifier notifier(options, results.handler());
  BOOST_TEST(notifier.enqueue(mailTo("erin@example.com")));
  const auto got = results.waitFor(1);
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].outcome == Outcome::Failed);
  BOOST_TEST(got[0].attempts == 3u);
  BOOST_TEST(containsNoCase(got[0].detail, "refused"), got[0].detail);
  BOOST_TEST(got[0].detail.find("connect") != std::string::npos, got[0].detail);
}

BOOST_AUTO_TEST_CASE(silent_relay_times_out) {
  SilentRelay relay;
  Results results;
  auto options = optionsFor(relay.port());
  options.timeout = 300ms;
  options.maxAttempts = 1;
  Notifier notifier(options, results.handler());
  const auto start = Clock::now();
  BOOST_TEST(notifier.enqueue(mailTo("frank@example.com")));
  const auto got = results.waitFor(1, 5000ms);
  const auto elapsed = Clock::now() - start;
  BOOST_TEST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].outcome == Outcome::Failed);
  BOOST_TEST(got[0].detail.find("greeting") != std::string::npos, got[0].detail);
  BOOST_TEST(elapsed >= 290ms);
  BOOST_TEST(elapsed < 2000ms);
}

BOOST_AUTO_TEST_CASE(rate_limit_per_key) {
  SmtpSink sink;
  Results results;
  auto options = optionsFor(sink.port());
  options.ratePerKey = 2;
  Notifier notifier(options, results.handler());
  BOOST_TEST(notifier.enqueue(mailTo("g1@example.com", "spammer@example.net")));
  BOOST_TEST(notifier.enqueue(mailTo("g2@example.com", "spammer@example.net")));
  BOOST_TEST(!notifier.enqueue(mailTo("g3@example.com", "spammer@example.net")));
  BOOST_TEST(notifier.enqueue(mailTo("h1@example.com", "other@example.net")));
  const auto got = results.waitFor(4);
  BOOST_TEST_REQUIRE(got.size() == 4u);
  std::size_t sent = 0;
  for (const auto& r : got) {
    if (r.recipient == "g3@example.com") {
      BOOST_TEST(r.outcome == Outcome::RateLimited);
      BOOST_TEST(r.attempts == 0u);
      BOOST_TEST(r.rateKey == "spammer@example.net");
    } else {
      BOOST_TEST(r.outcome == Outcome::Sent, r.recipient << ": " << r.detail);
      ++sent;
    }
  }
  BOOST_TEST(sent == 3u);
  const auto s = notifier.stats();
  BOOST_TEST(s.rateLimited == 1u);
  BOOST_TEST(s.sent == 3u);
  BOOST_TEST(sink.stored() == 3u);
}

BOOST_AUTO_TEST_CASE(queue_full_is_refused) {
  SilentRelay relay;
  Results results;
  auto options = optionsFor(relay.port());
  options.timeout = 500ms;
  options.maxQueue = 2;
  options.ratePerKey = 0;
  Notifier notifier(options, results.handler());
  BOOST_TEST(notifier.enqueue(mailTo("i0@example.com")));
  // The first one is taken off the queue and hangs on the silent relay.
  BOOST_TEST_REQUIRE(waitUntil([&] { return notifier.stats().queued == 0; }, 2000ms));
  BOOST_TEST(notifier.enqueue(mailTo("i1@example.com")));
  BOOST_TEST(notifier.enqueue(mailTo("i2@example.com")));
  BOOST_TEST(!notifier.enqueue(mailTo("i3@example.com")));
  const auto s = notifier.stats();
  BOOST_TEST(s.queueFull == 1u);
  BOOST_TEST(s.queued == 2u);
  const auto got = results.waitFor(1, 3000ms);
  BOOST_TEST_REQUIRE(!got.empty());
  BOOST_TEST(got[0].recipient == "i3@example.com");
  BOOST_TEST(got[0].outcome == Outcome::QueueFull);
}

BOOST_AUTO_TEST_CASE(destructor_is_prompt_and_reports_queued_mail) {
  SilentRelay relay;
  Results results;
  auto options = optionsFor(relay.port());
  options.timeout = 1000ms;
  auto notifier = std::make_unique<Notifier>(options, results.handler());
  BOOST_TEST(notifier->enqueue(mailTo("j1@example.com")));
  BOOST_TEST(notifier->enqueue(mailTo("j2@example.com")));
  BOOST_TEST_REQUIRE(waitUntil([&] { return notifier->stats().queued == 1; }, 2000ms));
  const auto start = Clock::now();
  notifier.reset();
  const auto elapsed = Clock::now() - start;
  BOOST_TEST(elapsed < 2 * options.timeout,
             std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  const auto got = results.snapshot();
  BOOST_TEST_REQUIRE(got.size() == 2u);
  for (const auto& r : got) {
    BOOST_TEST(r.outcome == Outcome::Failed);
    BOOST_TEST(r.detail.starts_with("shutdown"), r.detail);
  }
  // The queued one never reached the relay.
  const auto queued = std::find_if(got.begin(), got.end(), [](const Result& r) { return r.recipient == "j2@example.com"; });
  BOOST_TEST_REQUIRE((queued != got.end()));
  BOOST_TEST(queued->detail == "shutdown");
  BOOST_TEST(queued->attempts == 0u);
}

BOOST_AUTO_TEST_CASE(unsafe_envelope_addresses_are_refused) {
  Results results;
  Notifier notifier(optionsFor(test::freePort()), results.handler());
  BOOST_TEST(!notifier.enqueue(mailTo("evil@example.com>\r\nRCPT TO:<x@example.com")));
  BOOST_TEST(!notifier.enqueue(mailTo("")));
  const auto got = results.waitFor(2);
  BOOST_TEST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].outcome == Outcome::Failed);
  BOOST_TEST(got[0].attempts == 0u);
  BOOST_TEST(notifier.stats().failed == 2u);
}

const std::vector<std::string> kAddresses{
    "alice@example.com",   "<alice@example.com>", "postmaster@example.com", "a.b+tag@sub.example.org",
    "",                    "<>",                  "MAILER-DAEMON@example.com", "mailer-daemon@example.com",
    "noat.example.com",    "@example.com",        "alice@",                  "al ice@example.com",
    "alice@exa\tmple.com", "alice@example.com\r\n", "a@b@c.com",             "alice@.example.com",
    "alice@example..com",  "<alice@example.com",  "alice<x>@example.com",     std::string(250, 'x') + "@a.bc",
};
const std::vector<bool> kNotifiable{
    true,  true,  true,  true,   //
    false, false, false, false,  //
    false, false, false, false,  //
    false, false, false, false,  //
    false, false, false, false,  //
};

BOOST_DATA_TEST_CASE(is_notifiable_sender, boost::unit_test::data::make(kAddresses) ^
                                               boost::unit_test::data::make(kNotifiable),
                     address, expected) {
  BOOST_TEST(isNotifiableSender(address) == expected);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace imapav::notify
