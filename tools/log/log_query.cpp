#include "tools/log/log_query.hpp"

#include <algorithm>
#include <ctime>
#include <limits>
#include <set>

namespace imapav::logtool {

namespace {

constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();

Error usageError(std::string text) { return Error{2, std::move(text)}; }

bool isDigit(char c) { return c >= '0' && c <= '9'; }

char asciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Reads exactly n digits at pos; false if there are not n digits.
bool fixedDigits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (!isDigit(c)) return false;
    value = value * 10 + (c - '0');
  }
  pos += n;
  out = value;
  return true;
}

bool isLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

// Howard Hinnant's days_from_civil / civil_from_days.
std::int64_t daysFromCivil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::string twoDigits(int v) {
  std::string s = std::to_string(v);
  return s.size() < 2 ? "0" + s : s;
}

const std::string& columnList() {
  static const std::string list = [] {
    std::string s;
    for (const auto& c : eventColumns()) s += (s.empty() ? "" : ", ") + c;
    return s;
  }();
  return list;
}

void sortByCount(std::vector<StatsRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const StatsRow& a, const StatsRow& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
}

std::vector<StatsRow> rowsOf(const std::string& section, const std::map<std::string, std::int64_t>& m) {
  std::vector<StatsRow> rows;
  for (const auto& [key, count] : m) rows.emplace_back(section, key, count);
  sortByCount(rows);
  return rows;
}

// Names of each list counted once per row, then the top n.
std::vector<StatsRow> topNames(const std::string& section, const std::vector<ListCount>& lists,
                               std::int64_t top) {
  std::map<std::string, std::int64_t> counts;
  for (const auto& l : lists) {
    std::set<std::string_view> seen;
    for (const auto name : splitList(l.list)) {
      if (seen.insert(name).second) counts[std::string(name)] += l.count;
    }
  }
  auto rows = rowsOf(section, counts);
  if (top >= 0 && rows.size() > static_cast<std::size_t>(top)) rows.resize(static_cast<std::size_t>(top));
  return rows;
}

}  // namespace

Result<std::int64_t> parseDurationUs(std::string_view text, bool allowMillis) {
  std::size_t i = 0;
  std::int64_t n = 0;
  while (i < text.size() && isDigit(text[i])) {
    if (n > kMaxInt64 / 10 - 9) return usageError("duration too large: '" + std::string(text) + "'");
    n = n * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0) {
    return usageError("bad duration '" + std::string(text) +
                      "': expected a number and a unit, like 45s, 30m, 2h or 7d");
  }
  const std::string_view unit = text.substr(i);
  std::int64_t unitUs = 0;
  if (unit == "s") unitUs = kUsPerSecond;
  else if (unit == "m") unitUs = 60 * kUsPerSecond;
  else if (unit == "h") unitUs = 3600 * kUsPerSecond;
  else if (unit == "d") unitUs = 86400 * kUsPerSecond;
  else if (unit == "ms" && allowMillis) unitUs = 1000;
  else {
    return usageError("bad duration '" + std::string(text) + "': unit must be " +
                      (allowMillis ? "ms, " : "") + "s, m, h or d");
  }
  if (n > kMaxInt64 / unitUs) return usageError("duration too large: '" + std::string(text) + "'");
  return n * unitUs;
}

Result<TimeSpec> parseTime(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return usageError("empty time");
  // Relative: digits and a unit, no date punctuation.
  if (text.find('-') == std::string_view::npos) {
    auto d = parseDurationUs(text);
    if (!d) {
      return usageError("bad time " + quoted +
                        ": expected 2026-11-28, 2026-11-28T10:00[:00][Z] or 45s/30m/2h/7d");
    }
    TimeSpec spec;
    spec.kind = TimeSpec::Kind::kRelative;
    spec.agoUs = d.value();
    return spec;
  }
  const auto bad = [&](const std::string& why) {
    return usageError("bad time " + quoted + ": " + why);
  };
  CivilTime t;
  std::size_t pos = 0;
  if (!fixedDigits(text, pos, 4, t.year) || pos >= text.size() || text[pos++] != '-' ||
      !fixedDigits(text, pos, 2, t.month) || pos >= text.size() || text[pos++] != '-' ||
      !fixedDigits(text, pos, 2, t.day)) {
    return bad("expected YYYY-MM-DD");
  }
  if (t.year < 1970 || t.month < 1 || t.month > 12 || t.day < 1 ||
      t.day > daysInMonth(t.year, t.month)) {
    return bad("no such date");
  }
  TimeSpec spec;
  spec.kind = TimeSpec::Kind::kLocal;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
    ++pos;
    if (!fixedDigits(text, pos, 2, t.hour) || pos >= text.size() || text[pos++] != ':' ||
        !fixedDigits(text, pos, 2, t.minute)) {
      return bad("expected HH:MM after the date");
    }
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!fixedDigits(text, pos, 2, t.second)) return bad("expected seconds after HH:MM:");
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        int digits = 0;
        while (pos < text.size() && isDigit(text[pos])) {
          if (digits < 6) t.micro = t.micro * 10 + (text[pos] - '0');
          ++digits;
          ++pos;
        }
        if (digits == 0) return bad("expected digits after the decimal point");
        for (int k = digits; k < 6; ++k) t.micro *= 10;
      }
    }
    if (t.hour > 23 || t.minute > 59 || t.second > 59) return bad("no such time of day");
  }
  if (pos < text.size() && text[pos] == 'Z') {
    spec.kind = TimeSpec::Kind::kUtc;
    ++pos;
  }
  if (pos != text.size()) return bad("unexpected '" + std::string(text.substr(pos)) + "'");
  spec.civil = t;
  return spec;
}

