#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace imapav::db {

// One row of the scan event log: what was scanned, for whom, and what came of it.
struct ScanEvent {
  std::int64_t timeUs = 0;  // unix epoch microseconds (scan end)
  std::string gateway;      // ICAP client (the gateway) IP address
  std::string service;      // ICAP service name, e.g. "avscan"
  std::string method;       // "RESPMOD" / "REQMOD"
  std::string clientIp;     // X-Client-IP, "" if not sent
  std::string user;         // decoded X-Authenticated-User, "" if not sent
  std::string imapUrl;      // request URL, e.g. imap://u@h/INBOX;UIDVALIDITY=7/;UID=42
  std::string mailbox;      // parsed from the URL, "" if none
  std::optional<std::int64_t> uidValidity;
  std::optional<std::int64_t> uid;
  std::string messageId;
  std::string sender;
  std::string recipients;  // comma separated
  std::string subject;
  std::int64_t size = 0;   // bytes of the scanned message
  std::string sha256;      // hex
  std::string verdict;     // "clean" | "infected" | "error"
  std::string threats;     // names, comma separated
  std::string action;      // "pass" | "replace" | "pass-unscanned" | ...
  std::string errorClass;  // "" or "too_large", "timeout", ...
  std::int64_t scanTimeUs = 0;
  std::string engineVersion;
  std::string signatureVersion;
  bool cached = false;  // reserved for a later verdict cache

  bool operator==(const ScanEvent&) const = default;
};

}  // namespace imapav::db
