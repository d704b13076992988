#pragma once
// Resumable, I/O-free parser for ICAP requests as a server receives them
// (RFC 3507: OPTIONS, REQMOD, RESPMOD), with preview, ieof and pipelining.
//
// Pull model: feed() consumes bytes until it has one event to report, and says how many
// it consumed; the caller drops those bytes and calls feed() again with the rest (or
// with more input after NeedMore). Body data is handed out as a view into the caller's
// input, valid until that input changes.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "shared/icap/encapsulated.hpp"
#include "shared/icap/headers.hpp"

namespace imapav::icap {

enum class Method { Options, Reqmod, Respmod, Other };

struct ParserLimits {
  std::size_t maxLineBytes = 8192;                // any single line, incl. chunk-size lines
  std::size_t maxHeaderBytes = 64 * 1024;         // the ICAP header block
  std::size_t maxEncapsulatedBytes = 256 * 1024;  // req-hdr + res-hdr together
};

struct RequestHead {
  std::string methodText;  // as sent
  Method method = Method::Other;
  std::string uri;      // "icap://host:1344/avscan?x=y"
  std::string service;  // path of the URI without '/' and query: "avscan"
  std::string version;  // "ICAP/1.0"
  Headers headers;
  Encapsulated encapsulated;  // OPTIONS (or Other) without Encapsulated: null-body=0
  std::string reqHdr;         // raw encapsulated HTTP request head, "" if absent
  std::string resHdr;         // raw encapsulated HTTP response head, "" if absent
  std::optional<std::size_t> preview;  // Preview: n
  bool allow204 = false;               // Allow: 204
  bool connectionClose = false;        // Connection: close
};

class RequestParser {
 public:
  enum class Event {
    NeedMore,    // every byte given was consumed; feed more
    Head,        // head() is complete (ICAP headers and encapsulated HTTP heads)
    Body,        // bodyData() holds decoded body bytes
    PreviewEnd,  // the preview ended without ieof: answer 100 Continue, then call
                 // continueAfterPreview(); or answer and call reset()
    Complete,    // the request is complete; the parser is ready for the next one
    Error        // errorStatus()/errorText() say why; the connection must be closed
  };
  struct Step {
    std::size_t consumed = 0;
    Event event = Event::NeedMore;
  };

  explicit RequestParser(ParserLimits limits = {});

  // Never throws on bad input. After Head of a request without a body, the next feed()
  // (its input may be empty) reports Complete without consuming anything.
  Step feed(std::string_view data);

  const RequestHead& head() const { return head_; }
  RequestHead& head() { return head_; }
  std::string_view bodyData() const { return body_; }
  // After Complete: the body ended with "0; ieof" inside the preview.
  bool ieof() const { return ieof_; }
  // Bytes of decoded body so far in this request.
  std::size_t bodyBytes() const { return bodyBytes_; }

  void continueAfterPreview();
  // Drops the current request (e.g. after answering a preview with 204) and waits for
  // the next one. Also clears an error. head() stays readable until the next request.
  void reset();

  // The ICAP status to answer with: 400, 413 (a head over the limits) or 505.
  int errorStatus() const { return errorStatus_; }
  const std::string& errorText() const { return errorText_; }

 private:
  enum class State {
    RequestLine,      // reading "METHOD uri ICAP/1.0"
    HeaderLines,      // ICAP header lines up to the empty line
    EncapHeaders,     // the req-hdr/res-hdr bytes, by Encapsulated offsets
    HeadDone,         // Head reported for a body-less request; Complete comes next
    ChunkSize,        // a chunk-size line with optional extensions
    ChunkData,        // chunk payload
    ChunkDataEnd,     // the CRLF after chunk payload
    Trailer,          // trailer lines after the last chunk, up to the empty line
    AwaitContinue,    // after a preview without ieof, until continueAfterPreview()
    Failed            // a parse error was reported
  };

  Step fail(int status, std::string text, std::size_t consumed);
  // Records an error for fail() and returns false.
  bool reject(int status, const char* text);
  void startRequest();
  bool parseRequestLine(std::string_view line);
  bool finishHeaderBlock();
  bool finishEncapsulated();

  ParserLimits limits_;
  State state_ = State::RequestLine;
  RequestHead head_;
  std::string line_;         // a partial line carried across feeds
  std::string block_;        // the ICAP header block or encapsulated heads being read
  std::size_t headerBytesSeen_ = 0;
  std::size_t encapNeeded_ = 0;
  std::size_t chunkLeft_ = 0;
  bool inPreview_ = false;
  bool lastChunkIeof_ = false;
  bool sawCr_ = false;  // a CR after chunk data, its LF still to come
  bool ieof_ = false;
  std::size_t bodyBytes_ = 0;
  std::string_view body_;
  int errorStatus_ = 0;
  std::string errorText_;
};

}  // namespace imapav::icap