std::int64_t utcToUnixUs(const CivilTime& t) {
  const std::int64_t days = daysFromCivil(t.year, t.month, t.day);
  const std::int64_t secs = days * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
  return secs * kUsPerSecond + t.micro;
}

CivilTime unixUsToUtc(std::int64_t us) {
  const std::int64_t secs = floorDiv(us, kUsPerSecond);
  std::int64_t z = floorDiv(secs, 86400);
  const std::int64_t sod = secs - z * 86400;
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  CivilTime t;
  t.year = static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0));
  t.month = static_cast<int>(m);
  t.day = static_cast<int>(d);
  t.hour = static_cast<int>(sod / 3600);
  t.minute = static_cast<int>(sod % 3600 / 60);
  t.second = static_cast<int>(sod % 60);
  t.micro = static_cast<int>(us - secs * kUsPerSecond);
  return t;
}

std::int64_t resolveTime(const TimeSpec& spec, std::int64_t nowUs) {
  switch (spec.kind) {
    case TimeSpec::Kind::kRelative:
      return nowUs - spec.agoUs;
    case TimeSpec::Kind::kUtc:
      return utcToUnixUs(spec.civil);
    case TimeSpec::Kind::kLocal: {
      std::tm tm{};
      tm.tm_year = spec.civil.year - 1900;
      tm.tm_mon = spec.civil.month - 1;
      tm.tm_mday = spec.civil.day;
      tm.tm_hour = spec.civil.hour;
      tm.tm_min = spec.civil.minute;
      tm.tm_sec = spec.civil.second;
      tm.tm_isdst = -1;
      const std::time_t t = std::mktime(&tm);
      if (t == static_cast<std::time_t>(-1)) return utcToUnixUs(spec.civil);
      return static_cast<std::int64_t>(t) * kUsPerSecond + spec.civil.micro;
    }
  }
  return nowUs;
}

std::string formatUtc(std::int64_t us) {
  const CivilTime t = unixUsToUtc(us);
  return std::to_string(t.year) + "-" + twoDigits(t.month) + "-" + twoDigits(t.day) + "T" +
         twoDigits(t.hour) + ":" + twoDigits(t.minute) + ":" + twoDigits(t.second) + "Z";
}

const std::vector<std::string>& eventColumns() {
  static const std::vector<std::string> columns = {
      "id",        "time_us",      "time_iso",       "gateway",          "service",
      "method",    "client_ip",    "user",           "imap_url",         "mailbox",
      "uid_validity", "uid",       "message_id",     "sender",           "recipients",
      "subject",   "size",         "sha256",         "verdict",          "threats",
      "action",    "error_class",  "scan_time_us",   "engine_version",   "signature_version",
      "cached"};
  return columns;
}

std::string recipientMatch(std::string_view address) {
  address = trim(address);
  // unicode61 keeps letters, digits and (tokenchars) "@.-_+"; all else separates tokens.
  const bool hasToken = std::any_of(address.begin(), address.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x80 || isDigit(c) || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
  });
  if (!hasToken) return {};
  std::string phrase = "\"";
  for (const char c : address) {
    if (c == '"') phrase += '"';
    phrase += c;
  }
  return phrase + "\"";
}

