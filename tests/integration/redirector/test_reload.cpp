// Signature updates through the whole chain (issue 7): imaplib clients download through
// imapav-redirector without pause while imapav-icapd's signature database changes, once
// announced with SIGHUP and once found by the periodic check; and an update that does not
// load, which must leave the old signatures scanning.

#include <openssl/evp.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/redirector/redirector_fixture.hpp"
#include "tests/support/prometheus.hpp"
#include "tests/support/samples.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

double nowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Polls ok() until it holds or limit has passed; whether it held.
template <class Predicate>
bool eventually(Predicate ok, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!ok()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string hexOf(std::string_view bytes) {
  std::ostringstream hex;
  for (const char c : bytes) hex << std::hex << std::setw(2) << std::setfill('0') << int{static_cast<unsigned char>(c)};
  return hex.str();
}

std::string sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  BOOST_REQUIRE(EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) == 1);
  return hexOf(std::string_view(reinterpret_cast<const char*>(digest), length));
}

// The signature version imapav-icapd serves with, from its ISTag ("imapav-<version>") in
// an OPTIONS answer.
std::string servedVersion(std::uint16_t port) {
  IcapConnection c(port);
  BOOST_REQUIRE(c.send("OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"));
  const auto r = c.read(10s);
  BOOST_REQUIRE_MESSAGE(r, "no answer to OPTIONS: " + c.error());
  const std::string* tag = r->header("ISTag");
  BOOST_REQUIRE(tag != nullptr);
  const std::string prefix = "\"imapav-";
  BOOST_REQUIRE_MESSAGE(tag->rfind(prefix, 0) == 0 && tag->size() > prefix.size() + 1 && tag->back() == '"', *tag);
  return tag->substr(prefix.size(), tag->size() - prefix.size() - 1);
}

// The istag label of imapav_icapd_engine_info, "" without one.
std::string engineInfoIstag(const Scrape& s) {
  static const std::regex re("^imapav_icapd_engine_info\\{.*istag=\"([^\"]*)\".*\\}$");
  std::smatch m;
  for (const auto& sample : s.samples)
    if (std::regex_match(sample.first, m, re)) return m[1];
  return "";
}

// A message the bundled signatures do not know: clean until a signature for marker arrives.
std::string markerMessage(const std::string& subject, const std::string& marker) {
  return cleanMessage(subject, 300) + "Quote of the day: " + marker + "\r\n";
}

std::string signatureLine(const std::string& name, const std::string& marker) {
  return name + ":0:*:" + hexOf(marker) + "\n";
}

// Puts a database file into the directory whole: written beside it, then renamed in, so
// imapav-icapd never sees half of it.
void installDatabaseFile(const IcapdFixture& icapd, const std::string& name, const std::string& content) {
  const std::string staged = icapd.dir().file(name + ".staged");
  writeFile(staged, content);
  std::filesystem::rename(staged, icapd.signatureDir() + "/" + name);
}

// What a download was, told apart by its content.
bool isOriginal(const std::string& got, const std::string& original) { return got == original; }
bool isNotice(const std::string& got, const std::string& threat) {
  return contains(got, "X-Imapav-Status: infected") && contains(got, threat) && !contains(got, "Quote of the day") &&
         !contains(got, "See attachment.");
}

// One download as tests/integration/clients/imap_loop.py reports it.
struct Fetch {
  double start = 0, end = 0;  // unix seconds
  int uid = 0;
  std::string sha256;
  std::size_t bytes = 0, declared = 0;  // received; RFC822.SIZE
};

std::vector<Fetch> fetchesOf(const std::string& json) {
  static const std::regex re(R"re(\[([0-9.]+), ([0-9.]+), (\d+), "([0-9a-f]{64})", (\d+), (\d+)\])re");
  std::vector<Fetch> out;
  for (std::sregex_iterator it(json.begin(), json.end(), re), last; it != last; ++it) {
    const auto& m = *it;
    out.push_back({std::stod(m[1]), std::stod(m[2]), std::stoi(m[3]), m[4], std::stoul(m[5]), std::stoul(m[6])});
  }
  return out;
}

