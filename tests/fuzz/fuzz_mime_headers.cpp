// The header section of a message as the scanning server reads it: parseMessageHeaders
// (with its defaults and with small limits), summarize() for the scan log, and
// notificationBlocker(). Checks the promises their headers make about the output.

#include <string>

#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"
#include "shared/mime/notice.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace imapav;

void checkHeaders(std::string_view message, std::size_t maxBytes, std::size_t maxFields) {
  const auto h = mime::parseMessageHeaders(message, maxBytes, maxFields);
  FUZZ_CHECK(h.fields.size() <= maxFields);
  FUZZ_CHECK(h.bodyOffset <= message.size());
  if (h.complete) FUZZ_CHECK(h.bodyOffset <= maxBytes && message[h.bodyOffset - 1] == '\n');
  if (!h.complete) FUZZ_CHECK(h.bodyOffset == message.size());
  for (const auto& f : h.fields) {
    FUZZ_CHECK(!f.name.empty() && f.raw.starts_with(f.name));
    FUZZ_CHECK(h.find(f.name) != nullptr);
    // Inside raw, every line end is a CRLF followed by the fold's white space.
    for (std::size_t lf = f.raw.find('\n'); lf != std::string::npos; lf = f.raw.find('\n', lf + 1)) {
      FUZZ_CHECK(lf > 0 && f.raw[lf - 1] == '\r' && lf + 1 < f.raw.size());
      FUZZ_CHECK(f.raw[lf + 1] == ' ' || f.raw[lf + 1] == '\t');
    }
    FUZZ_CHECK(f.value().find('\n') == std::string::npos);
  }
}

// A summary member: valid UTF-8, no control characters, bounded.
void checkLogText(const std::string& text) {
  FUZZ_CHECK(text.size() <= mime::kMaxSummaryText);
  FUZZ_CHECK(mime::logSafe(text) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto message = fuzz::asText(data, size);
  checkHeaders(message, 256 * 1024, 1000);  // the defaults every caller uses
  const std::uint64_t h = fuzz::hashOf(message);
  checkHeaders(message, h % (size + 1), 1 + (h >> 32) % 8);

  const auto summary = mime::summarize(message);
  for (const auto* text : {&summary.messageId, &summary.sender, &summary.subject, &summary.date}) {
    checkLogText(*text);
  }
  FUZZ_CHECK(summary.recipients.size() <= mime::kMaxSummaryRecipients);
  for (std::size_t i = 0; i < summary.recipients.size(); ++i) {
    checkLogText(summary.recipients[i]);
    for (std::size_t k = 0; k < i; ++k) FUZZ_CHECK(!mime::iequals(summary.recipients[k], summary.recipients[i]));
  }
  checkLogText(mime::notificationBlocker(message));
  return 0;
}
