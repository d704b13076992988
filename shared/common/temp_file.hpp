#pragma once
// Unlinked temporary files for message content that is too large to keep in memory.

#include <string>

namespace imapav::common {

// strerror_r's text for err.
std::string errnoText(int err);

// A new file in dir that has no name, so nothing is left on disk even after a crash:
// O_TMPFILE, or on file systems without it mkostemp and an immediate unlink. Returns the
// descriptor (O_CLOEXEC, read-write), or -1 with error set.
int openAnonymousFile(const std::string& dir, std::string& error);

}  // namespace imapav::common
