// RFC 2047 encoded-words and the text cleaning every logged or tagged value goes through:
// decodeEncodedWords, toValidUtf8, logSafe, decodeBase64.

#include <string>

#include "shared/mime/encoded_word.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

// C0, DEL, C1 (U+0080..U+009F, "\xc2\x80".."\xc2\x9f" in UTF-8), U+2028, U+2029.
bool hasControl(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (u < 0x20 || u == 0x7f || (u == 0xc2 && next >= 0x80 && next <= 0x9f)) return true;
    if (text.substr(i, 3) == "\xe2\x80\xa8" || text.substr(i, 3) == "\xe2\x80\xa9") return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace imapav::mime;
  const auto text = imapav::fuzz::asText(data, size);

  const std::string valid = toValidUtf8(text);
  FUZZ_CHECK(toValidUtf8(valid) == valid);
  if (valid.size() == text.size()) FUZZ_CHECK(valid == text);  // valid input stays as it is

  const std::string safe = logSafe(text);
  FUZZ_CHECK(logSafe(safe) == safe && !hasControl(safe));

  const std::string decoded = decodeEncodedWords(text);
  FUZZ_CHECK(logSafe(decoded) == decoded);

  if (const auto bytes = decodeBase64(text)) FUZZ_CHECK(bytes->size() <= text.size() * 3 / 4);
  return 0;
}
