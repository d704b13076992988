// imapav-log-gen: writes a realistic scan log (scan_events) of N rows through EventStore, so
// the file has the real schema, indexes and migrations. For the query benchmark
// (tools/bench-log.sh) and for trying imapav-log on a production-sized log.
//
// The same seed and --end-time give the same rows: the generator has its own PRNG and
// distributions (std:: distributions differ between standard libraries).

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <sqlite3.h>

#include "db/event_store.hpp"
#include "db/scan_event.hpp"

namespace {

using imapav::db::ScanEvent;

constexpr std::int64_t kUsPerSecond = 1000000;
constexpr std::int64_t kSecondsPerHour = 3600;
constexpr std::int64_t kSecondsPerDay = 86400;
constexpr std::size_t kUsers = 5000;
constexpr std::size_t kSenders = 50000;
constexpr std::size_t kDomains = 2000;
constexpr std::size_t kThreatNames = 200;
constexpr std::string_view kLocalDomain = "example.org";
// SQLite's default page cache is 2 MB. Four of the indexes (user, sender, sha256,
// message_id) take rows in random key order, so past ~100k rows nearly every insert reads
// index pages back from the OS and the rate falls below 15k rows/s. The generator's own
// connection gets a larger cache instead (see raiseCacheSize); the file is not changed.
constexpr const char* kCachePragma = "PRAGMA cache_size = -524288";  // KiB: 512 MB

// --- randomness -------------------------------------------------------------------------

std::uint64_t splitMix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256**: fast, and the same sequence on every platform.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) s = splitMix(seed);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * static_cast<double>(n)); }
  std::int64_t between(std::int64_t lo, std::int64_t hi) {  // [lo, hi]
    return lo + static_cast<std::int64_t>(below(static_cast<std::size_t>(hi - lo + 1)));
  }
  bool chance(double p) { return uniform() < p; }
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double logNormal(double median, double sigma) { return median * std::exp(sigma * normal()); }
  double exponential(double mean) { return -mean * std::log(1.0 - uniform()); }
  template <typename T, std::size_t N>
  const T& pick(const std::array<T, N>& items) {
    return items[below(N)];
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

// Picks index i with probability weights[i] / sum.
class Weighted {
 public:
  explicit Weighted(const std::vector<double>& weights) {
    double sum = 0;
    for (const double w : weights) cdf_.push_back(sum += w);
  }
  std::size_t sample(Rng& rng) const {
    const double u = rng.uniform() * cdf_.back();
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return std::min(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

// Rank r (0-based) has weight 1 / (r + 1)^s: a few very common, a long tail.
Weighted zipf(std::size_t n, double s) {
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), s);
  return Weighted(w);
}

std::string hex(Rng& rng, std::size_t digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(digits, '0');
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) bits = rng.next();
    out[i] = kDigits[bits & 15];
    bits >>= 4;
  }
  return out;
}

// --- vocabulary -------------------------------------------------------------------------

constexpr std::array<std::string_view, 48> kFirstNames{
    "anna",   "ben",    "clara", "david", "emma",    "felix",  "greta", "hans",  "ines",   "jonas",
    "karin",  "lars",   "maria", "nina",  "oliver",  "paula",  "quinn", "rosa",  "stefan", "tina",
    "ulrich", "vera",   "walter", "xenia", "yusuf",  "zoe",    "alex",  "bruno", "carla",  "dirk",
    "elena",  "frank",  "gina",  "henrik", "irene",  "julia",  "kevin", "lena",  "marco",  "nora",
    "oscar",  "petra",  "ralf",  "sara",  "thomas",  "ute",    "viktor", "wiebke"};
constexpr std::array<std::string_view, 48> kLastNames{
    "schmidt", "mueller", "meyer",  "schulz",  "wagner",  "becker",  "hoffmann", "koch",
    "richter", "klein",   "wolf",   "neumann", "schwarz", "braun",   "zimmer",   "krueger",
    "hartmann", "lange",  "werner", "krause",  "lehmann", "koehler", "herrmann", "walter",
    "smith",   "jones",   "brown",  "taylor",  "wilson",  "evans",   "thomas",   "roberts",
    "martin",  "bernard", "dubois", "moreau",  "laurent", "rossi",   "russo",    "ferrari",
    "garcia",  "lopez",   "novak",  "kowalski", "jansen", "devries", "nielsen",  "berg"};
