#include "icap-server/scan/clamav_scanner.hpp"

#include <unistd.h>

#include <atomic>

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

#include <sys/stat.h>

#include <clamav.h>
#include <openssl/evp.h>

namespace imapav::scan {
namespace {

// allmatch can report the same name once per layer (a zip and its member); a hostile
// message could match thousands of times, so the list is bounded.
constexpr std::size_t kMaxAlerts = 64;

struct ScanContext {
  std::vector<std::string> alerts;
  bool outOfMemory = false;
  std::string engineError;  // the first error libclamav reported during this scan

  void add(const char* name) noexcept {
    if (name == nullptr || alerts.size() >= kMaxAlerts) {
      return;
    }
    try {
      alerts.emplace_back(name);
    } catch (const std::bad_alloc&) {
      outOfMemory = true;
    }
  }
};

// Called by libclamav for each alert, on the scanning thread; context is the ScanContext.
void onVirusFound(int /*fd*/, const char* name, void* context) {
  if (context != nullptr) {
    static_cast<ScanContext*>(context)->add(name);
  }
}

struct FmapDeleter {
  void operator()(cl_fmap_t* map) const noexcept { cl_fmap_close(map); }
};

std::atomic<ClamavLog> logSink{nullptr};
// The scan running on this thread: libclamav reports some errors before it has set up the
// per-scan context it would pass to the callback.
thread_local ScanContext* tCurrentScan = nullptr;

// libclamav's one message callback. During a scan, context is that scan's ScanContext
// (libclamav keeps it per thread). Some errors, such as "Can't create temporary directory
// for scan", end with CL_CLEAN although parts were never scanned: record them so the scan
// fails closed.
void onClamavMessage(enum cl_msg severity, const char* /*full*/, const char* msg, void* context) {
  std::string_view text = msg != nullptr ? msg : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  auto* scan = context != nullptr ? static_cast<ScanContext*>(context) : tCurrentScan;
  if (severity == CL_MSG_ERROR && scan != nullptr) {
    if (scan->engineError.empty()) {
      try {
        scan->engineError = std::string(text.substr(0, 300));
        if (scan->engineError.empty()) scan->engineError = "libclamav error";
      } catch (const std::bad_alloc&) {
        scan->outOfMemory = true;
      }
    }
  }
  if (const ClamavLog log = logSink.load()) {
    log(severity == CL_MSG_ERROR ? 3 : severity == CL_MSG_WARN ? 4 : 7, text);
  }
}

cl_error_t initLibrary() {
  static std::once_flag once;
  static cl_error_t result = CL_SUCCESS;
  std::call_once(once, [] {
    cl_set_clcb_msg(onClamavMessage);  // also keeps libclamav off stderr
    result = cl_init(CL_INIT_DEFAULT);
  });
  return result;
}

cl_scan_options scanOptions() {
  cl_scan_options options{};
  options.general = CL_SCAN_GENERAL_ALLMATCHES | CL_SCAN_GENERAL_HEURISTICS;
  options.parse = CL_SCAN_PARSE_ARCHIVE | CL_SCAN_PARSE_ELF | CL_SCAN_PARSE_PDF | CL_SCAN_PARSE_SWF |
                  CL_SCAN_PARSE_HWP3 | CL_SCAN_PARSE_XMLDOCS | CL_SCAN_PARSE_MAIL |
                  CL_SCAN_PARSE_OLE2 | CL_SCAN_PARSE_HTML | CL_SCAN_PARSE_PE |
                  CL_SCAN_PARSE_ONENOTE | CL_SCAN_PARSE_IMAGE | CL_SCAN_PARSE_IMAGE_FUZZY_HASH;
  // Without these, a limit, an encrypted archive or a broken file is silently "clean".
  options.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE |
                      CL_SCAN_HEURISTIC_ENCRYPTED_DOC | CL_SCAN_HEURISTIC_BROKEN |
                      CL_SCAN_HEURISTIC_BROKEN_MEDIA;
  return options;
}

std::string hexOf(const unsigned char* data, std::size_t size) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    hex.push_back(kHex[data[i] >> 4]);
    hex.push_back(kHex[data[i] & 0x0f]);
  }
  return hex;
}

