#!/usr/bin/env bash
# Benchmark: imapav-icapd versus c-icap + virus_scan/clamav_mod versus libclamav alone, on
# the same signatures and the same (unique per request) messages. Builds what it needs,
# starts both servers on free loopback ports in a temporary directory, checks that both
# really detect an infected message at every size, runs the cases interleaved, prints a
# table, and stops everything on exit. See tools/bench/README.md.
#
# Environment (all optional):
#   IMAPAV_BENCH_BUILD       build directory            (default: <repo>/build-bench)
#   IMAPAV_BENCH_NO_BUILD=1  use the binaries in the build directory as they are
#   IMAPAV_BENCH_SECONDS     measured seconds per run   (default: 5)
#   IMAPAV_BENCH_WARMUP      warm-up seconds per run    (default: 1)
#   IMAPAV_BENCH_ROUNDS      rounds over all cases      (default: 3; order reversed each round)
#   IMAPAV_BENCH_SIZES       message sizes              (default: "50k 5M", 1000-based)
#   IMAPAV_BENCH_CONNS       connections/threads        (default: "1 2")
#   IMAPAV_BENCH_SIGNATURES  signature directory        (default: <repo>/tests/data/signatures)
#   IMAPAV_BENCH_TMP         where the servers unpack what they scan:
#                            shared   (default) one directory for all three, under
#                                     IMAPAV_BENCH_SCAN_TMP (default: the run's directory
#                                     under /tmp): the same conditions for every scanner;
#                            defaults each product's packaged default: imapav-icapd (and
#                                     libclamav alone) /dev/shm, c-icap /var/tmp
#   IMAPAV_BENCH_KEEP=1      keep the temporary directory (configs, logs, raw results)
#   IMAPAV_BENCH_SUMMARY     a file to append machine-readable result lines to (tab-separated
#                            key=value fields; tools/bench-all.sh reads them)
# Quick run: IMAPAV_BENCH_SECONDS=2 IMAPAV_BENCH_ROUNDS=1 tools/bench.sh

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${IMAPAV_BENCH_BUILD:-$ROOT/build-bench}
RUN_SECONDS=${IMAPAV_BENCH_SECONDS:-5}
WARMUP=${IMAPAV_BENCH_WARMUP:-1}
ROUNDS=${IMAPAV_BENCH_ROUNDS:-3}
SIZES=${IMAPAV_BENCH_SIZES:-"50k 5M"}
CONNS=${IMAPAV_BENCH_CONNS:-"1 2"}
SIGS=${IMAPAV_BENCH_SIGNATURES:-$ROOT/tests/data/signatures}
CICAP=/usr/bin/c-icap
CICAP_MODULES=/usr/lib/x86_64-linux-gnu/c_icap

BENCH=$BUILD/tools/bench/imapav-bench-icap
PRELOAD=$BUILD/tools/bench/imapav_bench_dbdir.so
ICAPD=$BUILD/icap-server/imapav-icapd

WORK=$(mktemp -d /tmp/imapav-bench.XXXXXX)
SERVER_PIDS=()
FAILED=0

BENCH_NAME=bench.sh
# shellcheck source=tools/bench/common.sh
source "$ROOT/tools/bench/common.sh"

# Stops every server we started (each runs in its own process group, so c-icap's
# children go too), then removes the temporary directory.
cleanup() {
  finish_bench
  [[ -n ${SCAN_TMP:-} ]] && rm -rf -- "$SCAN_TMP"
  [[ -n ${CICAP_TMP:-} ]] && rm -rf -- "$CICAP_TMP"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------
[[ -x $CICAP ]] || die "$CICAP not found (Debian packages c-icap and libc-icap-mod-virus-scan)"
[[ -f $CICAP_MODULES/virus_scan.so && -f $CICAP_MODULES/clamav_mod.so ]] ||
  die "c-icap's virus_scan.so/clamav_mod.so not found in $CICAP_MODULES"
if [[ ${IMAPAV_BENCH_NO_BUILD:-0} != 1 ]]; then
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "cmake configure failed"; }
  fi
  cmake --build "$BUILD" --target imapav-bench-icap imapav-icapd -j2 >>"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; die "build failed"; }