constexpr std::array<std::string_view, 10> kRoles{
    "info", "noreply", "newsletter", "billing", "support", "sales", "service", "news", "jobs", "accounts"};
constexpr std::array<std::string_view, 60> kDomainWords{
    "acme",    "globex",  "initech", "umbrella", "stark",   "wayne",   "tyrell",  "cyberdyne", "hooli",
    "vandelay", "nordic", "alpine",  "harbor",   "summit",  "pioneer", "vertex",  "quantum",   "apex",
    "blue",    "green",   "red",     "silver",   "golden",  "bright",  "smart",   "rapid",     "prime",
    "metro",   "urban",   "coastal", "river",    "forest",  "stone",   "iron",    "solar",     "polar",
    "logistics", "bank",  "energy",  "media",    "travel",  "health",  "foods",   "systems",   "labs",
    "consult", "design",  "print",   "shop",     "market",  "invest",  "legal",   "insure",    "motors",
    "parcel",  "tech",    "cloud",   "data",     "net",     "group"};
constexpr std::array<std::string_view, 12> kTlds{"com", "de", "net", "org", "co.uk", "fr",
                                                 "nl",  "it", "io",  "eu",  "ch",    "at"};
// The large free-mail providers send most external mail.
constexpr std::array<std::string_view, 8> kBigDomains{"gmail.com",  "outlook.com", "gmx.de",   "web.de",
                                                      "yahoo.com",  "icloud.com",  "t-online.de", "hotmail.com"};
constexpr std::array<std::string_view, 24> kThreatFamilies{
    "Win.Trojan.Agent",       "Win.Trojan.Generic",    "Win.Trojan.Remcos",     "Win.Trojan.AgentTesla",
    "Win.Trojan.Formbook",    "Win.Trojan.Lokibot",    "Win.Malware.Razy",      "Win.Ransomware.Lockbit",
    "Doc.Dropper.Emotet",     "Doc.Downloader.Qakbot", "Doc.Malware.Valyria",   "Xls.Downloader.Dridex",
    "Xls.Dropper.Agent",      "Html.Phishing.Bank",    "Html.Phishing.Office365", "Email.Phishing.Generic",
    "Pdf.Exploit.CVE_2023_26369", "Pdf.Phishing.Link", "Js.Downloader.Nemucod", "Vbs.Downloader.Agent",
    "Archive.Trojan.Agent",   "Img.Exploit.Follina",   "Lnk.Dropper.IcedID",    "Iso.Dropper.Bumblebee"};
constexpr std::array<std::string_view, 64> kWords{
    "meeting",  "report",   "invoice", "project", "update",   "budget",   "review",  "schedule",
    "contract", "proposal", "agenda",  "minutes", "quarterly", "planning", "team",   "customer",
    "order",    "delivery", "request", "approval", "draft",   "final",    "summary", "notes",
    "training", "workshop", "event",   "offer",   "price",    "list",     "account", "access",
    "password", "reset",    "travel",  "expenses", "holiday", "office",   "new",     "urgent",
    "question", "feedback", "results", "data",    "server",   "backup",   "release", "version",
    "client",   "support",  "ticket",  "issue",   "payment",  "reminder", "weekly",  "monthly",
    "status",   "call",     "lunch",   "friday",  "monday",   "signed",   "copy",    "documents"};
constexpr std::array<std::string_view, 10> kLureSubjects{
    "Invoice", "Payment confirmation", "Your parcel could not be delivered", "Scanned document",
    "Urgent: verify your account", "Purchase order", "Remittance advice", "Overdue payment",
    "Shared file: contract", "Voice message received"};

