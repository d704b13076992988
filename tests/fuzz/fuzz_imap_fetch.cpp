// Server responses framed as the redirector frames them, each FETCH response classified
// by FetchResponseParser as the redirector does. Checks that the parser agrees with the
// framer on every literal it does not reject, and that the two rewrites the redirector
// applies to a replaced message (RFC822.SIZE, the literal's size) hit what they should.

#include <string>
#include <vector>

#include "shared/imap/fetch_response.hpp"
#include "tests/fuzz/imap_drive.hpp"

namespace {

using namespace imapav;

bool allDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

void checkSegment(const imap::FetchResponseParser& fetch, const fuzz::FramedSegment& seg, bool ok,
                  const std::vector<std::string>& segments) {
  FUZZ_CHECK(ok == !fetch.malformed());
  FUZZ_CHECK(!(fetch.complete() && fetch.malformed()));
  const auto pending = fetch.pendingLiteral();
  if (!fetch.malformed()) {
    // A literal the parser did not see would desynchronise it from the stream.
    FUZZ_CHECK(pending.has_value() == seg.literalSize.has_value());
    if (pending) FUZZ_CHECK(pending->size == *seg.literalSize && pending->literal8 == seg.literal8);
    if (!seg.literalSize) FUZZ_CHECK(fetch.complete());
  }
  if (const auto size = fetch.rfc822Size()) {
    FUZZ_CHECK(size->segmentIndex < segments.size());
    const std::string& text = segments[size->segmentIndex];
    FUZZ_CHECK(allDigits(std::string_view(text).substr(size->offset, size->length)));
    const std::uint64_t newValue = size->value / 2 + 1;
    FUZZ_CHECK(imap::rewriteNumberAt(text, size->offset, size->length, newValue) ==
               text.substr(0, size->offset) + std::to_string(newValue) +
                   text.substr(size->offset + size->length));
  }
  if (seg.literalSize) {
    // The rewritten marker must announce the new size to whoever frames it next.
    const std::uint64_t newSize = *seg.literalSize / 3 + 11;
    const std::string rewritten = imap::rewriteLiteralSize(seg.text, newSize);
    imap::Framer again(imap::Direction::ClientToServer, {~std::size_t{0}, ~std::uint64_t{0}});
    const auto step = again.feed(rewritten);
    FUZZ_CHECK(step.event == imap::Framer::Event::Text && step.consumed == rewritten.size());
    FUZZ_CHECK(again.literalSize() == newSize && again.literal8() == seg.literal8);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto stream = fuzz::asText(data, size);
  imap::FetchResponseParser fetch;
  bool inFetch = false;
  std::vector<std::string> segments;  // of the current response
  fuzz::frame({stream}, imap::Direction::ServerToClient,
              fuzz::framingLimits(stream, imap::Direction::ServerToClient),
              [&](const fuzz::FramedSegment& seg, bool first) {
                if (first) segments.clear();
                if (!first && !inFetch) return;
                segments.push_back(seg.text);
                const bool ok = fetch.segment(seg.text, first);
                if (first) inFetch = fetch.isFetch();
                if (inFetch) checkSegment(fetch, seg, ok, segments);
              });
  return 0;
}
