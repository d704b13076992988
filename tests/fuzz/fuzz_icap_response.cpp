// ICAP responses as a client receives them (ResponseParser, used by the bench client and
// the tests), fed whole, in random pieces and byte by byte.

#include "tests/fuzz/icap_drive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  imapav::fuzz::driveAllWays<imapav::icap::ResponseParser>(imapav::fuzz::asText(data, size));
  return 0;
}
