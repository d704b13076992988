// Signature updates while imapav-icapd serves gateways, and the verdict cache, with the
// real daemon and libclamav: the periodic check swaps engines under load without a failed
// request, a broken update leaves the old engine scanning, and a cache hit is answered as
// a scan would be.

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "tests/integration/icapd_fixture.hpp"
#include "tests/support/prometheus.hpp"

using namespace imapav::test;
using namespace std::chrono_literals;

namespace {

const std::string kOptions = "OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n";
const std::string kNewMarker = "IMAPAV-RELOAD-NEW-MARKER";

std::string istagOf(const IcapdFixture& f) {
  IcapConnection c(f.port());
  if (!c.send(kOptions)) return "";
  const auto r = c.read();
  return r && r->header("ISTag") ? *r->header("ISTag") : "";
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::seconds limit = 30s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

// Written beside the directory and renamed into it: the server never sees half a file.
void installSignatures(const IcapdFixture& f, const std::string& name, const std::string& lines) {
  const std::string tmp = f.dir().file(name + ".tmp");
  writeFile(tmp, lines);
  std::filesystem::rename(tmp, f.signatureDir() + "/" + name);
}

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string markedMessage() {
  return "From: Mallory <mallory@example.com>\r\nTo: bob@example.net\r\nSubject: new campaign\r\n"
         "Message-ID: <new-marker@example.com>\r\n\r\nHello " + kNewMarker + " there\r\n";
}

// Gateways sending clean and infected mail without pause; counts what was not a verdict.
class Load {
 public:
  Load(std::uint16_t port, int connections) {
    for (int i = 0; i < connections; ++i) {
      threads_.emplace_back([this, port, i] {
        RespmodRequest rq;
        for (int n = 0; !stop_.load(); ++n) {
          // Unique clean messages (cache misses: real scans), the infected one repeated.
          rq.message = n % 3 == 0 ? infectedMessage() : cleanMessage("load " + std::to_string(i) + "/" + std::to_string(n), 4000);
          IcapConnection c(port);
          std::optional<IcapResponse> r;
          if (c.send(buildRequest(rq))) r = c.read();
          const std::string* verdict = r ? r->header("X-Imapav-Verdict") : nullptr;
          const bool ok = r && verdict &&
                          (n % 3 == 0 ? *verdict == "infected" && r->head.status == 200
                                      : *verdict == "clean" && r->head.status == 204);
          ++requests_;
          if (!ok) ++failures_;
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_.store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int requests() const { return requests_.load(); }
  int failures() const { return failures_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, failures_{0};
  std::vector<std::thread> threads_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(icapd_reload)

BOOST_AUTO_TEST_CASE(changed_signatures_are_swapped_in_under_load) {
  const auto mport = freePort();
  IcapdFixture f({{"scan.reload_check", "1s"}, {"metrics.listen", "127.0.0.1:" + std::to_string(mport)}});
  const std::string oldTag = istagOf(f);
  BOOST_REQUIRE(!oldTag.empty());
  RespmodRequest marked;
  marked.message = markedMessage();
  BOOST_TEST(f.exchange(marked).head.status == 204);  // the old signatures miss it (and cache that)

  Load load(f.port(), 3);
  BOOST_REQUIRE(eventually([&] { return load.requests() >= 10; }));
  installSignatures(f, "new.ndb", "Imapav.Reload.New:0:*:" + hex(kNewMarker) + "\n");
  BOOST_REQUIRE(eventually([&] { return istagOf(f) != oldTag; }));
  const int atSwap = load.requests();
  BOOST_REQUIRE(eventually([&] { return load.requests() >= atSwap + 10; }));
  load.stop();
  BOOST_TEST(load.failures() == 0);
  BOOST_TEST_MESSAGE("requests during the test: " << load.requests());

  // The new engine finds what the old one missed: no stale "clean" from the cache.
  auto after = f.exchange(marked);
  BOOST_TEST(after.head.status == 200);
  BOOST_TEST(*after.header("X-Imapav-Verdict") == "infected");
  BOOST_TEST(after.header("X-Imapav-Cache") == nullptr);
  BOOST_TEST(*after.header("X-Virus-ID") == "Imapav.Reload.New.UNOFFICIAL");
  BOOST_TEST(*after.header("ISTag") != oldTag);
  // Asked again: answered from the cache, the notice rebuilt.
  const auto again = f.exchange(marked);
  BOOST_REQUIRE(again.header("X-Imapav-Cache") != nullptr);
  BOOST_TEST(*again.header("X-Imapav-Cache") == "hit");
  BOOST_TEST(*again.header("X-Virus-ID") == "Imapav.Reload.New.UNOFFICIAL");
  BOOST_TEST(again.body.find("Imapav.Reload.New.UNOFFICIAL") != std::string::npos);
  BOOST_TEST(again.body.find(kNewMarker) == std::string::npos);

  const auto m = scrape(mport);
  BOOST_TEST(m.value("imapav_icapd_signature_reloads_total{outcome=\"success\"}") == 1);
  BOOST_TEST(m.value("imapav_icapd_signature_reload_failing") == 0);
  BOOST_TEST(m.value("imapav_icapd_verdict_cache_lookups_total{result=\"hit\"}") >= 2);
  BOOST_TEST(eventually([&] { return scrape(mport).value("imapav_icapd_engines") == 1; }, 10s));
  BOOST_TEST(f.log().find("signatures reloaded (changed)") != std::string::npos);

  BOOST_REQUIRE(f.stop() == 0);
  const auto versions = f.query("SELECT DISTINCT signature_version AS v FROM scan_events ORDER BY id");
  BOOST_TEST(versions.size() == 2U);
  const auto rows = f.query(
      "SELECT verdict, cached, signature_version AS v FROM scan_events WHERE subject = 'new campaign' ORDER BY id");
  BOOST_REQUIRE(rows.size() == 3U);
  BOOST_TEST(rows[0].at("verdict") == "clean");
  BOOST_TEST(rows[1].at("verdict") == "infected");
  BOOST_TEST(rows[1].at("cached") == "0");
  BOOST_TEST(rows[2].at("verdict") == "infected");
  BOOST_TEST(rows[2].at("cached") == "1");
  BOOST_TEST(rows[0].at("v") != rows[1].at("v"));
  BOOST_TEST(rows[1].at("v") == rows[2].at("v"));
  // The repeated infected message of the load was mostly answered from the cache.
  const auto cached = f.query("SELECT COUNT(*) AS n FROM scan_events WHERE cached = 1 AND verdict = 'infected'");
  BOOST_TEST(std::stoi(cached.at(0).at("n")) >= 2);
}

BOOST_AUTO_TEST_CASE(a_broken_update_leaves_the_engine_in_use_scanning) {
  const auto mport = freePort();
  IcapdFixture f({{"scan.reload_check", "1s"}, {"metrics.listen", "127.0.0.1:" + std::to_string(mport)}});
  const std::string oldTag = istagOf(f);
  installSignatures(f, "broken.ndb", "this is not a signature\n");
  BOOST_REQUIRE(eventually([&] { return scrape(mport).value("imapav_icapd_signature_reload_failing") == 1; }));
  BOOST_TEST(f.log().find("signature reload FAILED (changed), still scanning with version=") != std::string::npos);
  BOOST_TEST(istagOf(f) == oldTag);
  RespmodRequest rq;
  rq.message = infectedMessage();
  const auto r = f.exchange(rq);
  BOOST_TEST(*r.header("X-Imapav-Verdict") == "infected");
  BOOST_TEST(*r.header("ISTag") == oldTag);
  // Tried once, not at every check.
  std::this_thread::sleep_for(2500ms);
  BOOST_TEST(scrape(mport).value("imapav_icapd_signature_reloads_total{outcome=\"failure\"}") == 1);

  // Repaired: the next check loads it (the same files as at the start: the same version).
  std::filesystem::remove(f.signatureDir() + "/broken.ndb");
  BOOST_REQUIRE(eventually([&] { return scrape(mport).value("imapav_icapd_signature_reload_failing") == 0; }));
  BOOST_TEST(scrape(mport).value("imapav_icapd_signature_reloads_total{outcome=\"success\"}") == 1);
  BOOST_TEST(istagOf(f) == oldTag);
  BOOST_TEST(*f.exchange(rq).header("X-Imapav-Verdict") == "infected");
}

BOOST_AUTO_TEST_CASE(a_much_smaller_update_is_refused_until_the_operator_asks) {
  const auto mport = freePort();
  IcapdFixture f({{"scan.reload_check", "1s"}, {"metrics.listen", "127.0.0.1:" + std::to_string(mport)}});
  const std::string oldTag = istagOf(f);
  // The 3 test signatures replaced by 1: an update that lost most of the database.
  installSignatures(f, "imapav-test.ndb", "Imapav.Reload.Only:0:*:" + hex(kNewMarker) + "\n");
  BOOST_REQUIRE(eventually([&] { return scrape(mport).value("imapav_icapd_signature_reload_failing") == 1; }));
  BOOST_TEST(f.log().find("fewer than 50% of the 3 in use") != std::string::npos);
  RespmodRequest rq;
  rq.message = infectedMessage();
  BOOST_TEST(*f.exchange(rq).header("X-Imapav-Verdict") == "infected");  // EICAR: still the old engine
  BOOST_TEST(istagOf(f) == oldTag);
  f.reload();  // SIGHUP: the operator means it
  BOOST_REQUIRE(eventually([&] { return istagOf(f) != oldTag; }));
  BOOST_TEST(scrape(mport).value("imapav_icapd_signatures") == 1);
  BOOST_TEST(scrape(mport).value("imapav_icapd_signature_reload_failing") == 0);
}

BOOST_AUTO_TEST_CASE(no_cache_when_turned_off) {
  IcapdFixture f(std::map<std::string, std::string>{{"cache.max_entries", "0"}});
  RespmodRequest rq;
  rq.message = infectedMessage();
  BOOST_TEST(f.exchange(rq).header("X-Imapav-Cache") == nullptr);
  BOOST_TEST(f.exchange(rq).header("X-Imapav-Cache") == nullptr);
  BOOST_REQUIRE(f.stop() == 0);
  const auto rows = f.query("SELECT SUM(cached) AS c, COUNT(*) AS n FROM scan_events");
  BOOST_TEST(rows.at(0).at("c") == "0");
  BOOST_TEST(rows.at(0).at("n") == "2");
}

BOOST_AUTO_TEST_SUITE_END()
