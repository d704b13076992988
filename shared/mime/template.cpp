#include "shared/mime/template.hpp"

#include <algorithm>
#include <cerrno>

#include "shared/mime/encoded_word.hpp"

namespace imapav::mime {

namespace {

constexpr std::size_t kMaxNameInError = 64;

// A name as it may appear in an error message: one line, bounded.
std::string quoteName(std::string_view name) {
  std::string shown = logSafe(name.substr(0, kMaxNameInError));
  if (name.size() > kMaxNameInError) shown += "...";
  return "'" + shown + "'";
}

Error parseError(std::string what, std::size_t line) {
  return Error{EINVAL, std::move(what) + " on line " + std::to_string(line)};
}

}  // namespace

const std::vector<std::string>& noticeVariables() {
  static const std::vector<std::string> kVariables = {
      "threats", "sender", "recipients", "subject", "date",  "message_id",
      "gateway", "reason", "scan_time",  "server",  "istag", "action", "error_class"};
  return kVariables;
}

std::string_view stripTemplateComments(std::string_view fileText) {
  while (!fileText.empty() && fileText.front() == '#') {
    const std::size_t lf = fileText.find('\n');
    if (lf == std::string_view::npos) return {};
    fileText.remove_prefix(lf + 1);
  }
  return fileText;
}

Result<Template> Template::parse(std::string_view text,
                                 const std::vector<std::string>& knownVariables) {
  Template t;
  std::string literal;
  std::size_t line = 1;
  std::size_t i = 0;
  const auto flushLiteral = [&] {
    if (!literal.empty()) t.parts_.push_back(Part{false, std::move(literal)});
    literal.clear();
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (c != '$' || i + 1 >= text.size()) {
      literal.push_back(c);
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      literal.push_back('$');
      i += 2;
      continue;
    }
    if (text[i + 1] != '{') {
      literal.push_back('$');
      ++i;
      continue;
    }
    const std::size_t nameStart = i + 2;
    std::size_t close = nameStart;
    while (close < text.size() && text[close] != '}' && text[close] != '\n') ++close;
    if (close >= text.size() || text[close] != '}') {
      return parseError("unterminated \"${\" (variable " +
                            quoteName(text.substr(nameStart, close - nameStart)) + ")",
                        line);
    }
    const std::string_view name = text.substr(nameStart, close - nameStart);
    if (name.empty()) return parseError("empty variable name \"${}\"", line);
    if (std::find(knownVariables.begin(), knownVariables.end(), name) == knownVariables.end()) {
      return parseError("unknown variable " + quoteName(name), line);
    }
    flushLiteral();
    t.parts_.push_back(Part{true, std::string(name)});
    i = close + 1;
  }
  flushLiteral();
  return t;
}

std::string Template::render(const std::map<std::string, std::string, std::less<>>& values) const {
  std::string out;
  for (const Part& p : parts_) {
    if (!p.variable) {
      out += p.text;
    } else if (const auto it = values.find(p.text); it != values.end()) {
      out += it->second;
    }
  }
  return out;
}

std::vector<std::string> Template::variables() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (p.variable && std::find(out.begin(), out.end(), p.text) == out.end()) out.push_back(p.text);
  }
  return out;
}

}  // namespace imapav::mime
