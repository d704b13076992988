#pragma once
// Drives an IMAP Framer over pieces of one stream the way redirector/session.cpp does and
// checks its promises: the feed/consumed contract, every consumed byte handed out exactly
// once (text() + literalData() reproduce the stream), literals exactly as long as
// announced. Reports each complete message's segments to a callback.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/imap/framing.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace imapav::fuzz {

struct FramedSegment {
  std::string text;
  std::optional<std::uint64_t> literalSize;
  bool literal8 = false;
  bool nonSynchronizing = false;
};

struct FrameResult {
  std::string transcript;  // one line per segment, literal or error
  bool error = false;
};

// The limits the redirector passes (imap.max_line = 64k; client literals up to four times
// scan.max_message_size), or small ones when the input's hash says so.
inline imap::FramingLimits framingLimits(std::string_view stream, imap::Direction d) {
  const std::uint64_t h = hashOf(stream);
  imap::FramingLimits limits{64u << 10, d == imap::Direction::ClientToServer ? 256ull << 20 : 1ull << 40};
  if ((h & 1) != 0) limits = {8 + (h >> 8) % 120, (h >> 16) % 4096};
  return limits;
}

// onSegment(segment, isFirstOfMessage) is called for each Text event.
inline FrameResult frame(const std::vector<std::string_view>& pieces, imap::Direction direction,
                         const imap::FramingLimits& limits,
                         const std::function<void(const FramedSegment&, bool)>& onSegment = {}) {
  imap::Framer f(direction, limits);
  FrameResult out;
  std::string stream;   // everything fed so far
  std::string relayed;  // everything handed out
  std::string pending;
  std::size_t start = 0;
  std::uint64_t literalLeft = 0;
  bool inLiteral = false;
  bool messageStart = true;
  std::string literal;
  std::size_t total = 0;
  for (const auto piece : pieces) total += piece.size();
  std::size_t feeds = 4 * total + 100;
  for (const auto piece : pieces) {
    stream.append(piece);
    pending.erase(0, start);
    start = 0;
    pending.append(piece);
    for (bool more = true; more;) {
      FUZZ_CHECK(feeds-- > 0);
      const std::string_view input = std::string_view(pending).substr(start);
      const auto step = f.feed(input);
      FUZZ_CHECK(step.consumed <= input.size());
      start += step.consumed;
      switch (step.event) {
        case imap::Framer::Event::NeedMore:
          FUZZ_CHECK(start == pending.size());
          more = false;
          break;
        case imap::Framer::Event::Text: {
          FUZZ_CHECK(!inLiteral);
          const auto text = f.text();
          FUZZ_CHECK(text.ends_with('\n'));
          FUZZ_CHECK(text.size() <= limits.maxLineBytes + 2);
          FUZZ_CHECK(f.messageEnd() == !f.literalSize().has_value());
          FUZZ_CHECK(f.atMessageStart() == f.messageEnd());
          relayed.append(text);
          FramedSegment seg{std::string(text), f.literalSize(), f.literal8(), f.nonSynchronizing()};
          if (seg.literalSize) {
            FUZZ_CHECK(*seg.literalSize <= limits.maxLiteralBytes);
            FUZZ_CHECK(!seg.nonSynchronizing || direction == imap::Direction::ClientToServer);
            inLiteral = true;
            literalLeft = *seg.literalSize;
            literal.clear();
          }
          out.transcript += "text " + seg.text + (seg.literalSize ? std::to_string(*seg.literalSize) : "-") +
                            std::to_string(seg.literal8) + std::to_string(seg.nonSynchronizing) + "\n";
          if (onSegment) onSegment(seg, messageStart);
          messageStart = f.messageEnd();
          break;
        }
        case imap::Framer::Event::LiteralData: {
          const auto data = f.literalData();
          FUZZ_CHECK(inLiteral && !data.empty() && data.size() <= literalLeft);
          FUZZ_CHECK(data.data() == input.data() && data.size() == step.consumed);
          literalLeft -= data.size();
          literal.append(data);
          relayed.append(data);
          break;
        }
        case imap::Framer::Event::LiteralEnd:
          FUZZ_CHECK(inLiteral && literalLeft == 0 && step.consumed == 0);
          inLiteral = false;
          out.transcript += "literal " + std::to_string(hashOf(literal)) + "\n";
          break;
        case imap::Framer::Event::Error:
          FUZZ_CHECK(!f.errorText().empty());
          FUZZ_CHECK(f.feed(input.substr(step.consumed)).event == imap::Framer::Event::Error);
          out.transcript += "error " + f.errorText() + "\n";
          out.error = true;
          return out;
      }
    }
  }
  // Byte for byte: what was handed out is the stream, less the start of a line.
  FUZZ_CHECK(stream.starts_with(relayed));
  const std::string_view rest = std::string_view(stream).substr(relayed.size());
  FUZZ_CHECK(inLiteral ? rest.empty() : rest.find('\n') == std::string_view::npos);
  return out;
}

}  // namespace imapav::fuzz
