#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <iosfwd>
#include <random>
#include <string>
#include <vector>

#include "shared/mime/message_headers.hpp"
#include "shared/mime/subject_tag.hpp"

namespace bdata = boost::unit_test::data;
using namespace std::string_literals;
using imapav::mime::appendSubjectTag;
using imapav::mime::isMessagePartial;
using imapav::mime::kMaxSubjectTagBytes;
using imapav::mime::parseMessageHeaders;
using imapav::mime::subjectOf;

namespace {

struct TagCase {
  std::string name;
  std::string message;
  std::string tag;
  std::string expected;
};

std::ostream& operator<<(std::ostream& os, const TagCase& c) { return os << c.name; }

const std::string kBody = "--XYZ\r\nContent-Type: text/plain\r\n\r\nSubject: not a header\r\n";

// Lines of text split on LF (a CR before it dropped).
std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t lf = text.find('\n', pos);
    if (lf == std::string::npos) lf = text.size();
    std::string line = text.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    pos = lf + 1;
  }
  return lines;
}

// The body (bytes after the header) of in and out are identical.
void checkBodyKept(const std::string& in, const std::string& out) {
  const auto hin = parseMessageHeaders(in);
  const auto hout = parseMessageHeaders(out);
  BOOST_TEST(hin.complete == hout.complete);
  if (hin.complete) {
    BOOST_TEST(in.substr(hin.bodyOffset) == out.substr(hout.bodyOffset));
  }
}

