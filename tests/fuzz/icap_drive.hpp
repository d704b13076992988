#pragma once
// Drives an ICAP parser (request or response) over pieces of one stream the way
// icap-server/connection.cpp does, checks the feed/consumed contract at every step, and
// writes a transcript of the events, so runs over different splits can be compared.

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shared/icap/encapsulated.hpp"
#include "shared/icap/headers.hpp"
#include "shared/icap/http_head.hpp"
#include "shared/icap/request_parser.hpp"
#include "shared/icap/response_parser.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace imapav::fuzz {

inline std::string serialized(const icap::Headers& h) {
  std::string out;
  h.serialize(out);
  return out;
}

// What the server does with a head, and the invariants that make its output safe: header
// blocks and Encapsulated values survive a serialize/parse round trip unchanged.
inline std::string checkHead(const icap::Headers& headers, const icap::Encapsulated& e,
                             const std::string& reqHdr, const std::string& resHdr) {
  std::string text = serialized(headers);
  icap::Headers again;
  FUZZ_CHECK(icap::parseHeaderLines(text + "\r\n", again));
  FUZZ_CHECK(serialized(again) == text);
  const std::string encap = e.format();
  if (!encap.empty()) {
    const auto reparsed = icap::parseEncapsulated(encap);
    FUZZ_CHECK(reparsed && reparsed->format() == encap);
  }
  for (const std::string* raw : {&reqHdr, &resHdr}) {
    text += "|" + *raw;
    if (const auto http = icap::parseHttpHead(*raw)) {
      const std::string once = http->serialize();
      const auto twice = icap::parseHttpHead(once);
      FUZZ_CHECK(twice && twice->serialize() == once);
      text += std::string(http->requestTarget());
    }
  }
  return text;
}

inline std::string describe(const icap::RequestHead& h) {
  std::string s = h.methodText + "|" + h.uri + "|" + h.service + "|" + h.version + "|";
  s += std::to_string(h.preview.value_or(0)) + std::to_string(h.preview.has_value()) +
       std::to_string(h.allow204) + std::to_string(h.connectionClose) + "|";
  return s + checkHead(h.headers, h.encapsulated, h.reqHdr, h.resHdr);
}

inline std::string describe(const icap::ResponseHead& h) {
  FUZZ_CHECK(h.status >= 100 && h.status <= 599);
  const std::string s = h.version + "|" + std::to_string(h.status) + "|" + h.reason + "|";
  return s + checkHead(h.headers, h.encapsulated, h.reqHdr, h.resHdr);
}

struct DriveResult {
  std::string transcript;
  bool error = false;
  std::size_t unconsumed = 0;  // bytes left over when the input ran out
};

// atPreviewReset: answer a preview and drop the request (reset()) instead of asking for
// the rest (continueAfterPreview()). Only RequestParser has PreviewEnd.
template <class Parser>
DriveResult drive(const std::vector<std::string_view>& pieces, const icap::ParserLimits& limits,
                  bool atPreviewReset) {
  using Event = typename Parser::Event;
  constexpr bool kRequest = std::is_same_v<Parser, icap::RequestParser>;
  Parser p(limits);
  DriveResult out;
  std::string pending;
  std::size_t start = 0;  // pending[start..] is not consumed yet
  std::string body;
  std::size_t total = 0;
  for (const auto piece : pieces) total += piece.size();
  std::size_t feeds = 4 * total + 100;  // every feed consumes or reports an event
  for (const auto piece : pieces) {
    pending.erase(0, start);
    start = 0;
    pending.append(piece);
    for (bool more = true; more;) {
      FUZZ_CHECK(feeds-- > 0);
      const std::string_view input = std::string_view(pending).substr(start);
      const auto step = p.feed(input);
      FUZZ_CHECK(step.consumed <= input.size());
      start += step.consumed;
      if (step.event == Event::NeedMore) {
        FUZZ_CHECK(start == pending.size());
        more = false;
      } else if (step.event == Event::Head) {
        out.transcript += "head " + describe(p.head()) + "\n";
        body.clear();
      } else if (step.event == Event::Body) {
        const auto data = p.bodyData();
        FUZZ_CHECK(!data.empty());
        FUZZ_CHECK(data.data() >= input.data() && data.data() + data.size() <= input.data() + step.consumed);
        body.append(data);
      } else if (step.event == Event::Complete) {
        out.transcript += "complete " + std::to_string(hashOf(body)) + " " + std::to_string(body.size());
        if constexpr (kRequest) {
          FUZZ_CHECK(p.bodyBytes() == body.size());
          out.transcript += p.ieof() ? " ieof" : "";
        }
        out.transcript += "\n";
      } else if (step.event == Event::Error) {
        FUZZ_CHECK(!p.errorText().empty());
        if constexpr (kRequest) {
          FUZZ_CHECK(p.errorStatus() == 400 || p.errorStatus() == 413 || p.errorStatus() == 505);
          out.transcript += "error " + std::to_string(p.errorStatus()) + "\n";
        } else {
          out.transcript += "error\n";
        }
        FUZZ_CHECK(p.feed(input.substr(step.consumed)).event == Event::Error);  // stays failed
        out.error = true;
        return out;
      } else {
        if constexpr (kRequest) {
          FUZZ_CHECK(step.event == Event::PreviewEnd);
          FUZZ_CHECK(p.head().preview.has_value());
          out.transcript += "preview-end " + std::to_string(body.size()) + "\n";
          if (atPreviewReset) {
            p.reset();
          } else {
            p.continueAfterPreview();
          }
        }
      }
    }
  }
  out.unconsumed = pending.size() - start;
  return out;
}

// The outcome must not depend on how the stream was split: whole, at random points,
// and (for short inputs) byte by byte.
template <class Parser>
void driveAllWays(std::string_view stream) {
  const std::uint64_t h = hashOf(stream);
  icap::ParserLimits limits;  // the server's defaults (icap.max_header_size = 64k) ...
  if ((h & 1) != 0) {         // ... or small ones, so the limit checks are reached too
    limits.maxLineBytes = 16 + (h >> 8) % 64;
    limits.maxHeaderBytes = 64 + (h >> 16) % 256;
    limits.maxEncapsulatedBytes = 64 + (h >> 24) % 512;
  }
  const bool atPreviewReset = (h & 2) != 0;
  const auto whole = drive<Parser>({stream}, limits, atPreviewReset);
  const auto check = [&](const DriveResult& split) {
    FUZZ_CHECK(split.transcript == whole.transcript);
    FUZZ_CHECK(split.error == whole.error);
    if (!whole.error) FUZZ_CHECK(split.unconsumed == whole.unconsumed);
  };
  check(drive<Parser>(randomPieces(stream), limits, atPreviewReset));
  if (stream.size() <= 4096) check(drive<Parser>(bytePieces(stream), limits, atPreviewReset));
}

}  // namespace imapav::fuzz