struct MailboxSpec {
  std::string_view name;
  double weight;
};
constexpr std::array<MailboxSpec, 20> kMailboxes{{{"INBOX", 80},        {"Junk", 5},
                                                  {"Archive", 3},        {"Sent", 1.5},
                                                  {"INBOX/Projects", 1.5}, {"INBOX/Customers", 1.2},
                                                  {"Drafts", 0.5},       {"Trash", 1},
                                                  {"Archive/2025", 1},   {"Archive/2026", 1},
                                                  {"INBOX/Invoices", 0.8}, {"INBOX/Newsletters", 1},
                                                  {"INBOX/Team", 0.6},   {"INBOX/Support", 0.5},
                                                  {"Sent Items", 0.4},   {"Notes", 0.2},
                                                  {"INBOX/Travel", 0.2}, {"INBOX/HR", 0.2},
                                                  {"Lists/dev", 0.2},    {"Lists/announce", 0.2}}};

constexpr std::size_t kJunk = 1;
static_assert(kMailboxes[kJunk].name == "Junk");

struct GatewaySpec {
  std::string_view address;
  std::string_view upstream;  // the IMAP server behind it, as it appears in the URL
  double weight;
};
constexpr std::array<GatewaySpec, 8> kGateways{{{"10.0.0.3", "10.1.0.10:143", 22},
                                                {"10.0.0.4", "10.1.0.10:143", 20},
                                                {"10.0.0.5", "10.1.0.11:143", 15},
                                                {"10.0.1.3", "10.1.1.10:993", 14},
                                                {"10.0.1.4", "10.1.1.10:993", 12},
                                                {"10.0.2.10", "10.1.2.10:143", 9},
                                                {"10.0.2.11", "10.1.2.10:143", 6},
                                                {"10.0.3.7", "10.1.3.10:143", 2}}};

struct ErrorSpec {
  std::string_view errorClass;
  double weight;
  std::string_view action;  // what the default policy does with it
};
constexpr std::array<ErrorSpec, 6> kErrors{{{"too_large", 30, "pass-unscanned"},
                                            {"timeout", 12, "pass-unscanned"},
                                            {"encrypted", 28, "replace"},
                                            {"corrupt", 14, "replace"},
                                            {"archive_limit", 10, "replace"},
                                            {"overloaded", 6, "pass-unscanned"}}};
// The last gateway's profile is fail_mode = drop: every error is replaced there.
constexpr std::size_t kStrictGateway = kGateways.size() - 1;

// Hour-of-day weights (UTC stands in for local time): office hours, a lunch dip, quiet nights.
constexpr std::array<double, 24> kHourWeights{0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.50, 1.20,
                                              2.60, 3.20, 3.30, 3.10, 2.40, 2.80, 3.10, 3.00,
                                              2.70, 2.10, 1.40, 0.90, 0.70, 0.55, 0.40, 0.25};
constexpr double kWeekendFactor = 0.3;

// --- the population -----------------------------------------------------------------------

struct User {
  std::string login;
  std::string address;
  std::string clientIp;
  std::size_t gateway = 0;  // home gateway
};

