#pragma once
// Drives a parser over input fragments the way a connection would, and checks that the
// outcome does not depend on how the input was split.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "shared/icap/request_parser.hpp"
#include "shared/icap/response_parser.hpp"

namespace imapav::icap::test {

// What to do at PreviewEnd: ask for the rest, or answer (e.g. 204) and drop the request.
enum class AtPreview { Continue, Reset };

inline std::string describe(const RequestHead& h) {
  std::string s = h.methodText + "|" + h.uri + "|" + h.service + "|" + h.version + "|";
  h.headers.serialize(s);
  s += "|" + h.encapsulated.format() + "|" + h.reqHdr + "|" + h.resHdr + "|";
  s += (h.preview ? std::to_string(*h.preview) : "-") + "|" + std::to_string(h.allow204) +
       std::to_string(h.connectionClose);
  return s;
}

inline std::string describe(const ResponseHead& h) {
  std::string s = h.version + "|" + std::to_string(h.status) + "|" + h.reason + "|";
  h.headers.serialize(s);
  return s + "|" + h.encapsulated.format() + "|" + h.reqHdr + "|" + h.resHdr;
}

template <class Parser>
struct Outcome {
  using Head = std::remove_cvref_t<decltype(std::declval<const Parser&>().head())>;
  std::string transcript;          // one line per event, Body events merged
  std::vector<Head> heads;         // at each Head event
  std::vector<std::string> bodies; // the decoded body so far at each Complete and PreviewEnd
  std::vector<bool> ieof;          // RequestParser::ieof() at each Complete
  bool error = false;
  int errorStatus = 0;
  std::size_t unconsumed = 0;      // bytes left when the input ran out
};

template <class Parser>
Outcome<Parser> drive(const std::vector<std::string_view>& fragments,
                      AtPreview atPreview = AtPreview::Continue, ParserLimits limits = {}) {
  using Event = typename Parser::Event;
  Parser p(limits);
  Outcome<Parser> out;
  std::string pending;
  std::size_t start = 0;  // pending[start..] is not consumed yet
  std::string body;
  std::size_t total = 0;
  for (const auto fragment : fragments) total += fragment.size();
  std::size_t guard = 4 * total + 100;  // no input makes a parser loop without progress
  for (const auto fragment : fragments) {
    pending.erase(0, start);
    start = 0;
    pending.append(fragment);
    for (bool more = true; more;) {
      // Checked with if: these run per byte on large inputs.
      if (guard-- == 0) BOOST_FAIL("parser makes no progress");
      const std::string_view input = std::string_view(pending).substr(start);
      const auto step = p.feed(input);
      if (step.consumed > input.size()) BOOST_FAIL("consumed more than given");
      start += step.consumed;
      switch (step.event) {
        case Event::NeedMore:
          if (start != pending.size()) BOOST_ERROR("NeedMore left input unconsumed");
          more = false;
          break;
        case Event::Head:
          out.heads.push_back(p.head());
          out.transcript += "head " + describe(p.head()) + "\n";
          body.clear();
          break;
        case Event::Body:
          if (p.bodyData().empty()) BOOST_ERROR("empty Body event");
          body.append(p.bodyData());
          break;
        case Event::Complete:
          out.transcript += "complete " + std::to_string(body.size()) + "\n";
          out.bodies.push_back(body);
          if constexpr (std::is_same_v<Parser, RequestParser>) {
            BOOST_TEST(p.bodyBytes() == body.size());
            out.ieof.push_back(p.ieof());
          }
          break;
        case Event::Error:
          out.error = true;
          if constexpr (std::is_same_v<Parser, RequestParser>) out.errorStatus = p.errorStatus();
          BOOST_TEST(!p.errorText().empty());
          out.transcript += "error " + std::to_string(out.errorStatus) + "\n";
          return out;
        default:
          if constexpr (std::is_same_v<Parser, RequestParser>) {
            BOOST_REQUIRE(step.event == RequestParser::Event::PreviewEnd);
            out.transcript += "preview-end " + std::to_string(body.size()) + "\n";
            out.bodies.push_back(body);
            if (atPreview == AtPreview::Continue) {
              p.continueAfterPreview();
            } else {
              p.reset();
              out.transcript += "reset\n";
            }
          }
          break;
      }
    }
  }
  out.unconsumed = pending.size() - start;
  return out;
}

template <class Parser>
void requireSame(const Outcome<Parser>& a, const Outcome<Parser>& b, const char* mode) {
  BOOST_TEST_CONTEXT(mode) {
    BOOST_TEST(a.transcript == b.transcript);
    BOOST_TEST((a.bodies == b.bodies));
    BOOST_TEST((a.ieof == b.ieof));
    BOOST_TEST(a.errorStatus == b.errorStatus);
    if (!a.error) BOOST_TEST(a.unconsumed == b.unconsumed);
  }
}

// Runs input whole, byte by byte and at random split points (fixed seed); requires the
// same outcome each time and returns the whole-input one.
template <class Parser>
Outcome<Parser> driveAllWays(std::string_view input, AtPreview atPreview = AtPreview::Continue,
                             ParserLimits limits = {}, int randomRuns = 30) {
  auto whole = drive<Parser>({input}, atPreview, limits);
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  requireSame(whole, drive<Parser>(bytes, atPreview, limits), "byte by byte");
  std::mt19937 rng(3507);
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
    requireSame(whole, drive<Parser>(fragments, atPreview, limits), "random split");
  }
  return whole;
}

}  // namespace imapav::icap::test
