#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "shared/imap/framing.hpp"

using imapav::imap::Direction;
using imapav::imap::Framer;
using imapav::imap::FramingLimits;

namespace {

using namespace std::string_literals;

constexpr auto kClient = Direction::ClientToServer;
constexpr auto kServer = Direction::ServerToClient;

std::string escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

struct Outcome {
  std::string transcript;             // one line per Text, LiteralEnd and Error event
  std::vector<std::string> literals;  // the data of each literal, in order
  std::string relayed;                // every text() and literalData() byte, in order
  bool error = false;
  std::size_t consumed = 0;
};

bool within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// Drives a framer over input fragments the way a connection would, checking on the way
// the invariants that do not depend on the split.
Outcome drive(const std::vector<std::string_view>& fragments, Direction direction,
              FramingLimits limits) {
  Framer f(direction, limits);
  Outcome out;
  std::string pending;
  std::size_t start = 0;  // pending[start..] is not consumed yet
  std::string literal;
  std::size_t sinceMessageStart = 0;  // bytes consumed since the last message ended
  bool partialSegment = false;        // the current segment was split across feeds
  std::size_t total = 0;
  for (const auto fragment : fragments) total += fragment.size();
  std::size_t guard = 4 * total + 100;
  if (!f.atMessageStart()) BOOST_ERROR("a new framer is not at a message start");
  for (const auto fragment : fragments) {
    pending.erase(0, start);
    start = 0;
    pending.append(fragment);
    for (bool more = true; more;) {
      // Checked with if: these run per byte on large inputs.
      if (guard-- == 0) BOOST_FAIL("framer makes no progress");
      const std::string_view input = std::string_view(pending).substr(start);
      const auto step = f.feed(input);
      if (step.consumed > input.size()) BOOST_FAIL("consumed more than given");
      start += step.consumed;
      out.consumed += step.consumed;
      sinceMessageStart += step.consumed;
      switch (step.event) {
        case Framer::Event::NeedMore:
          if (start != pending.size()) BOOST_ERROR("NeedMore left input unconsumed");
          if (step.consumed > 0) partialSegment = true;
          more = false;
          break;
        case Framer::Event::Text: {
          const auto text = f.text();
          if (text.size() != step.consumed && !partialSegment) {
            BOOST_ERROR("a whole segment's text is not what was consumed");
          }
          if (text.empty() || text.back() != '\n') BOOST_ERROR("segment without line end");
          if (within(text, input) == partialSegment) {
            BOOST_ERROR("text() is a view into the input iff the segment came whole");
          }
          partialSegment = false;
          out.relayed.append(text);
          out.transcript += "T \"" + escape(text) + "\"";
          if (f.messageEnd()) {
            if (f.literalSize() || f.literal8() || f.nonSynchronizing()) {
              BOOST_ERROR("literal flags on a message end");
            }
            out.transcript += " end";
            sinceMessageStart = 0;
          } else {
            out.transcript += " lit=" + std::to_string(*f.literalSize());
            if (f.literal8()) out.transcript += " ~";
            if (f.nonSynchronizing()) out.transcript += " +";
            literal.clear();
          }
          out.transcript += "\n";
          break;
        }
        case Framer::Event::LiteralData:
          if (f.literalData().empty()) BOOST_ERROR("empty LiteralData event");
          if (f.literalData().size() != step.consumed || f.literalData().data() != input.data()) {
            BOOST_ERROR("literalData() is not the consumed input");
          }
          literal.append(f.literalData());
          out.relayed.append(f.literalData());
          break;
        case Framer::Event::LiteralEnd:
          if (step.consumed != 0) BOOST_ERROR("LiteralEnd consumed bytes");
          out.transcript += "L " + std::to_string(literal.size()) + "\n";
          out.literals.push_back(literal);
          break;
        case Framer::Event::Error: {
          out.error = true;
          out.transcript += "E " + f.errorText() + "\n";
          BOOST_TEST(!f.errorText().empty());
          BOOST_TEST(!f.atMessageStart());
          const auto again = f.feed("a1 NOOP\r\n");
          BOOST_TEST((again.event == Framer::Event::Error && again.consumed == 0));
          return out;
        }
      }
      if (f.atMessageStart() != (sinceMessageStart == 0)) {
        BOOST_ERROR("atMessageStart() disagrees with the bytes consumed");
      }
    }
  }
  return out;
}

void requireSame(const Outcome& a, const Outcome& b, const char* mode) {
  BOOST_TEST_CONTEXT(mode) {
    BOOST_TEST(a.transcript == b.transcript);
    BOOST_TEST((a.literals == b.literals));
    BOOST_TEST(a.relayed == b.relayed);
    if (!a.error) BOOST_TEST(a.consumed == b.consumed);
  }
}

// Runs input whole, byte by byte and at random split points (fixed seed); requires the
// same outcome each time and returns the whole-input one.
Outcome driveAllWays(std::string_view input, Direction direction, FramingLimits limits = {},
                     int randomRuns = 25) {
  auto whole = drive({input}, direction, limits);
  // Relaying what was consumed reproduces the stream.
  BOOST_TEST(whole.relayed == input.substr(0, whole.relayed.size()));
  if (!whole.error) BOOST_TEST(whole.consumed == whole.relayed.size());
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  requireSame(whole, drive(bytes, direction, limits), "byte by byte");
  std::mt19937 rng(3501);
  for (int run = 0; run < randomRuns && input.size() > 1; ++run) {
    std::uniform_int_distribution<std::size_t> cutAt(1, input.size() - 1);
    std::uniform_int_distribution<std::size_t> cutCount(1, std::min<std::size_t>(input.size(), 40));
    std::vector<std::size_t> cuts(cutCount(rng));
    for (auto& c : cuts) c = cutAt(rng);
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::string_view> fragments;
    std::size_t from = 0;
    for (const auto c : cuts) {
      fragments.push_back(input.substr(from, c - from));
      from = c;
    }
    fragments.push_back(input.substr(from));
    requireSame(whole, drive(fragments, direction, limits), "random split");
  }
  return whole;
}

struct Case {
  const char* name;
  Direction direction;
  std::string input;
  std::string transcript;
  std::vector<std::string> literals;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

const std::vector<Case> kCases = {
    {"tagged_command", kClient, "a1 NOOP\r\n", "T \"a1 NOOP\\r\\n\" end\n", {}},
    {"login_with_two_literals", kClient, "a2 LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
     "T \"a2 LOGIN {5}\\r\\n\" lit=5\nL 5\nT \" {6}\\r\\n\" lit=6\nL 6\nT \"\\r\\n\" end\n",
     {"alice", "secret"}},
    {"append_non_synchronizing", kClient,
     "a3 APPEND INBOX (\\Seen) {12+}\r\nSubject: x\r\n\r\n",
     "T \"a3 APPEND INBOX (\\Seen) {12+}\\r\\n\" lit=12 +\nL 12\nT \"\\r\\n\" end\n",
     {"Subject: x\r\n"}},
    {"append_literal8", kClient, "a4 APPEND INBOX ~{3}\r\na\0b\r\n"
                                 "a5 APPEND INBOX ~{2+}\r\nxy\r\n"s,
     "T \"a4 APPEND INBOX ~{3}\\r\\n\" lit=3 ~\nL 3\nT \"\\r\\n\" end\n"
     "T \"a5 APPEND INBOX ~{2+}\\r\\n\" lit=2 ~ +\nL 2\nT \"\\r\\n\" end\n",
     {std::string("a\0b", 3), "xy"}},
    {"empty_literal", kClient, "a6 LOGIN {0}\r\n {2}\r\npw\r\n",
     "T \"a6 LOGIN {0}\\r\\n\" lit=0\nL 0\nT \" {2}\\r\\n\" lit=2\nL 2\nT \"\\r\\n\" end\n",
     {"", "pw"}},
    {"fetch_body_then_more_items", kServer,
     "* 1 FETCH (UID 7 BODY[] {11}\r\nhello world FLAGS (\\Seen))\r\n",
     "T \"* 1 FETCH (UID 7 BODY[] {11}\\r\\n\" lit=11\nL 11\n"
     "T \" FLAGS (\\Seen))\\r\\n\" end\n",
     {"hello world"}},
    {"fetch_envelope_and_body_literals", kServer,
     "* 2 FETCH (ENVELOPE (NIL {8}\r\nSubj\xc3\xa9" "ct NIL) BODY[] {4}\r\nabcd UID 9)\r\n",
     "T \"* 2 FETCH (ENVELOPE (NIL {8}\\r\\n\" lit=8\nL 8\nT \" NIL) BODY[] {4}\\r\\n\" lit=4\n"
     "L 4\nT \" UID 9)\\r\\n\" end\n",
     {"Subj\xc3\xa9" "ct", "abcd"}},
    {"literal_holding_crlf_and_marker", kServer,
     "* 3 FETCH (BODY[] {17}\r\nab\r\n{5}\r\n* OK x\r\n)\r\n",
     "T \"* 3 FETCH (BODY[] {17}\\r\\n\" lit=17\nL 17\nT \")\\r\\n\" end\n",
     {"ab\r\n{5}\r\n* OK x\r\n"}},
    {"pipelined_responses", kServer,
     "* 4 EXISTS\r\n* 4 FETCH (BODY[] {2}\r\nhi)\r\na1 OK FETCH done\r\n* LIST () \"/\" {5}\r\n"
     "INBOX\r\n* SEARCH 1 2\r\n",
     "T \"* 4 EXISTS\\r\\n\" end\nT \"* 4 FETCH (BODY[] {2}\\r\\n\" lit=2\nL 2\nT \")\\r\\n\" end\n"
     "T \"a1 OK FETCH done\\r\\n\" end\nT \"* LIST () \"/\" {5}\\r\\n\" lit=5\nL 5\n"
     "T \"\\r\\n\" end\nT \"* SEARCH 1 2\\r\\n\" end\n",
     {"hi", "INBOX"}},
    {"server_status_lines_carry_no_literal", kServer,
     "* OK [ALERT] see {5}\r\na1 OK done {3}\r\n+ {4}\r\n* bye now {1}\r\nA2 bad x {2}\r\n"
     "* PREAUTH {1}\r\n* no {9}\r\n+\r\n",
     "T \"* OK [ALERT] see {5}\\r\\n\" end\nT \"a1 OK done {3}\\r\\n\" end\n"
     "T \"+ {4}\\r\\n\" end\nT \"* bye now {1}\\r\\n\" end\nT \"A2 bad x {2}\\r\\n\" end\n"
     "T \"* PREAUTH {1}\\r\\n\" end\nT \"* no {9}\\r\\n\" end\nT \"+\\r\\n\" end\n",
     {}},
    {"status_words_only_matter_in_the_first_segment", kServer,
     "* 5 FETCH (X {3}\r\nabc* OK {2}\r\nxy+ {1}\r\nz a1 OK {1}\r\nw)\r\n",
     "T \"* 5 FETCH (X {3}\\r\\n\" lit=3\nL 3\nT \"* OK {2}\\r\\n\" lit=2\nL 2\n"
     "T \"+ {1}\\r\\n\" lit=1\nL 1\nT \" a1 OK {1}\\r\\n\" lit=1\nL 1\nT \")\\r\\n\" end\n",
     {"abc", "xy", "z", "w"}},
    {"client_status_like_text_is_a_literal", kClient, "* OK [ALERT] see {5}\r\nhello\r\n",
     "T \"* OK [ALERT] see {5}\\r\\n\" lit=5\nL 5\nT \"\\r\\n\" end\n", {"hello"}},
    {"client_tagged_ok_text_is_a_literal", kClient, "a1 OK done {3}\r\nabc\r\n",
     "T \"a1 OK done {3}\\r\\n\" lit=3\nL 3\nT \"\\r\\n\" end\n", {"abc"}},
    {"bare_lf", kClient, "a1 LOGIN {3}\nbob pw\na2 IDLE\nDONE\n",
     "T \"a1 LOGIN {3}\\n\" lit=3\nL 3\nT \" pw\\n\" end\nT \"a2 IDLE\\n\" end\nT \"DONE\\n\" end\n",
     {"bob"}},
    {"braces_that_are_not_markers", kClient, "a1 SEARCH SUBJECT {x}\r\na2 X }\r\na3 X 5}\r\n",
     "T \"a1 SEARCH SUBJECT {x}\\r\\n\" end\nT \"a2 X }\\r\\n\" end\nT \"a3 X 5}\\r\\n\" end\n", {}},
    {"empty_line_is_a_message", kClient, "\r\na1 NOOP\r\n",
     "T \"\\r\\n\" end\nT \"a1 NOOP\\r\\n\" end\n", {}},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(framing)

BOOST_DATA_TEST_CASE(frames_the_same_however_split, boost::unit_test::data::make(kCases), c) {
  const auto out = driveAllWays(c.input, c.direction);
  BOOST_TEST(!out.error);
  BOOST_TEST(out.transcript == c.transcript);
  BOOST_TEST((out.literals == c.literals));
  BOOST_TEST(out.relayed == c.input);
}

BOOST_AUTO_TEST_CASE(partial_input_waits) {
  const auto out = driveAllWays("a1 APPEND INBOX {10}\r\nabc", kClient);
  BOOST_TEST(!out.error);
  BOOST_TEST(out.transcript == "T \"a1 APPEND INBOX {10}\\r\\n\" lit=10\n");
  BOOST_TEST(out.consumed == 25u);
}

// What the redirector's line timeout looks at: an unfinished line is buffered inside.
BOOST_AUTO_TEST_CASE(an_unfinished_line_is_reported_as_partial) {
  Framer f(Direction::ClientToServer);
  BOOST_TEST(!f.inPartialSegment());
  auto step = f.feed("a1 LOG");
  BOOST_TEST((step.event == Framer::Event::NeedMore && step.consumed == 6u));
  BOOST_TEST(f.inPartialSegment());
  step = f.feed("IN bob pw\r\n");
  BOOST_TEST((step.event == Framer::Event::Text));
  BOOST_TEST(!f.inPartialSegment());
  step = f.feed("a2 APPEND INBOX {3}\r\n");
  BOOST_TEST((step.event == Framer::Event::Text));
  step = f.feed("ab");  // inside a literal: not a partial line
  BOOST_TEST((step.event == Framer::Event::LiteralData));
  BOOST_TEST(!f.inPartialSegment());
}

BOOST_AUTO_TEST_CASE(streams_a_large_literal_without_copying) {
  constexpr std::size_t kSize = 2 * 1024 * 1024;
  std::string data(kSize, 'x');
  for (std::size_t i = 0; i < kSize; i += 997) data[i] = '\n';
  const std::string head = "a1 APPEND INBOX {" + std::to_string(kSize) + "}\r\n";
  const std::string input = head + data + "\r\n";

  const auto out = driveAllWays(input, kClient, {}, 5);
  BOOST_TEST(!out.error);
  BOOST_REQUIRE(out.literals.size() == 1u);
  BOOST_TEST((out.literals[0] == data));
  BOOST_TEST(out.transcript.ends_with("L " + std::to_string(kSize) + "\nT \"\\r\\n\" end\n"));

  // Fed in 64 KiB pieces, every LiteralData view lies inside the piece just given.
  Framer f(kClient);
  std::string_view rest = input;
  std::size_t literalBytes = 0;
  std::size_t events = 0;
  std::string_view piece;
  for (bool done = false; !done;) {
    if (piece.empty()) {
      BOOST_REQUIRE(!rest.empty());
      piece = rest.substr(0, 64 * 1024);
      rest.remove_prefix(piece.size());
    }
    const auto step = f.feed(piece);
    switch (step.event) {
      case Framer::Event::LiteralData:
        BOOST_REQUIRE(f.literalData().data() == piece.data());
        BOOST_REQUIRE(f.literalData().size() == step.consumed);
        literalBytes += step.consumed;
        ++events;
        break;
      case Framer::Event::Text:
        done = f.messageEnd();
        break;
      case Framer::Event::Error:
        BOOST_FAIL(f.errorText());
        break;
      default:
        break;
    }
    piece.remove_prefix(step.consumed);
  }
  BOOST_TEST(literalBytes == kSize);
  BOOST_TEST(events == kSize / (64 * 1024) + 1);  // the head shifts the pieces by one
  BOOST_TEST(rest.empty());
}

BOOST_AUTO_TEST_CASE(line_too_long) {
  const FramingLimits limits{16, 1u << 20};
  // Exactly at the limit (CR excluded), then one byte over.
  const auto ok = driveAllWays("a1 NOOP 45678901\r\n", kClient, limits);
  BOOST_TEST(!ok.error);
  const auto bareOver = driveAllWays("a1 NOOP 456789012\n", kClient, limits);
  BOOST_TEST(bareOver.transcript == "E line too long\n");
  const auto over = driveAllWays("a1 OK\r\na1 NOOP 456789012\r\n", kServer, limits);
  BOOST_TEST(over.transcript == "T \"a1 OK\\r\\n\" end\nE line too long\n");
  // Without any line end the framer gives up instead of buffering.
  const auto endless = driveAllWays(std::string(100, 'a'), kClient, limits);
  BOOST_TEST(endless.transcript == "E line too long\n");
  BOOST_TEST(endless.consumed <= 17u);
  // A literal does not count towards the line, the segment after it does.
  const auto lit = driveAllWays("a1 X {40}\r\n" + std::string(40, 'l') + "\r\n", kClient, limits);
  BOOST_TEST(!lit.error);
  const auto after = driveAllWays("a1 X {1}\r\nl 3456789012345678\r\n", kClient, limits);
  BOOST_TEST(after.transcript == "T \"a1 X {1}\\r\\n\" lit=1\nL 1\nE line too long\n");
}

BOOST_AUTO_TEST_CASE(bad_literal_markers) {
  const FramingLimits limits{1024, 1000};
  BOOST_TEST(driveAllWays("a1 X {1000}\r\n", kClient, limits).transcript ==
             "T \"a1 X {1000}\\r\\n\" lit=1000\n");
  BOOST_TEST(driveAllWays("a1 X {1001}\r\n", kClient, limits).transcript ==
             "E literal too large\n");
  BOOST_TEST(driveAllWays("a1 X {1234567890123456789012345}\r\n", kClient).transcript ==
             "E literal size has too many digits\n");
  // 19 digits still parse (and are then over the default limit); 20 do not.
  BOOST_TEST(driveAllWays("a1 X {9999999999999999999}\r\n", kClient).transcript ==
             "E literal too large\n");
  BOOST_TEST(driveAllWays("a1 X {00000000000000000001}\r\n", kClient).transcript ==
             "E literal size has too many digits\n");
  BOOST_TEST(driveAllWays("a1 X {}\r\n", kClient).transcript == "E bad literal marker\n");
  BOOST_TEST(driveAllWays("a1 X ~{+}\r\n", kClient).transcript == "E bad literal marker\n");
  BOOST_TEST(driveAllWays("* 1 FETCH (BODY[] {5+}\r\n", kServer).transcript ==
             "E non-synchronizing literal from the server\n");
  // Errors found in a later segment of a message.
  BOOST_TEST(driveAllWays("a1 X {1}\r\na {2000}\r\n", kClient, limits).transcript ==
             "T \"a1 X {1}\\r\\n\" lit=1\nL 1\nE literal too large\n");
}

BOOST_AUTO_TEST_CASE(stays_failed) {
  Framer f(kClient, {8, 100});
  BOOST_TEST((f.feed("a1 NOOP NOOP\r\n").event == Framer::Event::Error));
  for (const std::string_view more : {"", "a1 NOOP\r\n", "\r\n"}) {
    const auto step = f.feed(more);
    BOOST_TEST((step.event == Framer::Event::Error));
    BOOST_TEST(step.consumed == 0u);
    BOOST_TEST(f.errorText() == "line too long");
    BOOST_TEST(!f.atMessageStart());
  }
}

BOOST_AUTO_TEST_CASE(message_start_transitions) {
  Framer f(kServer);
  BOOST_TEST(f.atMessageStart());
  auto step = f.feed("");
  BOOST_TEST((step.event == Framer::Event::NeedMore && step.consumed == 0u));
  BOOST_TEST(f.atMessageStart());
  step = f.feed("* 1 FE");
  BOOST_TEST((step.event == Framer::Event::NeedMore && step.consumed == 6u));
  BOOST_TEST(!f.atMessageStart());  // a partial line was consumed (and maybe relayed)
  step = f.feed("TCH (BODY[] {2}\r\nab)\r\n* OK still here\r\n");
  BOOST_TEST((step.event == Framer::Event::Text));
  BOOST_TEST(f.text() == "* 1 FETCH (BODY[] {2}\r\n");
  BOOST_TEST(!f.atMessageStart());
  step = f.feed("ab)\r\n* OK still here\r\n");
  BOOST_TEST((step.event == Framer::Event::LiteralData && step.consumed == 2u));
  BOOST_TEST(!f.atMessageStart());  // never inject inside a literal
  step = f.feed(")\r\n* OK still here\r\n");
  BOOST_TEST((step.event == Framer::Event::LiteralEnd && step.consumed == 0u));
  BOOST_TEST(!f.atMessageStart());
  step = f.feed(")\r\n* OK still here\r\n");
  BOOST_TEST((step.event == Framer::Event::Text && step.consumed == 3u));
  BOOST_TEST(f.messageEnd());
  BOOST_TEST(f.atMessageStart());
  step = f.feed("* OK still here\r\n");
  BOOST_TEST((step.event == Framer::Event::Text && f.messageEnd()));
  BOOST_TEST(f.atMessageStart());
}

BOOST_AUTO_TEST_SUITE_END()