fi
for f in "$BENCH" "$PRELOAD" "$ICAPD"; do [[ -e $f ]] || die "$f not found"; done

# --- signatures ---------------------------------------------------------------------------
if ! compgen -G "$SIGS/*.ndb" >/dev/null && ! compgen -G "$SIGS/*.hdb" >/dev/null; then
  # No project signatures yet: a marker and EICAR, the latter assembled from two halves.
  SIGS=$WORK/signatures
  mkdir -p "$SIGS"
  eicar_hex=$(printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR' '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' |
    od -An -tx1 | tr -d ' \n')
  marker_hex=$(printf 'IMAPAV-BENCH-MARKER' | od -An -tx1 | tr -d ' \n')
  printf 'Imapav.Bench.Marker:0:*:%s\nImapav.Bench.Eicar:0:*:%s\n' "$marker_hex" "$eicar_hex" >"$SIGS/bench.ndb"
fi

# --- servers ------------------------------------------------------------------------------


# libclamav writes every MIME part to a temporary file (and a directory per scan), and
# c-icap its whole body: where that lives matters a lot, so all three share one directory.
case ${IMAPAV_BENCH_TMP:-shared} in
  shared)
    SCAN_TMP=$(mktemp -d "${IMAPAV_BENCH_SCAN_TMP:-$WORK}/imapav-bench-scan.XXXXXX")
    CICAP_TMP=$SCAN_TMP ;;
  defaults)
    SCAN_TMP=$(mktemp -d /dev/shm/imapav-bench-scan.XXXXXX)
    CICAP_TMP=$(mktemp -d /var/tmp/imapav-bench-cicap.XXXXXX) ;;
  *) die "IMAPAV_BENCH_TMP must be shared or defaults" ;;
esac
mkdir -p "$WORK/log"
ICAPD_PORT=$(free_port)
CICAP_PORT=$(free_port)
while [[ $CICAP_PORT == "$ICAPD_PORT" ]]; do CICAP_PORT=$(free_port); done

cat >"$WORK/imapav-icapd.conf" <<EOF
# Generated by tools/bench.sh. Everything not set here is imapav-icapd's default.
icap.listen = 127.0.0.1:$ICAPD_PORT
scan.database_dir = $SIGS
scan.tmp_dir = $SCAN_TMP
log.database = $WORK/events.db
policy.fail_mode = drop
EOF

# c-icap made to scan every message (see tools/bench/README.md, "Fairness"):
# - MaxObjectSize far above the largest message (default 5M passes bigger ones unscanned);
# - no early sending (SendPercentData 0, StartSendPercentDataAfter above any message);
# - ScanFileTypes lists every group of c-icap.magic (mail is "TEXT");
# - libclamav limits as imapav-icapd's defaults (MaxScanTime is not settable; both use
#   libclamav's 120 s default);
# - one child with 8 threads: enough for 2 connections, no process churn;
# - unlimited keep-alive so connections stay open.
# clamav_mod has no database directory option: it loads from cl_retdbdir(), which
# imapav_bench_dbdir.so (LD_PRELOAD) points at the same signatures.
cat >"$WORK/c-icap.conf" <<EOF
PidFile $WORK/c-icap.pid
CommandsSocket $WORK/c-icap.ctl
Port 127.0.0.1:$CICAP_PORT
Timeout 300
MaxKeepAliveRequests -1
KeepAliveTimeout 600
StartServers 1
MaxServers 1
MinSpareThreads 1
MaxSpareThreads 8
ThreadsPerChild 8
MaxRequestsPerChild 0
TmpDir $CICAP_TMP
MaxMemObject 131072
DebugLevel 1
Pipelining on
ModulesDir $CICAP_MODULES
ServicesDir $CICAP_MODULES
TemplateDir /usr/share/c_icap/templates/
TemplateDefaultLanguage en
LoadMagicFile /etc/c-icap/c-icap.magic
ServerLog $WORK/log/c-icap-server.log
AccessLog $WORK/log/c-icap-access.log
Module common clamav_mod.so
clamav_mod.TmpDir $CICAP_TMP
clamav_mod.MaxScanSize 100M
clamav_mod.MaxFileSizeInArchive 50M
clamav_mod.MaxRecLevel 16
clamav_mod.MaxFilesInArchive 10000
Service virus_scan virus_scan.so
virus_scan.DefaultEngine clamav
virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GRAPHICS STREAM DOCUMENT
virus_scan.SendPercentData 0
virus_scan.StartSendPercentDataAfter 1000M
virus_scan.MaxObjectSize 1000M
virus_scan.Allow204Responces on
virus_scan.PassOnError off
EOF

