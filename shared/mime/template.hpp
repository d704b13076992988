#pragma once
// Notice templates: plain text with ${name} variables, checked against the variables the
// caller offers when loaded, so a typo fails at start-up rather than in a notice.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shared/common/result.hpp"

namespace imapav::mime {

// The variables the scanning server offers to notice templates: threats, sender,
// recipients, subject, date, message_id, gateway, reason, scan_time, server, istag, action.
const std::vector<std::string>& noticeVariables();

// Template files may open with comment lines starting with '#' that document the
// variables. Template::parse gives '#' no meaning (a notice may well contain one); call
// this on the file's text first. Returns fileText without its leading '#' lines (LF or
// CRLF ended); a line that does not start with '#' ends the comment block.
std::string_view stripTemplateComments(std::string_view fileText);

class Template {
 public:
  Template() = default;  // renders as ""

  // "${name}" is a variable, "$$" a literal '$', any other '$' is literal too. Fails,
  // with Error.text naming the variable and the line, on an unknown variable, an empty
  // name "${}", or a "${" without '}' on the same line.
  static Result<Template> parse(std::string_view text, const std::vector<std::string>& knownVariables);

  // The text with each variable replaced by its value; a variable without a value is "".
  std::string render(const std::map<std::string, std::string, std::less<>>& values) const;

  // The distinct variables the template uses, in order of first use.
  std::vector<std::string> variables() const;

 private:
  struct Part {
    bool variable = false;
    std::string text;  // literal text, or the variable name
  };
  std::vector<Part> parts_;
};

}  // namespace imapav::mime
