#pragma once
// IMAP URLs (RFC 5092) naming one message: imap://user@host/INBOX;UIDVALIDITY=7/;UID=42.
// The redirector builds them for each scanned message; the scanning server parses them
// into the event log. No I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imapav::imap {

struct ImapUrl {
  std::string user;     // percent-decoded; "" if none
  std::string host;     // with ":port" if given
  std::string mailbox;  // percent-decoded
  std::optional<std::uint32_t> uidValidity;
  std::optional<std::uint32_t> uid;
  std::string section;  // ";SECTION=..." if given, decoded
};

// nullopt unless the text is an imap:// URL with a host.
std::optional<ImapUrl> parseImapUrl(std::string_view text);
// The canonical text form, percent-encoding what RFC 5092 requires.
std::string formatImapUrl(const ImapUrl& url);

}  // namespace imapav::imap
