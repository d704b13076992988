#pragma once
// Resumable, I/O-free parser for ICAP responses as a client receives them. Used by the
// benchmark client, the tests and the fuzzers; the redirector itself uses libicapapi.
// Same pull model as RequestParser.

#include <cstddef>
#include <string>
#include <string_view>

#include "shared/icap/encapsulated.hpp"
#include "shared/icap/headers.hpp"
#include "shared/icap/request_parser.hpp"

namespace imapav::icap {

struct ResponseHead {
  std::string version;  // "ICAP/1.0"
  int status = 0;
  std::string reason;
  Headers headers;
  Encapsulated encapsulated;  // empty for 100 and 204 (they carry none)
  std::string reqHdr;         // raw encapsulated HTTP heads, "" if absent
  std::string resHdr;
};

class ResponseParser {
 public:
  enum class Event { NeedMore, Head, Body, Complete, Error };
  struct Step {
    std::size_t consumed = 0;
    Event event = Event::NeedMore;
  };

  explicit ResponseParser(ParserLimits limits = {});

  // After Head of a response without body (100, 204, null-body, errors), the next feed()
  // reports Complete without consuming anything.
  Step feed(std::string_view data);
  const ResponseHead& head() const { return head_; }
  std::string_view bodyData() const { return body_; }
  const std::string& errorText() const { return errorText_; }
  void reset();

 private:
  enum class State {
    StatusLine, HeaderLines, EncapHeaders, HeadDone, ChunkSize, ChunkData, ChunkDataEnd,
    Trailer, Failed
  };
  Step fail(std::string text, std::size_t consumed);
  bool parseStatusLine(std::string_view line);

  ParserLimits limits_;
  State state_ = State::StatusLine;
  ResponseHead head_;
  std::string line_;
  std::string block_;
  std::size_t headerBytesSeen_ = 0;
  std::size_t encapNeeded_ = 0;
  std::size_t chunkLeft_ = 0;
  bool sawCr_ = false;  // a CR after chunk data, its LF still to come
  std::string_view body_;
  std::string errorText_;
};

}  // namespace imapav::icap
