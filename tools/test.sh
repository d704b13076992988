#!/usr/bin/env bash
# Quick-start command 2: installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/install-deps.sh"
"$top/tools/build.sh"
build=${IMAPAV_BUILD_DIR:-$top/build}
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
