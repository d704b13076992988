#pragma once
// Scan results by (SHA-256 of the message, signature version): a message scanned with the
// signatures in use is not scanned again. Bounded (LRU) in entries and age. No I/O.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "icap-server/scan/scanner.hpp"

namespace imapav::scan {

class VerdictCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t insertions = 0;
    std::uint64_t evictions = 0;  // pushed out by a newer entry at maxEntries
    std::uint64_t expired = 0;    // found older than maxAge
    std::size_t entries = 0;
  };

  // maxEntries > 0.
  VerdictCache(std::size_t maxEntries, Clock::duration maxAge);

  // Whether the same engine would give this result again for the same bytes: verdicts and
  // errors of the message itself (too large, corrupt, encrypted, archive limits). Not
  // timeouts, overload or resource errors, which depend on the moment.
  static bool cacheable(const ScanResult& result);

  // The stored result (elapsed as stored), or nullopt. A hit becomes the most recent entry.
  std::optional<ScanResult> find(std::string_view sha256, std::string_view signatureVersion,
                                 Clock::time_point now = Clock::now());
  // Stores result if cacheable(), replacing an entry of the same key.
  void insert(std::string_view sha256, std::string_view signatureVersion, const ScanResult& result,
              Clock::time_point now = Clock::now());

  Stats stats() const;
  std::size_t maxEntries() const { return maxEntries_; }

 private:
  struct Entry {
    std::string key;
    ScanResult result;
    Clock::time_point stored;
  };
  using List = std::list<Entry>;  // most recent first

  static std::string keyOf(std::string_view sha256, std::string_view signatureVersion);

  const std::size_t maxEntries_;
  const Clock::duration maxAge_;
  mutable std::mutex mutex_;
  List lru_;
  std::unordered_map<std::string_view, List::iterator> index_;  // keys live in the entries
  Stats stats_;
};

}  // namespace imapav::scan
