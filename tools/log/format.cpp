#include "tools/log/format.hpp"

#include <algorithm>
#include <cstdio>

namespace imapav::logtool {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026

// The code point at s[pos] and its length; length 0 for an invalid sequence (the caller
// then replaces one byte). Rejects overlong forms, surrogates and values past U+10FFFF.
struct Decoded {
  std::uint32_t cp = 0;
  std::size_t len = 0;
};
Decoded decode(std::string_view s, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return {b0, 1};
  std::size_t len = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1Fu, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0Fu, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return {};
  }
  if (pos + len > s.size()) return {};
  for (std::size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return {};
    cp = (cp << 6) | (byte(i) & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {};
  return {cp, len};
}

bool isControl(std::uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

std::string hex4(std::uint32_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) s += kHex[(v >> shift) & 0xFu];
  return s;
}

std::string padded(const std::string& cell, std::size_t width, bool right) {
  const std::size_t w = displayWidth(cell);
  const std::string pad(width > w ? width - w : 0, ' ');
  return right ? pad + cell : cell + pad;
}

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Cell cut-offs for the events table; 0 = whole.
struct EventColumn {
  const char* header;
  std::size_t maxWidth;
  bool right;
};
constexpr EventColumn kEventColumns[] = {
    {"ID", 0, true},           {"TIME (UTC)", 0, false}, {"GATEWAY", 15, false},
    {"USER", 24, false},       {"MAILBOX/UID", 24, false}, {"SENDER", 28, false},
    {"SUBJECT", 32, false},    {"VERDICT", 0, false},    {"CACHED", 0, false},
    {"THREATS", 32, false},    {"ACTION", 0, false},     {"ERROR", 0, false}};
// follow's fixed widths, same order.
constexpr std::size_t kFollowWidths[] = {8, 20, 15, 20, 20, 24, 32, 8, 6, 28, 14, 12};

std::size_t columnIndex(std::string_view name) {
  const auto& cols = eventColumns();
  return static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
}

const Value& field(const Row& row, std::string_view name) {
  static const Value kNull;
  const std::size_t i = columnIndex(name);
  return i < row.size() ? row[i] : kNull;
}

std::string statsKey(const std::string& key) { return key.empty() ? "-" : key; }

std::string numberOrEmpty(const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : std::string(); }
std::string utcOrEmpty(const std::optional<std::int64_t>& us) { return us ? formatUtc(*us) : std::string(); }

std::string statsJson(const StatsRange& range, const std::vector<StatsRow>& rows) {
  std::string out = "{\"section\":\"range\",\"since\":" + jsonString(formatUtc(range.sinceUs)) +
                    ",\"until\":" + jsonString(formatUtc(range.untilUs)) + "}\n";
  for (const auto& r : rows) {
    out += "{\"section\":" + jsonString(r.section) + ",\"key\":" + jsonString(r.key) +
           ",\"count\":" + std::to_string(r.count);
    if (r.cached) out += ",\"cached\":" + std::to_string(*r.cached);
    if (r.infected) out += ",\"infected\":" + std::to_string(*r.infected);
    if (r.errors) out += ",\"errors\":" + std::to_string(*r.errors);
    if (r.firstUs) out += ",\"first_seen\":" + jsonString(formatUtc(*r.firstUs));
    if (r.lastUs) out += ",\"last_seen\":" + jsonString(formatUtc(*r.lastUs));
    out += "}\n";
  }
  return out;
}

std::string statsCsv(const StatsRange& range, const std::vector<StatsRow>& rows) {
  // New columns go at the end, so readers of the first five keep working.
  std::string out = csvRecord({"section", "key", "count", "infected", "errors", "cached", "first_seen", "last_seen"});
  out += csvRecord({"range", formatUtc(range.sinceUs) + "/" + formatUtc(range.untilUs), "", "", "", "", "", ""});
  for (const auto& r : rows) {
    out += csvRecord({r.section, r.key, std::to_string(r.count), numberOrEmpty(r.infected), numberOrEmpty(r.errors),
                      numberOrEmpty(r.cached), utcOrEmpty(r.firstUs), utcOrEmpty(r.lastUs)});
  }
  return out;
}

// The rows of one section as an indented table, with the columns its rows carry.
std::string statsSection(const char* keyHeader, const std::vector<const StatsRow*>& rows) {
  bool hasCached = false, split = false, seen = false;
  for (const StatsRow* r : rows) {
    hasCached = hasCached || r->cached.has_value();
    split = split || r->infected.has_value();
    seen = seen || r->firstUs.has_value();
  }
  std::vector<std::string> headers = {keyHeader, "COUNT"};
  std::vector<bool> right = {false, true};
  const auto column = [&](const char* header, bool isNumber) {
    headers.emplace_back(header);
    right.push_back(isNumber);
  };
  if (hasCached) column("CACHED", true);
  if (split) {
    column("INFECTED", true);
    column("ERRORS", true);
  }
  if (seen) {
    column("FIRST SEEN", false);
    column("LAST SEEN", false);
  }
  std::vector<std::vector<std::string>> cells;
  for (const StatsRow* r : rows) {
    std::vector<std::string> c = {terminalText(statsKey(r->key)), std::to_string(r->count)};
    if (hasCached) c.push_back(std::to_string(r->cached.value_or(0)));
    if (split) {
      c.push_back(std::to_string(r->infected.value_or(0)));
      c.push_back(std::to_string(r->errors.value_or(0)));
    }
    if (seen) {
      c.push_back(utcOrEmpty(r->firstUs));
      c.push_back(utcOrEmpty(r->lastUs));
    }
    cells.push_back(std::move(c));
  }
  const std::string table = renderTable(headers, cells, right);
  std::string out;
  std::size_t start = 0;
  while (start < table.size()) {
    const auto end = table.find('\n', start);
    out += "  " + table.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}

// One titled block per section, in the order summarize() produced them.
std::string statsTable(const StatsRange& range, const std::vector<StatsRow>& rows) {
  struct Title {
    const char* section;
    const char* title;
    const char* keyHeader;
  };
  static constexpr Title kTitles[] = {
      {"verdict", "By verdict", "VERDICT"},
      {"action", "By action", "ACTION"},
      {"threat", "Top threats", "THREAT"},
      {"recipient", "Top recipients of infected mail", "RECIPIENT"},
      {"unscanned", "Passed unscanned, by reason", "ERROR CLASS"},
      {"gateway", "By gateway", "GATEWAY"},
      {"signature_version", "By signature version", "SIGNATURE VERSION"},
      {"hour", "By hour (UTC)", "HOUR"},
      {"day", "By day (UTC)", "DAY"}};
  std::int64_t total = 0;
  std::optional<std::int64_t> cached;
  for (const auto& r : rows) {
    if (r.section == "total") {
      total = r.count;
      cached = r.cached;
    }
  }
  std::string out = "Scan events " + formatUtc(range.sinceUs) + " .. " + formatUtc(range.untilUs) + ": " +
                    std::to_string(total) + "\n";
  if (cached) {
    out += "Answered from the verdict cache: " + std::to_string(*cached);
    if (total > 0) {
      char share[32];
      std::snprintf(share, sizeof share, " (%.1f%%)", 100.0 * static_cast<double>(*cached) / static_cast<double>(total));
      out += share;
    }
    out += "\n";
  }
  for (const auto& t : kTitles) {
    std::vector<const StatsRow*> section;
    for (const auto& r : rows) {
      if (r.section == t.section) section.push_back(&r);
    }
    if (section.empty() && (t.section == std::string_view("hour") || t.section == std::string_view("day"))) {
      continue;  // only the --by one is there
    }
    out += "\n" + std::string(t.title) + "\n";
    out += section.empty() ? std::string("  (none)\n") : statsSection(t.keyHeader, section);
  }
  return out;
}

}  // namespace

std::string validUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      out += text[pos++];
      continue;
    }
    const Decoded d = decode(text, pos);
    if (d.len == 0) {
      out += kReplacement;
      ++pos;
    } else {
      out.append(text.substr(pos, d.len));
      pos += d.len;
    }
  }
  return out;
}