const std::vector<TagCase> kTagCases = {
    {"plain crlf", "From: a@b.example\r\nSubject: Hello\r\nTo: c@d.example\r\n\r\n" + kBody,
     "[UNSCANNED]",
     "From: a@b.example\r\nSubject: Hello [UNSCANNED]\r\nTo: c@d.example\r\n\r\n" + kBody},
    {"lower-case name", "subject: hi\r\n\r\n" + kBody, "[T]", "subject: hi [T]\r\n\r\n" + kBody},
    {"folded", "Subject: first\r\n second\r\n\tthird\r\nTo: x@y\r\n\r\n" + kBody, "[T]",
     "Subject: first\r\n second\r\n\tthird [T]\r\nTo: x@y\r\n\r\n" + kBody},
    {"encoded word B", "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\n" + kBody, "[T]",
     "Subject: =?UTF-8?B?R3LDvMOfZQ==?= [T]\r\n\r\n" + kBody},
    {"encoded word Q", "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\n\r\n" + kBody, "[T]",
     "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= [T]\r\n\r\n" + kBody},
    {"non-ascii tag", "Subject: Hello\r\n\r\n" + kBody, "[ungepr\xC3\xBC" "ft]",
     "Subject: Hello =?UTF-8?B?W3VuZ2VwcsO8ZnRd?=\r\n\r\n" + kBody},
    {"non-ascii tag after encoded word", "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\n" + kBody,
     "[ungepr\xC3\xBC" "ft]",
     "Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?B?IFt1bmdlcHLDvGZ0XQ==?=\r\n\r\n" + kBody},
    {"ascii tag with =? is encoded", "Subject: Hi\r\n\r\n" + kBody, "=?x?=",
     "Subject: Hi =?UTF-8?B?PT94Pz0=?=\r\n\r\n" + kBody},
    {"trailing white space", "Subject: Hi \r\n\r\n" + kBody, "[T]",
     "Subject: Hi [T]\r\n\r\n" + kBody},
    {"empty subject", "Subject:\r\n\r\n" + kBody, "[T]", "Subject: [T]\r\n\r\n" + kBody},
    {"subject of one space", "Subject: \r\n\r\n" + kBody, "[T]", "Subject: [T]\r\n\r\n" + kBody},
    {"missing subject with body", "From: a@b\r\nTo: c@d\r\n\r\n" + kBody, "[T]",
     "From: a@b\r\nTo: c@d\r\nSubject: [T]\r\n\r\n" + kBody},
    {"missing subject, body mentions one", "From: a@b\r\n\r\nSubject: x\r\n", "[T]",
     "From: a@b\r\nSubject: [T]\r\n\r\nSubject: x\r\n"},
    {"missing subject, no header at all", "\r\nbody\r\n", "[T]", "Subject: [T]\r\n\r\nbody\r\n"},
    {"missing subject, header only", "From: a@b\r\nTo: c@d\r\n", "[T]",
     "From: a@b\r\nTo: c@d\r\nSubject: [T]\r\n"},
    {"missing subject, header only, no final line end", "From: a@b\r\nTo: c@d", "[T]",
     "From: a@b\r\nTo: c@d\r\nSubject: [T]\r\n"},
    {"missing subject, stray CR at end", "To: c@d\r\n\r", "[T]", "To: c@d\r\nSubject: [T]\r\n\r"},
    {"empty message", "", "[T]", "Subject: [T]\r\n"},
    {"subject, header only, no final line end", "Subject: Hi", "[T]", "Subject: Hi [T]"},
    {"lf only", "From: a@b\nSubject: Hi\n there\n\nbody\n", "[T]",
     "From: a@b\nSubject: Hi\n there [T]\n\nbody\n"},
    {"lf only, missing subject", "From: a@b\n\nbody\n", "[T]",
     "From: a@b\nSubject: [T]\n\nbody\n"},
    {"lf only, folded long", "Subject: " + std::string(70, 'x') + "\n\nb", "[T]",
     "Subject: " + std::string(70, 'x') + "\n [T]\n\nb"},
    {"mbox From line", "From a@b Sat Nov 28 09:00:00 2026\r\nSubject: Hi\r\n\r\n" + kBody, "[T]",
     "From a@b Sat Nov 28 09:00:00 2026\r\nSubject: Hi [T]\r\n\r\n" + kBody},
    {"mbox From line, missing subject", "From a@b Sat Nov 28 09:00:00 2026\r\nTo: c@d\r\n\r\nx",
     "[T]", "From a@b Sat Nov 28 09:00:00 2026\r\nTo: c@d\r\nSubject: [T]\r\n\r\nx"},
    {"two subjects", "Subject: one\r\nSubject: two\r\n\r\n" + kBody, "[T]",
     "Subject: one [T]\r\nSubject: two\r\n\r\n" + kBody},
    {"continuation after garbage is not the subject's", "Subject: a\r\ngarbage\r\n b\r\n\r\nx",
     "[T]", "Subject: a [T]\r\ngarbage\r\n b\r\n\r\nx"},
    // "Subject: " is 9 bytes: 65 + 9 + 4 = 78 fits, 66 does not.
    {"line of exactly 78", "Subject: " + std::string(65, 'x') + "\r\n\r\nb", "[T]",
     "Subject: " + std::string(65, 'x') + " [T]\r\n\r\nb"},
    {"line of 79 folds", "Subject: " + std::string(66, 'x') + "\r\n\r\nb", "[T]",
     "Subject: " + std::string(66, 'x') + "\r\n [T]\r\n\r\nb"},
    {"fold on a folded field's last line",
     "Subject: a\r\n " + std::string(76, 'y') + "\r\n\r\nb", "[T]",
     "Subject: a\r\n " + std::string(76, 'y') + "\r\n [T]\r\n\r\nb"},
    {"crlf injection", "Subject: Hi\r\n\r\n" + kBody, "[T]\r\nBcc: evil@x\r\n\r\nbody",
     "Subject: Hi [T]  Bcc: evil@x    body\r\n\r\n" + kBody},
    {"control characters and padding", "Subject: Hi\r\n\r\nb", " \t[T]\x01\x7F" "x\0y\t "s,
     "Subject: Hi [T]  x y\r\n\r\nb"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(subject_tag)

BOOST_DATA_TEST_CASE(tags_as_expected, bdata::make(kTagCases), c) {
  const std::string out = appendSubjectTag(c.message, c.tag);
  BOOST_TEST(out == c.expected);
  checkBodyKept(c.message, out);
  // The tag never adds or removes a field, except the Subject it adds.
  const auto hin = parseMessageHeaders(c.message);
  const auto hout = parseMessageHeaders(out);
  BOOST_TEST(hout.fields.size() == hin.fields.size() + (hin.find("Subject") ? 0U : 1U));
  BOOST_TEST(hout.findAll("Subject").size() == std::max<std::size_t>(1, hin.findAll("Subject").size()));
}

BOOST_AUTO_TEST_CASE(decoded_subjects) {
  BOOST_TEST(subjectOf(appendSubjectTag("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\n", "[T]")) ==
             "Gr\xC3\xBC\xC3\x9F" "e [T]");
  BOOST_TEST(subjectOf(appendSubjectTag("Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\n\r\n", "[T]")) ==
             "Gr\xC3\xBC\xC3\x9F" "e [T]");
  // An encoded tag right after an encoded word keeps its separating space when decoded.
  BOOST_TEST(subjectOf(appendSubjectTag("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\n",
                                        "[ungepr\xC3\xBC" "ft]")) ==
             "Gr\xC3\xBC\xC3\x9F" "e [ungepr\xC3\xBC" "ft]");
  BOOST_TEST(subjectOf(appendSubjectTag("Subject: Hello\r\n\r\n", "[ungepr\xC3\xBC" "ft]")) ==
             "Hello [ungepr\xC3\xBC" "ft]");
  BOOST_TEST(subjectOf(appendSubjectTag("From: a@b\r\n\r\n", "=?x?=")) == "=?x?=");
  BOOST_TEST(subjectOf("To: a@b\r\n\r\n") == "");
}

BOOST_AUTO_TEST_CASE(empty_tag_leaves_message_unchanged) {
  const std::string msg = "Subject: Hi\r\n\r\nbody";
  for (const std::string& tag : {""s, "   "s, "\r\n"s, " \t\r\n\0 "s}) {
    BOOST_TEST(appendSubjectTag(msg, tag) == msg);
    BOOST_TEST(appendSubjectTag("To: a@b\r\n\r\nbody", tag) == "To: a@b\r\n\r\nbody");
  }
}

BOOST_AUTO_TEST_CASE(not_idempotent) {
  const std::string once = appendSubjectTag("Subject: Hi\r\n\r\nb", "[T]");
  BOOST_TEST(appendSubjectTag(once, "[T]") == "Subject: Hi [T] [T]\r\n\r\nb");
  BOOST_TEST(appendSubjectTag(appendSubjectTag("\r\nb", "[T]"), "[T]") == "Subject: [T] [T]\r\n\r\nb");
}

BOOST_AUTO_TEST_CASE(long_non_ascii_tag_is_split_into_short_encoded_words) {
  std::string tag;
  for (int i = 0; i < 100; ++i) tag += "\xC3\xBC";  // 100 x u-umlaut: cannot fit one word
  const std::string msg = "Subject: Hello\r\n\r\n" + kBody;
  const std::string out = appendSubjectTag(msg, tag);
  checkBodyKept(msg, out);
  BOOST_TEST(subjectOf(out) == "Hello " + tag);
  const auto lines = linesOf(out.substr(0, parseMessageHeaders(out).bodyOffset));
  BOOST_TEST(lines.size() > 3U);  // folded several times
  for (const auto& line : lines) {
    BOOST_TEST(line.size() <= 78U, line);
    // Every encoded word is at most 75 characters.
    std::size_t start = 0;
    while ((start = line.find("=?", start)) != std::string::npos) {
      const std::size_t end = line.find("?=", start + 10);
      BOOST_REQUIRE(end != std::string::npos);
      BOOST_TEST(end + 2 - start <= 75U);
      start = end + 2;
    }
  }
}

BOOST_AUTO_TEST_CASE(very_long_subject_and_tag_stay_within_998) {
  const std::string longLine = "Subject: " + std::string(2000, 'x');
  const std::string msg = longLine + "\r\n\r\n" + kBody;
  const std::string tag(5000, 'a');
  const std::string out = appendSubjectTag(msg, tag);
  checkBodyKept(msg, out);
  // The over-long original line is kept; the tag, cut to its limit, goes on its own line.
  BOOST_TEST(out == longLine + "\r\n " + std::string(kMaxSubjectTagBytes, 'a') + "\r\n\r\n" + kBody);
  for (const auto& line : linesOf(out)) {
    if (line != longLine) BOOST_TEST(line.size() <= 998U);
  }
}

BOOST_AUTO_TEST_CASE(long_blank_subject_folds_before_the_tag) {
  // A Subject of only white space is not folded before the tag (see "empty subject"),
  // except when the tag would take the line past 998 bytes.
  for (const std::size_t blanks : {985U, 986U, 995U, 2000U}) {
    const std::string line = "Subject:" + std::string(blanks, ' ');
    const std::string out = appendSubjectTag(line + "\r\n\r\nb", "[T]");
    if (line.size() + 3 <= 998U) {
      BOOST_TEST(out == line + "[T]\r\n\r\nb");
    } else {
      BOOST_TEST(out == line + "\r\n [T]\r\n\r\nb");
    }
    BOOST_TEST(subjectOf(out) == "[T]");
  }
}

BOOST_AUTO_TEST_CASE(long_tag_is_cut_at_a_character_boundary) {
  std::string tag = "a";
  for (int i = 0; i < 400; ++i) tag += "\xC3\xBC";  // the cut falls inside a character
  const std::string out = appendSubjectTag("Subject: x\r\n\r\n", tag);
  const std::string subject = subjectOf(out);
  BOOST_TEST(subject == "x " + tag.substr(0, kMaxSubjectTagBytes - 1));
  BOOST_TEST(subject.find("\xEF\xBF\xBD") == std::string::npos);  // no U+FFFD from a cut
}

BOOST_AUTO_TEST_CASE(crlf_injection_cannot_add_a_field) {
  const std::string msg = "From: a@b\r\nSubject: Hi\r\n\r\nbody";
  const std::string out = appendSubjectTag(msg, "x\r\nBcc: evil@x\n\nbody2\rTo: y");
  const auto h = parseMessageHeaders(out);
  BOOST_TEST(h.fields.size() == 2U);
  BOOST_TEST(h.find("Bcc") == nullptr);
  BOOST_TEST(out.substr(h.bodyOffset) == "body");
  BOOST_TEST(out.find('\n') == out.find("\r\n") + 1);  // the first line end is still CRLF
}

BOOST_AUTO_TEST_CASE(header_beyond_window_gets_subject_first) {
  std::string pad;
  while (pad.size() < 300 * 1024) pad += "X-Pad: " + std::string(60, 'p') + "\r\n";
  const std::string from = "From a@b Sat Nov 28 09:00:00 2026\r\n";
  const std::string msg = from + pad + "\r\nbody";
  const std::string out = appendSubjectTag(msg, "[T]");
  BOOST_TEST(out == from + "Subject: [T]\r\n" + pad + "\r\nbody");
  BOOST_TEST(appendSubjectTag(pad, "[T]") == "Subject: [T]\r\n" + pad);
}

BOOST_AUTO_TEST_CASE(random_input_never_breaks) {
  std::mt19937 rng(12345);
  const std::string alphabet = "Subject:=?UTF-8?B?Q? \t\r\n\r\nab\xC3\xBC\x00-"s;
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<std::size_t> length(0, 200);
  for (int i = 0; i < 2000; ++i) {
    std::string msg;
    const std::size_t n = length(rng);
    for (std::size_t k = 0; k < n; ++k) msg.push_back(alphabet[pick(rng)]);
    const std::string out = appendSubjectTag(msg, "[T]");
    BOOST_TEST_REQUIRE(out.size() >= msg.size() + 4U);
    BOOST_TEST_REQUIRE(parseMessageHeaders(out).find("Subject") != nullptr);
    (void)isMessagePartial(msg);
    (void)isMessagePartial("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n" + msg);
  }
}

// ---------------------------------------------------------------------------------------

namespace {

struct PartialCase {
  std::string name;
  std::string message;
  bool expected;
};

std::ostream& operator<<(std::ostream& os, const PartialCase& c) { return os << c.name; }

std::string multipart(const std::string& contentType, const std::string& body) {
  return "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: " + contentType + "\r\n\r\n" + body;
}

const std::string kPartialChild =
    "Content-Type: message/partial; id=\"frag@x\"; number=1; total=2\r\n\r\nAAAA\r\n";
const std::string kTextChild = "Content-Type: text/plain\r\n\r\nhello\r\n";

const std::vector<PartialCase> kPartialCases = {
    {"top level with params",
     "Content-Type: message/partial; id=\"abc@x\"; number=2; total=3\r\n\r\nbody", true},
    {"case variants", "content-type: Message/PARTIAL; ID=abc; Number=1\r\n\r\n", true},
    {"white space around slash", "Content-Type: message / partial\r\n\r\n", true},
    {"comments", "Content-Type: (a) message (b (nested)) / (c) partial (d); id=x\r\n\r\n", true},
    {"folded params", "Content-Type: message/partial;\r\n\tid=\"x\";\r\n number=1; total=2\r\n\r\n",
     true},
    {"folded before type", "Content-Type:\r\n message/partial\r\n\r\n", true},
    {"lf only", "From: a@b\nContent-Type: message/partial; id=x\n\nbody\n", true},
    {"header only", "Content-Type: message/partial; id=x", true},
    {"mbox From line", "From a@b Sat Nov 28 09:00:00 2026\r\nContent-Type: message/partial\r\n\r\n",
     true},
    {"second content-type field", "Content-Type: text/plain\r\nContent-Type: message/partial\r\n\r\n",
     true},
    {"message/rfc822", "Content-Type: message/rfc822\r\n\r\nContent-Type: message/partial\r\n",
     false},
    {"longer subtype", "Content-Type: message/partialx\r\n\r\n", false},
    {"subtype only", "Content-Type: partial\r\n\r\n", false},
    {"in a comment only", "Content-Type: text/plain (message/partial)\r\n\r\n", false},
    {"body mentions it", "Content-Type: text/plain\r\n\r\nContent-Type: message/partial\r\n", false},
    {"no content-type, body mentions it", "From: a@b\r\n\r\nContent-Type: message/partial\r\n",
     false},
    {"in another field", "X-Note: Content-Type: message/partial\r\n\r\n", false},
    {"empty", "", false},
    {"garbage", "\x00\xFF\x01:::\r\n\r\n\xC3(--\x7F"s, false},
    {"multipart child", multipart("multipart/mixed; boundary=XYZ",
                                  "preamble\r\n--XYZ\r\n" + kTextChild + "--XYZ\r\n" + kPartialChild +
                                      "--XYZ--\r\nepilogue\r\n"),
     true},
    {"multipart quoted boundary",
     multipart("multipart/mixed;\r\n boundary=\"=_a b/c?\"",
               "--=_a b/c?\r\n" + kPartialChild + "--=_a b/c?--\r\n"),
     true},
    {"multipart case and comments",
     multipart("Multipart/Mixed (x); BOUNDARY=xyz (y)", "--xyz\r\n" + kPartialChild + "--xyz--\r\n"),
     true},
    {"multipart lf only",
     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/partial\n\nx\n--b--\n",
     true},
    {"delimiter with transport padding",
     multipart("multipart/mixed; boundary=b", "--b \t\r\n" + kPartialChild + "--b--\r\n"), true},
    {"child header folded",
     multipart("multipart/mixed; boundary=b",
               "--b\r\nContent-Type:\r\n\tmessage/partial;\r\n id=x\r\n\r\nx\r\n--b--\r\n"),
     true},
    {"no close delimiter", multipart("multipart/mixed; boundary=b", "--b\r\n" + kTextChild +
                                                                        "--b\r\n" + kPartialChild),
     true},
    {"only text children", multipart("multipart/mixed; boundary=b",
                                      "--b\r\n" + kTextChild + "--b\r\n" + kTextChild + "--b--\r\n"),
     false},
    {"in preamble only", multipart("multipart/mixed; boundary=b",
                                   kPartialChild + "--b\r\n" + kTextChild + "--b--\r\n"),
     false},
    {"in epilogue only", multipart("multipart/mixed; boundary=b",
                                   "--b\r\n" + kTextChild + "--b--\r\n" + "--b\r\n" + kPartialChild),
     false},
    {"in a child's body", multipart("multipart/mixed; boundary=b",
                                    "--b\r\nContent-Type: text/plain\r\n\r\n" + kPartialChild +
                                        "--b--\r\n"),
     false},
    {"grandchild is not a direct child",
     multipart("multipart/mixed; boundary=outer",
               "--outer\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\n" +
                   kPartialChild + "--inner--\r\n--outer--\r\n"),
     false},
    {"other boundary", multipart("multipart/mixed; boundary=b", "--c\r\n" + kPartialChild), false},
    {"boundary is only a prefix",
     multipart("multipart/mixed; boundary=b", "--bb\r\n" + kPartialChild + "--b--\r\n"), false},
    {"multipart without boundary", multipart("multipart/mixed", "--\r\n" + kPartialChild), false},
    {"multipart without body", "Content-Type: multipart/mixed; boundary=b\r\nFrom: a@b\r\n",
     false},
    // With no empty line, the "child" header is top-level header (after a garbage line).
    {"multipart without empty line",
     "Content-Type: multipart/mixed; boundary=b\r\n--b\r\n" + kPartialChild, true},
    {"not multipart", multipart("text/plain; boundary=b", "--b\r\n" + kPartialChild), false},
};

}  // namespace

BOOST_DATA_TEST_CASE(partial_as_expected, bdata::make(kPartialCases), c) {
  BOOST_TEST(isMessagePartial(c.message) == c.expected);
}

BOOST_AUTO_TEST_CASE(multipart_walk_is_bounded) {
  std::string many;
  for (std::size_t i = 0; i < imapav::mime::kMaxPartialScanParts; ++i) many += "--b\r\n" + kTextChild;
  const std::string late = multipart("multipart/mixed; boundary=b", many + "--b\r\n" + kPartialChild);
  BOOST_TEST(!isMessagePartial(late));
  const std::string early = multipart("multipart/mixed; boundary=b",
                                      many.substr(0, 10 * (5 + kTextChild.size())) + "--b\r\n" +
                                          kPartialChild);
  BOOST_TEST(isMessagePartial(early));
  const std::string far = multipart(
      "multipart/mixed; boundary=b",
      "--b\r\n" + kTextChild + std::string(imapav::mime::kMaxPartialScanBytes, 'x') + "\r\n--b\r\n" +
          kPartialChild);
  BOOST_TEST(!isMessagePartial(far));
}

// Found by fuzzing (tests/fuzz/corpus/mime_subject_tag/crash-comment-ends-in-backslash): a
// comment whose last byte is a backslash made isMessagePartial throw out_of_range.
BOOST_AUTO_TEST_CASE(comment_ending_in_an_escape) {
  for (const std::string ct : {"text/plain; (a\\", "message/partial (x\\", "(\\", "multipart/mixed; boundary=b (\\"}) {
    const std::string msg = "Content-Type: " + ct + "\r\n\r\n--b\r\n" + kPartialChild + "--b--\r\n";
    BOOST_CHECK_NO_THROW((void)isMessagePartial(msg));
    BOOST_CHECK_NO_THROW((void)isMessagePartial("Content-Type: " + ct));
    BOOST_CHECK_NO_THROW((void)appendSubjectTag("Content-Type: " + ct, "[T]"));
  }
  BOOST_TEST(isMessagePartial("Content-Type: message/partial (x\\"));
  BOOST_TEST(isMessagePartial("Content-Type: multipart/mixed; boundary=b (\\\r\n\r\n--b\r\n" + kPartialChild));
}

BOOST_AUTO_TEST_SUITE_END()
