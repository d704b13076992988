// The service logic without sockets: a scripted scanner behind the Scanner interface, the
// answer parsed back with the project's ICAP response parser.

#include <boost/test/unit_test.hpp>

#include "icap-server/service.hpp"
#include "shared/icap/response_parser.hpp"

using namespace imapav;
using namespace imapav::icapd;

namespace {

class FakeScanner final : public scan::Scanner {
 public:
  scan::ScanResult next;
  std::string version = "0-abcdef123456";
  int scans = 0;
  scan::ScanResult scan(const scan::MessageBody&) override {
    ++scans;
    return next;
  }
  std::string engineVersion() const override { return "Fake 1.0"; }
  std::string signatureVersion() const override { return version; }
};

class VectorSink final : public EventSink {
 public:
  std::vector<db::ScanEvent> events;
  void record(db::ScanEvent e) override { events.push_back(std::move(e)); }
};

struct Answer {
  icap::ResponseHead head;
  std::string body;
  std::string header(const std::string& n) const {
    const auto* v = head.headers.find(n);
    return v ? *v : "<missing>";
  }
};

Answer parse(const std::string& wire) {
  icap::ResponseParser p;
  Answer a;
  std::string_view in(wire);
  for (;;) {
    const auto step = p.feed(in);
    in.remove_prefix(step.consumed);
    using Ev = icap::ResponseParser::Event;
    if (step.event == Ev::Head) a.head = p.head();
    else if (step.event == Ev::Body) a.body.append(p.bodyData());
    else if (step.event == Ev::Complete) break;
    else BOOST_FAIL("response does not parse: " + p.errorText() + "\n" + wire);
  }
  BOOST_TEST(in.empty());  // nothing after the response
  return a;
}

const std::string kMessage =
    "From: Eve <eve@example.com>\r\nTo: bob@example.net\r\nSubject: Test\r\n"
    "Message-ID: <m1@example.com>\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nbody text\r\n";

struct Env {
  Config config;
  std::shared_ptr<FakeScanner> scanner = std::make_shared<FakeScanner>();
  VectorSink sink;
  std::unique_ptr<Service> service;

  explicit Env(FailMode mode = FailMode::Drop, bool withScanner = true) : Env(PolicySettings(mode), {}, withScanner) {}
  Env(PolicySettings policy, std::vector<Profile> profiles, bool withScanner = true) {
    config.engine.databaseDir = "/nonexistent";
    config.policy = std::move(policy);
    config.profiles = std::move(profiles);
    config.scanThreads = 1;
    config.spillThreshold = 16;  // force the temporary file path
    service = std::make_unique<Service>(config, withScanner ? scanner : nullptr, &sink, loadTemplates(config));
  }

