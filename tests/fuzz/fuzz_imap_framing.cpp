// One IMAP stream framed as client commands and as server responses (Framer), whole, in
// random pieces and byte by byte: each split must give the same segments and literals.

#include "tests/fuzz/imap_drive.hpp"

namespace {

void frameAllWays(std::string_view stream, imapav::imap::Direction direction) {
  using namespace imapav::fuzz;
  const auto limits = framingLimits(stream, direction);
  const auto whole = frame({stream}, direction, limits);
  const auto split = frame(randomPieces(stream), direction, limits);
  FUZZ_CHECK(split.transcript == whole.transcript && split.error == whole.error);
  if (stream.size() <= 4096) {
    const auto bytes = frame(bytePieces(stream), direction, limits);
    FUZZ_CHECK(bytes.transcript == whole.transcript && bytes.error == whole.error);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto stream = imapav::fuzz::asText(data, size);
  frameAllWays(stream, imapav::imap::Direction::ClientToServer);
  frameAllWays(stream, imapav::imap::Direction::ServerToClient);
  return 0;
}