long long clampToLongLong(std::uint64_t value) {
  return value > static_cast<std::uint64_t>(LLONG_MAX) ? LLONG_MAX : static_cast<long long>(value);
}

void setNum(cl_engine* engine, cl_engine_field field, long long value, const char* what) {
  const cl_error_t rc = cl_engine_set_num(engine, field, value);
  if (rc != CL_SUCCESS) {
    throw std::runtime_error(std::string("cannot set libclamav limit ") + what + ": " +
                             cl_strerror(rc));
  }
}

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) {
    if (!text.empty()) {
      text += ',';
    }
    text += name;
  }
  return text;
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string databaseFingerprint(const std::string& dir) {
  // ctime and the inode too: a copy that keeps size and mtime (cp -p, rsync -a) still
  // changes them, and no one can set ctime.
  std::vector<std::pair<std::string, std::string>> files;  // name, its metadata
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    const auto ns = [](const timespec& t) {
      return std::to_string(static_cast<long long>(t.tv_sec) * 1000000000LL + static_cast<long long>(t.tv_nsec));
    };
    files.emplace_back(entry.path().filename().string(),
                       std::to_string(static_cast<long long>(st.st_size)) + ' ' + ns(st.st_mtim) + ' ' +
                           ns(st.st_ctim) + ' ' + std::to_string(static_cast<unsigned long long>(st.st_ino)));
  }
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& [name, meta] : files) {
    text += name;
    text += '\0';
    text += meta;
    text += '\n';
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 of the signature database listing failed");
  }
  return hexOf(digest.data(), length).substr(0, 12);
}

std::optional<ErrorClass> errorClassForAlert(std::string_view alertName) {
  constexpr std::string_view kLimits = "Heuristics.Limits.Exceeded.";
  if (startsWith(alertName, kLimits)) {
    const std::string_view limit = alertName.substr(kLimits.size());
    if (limit == "MaxScanSize" || limit == "MaxFileSize") {
      return ErrorClass::TooLarge;
    }
    if (limit == "MaxScanTime") {
      return ErrorClass::Timeout;
    }
    // MaxRecursion, MaxFiles, and any per-container limit added later.
    return ErrorClass::ArchiveLimit;
  }
  if (startsWith(alertName, "Heuristics.Encrypted.")) {
    return ErrorClass::Encrypted;
  }
  if (startsWith(alertName, "Heuristics.Broken.")) {
    return ErrorClass::Corrupt;
  }
  return std::nullopt;
}

ErrorClass errorClassForReturnCode(int returnCode) {
  switch (returnCode) {
    case CL_CLEAN:
      return ErrorClass::None;
    case CL_ETIMEOUT:
      return ErrorClass::Timeout;
    case CL_EMAXSIZE:
      return ErrorClass::TooLarge;
    case CL_EMAXREC:
    case CL_EMAXFILES:
      return ErrorClass::ArchiveLimit;
    case CL_EMEM:
    case CL_ETMPFILE:
    case CL_ETMPDIR:
    case CL_EWRITE:
      return ErrorClass::OutOfResources;
    case CL_EFORMAT:
    case CL_EPARSE:
      return ErrorClass::Corrupt;
    default:
      return ErrorClass::Internal;
  }
}

