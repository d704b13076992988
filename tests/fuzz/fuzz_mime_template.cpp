// Notice templates as imapav-icapd loads them (stripTemplateComments, Template::parse with
// the notice variables) and renders them.

#include <algorithm>
#include <map>
#include <string>

#include "shared/mime/template.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace imapav::mime;
  const auto file = imapav::fuzz::asText(data, size);
  const auto text = stripTemplateComments(file);
  FUZZ_CHECK(file.ends_with(text));
  const auto& known = noticeVariables();
  auto parsed = Template::parse(text, known);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().text.find(" on line ") != std::string::npos);
    return 0;
  }
  const Template& t = parsed.value();
  const auto used = t.variables();
  for (const auto& v : used) FUZZ_CHECK(std::find(known.begin(), known.end(), v) != known.end());

  // With no values the result is the literal text, which never grows.
  const std::string bare = t.render({});
  FUZZ_CHECK(bare.size() <= text.size());
  // Values are inserted as they are, never parsed again.
  std::map<std::string, std::string, std::less<>> values;
  for (const auto& v : used) values[v] = "${" + v + "}$$";
  const std::string rendered = t.render(values);
  FUZZ_CHECK(rendered.size() >= bare.size());
  return 0;
}
