#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <random>
#include <string>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "icap-server/scan/message_body.hpp"
#include "tests/unit/scan/fixtures.hpp"

using imapav::scan::MessageBody;
using imapav::scan::test::TempDir;

namespace {

std::string collect(const MessageBody& body, std::size_t* pieces = nullptr,
                    std::size_t* largest = nullptr) {
  std::string out;
  const bool ok = body.forEachPiece([&](std::string_view piece) {
    out.append(piece);
    if (pieces != nullptr) {
      ++*pieces;
    }
    if (largest != nullptr) {
      *largest = std::max(*largest, piece.size());
    }
    return true;
  });
  BOOST_TEST(ok);
  return out;
}

std::string randomBytes(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (auto& c : out) {
    c = static_cast<char>(rng() & 0xffU);
  }
  return out;
}

// Appends data in pseudo-random chunk sizes, as it arrives over a socket.
void appendInChunks(MessageBody& body, const std::string& data, unsigned seed) {
  std::mt19937 rng(seed);
  std::size_t offset = 0;
  while (offset < data.size()) {
    const std::size_t chunk = std::min<std::size_t>(1 + rng() % 9000, data.size() - offset);
    BOOST_REQUIRE(body.append(std::string_view(data).substr(offset, chunk)));
    offset += chunk;
  }
}

std::size_t entriesIn(const std::filesystem::path& dir) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++count;
  }
  return count;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(message_body)

BOOST_AUTO_TEST_CASE(small_body_stays_in_memory) {
  TempDir dir;
  MessageBody body(1024, dir.str());
  BOOST_TEST(body.append("Subject: hi\r\n"));
  BOOST_TEST(body.append(""));
  BOOST_TEST(body.append("\r\nbody\r\n"));
  BOOST_TEST(!body.spilled());
  BOOST_TEST(body.fd() == -1);
  BOOST_TEST(body.size() == 21U);
  BOOST_TEST(body.memory() == "Subject: hi\r\n\r\nbody\r\n");
  std::size_t pieces = 0;
  BOOST_TEST(collect(body, &pieces) == "Subject: hi\r\n\r\nbody\r\n");
  BOOST_TEST(pieces == 1U);
  BOOST_TEST(body.error().empty());
}

BOOST_AUTO_TEST_CASE(threshold_is_inclusive) {
  TempDir dir;
  MessageBody body(1024, dir.str());
  BOOST_TEST(body.append(std::string(1024, 'a')));
  BOOST_TEST(!body.spilled());
  BOOST_TEST(body.append("b"));
  BOOST_TEST(body.spilled());
  BOOST_TEST(body.memory().empty());
  BOOST_TEST(collect(body) == std::string(1024, 'a') + "b");
}

BOOST_AUTO_TEST_CASE(spilled_content_matches_memory_content) {
  TempDir dir;
  const std::string data = randomBytes(300 * 1024 + 17, 7);
  MessageBody inMemory(1 << 20, dir.str());
  MessageBody onDisk(1024, dir.str());
  appendInChunks(inMemory, data, 1);
  appendInChunks(onDisk, data, 2);
  BOOST_TEST(!inMemory.spilled());
  BOOST_TEST(onDisk.spilled());
  BOOST_TEST(onDisk.size() == data.size());

  std::size_t pieces = 0;
  std::size_t largest = 0;
  const std::string fromDisk = collect(onDisk, &pieces, &largest);
  BOOST_TEST((fromDisk == data));
  BOOST_TEST((collect(inMemory) == data));
  BOOST_TEST(largest == MessageBody::kReadBlock);
  BOOST_TEST(pieces == (data.size() + MessageBody::kReadBlock - 1) / MessageBody::kReadBlock);
  BOOST_TEST(inMemory.sha256Hex() == onDisk.sha256Hex());

  struct stat st {};
  BOOST_REQUIRE(::fstat(onDisk.fd(), &st) == 0);
  BOOST_TEST(static_cast<std::size_t>(st.st_size) == data.size());
  BOOST_TEST(S_ISREG(st.st_mode));
  BOOST_TEST(st.st_nlink == 0U);  // unlinked: nothing to clean up after a crash
}