ScanResult classifyScan(int returnCode, const std::vector<std::string>& alerts) {
  std::vector<std::string> detections;
  std::vector<std::string> heuristics;
  std::optional<ErrorClass> heuristicClass;
  for (const auto& name : alerts) {
    auto& list = errorClassForAlert(name) ? heuristics : detections;
    if (std::find(list.begin(), list.end(), name) != list.end()) {
      continue;
    }
    list.push_back(name);
    if (!heuristicClass) {
      heuristicClass = errorClassForAlert(name);
    }
  }

  ScanResult result;
  if (!detections.empty()) {
    // A real detection wins over a limit hit on another part of the message.
    result.verdict = Verdict::Infected;
    result.threats = std::move(detections);
    result.detail = join(heuristics);
  } else if (heuristicClass) {
    result.error = *heuristicClass;
    result.detail = join(heuristics);
  } else if (returnCode == CL_CLEAN || returnCode == CL_VERIFIED) {
    // CL_VERIFIED: an allow-list (.fp/.sfp) signature vouched for the content.
    result.verdict = Verdict::Clean;
  } else if (returnCode == CL_VIRUS) {
    result.error = ErrorClass::Internal;
    result.detail = "libclamav reported a detection without a name";
  } else {
    result.error = errorClassForReturnCode(returnCode);
    result.detail = cl_strerror(static_cast<cl_error_t>(returnCode));
  }
  return result;
}

void ClamavScanner::EngineDeleter::operator()(cl_engine* engine) const noexcept {
  cl_engine_free(engine);
}

ClamavScanner::ClamavScanner(EnginePtr engine, unsigned signatureCount,
                             std::string signatureVersion)
    : engine_(std::move(engine)),
      signatureCount_(signatureCount),
      signatureVersion_(std::move(signatureVersion)) {}

ClamavScanner::~ClamavScanner() = default;

