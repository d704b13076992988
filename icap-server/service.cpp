#include "icap-server/service.hpp"

#include <Poco/Logger.h>

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "icap-server/builtin_templates.hpp"
#include "shared/icap/http_head.hpp"
#include "shared/icap/writer.hpp"
#include "shared/imap/imap_url.hpp"
#include "shared/mime/encoded_word.hpp"
#include "shared/mime/message_headers.hpp"
#include "shared/mime/notice.hpp"
#include "shared/mime/subject_tag.hpp"

namespace imapav::icapd {
namespace {

constexpr std::size_t kHeaderPrefix = 256 * 1024;  // enough of a message for its headers
constexpr std::size_t kSendBlock = 64 * 1024;
constexpr std::string_view kServer = "imapav-icapd/0.1.0";

Poco::Logger& scanLog() { return Poco::Logger::get("icapd.scan"); }

std::string readFileOrThrow(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read template " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mime::Template compileTemplate(std::string_view text, const std::string& origin) {
  auto t = mime::Template::parse(mime::stripTemplateComments(text), mime::noticeVariables());
  if (!t) throw ConfigError("template " + origin + ": " + t.error().text);
  return std::move(t.value());
}

// The first bytes of the message, where its header section is.
std::string headPrefix(const scan::MessageBody& body) {
  if (!body.spilled()) return std::string(body.memory().substr(0, kHeaderPrefix));
  std::string out;
  body.forEachPiece([&](std::string_view piece) {
    out.append(piece.substr(0, kHeaderPrefix - out.size()));
    return out.size() < kHeaderPrefix;
  });
  return out;
}

// X-Authenticated-User is base64 (Squid sends "Local://user" or "WinNT://dom/user").
std::string decodeUser(const std::string& value) {
  if (value.empty() || value.size() > 1024) return {};
  auto decoded = mime::decodeBase64(value);
  if (!decoded) return {};
  std::string out = decoded->substr(0, 512);
  if (const auto scheme = out.find("://"); scheme != std::string::npos) out.erase(0, scheme + 3);
  for (auto& ch : out) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return out;
}

// Header values taken from the network, bounded and without control characters.
std::string cleanValue(const std::string* value, std::size_t max = 256) {
  if (!value) return {};
  std::string out = value->substr(0, max);
  for (auto& ch : out) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// ClamAV names never hold ';' or line breaks, but they travel in headers: make sure.
std::string headerSafe(std::string s) {
  for (auto& ch : s) {
    if (ch == ';' || ch == '\r' || ch == '\n' || ch == '\0') ch = '_';
  }
  return s;
}

std::string verdictName(scan::Verdict v) {
  switch (v) {
    case scan::Verdict::Clean: return "clean";
    case scan::Verdict::Infected: return "infected";
    case scan::Verdict::Error: break;
  }
  return "error";
}

// What the answer reports: a fragment that scanned clean is still an error (unscannable).
std::string verdictName(const scan::ScanResult& r, const Decision& d) {
  if (r.verdict == scan::Verdict::Infected) return "infected";
  return d.error != scan::ErrorClass::None ? "error" : verdictName(r.verdict);
}

bool isFragment(const std::string& prefix) { return mime::isMessagePartial(prefix); }

std::string httpDateNow() { return mime::rfc5322Date(std::time(nullptr)); }

// The reason of a notice, in words a mail user can follow.
std::string reasonText(const scan::ScanResult& r, const Decision& d) {
  if (r.verdict == scan::Verdict::Infected) return "malware was found: " + d.reason;
  switch (d.error) {
    case scan::ErrorClass::Fragmented:
      return "the message is a fragment of a larger message (message/partial), which cannot be scanned";
    case scan::ErrorClass::TooLarge: return "the message is larger than the virus scanner may scan";
    case scan::ErrorClass::Timeout: return "the virus scan took longer than allowed";
    case scan::ErrorClass::Corrupt: return "the message or an attachment is damaged and could not be scanned";
    case scan::ErrorClass::Encrypted: return "an attachment is encrypted or password protected and could not be scanned";
    case scan::ErrorClass::ArchiveLimit: return "an attachment is an archive nested too deeply or holding too many files to scan";
    case scan::ErrorClass::EngineNotReady: return "the virus scanner was not ready";
    case scan::ErrorClass::OutOfResources: return "the virus scanner ran out of resources";
    case scan::ErrorClass::Overloaded: return "the virus scanner was overloaded";
    case scan::ErrorClass::None:
    case scan::ErrorClass::Internal: break;
  }
  return "the virus scanner failed";
}

std::int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

// Streams body as chunks through send, in blocks.
class ChunkedSender {
 public:
  ChunkedSender(const Send& send, std::string head) : send_(send), out_(std::move(head)) {}
  bool piece(std::string_view data) {
    while (!data.empty()) {
      const auto n = std::min(data.size(), kSendBlock);
      icap::appendChunk(out_, data.substr(0, n));
      data.remove_prefix(n);
      if (out_.size() >= kSendBlock && !flush()) return false;
    }
    return true;
  }
  bool finish() {
    icap::appendLastChunk(out_);
    return flush();
  }

 private:
  bool flush() {
    const bool ok = send_(out_);
    out_.clear();
    return ok;
  }
  const Send& send_;
  std::string out_;
};

}  // namespace

Templates loadTemplates(const Config& config) {
  const auto load = [](const std::string& file, std::string_view builtin, const std::string& name) {
    return file.empty() ? compileTemplate(builtin, "(built-in " + name + ")")
                        : compileTemplate(readFileOrThrow(file), file);
  };
  auto subject = mime::Template::parse(config.notifySubject, mime::noticeVariables());
  if (!subject) throw ConfigError("notify.subject: " + subject.error().text);
  const auto line = [](const std::string& text, const std::string& key) -> std::optional<mime::Template> {
    if (text.empty()) return std::nullopt;
    auto t = mime::Template::parse(text, mime::noticeVariables());
    if (!t) throw ConfigError(key + ": " + t.error().text);
    return std::move(t.value());
  };
  Templates t{load(config.virusTemplateFile, builtinVirusTemplate(), "virus notice"),
              load(config.errorTemplateFile, builtinErrorTemplate(), "error notice"),
              load(config.notifyTemplateFile, builtinSenderTemplate(), "sender notification"),
              std::move(subject.value()),
              line(config.virusSubject, "notice.virus_subject"),
              line(config.errorSubject, "notice.error_subject")};
  return t;
}

std::string istagOf(const scan::Scanner* engine) {
  // At most 32 bytes inside the quotes.
  std::string tag = "imapav-" + (engine ? engine->signatureVersion() : std::string("none"));
  if (tag.size() > 32) tag.resize(32);
  return "\"" + tag + "\"";
}

Service::Service(const Config& config, EngineSource engines, EventSink* events, Templates templates)
    : config_(config),
      engines_(std::move(engines)),
      events_(events),
      templates_(std::move(templates)),
      basePolicy_(config.policy),
      hostname_(hostName()),
      slots_(static_cast<std::ptrdiff_t>(config.scanThreads)) {
  for (const auto& p : config_.profiles) profilePolicies_.emplace_back(p.policy);
  if (config_.cacheMaxEntries > 0) {
    cache_ = std::make_unique<scan::VerdictCache>(config_.cacheMaxEntries, config_.cacheMaxAge);
  }
}

Service::Service(const Config& config, std::shared_ptr<scan::Scanner> scanner, EventSink* events,
                 Templates templates)
    : Service(config, [scanner = std::move(scanner)] { return scanner; }, events, std::move(templates)) {}

std::string Service::istag() const { return istagOf(engines_().get()); }

std::optional<scan::VerdictCache::Stats> Service::cacheStats() const {
  if (!cache_) return std::nullopt;
  return cache_->stats();
}

void Service::commonHeaders(icap::Headers& h, bool close, const std::string& istag) const {
  h.add("ISTag", istag);
  h.add("Date", httpDateNow());
  h.add("Server", std::string(kServer));
  if (close) h.add("Connection", "close");
}


bool Service::offers(std::string_view service) const {
  if (service == config_.service) return true;
  for (const auto& p : config_.profiles) {
    if (std::find(p.services.begin(), p.services.end(), service) != p.services.end()) return true;
  }
  return false;
}

std::string Service::optionsResponse(bool close, const std::string& service) const {
  icap::Headers h;
  commonHeaders(h, close, istag());
  h.add("Methods", config_.respmod && config_.reqmod ? "RESPMOD, REQMOD" : config_.respmod ? "RESPMOD" : "REQMOD");
  h.add("Service", "imapav antivirus for IMAP mail");
  h.add("Service-ID", service.empty() ? config_.service : service);
  h.add("Max-Connections", std::to_string(config_.maxConnections));
  h.add("Options-TTL", std::to_string(config_.optionsTtl));
  h.add("Allow", "204");
  h.add("Preview", std::to_string(config_.preview));
  h.add("Transfer-Preview", "*");
  std::string out;
  icap::appendResponseHead(out, 200, h, icap::EncapPart::None, "", false);
  metrics_.response(200);
  return out;
}

std::string Service::errorResponse(int status, bool close) const {
  icap::Headers h;
  commonHeaders(h, close, istag());
  std::string out;
  icap::appendResponseHead(out, status, h, icap::EncapPart::None, "", false);
  metrics_.response(status);
  return out;
}

scan::ScanResult Service::scanWithSlot(const scan::MessageBody& body, scan::Scanner* engine) {
  if (!engine) {
    scan::ScanResult r;
    r.error = scan::ErrorClass::EngineNotReady;
    r.detail = "no signature engine loaded";
    return r;
  }
  // A bounded number of scans run at once; a request that cannot get a slot in time is
  // an overload error, decided by policy like any other error.
  if (!slots_.try_acquire_for(config_.queueTimeout)) {
    scan::ScanResult r;
    r.error = scan::ErrorClass::Overloaded;
    r.detail = "no scan slot within queue_timeout";
    return r;
  }
  metrics_.scansInProgress.add(1);
  auto result = engine->scan(body);
  metrics_.scansInProgress.add(-1);
  slots_.release();
  return result;
}

void Service::scanOrRecall(const scan::MessageBody& body, Outcome& out) {
  // The key names the engine's signatures, so a reload makes every entry stale at once.
  const bool cacheable = cache_ && out.engine && !body.failed() && body.size() > 0;
  const std::string version = out.engine ? out.engine->signatureVersion() : std::string();
  if (cacheable) {
    const auto started = std::chrono::steady_clock::now();
    if (auto hit = cache_->find(out.sha256, version)) {
      out.result = std::move(*hit);
      out.result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - started);
      out.cached = true;
      metrics_.cacheLookup(true);
      return;
    }
    metrics_.cacheLookup(false);
  }
  out.result = scanWithSlot(body, out.engine.get());
  if (cacheable) cache_->insert(out.sha256, version, out.result);
}

bool Service::respond(const icap::RequestHead& head, const scan::MessageBody& body, bool ieof,
                      const std::string& gateway, bool close, const Send& send) {
  return answer(head, body, ieof, evaluate(head, body, gateway), gateway, close, send);
}

Service::Outcome Service::evaluate(const icap::RequestHead& head, const scan::MessageBody& body,
                                   const std::string& gateway) {
  const bool reqmod = head.method == icap::Method::Reqmod;
  const auto started = std::chrono::steady_clock::now();
  Outcome out;
  // The profile's policy for this request, or the base policy.
  out.policy = &basePolicy_;
  if (const Profile* p = selectProfile(config_.profiles, head.service, gateway)) {
    out.policy = &profilePolicies_[static_cast<std::size_t>(p - config_.profiles.data())];
    out.profile = p->name;
  }
  const Policy& policy = *out.policy;
  out.engine = engines_();
  out.sha256 = body.sha256Hex();
  scanOrRecall(body, out);
  out.prefix = headPrefix(body);
  out.decision = policy.decide(out.result, isFragment(out.prefix));
  const auto& result = out.result;
  const auto& decision = out.decision;
  // The scanner's own time; for errors before scanning (overload), the time waited.
  out.scanUs = result.elapsed.count() > 0 ? result.elapsed.count()
                                          : std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::steady_clock::now() - started)
                                                .count();
  const auto scanUs = out.scanUs;
  out.summary = mime::summarize(out.prefix);
  const auto& summary = out.summary;
  if (!head.reqHdr.empty()) {
    if (auto req = icap::parseHttpHead(head.reqHdr)) out.url = std::string(req->requestTarget().substr(0, 2048));
  }
  const auto& url = out.url;

