#pragma once
// Resumable, I/O-free framer for one direction of an IMAP stream. It splits the stream
// into messages (a command or a response), each made of text segments and literals, so a
// proxy can relay bytes and know exactly where every literal starts and ends. It does not
// interpret commands beyond what framing needs.
//
// Pull model, as icap::RequestParser: feed() consumes bytes until it has one event to
// report and says how many it consumed; the caller drops those bytes and calls feed()
// again with the rest (or with more input after NeedMore). Every consumed byte is handed
// out exactly once, through text() or literalData(), so relaying them reproduces the
// stream byte for byte.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imapav::imap {

enum class Direction { ClientToServer, ServerToClient };

struct FramingLimits {
  std::size_t maxLineBytes = 64 * 1024;         // one text segment, without its CRLF
  std::uint64_t maxLiteralBytes = 1ull << 40;  // the N of one literal
};

class Framer {
 public:
  enum class Event {
    NeedMore,     // every byte given was consumed; feed more
    Text,         // text() holds one segment, its flags say what follows
    LiteralData,  // literalData() holds the next bytes of the current literal
    LiteralEnd,   // the literal is complete (consumes nothing); its message continues
    Error         // errorText() says why; the framer stays failed, close the connection
  };
  struct Step {
    std::size_t consumed = 0;
    Event event = Event::NeedMore;
  };

  explicit Framer(Direction direction, FramingLimits limits = {});

  // Never throws.
  Step feed(std::string_view data);

  // After Text: the segment, from the start of the line (or just after the previous
  // literal) up to and including its line end (CRLF or bare LF). A view into the input
  // when the segment arrived whole in one feed, else into an internal buffer; valid until
  // the next feed() or until that input changes.
  std::string_view text() const { return text_; }
  // The flags below describe the last Text segment and stay valid until the next one.
  // No literal follows: the segment ends its message.
  bool messageEnd() const { return !literalSize_.has_value(); }
  // A literal of this many bytes follows the segment.
  std::optional<std::uint64_t> literalSize() const { return literalSize_; }
  bool literal8() const { return literal8_; }                  // "~{N}" (RFC 3516)
  bool nonSynchronizing() const { return nonSynchronizing_; }  // "{N+}" (RFC 7888)
  // After LiteralData: a view into the input (literal bytes are never buffered).
  std::string_view literalData() const { return literalData_; }
  const std::string& errorText() const { return errorText_; }
  // True when no byte of the next message has been consumed yet: the place where a proxy
  // may inject a line of its own (e.g. an "* OK" keep-alive).
  bool atMessageStart() const { return atMessageStart_; }
  // True while bytes of a segment whose line end has not come yet are buffered inside.
  bool inPartialSegment() const { return state_ == State::Text && !lineDone_ && !line_.empty(); }

 private:
  enum class State {
    Text,     // reading a segment up to its line end
    Literal,  // streaming literal bytes; literalLeft_ of them to go
    Failed    // an error was reported
  };

  Step fail(std::string text, std::size_t consumed);
  // Sets the flags from the finished segment text_; false (and errorText_) if its
  // literal marker is invalid.
  bool classifySegment();
  bool isStatusResponse(std::string_view line) const;

  Direction direction_;
  FramingLimits limits_;
  State state_ = State::Text;
  std::string line_;              // a partial segment carried across feeds
  bool lineDone_ = false;         // line_ holds the segment handed out last time
  bool firstSegment_ = true;      // the segment being read starts a message
  bool atMessageStart_ = true;
  std::uint64_t literalLeft_ = 0;
  std::string_view text_;
  std::string_view literalData_;
  std::optional<std::uint64_t> literalSize_;
  bool literal8_ = false;
  bool nonSynchronizing_ = false;
  std::string errorText_;
};

}  // namespace imapav::imap