  Answer run(bool allow204, icap::Method method = icap::Method::Respmod, const std::string& message = kMessage,
             const std::string& serviceName = "avscan", const std::string& gateway = "10.1.2.3") {
    icap::RequestHead head;
    head.method = method;
    head.service = serviceName;
    head.allow204 = allow204;
    head.reqHdr = "GET imap://u@h/INBOX;UIDVALIDITY=5/;UID=6 HTTP/1.1\r\n\r\n";
    if (method == icap::Method::Respmod) {
      head.resHdr = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(message.size()) + "\r\n\r\n";
    }
    head.headers.add("X-Client-IP", "198.51.100.7\r\nX-Evil: 1");
    scan::MessageBody body(config.spillThreshold, "/tmp");
    BOOST_REQUIRE(body.append(message));
    std::string wire;
    BOOST_REQUIRE(service->respond(head, body, false, gateway, false, [&](std::string_view d) {
      wire.append(d);
      return true;
    }));
    return parse(wire);
  }
};

scan::ScanResult clean() {
  scan::ScanResult r;
  r.verdict = scan::Verdict::Clean;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(clean_gets_204_or_the_original) {
  Env env;
  env.scanner->next = clean();
  auto a = env.run(true);
  BOOST_TEST(a.head.status == 204);
  BOOST_TEST(a.head.headers.find("Encapsulated") == nullptr);
  a = env.run(false);
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.body == kMessage);  // streamed back from the spilled file
  BOOST_TEST(a.head.resHdr.find("Content-Length: " + std::to_string(kMessage.size()) + "\r\n") != std::string::npos);
  BOOST_REQUIRE_EQUAL(env.sink.events.size(), 2u);
  const auto& e = env.sink.events[0];
  BOOST_TEST(e.verdict == "clean");
  BOOST_TEST(e.action == "pass");
  BOOST_TEST(e.gateway == "10.1.2.3");
  BOOST_TEST(e.clientIp.find('\n') == std::string::npos);  // no control bytes from the network
  BOOST_TEST(e.uid.value_or(0) == 6);
  BOOST_TEST(e.sender == "eve@example.com");
  BOOST_TEST(e.engineVersion == "Fake 1.0");
}

BOOST_AUTO_TEST_CASE(infected_is_replaced_and_names_are_made_header_safe) {
  Env env;
  env.scanner->next.verdict = scan::Verdict::Infected;
  env.scanner->next.threats = {"Bad.One", "Evil\r\nX-Injected: yes;"};
  const auto a = env.run(true);
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.header("X-Infection-Found") == "Type=0; Resolution=2; Threat=Bad.One;");
  BOOST_TEST(a.head.headers.find("X-Injected") == nullptr);
  BOOST_TEST(a.header("X-Violations-Found").substr(0, 3) == "2\r\n");
  BOOST_TEST(a.body.find("Subject: Test\r\n") != std::string::npos);
  BOOST_TEST(a.body.find("Bad.One") != std::string::npos);
  BOOST_TEST(a.body.find("body text") == std::string::npos);
  BOOST_TEST(a.head.resHdr.find("Content-Length: " + std::to_string(a.body.size()) + "\r\n") != std::string::npos);
  BOOST_TEST(env.sink.events.at(0).threats == "Bad.One,Evil\r\nX-Injected: yes;");  // the log keeps the name
}

BOOST_AUTO_TEST_CASE(errors_follow_the_fail_mode) {
  scan::ScanResult timeout;
  timeout.error = scan::ErrorClass::Timeout;
  {
    Env env(FailMode::Drop);
    env.scanner->next = timeout;
    const auto a = env.run(true);
    BOOST_TEST(a.head.status == 200);
    BOOST_TEST(a.header("X-Imapav-Error") == "timeout");
    BOOST_TEST(a.header("X-Imapav-Action") == "replace");
    BOOST_TEST(a.body.find("longer than allowed") != std::string::npos);
    BOOST_TEST(env.sink.events.at(0).errorClass == "timeout");
  }
  {
    Env env(FailMode::Pass);
    env.scanner->next = timeout;
    auto a = env.run(true);
    BOOST_TEST(a.head.status == 204);
    BOOST_TEST(a.header("X-Imapav-Action") == "pass-unscanned");
    a = env.run(false);
    BOOST_TEST(a.head.status == 200);
    BOOST_TEST(a.body == kMessage);
    BOOST_TEST(a.head.resHdr.find("X-Imapav-Unscanned: timeout\r\n") != std::string::npos);
    BOOST_TEST(env.sink.events.at(1).action == "pass-unscanned");
  }
}

BOOST_AUTO_TEST_CASE(no_engine_is_an_error_not_a_pass) {
  Env env(FailMode::Drop, false);
  const auto a = env.run(true);
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.header("X-Imapav-Error") == "engine_not_ready");
}

BOOST_AUTO_TEST_CASE(reqmod_answers_with_a_request) {
  Env env;
  env.scanner->next.verdict = scan::Verdict::Infected;
  env.scanner->next.threats = {"X"};
  const auto a = env.run(true, icap::Method::Reqmod);
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.head.encapsulated.reqHdr.has_value());
  BOOST_TEST(a.head.encapsulated.reqBody.has_value());
  BOOST_TEST(!a.head.encapsulated.resHdr.has_value());
  BOOST_TEST(env.sink.events.at(0).method == "REQMOD");
}

