#include "redirector/config.hpp"

#include <map>

namespace imapav::redirector {

Config loadConfig(const std::string& path) {
  using namespace config;
  Config c;
  bool haveUpstream = false;
  const auto number = [](const std::string& k, const std::string& v, std::uint64_t min, std::uint64_t max) {
    return static_cast<unsigned>(parseNumber(k, v, min, max));
  };
  const std::map<std::string, Setter> setters = {
      {"imap.listen", [&](const std::string& k, const std::string& v) { c.imapListen = parseHostPort(k, v); }},
      {"imaps.listen", [&](const std::string& k, const std::string& v) { c.imapsListen = parseHostPort(k, v); }},
      {"metrics.listen", [&](const std::string& k, const std::string& v) { c.metricsListen = parseHostPort(k, v); }},
      {"tls.certificate", [&](const std::string&, const std::string& v) { c.tlsCertificate = v; }},
      {"tls.private_key", [&](const std::string&, const std::string& v) { c.tlsPrivateKey = v; }},
      {"upstream.address",
       [&](const std::string& k, const std::string& v) {
         c.upstream = parseHostPort(k, v);
         haveUpstream = true;
       }},
      {"upstream.security",
       [&](const std::string& k, const std::string& v) {
         if (v == "none") c.upstreamSecurity = UpstreamSecurity::None;
         else if (v == "starttls") c.upstreamSecurity = UpstreamSecurity::StartTls;
         else if (v == "tls") c.upstreamSecurity = UpstreamSecurity::Tls;
         else throw ConfigError(k + ": expected none, starttls or tls, got '" + v + "'");
       }},
      {"upstream.ca_file", [&](const std::string&, const std::string& v) { c.upstreamCaFile = v; }},
      {"upstream.verify", [&](const std::string& k, const std::string& v) { c.upstreamVerify = parseBool(k, v); }},
      {"icap.servers",
       [&](const std::string& k, const std::string& v) {
         c.icapServers.clear();
         std::string item;
         for (std::size_t i = 0; i <= v.size(); ++i) {
           if (i == v.size() || v[i] == ',') {
             if (!item.empty()) c.icapServers.push_back(item);
             item.clear();
           } else if (v[i] != ' ' && v[i] != '\t') {
             item += v[i];
           }
         }
         for (const auto& s : c.icapServers) {
           if (s.rfind("icap://", 0) != 0) throw ConfigError(k + ": '" + s + "' is not an icap:// URL");
         }
       }},
      {"icap.timeout",
       [&](const std::string& k, const std::string& v) {
         const auto ms = parseDuration(k, v);
         if (ms < std::chrono::seconds(1)) throw ConfigError(k + ": at least 1 s (the ICAP library counts seconds)");
         c.icapTimeout = std::chrono::duration_cast<std::chrono::seconds>(ms);
       }},
      {"icap.connections", [&](const std::string& k, const std::string& v) { c.icapConnections = number(k, v, 1, 1024); }},
      {"scan.workers", [&](const std::string& k, const std::string& v) { c.scanWorkers = number(k, v, 1, 1024); }},
      {"fail_mode",
       [&](const std::string& k, const std::string& v) {
         if (v == "pass") c.failMode = LocalFailMode::Pass;
         else if (v == "drop") c.failMode = LocalFailMode::Drop;
         else throw ConfigError(k + ": expected pass or drop, got '" + v + "'");
       }},
      {"scan.max_message_size", [&](const std::string& k, const std::string& v) { c.maxMessageSize = parseSize(k, v); }},
      {"scan.spill_threshold", [&](const std::string& k, const std::string& v) { c.spillThreshold = parseSize(k, v); }},
      {"scan.spill_dir", [&](const std::string&, const std::string& v) { c.spillDir = v; }},
      {"imap.max_line", [&](const std::string& k, const std::string& v) { c.maxLineBytes = parseSize(k, v); }},
      {"imap.keepalive_interval", [&](const std::string& k, const std::string& v) { c.keepaliveInterval = parseDuration(k, v); }},
      {"imap.idle_timeout", [&](const std::string& k, const std::string& v) { c.idleTimeout = parseDuration(k, v); }},
      {"imap.line_timeout", [&](const std::string& k, const std::string& v) { c.lineTimeout = parseDuration(k, v); }},
      {"upstream.connect_timeout", [&](const std::string& k, const std::string& v) { c.connectTimeout = parseDuration(k, v); }},
      {"upstream.timeout", [&](const std::string& k, const std::string& v) { c.upstreamTimeout = parseDuration(k, v); }},
      {"log.level", [&](const std::string&, const std::string& v) { c.logLevel = v; }},
  };
  loadSettings(path, setters);

  if (!haveUpstream) throw ConfigError(path + ": upstream.address is required");
  if (c.icapServers.empty()) throw ConfigError(path + ": icap.servers is required");
  if (!c.imapListen && !c.imapsListen) throw ConfigError(path + ": set imap.listen and/or imaps.listen");
  if (c.imapsListen && (c.tlsCertificate.empty() || c.tlsPrivateKey.empty())) {
    throw ConfigError(path + ": imaps.listen needs tls.certificate and tls.private_key");
  }
  if (c.tlsCertificate.empty() != c.tlsPrivateKey.empty()) {
    throw ConfigError(path + ": set both tls.certificate and tls.private_key, or neither");
  }
  return c;
}

}  // namespace imapav::redirector