class World {
 public:
  explicit World(Rng& rng)
      : userPick_(zipf(kUsers, 0.7)),
        senderPick_(zipf(kSenders, 0.9)),
        threatPick_(zipf(kThreatNames, 1.1)),
        mailboxPick_(weightsOf(kMailboxes)),
        gatewayPick_(weightsOf(kGateways)),
        errorPick_(weightsOf(kErrors)),
        uidNext_(kUsers * kMailboxes.size(), 0) {
    std::unordered_set<std::string> seen;
    while (users_.size() < kUsers) {
      std::string login = std::string(rng.pick(kFirstNames)) + "." + std::string(rng.pick(kLastNames));
      if (!seen.insert(login).second) {
        login += std::to_string(rng.between(2, 99));
        if (!seen.insert(login).second) continue;
      }
      User u;
      u.address = login + "@" + std::string(kLocalDomain);
      u.login = std::move(login);
      u.clientIp = "192.168." + std::to_string(rng.between(0, 63)) + "." + std::to_string(rng.between(2, 254));
      u.gateway = gatewayPick_.sample(rng);
      users_.push_back(std::move(u));
    }

    seen.clear();
    for (const auto d : kBigDomains) {
      domains_.emplace_back(d);
      seen.emplace(d);
    }
    while (domains_.size() < kDomains) {
      std::string d = std::string(rng.pick(kDomainWords));
      if (rng.chance(0.6)) d += (rng.chance(0.3) ? "-" : "") + std::string(rng.pick(kDomainWords));
      d += "." + std::string(rng.pick(kTlds));
      if (seen.insert(d).second) domains_.push_back(std::move(d));
    }

    // Senders: mostly people at free-mail and company domains, some role and list
    // addresses, and colleagues (local users).
    const Weighted domainPick = zipf(kDomains, 1.0);
    seen.clear();
    while (senders_.size() < kSenders) {
      std::string s;
      const double kind = rng.uniform();
      if (kind < 0.08) {
        s = users_[rng.below(kUsers)].address;
      } else {
        const std::string& domain = domains_[domainPick.sample(rng)];
        if (kind < 0.25) {
          s = std::string(rng.pick(kRoles)) + "@" + domain;
        } else if (kind < 0.6) {
          s = std::string(rng.pick(kFirstNames)) + "." + std::string(rng.pick(kLastNames)) + "@" + domain;
        } else {
          s = std::string(1, rng.pick(kFirstNames)[0]) + std::string(rng.pick(kLastNames)) +
              std::to_string(rng.between(1, 999)) + "@" + domain;
        }
      }
      if (seen.insert(s).second) senders_.push_back(std::move(s));
    }

    // ClamAV-style names; Eicar-Test-Signature ranks high (people test the gateway).
    seen.clear();
    while (threats_.size() < kThreatNames - 1) {
      std::string t = std::string(rng.pick(kThreatFamilies)) + "-" + std::to_string(rng.between(6000000, 10099999)) + "-0";
      if (seen.insert(t).second) threats_.push_back(std::move(t));
    }
    threats_.insert(threats_.begin() + 3, "Eicar-Test-Signature");
  }

  const User& user(std::size_t i) const { return users_[i]; }
  std::size_t pickUser(Rng& rng) const { return userPick_.sample(rng); }
  const std::string& pickSender(Rng& rng) const { return senders_[senderPick_.sample(rng)]; }
  const std::string& pickThreat(Rng& rng) const { return threats_[threatPick_.sample(rng)]; }
  std::size_t pickMailbox(Rng& rng) const { return mailboxPick_.sample(rng); }
  std::size_t pickGateway(Rng& rng) const { return gatewayPick_.sample(rng); }
  const ErrorSpec& pickError(Rng& rng) const { return kErrors[errorPick_.sample(rng)]; }

  // UIDs grow per mailbox from a plausible start; UIDVALIDITY is the mailbox's creation time.
  std::int64_t nextUid(std::size_t user, std::size_t mailbox, Rng& rng) {
    std::int64_t& next = uidNext_[user * kMailboxes.size() + mailbox];
    if (next == 0) next = rng.between(1, mailbox == 0 ? 40000 : 3000);
    return next++;
  }
  static std::int64_t uidValidity(std::size_t user, std::size_t mailbox) {
    std::uint64_t x = user * kMailboxes.size() + mailbox;
    return 1420070400 + static_cast<std::int64_t>(splitMix(x) % 340000000);  // 2015..2025
  }

 private:
  template <typename T, std::size_t N>
  static std::vector<double> weightsOf(const std::array<T, N>& specs) {
    std::vector<double> w;
    for (const T& s : specs) w.push_back(s.weight);
    return w;
  }

  std::vector<User> users_;
  std::vector<std::string> domains_;
  std::vector<std::string> senders_;
  std::vector<std::string> threats_;
  Weighted userPick_, senderPick_, threatPick_, mailboxPick_, gatewayPick_, errorPick_;
  std::vector<std::int64_t> uidNext_;
};

// --- messages and scans ---------------------------------------------------------------------

// One message as delivered; every local recipient who fetches it causes one scan row with
// the same Message-ID and SHA-256.
struct Message {
  std::string messageId;
  std::string sender;
  std::string recipients;
  std::string subject;
  std::string sha256;
  std::string verdict;
  std::string threats;
  const ErrorSpec* error = nullptr;
  std::int64_t size = 0;
};

