#!/usr/bin/env bash
# Benchmark: imapav-icapd's signature engine with a database of realistic size. Generates a
# large synthetic ClamAV database (tools/gen-signatures.py), then measures with the real
# daemon, in one run:
#   a. engine load: time from start to the first OPTIONS answer, signature count, VmRSS and
#      VmHWM after start, against the tiny test database (tests/data/signatures);
#   b. reload under load: the database files are replaced (renames) and SIGHUP sent while 2
#      connections scan; time until OPTIONS shows the new ISTag, the memory peak while two
#      engines are in memory, RSS once the old one is freed, failed requests (must be 0),
#      and a marker only the new database knows must be detected afterwards; before that,
#      the same reload on the idle server, as the baseline;
#   c. verdict cache: a repeated message (a hit) against cold scans of different messages,
#      for each size, with preview and 204 as a gateway sends them.
# Prints a headline table with the ratios; stops everything and removes its files on exit.
# See tools/bench/README.md ("Signature engine benchmark").
#
# Environment (all optional):
#   IMAPAV_BENCH_BUILD          build directory              (default: <repo>/build-bench)
#   IMAPAV_BENCH_NO_BUILD=1     use the binaries in the build directory as they are
#   IMAPAV_BENCH_QUICK=1        short mode (~1-2 minutes): 1 round, 5 requests per cache
#                               case, no idle reload, no cache-off comparison
#   IMAPAV_BENCH_ROUNDS         start-ups of each database   (default: 2; quick: 1)
#   IMAPAV_BENCH_SIZES          cache case message sizes     (default: "50k 5M", 1000-based)
#   IMAPAV_BENCH_CACHE_REQUESTS cold scans and hits per case (default: 15, half that for
#                               messages of 1 MB and more; quick: 5)
#   IMAPAV_BENCH_CACHE_OFF=0|1  also time repeats with the verdict cache off (cache.max_entries
#                               = 0: only libclamav's own cache); default 1, quick 0
#   IMAPAV_BENCH_SIG_SCALE      multiplies gen-signatures.py's default counts (default: 1 =
#                               400k MD5, 100k SHA-256, 150k body, 5k logical)
#   IMAPAV_BENCH_RELOAD_CONNS   connections scanning during the reload (default: 2)
#   IMAPAV_BENCH_IDLE_RELOAD=0|1  also reload once without load first; default 1, quick 0
#   IMAPAV_BENCH_KEEP=1         keep the temporary directory (databases, configs, logs, results)
#   IMAPAV_BENCH_SUMMARY        a file to append machine-readable result lines to (tab-separated
#                               key=value fields; tools/bench-all.sh reads them)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${IMAPAV_BENCH_BUILD:-$ROOT/build-bench}
QUICK=${IMAPAV_BENCH_QUICK:-0}
quick_or() { if [[ $QUICK == 1 ]]; then echo "$1"; else echo "$2"; fi; }
ROUNDS=${IMAPAV_BENCH_ROUNDS:-$(quick_or 1 2)}
SIZES=${IMAPAV_BENCH_SIZES:-"50k 5M"}
REQUESTS=${IMAPAV_BENCH_CACHE_REQUESTS:-$(quick_or 5 15)}
CACHE_OFF=${IMAPAV_BENCH_CACHE_OFF:-$(quick_or 0 1)}
SCALE=${IMAPAV_BENCH_SIG_SCALE:-1}
RELOAD_CONNS=${IMAPAV_BENCH_RELOAD_CONNS:-2}
IDLE_RELOAD=${IMAPAV_BENCH_IDLE_RELOAD:-$(quick_or 0 1)}
TEST_SIGS=$ROOT/tests/data/signatures
RELOAD_MARKER=IMAPAV-BENCH-RELOAD-MARKER
RELOAD_NAME=Imapav.Bench.Reload
IDLE_MARKER=IMAPAV-BENCH-IDLE-MARKER
IDLE_NAME=Imapav.Bench.Idle

ICAPD=$BUILD/icap-server/imapav-icapd
GEN=$ROOT/tools/gen-signatures.py
CLIENT=$ROOT/tools/bench/icap_engine.py

WORK=$(mktemp -d /tmp/imapav-bench-engine.XXXXXX)
SERVER_PIDS=()  # the one imapav-icapd running at a time
FAILED=0

BENCH_NAME=bench-engine.sh
# shellcheck source=tools/bench/common.sh
source "$ROOT/tools/bench/common.sh"

