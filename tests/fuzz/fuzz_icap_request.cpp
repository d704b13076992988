// ICAP requests as imapav-icapd receives them (RequestParser, and the Encapsulated, header
// and HTTP head parsers it uses), fed whole, in random pieces and byte by byte; at a
// preview's end the request either continues or is dropped, as the hash of the input says.

#include "tests/fuzz/icap_drive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  imapav::fuzz::driveAllWays<imapav::icap::RequestParser>(imapav::fuzz::asText(data, size));
  return 0;
}
