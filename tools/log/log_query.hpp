#pragma once
// The pure half of imapav-log: time parsing, filters and the SQL they become, and the
// stats arithmetic. No I/O, no SQLite; bad input is a returned error, never an exception.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "shared/common/result.hpp"

namespace imapav::logtool {

inline constexpr std::int64_t kUsPerSecond = 1'000'000;

// A calendar date and time of day as typed, before a time zone is applied.
struct CivilTime {
  int year = 1970;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int micro = 0;  // fraction of the second, 0..999999
  bool operator==(const CivilTime&) const = default;
};

// A time as given on the command line.
struct TimeSpec {
  enum class Kind {
    kRelative,  // agoUs before now ("2h")
    kUtc,       // civil time in UTC ("...Z")
    kLocal,     // civil time in the local time zone (TZ), like date(1) and journalctl
  };
  Kind kind = Kind::kRelative;
  std::int64_t agoUs = 0;
  CivilTime civil;
  bool operator==(const TimeSpec&) const = default;
};

// "45s", "30m", "2h", "7d"; with allowMillis also "500ms". Non-negative.
Result<std::int64_t> parseDurationUs(std::string_view text, bool allowMillis = false);
// Absolute "2026-11-28", "2026-11-28T10:00", "2026-11-28 10:00:00", "...Z", or relative.
Result<TimeSpec> parseTime(std::string_view text);
// Civil time read as UTC -> unix microseconds (proleptic Gregorian, no leap seconds).
std::int64_t utcToUnixUs(const CivilTime& t);
CivilTime unixUsToUtc(std::int64_t us);
// Local civil times go through the C library's time zone (mktime, honours TZ).
std::int64_t resolveTime(const TimeSpec& spec, std::int64_t nowUs);
// "2026-11-28T10:00:00Z": what the table shows, and what parseTime reads back.
std::string formatUtc(std::int64_t us);

struct Filters {
  std::optional<TimeSpec> since;  // time_us >= since
  std::optional<TimeSpec> until;  // time_us < until (half-open, so day ranges do not overlap)
  std::optional<std::string> verdict;
  std::optional<std::string> action;
  std::optional<std::string> threat;     // SQLite GLOB against each comma-separated name
  std::optional<std::string> user;
  std::optional<std::string> sender;
  std::optional<std::string> recipient;  // one address of the list, ASCII case-insensitive
  std::optional<std::string> gateway;
  std::optional<std::string> mailbox;
  std::optional<std::string> messageId;
  std::optional<std::string> errorClass;
  std::optional<bool> cached;  // answered from the verdict cache (cached = 1) or scanned
  std::optional<std::string> signatureVersion;
};

using SqlParam = std::variant<std::int64_t, std::string>;

struct Query {
  std::string sql;
  std::vector<SqlParam> params;  // bound as ?1, ?2, ... in order
};

// The SQL function the caller registers: imapav_threat_match(threats, glob) is 1 when
// one comma-separated name GLOBs the pattern.
inline constexpr const char* kThreatMatchFunction = "imapav_threat_match";

// Every column of scan_events, in schema order (time_iso after time_us), for json, csv, show.
const std::vector<std::string>& eventColumns();

// What the database offers beyond schema version 1.
struct Schema {
  bool recipientIndex = false;  // the FTS5 table scan_events_recipients (migration 0003)
};

// The FTS5 query for one address: a quoted phrase, or "" when it has no character the
// tokenizer keeps (then only the scan can find it).
std::string recipientMatch(std::string_view address);

// " WHERE ..." (or "") with parameters; never splices a value into the text.
Query whereClause(const Filters& f, std::int64_t nowUs, const Schema& schema = {});
// Newest first; limit 0 means all.
Query eventsQuery(const Filters& f, std::int64_t nowUs, std::int64_t limit, const Schema& schema = {});
Query showQuery(std::int64_t id);
// Rows with afterId < id <= upToId, oldest first: what follow prints on each poll.
Query followQuery(const Filters& f, std::int64_t nowUs, std::int64_t afterId, std::int64_t upToId,
                  const Schema& schema = {});

// Comma-separated list -> trimmed, non-empty names.
std::vector<std::string_view> splitList(std::string_view list);

// --- stats ---------------------------------------------------------------------------

enum class Bucket { kHour, kDay };
inline std::int64_t bucketUs(Bucket b) {
  return (b == Bucket::kHour ? 3600 : 86400) * kUsPerSecond;
}

struct StatsRange {
  std::int64_t sinceUs = 0;
  std::int64_t untilUs = 0;  // exclusive
  Bucket bucket = Bucket::kHour;
  std::int64_t top = 10;
};

// One pass over the range: (verdict, action, error_class, gateway, time_us,
// signature_version, cached) of each row, in time order; the first five counted by
// CubeBuilder, verdict, time and the last two by VersionCounter. Counting in C++ beats
// SQLite's GROUP BY sorter by about 3x here.
Query statsCubeQuery(const StatsRange& r);
// (threats, count) for rows with a threat; (recipients, count) for infected rows.
Query statsThreatsQuery(const StatsRange& r);
Query statsRecipientsQuery(const StatsRange& r);

struct CubeRow {
  std::string verdict;
  std::string action;
  std::string errorClass;
  std::string gateway;
  std::int64_t bucket = 0;  // time_us / bucketUs
  std::int64_t count = 0;
};
// Counts rows per (verdict, action, error_class, gateway, bucket).
class CubeBuilder {
 public:
  explicit CubeBuilder(Bucket bucket) : widthUs_(bucketUs(bucket)) {}
  void add(std::string verdict, std::string action, std::string errorClass, std::string gateway,
           std::int64_t timeUs);
  std::vector<CubeRow> rows() const;

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::int64_t>;
  std::int64_t widthUs_;
  std::map<Key, std::int64_t> counts_;
};

// One signature version's rows: when it first and last answered shows when a reload
// took effect (and a rollback, as two versions whose times overlap).
struct VersionCount {
  std::string version;
  std::int64_t count = 0;
  std::int64_t cached = 0;
  std::int64_t infected = 0;
  std::int64_t errors = 0;
  std::int64_t firstUs = 0;
  std::int64_t lastUs = 0;
  bool operator==(const VersionCount&) const = default;
};
// Counts rows per signature version. Rows come in time order, so a version arrives in long
// runs: the current one is found without a lookup.
class VersionCounter {
 public:
  VersionCounter() = default;
  VersionCounter(const VersionCounter&) = delete;  // current_ points into versions_
  VersionCounter& operator=(const VersionCounter&) = delete;