setsid "$ICAPD" --config "$WORK/imapav-icapd.conf" >"$WORK/log/imapav-icapd.log" 2>&1 </dev/null &
ICAPD_PID=$!
SERVER_PIDS+=("$ICAPD_PID")
setsid env LD_PRELOAD="$PRELOAD" IMAPAV_BENCH_CLAMAV_DBDIR="$SIGS" \
  "$CICAP" -N -f "$WORK/c-icap.conf" >"$WORK/log/c-icap.out" 2>&1 </dev/null &
CICAP_PID=$!
SERVER_PIDS+=("$CICAP_PID")
wait_port "$ICAPD_PORT" "$ICAPD_PID" imapav-icapd "$WORK/log/imapav-icapd.log"
wait_port "$CICAP_PORT" "$CICAP_PID" c-icap "$WORK/log/c-icap.out"

ICAPD_URL=127.0.0.1:$ICAPD_PORT/avscan
CICAP_URL=127.0.0.1:$CICAP_PORT/virus_scan

log "imapav benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "  libclamav $(dpkg-query -W -f='${Version}' libclamav12 2>/dev/null || echo '?'), c-icap $(dpkg-query -W -f='${Version}' c-icap 2>/dev/null || echo '?'), virus_scan $(dpkg-query -W -f='${Version}' libc-icap-mod-virus-scan 2>/dev/null || echo '?')"
log "  signatures: $SIGS ($(cat "$SIGS"/*.ndb "$SIGS"/*.hdb 2>/dev/null | grep -vc '^#' || true) lines)"
log "  imapav-icapd icap://$ICAPD_URL   c-icap icap://$CICAP_URL"
log "  scan temporary directory: imapav-icapd and libclamav $SCAN_TMP ($(df --output=fstype "$SCAN_TMP" | tail -1)), c-icap $CICAP_TMP ($(df --output=fstype "$CICAP_TMP" | tail -1))"
log "  runs: ${RUN_SECONDS}s measured after ${WARMUP}s warm-up, $ROUNDS round(s), sizes: $SIZES, connections: $CONNS"

# field LINE KEY: the value of KEY=... in a result line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# --- sanity: both servers must replace an infected message of every size ---------------------
log ""
log "sanity check (infected messages must come back replaced):"
for size in $SIZES; do
  for name in imapav-icapd c-icap; do
    url=$ICAPD_URL
    [[ $name == c-icap ]] && url=$CICAP_URL
    if ! line=$("$BENCH" --icap "$url" --label "$name" --connections 1 --size "$size" --requests 2 --infected); then
      log "  $line"
      die "$name: the infected check failed to run"
    fi
    log "  $line"
    if [[ $(field "$line" replaced) != 2 || $(field "$line" errors) != 0 ]]; then
      die "$name did not replace infected $size messages: the comparison would be meaningless"
    fi
  done
  line=$("$BENCH" --clamav "$SIGS" --tmp-dir "$SCAN_TMP" --label libclamav --threads 1 --size "$size" --requests 2 --infected) ||
    die "libclamav alone: the infected check failed"
  log "  $line"
  [[ $(field "$line" infected) == 2 ]] || die "libclamav alone did not detect infected $size messages"
