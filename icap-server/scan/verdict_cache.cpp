#include "icap-server/scan/verdict_cache.hpp"

#include <utility>

namespace imapav::scan {

VerdictCache::VerdictCache(std::size_t maxEntries, Clock::duration maxAge)
    : maxEntries_(maxEntries == 0 ? 1 : maxEntries), maxAge_(maxAge) {
  index_.reserve(maxEntries_ < (1U << 20) ? maxEntries_ : (1U << 20));
}

bool VerdictCache::cacheable(const ScanResult& result) {
  switch (result.verdict) {
    case Verdict::Clean:
    case Verdict::Infected:
      return true;
    case Verdict::Error:
      break;
  }
  switch (result.error) {
    case ErrorClass::TooLarge:  // limits do not change while the process runs
    case ErrorClass::Corrupt:
    case ErrorClass::Encrypted:
    case ErrorClass::ArchiveLimit:
      return true;
    default:
      return false;
  }
}

std::string VerdictCache::keyOf(std::string_view sha256, std::string_view signatureVersion) {
  std::string key;
  key.reserve(sha256.size() + 1 + signatureVersion.size());
  key.append(sha256).push_back('\0');
  key.append(signatureVersion);
  return key;
}

std::optional<ScanResult> VerdictCache::find(std::string_view sha256, std::string_view signatureVersion,
                                             Clock::time_point now) {
  const std::string key = keyOf(sha256, signatureVersion);
  const std::lock_guard lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (now - it->second->stored > maxAge_) {
    lru_.erase(it->second);
    index_.erase(it);
    ++stats_.expired;
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->result;
}

void VerdictCache::insert(std::string_view sha256, std::string_view signatureVersion, const ScanResult& result,
                          Clock::time_point now) {
  if (!cacheable(result)) return;
  Entry entry{keyOf(sha256, signatureVersion), result, now};
  const std::lock_guard lock(mutex_);
  if (const auto it = index_.find(entry.key); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front(std::move(entry));
  index_.emplace(lru_.front().key, lru_.begin());
  ++stats_.insertions;
  while (lru_.size() > maxEntries_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

VerdictCache::Stats VerdictCache::stats() const {
  const std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace imapav::scan