BOOST_AUTO_TEST_CASE(istag_is_quoted_bounded_and_follows_the_signatures) {
  Env a;
  Env b;
  b.scanner->version = std::string(100, '9');
  b.service = std::make_unique<Service>(b.config, b.scanner, &b.sink, loadTemplates(b.config));
  BOOST_TEST(a.service->istag() == "\"imapav-0-abcdef123456\"");
  BOOST_TEST(b.service->istag().size() == 34u);
  BOOST_TEST(a.service->istag() != b.service->istag());
  const auto options = parse(a.service->optionsResponse(false));
  BOOST_TEST(options.header("ISTag") == a.service->istag());
  BOOST_TEST(options.header("Encapsulated") == "null-body=0");
}

BOOST_AUTO_TEST_CASE(error_pass_with_subject_tag_sends_the_tagged_message) {
  PolicySettings p(FailMode::Pass);
  p.notifyRecipientOnErrorPass = true;
  p.subjectTag = "[NOT SCANNED]";
  Env env(p, {});
  env.scanner->next.verdict = scan::Verdict::Error;
  env.scanner->next.error = scan::ErrorClass::Encrypted;
  const auto a = env.run(true);  // 204 allowed, but the message changes
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.header("X-Imapav-Action") == "pass-unscanned");
  BOOST_TEST(a.header("X-Imapav-Error") == "encrypted");
  std::string expected = kMessage;
  expected.replace(expected.find("Subject: Test"), 13, "Subject: Test [NOT SCANNED]");
  BOOST_TEST(a.body == expected);  // only the subject changed; the body came from the spilled file
  BOOST_TEST(a.head.resHdr.find("Content-Length: " + std::to_string(expected.size()) + "\r\n") != std::string::npos);
  BOOST_TEST(a.head.resHdr.find("X-Imapav-Unscanned: encrypted") != std::string::npos);
  // Without the setting: a 204, the original stays as it is.
  Env plain(FailMode::Pass);
  plain.scanner->next = env.scanner->next;
  BOOST_TEST(plain.run(true).head.status == 204);
}

BOOST_AUTO_TEST_CASE(protocol_only_virus_notice_is_announced_in_a_header) {
  PolicySettings p;
  p.virusNotice = VirusNotice::ProtocolOnly;
  Env env(p, {});
  env.scanner->next.verdict = scan::Verdict::Infected;
  env.scanner->next.threats = {"Bad.One"};
  const auto a = env.run(true);
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.header("X-Imapav-Notice") == "protocol-only");
  BOOST_TEST(a.body.find("Bad.One") != std::string::npos);  // other ICAP clients still get the notice
  Env normal;
  normal.scanner->next = env.scanner->next;
  BOOST_TEST(normal.run(true).header("X-Imapav-Notice") == "<missing>");
}

BOOST_AUTO_TEST_CASE(a_fragment_that_scans_clean_is_an_error_decided_by_policy) {
  const std::string fragment =
      "From: a@example.com\r\nSubject: part 1\r\nMIME-Version: 1.0\r\n"
      "Content-Type: message/partial; id=\"abc@example.com\"; number=1; total=2\r\n\r\nFrom: x\r\n";
  Env env;  // everything blocked by default
  env.scanner->next = clean();
  auto a = env.run(true, icap::Method::Respmod, fragment);
  BOOST_TEST(a.head.status == 200);
  BOOST_TEST(a.header("X-Imapav-Verdict") == "error");
  BOOST_TEST(a.header("X-Imapav-Error") == "fragmented");
  BOOST_TEST(a.header("X-Imapav-Action") == "replace");
  BOOST_TEST(env.sink.events.at(0).errorClass == "fragmented");
  BOOST_TEST(env.sink.events.at(0).verdict == "error");  // never "clean"
  PolicySettings permit;
  permit.onError[static_cast<std::size_t>(scan::ErrorClass::Fragmented)] = FailMode::Pass;
  Env lenient(permit, {});
  lenient.scanner->next = clean();
  a = lenient.run(true, icap::Method::Respmod, fragment);
  BOOST_TEST(a.head.status == 204);
  BOOST_TEST(a.header("X-Imapav-Action") == "pass-unscanned");
  // An ordinary message is not a fragment.
  BOOST_TEST(env.run(true).head.status == 204);
}

