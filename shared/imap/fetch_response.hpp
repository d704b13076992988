#pragma once
// Classifies the items of one server FETCH response (RFC 3501 / RFC 9051 msg-att), segment
// by segment, on top of the Framer: it says which literal carries a whole message (to be
// scanned) and where RFC822.SIZE sits (to be rewritten when a message is replaced).
// I/O-free, never throws, linear in the input with bounded state.
//
// Input model: a response arrives as text segments; every segment but the last ends with a
// literal marker "{N}" / "{N+}" / "~{N}" plus its line end and is followed by that literal,
// which the caller streams past this class (literal bytes are never given to it).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace imapav::imap {

enum class LiteralKind {
  WholeMessage,     // BODY[], RFC822, BINARY[]: the literal is the entire message
  PartialFromZero,  // BODY[]<0>, BINARY[]<0>: a prefix; whole if its size < what was asked
  Other             // a part, header, text, or a string inside ENVELOPE/BODYSTRUCTURE
};

struct LiteralInfo {
  LiteralKind kind = LiteralKind::Other;
  // Upper-cased item name with section and origin, as the server sent it ("BODY[]<0>",
  // "BODY[HEADER.FIELDS (DATE FROM)]"); for a literal inside a list, the enclosing item.
  std::string item;
  std::uint64_t size = 0;
  bool literal8 = false;  // "~{N}" (RFC 3516)
};

struct FetchLimits {
  std::size_t maxItemNameBytes = 1024;  // one item name with its section
  std::size_t maxDepth = 128;           // list nesting (BODYSTRUCTURE of deep multiparts)
};

class FetchResponseParser {
 public:
  struct SizeField {
    std::size_t segmentIndex = 0;  // 0 for the first segment of the response
    std::size_t offset = 0;        // of the number's first digit inside that segment
    std::size_t length = 0;        // digits
    std::uint64_t value = 0;
  };

  explicit FetchResponseParser(FetchLimits limits = {}) : limits_(limits) {}

  // Call for each text segment of one server response, in order (with its line end);
  // isFirst for the first segment, which also resets the parser. Returns false once the
  // response is known not to be a FETCH response ("* <n> FETCH (") or to be malformed;
  // later segments then return false too.
  bool segment(std::string_view text, bool isFirst);

  // The first segment began "* <n> FETCH (" (even if malformed() later).
  bool isFetch() const { return isFetch_; }
  // A FETCH response whose items did not parse. Literals of such a response have no
  // pendingLiteral(): the proxy must not trust it (scan it, or drop the connection).
  bool malformed() const { return malformed_; }
  // The closing ")" and line end were seen: the response is complete and well formed.
  bool complete() const { return complete_; }
  std::uint32_t sequence() const { return sequence_; }

  // After a segment that ends with a literal marker: the item this literal belongs to.
  std::optional<LiteralInfo> pendingLiteral() const { return pending_; }
  // Items seen so far outside literals. Other items (FLAGS, ENVELOPE...) are skipped.
  std::optional<std::uint32_t> uid() const { return uid_; }
  std::optional<SizeField> rfc822Size() const { return rfc822Size_; }

 private:
  enum class Expect {
    ItemName,      // at the top list level, before an item name or ")"
    Value,         // after an item name and its space
    AfterItem,     // after a value at the top level: space or ")"
    LineEnd,       // after the closing ")": only the line end may follow
    Done           // the response is finished (or rejected)
  };

  bool parseHead(std::string_view text, std::size_t& pos);
  bool parseBody(std::string_view text, std::size_t pos);
  // Parses one item name at pos; on success item_ holds it upper-cased.
  bool parseItemName(std::string_view text, std::size_t& pos);
  // A value token at pos (top level or inside a list). Returns false on bad input.
  bool parseValueToken(std::string_view text, std::size_t& pos);
  // A literal marker at pos, which must end the segment.
  bool parseLiteral(std::string_view text, std::size_t pos);
  void finishTopValue(std::string_view text, std::size_t start, std::size_t end);
  bool fail();

  FetchLimits limits_;
  Expect expect_ = Expect::Done;
  std::size_t segmentIndex_ = 0;
  std::size_t depth_ = 0;  // open parentheses inside the current item's value
  std::string item_;       // the item whose value is being read
  bool isFetch_ = false;
  bool malformed_ = false;
  bool complete_ = false;
  std::uint32_t sequence_ = 0;
  std::optional<LiteralInfo> pending_;
  std::optional<std::uint32_t> uid_;
  std::optional<SizeField> rfc822Size_;
};

// The segment with the number at [offset, offset + length) replaced by newValue (for
// "RFC822.SIZE <n>"). The segment unchanged if the range is not all digits.
std::string rewriteNumberAt(std::string_view segment, std::size_t offset, std::size_t length,
                            std::uint64_t newValue);

// The segment with the size in its trailing literal marker ("{123}\r\n", "{123+}\r\n",
// "~{123}\r\n") replaced by newSize. The segment unchanged if it has no such marker.
std::string rewriteLiteralSize(std::string_view segment, std::uint64_t newSize);

}  // namespace imapav::imap
