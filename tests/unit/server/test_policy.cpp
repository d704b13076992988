#include <boost/test/unit_test.hpp>

#include "icap-server/policy.hpp"
#include "shared/config/settings.hpp"

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

BOOST_AUTO_TEST_CASE(each_error_class_has_its_own_fallback_action) {
  PolicySettings s(FailMode::Drop);
  BOOST_TEST(applyPolicySetting(s, "on_error.encrypted", "policy.on_error.encrypted", "permit"));
  BOOST_TEST(applyPolicySetting(s, "on_error.too_large", "policy.on_error.too_large", "pass"));
  const Policy p(s);
  BOOST_TEST((p.decide(result(Verdict::Error, ErrorClass::Encrypted)).action == Action::PassUnscanned));
  BOOST_TEST((p.decide(result(Verdict::Error, ErrorClass::TooLarge)).action == Action::PassUnscanned));
  for (const auto e : {ErrorClass::Timeout, ErrorClass::Corrupt, ErrorClass::ArchiveLimit, ErrorClass::EngineNotReady,
                       ErrorClass::OutOfResources, ErrorClass::Overloaded, ErrorClass::Internal, ErrorClass::Fragmented}) {
    BOOST_TEST_CONTEXT(imapav::scan::toString(e)) {
      const auto d = p.decide(result(Verdict::Error, e));
      BOOST_TEST((d.action == Action::Replace));
      BOOST_TEST((d.error == e));
    }
  }
}

BOOST_AUTO_TEST_CASE(fail_mode_sets_every_class_and_bad_values_are_named) {
  PolicySettings s(FailMode::Drop);
  BOOST_TEST(applyPolicySetting(s, "fail_mode", "policy.fail_mode", "pass"));
  for (const auto a : s.onError) BOOST_TEST((a == FailMode::Pass));
  BOOST_CHECK_THROW(applyPolicySetting(s, "fail_mode", "policy.fail_mode", "block"), imapav::config::ConfigError);
  BOOST_CHECK_THROW(applyPolicySetting(s, "on_error.nope", "policy.on_error.nope", "block"), imapav::config::ConfigError);
  BOOST_CHECK_THROW(applyPolicySetting(s, "on_error.none", "policy.on_error.none", "block"), imapav::config::ConfigError);
  BOOST_CHECK_THROW(applyPolicySetting(s, "on_error.timeout", "x", "maybe"), imapav::config::ConfigError);
  BOOST_CHECK_THROW(applyPolicySetting(s, "virus_notice", "x", "email"), imapav::config::ConfigError);
  BOOST_CHECK_THROW(applyPolicySetting(s, "notify_sender_on_virus", "x", "perhaps"), imapav::config::ConfigError);
  BOOST_TEST(!applyPolicySetting(s, "colour", "policy.colour", "red"));
}

BOOST_AUTO_TEST_CASE(fragments_notices_and_notifications_follow_the_settings) {
  PolicySettings s(FailMode::Drop);
  s.virusNotice = VirusNotice::ProtocolOnly;
  s.notifySenderOnVirus = true;
  s.notifySenderOnErrorDrop = true;
  s.notifyRecipientOnErrorPass = true;
  s.onError[static_cast<std::size_t>(ErrorClass::Timeout)] = FailMode::Pass;
  const Policy p(s);
  const auto virus = p.decide(result(Verdict::Infected, ErrorClass::None, {"X"}));
  BOOST_TEST(virus.protocolOnly);
  BOOST_TEST(virus.notifySender);
  BOOST_TEST(!virus.tagSubject);
  const auto drop = p.decide(result(Verdict::Error, ErrorClass::Corrupt));
  BOOST_TEST(drop.notifySender);
  BOOST_TEST(!drop.protocolOnly);  // protocol-only is for viruses; an error drop gets the notice
  const auto pass = p.decide(result(Verdict::Error, ErrorClass::Timeout));
  BOOST_TEST((pass.action == Action::PassUnscanned));
  BOOST_TEST(pass.tagSubject);
  BOOST_TEST(!pass.notifySender);
  const auto fragment = p.decide(result(Verdict::Clean), true);
  BOOST_TEST((fragment.action == Action::Replace));
  BOOST_TEST((fragment.error == ErrorClass::Fragmented));
  BOOST_TEST(fragment.reason == "fragmented");
  // Off by default: no notifications, the replacement message.
  const auto quiet = Policy(FailMode::Drop).decide(result(Verdict::Infected, ErrorClass::None, {"X"}));
  BOOST_TEST(!quiet.notifySender);
  BOOST_TEST(!quiet.protocolOnly);
  // An infected fragment is infected.
  BOOST_TEST((p.decide(result(Verdict::Infected, ErrorClass::None, {"X"}), true).error == ErrorClass::None));
}
