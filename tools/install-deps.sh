#!/usr/bin/env bash
# Installs the Debian 12 packages imapav needs to build, test, demo and benchmark.
# Idempotent: installs only what is missing, and runs apt-get update only then.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libpoco-dev libclamav-dev libsqlite3-dev libboost-test-dev libicapapi-dev
  sqlite3 c-icap libc-icap-mod-virus-scan
  dovecot-imapd curl isync python3 python3-aiosmtpd openssl
  clang-14 libclang-rt-14-dev
  prometheus  # promtool checks our /metrics; a real Prometheus scrapes both daemons in a test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packaged daemons (c-icap) must not start on install: our tests and benchmarks start
# their own instances on free ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