Query whereClause(const Filters& f, std::int64_t nowUs, const Schema& schema) {
  Query q;
  std::vector<std::string> conds;
  const auto equal = [&](const char* column, const std::optional<std::string>& value) {
    if (!value) return;
    conds.push_back(std::string(column) + " = ?");
    q.params.emplace_back(*value);
  };
  if (f.since) {
    conds.emplace_back("time_us >= ?");
    q.params.emplace_back(resolveTime(*f.since, nowUs));
  }
  if (f.until) {
    conds.emplace_back("time_us < ?");
    q.params.emplace_back(resolveTime(*f.until, nowUs));
  }
  equal("verdict", f.verdict);
  equal("action", f.action);
  if (f.threat) {
    // "threats <> ''" first: it lets SQLite walk the partial index of rows with a threat.
    conds.push_back(std::string("threats <> '' AND ") + kThreatMatchFunction + "(threats, ?)");
    q.params.emplace_back(*f.threat);
  }
  equal("user", f.user);
  equal("sender", f.sender);
  if (f.recipient) {
    // The FTS5 index (or, without it, a LIKE: ASCII case-insensitive like lower()) finds
    // candidates; the whole-address match inside ",a,b," decides.
    std::string like = "%";
    std::string needle = ",";
    for (const char c : trim(*f.recipient)) {
      if (c == '%' || c == '_' || c == '\\') like += '\\';
      like += c;
      needle += asciiLower(c);
    }
    like += "%";
    needle += ",";
    std::string match = schema.recipientIndex ? recipientMatch(*f.recipient) : std::string();
    if (!match.empty()) {
      conds.emplace_back("id IN (SELECT rowid FROM scan_events_recipients"
                         " WHERE scan_events_recipients MATCH ?)");
      q.params.emplace_back(std::move(match));
    } else {
      conds.emplace_back("recipients LIKE ? ESCAPE '\\'");
      q.params.emplace_back(std::move(like));
    }
    conds.emplace_back("instr(',' || replace(lower(recipients), ' ', '') || ',', ?) > 0");
    q.params.emplace_back(std::move(needle));
  }
  equal("gateway", f.gateway);
  equal("mailbox", f.mailbox);
  equal("message_id", f.messageId);
  equal("error_class", f.errorClass);
  if (f.cached) {
    // A constant, not a parameter: SQLite picks a partial index only for a term it can read.
    conds.emplace_back(*f.cached ? "cached = 1" : "cached = 0");
  }
  equal("signature_version", f.signatureVersion);
  for (std::size_t i = 0; i < conds.size(); ++i) q.sql += (i == 0 ? " WHERE " : " AND ") + conds[i];
  return q;
}

Query eventsQuery(const Filters& f, std::int64_t nowUs, std::int64_t limit, const Schema& schema) {
  Query where = whereClause(f, nowUs, schema);
  Query q;
  q.sql = "SELECT " + columnList() + " FROM scan_events" + where.sql +
          " ORDER BY time_us DESC, id DESC";
  q.params = std::move(where.params);
  if (limit > 0) {
    q.sql += " LIMIT ?";
    q.params.emplace_back(limit);
  }
  return q;
}

Query showQuery(std::int64_t id) {
  return Query{"SELECT " + columnList() + " FROM scan_events WHERE id = ?", {id}};
}

Query followQuery(const Filters& f, std::int64_t nowUs, std::int64_t afterId, std::int64_t upToId,
                  const Schema& schema) {
  Query where = whereClause(f, nowUs, schema);
  Query q;
  q.sql = "SELECT " + columnList() + " FROM scan_events" + where.sql +
          (where.sql.empty() ? " WHERE" : " AND") + " id > ? AND id <= ? ORDER BY id";
  q.params = std::move(where.params);
  q.params.emplace_back(afterId);
  q.params.emplace_back(upToId);
  return q;
}

