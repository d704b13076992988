#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "icap-server/scan/scanner.hpp"

struct cl_engine;

namespace imapav::scan {

struct EngineOptions {
  std::string databaseDir;  // production: /var/lib/clamav
  std::string tmpDir = "/tmp";
  std::uint64_t maxScanSize = 100 << 20;  // CL_ENGINE_MAX_SCANSIZE
  std::uint64_t maxFileSize = 50 << 20;   // CL_ENGINE_MAX_FILESIZE
  std::uint32_t maxRecursion = 16;
  std::uint32_t maxFiles = 10000;
  std::uint32_t maxScanTimeMs = 120000;
};

// Where libclamav's own messages go: severity 3 (error), 4 (warning) or 7 (debug), text
// without its line end. Called on scanning threads; must be thread-safe.
using ClamavLog = void (*)(int severity, std::string_view text);

// One compiled libclamav engine. Scans run concurrently on it; a reload builds a new
// ClamavScanner and swaps it in.
class ClamavScanner final : public Scanner {
 public:
  // Throws std::runtime_error with a clear message when the directory is missing or
  // unreadable, holds no signatures, or libclamav fails to load or compile it.
  // Also when tmpDir is not a writable directory.
  static std::unique_ptr<ClamavScanner> load(const EngineOptions& options);
  // Process-wide: libclamav has one message callback. Errors it reports during a scan
  // always make that scan an error (never "clean"), whether or not a log is set.
  static void setLog(ClamavLog log);

  ~ClamavScanner() override;
  ClamavScanner(const ClamavScanner&) = delete;
  ClamavScanner& operator=(const ClamavScanner&) = delete;

  ScanResult scan(const MessageBody& body) override;
  std::string engineVersion() const override;
  // "<CL_ENGINE_DB_VERSION>-<databaseFingerprint() of the directory>"
  std::string signatureVersion() const override;
  unsigned signatureCount() const override { return signatureCount_; }

 private:
  struct EngineDeleter {
    void operator()(cl_engine* engine) const noexcept;
  };
  using EnginePtr = std::unique_ptr<cl_engine, EngineDeleter>;

  ClamavScanner(EnginePtr engine, unsigned signatureCount, std::string signatureVersion);

  EnginePtr engine_;
  unsigned signatureCount_;
  std::string signatureVersion_;
};

// 12 hex digits of SHA-256 over the sorted name, size, mtime, ctime and inode of the
// regular files in dir: it changes whenever a database file is added, removed, rewritten
// or replaced, and costs one stat per file (no file is read). Throws
// std::filesystem::filesystem_error when dir cannot be listed.
std::string databaseFingerprint(const std::string& dir);

// The classification ClamavScanner::scan applies, exposed for table tests.
// nullopt: the alert is a real detection. Otherwise the error class of a limit, encryption
// or broken-file heuristic (Heuristics.Limits.Exceeded.*, Heuristics.Encrypted.*,
// Heuristics.Broken.*).
std::optional<ErrorClass> errorClassForAlert(std::string_view alertName);
// The error class of a libclamav return code (a cl_error_t value) other than CL_CLEAN/CL_VIRUS.
ErrorClass errorClassForReturnCode(int returnCode);
// Verdict from a scan's return code and every alert name reported (in order, may repeat).
ScanResult classifyScan(int returnCode, const std::vector<std::string>& alerts);

}  // namespace imapav::scan
