#pragma once
// imapav-log output: aligned tables, JSON lines, CSV. Pure functions over rows already read;
// every text that reaches the output is made valid UTF-8 (and, for the terminal, stripped
// of control characters: a subject must not be able to move the cursor).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/log/log_query.hpp"

namespace imapav::logtool {

enum class Format { kTable, kJson, kCsv };

// One SQLite value as read: scan_events holds only integers, text and NULL.
struct Value {
  enum class Type { kNull, kInteger, kText };
  Type type = Type::kNull;
  std::int64_t integer = 0;
  std::string text;

  static Value null() { return {}; }
  static Value of(std::int64_t v) { return Value{Type::kInteger, v, {}}; }
  static Value of(std::string v) { return Value{Type::kText, 0, std::move(v)}; }
};
using Row = std::vector<Value>;  // in the order of eventColumns()

// Invalid UTF-8 sequences become U+FFFD.
std::string validUtf8(std::string_view text);
// A quoted JSON string: escapes quotes, backslashes, control characters, U+2028/9.
std::string jsonString(std::string_view text);
// {"id":1,"time_us":...}: integers as numbers, NULL as null.
std::string jsonObject(const std::vector<std::string>& columns, const Row& row);
// RFC 4180 quoting: a field with a comma, quote, CR or LF is quoted, quotes doubled.
std::string csvField(std::string_view text);
// Fields joined by commas, ending in "\n".
std::string csvRecord(const std::vector<std::string>& fields);
// NULL -> "", integers in decimal.
std::string valueText(const Value& v);
std::vector<std::string> rowTexts(const Row& row);

// Code points (a wide CJK character counts one: good enough for log columns).
std::size_t displayWidth(std::string_view utf8);
// For the terminal: control characters become '?', longer than maxWidth ends in "…".
std::string terminalText(std::string_view text, std::size_t maxWidth = SIZE_MAX);
// Columns padded to their widest cell, two spaces apart, header first; rightAligned[i]
// for numbers. No trailing spaces.
std::string renderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& rightAligned = {});

// events in a table: the column subset an operator reads at a glance.
const std::vector<std::string>& eventTableHeaders();
std::vector<std::string> eventTableCells(const Row& row);
std::string renderEventsTable(const std::vector<Row>& rows);
// The same from eventTableCells() of each row (12 strings a row rather than 26 values).
std::string renderEventCells(const std::vector<std::vector<std::string>>& cells);
// follow cannot wait for the widest cell: fixed widths, cells cut to fit.
std::string renderFixedRow(const std::vector<std::string>& cells);
std::string followTableHeader();

// show: one "column  value" line per field, values whole.
std::string renderRecord(const Row& row);

std::string renderEvents(const std::vector<Row>& rows, Format format, bool header = true);

// stats: table as titled sections; JSON as one object per row with a "section" key;
// CSV as section,key,count,infected,errors,cached,first_seen,last_seen.
std::string renderStats(const StatsRange& range, const std::vector<StatsRow>& rows,
                        Format format);

}  // namespace imapav::logtool
