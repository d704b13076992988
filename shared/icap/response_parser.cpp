#include "shared/icap/response_parser.hpp"

#include <algorithm>

#include "shared/icap/wire.hpp"

namespace imapav::icap {

ResponseParser::ResponseParser(ParserLimits limits) : limits_(limits) {}

ResponseParser::Step ResponseParser::fail(std::string text, std::size_t consumed) {
  state_ = State::Failed;
  errorText_ = std::move(text);
  return {consumed, Event::Error};
}

bool ResponseParser::parseStatusLine(std::string_view line) {
  // "ICAP/1.0 200 OK"; the reason may be empty.
  const auto sp = line.find(' ');
  if (sp == std::string_view::npos || !wire::isIcapVersion(line.substr(0, sp))) return false;
  const auto rest = line.substr(sp + 1);
  if (rest.size() < 3 || (rest.size() > 3 && rest[3] != ' ')) return false;
  int status = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (rest[i] < '0' || rest[i] > '9') return false;
    status = status * 10 + (rest[i] - '0');
  }
  if (status < 100 || status > 599) return false;
  head_ = ResponseHead{};
  head_.version = std::string(line.substr(0, sp));
  head_.status = status;
  head_.reason = rest.size() > 4 ? std::string(rest.substr(4)) : std::string();
  return true;
}

ResponseParser::Step ResponseParser::feed(std::string_view data) {
  body_ = {};
  std::size_t pos = 0;
  std::string_view line;
  const auto takeLine = [&] { return wire::takeLine(data, pos, line_, limits_.maxLineBytes, line); };
  for (;;) {
    switch (state_) {
      case State::StatusLine: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail("status line too long", pos);
        if (line.empty()) break;  // stray CRLF between responses
        if (!parseStatusLine(line)) return fail("malformed status line", pos);
        block_.clear();
        headerBytesSeen_ = 0;
        state_ = State::HeaderLines;
        break;
      }
      case State::HeaderLines: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail("ICAP header line too long", pos);
        if (!line.empty()) {
          headerBytesSeen_ += line.size() + 2;
          if (headerBytesSeen_ > limits_.maxHeaderBytes) return fail("ICAP header too large", pos);
          block_.append(line).append("\r\n");
          break;
        }
        if (!parseHeaderLines(block_, head_.headers)) return fail("malformed ICAP header", pos);
        block_.clear();
        // 100 and 204 carry neither Encapsulated nor a body, whatever they say.
        if (head_.status != 100 && head_.status != 204) {
          const auto* value = head_.headers.find("Encapsulated");
          if (!value) return fail("missing Encapsulated header", pos);
          auto e = parseEncapsulated(*value);
          if (!e) return fail("invalid Encapsulated header", pos);
          head_.encapsulated = *e;
        }
        encapNeeded_ = head_.encapsulated.headerBytes();
        if (encapNeeded_ > limits_.maxEncapsulatedBytes) {
          return fail("encapsulated headers too large", pos);
        }
        block_.reserve(encapNeeded_);
        state_ = State::EncapHeaders;
        break;
      }
      case State::EncapHeaders: {
        const auto n = std::min(encapNeeded_ - block_.size(), data.size() - pos);
        block_.append(data.substr(pos, n));
        pos += n;
        if (block_.size() < encapNeeded_) return {pos, Event::NeedMore};
        if (!wire::splitHeads(head_.encapsulated, block_, head_.reqHdr, head_.resHdr)) {
          return fail("encapsulated head does not match its offsets", pos);
        }
        block_.clear();
        state_ = head_.encapsulated.hasBody() ? State::ChunkSize : State::HeadDone;
        return {pos, Event::Head};
      }
      case State::HeadDone:
        state_ = State::StatusLine;
        return {pos, Event::Complete};
      case State::ChunkSize: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail("chunk-size line too long", pos);
        const auto chunk = wire::parseChunkSize(line);
        if (!chunk) return fail("invalid chunk size", pos);
        chunkLeft_ = chunk->size;
        state_ = chunkLeft_ == 0 ? State::Trailer : State::ChunkData;
        break;
      }
      case State::ChunkData: {
        const auto n = std::min(chunkLeft_, data.size() - pos);
        if (n == 0) return {pos, Event::NeedMore};
        body_ = data.substr(pos, n);
        pos += n;
        chunkLeft_ -= n;
        if (chunkLeft_ == 0) state_ = State::ChunkDataEnd;
        return {pos, Event::Body};
      }
      case State::ChunkDataEnd: {
        const auto took = wire::takeChunkEnd(data, pos, sawCr_);
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail("chunk data not followed by CRLF", pos);
        state_ = State::ChunkSize;
        break;
      }
      case State::Trailer: {
        const auto took = takeLine();
        if (took == wire::Take::NeedMore) return {pos, Event::NeedMore};
        if (took == wire::Take::Bad) return fail("trailer line too long", pos);
        if (!line.empty()) break;  // trailer fields carry nothing we use
        state_ = State::StatusLine;
        return {pos, Event::Complete};
      }
      case State::Failed:
        return {pos, Event::Error};
    }
  }
}

void ResponseParser::reset() {
  state_ = State::StatusLine;
  line_.clear();
  block_.clear();
  chunkLeft_ = 0;
  sawCr_ = false;
  body_ = {};
  errorText_.clear();
}

}  // namespace imapav::icap