BOOST_AUTO_TEST_CASE(profiles_are_chosen_by_service_name_or_gateway_address) {
  PolicySettings strict;  // block everything
  Profile byName{"strict", {"avscan-strict"}, {}, strict};
  PolicySettings lenient(FailMode::Pass);
  Profile byAddress{"branch", {}, {*parseAddressRange("192.0.2.0/24")}, lenient};
  Env env(PolicySettings(FailMode::Pass), {byName, byAddress});
  BOOST_TEST(env.service->offers("avscan"));
  BOOST_TEST(env.service->offers("avscan-strict"));
  BOOST_TEST(!env.service->offers("other"));
  env.scanner->next.verdict = scan::Verdict::Error;
  env.scanner->next.error = scan::ErrorClass::Timeout;
  BOOST_TEST(env.run(true).header("X-Imapav-Action") == "pass-unscanned");  // base: pass
  BOOST_TEST(env.run(true, icap::Method::Respmod, kMessage, "avscan-strict").header("X-Imapav-Action") == "replace");
  // The service name wins over the address.
  BOOST_TEST(env.run(true, icap::Method::Respmod, kMessage, "avscan-strict", "192.0.2.9").header("X-Imapav-Action") ==
             "replace");
  BOOST_TEST(env.run(true, icap::Method::Respmod, kMessage, "avscan", "192.0.2.9").header("X-Imapav-Action") ==
             "pass-unscanned");
  BOOST_TEST(env.sink.events.at(1).service == "avscan-strict");
  const auto options = parse(env.service->optionsResponse(false, "avscan-strict"));
  BOOST_TEST(options.header("Service-ID") == "avscan-strict");
}

BOOST_AUTO_TEST_CASE(custom_notice_subject_and_subject_tag_are_templates) {
  PolicySettings p(FailMode::Pass);
  p.notifyRecipientOnErrorPass = true;
  p.subjectTag = "[unscanned: ${error_class}]";
  Env env(p, {});
  env.scanner->next.verdict = scan::Verdict::Error;
  env.scanner->next.error = scan::ErrorClass::TooLarge;
  auto a = env.run(true);
  BOOST_TEST(a.body.find("Subject: Test [unscanned: too_large]\r\n") != std::string::npos);

  Env custom;
  custom.config.virusSubject = "Blocked: ${subject} (${threats})";
  custom.service = std::make_unique<Service>(custom.config, custom.scanner, &custom.sink, loadTemplates(custom.config));
  custom.scanner->next.verdict = scan::Verdict::Infected;
  custom.scanner->next.threats = {"Bad.One"};
  a = custom.run(true);
  BOOST_TEST(a.body.find("Subject: Blocked: Test (Bad.One)\r\n") != std::string::npos);
  BOOST_TEST(a.body.find("Subject: Test\r\n") == std::string::npos);  // the original subject is replaced
  custom.config.virusSubject = "Blocked ${nope}";
  BOOST_CHECK_THROW(loadTemplates(custom.config), ConfigError);
}

