#include "redirector/message_buffer.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/common/temp_file.hpp"

namespace imapav::redirector {

MessageBuffer::MessageBuffer(std::size_t memoryLimit, std::string spillDir, std::size_t expectedSize)
    : memoryLimit_(memoryLimit), spillDir_(std::move(spillDir)), expectedSize_(expectedSize) {
  if (expectedSize_ > 0 && expectedSize_ <= memoryLimit_) memory_.reserve(expectedSize_);
}

MessageBuffer::~MessageBuffer() {
  if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<MessageBuffer> MessageBuffer::fromString(std::string_view text) {
  auto b = std::make_shared<MessageBuffer>(text.size(), std::string(), text.size());
  b->append(text);
  b->finish();
  return b;
}

bool MessageBuffer::writeFile(std::size_t offset, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = "cannot write temporary file in " + spillDir_ + ": " + common::errnoText(n < 0 ? errno : ENOSPC);
      return false;
    }
    offset += static_cast<std::size_t>(n);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool MessageBuffer::spillLocked() {
  std::string error;
  fd_ = common::openAnonymousFile(spillDir_, error);
  if (fd_ < 0) {
    error_ = error;
    return false;
  }
  if (!writeFile(0, memory_)) return false;
  std::string().swap(memory_);
  return true;
}

bool MessageBuffer::append(std::string_view data) {
  std::unique_lock lock(mu_);
  if (failed_ || complete_) return false;
  const auto fail = [&] {
    failed_ = true;
    lock.unlock();
    changed_.notify_all();
    return false;
  };
  if (fd_ < 0 && (size_ + data.size() > memoryLimit_ || expectedSize_ > memoryLimit_)) {
    if (!spillLocked()) return fail();
  }
  if (fd_ < 0) {
    memory_.append(data);
  } else {
    // Bytes past size_ are not read by anyone: write them unlocked, then publish.
    const auto offset = size_;
    lock.unlock();
    const bool ok = writeFile(offset, data);
    lock.lock();
    if (!ok) return fail();
  }
  size_ += data.size();
  lock.unlock();
  changed_.notify_all();
  return true;
}

void MessageBuffer::finish() {
  {
    const std::lock_guard lock(mu_);
    if (failed_) return;
    complete_ = true;
    completedAt_ = Clock::now();
  }
  changed_.notify_all();
}

void MessageBuffer::abort(std::string why) {
  {
    const std::lock_guard lock(mu_);
    if (complete_ || failed_) return;
    failed_ = true;
    error_ = std::move(why);
  }
  changed_.notify_all();
}

long MessageBuffer::copyLocked(std::unique_lock<std::mutex>& lock, std::size_t offset, char* out,
                               std::size_t len) const {
  if (failed_) return -1;
  if (offset >= size_) return 0;
  const std::size_t n = std::min(len, size_ - offset);
  if (fd_ < 0) {
    std::memcpy(out, memory_.data() + offset, n);
    return static_cast<long>(n);
  }
  // Published file bytes never change, and the descriptor lives as long as this object.
  const int fd = fd_;
  lock.unlock();
  for (;;) {
    const auto got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    return got > 0 ? static_cast<long>(got) : -1;
  }
}

long MessageBuffer::read(std::size_t offset, char* out, std::size_t len) const {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return failed_ || complete_ || size_ > offset || len == 0; });
  return copyLocked(lock, offset, out, len);
}

long MessageBuffer::readAvailable(std::size_t offset, char* out, std::size_t len) const {
  std::unique_lock lock(mu_);
  return copyLocked(lock, offset, out, len);
}

bool MessageBuffer::waitComplete() const {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return failed_ || complete_; });
  return complete_ && !failed_;
}

std::size_t MessageBuffer::size() const {
  const std::lock_guard lock(mu_);
  return size_;
}

bool MessageBuffer::complete() const {
  const std::lock_guard lock(mu_);
  return complete_;
}

bool MessageBuffer::failed() const {
  const std::lock_guard lock(mu_);
  return failed_;
}

bool MessageBuffer::spilled() const {
  const std::lock_guard lock(mu_);
  return fd_ >= 0;
}

std::string MessageBuffer::error() const {
  const std::lock_guard lock(mu_);
  return error_;
}

std::optional<MessageBuffer::Clock::time_point> MessageBuffer::completedAt() const {
  const std::lock_guard lock(mu_);
  return completedAt_;
}

bool MessageBuffer::sameContent(const MessageBuffer& other) const {
  if (!complete() || !other.complete() || failed() || other.failed() || size() != other.size()) return false;
  constexpr std::size_t kBlock = 64 * 1024;
  std::string a(kBlock, '\0'), b(kBlock, '\0');
  for (std::size_t pos = 0;;) {
    const long na = readAvailable(pos, a.data(), kBlock);
    if (na == 0) return true;
    if (na < 0) return false;
    const auto want = static_cast<std::size_t>(na);
    for (std::size_t got = 0; got < want;) {
      const long nb = other.readAvailable(pos + got, b.data() + got, want - got);
      if (nb <= 0) return false;
      got += static_cast<std::size_t>(nb);
    }
    if (std::memcmp(a.data(), b.data(), want) != 0) return false;
    pos += want;
  }
}

std::string MessageBuffer::toString() const {
  if (!complete() || failed()) return {};
  std::string out(size(), '\0');
  for (std::size_t pos = 0; pos < out.size();) {
    const long n = readAvailable(pos, out.data() + pos, out.size() - pos);
    if (n <= 0) return {};
    pos += static_cast<std::size_t>(n);
  }
  return out;
}

}  // namespace imapav::redirector
