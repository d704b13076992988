#pragma once
// What the fuzz targets share: the libFuzzer entry point, a check that survives NDEBUG, and
// the split of one input into the pieces a connection would have received.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// assert() is compiled out in release builds; a fuzz finding must not be.
#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (false)

namespace imapav::fuzz {

inline std::string_view asText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// FNV-1a: different inputs get different split points, and a crash replays exactly.
inline std::uint64_t hashOf(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// The input cut into pieces of 1 to 64 bytes (mostly short), at points derived from its
// hash: the same stream in the fragments a socket might deliver.
inline std::vector<std::string_view> randomPieces(std::string_view text) {
  std::vector<std::string_view> pieces;
  std::uint64_t state = hashOf(text) | 1;
  while (!text.empty()) {
    state ^= state << 13;  // xorshift64
    state ^= state >> 7;
    state ^= state << 17;
    const std::size_t len = (state & 0x300) != 0 ? 1 + (state & 7) : 1 + (state & 63);
    pieces.push_back(text.substr(0, len));
    text.remove_prefix(std::min(len, text.size()));
  }
  return pieces;
}

inline std::vector<std::string_view> bytePieces(std::string_view text) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < text.size(); ++i) pieces.push_back(text.substr(i, 1));
  return pieces;
}

// Takes a first line (without its LF) off the front of text: how targets that need a
// second input (a subject tag, a notice subject) read it, so seeds stay readable.
inline std::string_view takeLine(std::string_view& text) {
  const std::size_t lf = text.find('\n');
  const std::string_view line = text.substr(0, lf);
  text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
  return line;
}

}  // namespace imapav::fuzz
