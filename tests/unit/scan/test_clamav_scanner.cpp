#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <sstream>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <clamav.h>

#include "icap-server/scan/clamav_scanner.hpp"
#include "tests/unit/scan/fixtures.hpp"

namespace fs = std::filesystem;

using imapav::scan::ClamavScanner;
using imapav::scan::EngineOptions;
using imapav::scan::ErrorClass;
using imapav::scan::MessageBody;
using imapav::scan::ScanResult;
using imapav::scan::Verdict;
using namespace imapav::scan::test;

namespace {

EngineOptions testOptions() {
  EngineOptions options;
  options.databaseDir = signaturesDir();
  return options;
}

// Engines are expensive to build; tests with default limits share one.
ClamavScanner& defaultScanner() {
  static const std::unique_ptr<ClamavScanner> scanner = ClamavScanner::load(testOptions());
  return *scanner;
}

ScanResult scanText(ClamavScanner& scanner, std::string_view content,
                    std::size_t spillThreshold = 1 << 20) {
  MessageBody body(spillThreshold, "/tmp");
  BOOST_REQUIRE(body.append(content));
  return scanner.scan(body);
}

std::vector<std::string> names(std::initializer_list<std::string_view> list) {
  return {list.begin(), list.end()};
}

// n zips, each holding the previous one; the innermost holds a clean text file.
std::string nestedZips(int depth) {
  std::string data = makeZip({{"inner.txt", "nothing to see here\n"}});
  for (int i = 0; i < depth; ++i) {
    data = makeZip({{"level" + std::to_string(i) + ".zip", data}});
  }
  return data;
}

std::string manyFilesZip(int count, std::string_view lastMember = "") {
  std::vector<ZipEntry> entries;
  for (int i = 0; i < count; ++i) {
    entries.push_back({"file" + std::to_string(i) + ".txt", "line " + std::to_string(i) + "\n"});
  }
  if (!lastMember.empty()) {
    entries.push_back({"last.txt", std::string(lastMember)});
  }
  return makeZip(entries);
}

void copyDirectory(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

std::string loadError(const EngineOptions& options) {
  try {
    ClamavScanner::load(options);
  } catch (const std::runtime_error& error) {
    BOOST_TEST_MESSAGE("load error: " << error.what());
    return error.what();
  }
  return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clamav_scanner)

BOOST_AUTO_TEST_CASE(signature_file_holds_the_eicar_hex) {
  // Guards the .ndb against edits: it must match the string the tests build.
  const fs::path path = signaturesDir() + "/imapav-test.ndb";
  std::string ndb(fs::file_size(path), '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(ndb.data(), static_cast<std::streamsize>(ndb.size()));
  BOOST_REQUIRE(in.good());
  std::string hex;
  for (const char c : eicar()) {
    static constexpr std::string_view kHex = "0123456789abcdef";
    hex.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
    hex.push_back(kHex[static_cast<unsigned char>(c) & 0x0f]);
  }
  BOOST_TEST(ndb.find("Eicar-Test-Signature:0:*:" + hex + "\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(loads_the_test_database) {
  ClamavScanner& scanner = defaultScanner();
  BOOST_TEST(scanner.signatureCount() == 3U);
  BOOST_TEST(scanner.engineVersion() == std::string("ClamAV ") + cl_retver());
  // Our .ndb is not a CVD, so the database version is 0.
  const std::string version = scanner.signatureVersion();
  BOOST_TEST(version.size() == 14U, version);
  BOOST_TEST(version.substr(0, 2) == "0-", version);
  BOOST_TEST(version.find_first_not_of("0123456789abcdef", 2) == std::string::npos, version);
}

BOOST_AUTO_TEST_CASE(clean_message) {
  const ScanResult result =
      scanText(defaultScanner(), mimeMessage("Hello Bob,\r\nsee attached.\r\n", "notes.txt",
                                             "meeting at noon\n"));
  BOOST_TEST((result.verdict == Verdict::Clean));
  BOOST_TEST(result.threats.empty());
  BOOST_TEST((result.error == ErrorClass::None));
  BOOST_TEST(result.elapsed.count() > 0);
}

BOOST_AUTO_TEST_CASE(empty_body_is_clean) {
  MessageBody body(1024, "/tmp");
  BOOST_TEST((defaultScanner().scan(body).verdict == Verdict::Clean));
}

BOOST_AUTO_TEST_CASE(eicar_plain) {
  const ScanResult result = scanText(defaultScanner(), eicar());
  BOOST_TEST((result.verdict == Verdict::Infected));
  BOOST_TEST(result.threats == names({kEicarName}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(marker_plain) {
  const ScanResult result =
      scanText(defaultScanner(), "Subject: x\r\n\r\nbefore " + std::string(kMarker) + " after\r\n");
  BOOST_TEST((result.verdict == Verdict::Infected));
  BOOST_TEST(result.threats == names({kMarkerName}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(eicar_in_base64_attachment) {
  const std::string message = mimeMessage("Hi", "eicar.com", eicar());
  BOOST_REQUIRE(message.find(eicar()) == std::string::npos);  // only the mail parser sees it
  const ScanResult result = scanText(defaultScanner(), message);
  BOOST_TEST((result.verdict == Verdict::Infected));
  BOOST_TEST(result.threats == names({kEicarName}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(eicar_in_zip_in_base64_attachment) {
  const std::string message =
      mimeMessage("Hi", "docs.zip", makeZip({{"readme.txt", "hello\n"}, {"eicar.com", eicar()}}));
  BOOST_REQUIRE(message.find(eicar()) == std::string::npos);
  const ScanResult result = scanText(defaultScanner(), message);
  BOOST_TEST((result.verdict == Verdict::Infected));
  // allmatch reports it for the zip and for its member; the result lists it once.
  BOOST_TEST(result.threats == names({kEicarName}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(two_threats_in_one_message) {
  const std::string message =
      mimeMessage("text " + std::string(kMarker) + "\r\n", "a.zip",
                  makeZip({{"a.txt", "x " + std::string(kSecondMarker)}, {"e.com", eicar()}}));
  const ScanResult result = scanText(defaultScanner(), message);
  BOOST_TEST((result.verdict == Verdict::Infected));
  std::vector<std::string> threats = result.threats;
  std::sort(threats.begin(), threats.end());
  BOOST_TEST(threats == names({kEicarName, kMarkerName, kSecondName}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(spilled_body_is_scanned_like_memory) {
  ClamavScanner& scanner = defaultScanner();
  std::string filler;
  for (int i = 0; i < 2000; ++i) {
    filler += "line " + std::to_string(i) + " of a long letter\r\n";
  }
  const std::string infected = mimeMessage(filler, "e.zip", makeZip({{"e.com", eicar()}}));
  const std::string clean = mimeMessage(filler, "c.zip", makeZip({{"c.txt", "clean\n"}}));
  for (const auto* content : {&infected, &clean}) {
    MessageBody spilled(1024, "/tmp");
    MessageBody inMemory(1 << 20, "/tmp");
    BOOST_REQUIRE(spilled.append(*content));
    BOOST_REQUIRE(inMemory.append(*content));
    BOOST_REQUIRE(spilled.spilled());
    BOOST_REQUIRE(!inMemory.spilled());
    const ScanResult fromFile = scanner.scan(spilled);
    const ScanResult fromMemory = scanner.scan(inMemory);
    BOOST_TEST((fromFile.verdict == fromMemory.verdict));
    BOOST_TEST(fromFile.threats == fromMemory.threats, boost::test_tools::per_element());
  }
  MessageBody body(1024, "/tmp");
  BOOST_REQUIRE(body.append(infected));
  const ScanResult result = scanner.scan(body);
  BOOST_TEST((result.verdict == Verdict::Infected));
  BOOST_TEST(result.threats == names({kEicarName}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(member_over_max_file_size_is_too_large) {
  EngineOptions options = testOptions();
  options.maxFileSize = 4000;
  const auto scanner = ClamavScanner::load(options);
  const ScanResult result =
      scanText(*scanner, makeZip({{"big.txt", std::string(10000, 'A') + std::string(kMarker)}}));
  // The marker is in the zip's raw bytes too, but the whole zip exceeds the limit.
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::TooLarge));
  BOOST_TEST(result.detail == "Heuristics.Limits.Exceeded.MaxFileSize");
}

BOOST_AUTO_TEST_CASE(scan_size_limit_is_too_large) {
  EngineOptions options = testOptions();
  options.maxScanSize = 1000;
  const auto scanner = ClamavScanner::load(options);
  const ScanResult result = scanText(*scanner, makeZip({{"big.txt", std::string(5000, 'B')}}));
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::TooLarge));
  BOOST_TEST(result.detail == "Heuristics.Limits.Exceeded.MaxScanSize");
}

BOOST_AUTO_TEST_CASE(nesting_beyond_max_recursion_is_archive_limit) {
  EngineOptions options = testOptions();
  options.maxRecursion = 5;
  const auto scanner = ClamavScanner::load(options);
  const ScanResult result = scanText(*scanner, nestedZips(8));
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::ArchiveLimit));
  BOOST_TEST(result.detail == "Heuristics.Limits.Exceeded.MaxRecursion");
  // Within the limit the same shape is clean.
  BOOST_TEST((scanText(*scanner, nestedZips(2)).verdict == Verdict::Clean));
}

BOOST_AUTO_TEST_CASE(more_files_than_max_files_is_archive_limit) {
  EngineOptions options = testOptions();
  options.maxFiles = 10;
  const auto scanner = ClamavScanner::load(options);
  const ScanResult result = scanText(*scanner, manyFilesZip(30));
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::ArchiveLimit));
  BOOST_TEST(result.detail == "Heuristics.Limits.Exceeded.MaxFiles");
}

BOOST_AUTO_TEST_CASE(real_detection_beats_a_limit_alert) {
  EngineOptions options = testOptions();
  options.maxFiles = 10;
  const auto scanner = ClamavScanner::load(options);
  // Stored members are visible in the zip's raw bytes, so the marker past the limit is
  // still found.
  const ScanResult result = scanText(*scanner, manyFilesZip(30, kMarker));
  BOOST_TEST((result.verdict == Verdict::Infected));
  BOOST_TEST(result.threats == names({kMarkerName}), boost::test_tools::per_element());
  BOOST_TEST(result.detail == "Heuristics.Limits.Exceeded.MaxFiles");
}

BOOST_AUTO_TEST_CASE(encrypted_zip_attachment_is_encrypted) {
  const std::string zip = makeZip({{"secret.txt", "no password for you\n"}}, true);
  const ScanResult result = scanText(defaultScanner(), mimeMessage("Hi", "secret.zip", zip));
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::Encrypted));
  BOOST_TEST(result.detail == "Heuristics.Encrypted.Zip");
}

BOOST_AUTO_TEST_CASE(broken_executable_is_corrupt) {
  const std::string truncatedPe = "MZ" + std::string(20, '\0');
  const ScanResult result = scanText(defaultScanner(), mimeMessage("Hi", "setup.exe", truncatedPe));
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::Corrupt));
  BOOST_TEST(result.detail == "Heuristics.Broken.Executable");
}

BOOST_AUTO_TEST_CASE(scan_time_limit_is_timeout) {
  // 1 ms cannot cover 3000 archive members; libclamav checks the clock per member.
  EngineOptions options = testOptions();
  options.maxScanTimeMs = 1;
  const auto scanner = ClamavScanner::load(options);
  const ScanResult result = scanText(*scanner, manyFilesZip(3000));
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::Timeout));
  BOOST_TEST(result.detail == "Heuristics.Limits.Exceeded.MaxScanTime");
}

BOOST_AUTO_TEST_CASE(failed_body_is_out_of_resources) {
  MessageBody body(4, "/nonexistent/imapav");
  BOOST_REQUIRE(!body.append("more than four bytes"));
  const ScanResult result = defaultScanner().scan(body);
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::OutOfResources));
  BOOST_TEST(result.detail == body.error());
}

BOOST_AUTO_TEST_CASE(missing_directory_throws) {
  EngineOptions options = testOptions();
  options.databaseDir = "/nonexistent/imapav-signatures";
  const std::string error = loadError(options);
  BOOST_TEST(error == "signature database directory /nonexistent/imapav-signatures does not exist");
}

BOOST_AUTO_TEST_CASE(empty_directory_throws) {
  TempDir dir;
  EngineOptions options = testOptions();
  options.databaseDir = dir.str();
  const std::string error = loadError(options);
  BOOST_TEST(error.find("is empty") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(directory_without_signatures_throws) {
  TempDir dir;
  std::ofstream(dir.path() / "README.md") << "no signatures here\n";
  EngineOptions options = testOptions();
  options.databaseDir = dir.str();
  const std::string error = loadError(options);
  BOOST_TEST(error.find("cannot load signatures from " + dir.str()) != std::string::npos, error);
  BOOST_TEST(error.find("no database files") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(database_with_zero_signatures_throws) {
  // An ignore list loads fine but leaves an engine that detects nothing.
  TempDir dir;
  std::ofstream(dir.path() / "local.ign2") << "Some.Signature.Name\n";
  EngineOptions options = testOptions();
  options.databaseDir = dir.str();
  const std::string error = loadError(options);
  BOOST_TEST(error.find("no signatures loaded from " + dir.str()) != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(malformed_database_throws) {
  TempDir dir;
  std::ofstream(dir.path() / "bad.ndb") << "Broken:0:*:zz-not-hex\n";
  EngineOptions options = testOptions();
  options.databaseDir = dir.str();
  const std::string error = loadError(options);
  BOOST_TEST(error.find("cannot load signatures from " + dir.str()) != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(signature_version_follows_the_files) {
  TempDir dir;
  copyDirectory(signaturesDir(), dir.path());
  EngineOptions options = testOptions();
  options.databaseDir = dir.str();
  const std::string first = ClamavScanner::load(options)->signatureVersion();
  BOOST_TEST(ClamavScanner::load(options)->signatureVersion() == first);

  std::ofstream(dir.path() / "imapav-test.ndb", std::ios::app)
      << "Imapav.Test.Third:0:*:494d415041562d5448495244\n";
  const auto reloaded = ClamavScanner::load(options);
  BOOST_TEST(reloaded->signatureVersion() != first);
  BOOST_TEST(reloaded->signatureCount() == 4U);
  BOOST_TEST((scanText(*reloaded, "x IMAPAV-THIRD x").verdict == Verdict::Infected));
}

BOOST_AUTO_TEST_CASE(fingerprint_sees_a_copy_that_keeps_size_and_mtime) {
  TempDir dir;
  copyDirectory(signaturesDir(), dir.path());
  const auto file = dir.path() / "imapav-test.ndb";
  struct stat before {};
  BOOST_REQUIRE(::stat(file.c_str(), &before) == 0);
  const std::string first = imapav::scan::databaseFingerprint(dir.str());
  BOOST_TEST(imapav::scan::databaseFingerprint(dir.str()) == first);
  // Same size, same mtime, other bytes (what cp -p or rsync -a may leave behind).
  std::string text;
  {
    std::ifstream in(file);
    std::ostringstream content;
    content << in.rdbuf();
    text = content.str();
  }
  text.back() = text.back() == '\n' ? ' ' : '\n';
  std::ofstream(file, std::ios::trunc) << text;
  const timespec times[2] = {before.st_atim, before.st_mtim};
  BOOST_REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
  struct stat after {};
  BOOST_REQUIRE(::stat(file.c_str(), &after) == 0);
  BOOST_REQUIRE(after.st_size == before.st_size);
  BOOST_REQUIRE(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  BOOST_TEST(imapav::scan::databaseFingerprint(dir.str()) != first);
}

BOOST_AUTO_TEST_CASE(concurrent_scans_on_one_engine) {
  ClamavScanner& scanner = defaultScanner();
  std::atomic<int> wrong{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        // Distinct content per scan, so libclamav's clean cache does not short-cut it.
        const std::string tag = "thread " + std::to_string(t) + " scan " + std::to_string(i);
        const bool infected = (i % 2) == 1;
        const std::string attachment =
            infected ? makeZip({{"a.txt", tag}, {"e.com", eicar()}}) : makeZip({{"a.txt", tag}});
        MessageBody body((i % 3) == 0 ? 512 : 1 << 20, "/tmp");
        if (!body.append(mimeMessage(tag, "a.zip", attachment))) {
          ++wrong;
          continue;
        }
        const ScanResult result = scanner.scan(body);
        const bool ok = infected ? (result.verdict == Verdict::Infected &&
                                    result.threats == std::vector<std::string>{std::string(kEicarName)})
                                 : result.verdict == Verdict::Clean;
        if (!ok) {
          ++wrong;
        }
        ++done;
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  BOOST_TEST(done.load() == 100);
  BOOST_TEST(wrong.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(classification)

const std::vector<std::pair<int, ErrorClass>> kReturnCodes = {
    {CL_ETIMEOUT, ErrorClass::Timeout},       {CL_EMAXSIZE, ErrorClass::TooLarge},
    {CL_EMAXREC, ErrorClass::ArchiveLimit},   {CL_EMAXFILES, ErrorClass::ArchiveLimit},
    {CL_EMEM, ErrorClass::OutOfResources},    {CL_ETMPFILE, ErrorClass::OutOfResources},
    {CL_ETMPDIR, ErrorClass::OutOfResources}, {CL_EWRITE, ErrorClass::OutOfResources},
    {CL_EFORMAT, ErrorClass::Corrupt},        {CL_EPARSE, ErrorClass::Corrupt},
    {CL_EREAD, ErrorClass::Internal},         {CL_EMAP, ErrorClass::Internal},
    {CL_ERROR, ErrorClass::Internal},         {CL_EARG, ErrorClass::Internal},
};

BOOST_AUTO_TEST_CASE(return_codes) {
  for (const auto& [code, expected] : kReturnCodes) {
    BOOST_TEST_CONTEXT("cl_error_t " << code) {
      BOOST_TEST((imapav::scan::errorClassForReturnCode(code) == expected));
      const ScanResult result = imapav::scan::classifyScan(code, {});
      BOOST_TEST((result.verdict == Verdict::Error));
      BOOST_TEST((result.error == expected));
      BOOST_TEST(result.detail == cl_strerror(static_cast<cl_error_t>(code)));
    }
  }
}

const std::vector<std::pair<std::string, ErrorClass>> kHeuristics = {
    {"Heuristics.Limits.Exceeded.MaxScanSize", ErrorClass::TooLarge},
    {"Heuristics.Limits.Exceeded.MaxFileSize", ErrorClass::TooLarge},
    {"Heuristics.Limits.Exceeded.MaxScanTime", ErrorClass::Timeout},
    {"Heuristics.Limits.Exceeded.MaxRecursion", ErrorClass::ArchiveLimit},
    {"Heuristics.Limits.Exceeded.MaxFiles", ErrorClass::ArchiveLimit},
    {"Heuristics.Encrypted.Zip", ErrorClass::Encrypted},
    {"Heuristics.Encrypted.PDF", ErrorClass::Encrypted},
    {"Heuristics.Broken.Executable", ErrorClass::Corrupt},
    {"Heuristics.Broken.Media.JPEG.CantReadSegmentSize", ErrorClass::Corrupt},
};

BOOST_AUTO_TEST_CASE(heuristic_alerts) {
  for (const auto& [name, expected] : kHeuristics) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST((imapav::scan::errorClassForAlert(name) == expected));
      const ScanResult result = imapav::scan::classifyScan(CL_VIRUS, {name});
      BOOST_TEST((result.verdict == Verdict::Error));
      BOOST_TEST((result.error == expected));
      BOOST_TEST(result.detail == name);
    }
  }
}

BOOST_AUTO_TEST_CASE(other_names_are_detections) {
  for (const std::string name : {"Eicar-Test-Signature.UNOFFICIAL", "Win.Trojan.Agent-1",
                                 "Heuristics.Phishing.Email.SpoofedDomain", "PUA.Win.Packer"}) {
    BOOST_TEST(!imapav::scan::errorClassForAlert(name).has_value(), name);
  }
  const ScanResult result = imapav::scan::classifyScan(
      CL_VIRUS, {"Heuristics.Encrypted.Zip", "A.UNOFFICIAL", "B", "A.UNOFFICIAL"});
  BOOST_TEST((result.verdict == Verdict::Infected));
  BOOST_TEST(result.threats == names({"A.UNOFFICIAL", "B"}), boost::test_tools::per_element());
  BOOST_TEST(result.detail == "Heuristics.Encrypted.Zip");
}

BOOST_AUTO_TEST_CASE(clean_and_unnamed_results) {
  BOOST_TEST((imapav::scan::classifyScan(CL_CLEAN, {}).verdict == Verdict::Clean));
  const ScanResult unnamed = imapav::scan::classifyScan(CL_VIRUS, {});
  BOOST_TEST((unnamed.verdict == Verdict::Error));
  BOOST_TEST((unnamed.error == ErrorClass::Internal));
}

BOOST_AUTO_TEST_CASE(error_class_names_round_trip) {
  const std::vector<std::pair<ErrorClass, std::string_view>> all = {
      {ErrorClass::None, "none"},
      {ErrorClass::TooLarge, "too_large"},
      {ErrorClass::Timeout, "timeout"},
      {ErrorClass::Corrupt, "corrupt"},
      {ErrorClass::Encrypted, "encrypted"},
      {ErrorClass::ArchiveLimit, "archive_limit"},
      {ErrorClass::EngineNotReady, "engine_not_ready"},
      {ErrorClass::OutOfResources, "out_of_resources"},
      {ErrorClass::Overloaded, "overloaded"},
      {ErrorClass::Internal, "internal"},
  };
  for (const auto& [value, name] : all) {
    BOOST_TEST(imapav::scan::toString(value) == name);
    BOOST_TEST((imapav::scan::errorClassFromString(name) == value));
  }
  BOOST_TEST(!imapav::scan::errorClassFromString("Timeout").has_value());
  BOOST_TEST(!imapav::scan::errorClassFromString("").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(an_unwritable_temporary_directory_is_refused_at_load) {
  EngineOptions options = testOptions();
  options.tmpDir = "/nonexistent/imapav-tmp";
  const std::string error = loadError(options);
  BOOST_TEST(error.find("/nonexistent/imapav-tmp (scan.tmp_dir) is not a writable directory") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(a_vanished_temporary_directory_fails_closed) {
  // libclamav logs "Can't create temporary directory for scan" and then returns CL_CLEAN
  // without having looked at the attachments: that must never read as clean.
  auto tmp = std::make_unique<TempDir>();
  EngineOptions options = testOptions();
  options.tmpDir = tmp->str();
  const auto scanner = ClamavScanner::load(options);
  const std::string infected = mimeMessage("Hi", "x.com", eicar());
  BOOST_TEST((scanText(*scanner, infected).verdict == Verdict::Infected));  // works while it exists
  tmp.reset();  // removed under the running scanner
  const ScanResult result = scanText(*scanner, infected);
  BOOST_TEST((result.verdict == Verdict::Error));
  BOOST_TEST((result.error == ErrorClass::OutOfResources));
  BOOST_TEST(result.detail.find("temporary") != std::string::npos, result.detail);
  // libclamav makes a directory per scan: even a plain text message is not scanned now.
  BOOST_TEST((scanText(*scanner, "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n").error == ErrorClass::OutOfResources));
}
