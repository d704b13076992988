// MessageBuffer: a message written by one thread while others read it, in memory or in an
// unlinked temporary file.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "redirector/message_buffer.hpp"
#include "tests/support/process.hpp"

using imapav::redirector::MessageBuffer;
using imapav::test::TempDir;

namespace {

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  return s;
}

std::size_t entries(const std::string& dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

// Everything a blocking reader gets from offset 0 to the end; "<error>" on -1.
std::string readAll(const MessageBuffer& b, std::size_t block = 1000) {
  std::string out, chunk(block, '\0');
  for (;;) {
    const long n = b.read(out.size(), chunk.data(), block);
    if (n == 0) return out;
    if (n < 0) return "<error>";
    out.append(chunk.data(), static_cast<std::size_t>(n));
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(message_buffer)

BOOST_AUTO_TEST_CASE(small_message_stays_in_memory) {
  TempDir dir;
  MessageBuffer b(1000, dir.path(), 600);
  BOOST_TEST(b.append(pattern(600).substr(0, 250)));
  BOOST_TEST(b.append(pattern(600).substr(250)));
  BOOST_TEST(!b.complete());
  BOOST_TEST(!b.completedAt());
  b.finish();
  BOOST_TEST(b.complete());
  BOOST_TEST(!b.spilled());
  BOOST_TEST(b.size() == 600u);
  BOOST_TEST(b.toString() == pattern(600));
  BOOST_TEST(readAll(b, 7) == pattern(600));
  BOOST_TEST(!b.append("late"));  // nothing after finish
  BOOST_TEST(b.size() == 600u);
}

BOOST_AUTO_TEST_CASE(announced_large_message_goes_to_a_file_without_a_name) {
  TempDir dir;
  MessageBuffer b(1000, dir.path(), 5000);
  BOOST_TEST(b.append(pattern(5000).substr(0, 10)));
  BOOST_TEST(b.spilled());  // from the first byte
  BOOST_TEST(b.append(pattern(5000).substr(10)));
  b.finish();
  BOOST_TEST(b.toString() == pattern(5000));
  BOOST_TEST(entries(dir.path()) == 0u);  // unlinked: nothing left even if we crashed now
}

BOOST_AUTO_TEST_CASE(unannounced_message_moves_to_a_file_when_it_grows) {
  TempDir dir;
  MessageBuffer b(1000, dir.path());
  const auto text = pattern(4321);
  for (std::size_t i = 0; i < text.size(); i += 300) {
    BOOST_TEST(b.append(text.substr(i, 300)));
    BOOST_TEST(b.spilled() == (i + 300 > 1000));
  }
  b.finish();
  BOOST_TEST(b.toString() == text);
  BOOST_TEST(readAll(b, 333) == text);
}

BOOST_AUTO_TEST_CASE(a_reader_streams_while_the_writer_appends) {
  TempDir dir;
  for (const std::size_t limit : {std::size_t{1} << 20, std::size_t{2000}}) {
    BOOST_TEST_CONTEXT("memory limit " << limit) {
      const auto text = pattern(200000);
      auto b = std::make_shared<MessageBuffer>(limit, dir.path(), text.size());
      std::string got;
      std::thread reader([&] { got = readAll(*b, 4096); });
      for (std::size_t i = 0; i < text.size(); i += 997) {
        b->append(text.substr(i, 997));
        if (i % 50000 < 997) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      b->finish();
      reader.join();
      BOOST_TEST(got == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(abort_wakes_a_waiting_reader_with_an_error) {
  TempDir dir;
  MessageBuffer b(1000, dir.path(), 500);
  b.append("partial");
  long result = 1;
  std::thread reader([&] {
    char c[64];
    BOOST_TEST(b.read(0, c, sizeof c) == 7);
    result = b.read(7, c, sizeof c);  // waits: nothing more yet
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  b.abort("client went away");
  reader.join();
  BOOST_TEST(result == -1);
  BOOST_TEST(b.failed());
  BOOST_TEST(b.error() == "client went away");
  BOOST_TEST(!b.waitComplete());
  BOOST_TEST(b.toString().empty());
}

BOOST_AUTO_TEST_CASE(read_available_never_waits) {
  MessageBuffer b(1000, "/nonexistent");
  char c[16];
  BOOST_TEST(b.readAvailable(0, c, sizeof c) == 0);
  b.append("abc");
  BOOST_TEST(b.readAvailable(0, c, sizeof c) == 3);
  BOOST_TEST(b.readAvailable(3, c, sizeof c) == 0);
}

BOOST_AUTO_TEST_CASE(unusable_spill_directory_fails_the_buffer_not_the_process) {
  MessageBuffer b(100, "/nonexistent/imapav-spill");
  BOOST_TEST(b.append(pattern(80)));
  BOOST_TEST(!b.append(pattern(80)));  // would pass the limit: no file can be made
  BOOST_TEST(b.failed());
  BOOST_TEST(b.error().find("/nonexistent/imapav-spill") != std::string::npos);
  char c[16];
  BOOST_TEST(b.read(0, c, sizeof c) == -1);
}

BOOST_AUTO_TEST_CASE(same_content_compares_memory_and_file) {
  TempDir dir;
  const auto text = pattern(3000);
  auto inMemory = MessageBuffer::fromString(text);
  MessageBuffer inFile(100, dir.path(), text.size());
  inFile.append(text);
  inFile.finish();
  BOOST_TEST(inFile.spilled());
  BOOST_TEST(inMemory->sameContent(inFile));
  BOOST_TEST(inFile.sameContent(*inMemory));
  auto changed = text;
  changed[2999] = '!';
  BOOST_TEST(!MessageBuffer::fromString(changed)->sameContent(inFile));
  BOOST_TEST(!MessageBuffer::fromString(text.substr(1))->sameContent(inFile));
  MessageBuffer incomplete(100, dir.path());
  incomplete.append(text);
  BOOST_TEST(!incomplete.sameContent(*inMemory));  // not complete yet
}

BOOST_AUTO_TEST_CASE(wait_complete_returns_when_finished) {
  MessageBuffer b(100, "/tmp");
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    b.append("x");
    b.finish();
  });
  BOOST_TEST(b.waitComplete());
  BOOST_TEST(b.completedAt().has_value());
  writer.join();
}

BOOST_AUTO_TEST_SUITE_END()