  metrics_.scanned(result, decision, body.size(), scanUs, out.cached);

  // --- the event row
  if (events_) {
    db::ScanEvent ev;
    ev.timeUs = nowUs();
    ev.gateway = gateway;
    ev.service = head.service;
    ev.method = reqmod ? "REQMOD" : "RESPMOD";
    ev.clientIp = cleanValue(head.headers.find("X-Client-IP"), 64);
    if (const auto* u = head.headers.find("X-Authenticated-User")) ev.user = decodeUser(*u);
    ev.imapUrl = cleanValue(&url, 2048);
    if (auto parsed = imap::parseImapUrl(url)) {
      ev.mailbox = parsed->mailbox;
      if (parsed->uidValidity) ev.uidValidity = *parsed->uidValidity;
      if (parsed->uid) ev.uid = *parsed->uid;
      if (ev.user.empty()) ev.user = parsed->user;
    }
    ev.messageId = summary.messageId.substr(0, 998);
    ev.sender = summary.sender;
    ev.recipients = join(summary.recipients, ",");
    ev.subject = summary.subject;
    ev.size = static_cast<std::int64_t>(body.size());
    ev.sha256 = out.sha256;
    ev.verdict = verdictName(result, decision);
    ev.threats = join(result.threats, ",");
    ev.action = std::string(toString(decision.action));
    if (decision.error != scan::ErrorClass::None) ev.errorClass = std::string(scan::toString(decision.error));
    ev.scanTimeUs = scanUs;
    ev.engineVersion = out.engine ? out.engine->engineVersion() : "";
    ev.signatureVersion = out.engine ? out.engine->signatureVersion() : "";
    ev.cached = out.cached;
    events_->record(std::move(ev));
  }

