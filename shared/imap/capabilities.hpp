#pragma once
// Filters capability lists in server responses so the redirector never lets a client
// switch on something it cannot inspect (compression, URLAUTH, NOTIFY...). I/O-free,
// never throws, linear in the line.

#include <string>
#include <string_view>
#include <vector>

namespace imapav::imap {

// The line with the listed capabilities removed, for "* CAPABILITY ...", "* ENABLED ...",
// and a "[CAPABILITY ...]" response code after "* OK", "* PREAUTH", "* BYE" or a tagged
// OK/NO/BAD (greeting, LOGIN, AUTHENTICATE); any other line is returned unchanged.
// Matching is case-insensitive on whole tokens; an entry ending in "=" ("COMPRESS=") is a
// prefix rule removing every token that starts with it ("COMPRESS=DEFLATE"). The keyword,
// the spacing of kept tokens, the text after "]" and the line end stay as they were.
std::string filterCapabilities(std::string_view line, const std::vector<std::string>& remove);

// What the redirector strips by default: COMPRESS=, URLAUTH, URLAUTH=, URL-PARTIAL, UIDONLY,
// NOTIFY, BINARY, IMAP4rev2. STARTTLS is the proxy's own business and is not listed.
const std::vector<std::string>& defaultStrippedCapabilities();

// Returns the line with capability added to a capability list ("* CAPABILITY ...", or a
// "[CAPABILITY ...]" response code of a status response, as filterCapabilities recognises
// them), unless it is there already; other lines unchanged.
std::string addCapability(std::string_view line, std::string_view capability);

}  // namespace imapav::imap