// Clients downloading the whole mailbox through the redirector again and again until
// stop(); each in its own directory.
class BusyClients {
 public:
  BusyClients(std::uint16_t port, int count) {
    for (int i = 0; i < count; ++i) {
      auto c = std::make_unique<Client>();
      c->dir = dir_.file("client" + std::to_string(i));
      const std::vector<std::string> argv = {
          "/usr/bin/python3", std::string(IMAPAV_SOURCE_DIR) + "/tests/integration/clients/imap_loop.py",
          "--port", std::to_string(port), "--login", std::string("bob:") + DovecotFixture::kPassword,
          "--out", c->dir, "--until", dir_.file("stop")};
      c->thread = std::thread([argv, client = c.get()] { client->result = runCommand(argv, 120s); });
      clients_.push_back(std::move(c));
    }
  }
  ~BusyClients() { stop(); }

  // Rounds each client has completed (-1: not logged in yet).
  std::vector<int> rounds() const {
    std::vector<int> out;
    for (const auto& c : clients_) {
      const std::string text = std::filesystem::exists(c->dir + ".progress") ? readFile(c->dir + ".progress") : "";
      out.push_back(text.empty() ? -1 : std::stoi(text));
    }
    return out;
  }
  // Waits until every client has completed `more` rounds after those in `since`.
  bool awaitRounds(const std::vector<int>& since, int more) const {
    return eventually(
        [&] {
          const auto now = rounds();
          for (std::size_t i = 0; i < now.size(); ++i)
            if (now[i] < std::max(since[i], 0) + more) return false;
          return true;
        },
        40s);
  }
  void stop() {
    writeFile(dir_.file("stop"), "");
    for (auto& c : clients_)
      if (c->thread.joinable()) c->thread.join();
  }

  std::size_t size() const { return clients_.size(); }
  const CommandResult& result(std::size_t i) const { return clients_[i]->result; }
  // The body a client received with that SHA-256.
  std::string body(std::size_t i, const std::string& sha256) const {
    return readFile(clients_[i]->dir + "/" + sha256 + ".eml");
  }

 private:
  struct Client {
    std::string dir;
    CommandResult result;
    std::thread thread;
  };
  TempDir dir_;
  std::vector<std::unique_ptr<Client>> clients_;
};

