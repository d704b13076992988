#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/types.h>

namespace imapav::scan {

// The bytes of one message as they arrive over ICAP. Small bodies stay in memory; once
// more than spillThreshold bytes have arrived, everything moves to an unlinked temporary
// file in tmpDir (O_TMPFILE, else mkstemp+unlink), so nothing is left on disk even after a
// crash. The SHA-256 of the content is computed while appending. Not thread-safe for
// writers; const members may be used from several threads once appending is done.
class MessageBody {
 public:
  static constexpr std::size_t kReadBlock = 64 * 1024;

  MessageBody(std::size_t spillThreshold, std::string tmpDir);
  ~MessageBody();
  MessageBody(const MessageBody&) = delete;
  MessageBody& operator=(const MessageBody&) = delete;
  MessageBody(MessageBody&& other) noexcept;
  MessageBody& operator=(MessageBody&& other) noexcept;

  // Returns false on a write error (disk full, tmpDir unusable...): error() says why and
  // the body stays unusable (every later append fails) until clear().
  bool append(std::string_view data);

  std::size_t size() const { return size_; }
  bool spilled() const { return fd_ >= 0; }
  bool failed() const { return !error_.empty(); }
  // The bytes when !spilled(); empty otherwise.
  std::string_view memory() const;
  // The temporary file when spilled(), else -1. Read it with pread: the offset is shared.
  int fd() const { return fd_; }

  // Calls fn with consecutive pieces of the content: the memory in one piece, or the file
  // in blocks of kReadBlock (pread, so several readers may share the body). Returns true
  // when all pieces were delivered; false on a read error or when fn returned false.
  bool forEachPiece(const std::function<bool(std::string_view)>& fn) const;

  // Lower-case hex SHA-256 of everything appended so far.
  std::string sha256Hex() const;

  const std::string& error() const { return error_; }

  // Drops the content (closing the file) so the object can hold the next request.
  void clear();

 private:
  struct DigestDeleter {
    void operator()(EVP_MD_CTX* ctx) const noexcept;
  };

  bool spill(std::string_view data);
  bool writeAll(std::string_view data);
  void fail(std::string message);
  void closeFile() noexcept;
  void resetDigest();

  std::size_t spillThreshold_;
  std::string tmpDir_;
  std::string memory_;
  int fd_ = -1;
  std::size_t size_ = 0;
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> digest_;
  std::string error_;
};

}  // namespace imapav::scan
