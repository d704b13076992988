#pragma once
// One message on its way through the redirector: appended by one thread while it arrives
// (the reactor, from the mail server; a scan worker, from the ICAP server's answer) and
// read at the same time by others (the scan worker streaming it to ICAP, the reactor
// sending it to the client). Up to memoryLimit bytes stay in memory; a larger message moves
// to an unlinked temporary file, so a message costs at most memoryLimit bytes of memory.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace imapav::redirector {

class MessageBuffer {
 public:
  using Clock = std::chrono::steady_clock;

  // expectedSize: the size announced (an IMAP literal's), 0 when unknown. A message
  // announced above memoryLimit goes to a file from its first byte.
  MessageBuffer(std::size_t memoryLimit, std::string spillDir, std::size_t expectedSize = 0);
  ~MessageBuffer();
  MessageBuffer(const MessageBuffer&) = delete;
  MessageBuffer& operator=(const MessageBuffer&) = delete;

  // A complete in-memory buffer holding text (notices, tests).
  static std::shared_ptr<MessageBuffer> fromString(std::string_view text);

  // Writer side (one thread at a time).
  // False on a write error (disk full, spill directory unusable): the buffer is failed,
  // error() says why and readers get an error.
  bool append(std::string_view data);
  void finish();                  // every byte is in
  void abort(std::string why);    // the writer gives up; waiting readers return an error

  // Reader side (any thread). Copies up to len bytes from offset into out and returns the
  // count; 0 at the end of a complete message; -1 when the buffer is aborted or failed.
  // read() waits until there is something to return; readAvailable() never waits and
  // also returns 0 when nothing more is there yet.
  long read(std::size_t offset, char* out, std::size_t len) const;
  long readAvailable(std::size_t offset, char* out, std::size_t len) const;
  // Waits until the message is complete, aborted or failed; true when complete.
  bool waitComplete() const;

  std::size_t size() const;
  std::size_t expectedSize() const { return expectedSize_; }
  bool complete() const;
  bool failed() const;  // aborted or a write error
  bool spilled() const;
  std::string error() const;
  // When finish() was called; nullopt before.
  std::optional<Clock::time_point> completedAt() const;

  // Byte-for-byte comparison of two complete buffers (false if either is not complete).
  bool sameContent(const MessageBuffer& other) const;
  // The whole content as a string (tests, small messages); empty unless complete.
  std::string toString() const;

 private:
  long copyLocked(std::unique_lock<std::mutex>& lock, std::size_t offset, char* out, std::size_t len) const;
  bool spillLocked();
  bool writeFile(std::size_t offset, std::string_view data);

  const std::size_t memoryLimit_;
  const std::string spillDir_;
  const std::size_t expectedSize_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::string memory_;
  int fd_ = -1;
  std::size_t size_ = 0;
  bool complete_ = false, failed_ = false;
  std::string error_;
  std::optional<Clock::time_point> completedAt_;
};

}  // namespace imapav::redirector
