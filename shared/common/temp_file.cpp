#include "shared/common/temp_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace imapav::common {

std::string errnoText(int err) {
  std::array<char, 256> buffer{};
  // GNU strerror_r returns the message, which may or may not be in buffer.
  return ::strerror_r(err, buffer.data(), buffer.size());
}

int openAnonymousFile(const std::string& dir, std::string& error) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, S_IRUSR | S_IWUSR);
  if (fd >= 0) return fd;
  const int tmpfileErr = errno;
  if (tmpfileErr != EOPNOTSUPP && tmpfileErr != EISDIR && tmpfileErr != EINVAL) {
    error = "cannot create temporary file in " + dir + ": " + errnoText(tmpfileErr);
    return -1;
  }
  std::string pattern = dir + "/imapav-body-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    error = "cannot create temporary file in " + dir + ": " + errnoText(errno);
    return -1;
  }
  if (::unlink(name.data()) != 0) {
    error = "cannot unlink temporary file in " + dir + ": " + errnoText(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace imapav::common