  if (decision.notifySender) notifySender(out, gateway);
  scanLog().information(
      "scan gateway=%s service=%s profile=%s size=%z verdict=%s action=%s reason=\"%s\" time_ms=%.1f%s",
      gateway, head.service, out.profile.empty() ? std::string("-") : out.profile, body.size(),
      verdictName(result, decision),
      std::string(toString(decision.action)), headerSafe(decision.reason),
      static_cast<double>(scanUs) / 1000.0, std::string(out.cached ? " cached=1" : ""));
  return out;
}

std::map<std::string, std::string, std::less<>> Service::templateVariables(const Outcome& outcome,
                                                                          const std::string& gateway) const {
  const auto& summary = outcome.summary;
  const auto& decision = outcome.decision;
  return {{"threats", decision.reason},
          {"sender", summary.sender},
          {"recipients", join(summary.recipients, ", ")},
          {"subject", summary.subject},
          {"date", summary.date},
          {"message_id", summary.messageId},
          {"gateway", gateway},
          {"reason", reasonText(outcome.result, decision)},
          {"scan_time", httpDateNow()},
          {"server", hostname_ + " (" + std::string(kServer) + ")"},
          {"istag", istagOf(outcome.engine.get())},
          {"action", std::string(toString(decision.action))},
          {"error_class", decision.error == scan::ErrorClass::None ? std::string() : std::string(scan::toString(decision.error))}};
}