done

# --- timed runs ---------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
run_case() {  # run_case ROUND TARGET SIZE N
  local round=$1 target=$2 size=$3 n=$4 line rc=0
  case $target in
    imapav-icapd) line=$("$BENCH" --icap "$ICAPD_URL" --label imapav-icapd --connections "$n" --size "$size" \
                           --seconds "$RUN_SECONDS" --warmup "$WARMUP") || rc=$? ;;
    c-icap) line=$("$BENCH" --icap "$CICAP_URL" --label c-icap --connections "$n" --size "$size" \
                     --seconds "$RUN_SECONDS" --warmup "$WARMUP") || rc=$? ;;
    libclamav) line=$("$BENCH" --clamav "$SIGS" --tmp-dir "$SCAN_TMP" --label libclamav --threads "$n" \
                        --size "$size" --seconds "$RUN_SECONDS" --warmup "$WARMUP") || rc=$? ;;
  esac
  if [[ $rc != 0 || -z $line ]]; then
    FAILED=1
    log "  FAILED ($target $size $n): ${line:-no output}"
  fi
  # Clean messages must all come back 204 (ICAP) or clean (libclamav).
  if [[ $target != libclamav && -n $line && ( $(field "$line" s200) != 0 || $(field "$line" other) != 0 ) ]]; then
    FAILED=1
    log "  UNEXPECTED: clean messages not answered 204"
  fi
  log "  $line"
  printf '%s sizearg=%s n=%s round=%s\n' "$line" "$size" "$n" "$round" >>"$RESULTS"
}

log ""
log "runs:"
cases=()
for size in $SIZES; do
  for n in $CONNS; do
    cases+=("imapav-icapd $size $n" "c-icap $size $n" "libclamav $size $n")
  done
