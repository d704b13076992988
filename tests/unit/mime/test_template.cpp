#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "shared/mime/template.hpp"

using imapav::mime::noticeVariables;
using imapav::mime::stripTemplateComments;
using imapav::mime::Template;
using Values = std::map<std::string, std::string, std::less<>>;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(notice_variables_are_the_agreed_names) {
  const std::vector<std::string> expected = {"threats", "sender", "recipients", "subject",
                                             "date",    "message_id", "gateway",  "reason",
                                             "scan_time", "server",   "istag",    "action", "error_class"};
  BOOST_TEST(noticeVariables() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(renders_variables_and_dollars) {
  const auto t = Template::parse("Threats: ${threats}\nCost: $$5, $ alone, $x, ${subject}$",
                                 noticeVariables());
  BOOST_REQUIRE(t.ok());
  const Values v = {{"threats", "Eicar-Signature"}, {"subject", "Hi ${sender}"}};
  // Values are inserted as they are, never expanded again.
  BOOST_TEST(t.value().render(v) ==
             "Threats: Eicar-Signature\nCost: $5, $ alone, $x, Hi ${sender}$");
}

BOOST_AUTO_TEST_CASE(missing_value_renders_empty) {
  const auto t = Template::parse("[${sender}] [${reason}]", noticeVariables());
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t.value().render({{"sender", "a@example.org"}}) == "[a@example.org] []");
  BOOST_TEST((t.value().variables() == std::vector<std::string>{"sender", "reason"}));
}

BOOST_AUTO_TEST_CASE(same_variable_twice) {
  const auto t = Template::parse("${action}/${action}", noticeVariables());
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t.value().render({{"action", "blocked"}}) == "blocked/blocked");
}

BOOST_AUTO_TEST_CASE(unknown_variable_names_it_and_the_line) {
  const auto t = Template::parse("line one\nline two\nHello ${sendr}!\n", noticeVariables());
  BOOST_REQUIRE(!t.ok());
  BOOST_TEST(t.error().text.find("'sendr'") != std::string::npos, t.error().text);
  BOOST_TEST(t.error().text.find("line 3") != std::string::npos, t.error().text);
  BOOST_TEST(t.error().code != 0);
}

BOOST_AUTO_TEST_CASE(unterminated_variable_fails) {
  const auto t = Template::parse("ok ${subject}\nbad ${threats\n}", noticeVariables());
  BOOST_REQUIRE(!t.ok());
  BOOST_TEST(t.error().text.find("unterminated") != std::string::npos, t.error().text);
  BOOST_TEST(t.error().text.find("'threats'") != std::string::npos, t.error().text);
  BOOST_TEST(t.error().text.find("line 2") != std::string::npos, t.error().text);

  const auto atEnd = Template::parse("x ${", noticeVariables());
  BOOST_REQUIRE(!atEnd.ok());
  BOOST_TEST(atEnd.error().text.find("line 1") != std::string::npos, atEnd.error().text);
}

BOOST_AUTO_TEST_CASE(empty_name_fails) {
  const auto t = Template::parse("\n\n\n\n${}", noticeVariables());
  BOOST_REQUIRE(!t.ok());
  BOOST_TEST(t.error().text.find("empty") != std::string::npos, t.error().text);
  BOOST_TEST(t.error().text.find("line 5") != std::string::npos, t.error().text);
}

BOOST_AUTO_TEST_CASE(only_known_variables_are_accepted) {
  BOOST_TEST(Template::parse("${a}${b}", {"a", "b"}).ok());
  BOOST_TEST(!Template::parse("${a}${c}", {"a", "b"}).ok());
  // Names are case-sensitive.
  BOOST_TEST(!Template::parse("${Threats}", noticeVariables()).ok());
}

BOOST_AUTO_TEST_CASE(error_text_is_bounded_and_one_line) {
  const auto t = Template::parse("${" + std::string(500, 'x') + "\x01}", noticeVariables());
  BOOST_REQUIRE(!t.ok());
  BOOST_TEST(t.error().text.size() < 200u);
  BOOST_TEST(t.error().text.find('\x01') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(hash_lines_have_no_meaning_to_parse) {
  const auto t = Template::parse("# ${subject}\n", noticeVariables());
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t.value().render({{"subject", "s"}}) == "# s\n");
}

BOOST_AUTO_TEST_CASE(strip_comments) {
  BOOST_TEST(stripTemplateComments("# a\n#b\r\nBody\n# not a comment\n") ==
             "Body\n# not a comment\n");
  BOOST_TEST(stripTemplateComments("Body\n# x\n") == "Body\n# x\n");
  BOOST_TEST(stripTemplateComments("# only a comment") == "");
  BOOST_TEST(stripTemplateComments("") == "");
  BOOST_TEST(stripTemplateComments(" # indented\n") == " # indented\n");
}

BOOST_AUTO_TEST_CASE(shipped_templates_parse_and_use_the_essentials) {
  for (const char* name : {"virus-notice.txt", "error-notice.txt"}) {
    BOOST_TEST_CONTEXT(name) {
      const std::string file = readFile(std::string(IMAPAV_SOURCE_DIR) + "/conf/templates/" + name);
      const std::string_view body = stripTemplateComments(file);
      BOOST_TEST(body.size() < file.size());  // it documents its variables
      BOOST_TEST(body.find('#') == std::string_view::npos);
      const auto t = Template::parse(body, noticeVariables());
      BOOST_REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().text));
      const auto used = t.value().variables();
      for (const char* v : {"sender", "subject", "date", "message_id", "action"}) {
        BOOST_TEST((std::find(used.begin(), used.end(), v) != used.end()), v);
      }
      // The daemon compiles the files in with CMake's file(CONFIGURE ... @ONLY), which
      // would replace "@name@".
      BOOST_TEST(!std::regex_search(file, std::regex("@[A-Za-z0-9_]+@")));
      // Plain text a mail reader shows well: short lines, no tabs, ASCII only.
      std::istringstream lines{std::string(body)};
      for (std::string line; std::getline(lines, line);) {
        BOOST_TEST(line.size() <= 76u, line);
        for (const char c : line) BOOST_TEST((c >= 32 && c < 127), line);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(shipped_virus_notice_names_threats_and_error_notice_the_reason) {
  const auto uses = [](const char* file, const char* var) {
    const std::string text = readFile(std::string(IMAPAV_SOURCE_DIR) + "/conf/templates/" + file);
    const auto t = Template::parse(stripTemplateComments(text), noticeVariables());
    BOOST_REQUIRE(t.ok());
    const auto used = t.value().variables();
    return std::find(used.begin(), used.end(), var) != used.end();
  };
  BOOST_TEST(uses("virus-notice.txt", "threats"));
  BOOST_TEST(uses("error-notice.txt", "reason"));
}