// A notification to the original sender, never to a null, bounce or automatic sender
// (RFC 3834); what is not sent is logged as skipped, with why.
void Service::notifySender(const Outcome& outcome, const std::string& gateway) {
  const bool infected = outcome.result.verdict == scan::Verdict::Infected;
  db::NotificationEvent skipped;
  skipped.timeUs = nowUs();
  skipped.kind = infected ? "sender-virus" : "sender-error-drop";
  skipped.recipient = outcome.summary.sender;
  skipped.outcome = "skipped";
  skipped.messageId = outcome.summary.messageId.substr(0, 998);
  skipped.gateway = gateway;
  if (outcome.summary.sender.empty()) skipped.detail = "the message has no sender address";
  else if (!notify::isNotifiableSender(outcome.summary.sender)) skipped.detail = "null, MAILER-DAEMON or malformed sender";
  else skipped.detail = mime::notificationBlocker(outcome.prefix);
  if (skipped.detail.empty() && !notifier_) skipped.detail = "no notifier (notify.relay)";
  if (!skipped.detail.empty()) {
    scanLog().information("notify kind=%s to=%s outcome=skipped reason=\"%s\"", skipped.kind,
                          mime::logSafe(skipped.recipient), skipped.detail);
    if (events_) events_->recordNotification(std::move(skipped));
    return;
  }
  const auto vars = templateVariables(outcome, gateway);
  mime::NotificationSpec spec;
  spec.from = config_.notifyFrom;
  spec.to = outcome.summary.sender;
  spec.subject = templates_.senderSubject.render(vars);
  spec.body = templates_.sender.render(vars);
  spec.date = httpDateNow();
  spec.messageId = "<imapav." + std::to_string(nowUs()) + "." + std::to_string(++notificationSeq_) + "@" + hostname_ + ">";
  spec.extraHeaders.emplace_back("X-Imapav-Notification", skipped.kind);
  notify::Mail mail;
  mail.recipient = outcome.summary.sender;
  mail.data = mime::buildNotification(spec);
  mail.kind = skipped.kind;
  mail.rateKey = mail.recipient;
  for (auto& ch : mail.rateKey) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  mail.reference = skipped.messageId;
  mail.origin = gateway;
  notifier_->enqueue(std::move(mail));  // the outcome comes back through the notifier's handler
}

