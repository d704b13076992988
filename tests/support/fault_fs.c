/* A fault injector for the file system, loaded with LD_PRELOAD into a daemon under test.
 * While the file IMAPAV_FAULT_FLAG exists, calls on paths containing IMAPAV_FAULT_PATH
 * fail with IMAPAV_FAULT_ERRNO (ENOSPC, EROFS, EIO or EACCES):
 *   IMAPAV_FAULT_OPS=write  write/pwrite/pwrite64/fsync/ftruncate on such files (a full
 *                           or read-only disk under a database that is already open);
 *   IMAPAV_FAULT_OPS=open   open/openat/opendir/stat of such paths (an unreadable
 *                           directory, which root cannot get with chmod).
 * Tests switch the fault on and off by creating and removing the flag file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int active(const char* ops) {
  const char* want = getenv("IMAPAV_FAULT_OPS");
  const char* flag = getenv("IMAPAV_FAULT_FLAG");
  return want && flag && strcmp(want, ops) == 0 && access(flag, F_OK) == 0;
}

static int fault_errno(void) {
  const char* e = getenv("IMAPAV_FAULT_ERRNO");
  if (!e || strcmp(e, "ENOSPC") == 0) return ENOSPC;
  if (strcmp(e, "EROFS") == 0) return EROFS;
  if (strcmp(e, "EACCES") == 0) return EACCES;
  return EIO;
}

static int path_hit(const char* path) {
  const char* target = getenv("IMAPAV_FAULT_PATH");
  return path && target && *target && strstr(path, target) != NULL;
}

static int fd_hit(int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return path_hit(path);
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))
#define FAIL_FD(fd)                                   \
  if (active("write") && fd_hit(fd)) {              \
    errno = fault_errno();                          \
    return -1;                                      \
  }
#define FAIL_PATH(path, value)                        \
  if (active("open") && path_hit(path)) {           \
    errno = fault_errno();                          \
    return value;                                   \
  }

ssize_t write(int fd, const void* buf, size_t n) { FAIL_FD(fd) return NEXT(write)(fd, buf, n); }
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) { FAIL_FD(fd) return NEXT(pwrite)(fd, buf, n, off); }
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) { FAIL_FD(fd) return NEXT(pwrite64)(fd, buf, n, off); }
int fsync(int fd) { FAIL_FD(fd) return NEXT(fsync)(fd); }
int fdatasync(int fd) { FAIL_FD(fd) return NEXT(fdatasync)(fd); }
int ftruncate(int fd, off_t len) { FAIL_FD(fd) return NEXT(ftruncate)(fd, len); }
int ftruncate64(int fd, off64_t len) { FAIL_FD(fd) return NEXT(ftruncate64)(fd, len); }

int open(const char* path, int flags, ...) {
  FAIL_PATH(path, -1)
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = va_arg(ap, mode_t);
  va_end(ap);
  return NEXT(open)(path, flags, mode);
}
int open64(const char* path, int flags, ...) {
  FAIL_PATH(path, -1)
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = va_arg(ap, mode_t);
  va_end(ap);
  return NEXT(open64)(path, flags, mode);
}
int openat(int dirfd, const char* path, int flags, ...) {
  FAIL_PATH(path, -1)
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = va_arg(ap, mode_t);
  va_end(ap);
  return NEXT(openat)(dirfd, path, flags, mode);
}
DIR* opendir(const char* path) { FAIL_PATH(path, NULL) return NEXT(opendir)(path); }