done
for ((round = 1; round <= ROUNDS; round++)); do
  # Alternate the order each round so neither server always runs after the other.
  if ((round % 2 == 1)); then
    for c in "${cases[@]}"; do run_case "$round" $c; done
  else
    for ((i = ${#cases[@]} - 1; i >= 0; i--)); do run_case "$round" ${cases[i]}; done
  fi
done

# --- table --------------------------------------------------------------------------------
# Ratios are taken per round, between runs that ran next to each other (the load of a
# shared machine drifts over minutes), then averaged; min-max shows their spread.
awk -v sizes="$SIZES" -v conns="$CONNS" -v rounds="$ROUNDS" -v summary="${IMAPAV_BENCH_SUMMARY:-}" '
  function val(key,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  {
    t = val("target"); s = val("sizearg"); n = val("n"); r = val("round")
    key = t SUBSEP s SUBSEP n
    runs[key]++
    rq[key] += val("req_s"); mb[key] += val("MB_s")
    R[key, r] = val("req_s")
    if (t == "libclamav") { srq[key] += val("scan_req_s"); smb[key] += val("scan_MB_s"); SR[key, r] = val("scan_req_s") }
    bytes[s] = val("size")
    list[key] = list[key] sprintf("%s%.1f", (runs[key] > 1 ? " " : ""), val("req_s"))
  }
  function mean(a, key) { return runs[key] ? a[key] / runs[key] : 0 }
  # Mean of the per-round ratios A/B, with their min and max: "mean/min/max/rounds used",
  # or "" if no round has both.
  function pstat(A, a, B, b,   r, x, sum, cnt, lo, hi) {
    cnt = 0
    for (r = 1; r <= rounds; r++) {
      if (!((a, r) in A) || !((b, r) in B) || B[b, r] <= 0) continue
      x = A[a, r] / B[b, r]; sum += x; cnt++
      if (cnt == 1 || x < lo) lo = x
      if (cnt == 1 || x > hi) hi = x
    }
    return cnt ? sprintf("%.4f/%.4f/%.4f/%d", sum / cnt, lo, hi, cnt) : ""
  }
  function paired(A, a, B, b,   s, v) {
    s = pstat(A, a, B, b)
    if (s == "") return "n/a"
    split(s, v, "/")
    return sprintf("%.2fx (%.2f-%.2f)", v[1], v[2], v[3])
  }
  END {
    ns = split(sizes, S, " "); nc = split(conns, C, " ")
    split("imapav-icapd c-icap libclamav", T, " ")
    printf "\n%-11s %-5s %-13s %9s %8s   %s\n", "size", "conns", "target", "req/s", "MB/s", "req/s per round"
    for (i = 1; i <= ns; i++) for (j = 1; j <= nc; j++) for (t = 1; t <= 3; t++) {
      key = T[t] SUBSEP S[i] SUBSEP C[j]
      if (!runs[key]) continue
      extra = ""
      if (T[t] == "libclamav")
        extra = sprintf("   scan calls only: %.2f req/s, %.2f MB/s", mean(srq, key), mean(smb, key))
      printf "%-11s %-5s %-13s %9.2f %8.2f   [%s]%s\n", S[i] " (" sprintf("%.0f", bytes[S[i]] / 1000) "k)", \
        C[j], T[t], mean(rq, key), mean(mb, key), list[key], extra
    }
    printf "\nratios of req/s (mean of per-round ratios, min-max):\n"
    printf "  %-5s %-5s %-24s %-24s %s\n", "size", "conns", "imapav/c-icap", "imapav/libclamav-alone", "imapav/libclamav scan calls"
    for (i = 1; i <= ns; i++) for (j = 1; j <= nc; j++) {
      a = "imapav-icapd" SUBSEP S[i] SUBSEP C[j]; b = "c-icap" SUBSEP S[i] SUBSEP C[j]
      l = "libclamav" SUBSEP S[i] SUBSEP C[j]
      printf "  %-5s %-5s %-24s %-24s %s\n", S[i], C[j], paired(R, a, R, b), paired(R, a, R, l), paired(R, a, SR, l)
    }
    printf "\ntargets: imapav/c-icap >= 2.00x on ~50 KB; imapav/libclamav-alone >= 0.90x on ~5 MB\n"
    # Machine-readable: one line per size and connection count (ratios as mean/min/max/rounds).
    if (summary != "") for (i = 1; i <= ns; i++) for (j = 1; j <= nc; j++) {
      a = "imapav-icapd" SUBSEP S[i] SUBSEP C[j]; b = "c-icap" SUBSEP S[i] SUBSEP C[j]
      l = "libclamav" SUBSEP S[i] SUBSEP C[j]
      printf "bench.sh\ticap\tsize=%s\tbytes=%s\tconns=%s\tround_count=%d", S[i], bytes[S[i]], C[j], rounds >> summary
      printf "\ticapd_req_s=%.2f\tcicap_req_s=%.2f\tlibclamav_req_s=%.2f\tlibclamav_scan_req_s=%.2f", \
        mean(rq, a), mean(rq, b), mean(rq, l), mean(srq, l) >> summary
      printf "\ticapd_MB_s=%.2f\tcicap_MB_s=%.2f\tlibclamav_MB_s=%.2f", mean(mb, a), mean(mb, b), mean(mb, l) >> summary
      printf "\tr_cicap=%s\tr_libclamav=%s\tr_scan=%s\n", pstat(R, a, R, b), pstat(R, a, R, l), pstat(R, a, SR, l) >> summary
    }
  }' "$RESULTS"

if ((FAILED)); then
  log ""
  log "bench.sh: some runs failed or answered unexpectedly (see above)"
  exit 1
fi
