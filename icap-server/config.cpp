#include "icap-server/config.hpp"

#include <algorithm>
#include <filesystem>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <thread>
#include <vector>

namespace imapav::icapd {
namespace {

unsigned toUnsigned(const std::string& key, const std::string& text, std::uint64_t min, std::uint64_t max) {
  return static_cast<unsigned>(config::parseNumber(key, text, min, max));
}

}  // namespace

Config loadConfig(const std::string& path) {
  Config c;
  // libclamav writes every MIME part and archive member it unpacks to a scratch file:
  // on tmpfs that costs far less (1.3-1.5x more 50 KB scans/s measured here) and no
  // message content touches a disk.
  std::error_code ec;
  c.engine.tmpDir = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "/tmp";
  const std::map<std::string, config::Setter> setters = {
      {"icap.listen",
       [&](const std::string& k, const std::string& v) {
         const auto hp = config::parseHostPort(k, v);
         c.listenHost = hp.host;
         c.listenPort = hp.port;
       }},
      {"icap.service",
       [&](const std::string& k, const std::string& v) {
         if (v.empty() || v.find_first_of("/?# \t") != std::string::npos) throw ConfigError(k + ": invalid service name '" + v + "'");
         c.service = v;
       }},
      {"icap.methods",
       [&](const std::string& k, const std::string& v) {
         c.respmod = c.reqmod = false;
         std::string item;
         for (std::size_t i = 0; i <= v.size(); ++i) {
           if (i < v.size() && v[i] != ',') {
             if (!std::isspace(static_cast<unsigned char>(v[i]))) item += v[i];
             continue;
           }
           if (item == "RESPMOD") c.respmod = true;
           else if (item == "REQMOD") c.reqmod = true;
           else throw ConfigError(k + ": unknown method '" + item + "' (RESPMOD, REQMOD)");
           item.clear();
         }
       }},
      {"icap.max_connections", [&](const std::string& k, const std::string& v) { c.maxConnections = toUnsigned(k, v, 1, 100000); }},
      {"icap.read_timeout", [&](const std::string& k, const std::string& v) { c.readTimeout = parseDuration(k, v); }},
      {"icap.request_timeout", [&](const std::string& k, const std::string& v) { c.requestTimeout = parseDuration(k, v); }},
      {"icap.idle_timeout", [&](const std::string& k, const std::string& v) { c.idleTimeout = parseDuration(k, v); }},
      {"icap.preview", [&](const std::string& k, const std::string& v) { c.preview = parseSize(k, v); }},
      {"icap.options_ttl", [&](const std::string& k, const std::string& v) { c.optionsTtl = toUnsigned(k, v, 0, 86400 * 7); }},
      {"icap.max_body_size", [&](const std::string& k, const std::string& v) { c.maxBodySize = parseSize(k, v); }},
      {"icap.max_header_size", [&](const std::string& k, const std::string& v) { c.maxHeaderBytes = parseSize(k, v); }},
      {"scan.database_dir", [&](const std::string&, const std::string& v) { c.engine.databaseDir = v; }},
      {"scan.tmp_dir", [&](const std::string&, const std::string& v) { c.engine.tmpDir = v; }},
      {"scan.max_scan_size", [&](const std::string& k, const std::string& v) { c.engine.maxScanSize = parseSize(k, v); }},
      {"scan.max_file_size", [&](const std::string& k, const std::string& v) { c.engine.maxFileSize = parseSize(k, v); }},
      {"scan.max_recursion", [&](const std::string& k, const std::string& v) { c.engine.maxRecursion = toUnsigned(k, v, 1, 100); }},
      {"scan.max_files", [&](const std::string& k, const std::string& v) { c.engine.maxFiles = toUnsigned(k, v, 1, 1000000); }},
      {"scan.max_scan_time",
       [&](const std::string& k, const std::string& v) {
         c.engine.maxScanTimeMs = static_cast<std::uint32_t>(parseDuration(k, v).count());
       }},
      {"scan.spill_dir", [&](const std::string&, const std::string& v) { c.spillDir = v; }},
      {"scan.spill_threshold", [&](const std::string& k, const std::string& v) { c.spillThreshold = parseSize(k, v); }},
      {"scan.threads", [&](const std::string& k, const std::string& v) { c.scanThreads = toUnsigned(k, v, 0, 1024); }},
      {"scan.queue_timeout", [&](const std::string& k, const std::string& v) { c.queueTimeout = parseDuration(k, v); }},
      {"policy.fail_mode",
       [&](const std::string& k, const std::string& v) {
         if (v == "pass") c.failMode = FailMode::Pass;
         else if (v == "drop") c.failMode = FailMode::Drop;
         else throw ConfigError(k + ": expected pass or drop, got '" + v + "'");
       }},
      {"notice.virus_template", [&](const std::string&, const std::string& v) { c.virusTemplateFile = v; }},
      {"notice.error_template", [&](const std::string&, const std::string& v) { c.errorTemplateFile = v; }},
      {"notice.from", [&](const std::string&, const std::string& v) { c.noticeFrom = v; }},
      {"log.database", [&](const std::string&, const std::string& v) { c.database = v; }},
      {"log.level",
       [&](const std::string& k, const std::string& v) {
         static const char* const kLevels[] = {"fatal", "critical", "error", "warning", "notice", "information", "debug", "trace"};
         if (std::find(std::begin(kLevels), std::end(kLevels), v) == std::end(kLevels)) throw ConfigError(k + ": unknown level '" + v + "'");
         c.logLevel = v;
       }},
  };

  config::loadSettings(path, setters);

  if (c.engine.databaseDir.empty()) throw ConfigError(path + ": scan.database_dir is required");
  if (c.scanThreads == 0) c.scanThreads = std::max(1u, std::thread::hardware_concurrency());
  if (c.noticeFrom.empty()) c.noticeFrom = "imapav <postmaster@localhost>";
  if (c.maxBodySize < c.preview) throw ConfigError("icap.max_body_size must not be below icap.preview");
  return c;
}

}  // namespace imapav::icapd