// A later fetch of an already scanned message by another recipient.
struct PendingFetch {
  std::int64_t dueUs;
  std::size_t user;
  std::shared_ptr<const Message> message;
  std::int64_t firstScanUs;  // when the first recipient's fetch scanned it
  bool operator>(const PendingFetch& o) const { return dueUs > o.dueUs; }
};

class Generator {
 public:
  Generator(std::uint64_t seed, std::int64_t startUs, std::int64_t endUs)
      : rng_(seed), world_(rng_), startUs_(startUs), endUs_(endUs) {}

  // The times of all rows, sorted: a daily rhythm over clock hours, quieter weekends.
  std::vector<std::int64_t> timeline(std::size_t count) {
    std::vector<std::int64_t> bucketStart;
    std::vector<double> weights;
    const std::int64_t start = startUs_ / kUsPerSecond, end = endUs_ / kUsPerSecond;
    for (std::int64_t t = start; t < end;) {
      const std::int64_t next = std::min(end, (t / kSecondsPerHour + 1) * kSecondsPerHour);
      const std::int64_t day = t / kSecondsPerDay;
      const std::int64_t weekday = (day + 4) % 7;  // 1970-01-01 was a Thursday; 0 = Sunday
      const double factor = (weekday == 0 || weekday == 6) ? kWeekendFactor : 1.0;
      bucketStart.push_back(t);
      weights.push_back(kHourWeights[static_cast<std::size_t>((t % kSecondsPerDay) / kSecondsPerHour)] * factor *
                        static_cast<double>(next - t));
      t = next;
    }
    bucketStart.push_back(end);
    const Weighted pick(weights);
    std::vector<std::int64_t> times(count);
    for (auto& t : times) {
      const std::size_t b = pick.sample(rng_);
      t = rng_.between(bucketStart[b] * kUsPerSecond, bucketStart[b + 1] * kUsPerSecond - 1);
    }
    std::sort(times.begin(), times.end());
    return times;
  }

  // The row at time t: another recipient's fetch that is due, or a new message.
  ScanEvent next(std::int64_t timeUs) {
    if (!pending_.empty() && pending_.top().dueUs <= timeUs) {
      PendingFetch f = pending_.top();
      pending_.pop();
      return scan(*f.message, f.user, timeUs, f.firstScanUs);
    }
    auto message = std::make_shared<Message>();
    std::vector<std::size_t> fetchers;
    newMessage(*message, fetchers);
    for (std::size_t i = 1; i < fetchers.size(); ++i) {
      const auto delay = static_cast<std::int64_t>(rng_.exponential(40.0 * 60 * kUsPerSecond));
      pending_.push({timeUs + delay, fetchers[i], message, timeUs});
    }
    return scan(*message, fetchers[0], timeUs);
  }

 private:
  void newMessage(Message& m, std::vector<std::size_t>& fetchers) {
    m.sender = world_.pickSender(rng_);
    const std::string_view domain = std::string_view(m.sender).substr(m.sender.find('@') + 1);
    // Random-looking like most mailers' (so the index takes them in random order); the
    // counter keeps them unique.
    m.messageId = "<" + hex(rng_, 16) + "." + std::to_string(++messages_) + "@" + std::string(domain) + ">";

    // 1-3 recipients; the first is always local, the others local or external.
    const double r = rng_.uniform();
    const int recipients = r < 0.7 ? 1 : r < 0.9 ? 2 : 3;
    for (int i = 0; i < recipients; ++i) {
      if (i == 0 || rng_.chance(0.5)) {
        const std::size_t u = world_.pickUser(rng_);
        if (std::find(fetchers.begin(), fetchers.end(), u) != fetchers.end()) continue;
        if (i == 0 || rng_.chance(0.95)) fetchers.push_back(u);  // some never fetch it
        m.recipients += (m.recipients.empty() ? "" : ",") + world_.user(u).address;
      } else {
        m.recipients += "," + world_.pickSender(rng_);
      }
    }

    const double v = rng_.uniform();
    if (v < 0.01) {
      m.verdict = "infected";
      m.threats = world_.pickThreat(rng_);
      if (rng_.chance(0.05)) m.threats += "," + world_.pickThreat(rng_);
      m.size = clampSize(rng_.logNormal(90000, 1.0));
      m.subject = std::string(rng_.pick(kLureSubjects));
      if (rng_.chance(0.5)) m.subject += " " + std::to_string(rng_.between(10000, 999999));
    } else {
      m.subject = subject();
      if (v < 0.03) {
        m.verdict = "error";
        m.error = &world_.pickError(rng_);
        m.size = m.error->errorClass == "too_large" ? static_cast<std::int64_t>(rng_.between(10000000, 20000000))
                                                    : clampSize(rng_.logNormal(400000, 1.2));
      } else {
        m.verdict = "clean";
        m.size = clampSize(rng_.logNormal(25000, 1.5));
      }
    }
    m.sha256 = hex(rng_, 64);
  }