std::vector<std::string_view> splitList(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = trim(list.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

Query statsCubeQuery(const StatsRange& r) {
  return Query{
      "SELECT verdict, action, error_class, gateway, time_us, signature_version, cached"
      " FROM scan_events WHERE time_us >= ? AND time_us < ? ORDER BY time_us",
      {r.sinceUs, r.untilUs}};
}

void CubeBuilder::add(std::string verdict, std::string action, std::string errorClass,
                      std::string gateway, std::int64_t timeUs) {
  ++counts_[Key{std::move(verdict), std::move(action), std::move(errorClass), std::move(gateway),
                floorDiv(timeUs, widthUs_)}];
}

std::vector<CubeRow> CubeBuilder::rows() const {
  std::vector<CubeRow> out;
  out.reserve(counts_.size());
  for (const auto& [k, n] : counts_) {
    out.push_back(CubeRow{std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), std::get<4>(k), n});
  }
  return out;
}

void VersionCounter::add(std::string_view version, std::string_view verdict, bool cached,
                         std::int64_t timeUs) {
  if (current_ == nullptr || current_->version != version) {
    auto it = versions_.find(version);
    if (it == versions_.end()) {
      const VersionCount first{std::string(version), 0, 0, 0, 0, timeUs, timeUs};
      it = versions_.emplace(first.version, first).first;
    }
    current_ = &it->second;
  }
  VersionCount& v = *current_;
  ++v.count;
  v.cached += cached ? 1 : 0;
  v.infected += verdict == "infected" ? 1 : 0;
  v.errors += verdict == "error" ? 1 : 0;
  v.firstUs = std::min(v.firstUs, timeUs);
  v.lastUs = std::max(v.lastUs, timeUs);
}

std::vector<VersionCount> VersionCounter::rows() const {
  std::vector<VersionCount> out;
  out.reserve(versions_.size());
  for (const auto& [version, v] : versions_) out.push_back(v);
  std::sort(out.begin(), out.end(), [](const VersionCount& a, const VersionCount& b) {
    return a.firstUs != b.firstUs ? a.firstUs < b.firstUs : a.version < b.version;
  });
  return out;
}

Query statsThreatsQuery(const StatsRange& r) {
  return Query{
      "SELECT threats, count(*) FROM scan_events"
      " WHERE threats <> '' AND time_us >= ? AND time_us < ? GROUP BY threats",
      {r.sinceUs, r.untilUs}};
}

Query statsRecipientsQuery(const StatsRange& r) {
  return Query{
      "SELECT recipients, count(*) FROM scan_events"
      " WHERE verdict = 'infected' AND time_us >= ? AND time_us < ? GROUP BY recipients",
      {r.sinceUs, r.untilUs}};
}

std::vector<StatsRow> summarize(const StatsRange& r, const std::vector<CubeRow>& cube,
                                const std::vector<VersionCount>& versions,
                                const std::vector<ListCount>& threats,
                                const std::vector<ListCount>& recipients) {
  std::int64_t total = 0;
  std::map<std::string, std::int64_t> verdicts, actions, unscanned;
  struct Split {
    std::int64_t count = 0, infected = 0, errors = 0;
  };
  std::map<std::string, Split> gateways;
  std::map<std::int64_t, Split> buckets;
  for (const auto& c : cube) {
    total += c.count;
    verdicts[c.verdict] += c.count;
    actions[c.action] += c.count;
    if (c.action == "pass-unscanned") unscanned[c.errorClass] += c.count;
    const std::int64_t infected = c.verdict == "infected" ? c.count : 0;
    const std::int64_t errors = c.verdict == "error" ? c.count : 0;
    for (Split* s : {&gateways[c.gateway], &buckets[c.bucket]}) {
      s->count += c.count;
      s->infected += infected;
      s->errors += errors;
    }
  }

  std::int64_t cached = 0;
  for (const auto& v : versions) cached += v.cached;

  std::vector<StatsRow> out;
  out.emplace_back("total", "", total);
  out.back().cached = cached;
  const auto append = [&out](std::vector<StatsRow> rows) {
    out.insert(out.end(), rows.begin(), rows.end());
  };
  append(rowsOf("verdict", verdicts));
  append(rowsOf("action", actions));
  append(topNames("threat", threats, r.top));
  append(topNames("recipient", recipients, r.top));
  append(rowsOf("unscanned", unscanned));

  std::vector<StatsRow> perGateway;
  for (const auto& [key, s] : gateways) perGateway.emplace_back("gateway", key, s.count, s.infected, s.errors);
  sortByCount(perGateway);
  append(perGateway);
  for (const auto& v : versions) {
    StatsRow& row = out.emplace_back("signature_version", v.version, v.count, v.infected, v.errors);
    row.cached = v.cached;
    row.firstUs = v.firstUs;
    row.lastUs = v.lastUs;
  }

  const std::int64_t width = bucketUs(r.bucket);
  const std::string section = r.bucket == Bucket::kHour ? "hour" : "day";
  const std::int64_t first = floorDiv(r.sinceUs, width);
  const std::int64_t last = floorDiv(r.untilUs - 1, width);
  if (r.untilUs > r.sinceUs && last - first < kMaxBuckets) {
    for (std::int64_t b = first; b <= last; ++b) {
      const auto it = buckets.find(b);
      const Split s = it == buckets.end() ? Split{} : it->second;
      out.emplace_back(section, formatUtc(b * width), s.count, s.infected, s.errors);
    }
  } else {
    for (const auto& [b, s] : buckets) {
      out.emplace_back(section, formatUtc(b * width), s.count, s.infected, s.errors);
    }
  }
  return out;
}

}  // namespace imapav::logtool
