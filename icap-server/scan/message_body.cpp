#include "icap-server/scan/message_body.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "shared/common/temp_file.hpp"

namespace imapav::scan {

using common::errnoText;
using common::openAnonymousFile;

void MessageBody::DigestDeleter::operator()(EVP_MD_CTX* ctx) const noexcept {
  EVP_MD_CTX_free(ctx);
}

MessageBody::MessageBody(std::size_t spillThreshold, std::string tmpDir)
    : spillThreshold_(spillThreshold), tmpDir_(std::move(tmpDir)) {
  resetDigest();
}

MessageBody::~MessageBody() { closeFile(); }

MessageBody::MessageBody(MessageBody&& other) noexcept
    : spillThreshold_(other.spillThreshold_),
      tmpDir_(std::move(other.tmpDir_)),
      memory_(std::move(other.memory_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(std::exchange(other.size_, 0)),
      digest_(std::move(other.digest_)),
      error_(std::move(other.error_)) {}

MessageBody& MessageBody::operator=(MessageBody&& other) noexcept {
  if (this != &other) {
    closeFile();
    spillThreshold_ = other.spillThreshold_;
    tmpDir_ = std::move(other.tmpDir_);
    memory_ = std::move(other.memory_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
    digest_ = std::move(other.digest_);
    error_ = std::move(other.error_);
  }
  return *this;
}

void MessageBody::resetDigest() {
  if (!digest_) {
    digest_.reset(EVP_MD_CTX_new());
  }
  if (!digest_ || EVP_DigestInit_ex(digest_.get(), EVP_sha256(), nullptr) != 1) {
    fail("cannot initialise SHA-256");
  }
}

void MessageBody::closeFile() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void MessageBody::fail(std::string message) {
  if (error_.empty()) {
    error_ = std::move(message);
  }
}

bool MessageBody::append(std::string_view data) {
  if (failed()) {
    return false;
  }
  if (data.empty()) {
    return true;
  }
  if (!digest_ || EVP_DigestUpdate(digest_.get(), data.data(), data.size()) != 1) {
    fail("SHA-256 update failed");
    return false;
  }
  if (spilled()) {
    if (!writeAll(data)) {
      return false;
    }
  } else if (data.size() <= spillThreshold_ && memory_.size() <= spillThreshold_ - data.size()) {
    memory_.append(data);
  } else if (!spill(data)) {
    return false;
  }
  size_ += data.size();
  return true;
}

bool MessageBody::spill(std::string_view data) {
  std::string error;
  fd_ = openAnonymousFile(tmpDir_, error);
  if (fd_ < 0) {
    fail(std::move(error));
    return false;
  }
  if (!writeAll(memory_) || !writeAll(data)) {
    return false;
  }
  // Release the memory: a spilled body is large by definition.
  std::string().swap(memory_);
  return true;
}

bool MessageBody::writeAll(std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd_, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail("cannot write temporary file in " + tmpDir_ + ": " + errnoText(errno));
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

std::string_view MessageBody::memory() const {
  return spilled() ? std::string_view{} : std::string_view{memory_};
}

bool MessageBody::forEachPiece(const std::function<bool(std::string_view)>& fn) const {
  if (!spilled()) {
    return memory_.empty() || fn(memory_);
  }
  std::vector<char> block(kReadBlock);
  std::size_t offset = 0;
  while (offset < size_) {
    const std::size_t want = std::min(block.size(), size_ - offset);
    const ssize_t got = ::pread(fd_, block.data(), want, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return false;  // an error, or the file is shorter than what we wrote
    }
    const auto length = static_cast<std::size_t>(got);
    if (!fn(std::string_view(block.data(), length))) {
      return false;
    }
    offset += length;
  }
  return true;
}

std::string MessageBody::sha256Hex() const {
  // Finalise a copy so appending can go on afterwards.
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> copy(EVP_MD_CTX_new());
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (!copy || !digest_ || EVP_MD_CTX_copy_ex(copy.get(), digest_.get()) != 1 ||
      EVP_DigestFinal_ex(copy.get(), digest.data(), &length) != 1) {
    return {};
  }
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

void MessageBody::clear() {
  closeFile();
  std::string().swap(memory_);
  size_ = 0;
  error_.clear();
  resetDigest();
}

}  // namespace imapav::scan