cleanup() {
  # A daemon the client started just before an interrupt is not in SERVER_PIDS yet.
  [[ -s $WORK/icapd.pid && ${#SERVER_PIDS[@]} == 0 ]] && SERVER_PIDS=("$(cat "$WORK/icapd.pid")")
  finish_bench
  [[ -n ${SCAN_TMP:-} ]] && rm -rf -- "$SCAN_TMP"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { FAILED=1; log "  FAILED: $*"; }
# field LINE KEY: the value of KEY=... in a result line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# --- build -------------------------------------------------------------------------------
if [[ ${IMAPAV_BENCH_NO_BUILD:-0} != 1 ]]; then
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "cmake configure failed"; }
  fi
  cmake --build "$BUILD" --target imapav-icapd -j2 >>"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; die "build failed"; }
fi
[[ -x $ICAPD ]] || die "$ICAPD not found"
# Reload and the verdict cache (issue 7): a build without them refuses their settings, and
# SIGHUP would end it, so those parts are skipped (and said so) on such a build.
HAS_RELOAD=0
HAS_CACHE=0
grep -aq 'scan.reload_check' "$ICAPD" && HAS_RELOAD=1
grep -aq 'cache.max_entries' "$ICAPD" && HAS_CACHE=1

# --- signatures --------------------------------------------------------------------------
# Every database before any timing: each later one (another seed, a marker the ones before
# lack) replaces the one in use at a reload. Same file system, so moving a file is a rename.
log "bench-engine.sh: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), libclamav $(dpkg-query -W -f='${Version}' libclamav12 2>/dev/null || echo '?')"
t0=$(date +%s.%N)
gen_total() { sed -n 's/^total: //p' <<<"$1" | cut -d' ' -f1; }
out=$(python3 "$GEN" "$WORK/db" --scale "$SCALE" --seed 1 --version-tag bench-1 --with-test-signatures) ||
  die "gen-signatures.py failed"
SYN_TOTAL=$(gen_total "$out")
out=$(python3 "$GEN" "$WORK/db-new" --scale "$SCALE" --seed 2 --version-tag bench-2 --with-test-signatures \
        --extra-marker "$RELOAD_MARKER" "$RELOAD_NAME") || die "gen-signatures.py failed"
NEW_TOTAL=$(gen_total "$out")
gens=2
if ((IDLE_RELOAD)); then
  out=$(python3 "$GEN" "$WORK/db-idle" --scale "$SCALE" --seed 3 --version-tag bench-3 --with-test-signatures \
          --extra-marker "$IDLE_MARKER" "$IDLE_NAME") || die "gen-signatures.py failed"
  IDLE_TOTAL=$(gen_total "$out")
  gens=3
fi
GEN_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" -v n=$gens 'BEGIN { printf "%.1f", (b - a) / n }')
TINY_TOTAL=$(shopt -s nullglob; cat "$TEST_SIGS"/*.{ndb,hdb,hsb,ldb} </dev/null | grep -cv '^#\|^[[:space:]]*$')
log "  synthetic database: $SYN_TOTAL signatures, $(du -sm "$WORK/db" | cut -f1) MB, generated in ${GEN_S} s"
log "  (gen-signatures.py --scale $SCALE; files: $(cd "$WORK/db" && echo *))"
log "  test database: $TINY_TOTAL signatures ($TEST_SIGS)"
log "  reload and verdict cache in this build: $( ((HAS_RELOAD)) && echo reload || echo 'NO reload') / $( ((HAS_CACHE)) && echo cache || echo 'NO cache')"

# --- servers ------------------------------------------------------------------------------
SCAN_TMP=$(mktemp -d /dev/shm/imapav-bench-engine.XXXXXX 2>/dev/null || mktemp -d "$WORK/scan.XXXXXX")
mkdir -p "$WORK/log"
INSTANCE=0

# start_icapd DBDIR [CONFIG LINE...]: starts imapav-icapd, waits for its first OPTIONS
# answer and sets READY to the client's result line (ready_s, signatures, memory).
start_icapd() {
  local db=$1 line
  shift
  INSTANCE=$((INSTANCE + 1))
  PORT=$(free_port)
  METRICS_PORT=$(free_port)
  while [[ $METRICS_PORT == "$PORT" ]]; do METRICS_PORT=$(free_port); done
  CONF=$WORK/imapav-icapd-$INSTANCE.conf
  ICAPD_LOG=$WORK/log/imapav-icapd-$INSTANCE.log
  {
    echo "# Generated by tools/bench-engine.sh. Everything not set here is imapav-icapd's default."
    echo "icap.listen = 127.0.0.1:$PORT"
    echo "metrics.listen = 127.0.0.1:$METRICS_PORT"
    echo "scan.database_dir = $db"
    echo "scan.tmp_dir = $SCAN_TMP"
    echo "log.database = $WORK/events-$INSTANCE.db"
    echo "policy.fail_mode = drop"
    # Reload only on SIGHUP: the periodic check must not pick up the renames first.
    ((HAS_RELOAD)) && echo "scan.reload_check = 0"
    for line in "$@"; do echo "$line"; done
  } >"$CONF"
  # The client starts the daemon (setsid) and times it; its PID comes back in a file.
  local pid_file=$WORK/icapd.pid
  rm -f -- "$pid_file"
  if ! READY=$(python3 "$CLIENT" ready --port "$PORT" --metrics-port "$METRICS_PORT" --pid-file "$pid_file" \
                 --log "$ICAPD_LOG" -- "$ICAPD" --config "$CONF"); then
    [[ -s $pid_file ]] && SERVER_PIDS=("$(cat "$pid_file")")
    tail -20 "$ICAPD_LOG" >&2 || true
    die "imapav-icapd did not start with $db (log above)"
  fi
  ICAPD_PID=$(cat "$pid_file")
  SERVER_PIDS=("$ICAPD_PID")
}

stop_icapd() {
  stop_servers
  SERVER_PIDS=()
  rm -f -- "$WORK/icapd.pid"
}

RESULTS=$WORK/results.txt
: >"$RESULTS"

# --- a. engine load -----------------------------------------------------------------------
log ""
log "a. engine load: start to the first OPTIONS answer, memory after start ($ROUNDS round(s))"
for ((round = 1; round <= ROUNDS; round++)); do
  for db in tiny synthetic; do
    dir=$TEST_SIGS expect=$TINY_TOTAL
    [[ $db == synthetic ]] && dir=$WORK/db expect=$SYN_TOTAL
    start_icapd "$dir"
    log "  round $round $(printf '%-9s' "$db") $READY"
    printf 'part=load db=%s round=%s %s\n' "$db" "$round" "$READY" >>"$RESULTS"
    [[ $(field "$READY" signatures) == "$expect" ]] ||
      fail "$db: the engine has $(field "$READY" signatures) signatures, $expect were written"
    # The last synthetic start-up stays for the reload and the cache.
    [[ $db == synthetic && $round == "$ROUNDS" ]] || stop_icapd
  done
done
START_LOG=$ICAPD_LOG

# --- b. reload under load -----------------------------------------------------------------
# reload_case KIND NEWDIR MARKER NAME SIGNATURES CONNECTIONS: moves NEWDIR's files into the
# database in use, SIGHUP, and checks what the client measured.
reload_case() {
  local kind=$1 new=$2 marker=$3 name=$4 total=$5 conns=$6 line
  if ! line=$(python3 "$CLIENT" reload --port "$PORT" --pid "$ICAPD_PID" --metrics-port "$METRICS_PORT" \
                --db "$WORK/db" --new "$new" --marker "$marker" --marker-name "$name" \
                --connections "$conns" --size 50k --before "$( ((conns)) && echo 2 || echo 0.5)" \
                --after "$( ((conns)) && quick_or 1 2 || echo 0.5)"); then
    fail "the reload client failed ($kind): ${line:-no output}"
    return 0
  fi
  log "  $kind: $line"
  printf 'part=reload kind=%s %s\n' "$kind" "$line" >>"$RESULTS"
  [[ $(field "$line" reload_s) != timeout ]] || fail "$kind: no new ISTag within the timeout"
  [[ $(field "$line" failed) == 0 ]] || fail "$kind: $(field "$line" failed) requests failed during the reload"
  [[ $(field "$line" marker_before) == clean ]] || fail "$kind: the old database already detected the marker"
  [[ $(field "$line" marker_after) == "$name"* ]] || fail "$kind: the new database did not detect the marker"
  [[ $(field "$line" signatures_after) == "$total" ]] ||
    fail "$kind: the new engine has $(field "$line" signatures_after) signatures, $total were written"
  [[ $(field "$line" engines_after) == 1 ]] || fail "$kind: the old engine was not freed"
  [[ $(field "$line" hwm_reset) == yes ]] ||
    log "  (VmHWM could not be reset before the reload: hwm_peak_kb is the peak since start)"
  return 0
}
log ""
if ((HAS_RELOAD)); then
  log "b. reload: the database files replaced (renamed into place), then SIGHUP; under load:"
  log "   $RELOAD_CONNS connections of unique 50 KB messages, each must come back 204"
  ((IDLE_RELOAD)) && reload_case idle "$WORK/db-idle" "$IDLE_MARKER" "$IDLE_NAME" "$IDLE_TOTAL" 0
  reload_case load "$WORK/db-new" "$RELOAD_MARKER" "$RELOAD_NAME" "$NEW_TOTAL" "$RELOAD_CONNS"
  grep -E 'signatures reloaded|signature reload FAILED' "$START_LOG" | sed 's/^/  log: /' || true
else
  log "b. reload: SKIPPED, this imapav-icapd has no signature reload (scan.reload_check unknown)"
fi

# --- c. verdict cache ---------------------------------------------------------------------
# cache_case LABEL EXPECT-HIT SIZE [--infected]: REQUESTS cold scans interleaved with as many
# repeats of one message (half as many from 1 MB: a cold scan of 5 MB takes seconds).
cache_case() {
  local label=$1 expect=$2 size=$3 line count=$REQUESTS
  shift 3
  local bytes=${size%[kM]}
  case $size in *k) bytes=$((bytes * 1000)) ;; *M) bytes=$((bytes * 1000000)) ;; esac
  ((bytes < 1000000 || count <= 5)) || count=$(((count + 1) / 2))
  if line=$(python3 "$CLIENT" cache --port "$PORT" --size "$size" --count "$count" --expect-hit "$expect" "$@"); then :; else
    fail "cache $label $size${1:+ $1}: unexpected answers or cache markers: ${line:-no output}"
  fi
  log "  $(printf '%-8s %-4s' "$label" "$size") $line"
  [[ -n $line ]] && printf 'part=cache server=%s sizearg=%s %s\n' "$label" "$size" "$line" >>"$RESULTS"
  return 0
}
log ""
log "c. verdict cache: cold scans (each a different message) interleaved with as many repeats of one"
log "   message, preview 1024 + Allow: 204, one connection; times in ms"
if ((HAS_CACHE)); then
  for size in $SIZES; do cache_case cache yes "$size"; done
  cache_case cache yes "$(cut -d' ' -f1 <<<"$SIZES")" --infected
else
  log "  (this imapav-icapd has no verdict cache: the repeats show libclamav's own cache only)"
  for size in $SIZES; do cache_case cache no "$size"; done
fi
stop_icapd
if ((HAS_CACHE && CACHE_OFF)); then
  log "   the same with cache.max_entries = 0 (libclamav's own cache of clean results only):"
  start_icapd "$WORK/db" "cache.max_entries = 0"
  printf 'part=load db=synthetic round=extra %s\n' "$READY" >>"$RESULTS"
  for size in $SIZES; do cache_case no-cache no "$size"; done
  cache_case no-cache no "$(cut -d' ' -f1 <<<"$SIZES")" --infected
  stop_icapd
fi

# --- table --------------------------------------------------------------------------------
awk -v summary="${IMAPAV_BENCH_SUMMARY:-}" -v rounds="$ROUNDS" -v syn_total="$SYN_TOTAL" \
    -v tiny_total="$TINY_TOTAL" -v gen_s="$GEN_S" -v first_size="$(cut -d' ' -f1 <<<"$SIZES")" '
  function val(key,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  function mb(kb) { return sprintf("%.0f MB", kb / 1024) }
  # mean/min/max/count of the per-round ratios A/B.
  function pstat(A, B,   r, x, sum, n, lo, hi) {
    n = 0
    for (r = 1; r <= rounds; r++) {
      if (!(r in A) || !(r in B) || B[r] <= 0) continue
      x = A[r] / B[r]; sum += x; n++
      if (n == 1 || x < lo) lo = x
      if (n == 1 || x > hi) hi = x
    }
    return n ? sprintf("%.4f/%.4f/%.4f/%d", sum / n, lo, hi, n) : ""
  }
  function ratio(s,   v) {
    if (s == "") return "n/a"
    split(s, v, "/")
    return v[4] > 1 ? sprintf("%.1fx (%.1f-%.1f)", v[1], v[2], v[3]) : sprintf("%.1fx", v[1])
  }
  function mean(a,   k, s, n) { for (k in a) { s += a[k]; n++ } return n ? s / n : 0 }
  function row(c, a, p, r, t, m) { n = ++N; C[n] = c; AV[n] = a; PV[n] = p; RV[n] = r; TV[n] = t; MV[n] = m }
  val("part") == "load" && val("round") != "extra" {
    r = val("round"); d = val("db")
    READY[d, r] = val("ready_s"); RSS[d, r] = val("rss_kb"); HWM[d, r] = val("hwm_kb")
    if (d == "synthetic") { SR[r] = val("ready_s"); SM[r] = val("rss_kb"); SH[r] = val("hwm_kb"); LM[r] = val("load_metric_s") }
    else { TR[r] = val("ready_s"); TM[r] = val("rss_kb"); TH[r] = val("hwm_kb") }
    SIG[d] = val("signatures")
  }
  val("part") == "reload" && val("kind") == "load" {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); RL[kv[1]] = kv[2] }
    have_reload = 1
  }
  val("part") == "reload" && val("kind") == "idle" {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); RI[kv[1]] = kv[2] }
    have_idle = 1
  }
  val("part") == "cache" {
    s = val("sizearg"); srv = val("server"); k = val("kind")
    key = srv SUBSEP s SUBSEP k
    if (!(key in CM)) ORDER[++NC] = key
    CM[key] = val("cold_median_ms"); CP[key] = val("cold_p90_ms"); HM[key] = val("hit_median_ms")
    HP[key] = val("hit_p90_ms"); HR[key] = val("ratio"); MK[key] = val("hits_marked"); CNT[key] = val("count")
    BYTES[s] = val("bytes")
  }
  END {
    r_ready = pstat(SR, TR); r_rss = pstat(SM, TM)
    syn = "synthetic " syn_total " sigs"
    row("load: time to first OPTIONS, " syn " vs test " tiny_total, sprintf("%.2f s", mean(SR)),
        sprintf("%.2f s", mean(TR)), ratio(r_ready), "", "")
    row("load: signature load+compile (metric)", mean(LM) > 0 ? sprintf("%.2f s", mean(LM)) : "n/a", "-", "-", "", "")
    row("load: VmRSS after start, " syn " vs test", mb(mean(SM)), mb(mean(TM)), ratio(r_rss), "", "")
    row("load: VmHWM after start, " syn " vs test", mb(mean(SH)), mb(mean(TH)), ratio(pstat(SH, TH)), "", "")
    if (have_idle) {
      row("reload idle: SIGHUP to new ISTag vs start-up", RI["reload_s"] " s", sprintf("%.2f s", mean(SR)),
          mean(SR) > 0 ? sprintf("%.1fx", RI["reload_s"] / mean(SR)) : "n/a", "", "")
      row("reload idle: VmHWM peak (two engines) vs VmRSS before", mb(RI["hwm_peak_kb"]), mb(RI["rss_before_kb"]),
          RI["rss_before_kb"] > 0 ? sprintf("%.2fx", RI["hwm_peak_kb"] / RI["rss_before_kb"]) : "n/a", "", "")
    }
    if (have_reload) {
      row("reload under load: SIGHUP to new ISTag vs start-up", RL["reload_s"] " s", sprintf("%.2f s", mean(SR)),
          mean(SR) > 0 ? sprintf("%.1fx", RL["reload_s"] / mean(SR)) : "n/a", "", "")
      row("reload: load+compile (metric)", RL["load_metric_s"] " s", "-", "-", "", "")
      row("reload: VmHWM peak (two engines) vs VmRSS before", mb(RL["hwm_peak_kb"]), mb(RL["rss_before_kb"]),
          RL["rss_before_kb"] > 0 ? sprintf("%.2fx", RL["hwm_peak_kb"] / RL["rss_before_kb"]) : "n/a", "", "")
      row("reload: VmRSS after the old engine is freed vs before", mb(RL["rss_after_kb"]), mb(RL["rss_before_kb"]),
          RL["rss_before_kb"] > 0 ? sprintf("%.2fx", RL["rss_after_kb"] / RL["rss_before_kb"]) : "n/a",
          "", "")
      row("reload: failed requests (" RL["requests_during"] " during the reload, " RL["requests"] " in all)",
          RL["failed"], "-", "-", "0", RL["failed"] == "0" ? "yes" : "NO")
    }
    for (i = 1; i <= NC; i++) {
      split(ORDER[i], K, SUBSEP); key = ORDER[i]
      big = BYTES[K[2]] + 0 >= 1000000
      what = K[1] == "cache" ? "hit" : "repeat, cache off"
      row("cache " K[2] " " K[3] ": " what " vs cold, median (p90)",
          sprintf("%.2f ms (%.2f)", HM[key], HP[key]), sprintf("%.2f ms (%.2f)", CM[key], CP[key]),
          sprintf("%.1fx", HR[key]), K[1] == "cache" && big ? ">= 20x" : "",
          K[1] == "cache" && big ? (HR[key] + 0 >= 20 ? "yes" : "NO") : "")
    }
    split("case|imapav|peer|ratio|target|met", H, "|")
    for (k = 1; k <= 6; k++) W[k] = length(H[k])
    for (n = 1; n <= N; n++) {
      split(C[n] "\t" AV[n] "\t" PV[n] "\t" RV[n] "\t" TV[n] "\t" MV[n], X, "\t")
      for (k = 1; k <= 6; k++) if (length(X[k]) > W[k]) W[k] = length(X[k])
    }
    fmt = "%-" W[1] "s  %" W[2] "s  %" W[3] "s  %-" W[4] "s  %-" W[5] "s  %s\n"
    printf "\n"
    printf fmt, H[1], H[2], H[3], H[4], H[5], H[6]
    for (n = 1; n <= N; n++) printf fmt, C[n], AV[n], PV[n], RV[n], TV[n], MV[n]
    printf "\nload rows: ratio = synthetic/test database (what a large database costs); reload: reload/start-up,\n"
    printf "peak/before; cache: cold/hit (higher is better). Means over %d round(s); database generated in %s s.\n", rounds, gen_s
    if (summary == "") exit
    printf "bench-engine.sh\tload\tround_count=%d\tsyn_signatures=%s\ttiny_signatures=%s", rounds, SIG["synthetic"], SIG["tiny"] >> summary
    printf "\tsyn_ready_s=%.3f\ttiny_ready_s=%.3f\tsyn_load_metric_s=%.3f", mean(SR), mean(TR), mean(LM) >> summary
    printf "\tsyn_rss_kb=%d\ttiny_rss_kb=%d\tsyn_hwm_kb=%d\ttiny_hwm_kb=%d", mean(SM), mean(TM), mean(SH), mean(TH) >> summary
    printf "\tr_ready=%s\tr_rss=%s\n", r_ready, r_rss >> summary
    if (have_idle)
      printf "bench-engine.sh\treload\tkind=idle\treload_s=%s\tload_metric_s=%s\tstart_s=%.3f\trss_before_kb=%s\thwm_peak_kb=%s\trss_after_kb=%s\n", \
        RI["reload_s"], RI["load_metric_s"], mean(SR), RI["rss_before_kb"], RI["hwm_peak_kb"], RI["rss_after_kb"] >> summary
    if (have_reload) {
      printf "bench-engine.sh\treload\tkind=load\treload_s=%s\tload_metric_s=%s\tstart_s=%.3f", RL["reload_s"], RL["load_metric_s"], mean(SR) >> summary
      printf "\trss_before_kb=%s\thwm_peak_kb=%s\trss_after_kb=%s", RL["rss_before_kb"], RL["hwm_peak_kb"], RL["rss_after_kb"] >> summary
      printf "\trequests=%s\trequests_during=%s\tfailed=%s\tmarker_after=%s\n", RL["requests"], RL["requests_during"], RL["failed"], RL["marker_after"] >> summary
    }
    for (i = 1; i <= NC; i++) {
      split(ORDER[i], K, SUBSEP); key = ORDER[i]
      printf "bench-engine.sh\tcache\tserver=%s\tsize=%s\tbytes=%s\tkind=%s\tcount=%s", K[1], K[2], BYTES[K[2]], K[3], CNT[key] >> summary
      printf "\tcold_median_ms=%s\tcold_p90_ms=%s\thit_median_ms=%s\thit_p90_ms=%s\tratio=%s\thits_marked=%s\n", \
        CM[key], CP[key], HM[key], HP[key], HR[key], MK[key] >> summary
    }
  }' "$RESULTS"

if ((FAILED)); then
  log ""
  log "bench-engine.sh: some checks failed (see above)"
  exit 1
fi
