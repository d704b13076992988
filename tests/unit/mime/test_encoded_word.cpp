#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "shared/mime/encoded_word.hpp"

using imapav::mime::decodeEncodedWords;
using imapav::mime::logSafe;
using imapav::mime::toValidUtf8;

namespace {

struct Case {
  const char* input;
  const char* expected;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.input; }

const std::vector<Case> kCases = {
    {"plain subject", "plain subject"},
    // UTF-8, B: "Grüße aus Köln"
    {"=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=", "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln"},
    // ISO-8859-1, Q, two adjacent words: the white space between them goes.
    {"=?ISO-8859-1?Q?Caf=E9_cr=E8me?= =?ISO-8859-1?Q?_br=FBl=E9e?=",
     "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e"},
    // Folding white space (CRLF + TAB) between words also goes.
    {"=?utf-8?q?a?=\r\n\t=?utf-8?q?b?=", "ab"},
    // White space between a word and text stays.
    {"Re: =?utf-8?q?caf=C3=A9?= ok", "Re: caf\xc3\xa9 ok"},
    // A UTF-8 character split across two B words survives (bytes joined first).
    {"=?utf-8?B?ww==?= =?utf-8?B?pA==?=", "\xc3\xa4"},
    {"=?utf-8?b?w6Q=?= =?utf-8?b?w7Y?=", "\xc3\xa4\xc3\xb6"},
    // Different charsets next to each other.
    {"=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "\xc3\xa9\xc3\xa9"},
    // iso-8859-15 and windows-1252 differ from latin-1 where it matters: the euro sign.
    {"=?iso-8859-15?q?=A4?=", "\xe2\x82\xac"},
    {"=?windows-1252?q?=80_=96_=93?=", "\xe2\x82\xac \xe2\x80\x93 \xe2\x80\x9c"},
    {"=?windows-1252?q?=81?=", "\xef\xbf\xbd"},
    {"=?iso-8859-1?q?=A4?=", "\xc2\xa4"},
    {"=?us-ascii?q?abc?=", "abc"},
    {"=?us-ascii?q?=E9?=", "\xef\xbf\xbd"},
    // RFC 2231 language suffix.
    {"=?utf-8*en?q?hi?=", "hi"},
    // Unknown charset and malformed words are left as written.
    {"=?koi8-r?b?8NLJ18XU?=", "=?koi8-r?b?8NLJ18XU?="},
    {"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
    {"=?utf-8?b?#$%?=", "=?utf-8?b?#$%?="},
    {"=?utf-8?q?bad=ZZ?=", "=?utf-8?q?bad=ZZ?="},
    {"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
    {"=?utf-8?q?has space?=", "=?utf-8?q?has space?="},
    {"a =?utf-8?q?x?= =?bogus?q?y?= b", "a x =?bogus?q?y?= b"},
    // Invalid UTF-8 and control characters never reach the output.
    {"=?utf-8?q?a=FFb?=", "a\xef\xbf\xbd" "b"},
    {"=?utf-8?q?evil=0D=0AX-Injected:_1?=", "evil  X-Injected: 1"},
    {"tab\there", "tab here"},
    {"=?utf-8?q?nul=00byte?=", "nul byte"},
    {"raw \xe9 latin1", "raw \xef\xbf\xbd latin1"},
};

}  // namespace

BOOST_DATA_TEST_CASE(decode_encoded_words, boost::unit_test::data::make(kCases), c) {
  BOOST_TEST(decodeEncodedWords(c.input) == std::string(c.expected));
}

BOOST_AUTO_TEST_CASE(valid_utf8_rejects_overlongs_surrogates_and_truncation) {
  BOOST_TEST(toValidUtf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");            // overlong '/'
  BOOST_TEST(toValidUtf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  BOOST_TEST(toValidUtf8("ok\xe2\x82") == "ok\xef\xbf\xbd\xef\xbf\xbd");        // truncated
  BOOST_TEST(toValidUtf8("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");            // U+1F600 kept
}

BOOST_AUTO_TEST_CASE(log_safe_replaces_c1_and_line_separators) {
  BOOST_TEST(logSafe("a\xc2\x9b" "b\xe2\x80\xa8" "c\x7f" "d") == "a b c d");
  BOOST_TEST(logSafe("caf\xc3\xa9") == "caf\xc3\xa9");
}
