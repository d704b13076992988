#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (-DIMAPAV_FUZZ=ON) and runs one,
# several or all of them, one after the other, for a given time each. Prints per target:
# executions, exec/s, coverage (cov/ft from libFuzzer's final stats), corpus size, and
# the crash/timeout/leak files found.
#
#   tools/fuzz.sh [-t SECONDS] [-m] [-l] [TARGET...]
#     -t SECONDS  time per target (default 60)
#     -m          merge new inputs into the seed corpus tests/fuzz/corpus/TARGET (minimised
#                 with -merge=1; only files under 64 KB)
#     -l          list the targets and exit
#     TARGET      e.g. icap_request (default: all)
#
# Environment: BUILD_DIR (default build-fuzz), CXX/CC (default clang++-14/clang-14),
# JOBS (build parallelism, default 2), FUZZ_ARGS (extra libFuzzer options).
# New inputs go to $BUILD_DIR/fuzz-corpus/TARGET, findings to $BUILD_DIR/fuzz-findings/TARGET,
# the log to $BUILD_DIR/fuzz-logs/TARGET.log. Exit status 1 when a target found something.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build-fuzz}
seconds=60
merge=0
list=0
while getopts "t:mlh" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    m) merge=1 ;;
    l) list=1 ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

all=$(sed -n 's/^imapav_add_fuzz_target(NAME \([a-z0-9_]*\).*/\1/p' "$here/tests/fuzz/CMakeLists.txt")
if [ "$list" = 1 ]; then echo "$all"; exit 0; fi
targets=${*:-$all}
for t in $targets; do
  if ! grep -qx "$t" <<<"$all"; then echo "unknown target '$t' (tools/fuzz.sh -l lists them)" >&2; exit 2; fi
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMAPAV_FUZZ=ON \
    -DCMAKE_C_COMPILER="${CC:-clang-14}" -DCMAKE_CXX_COMPILER="${CXX:-clang++-14}" >/dev/null
fi
cmake --build "$build" -j "${JOBS:-2}" --target $(for t in $targets; do echo "fuzz_$t"; done) >/dev/null

# Per-target options: dictionaries, and inputs as large as the parser meets in practice.
options_for() {
  local dict=""
  case $1 in
    icap_*) dict=icap ;;
    imap_*) dict=imap ;;
    mime_*) dict=mime ;;
  esac
  [ -n "$dict" ] && echo "-dict=$here/tests/fuzz/$dict.dict"
  case $1 in
    mime_headers|mime_subject_tag|mime_notice|mime_address|mime_encoded_word) echo "-max_len=65536" ;;
    *) echo "-max_len=16384" ;;
  esac
}

status=0
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
printf '%-18s %11s %7s %6s %6s %12s %8s  %s\n' target executions exec/s cov ft corpus slowest findings
for t in $targets; do
  work=$build/fuzz-corpus/$t
  findings=$build/fuzz-findings/$t
  log=$build/fuzz-logs/$t.log
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  touch "$marker"
  # shellcheck disable=SC2046,SC2086
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$findings/" $(options_for "$t") ${FUZZ_ARGS:-} \
    "$work" "$here/tests/fuzz/corpus/$t" >"$log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep ' cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  files=$(find "$work" "$here/tests/fuzz/corpus/$t" -type f | wc -l)
  bytes=$(cat "$work"/* "$here/tests/fuzz/corpus/$t"/* 2>/dev/null | wc -c)
  slowest=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "$log" | tail -1)
  found=$(find "$findings" -type f -newer "$marker" | sort | tr '\n' ' ')
  printf '%-18s %11s %7s %6s %6s %12s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "$files/$((bytes / 1024))K" "${slowest:-?}s" "${found:-none}"
  if [ -n "$found" ] || ! grep -q '^Done [0-9]* runs' "$log"; then
    status=1
    grep -E '^==[0-9]+==|FUZZ_CHECK|^SUMMARY|runtime error' "$log" | head -5 | sed 's/^/    /'
  fi
  if [ "$merge" = 1 ]; then
    small=$build/fuzz-small/$t
    rm -rf "$small" && mkdir -p "$small"
    find "$work" -type f -size -64k -exec cp {} "$small/" \;
    "$build/tests/fuzz/fuzz_$t" -merge=1 $(options_for "$t") "$here/tests/fuzz/corpus/$t" "$small" \
      >>"$log" 2>&1 || true
  fi
done
exit $status