std::string jsonString(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (std::size_t pos = 0; pos < text.size();) {
    // Fast path: a run of printable ASCII other than the two that need escaping.
    std::size_t run = pos;
    while (run < text.size()) {
      const auto c = static_cast<unsigned char>(text[run]);
      if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') break;
      ++run;
    }
    if (run > pos) {
      out.append(text.substr(pos, run - pos));
      pos = run;
      continue;
    }
    const Decoded d = decode(text, pos);
    if (d.len == 0) {
      out += "\\ufffd";
      ++pos;
      continue;
    }
    switch (d.cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        // Controls, DEL and the JavaScript line separators as \u escapes.
        if (d.cp < 0x20 || d.cp == 0x7F || d.cp == 0x2028 || d.cp == 0x2029) {
          out += hex4(d.cp);
        } else {
          out.append(text.substr(pos, d.len));
        }
    }
    pos += d.len;
  }
  out += '"';
  return out;
}

std::string valueText(const Value& v) {
  switch (v.type) {
    case Value::Type::kNull: return {};
    case Value::Type::kInteger: return std::to_string(v.integer);
    case Value::Type::kText: return v.text;
  }
  return {};
}

std::vector<std::string> rowTexts(const Row& row) {
  std::vector<std::string> out;
  out.reserve(row.size());
  for (const auto& v : row) out.push_back(valueText(v));
  return out;
}

std::string jsonObject(const std::vector<std::string>& columns, const Row& row) {
  std::string out = "{";
  for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
    if (i > 0) out += ',';
    out += jsonString(columns[i]) + ':';
    const Value& v = row[i];
    if (v.type == Value::Type::kNull) out += "null";
    else if (v.type == Value::Type::kInteger) out += std::to_string(v.integer);
    else out += jsonString(v.text);
  }
  out += '}';
  return out;
}

std::string csvField(std::string_view text) {
  const std::string valid = validUtf8(text);
  if (valid.find_first_of(",\"\r\n") == std::string::npos) return valid;
  std::string out = "\"";
  for (const char c : valid) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csvRecord(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += csvField(fields[i]);
  }
  out += '\n';
  return out;
}

