#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "icap-server/scan/error_class.hpp"
#include "icap-server/scan/message_body.hpp"

namespace imapav::scan {

enum class Verdict { Clean, Infected, Error };

struct ScanResult {
  Verdict verdict = Verdict::Error;
  std::vector<std::string> threats;     // Infected: every distinct name found, in order
  ErrorClass error = ErrorClass::None;  // Error: why there is no verdict
  std::string detail;                   // the heuristic name(s) or cl_strerror text
  std::chrono::microseconds elapsed{0};
};

// What the server scans with, so tests can put a fake behind it.
class Scanner {
 public:
  virtual ~Scanner() = default;
  // Thread-safe; never throws for a bad message.
  virtual ScanResult scan(const MessageBody& body) = 0;
  virtual std::string engineVersion() const = 0;     // e.g. "ClamAV 1.4.6"
  virtual std::string signatureVersion() const = 0;  // changes whenever the database files change
  virtual unsigned signatureCount() const { return 0; }
};

}  // namespace imapav::scan
