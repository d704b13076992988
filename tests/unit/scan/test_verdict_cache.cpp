#include <boost/test/unit_test.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "icap-server/scan/verdict_cache.hpp"

using namespace imapav::scan;
using namespace std::chrono_literals;

namespace {

ScanResult infected(const std::string& name) {
  ScanResult r;
  r.verdict = Verdict::Infected;
  r.threats = {name, name + ".2"};
  r.detail = "Heuristics.Encrypted.Zip";
  return r;
}

ScanResult error(ErrorClass c) {
  ScanResult r;
  r.error = c;
  return r;
}

ScanResult clean() {
  ScanResult r;
  r.verdict = Verdict::Clean;
  return r;
}

const std::string kA(64, 'a');
const std::string kB(64, 'b');
const std::string kC(64, 'c');

}  // namespace

BOOST_AUTO_TEST_SUITE(verdict_cache)

BOOST_AUTO_TEST_CASE(hit_returns_what_was_stored) {
  VerdictCache cache(10, 1h);
  BOOST_TEST(!cache.find(kA, "v1"));
  cache.insert(kA, "v1", infected("Eicar"));
  const auto hit = cache.find(kA, "v1");
  BOOST_REQUIRE(hit);
  BOOST_TEST((hit->verdict == Verdict::Infected));
  BOOST_TEST(hit->threats == (std::vector<std::string>{"Eicar", "Eicar.2"}), boost::test_tools::per_element());
  BOOST_TEST(hit->detail == "Heuristics.Encrypted.Zip");
  const auto st = cache.stats();
  BOOST_TEST(st.hits == 1U);
  BOOST_TEST(st.misses == 1U);
  BOOST_TEST(st.insertions == 1U);
  BOOST_TEST(st.entries == 1U);
}

BOOST_AUTO_TEST_CASE(signature_version_is_part_of_the_key) {
  VerdictCache cache(10, 1h);
  cache.insert(kA, "v1", clean());
  BOOST_TEST(!cache.find(kA, "v2"));  // new signatures: scan again
  BOOST_TEST(cache.find(kA, "v1").has_value());
  // No ambiguity between a hash and a version run together.
  cache.insert("ab", "c", clean());
  BOOST_TEST(!cache.find("a", "bc"));
}

BOOST_AUTO_TEST_CASE(least_recently_used_is_evicted) {
  VerdictCache cache(2, 1h);
  cache.insert(kA, "v", clean());
  cache.insert(kB, "v", clean());
  BOOST_TEST(cache.find(kA, "v").has_value());  // A is now the most recent
  cache.insert(kC, "v", clean());               // evicts B
  BOOST_TEST(cache.find(kA, "v").has_value());
  BOOST_TEST(!cache.find(kB, "v"));
  BOOST_TEST(cache.find(kC, "v").has_value());
  BOOST_TEST(cache.stats().evictions == 1U);
  BOOST_TEST(cache.stats().entries == 2U);
}

BOOST_AUTO_TEST_CASE(reinsert_replaces_without_growing) {
  VerdictCache cache(5, 1h);
  cache.insert(kA, "v", clean());
  cache.insert(kA, "v", infected("X"));
  BOOST_TEST(cache.stats().entries == 1U);
  BOOST_TEST((cache.find(kA, "v")->verdict == Verdict::Infected));
}

BOOST_AUTO_TEST_CASE(entries_expire_after_max_age) {
  VerdictCache cache(5, 10s);
  const auto t0 = VerdictCache::Clock::now();
  cache.insert(kA, "v", clean(), t0);
  BOOST_TEST(cache.find(kA, "v", t0 + 10s).has_value());
  BOOST_TEST(!cache.find(kA, "v", t0 + 11s));
  BOOST_TEST(cache.stats().expired == 1U);
  BOOST_TEST(cache.stats().entries == 0U);
}

BOOST_AUTO_TEST_CASE(only_repeatable_results_are_kept) {
  BOOST_TEST(VerdictCache::cacheable(clean()));
  BOOST_TEST(VerdictCache::cacheable(infected("X")));
  for (const auto c : {ErrorClass::TooLarge, ErrorClass::Corrupt, ErrorClass::Encrypted, ErrorClass::ArchiveLimit}) {
    BOOST_TEST(VerdictCache::cacheable(error(c)), toString(c));
  }
  for (const auto c : {ErrorClass::Timeout, ErrorClass::OutOfResources, ErrorClass::Overloaded,
                       ErrorClass::EngineNotReady, ErrorClass::Internal, ErrorClass::None}) {
    BOOST_TEST(!VerdictCache::cacheable(error(c)), toString(c));
  }
  VerdictCache cache(5, 1h);
  cache.insert(kA, "v", error(ErrorClass::Timeout));
  BOOST_TEST(!cache.find(kA, "v"));
  BOOST_TEST(cache.stats().insertions == 0U);
}

BOOST_AUTO_TEST_CASE(concurrent_use_stays_bounded_and_consistent) {
  VerdictCache cache(64, 1h);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string key = std::to_string((i * 7 + t) % 200);
        const std::string name = "T" + key;
        if (auto hit = cache.find(key, "v")) {
          if (hit->threats.empty() || hit->threats.front() != name) ++wrong;
        } else {
          cache.insert(key, "v", infected(name));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(wrong.load() == 0);
  const auto st = cache.stats();
  BOOST_TEST(st.entries <= 64U);
  BOOST_TEST(st.hits + st.misses == 20000U);
  BOOST_TEST(st.insertions >= st.entries + st.evictions);
}

BOOST_AUTO_TEST_SUITE_END()
