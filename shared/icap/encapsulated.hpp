#pragma once
// The Encapsulated header (RFC 3507 4.4.1): which parts an ICAP message carries, at
// which offsets.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace imapav::icap {

struct Encapsulated {
  std::optional<std::size_t> reqHdr, resHdr, reqBody, resBody, optBody, nullBody;

  // A chunked body follows the headers (req-body, res-body or opt-body).
  bool hasBody() const { return reqBody || resBody || optBody; }
  // Offset at which the body (or null-body) starts: the total size of the header blocks.
  std::size_t headerBytes() const;
  std::string format() const;  // "res-hdr=0, res-body=123"
};

// nullopt on unknown names, duplicates, a first offset other than 0, offsets not strictly
// increasing, more than one body part, a body part that is not last, or no body part at
// all (the size of the last head would be unknown).
std::optional<Encapsulated> parseEncapsulated(std::string_view value);

}  // namespace imapav::icap
