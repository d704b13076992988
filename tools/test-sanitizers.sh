#!/usr/bin/env bash
# The whole test suite again, built with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer (-DIMAPAV_SANITIZE=ON) into build-asan/ (or
# $IMAPAV_SANITIZE_BUILD_DIR). Any report fails: one in a test process fails that test
# (UBSan halts, ASan and LSan exit non-zero), one in a daemon a test started is found in
# the daemon's log when it ends (tests/support/process.cpp). Extra arguments go to ctest.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/install-deps.sh"
build=${IMAPAV_SANITIZE_BUILD_DIR:-$top/build-asan}
IMAPAV_BUILD_DIR=$build "$top/tools/build.sh" -DIMAPAV_SANITIZE=ON
cd "$build"
ctest --output-on-failure --timeout 1800 "$@"