std::size_t displayWidth(std::string_view utf8) {
  std::size_t n = 0;
  for (const char c : utf8) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string terminalText(std::string_view text, std::size_t maxWidth) {
  if (maxWidth == 0) return {};
  std::string out;
  std::size_t width = 0;
  std::size_t keep = 0;  // bytes before the last column, where an ellipsis would go
  for (std::size_t pos = 0; pos < text.size();) {
    if (width + 1 == maxWidth) keep = out.size();
    if (width == maxWidth) {
      out.resize(keep);
      return out += kEllipsis;
    }
    const Decoded d = decode(text, pos);
    if (d.len == 0) out += kReplacement;
    else if (isControl(d.cp)) out += '?';
    else out.append(text.substr(pos, d.len));
    pos += d.len == 0 ? 1 : d.len;
    ++width;
  }
  return out;
}

std::string renderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& rightAligned) {
  std::vector<std::size_t> widths(headers.size(), 0);
  for (std::size_t i = 0; i < headers.size(); ++i) widths[i] = displayWidth(headers[i]);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], displayWidth(r[i]));
    }
  }
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      if (i > 0) out += "  ";
      const bool right = i < rightAligned.size() && rightAligned[i];
      out += padded(i < cells.size() ? cells[i] : std::string(), widths[i], right);
    }
    return rtrim(std::move(out)) + "\n";
  };
  std::string out = line(headers);
  for (const auto& r : rows) out += line(r);
  return out;
}

const std::vector<std::string>& eventTableHeaders() {
  static const std::vector<std::string> headers = [] {
    std::vector<std::string> h;
    for (const auto& c : kEventColumns) h.emplace_back(c.header);
    return h;
  }();
  return headers;
}

std::vector<std::string> eventTableCells(const Row& row) {
  const auto text = [&](std::string_view name) { return valueText(field(row, name)); };
  const Value& time = field(row, "time_us");
  std::string mailbox = text("mailbox");
  if (field(row, "uid").type != Value::Type::kNull) mailbox += "/" + text("uid");
  // "yes" or "-": an answer from the verdict cache stands out in a column of scans.
  const Value& cached = field(row, "cached");
  const bool hit = cached.type == Value::Type::kInteger && cached.integer != 0;
  const std::string raw[] = {text("id"),     time.type == Value::Type::kInteger ? formatUtc(time.integer) : "",
                             text("gateway"), text("user"), mailbox, text("sender"), text("subject"),
                             text("verdict"), hit ? "yes" : "", text("threats"), text("action"),
                             text("error_class")};
  std::vector<std::string> cells;
  for (std::size_t i = 0; i < std::size(raw); ++i) {
    const std::size_t max = kEventColumns[i].maxWidth;
    std::string cell = terminalText(raw[i], max == 0 ? SIZE_MAX : max);
    cells.push_back(cell.empty() ? "-" : std::move(cell));
  }
  return cells;
}

std::string renderEventsTable(const std::vector<Row>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  for (const auto& r : rows) cells.push_back(eventTableCells(r));
  return renderEventCells(cells);
}

std::string renderEventCells(const std::vector<std::vector<std::string>>& cells) {
  std::vector<bool> right;
  for (const auto& c : kEventColumns) right.push_back(c.right);
  return renderTable(eventTableHeaders(), cells, right);
}

std::string renderFixedRow(const std::vector<std::string>& cells) {
  std::string out;
  for (std::size_t i = 0; i < cells.size() && i < std::size(kFollowWidths); ++i) {
    if (i > 0) out += "  ";
    const std::size_t w = kFollowWidths[i];
    out += padded(terminalText(cells[i], w), w, kEventColumns[i].right);
  }
  return rtrim(std::move(out)) + "\n";
}

std::string followTableHeader() { return renderFixedRow(eventTableHeaders()); }

std::string renderRecord(const Row& row) {
  std::vector<std::vector<std::string>> cells;
  const auto& cols = eventColumns();
  for (std::size_t i = 0; i < cols.size() && i < row.size(); ++i) {
    const Value& v = row[i];
    cells.push_back({cols[i], v.type == Value::Type::kNull ? "NULL" : terminalText(valueText(v))});
  }
  return renderTable({"FIELD", "VALUE"}, cells);
}

std::string renderEvents(const std::vector<Row>& rows, Format format, bool header) {
  switch (format) {
    case Format::kTable:
      return renderEventsTable(rows);
    case Format::kJson: {
      std::string out;
      for (const auto& r : rows) out += jsonObject(eventColumns(), r) + "\n";
      return out;
    }
    case Format::kCsv: {
      std::string out = header ? csvRecord(eventColumns()) : std::string();
      for (const auto& r : rows) out += csvRecord(rowTexts(r));
      return out;
    }
  }
  return {};
}

std::string renderStats(const StatsRange& range, const std::vector<StatsRow>& rows,
                        Format format) {
  switch (format) {
    case Format::kJson: return statsJson(range, rows);
    case Format::kCsv: return statsCsv(range, rows);
    case Format::kTable: return statsTable(range, rows);
  }
  return {};
}

}  // namespace imapav::logtool
