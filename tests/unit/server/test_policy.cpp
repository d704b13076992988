#include <boost/test/unit_test.hpp>

#include "icap-server/policy.hpp"

using namespace imapav::icapd;
using imapav::scan::ErrorClass;
using imapav::scan::ScanResult;
using imapav::scan::Verdict;

namespace {
ScanResult result(Verdict v, ErrorClass e = ErrorClass::None, std::vector<std::string> threats = {}) {
  ScanResult r;
  r.verdict = v;
  r.error = e;
  r.threats = std::move(threats);
  return r;
}
}  // namespace

BOOST_AUTO_TEST_CASE(clean_passes_infected_is_replaced_whatever_the_fail_mode) {
  for (const auto mode : {FailMode::Pass, FailMode::Drop}) {
    const Policy p(mode);
    BOOST_TEST((p.decide(result(Verdict::Clean)).action == Action::Pass));
    const auto d = p.decide(result(Verdict::Infected, ErrorClass::None, {"A.B", "C.D"}));
    BOOST_TEST((d.action == Action::Replace));
    BOOST_TEST(d.reason == "A.B, C.D");
  }
}

BOOST_AUTO_TEST_CASE(every_error_class_follows_the_fail_mode) {
  for (const auto e : {ErrorClass::TooLarge, ErrorClass::Timeout, ErrorClass::Corrupt, ErrorClass::Encrypted,
                       ErrorClass::ArchiveLimit, ErrorClass::EngineNotReady, ErrorClass::OutOfResources,
                       ErrorClass::Overloaded, ErrorClass::Internal}) {
    const auto drop = Policy(FailMode::Drop).decide(result(Verdict::Error, e));
    BOOST_TEST((drop.action == Action::Replace));
    BOOST_TEST(drop.reason == std::string(imapav::scan::toString(e)));
    const auto pass = Policy(FailMode::Pass).decide(result(Verdict::Error, e));
    BOOST_TEST((pass.action == Action::PassUnscanned));
  }
}

BOOST_AUTO_TEST_CASE(an_error_without_class_is_never_clean) {
  const auto d = Policy(FailMode::Pass).decide(result(Verdict::Error));
  BOOST_TEST((d.action == Action::PassUnscanned));
  BOOST_TEST(d.reason == "internal");
  BOOST_TEST((Policy(FailMode::Drop).decide(result(Verdict::Error)).action == Action::Replace));
}