  // firstScanUs: set for a later recipient's fetch of a message scanned then.
  ScanEvent scan(const Message& m, std::size_t userIndex, std::int64_t timeUs,
                 std::optional<std::int64_t> firstScanUs = std::nullopt) {
    const User& u = world_.user(userIndex);
    ScanEvent e;
    e.timeUs = timeUs;
    const std::size_t gateway = rng_.chance(0.9) ? u.gateway : world_.pickGateway(rng_);
    e.gateway = std::string(kGateways[gateway].address);
    e.service = "avscan";
    e.method = "RESPMOD";
    e.clientIp = rng_.chance(0.85) ? u.clientIp
                                   : "172.16." + std::to_string(rng_.between(0, 255)) + "." +
                                         std::to_string(rng_.between(2, 254));
    e.user = u.login;
    // A third of the infected mail was filed as spam already.
    const std::size_t mailbox = m.verdict == "infected" && rng_.chance(0.3) ? kJunk : world_.pickMailbox(rng_);
    e.mailbox = std::string(kMailboxes[mailbox].name);
    e.uidValidity = World::uidValidity(userIndex, mailbox);
    e.uid = world_.nextUid(userIndex, mailbox, rng_);
    e.imapUrl = "imap://" + u.login + "@" + std::string(kGateways[gateway].upstream) + "/" + urlMailbox(e.mailbox) +
                ";UIDVALIDITY=" + std::to_string(*e.uidValidity) + "/;UID=" + std::to_string(*e.uid);
    e.messageId = m.messageId;
    e.sender = m.sender;
    e.recipients = m.recipients;
    e.subject = m.subject;
    e.size = m.size;
    e.sha256 = m.sha256;
    e.verdict = m.verdict;
    e.threats = m.threats;
    // libclamav at ~40 MB/s plus a few ms per message (temporary files, MIME parts).
    const double scanUs = (2500.0 + static_cast<double>(m.size) / 40.0) * rng_.logNormal(1.0, 0.35);
    e.scanTimeUs = static_cast<std::int64_t>(scanUs);
    if (m.verdict == "clean") {
      e.action = "pass";
    } else if (m.verdict == "infected") {
      e.action = "replace";
    } else {
      e.errorClass = std::string(m.error->errorClass);
      e.action = gateway == kStrictGateway ? "replace" : std::string(m.error->action);
      if (e.errorClass == "timeout") e.scanTimeUs = 120000000 + rng_.between(0, 400000);
      if (e.errorClass == "overloaded") e.scanTimeUs = static_cast<std::int64_t>(rng_.exponential(20000));
    }
    // One engine update during the period, a new signature version every day.
    const std::int64_t day = (timeUs - startUs_) / (kSecondsPerDay * kUsPerSecond);
    e.engineVersion = timeUs < startUs_ + (endUs_ - startUs_) * 2 / 5 ? "ClamAV 1.0.6" : "ClamAV 1.0.7";
    std::uint64_t dayKey = static_cast<std::uint64_t>(day) + 0x5eed;
    char fingerprint[17];
    std::snprintf(fingerprint, sizeof fingerprint, "%016llx", static_cast<unsigned long long>(splitMix(dayKey)));
    e.signatureVersion = std::to_string(27400 + day) + "-" + std::string(fingerprint, 12);
    // imapav-icapd's verdict cache (keyed by SHA-256 and signature version) answers a later
    // fetch while the signatures are the same day's, unless the first answer was a transient
    // error (timeout, overloaded), which it does not keep. No random draw here: a seed gives
    // the same rows as before the generator knew about the cache, apart from these two fields.
    const bool transient = m.error != nullptr && (m.error->errorClass == "timeout" || m.error->errorClass == "overloaded");
    if (firstScanUs && !transient &&
        (*firstScanUs - startUs_) / (kSecondsPerDay * kUsPerSecond) == day) {
      e.cached = true;
      e.scanTimeUs = 40;  // a lookup, no scan
    }
    return e;
  }