bool Service::answer(const icap::RequestHead& head, const scan::MessageBody& body, bool ieof,
                     const Outcome& outcome, const std::string& gateway, bool close, const Send& send) {
  const bool reqmod = head.method == icap::Method::Reqmod;
  const auto& result = outcome.result;
  const auto& decision = outcome.decision;
  const auto& url = outcome.url;
  const auto& prefix = outcome.prefix;
  const std::string& httpRaw = reqmod ? head.reqHdr : head.resHdr;
  icap::Headers h;
  commonHeaders(h, close, istagOf(outcome.engine.get()));
  h.add("X-Imapav-Verdict", verdictName(result, decision));
  if (outcome.cached) h.add("X-Imapav-Cache", "hit");
  if (decision.error != scan::ErrorClass::None) h.add("X-Imapav-Error", std::string(scan::toString(decision.error)));
  h.add("X-Imapav-Action", std::string(toString(decision.action)));
  // For imapav-redirector: tell the client at the protocol level, deliver nothing. Other
  // ICAP clients ignore the header and deliver the notice below.
  if (decision.protocolOnly) h.add("X-Imapav-Notice", "protocol-only");

  // A subject tag changes the message: no 204 then.
  const auto tagged = decision.action == Action::PassUnscanned && decision.tagSubject;
  const bool may204 = head.allow204 || (head.preview.has_value() && ieof);
  if (decision.action != Action::Replace && may204 && !tagged) {
    std::string out;
    icap::appendResponseHead(out, 204, h, icap::EncapPart::None, "", false);
    metrics_.response(204);
    return send(out);
  }

  auto http = icap::parseHttpHead(httpRaw);
  if (!http) {
    http.emplace();
    http->startLine = reqmod ? "POST / HTTP/1.1" : "HTTP/1.1 200 OK";
    http->headers.add("Content-Type", "message/rfc822");
  }
  http->headers.remove("Transfer-Encoding");
  const auto part = reqmod ? icap::EncapPart::ReqHdr : icap::EncapPart::ResHdr;

  if (decision.action == Action::Replace) {
    const auto vars = templateVariables(outcome, gateway);
    mime::NoticeSpec spec;
    const bool infected = result.verdict == scan::Verdict::Infected;
    spec.body = infected ? templates_.virus.render(vars) : templates_.error.render(vars);
    if (const auto& subject = infected ? templates_.virusSubject : templates_.errorSubject) spec.subject = subject->render(vars);
    spec.fallbackFrom = config_.noticeFrom;
    spec.date = httpDateNow();
    spec.extraHeaders.emplace_back("X-Imapav-Status", infected ? "infected" : "dropped");
    spec.extraHeaders.emplace_back(infected ? "X-Imapav-Threats" : "X-Imapav-Reason", decision.reason);
    const std::string notice = mime::buildNotice(prefix, spec);

    if (infected) {
      const std::string first = headerSafe(result.threats.empty() ? "unknown" : result.threats.front());
      h.add("X-Infection-Found", "Type=0; Resolution=2; Threat=" + first + ";");
      std::string violations = std::to_string(result.threats.size());
      const std::string file = url.empty() ? "message" : headerSafe(url);
      for (const auto& t : result.threats) {
        violations += "\r\n\t" + file + "\r\n\t" + headerSafe(t) + "\r\n\t0\r\n\t2";
      }
      h.add("X-Violations-Found", violations);
      h.add("X-Virus-ID", headerSafe(join(result.threats, ", ")));
    }
    http->headers.set("Content-Length", std::to_string(notice.size()));
    if (!reqmod) http->headers.set("Content-Type", "message/rfc822");
    std::string out;
    icap::appendResponseHead(out, 200, h, part, http->serialize(), true);
    metrics_.response(200);
    ChunkedSender sender(send, std::move(out));
    return sender.piece(notice) && sender.finish();
  }

  // Pass or pass-unscanned without 204: the whole original goes back, with the subject
  // tag (notify-recipient-on-error-pass) in a new header section when asked.
  if (decision.action == Action::PassUnscanned) {
    http->headers.set("X-Imapav-Unscanned", std::string(scan::toString(decision.error)));
  }
  std::string newHead;
  std::size_t skip = 0;  // bytes of the original replaced by newHead
  if (tagged) {
    const auto headers = mime::parseMessageHeaders(prefix);
    // Without the end of the header in the prefix the tag cannot be placed safely.
    if (headers.complete || prefix.size() == body.size()) {
      skip = headers.complete ? headers.bodyOffset : prefix.size();
      // A template ("[unscanned: ${error_class}]"); config loading checked it parses.
      std::string tag = outcome.policy->settings().subjectTag;
      if (auto t = mime::Template::parse(tag, mime::noticeVariables())) tag = t.value().render(templateVariables(outcome, gateway));
      newHead = mime::appendSubjectTag(std::string_view(prefix).substr(0, skip), tag);
    }
  }
  http->headers.set("Content-Length", std::to_string(newHead.size() + body.size() - skip));
  std::string out;
  icap::appendResponseHead(out, 200, h, part, http->serialize(), true);
  metrics_.response(200);
  ChunkedSender sender(send, std::move(out));
  if (!sender.piece(newHead)) return false;
  std::size_t seen = 0;
  const bool sent = body.forEachPiece([&](std::string_view piece) {
    const auto drop = std::min(piece.size(), skip > seen ? skip - seen : 0);
    seen += piece.size();
    return sender.piece(piece.substr(drop));
  });
  return sent && sender.finish();
}

}  // namespace imapav::icapd
