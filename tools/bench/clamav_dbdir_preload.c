/* LD_PRELOAD shim used by tools/bench.sh only. c-icap's clamav_mod loads its signatures
 * from cl_retdbdir(), a directory compiled into libclamav, and has no option to change it.
 * Overriding that one call lets c-icap load the same test signatures as imapav-icapd
 * without writing to /var/lib/clamav. */
#include <stdlib.h>

const char* cl_retdbdir(void);

const char* cl_retdbdir(void) {
  const char* dir = getenv("IMAPAV_BENCH_CLAMAV_DBDIR");
  return (dir != NULL && dir[0] != '\0') ? dir : "/var/lib/clamav";
}