BOOST_AUTO_TEST_CASE(sha256_known_vectors) {
  TempDir dir;
  MessageBody body(1024, dir.str());
  BOOST_TEST(body.sha256Hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(body.append("ab"));
  BOOST_TEST(body.append("c"));
  BOOST_TEST(body.sha256Hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  // One million 'a' (FIPS 180-2 test vector), spilled, appended in pieces; reading the
  // hash midway must not disturb it.
  MessageBody big(1024, dir.str());
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) {
    BOOST_REQUIRE(big.append(chunk));
    if (i == 500) {
      BOOST_TEST(!big.sha256Hex().empty());
    }
  }
  BOOST_TEST(big.spilled());
  BOOST_TEST(big.sha256Hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_CASE(no_file_left_in_tmp_dir) {
  TempDir dir;
  {
    MessageBody body(16, dir.str());
    BOOST_TEST(body.append(std::string(100000, 'x')));
    BOOST_TEST(body.spilled());
    BOOST_TEST(body.fd() >= 0);
    BOOST_TEST(entriesIn(dir.path()) == 0U);
    body.clear();
    BOOST_TEST(body.fd() == -1);
    BOOST_TEST(body.append(std::string(100, 'y')));
    BOOST_TEST(body.spilled());
    BOOST_TEST(entriesIn(dir.path()) == 0U);
  }
  BOOST_TEST(entriesIn(dir.path()) == 0U);
}

BOOST_AUTO_TEST_CASE(clear_makes_the_body_reusable) {
  TempDir dir;
  MessageBody body(64, dir.str());
  BOOST_TEST(body.append(std::string(1000, 'x')));
  BOOST_TEST(body.spilled());
  body.clear();
  BOOST_TEST(body.size() == 0U);
  BOOST_TEST(!body.spilled());
  BOOST_TEST(body.append("abc"));
  BOOST_TEST(body.memory() == "abc");
  BOOST_TEST(body.sha256Hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

BOOST_AUTO_TEST_CASE(unusable_tmp_dir_is_reported) {
  TempDir dir;
  const std::string missing = (dir.path() / "does-not-exist").string();
  MessageBody body(8, missing);
  BOOST_TEST(body.append("12345678"));  // still fits in memory
  BOOST_TEST(!body.append("9"));
  BOOST_TEST(body.failed());
  BOOST_TEST(body.error().find(missing) != std::string::npos);
  BOOST_TEST(!body.append("more"));  // stays unusable
  body.clear();
  BOOST_TEST(!body.failed());
  BOOST_TEST(body.append("ok"));
}

BOOST_AUTO_TEST_CASE(write_error_is_reported) {
  // A file size limit makes write() fail with EFBIG, standing in for a full disk.
  TempDir dir;
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto previousHandler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4096;
  BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);

  MessageBody body(1024, dir.str());
  const bool first = body.append(std::string(2000, 'a'));
  const bool second = body.append(std::string(8000, 'b'));

  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previousHandler);

  BOOST_TEST(first);
  BOOST_TEST(!second);
  BOOST_TEST(body.failed());
  BOOST_TEST(body.error().find("cannot write") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(for_each_piece_stops_when_asked) {
  TempDir dir;
  MessageBody body(1024, dir.str());
  BOOST_TEST(body.append(std::string(3 * MessageBody::kReadBlock, 'z')));
  std::size_t calls = 0;
  BOOST_TEST(!body.forEachPiece([&](std::string_view) { return ++calls < 2; }));
  BOOST_TEST(calls == 2U);
}

BOOST_AUTO_TEST_CASE(move_keeps_the_file) {
  TempDir dir;
  MessageBody body(16, dir.str());
  BOOST_TEST(body.append(std::string(100, 'q')));
  const int fd = body.fd();
  MessageBody moved(std::move(body));
  BOOST_TEST(moved.fd() == fd);
  BOOST_TEST(moved.size() == 100U);
  BOOST_TEST(collect(moved) == std::string(100, 'q'));
  MessageBody assigned(16, dir.str());
  assigned = std::move(moved);
  BOOST_TEST(assigned.fd() == fd);
  BOOST_TEST(assigned.sha256Hex().size() == 64U);
}

BOOST_AUTO_TEST_SUITE_END()