// The downloads of a message whose signature arrived: the original while the old
// signatures were all there were (ended before the update went in), a notice naming
// threat once the new ones answered (started after the new ISTag was seen), and in one
// client's sequence never the original again after a notice. A notice names the
// signature database that found it, one of detecting.
void checkDetectedFrom(const BusyClients& clients, std::size_t client, const std::vector<Fetch>& fetches, int uid,
                       const std::string& original, const std::string& threat, double updated, double served,
                       const std::vector<std::string>& detecting) {
  BOOST_TEST_CONTEXT("uid " << uid) {
    std::size_t before = 0, after = 0;
    bool noticed = false;
    for (const auto& f : fetches) {
      if (f.uid != uid) continue;
      const std::string got = clients.body(client, f.sha256);
      const bool notice = isNotice(got, threat);
      BOOST_TEST((notice || isOriginal(got, original)), "neither the original nor a notice: " << got);
      if (f.end < updated) {
        BOOST_TEST(isOriginal(got, original), "detected before its signature was installed");
        ++before;
      }
      if (f.start > served) {
        BOOST_TEST(notice, "delivered as is after the new signatures were in service");
        ++after;
      }
      BOOST_TEST(!(noticed && !notice), "the original again after a notice");
      if (notice) {
        bool named = false;
        for (const auto& v : detecting) named = named || contains(got, "Signature database: \"imapav-" + v + "\"");
        BOOST_TEST(named, "the notice names another signature database: " << got);
      }
      noticed = noticed || notice;
    }
    BOOST_TEST(before > 0u);
    BOOST_TEST(after > 0u);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(reload)

BOOST_AUTO_TEST_CASE(signatures_replaced_under_load) {
  const std::string firstMarker = "IMAPAV-TEST-RELOAD-FIRST-UPDATE";
  const std::string secondMarker = "IMAPAV-TEST-RELOAD-SECOND-UPDATE";
  const std::vector<std::string> messages = {
      cleanMessage("one", 300), infectedMessage("bad"), cleanMessage("two", 5000),
      markerMessage("first update", firstMarker), markerMessage("second update", secondMarker)};
  constexpr int kFirst = 4, kSecond = 5;  // UIDs of the messages the updates detect
  const auto original = [&](int uid) { return messages.at(static_cast<std::size_t>(uid) - 1); };
  const auto rport = freePort();
  const auto iport = freePort();
  RedirectorFixture f(messages, {{"metrics.listen", "127.0.0.1:" + std::to_string(rport)}}, false,
                      {{"metrics.listen", "127.0.0.1:" + std::to_string(iport)}, {"scan.reload_check", "1s"}});
  const std::string v1 = servedVersion(f.icapd.port());

  BusyClients clients(f.port(), 4);
  auto progress = clients.rounds();
  BOOST_REQUIRE_MESSAGE(clients.awaitRounds(progress, 2), "the clients did not get going\n" + f.log());

  // Update 1, announced with SIGHUP.
  const double updated1 = nowUnix();
  installDatabaseFile(f.icapd, "update-1.ndb", signatureLine("Imapav.Test.New", firstMarker));
  f.icapd.reload();
  std::string v2;
  BOOST_REQUIRE_MESSAGE(eventually([&] { return (v2 = servedVersion(f.icapd.port())) != v1; }, 20s),
                        "ISTag unchanged after SIGHUP\n" + f.icapd.log());
  const double served1 = nowUnix();
  BOOST_TEST(eventually([&] { return contains(f.icapd.log(), "signatures reloaded (requested)"); }, 20s));
  progress = clients.rounds();
  BOOST_REQUIRE(clients.awaitRounds(progress, 2));

  // Update 2, found by the periodic check alone.
  const double updated2 = nowUnix();
  installDatabaseFile(f.icapd, "update-2.ndb", signatureLine("Imapav.Test.Newer", secondMarker));
  std::string v3;
  BOOST_REQUIRE_MESSAGE(eventually([&] { return (v3 = servedVersion(f.icapd.port())) != v2; }, 20s),
                        "the periodic check missed the update\n" + f.icapd.log());
  const double served2 = nowUnix();
  // Logged once the new engine is in service, so a moment after the ISTag changes.
  BOOST_TEST(eventually(
      [&] { return contains(f.icapd.log(), "signatures reloaded (changed): version=" + v2 + " -> " + v3); }, 20s));
  progress = clients.rounds();
  BOOST_REQUIRE(clients.awaitRounds(progress, 2));
  clients.stop();

  // Every client got every message every round: clean ones unchanged, infected ones as
  // notices, each the size announced.
  std::size_t downloads = 0;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    BOOST_TEST_CONTEXT("client " << i) {
      const auto& r = clients.result(i);
      BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\nredirector log:\n" + f.log());
      BOOST_TEST(contains(r.output, "\"error\": null"));
      const auto fetches = fetchesOf(r.output);
      const int rounds = std::stoi(r.output.substr(r.output.find("\"rounds\": ") + 10));
      BOOST_TEST_MESSAGE("client " << i << ": " << rounds << " rounds");
      BOOST_TEST(rounds >= 6);
      BOOST_REQUIRE_EQUAL(fetches.size(), messages.size() * static_cast<std::size_t>(rounds));
      downloads += fetches.size();
      for (const auto& fetch : fetches) {
        BOOST_TEST_CONTEXT("uid " << fetch.uid) {
          BOOST_TEST(fetch.bytes == fetch.declared);
          const std::string got = clients.body(i, fetch.sha256);
          if (fetch.uid == 1 || fetch.uid == 3) BOOST_TEST(isOriginal(got, original(fetch.uid)));
          if (fetch.uid == 2) BOOST_TEST(isNotice(got, "Eicar-Test-Signature"));
        }
      }
      checkDetectedFrom(clients, i, fetches, kFirst, original(kFirst), "Imapav.Test.New.UNOFFICIAL", updated1,
                        served1, {v2, v3});
      checkDetectedFrom(clients, i, fetches, kSecond, original(kSecond), "Imapav.Test.Newer.UNOFFICIAL", updated2,
                        served2, {v3});
    }
  }

  // Nothing failed or went unscanned, and the redirector counted every download.
  const auto r = scrape(rport);
  for (const char* outcome : {"failed_passed", "failed_dropped", "passed_unscanned", "withheld"})
    BOOST_TEST(r.value("imapav_redirector_messages_total{outcome=\"" + std::string(outcome) + "\"}") == 0, outcome);
  for (const char* reason : {"partial", "section", "upload", "too_large"})
    BOOST_TEST(r.value("imapav_redirector_unscanned_total{reason=\"" + std::string(reason) + "\"}") == 0, reason);
  BOOST_TEST(r.value("imapav_redirector_messages_total{outcome=\"clean\"}") +
                 r.value("imapav_redirector_messages_total{outcome=\"replaced\"}") ==
             static_cast<double>(downloads));
  BOOST_TEST(r.value("imapav_redirector_icap_failures_total{server=\"127.0.0.1:" + std::to_string(f.icapd.port()) +
                     "\"}") == 0);
  // A new ISTag in an answer made the redirector ask OPTIONS again (RFC 3507 4.7), instead
  // of keeping the old one until its Options-TTL (an hour) ran out.
  BOOST_TEST(r.has("imapav_redirector_icap_server_info{server=\"127.0.0.1:" + std::to_string(f.icapd.port()) +
                   "\",istag=\"imapav-" + v3 + "\"}"));

  // The scanner: both reloads, none failed, the old engines freed after their last scan,
  // the cache answering repeated downloads.
  Scrape s;
  BOOST_TEST(eventually([&] { return (s = scrape(iport)).value("imapav_icapd_engines") == 1; }, 20s));
  BOOST_TEST(s.value("imapav_icapd_signature_reloads_total{outcome=\"success\"}") >= 2);
  BOOST_TEST(s.value("imapav_icapd_signature_reloads_total{outcome=\"failure\"}") == 0);
  BOOST_TEST(s.value("imapav_icapd_signature_reload_failing") == 0);
  BOOST_TEST(engineInfoIstag(s) == "imapav-" + v3);
  BOOST_TEST(s.value("imapav_icapd_verdict_cache_lookups_total{result=\"hit\"}") > 0);
  BOOST_TEST(s.value("imapav_icapd_scans_total{verdict=\"error\"}") == 0);
  BOOST_TEST(!contains(f.icapd.log(), "signature reload FAILED"));

  // The event log: a row per download, three signature versions, and the sample of each
  // update clean under the versions before it and infected from its own on.
  BOOST_TEST(f.stop() == 0);
  BOOST_TEST(f.icapd.stop() == 0);
  BOOST_TEST(f.icapd.query("SELECT COUNT(*) AS n FROM scan_events")[0].at("n") == std::to_string(downloads));
  std::set<std::string> versions;
  for (const auto& row : f.icapd.query("SELECT DISTINCT signature_version AS v FROM scan_events")) versions.insert(row.at("v"));
  BOOST_TEST((versions == std::set<std::string>{v1, v2, v3}), "versions in the log: " << versions.size());
  for (const auto& version : {v1, v2, v3}) {
    BOOST_TEST_CONTEXT("version " << version) {
      // Each message scanned at most once per version by each client (before the first
      // result was in the cache), else answered from the cache.
      for (const auto& row : f.icapd.query("SELECT COUNT(*) AS n FROM scan_events WHERE cached = 0 AND "
                                           "signature_version = '" + version + "' GROUP BY sha256"))
        BOOST_TEST(std::stoi(row.at("n")) <= static_cast<int>(clients.size()));
      BOOST_TEST(std::stoi(f.icapd.query("SELECT COUNT(*) AS n FROM scan_events WHERE cached = 1 AND "
                                         "signature_version = '" + version + "'")[0].at("n")) > 0);
    }
  }
  const auto verdicts = [&](int uid) {
    std::set<std::string> out;  // "version verdict"
    for (const auto& row : f.icapd.query("SELECT DISTINCT signature_version AS v, verdict FROM scan_events "
                                         "WHERE sha256 = '" + sha256Hex(original(uid)) + "'"))
      out.insert(row.at("v") + " " + row.at("verdict"));
    return out;
  };
  BOOST_TEST((verdicts(kFirst) == std::set<std::string>{v1 + " clean", v2 + " infected", v3 + " infected"}));
  BOOST_TEST((verdicts(kSecond) == std::set<std::string>{v1 + " clean", v2 + " clean", v3 + " infected"}));
  // No stale cache entry answered for the new signatures.
  BOOST_TEST(f.icapd.query("SELECT id FROM scan_events WHERE cached = 1 AND verdict = 'clean' AND sha256 = '" +
                           sha256Hex(original(kFirst)) + "' AND signature_version != '" + v1 + "'")
                 .empty());
}

BOOST_AUTO_TEST_CASE(broken_update_keeps_scanning) {
  const std::vector<std::string> messages = {cleanMessage("one", 300), infectedMessage("bad"),
                                             markerMessage("marked", std::string(kMarker))};
  const auto rport = freePort();
  const auto iport = freePort();
  RedirectorFixture f(messages, {{"metrics.listen", "127.0.0.1:" + std::to_string(rport)}}, false,
                      {{"metrics.listen", "127.0.0.1:" + std::to_string(iport)}, {"scan.reload_check", "1s"}});
  const std::string v1 = servedVersion(f.icapd.port());
  // Clean unchanged, the EICAR and marker messages as notices, each the size announced.
  const auto fetchAndCheck = [&](const std::string& dir) {
    const auto r = f.fetchAll(f.port(), dir);
    BOOST_REQUIRE_MESSAGE(r.exitCode == 0, r.output + "\nredirector log:\n" + f.log());
    const auto sizes = sizesOf(r.output);
    BOOST_TEST(readFile(dir + "/1.eml") == messages[0]);
    BOOST_TEST(isNotice(readFile(dir + "/2.eml"), "Eicar-Test-Signature"));
    BOOST_TEST(isNotice(readFile(dir + "/3.eml"), std::string(kMarkerName)));
    for (int uid = 1; uid <= 3; ++uid)
      BOOST_TEST((sizes.count(uid) == 1u && sizes.at(uid) == readFile(dir + "/" + std::to_string(uid) + ".eml").size()));
  };

  installDatabaseFile(f.icapd, "broken.ndb", "garbage\n");
  f.icapd.reload();
  BOOST_REQUIRE_MESSAGE(eventually([&] { return contains(f.icapd.log(), "signature reload FAILED"); }, 20s),
                        f.icapd.log());
  BOOST_TEST(contains(f.icapd.log(), "still scanning with version=" + v1));
  Scrape s;
  BOOST_TEST(eventually([&] { return (s = scrape(iport)).value("imapav_icapd_signature_reload_failing") == 1; }, 20s));
  BOOST_TEST(s.value("imapav_icapd_signature_reloads_total{outcome=\"failure\"}") >= 1);
  BOOST_TEST(s.value("imapav_icapd_signature_reloads_total{outcome=\"success\"}") == 0);
  BOOST_TEST(engineInfoIstag(s) == "imapav-" + v1);
  BOOST_TEST(servedVersion(f.icapd.port()) == v1);

  // Scanned, not recalled: nothing was in the cache, so the old engine found both.
  TempDir during;
  fetchAndCheck(during.path());
  s = scrape(iport);
  BOOST_TEST(s.value("imapav_icapd_verdict_cache_lookups_total{result=\"miss\"}") == 3);
  BOOST_TEST(s.value("imapav_icapd_verdict_cache_lookups_total{result=\"hit\"}") == 0);
  BOOST_TEST(s.value("imapav_icapd_scans_total{verdict=\"infected\"}") == 2);
  BOOST_TEST(s.value("imapav_icapd_signature_reload_failing") == 1);

  // The bad file goes; the periodic check loads the database again, the same files as at
  // the start, so the same version (and the cache's entries for it still answer).
  std::filesystem::remove(f.icapd.signatureDir() + "/broken.ndb");
  BOOST_REQUIRE_MESSAGE(
      eventually([&] { return (s = scrape(iport)).value("imapav_icapd_signature_reload_failing") == 0; }, 20s),
      f.icapd.log());
  BOOST_TEST(s.value("imapav_icapd_signature_reloads_total{outcome=\"success\"}") >= 1);
  BOOST_TEST(eventually([&] { return contains(f.icapd.log(), "signatures reloaded (changed)"); }, 20s));
  BOOST_TEST(servedVersion(f.icapd.port()) == v1);
  TempDir after;
  fetchAndCheck(after.path());
  s = scrape(iport);
  BOOST_TEST(s.value("imapav_icapd_verdict_cache_lookups_total{result=\"hit\"}") == 3);

  const auto r = scrape(rport);
  BOOST_TEST(r.value("imapav_redirector_messages_total{outcome=\"clean\"}") == 2);
  BOOST_TEST(r.value("imapav_redirector_messages_total{outcome=\"replaced\"}") == 4);
  for (const char* outcome : {"failed_passed", "failed_dropped", "passed_unscanned"})
    BOOST_TEST(r.value("imapav_redirector_messages_total{outcome=\"" + std::string(outcome) + "\"}") == 0, outcome);
  BOOST_TEST(f.stop() == 0);
  BOOST_TEST(f.icapd.stop() == 0);
  const auto rows = f.icapd.query("SELECT signature_version, cached FROM scan_events ORDER BY id");
  BOOST_REQUIRE_EQUAL(rows.size(), 6u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    BOOST_TEST(rows[i].at("signature_version") == v1);
    BOOST_TEST(rows[i].at("cached") == (i < 3 ? "0" : "1"));
  }
}

BOOST_AUTO_TEST_SUITE_END()
