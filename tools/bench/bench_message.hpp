#pragma once
// Test mail for the benchmark: a realistic RFC 5322 MIME message (headers, a text part, a
// base64 attachment of pseudo-random bytes) of about a requested size. libclamav caches
// clean results by content hash (of the whole message and of each decoded part), so every
// request must carry different bytes: stamp() writes a per-request token into the headers,
// the text part and the attachment.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace imapav::bench {

// Length of the token stamp() writes: 32 lower-case hex digits (valid base64 too).
inline constexpr std::size_t kStampLength = 32;

struct BenchMessage {
  std::string bytes;
  std::vector<std::size_t> stampOffsets;  // where stamp() writes its token
};

// A message of about `size` bytes (never less than ~1.5 KB), deterministic for a seed.
// infected: the attachment starts with the EICAR test string.
BenchMessage makeMessage(std::size_t size, std::uint64_t seed, bool infected);

// Writes the token for (runId, sequence) at every stamp offset, in place.
void stamp(BenchMessage& message, std::uint64_t runId, std::uint64_t sequence);

// The EICAR test string, assembled at run time so no source file holds it whole.
std::string eicar();

}  // namespace imapav::bench