std::unique_ptr<ClamavScanner> ClamavScanner::load(const EngineOptions& options) {
  namespace fs = std::filesystem;
  const std::string& dir = options.databaseDir;
  if (dir.empty()) {
    throw std::runtime_error("no signature database directory configured");
  }
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (!fs::exists(status)) {
    throw std::runtime_error("signature database directory " + dir + " does not exist");
  }
  if (!fs::is_directory(status)) {
    throw std::runtime_error("signature database path " + dir + " is not a directory");
  }
  fs::directory_iterator listing(dir, ec);
  if (ec) {
    throw std::runtime_error("cannot read signature database directory " + dir + ": " +
                             ec.message());
  }
  if (listing == fs::directory_iterator()) {
    throw std::runtime_error("signature database directory " + dir +
                             " is empty: install signatures (freshclam) first");
  }

  if (const cl_error_t rc = initLibrary(); rc != CL_SUCCESS) {
    throw std::runtime_error(std::string("cl_init failed: ") + cl_strerror(rc));
  }
  // libclamav scans attachments in files of its own there; without it they go unscanned.
  if (std::error_code tec; !fs::is_directory(options.tmpDir, tec) || ::access(options.tmpDir.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error("temporary directory " + options.tmpDir + " (scan.tmp_dir) is not a writable directory");
  }
  std::string version = databaseFingerprint(dir);

  EnginePtr engine(cl_engine_new());
  if (!engine) {
    throw std::runtime_error("cl_engine_new failed: out of memory");
  }
  setNum(engine.get(), CL_ENGINE_MAX_SCANSIZE, clampToLongLong(options.maxScanSize),
         "max scan size");
  setNum(engine.get(), CL_ENGINE_MAX_FILESIZE, clampToLongLong(options.maxFileSize),
         "max file size");
  setNum(engine.get(), CL_ENGINE_MAX_RECURSION, options.maxRecursion, "max recursion");
  setNum(engine.get(), CL_ENGINE_MAX_FILES, options.maxFiles, "max files");
  setNum(engine.get(), CL_ENGINE_MAX_SCANTIME, options.maxScanTimeMs, "max scan time");
  if (const cl_error_t rc = cl_engine_set_str(engine.get(), CL_ENGINE_TMPDIR, options.tmpDir.c_str());
      rc != CL_SUCCESS) {
    throw std::runtime_error("cannot set libclamav temporary directory " + options.tmpDir + ": " +
                             cl_strerror(rc));
  }

  unsigned signatures = 0;
  if (const cl_error_t rc = cl_load(dir.c_str(), engine.get(), &signatures, CL_DB_STDOPT);
      rc != CL_SUCCESS) {
    // libclamav says CL_EOPEN both for an unreadable file and for a directory without
    // any database file it recognises.
    const std::string hint = rc == CL_EOPEN ? " (no database files such as *.cvd, *.cld, *.ndb, "
                                              "*.hdb there, or one cannot be read)"
                                            : "";
    throw std::runtime_error("cannot load signatures from " + dir + ": " + cl_strerror(rc) + hint);
  }
  if (signatures == 0) {
    throw std::runtime_error("no signatures loaded from " + dir +
                             ": refusing to start a scanner that would find nothing");
  }
  // Set before compiling: changing callbacks on an engine in use is not thread-safe.
  cl_engine_set_clcb_virus_found(engine.get(), onVirusFound);
  if (const cl_error_t rc = cl_engine_compile(engine.get()); rc != CL_SUCCESS) {
    throw std::runtime_error("cannot compile signatures from " + dir + ": " + cl_strerror(rc));
  }

  const long long dbVersion = cl_engine_get_num(engine.get(), CL_ENGINE_DB_VERSION, nullptr);
  version = std::to_string(dbVersion) + "-" + version;
  return std::unique_ptr<ClamavScanner>(
      new ClamavScanner(std::move(engine), signatures, std::move(version)));
}

void ClamavScanner::setLog(ClamavLog log) {
  logSink.store(log);
  initLibrary();
}

ScanResult ClamavScanner::scan(const MessageBody& body) {
  const auto start = std::chrono::steady_clock::now();
  ScanResult result;
  try {
    if (body.failed()) {
      result.error = ErrorClass::OutOfResources;
      result.detail = body.error();
    } else if (body.size() == 0) {
      result.verdict = Verdict::Clean;
    } else {
      ScanContext context;
      cl_scan_options options = scanOptions();
      const char* virusName = nullptr;
      unsigned long scanned = 0;
      cl_error_t rc = CL_CLEAN;
      struct Current {  // errors reported on this thread belong to this scan
        explicit Current(ScanContext& c) { tCurrentScan = &c; }
        ~Current() { tCurrentScan = nullptr; }
        Current(const Current&) = delete;
        Current& operator=(const Current&) = delete;
      } current(context);
      if (body.spilled()) {
        rc = cl_scandesc_callback(body.fd(), nullptr, &virusName, &scanned, engine_.get(),
                                  &options, &context);
      } else {
        const std::string_view data = body.memory();
        std::unique_ptr<cl_fmap_t, FmapDeleter> map(cl_fmap_open_memory(data.data(), data.size()));
        rc = map ? cl_scanmap_callback(map.get(), nullptr, &virusName, &scanned, engine_.get(),
                                       &options, &context)
                 : CL_EMEM;
      }
      // The callback normally reported it already; classifyScan drops duplicates.
      context.add(virusName);
      if (context.outOfMemory && context.alerts.empty()) {
        rc = CL_EMEM;
      }
      result = classifyScan(rc, context.alerts);
      if (result.verdict == Verdict::Clean && !context.engineError.empty()) {
        // Not "clean": libclamav could not look at everything.
        result.verdict = Verdict::Error;
        const bool resources = context.engineError.find("emporary") != std::string::npos ||
                               context.engineError.find("memory") != std::string::npos ||
                               context.engineError.find("Can't create") != std::string::npos;
        result.error = resources ? ErrorClass::OutOfResources : ErrorClass::Internal;
        result.detail = context.engineError;
      }
    }
  } catch (const std::bad_alloc&) {
    result = ScanResult{};
    result.error = ErrorClass::OutOfResources;
    result.detail = "out of memory";
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  return result;
}

std::string ClamavScanner::engineVersion() const { return std::string("ClamAV ") + cl_retver(); }

std::string ClamavScanner::signatureVersion() const { return signatureVersion_; }

}  // namespace imapav::scan