  std::string subject() {
    std::string s;
    const double r = rng_.uniform();
    if (r < 0.25) s = "Re: ";
    else if (r < 0.30) s = "Fwd: ";
    else if (r < 0.35) s = "[team-" + std::string(rng_.pick(kDomainWords)) + "] ";
    const std::int64_t words = rng_.between(2, 7);
    for (std::int64_t i = 0; i < words; ++i) {
      std::string w(rng_.pick(kWords));
      if (i == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      s += (i == 0 ? "" : " ") + w;
    }
    return s;
  }

  static std::int64_t clampSize(double bytes) {
    return std::clamp(static_cast<std::int64_t>(bytes), std::int64_t{2048}, std::int64_t{20000000});
  }

  static std::string urlMailbox(const std::string& name) {
    std::string out;
    for (const char c : name) out += c == ' ' ? std::string("%20") : std::string(1, c);
    return out;
  }

  Rng rng_;
  World world_;
  std::int64_t startUs_, endUs_;
  std::uint64_t messages_ = 0;
  std::priority_queue<PendingFetch, std::vector<PendingFetch>, std::greater<>> pending_;
};

// --- SQLite ----------------------------------------------------------------------------------

// Runs on every connection this process opens (EventStore keeps its handle private); a
// pragma that EventStore does not set, so nothing it chooses is overridden.
int raiseCacheSize(sqlite3* db, const char** error, const sqlite3_api_routines*) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db, kCachePragma, nullptr, nullptr, &message);
  if (rc != SQLITE_OK && error) *error = sqlite3_mprintf("%s", message ? message : "cache_size failed");
  sqlite3_free(message);
  return rc;
}

// --- command line -------------------------------------------------------------------------

struct Options {
  std::string db;
  std::size_t count = 0;
  std::int64_t days = 30;
  std::uint64_t seed = 1;
  std::optional<std::int64_t> endSeconds;  // unset: now
  // Per commit, WAL mode writes every page the batch touched and then checkpoints; with
  // four randomly keyed indexes a batch touches most of their leaf pages. 1M rows took
  // 64 s in batches of 50,000, 54 s of 100,000 and 46 s of 200,000 (peak RSS 1.1 GB: two
  // batches in memory and the page cache); 10,000 was about twice as slow as 50,000.
  std::size_t batch = 200000;
};

constexpr std::string_view kUsage =
    "usage: imapav-log-gen --db PATH --count N [--days D] [--seed S] [--end-time ISO|now] [--batch B]\n"
    "  Writes N realistic scan events into a new (or empty) imapav event database, spread over\n"
    "  the D days (default 30) before --end-time (default now; UTC, e.g. 2026-11-28 or\n"
    "  2026-11-28T10:00:00Z), B rows per transaction (default 200000). The same seed (default 1)\n"
    "  and end time give the same rows.\n";

[[noreturn]] void usageError(const std::string& message) {
  std::cerr << "imapav-log-gen: " << message << "\n" << kUsage;
  std::exit(2);
}

std::uint64_t parseNumber(const std::string& option, const std::string& value) {
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || value[0] == '-') usageError(option + ": not a number: " + value);
  return n;
}

