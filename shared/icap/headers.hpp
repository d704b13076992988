#pragma once
// An ordered, case-insensitive list of header fields, shared by the ICAP and the
// encapsulated HTTP header blocks.

#include <string>
#include <string_view>
#include <vector>

namespace imapav::icap {

struct HeaderField {
  std::string name;
  // The value without leading/trailing white space. A folded value keeps its folds as
  // "\r\n" followed by the continuation line (which starts with SP or HTAB), so it
  // serializes back exactly; X-Violations-Found depends on that.
  std::string value;
};

bool iequals(std::string_view a, std::string_view b);

class Headers {
 public:
  void add(std::string name, std::string value);
  // Replaces every field called name by one field (appended if there was none).
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);
  // The first field called name, or nullptr.
  const std::string* find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  // True when a comma-separated field (e.g. Allow, Connection) lists token.
  bool listHas(std::string_view name, std::string_view token) const;
  const std::vector<HeaderField>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  // Appends "Name: value\r\n" per field.
  void serialize(std::string& out) const;

 private:
  std::vector<HeaderField> fields_;
};

// Parses header lines (no start line) up to and including the empty line that ends
// them. Accepts CRLF and bare LF, folded continuation lines. Returns false on a line
// without a colon, an empty name or a name with white space.
bool parseHeaderLines(std::string_view block, Headers& out);

}  // namespace imapav::icap
