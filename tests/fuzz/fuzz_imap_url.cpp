// IMAP URLs (RFC 5092) as imapav-icapd reads them from the encapsulated request line:
// parseImapUrl, and formatImapUrl (the redirector's side), which must give back a URL
// that parses to the same parts.

#include <string>

#include "shared/imap/imap_url.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

bool same(const imapav::imap::ImapUrl& a, const imapav::imap::ImapUrl& b) {
  return a.user == b.user && a.host == b.host && a.mailbox == b.mailbox &&
         a.uidValidity == b.uidValidity && a.uid == b.uid && a.section == b.section;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace imapav::imap;
  const auto url = parseImapUrl(imapav::fuzz::asText(data, size));
  if (!url) return 0;
  FUZZ_CHECK(!url->host.empty());
  const std::string text = formatImapUrl(*url);
  const auto again = parseImapUrl(text);
  FUZZ_CHECK(again && same(*url, *again));
  FUZZ_CHECK(formatImapUrl(*again) == text);
  return 0;
}