// "2026-11-28", "2026-11-28T10:00", "2026-11-28T10:00:05Z" (UTC).
std::int64_t parseTime(const std::string& value) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(value.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed) != 3) {
    usageError("--end-time: expected now or YYYY-MM-DD[THH:MM[:SS]][Z], got " + value);
  }
  std::string_view rest = std::string_view(value).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && (rest[0] == 'T' || rest[0] == ' ')) {
    const std::string tail(rest.substr(1));
    int used = 0;
    if (std::sscanf(tail.c_str(), "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &used) != 2) {
      usageError("--end-time: bad time of day in " + value);
    }
    rest = rest.substr(1 + static_cast<std::size_t>(used));
    if (!rest.empty() && rest[0] == ':') {
      const std::string secs(rest.substr(1));
      if (std::sscanf(secs.c_str(), "%2d%n", &tm.tm_sec, &used) != 1) usageError("--end-time: bad seconds in " + value);
      rest = rest.substr(1 + static_cast<std::size_t>(used));
    }
  }
  if (rest == "Z") rest = {};
  if (!rest.empty()) usageError("--end-time: unexpected '" + std::string(rest) + "' in " + value);
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    usageError("--end-time: out of range: " + value);
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm));
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) usageError(arg == "--db" || arg == "--count" || arg == "--days" || arg == "--seed" ||
                                          arg == "--end-time" || arg == "--batch"
                                      ? arg + " needs a value"
                                      : "unknown option " + arg);
    const std::string value = argv[++i];
    if (arg == "--db") {
      o.db = value;
    } else if (arg == "--count") {
      o.count = static_cast<std::size_t>(parseNumber(arg, value));
    } else if (arg == "--days") {
      o.days = static_cast<std::int64_t>(parseNumber(arg, value));
    } else if (arg == "--seed") {
      o.seed = parseNumber(arg, value);
    } else if (arg == "--end-time") {
      if (value != "now") o.endSeconds = parseTime(value);
    } else if (arg == "--batch") {
      o.batch = static_cast<std::size_t>(parseNumber(arg, value));
    } else {
      usageError("unknown option " + arg);
    }
  }
  if (o.db.empty()) usageError("--db is required");
  if (o.count == 0) usageError("--count must be at least 1");
  if (o.days < 1 || o.days > 3650) usageError("--days must be 1..3650");
  if (o.batch == 0) usageError("--batch must be at least 1");
  return o;
}

std::string isoTime(std::int64_t seconds) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::uintmax_t fileSize(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parseOptions(argc, argv);
  const std::int64_t endSeconds =
      o.endSeconds.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  const std::int64_t startSeconds = endSeconds - o.days * kSecondsPerDay;
  const auto started = std::chrono::steady_clock::now();
  sqlite3_auto_extension(reinterpret_cast<void (*)()>(&raiseCacheSize));
  try {
    {
      imapav::db::EventStore store(o.db);
      if (const auto rows = store.count(); rows > 0) {
        std::cerr << "imapav-log-gen: " << o.db << " already holds " << rows
                  << " scan events; remove it or choose another file\n";
        return 1;
      }
      Generator gen(o.seed, startSeconds * kUsPerSecond, endSeconds * kUsPerSecond);
      const std::vector<std::int64_t> times = gen.timeline(o.count);
      // The next batch is generated on a second thread while SQLite writes this one.
      const auto makeBatch = [&](std::size_t from) {
        std::vector<ScanEvent> batch;
        const std::size_t to = std::min(times.size(), from + o.batch);
        batch.reserve(to - from);
        for (std::size_t i = from; i < to; ++i) batch.push_back(gen.next(times[i]));
        return batch;
      };
      auto next = std::async(std::launch::async, makeBatch, std::size_t{0});
      for (std::size_t from = 0; from < times.size(); from += o.batch) {
        const std::vector<ScanEvent> batch = next.get();
        if (from + o.batch < times.size()) next = std::async(std::launch::async, makeBatch, from + o.batch);
        store.insert(batch);
      }
    }  // closing the last connection checkpoints the WAL into the file
  } catch (const std::exception& e) {
    std::cerr << "imapav-log-gen: " << e.what() << "\n";
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto bytes = fileSize(o.db) + fileSize(o.db + "-wal");
  std::printf("imapav-log-gen: %zu rows in %.1f s (%.0f rows/s), %s %.1f MB, %s .. %s, seed %llu\n", o.count,
              seconds, static_cast<double>(o.count) / seconds, o.db.c_str(), static_cast<double>(bytes) / 1e6,
              isoTime(startSeconds).c_str(), isoTime(endSeconds).c_str(), static_cast<unsigned long long>(o.seed));
  return 0;
}
