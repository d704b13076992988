#pragma once
// Mailbox addresses from RFC 5322 address-list fields, for logging who sent a message
// to whom. Not a validator: it recovers what a mail reader would show.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imapav::mime {

// The addr-specs ("user@example.com", as written, comments and folding white space
// removed) of an address-list field value (From, To, Cc, Reply-To, Sender, Return-Path).
// Understands display names (quoted strings with commas included), nested comments,
// groups ("team: a@x, b@y;", "undisclosed-recipients:;"), angle addresses, obsolete
// routes ("<@relay:user@x>") and domain literals. Entries without a usable addr-spec
// (junk, "<>", bare names) are skipped. At most maxAddresses results. No I/O, never throws.
std::vector<std::string> extractAddresses(std::string_view value, std::size_t maxAddresses = 1000);

}  // namespace imapav::mime
