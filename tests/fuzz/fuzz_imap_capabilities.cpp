// Capability filtering as the redirector applies it to the first line of each server
// response: filterCapabilities (default list, then STARTTLS/LOGINDISABLED) and
// addCapability("STARTTLS"). Each line of the input is one response line.

#include <string>
#include <vector>

#include "shared/imap/capabilities.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace imapav::imap;

std::string_view lineEnd(std::string_view line) {
  return line.ends_with("\r\n") ? "\r\n" : line.ends_with('\n') ? "\n" : "";
}

void checkLine(std::string_view line) {
  const std::vector<std::string> tls = {"STARTTLS", "LOGINDISABLED"};
  FUZZ_CHECK(filterCapabilities(line, {}) == line);
  std::string seg = filterCapabilities(line, defaultStrippedCapabilities());
  FUZZ_CHECK(seg.size() <= line.size() && lineEnd(seg) == lineEnd(line));
  FUZZ_CHECK(filterCapabilities(seg, defaultStrippedCapabilities()) == seg);  // nothing left to strip
  seg = filterCapabilities(seg, tls);
  FUZZ_CHECK(filterCapabilities(seg, tls) == seg);
  // addCapability only touches capability lists, so filtering takes its token out again.
  const std::string added = addCapability(seg, "STARTTLS");
  FUZZ_CHECK(addCapability(added, "STARTTLS") == added);
  if (added != seg) {
    FUZZ_CHECK(added.size() == seg.size() + 9 && lineEnd(added) == lineEnd(seg));
    FUZZ_CHECK(filterCapabilities(added, {"STARTTLS"}) == seg);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = imapav::fuzz::asText(data, size);
  while (!text.empty()) {
    const std::size_t lf = text.find('\n');
    const std::size_t len = lf == std::string_view::npos ? text.size() : lf + 1;
    checkLine(text.substr(0, len));
    text.remove_prefix(len);
  }
  return 0;
}