BOOST_AUTO_TEST_CASE(a_message_seen_before_is_answered_from_the_cache) {
  Env env;
  env.scanner->next.verdict = scan::Verdict::Infected;
  env.scanner->next.threats = {"Bad.One"};
  const auto first = env.run(true);
  env.scanner->next = clean();  // would pass it, were it scanned again
  const auto second = env.run(true, icap::Method::Respmod, kMessage, "avscan", "10.9.9.9");  // another gateway
  BOOST_TEST(env.scanner->scans == 1);
  BOOST_TEST(first.header("X-Imapav-Cache") == "<missing>");
  BOOST_TEST(second.header("X-Imapav-Cache") == "hit");
  // The replacement is rebuilt, the same as the first but for its Date.
  BOOST_TEST(second.header("X-Infection-Found") == first.header("X-Infection-Found"));
  BOOST_TEST(second.body.find("Bad.One") != std::string::npos);
  BOOST_REQUIRE(env.sink.events.size() == 2U);
  BOOST_TEST(!env.sink.events[0].cached);
  BOOST_TEST(env.sink.events[1].cached);
  BOOST_TEST(env.sink.events[1].threats == "Bad.One");
  BOOST_TEST(env.sink.events[1].gateway == "10.9.9.9");
  BOOST_TEST(env.sink.events[1].sha256 == env.sink.events[0].sha256);
  BOOST_TEST(env.sink.events[1].signatureVersion == "0-abcdef123456");
  const auto st = env.service->cacheStats();
  BOOST_REQUIRE(st.has_value());
  BOOST_TEST(st->hits == 1U);
  BOOST_TEST(st->entries == 1U);
}

BOOST_AUTO_TEST_CASE(new_signatures_make_the_cache_miss) {
  Config config;
  config.engine.databaseDir = "/nonexistent";
  config.scanThreads = 1;
  auto v1 = std::make_shared<FakeScanner>();
  auto v2 = std::make_shared<FakeScanner>();
  v2->version = "1-fedcba654321";
  v1->next = clean();
  v2->next.verdict = scan::Verdict::Infected;
  v2->next.threats = {"New.Signature"};
  std::shared_ptr<scan::Scanner> inUse = v1;
  VectorSink sink;
  Service service(config, [&] { return inUse; }, &sink, loadTemplates(config));
  icap::RequestHead head;
  head.method = icap::Method::Respmod;
  head.service = "avscan";
  head.allow204 = true;
  std::string wire;
  const auto send = [&](std::string_view d) {
    wire.append(d);
    return true;
  };
  const auto ask = [&] {
    scan::MessageBody body(1 << 20, "/tmp");
    BOOST_REQUIRE(body.append(kMessage));
    wire.clear();
    BOOST_REQUIRE(service.respond(head, body, false, "gw", false, send));
    return parse(wire);
  };
  BOOST_TEST(ask().header("ISTag") == "\"imapav-0-abcdef123456\"");
  BOOST_TEST(ask().header("X-Imapav-Cache") == "hit");
  inUse = v2;  // a reload
  BOOST_TEST(service.istag() == "\"imapav-1-fedcba654321\"");
  const auto after = ask();
  BOOST_TEST(after.header("X-Imapav-Cache") == "<missing>");
  BOOST_TEST(after.header("X-Imapav-Verdict") == "infected");
  BOOST_TEST(after.header("ISTag") == "\"imapav-1-fedcba654321\"");
  BOOST_TEST(v1->scans == 1);
  BOOST_TEST(v2->scans == 1);
  BOOST_REQUIRE(sink.events.size() == 3U);
  BOOST_TEST(sink.events[0].signatureVersion == "0-abcdef123456");
  BOOST_TEST(sink.events[2].signatureVersion == "1-fedcba654321");
}

BOOST_AUTO_TEST_CASE(transient_errors_are_not_cached_and_the_cache_can_be_off) {
  Env env;
  env.scanner->next.error = scan::ErrorClass::Timeout;
  env.run(true);
  env.scanner->next = clean();
  BOOST_TEST(env.run(true).header("X-Imapav-Cache") == "<missing>");
  BOOST_TEST(env.scanner->scans == 2);

  Env off;
  off.config.cacheMaxEntries = 0;
  off.service = std::make_unique<Service>(off.config, off.scanner, &off.sink, loadTemplates(off.config));
  off.scanner->next = clean();
  off.run(true);
  off.run(true);
  BOOST_TEST(off.scanner->scans == 2);
  BOOST_TEST(!off.service->cacheStats().has_value());
}
