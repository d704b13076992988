// The notice that replaces a blocked message, built from the message's prefix as the
// scanning server does (buildNotice), and the sender notification (buildNotification).
// Input: a notice subject line, an extra header line "Name: value", then the message,
// which also serves as the notice body. Both results must be well-formed mail: CRLF line
// ends only, no line over 998 bytes, no NUL, a header that parses completely, with one
// Content-Type, and a body that is valid UTF-8.

#include <string>

#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"
#include "shared/mime/notice.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace imapav;

void checkMail(const std::string& mail) {
  FUZZ_CHECK(mail.find('\0') == std::string::npos);
  std::size_t lineStart = 0;
  for (std::size_t i = 0; i < mail.size(); ++i) {
    if (mail[i] == '\r') FUZZ_CHECK(i + 1 < mail.size() && mail[i + 1] == '\n');
    if (mail[i] != '\n') continue;
    FUZZ_CHECK(i > 0 && mail[i - 1] == '\r');
    FUZZ_CHECK(i - 1 - lineStart <= 998);
    lineStart = i + 1;
  }
  FUZZ_CHECK(lineStart == mail.size());  // ends with CRLF
  const auto h = mime::parseMessageHeaders(mail);
  FUZZ_CHECK(h.complete);
  FUZZ_CHECK(h.findAll("Content-Type").size() == 1 && h.findAll("MIME-Version").size() == 1);
  FUZZ_CHECK(h.find("From") != nullptr && h.find("Date") != nullptr);
  const std::string_view body = std::string_view(mail).substr(h.bodyOffset);
  FUZZ_CHECK(mime::toValidUtf8(body) == body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view message = fuzz::asText(data, size);
  const std::string_view subject = fuzz::takeLine(message);
  const std::string_view extra = fuzz::takeLine(message);
  const std::size_t colon = extra.find(':');
  const std::string name(extra.substr(0, colon));
  const std::string value(colon == std::string_view::npos ? std::string_view{} : extra.substr(colon + 1));

  mime::NoticeSpec spec;
  spec.body = std::string(message);
  spec.subject = std::string(subject);
  spec.date = "Sat, 28 Nov 2026 09:07:57 +0000";
  spec.extraHeaders = {{"X-Imapav-Status", "infected"}, {name, value}};
  checkMail(mime::buildNotice(message, spec));

  mime::NotificationSpec n;
  n.from = name;
  n.to = value;
  n.subject = std::string(subject);
  n.body = std::string(message.substr(0, 4096));
  n.date = spec.date;
  n.messageId = std::string(subject);
  n.extraHeaders = spec.extraHeaders;
  const std::string notification = mime::buildNotification(n);
  checkMail(notification);
  FUZZ_CHECK(mime::parseMessageHeaders(notification).findAll("Auto-Submitted").size() == 1);
  return 0;
}