  void add(std::string_view version, std::string_view verdict, bool cached, std::int64_t timeUs);
  // Ordered by first seen, then version.
  std::vector<VersionCount> rows() const;

 private:
  std::map<std::string, VersionCount, std::less<>> versions_;
  VersionCount* current_ = nullptr;  // map nodes stay put
};

struct ListCount {
  std::string list;  // comma-separated, as stored
  std::int64_t count = 0;
};

// One line of the report. infected/errors only in the gateway, signature_version and time
// sections; cached in total and signature_version; first/last seen in signature_version.
struct StatsRow {
  StatsRow() = default;
  StatsRow(std::string sectionName, std::string keyText, std::int64_t n,
           std::optional<std::int64_t> infectedRows = {}, std::optional<std::int64_t> errorRows = {})
      : section(std::move(sectionName)), key(std::move(keyText)), count(n), infected(infectedRows), errors(errorRows) {}

  std::string section;  // "total", "verdict", "action", "threat", "recipient", "unscanned",
                        // "gateway", "signature_version", "hour"/"day"
  std::string key;
  std::int64_t count = 0;
  std::optional<std::int64_t> infected;
  std::optional<std::int64_t> errors;
  std::optional<std::int64_t> cached;
  std::optional<std::int64_t> firstUs;
  std::optional<std::int64_t> lastUs;
  bool operator==(const StatsRow&) const = default;
};

// The whole report in print order. Time buckets cover the range, empty ones included,
// unless that would be more than kMaxBuckets (then only the non-empty ones).
inline constexpr std::int64_t kMaxBuckets = 10000;
std::vector<StatsRow> summarize(const StatsRange& r, const std::vector<CubeRow>& cube,
                                const std::vector<VersionCount>& versions,
                                const std::vector<ListCount>& threats,
                                const std::vector<ListCount>& recipients);

}  // namespace imapav::logtool
