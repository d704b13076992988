#pragma once
// Framing helpers shared by RequestParser and ResponseParser. Internal to the codec.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "shared/icap/encapsulated.hpp"

namespace imapav::icap::wire {

enum class Take { Ok, NeedMore, Bad };

// Takes the next line (ended by LF; a CR before it is dropped) from data starting at pos.
// A partial line waits in carry across feeds, never more than maxLine + 1 bytes of it.
// On Ok, line points into data or carry and stays valid until the next call with that
// carry. Bad: the line is longer than maxLine.
Take takeLine(std::string_view data, std::size_t& pos, std::string& carry, std::size_t maxLine,
              std::string_view& line);

// Consumes the CRLF (or bare LF) that ends chunk data; sawCr remembers a CR across feeds.
Take takeChunkEnd(std::string_view data, std::size_t& pos, bool& sawCr);

struct ChunkHeader {
  std::size_t size = 0;
  bool ieof = false;
};
// "1a", "0; ieof", "1a;name=value": at most 15 hex digits, then optional extensions.
std::optional<ChunkHeader> parseChunkSize(std::string_view line);

// "ICAP/<digits>.<digits>"
bool isIcapVersion(std::string_view v);

// Cuts the req-hdr/res-hdr blocks out of the encapsulated heads. False when a block does
// not end with an empty line (the offsets do not match what was sent).
bool splitHeads(const Encapsulated& e, std::string_view block, std::string& reqHdr,
                std::string& resHdr);

}  // namespace imapav::icap::wire
