#!/usr/bin/env bash
# Every benchmark in one command: builds once, then runs tools/bench.sh (imapav-icapd vs
# c-icap + virus_scan vs libclamav alone), tools/bench-redirector.sh (redirector vs direct
# Dovecot, plain and TLS, vs imapav-icapd scanning alone, idle-session memory),
# tools/bench-log.sh (imapav-log queries on 1,000,000 scan events) and tools/bench-engine.sh
# (signature load and reload with a large synthetic database, verdict cache hit vs cold
# scan), one after the other, with their full output, and ends with one headline table:
# each figure next to its peer, their ratio, and the target where the issue sets one. Each
# script starts and stops what it needs; this one only reads the machine-readable lines they
# append to the file named by IMAPAV_BENCH_SUMMARY. Exits 1 if a component benchmark fails
# (the others still run).
# See tools/bench/README.md ("All benchmarks in one run").
#
# Environment (all optional; everything else IMAPAV_BENCH_* goes to the scripts as it is,
# see their headers: IMAPAV_BENCH_SECONDS and _ROUNDS apply to bench.sh and
# bench-redirector.sh, _CONNS too, replacing the defaults of both; _ROUNDS and _SIZES
# apply to bench-engine.sh too):
#   IMAPAV_BENCH_QUICK=1      the scripts' short settings (~6 minutes instead of ~18-23):
#                             IMAPAV_BENCH_SECONDS=2 IMAPAV_BENCH_ROUNDS=1
#                             IMAPAV_BENCH_SESSIONS=200 IMAPAV_BENCH_EVENTS=100000
#                             IMAPAV_BENCH_REPEAT=3, and bench-engine.sh's quick mode;
#                             any of them set explicitly wins
#                             (IMAPAV_BENCH_EVENTS=1000000 keeps the full-size log: +2-5 min)
#   IMAPAV_BENCH_PARTS        which benchmarks      (default: "icap redirector log engine")
#   IMAPAV_BENCH_BUILD        build directory       (default: <repo>/build-bench)
#   IMAPAV_BENCH_NO_BUILD=1   use the binaries in the build directory as they are
#   IMAPAV_BENCH_KEEP=1       keep the temporary directories (this one: summary lines, build log)
# Run as root (bench-redirector.sh starts a private Dovecot).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export IMAPAV_BENCH_BUILD=${IMAPAV_BENCH_BUILD:-$ROOT/build-bench}
BUILD=$IMAPAV_BENCH_BUILD
PARTS=${IMAPAV_BENCH_PARTS:-"icap redirector log engine"}
QUICK=${IMAPAV_BENCH_QUICK:-0}

WORK=$(mktemp -d /tmp/imapav-bench-all.XXXXXX)
SERVER_PIDS=()  # none: the scripts start and stop their own servers
BENCH_NAME=bench-all.sh
# shellcheck source=tools/bench/common.sh
source "$ROOT/tools/bench/common.sh"
trap finish_bench EXIT
trap 'exit 130' INT TERM

declare -A SCRIPT=([icap]=bench.sh [redirector]=bench-redirector.sh [log]=bench-log.sh [engine]=bench-engine.sh)
declare -A TARGETS=(
  [icap]="imapav-bench-icap imapav-icapd"
  [redirector]="imapav-bench-icap imapav-icapd imapav-redirector"
  [log]="imapav-log-gen imapav-log"
  [engine]="imapav-icapd"
)
for part in $PARTS; do
  [[ -n ${SCRIPT[$part]:-} ]] || die "IMAPAV_BENCH_PARTS: unknown part '$part' (icap, redirector, log, engine)"
done

if [[ $QUICK == 1 ]]; then
  export IMAPAV_BENCH_QUICK=1  # bench-engine.sh's own quick mode
  export IMAPAV_BENCH_SECONDS=${IMAPAV_BENCH_SECONDS:-2}
  export IMAPAV_BENCH_ROUNDS=${IMAPAV_BENCH_ROUNDS:-1}
  export IMAPAV_BENCH_SESSIONS=${IMAPAV_BENCH_SESSIONS:-200}
  export IMAPAV_BENCH_REPEAT=${IMAPAV_BENCH_REPEAT:-3}
  export IMAPAV_BENCH_EVENTS=${IMAPAV_BENCH_EVENTS:-100000}
fi

T_START=$SECONDS
START_DATE=$(date '+%Y-%m-%d %H:%M:%S')

# --- build, once ---------------------------------------------------------------------------
# One build for all the scripts (they then run with IMAPAV_BENCH_NO_BUILD=1): the binaries
# stay the same for the whole run, whatever happens to the tree meanwhile.
if [[ ${IMAPAV_BENCH_NO_BUILD:-0} != 1 ]]; then
  # shellcheck disable=SC2086
  targets=$(for part in $PARTS; do printf '%s\n' ${TARGETS[$part]}; done | sort -u | tr '\n' ' ')
  log "bench-all.sh: building $targets in $BUILD"
  t0=$SECONDS
  cmake -S "$ROOT" -B "$BUILD" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "cmake configure failed"; }
  # shellcheck disable=SC2086
  cmake --build "$BUILD" --target $targets -j2 >>"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; die "build failed"; }
  log "  built in $((SECONDS - t0)) s"
fi
export IMAPAV_BENCH_NO_BUILD=1

SUMMARY=$WORK/summary.tsv
: >"$SUMMARY"
declare -A RC=() DURATION=()
FAILED=0
for part in $PARTS; do
  script=${SCRIPT[$part]}
  log ""
  log "=================================================================================="
  log "== tools/$script ($(date '+%H:%M:%S'))"
  log "=================================================================================="
  t0=$SECONDS
  rc=0
  IMAPAV_BENCH_SUMMARY=$SUMMARY "$ROOT/tools/$script" || rc=$?
  ((rc != 130)) || exit 130
  RC[$part]=$rc
  DURATION[$part]=$((SECONDS - t0))
  ((rc == 0)) || FAILED=1
  log "== tools/$script: exit $rc after $((DURATION[$part] / 60))m$(printf '%02d' $((DURATION[$part] % 60)))s"
done

# --- headline ------------------------------------------------------------------------------
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
log ""
log "=================================================================================="
log "== headline ($START_DATE, $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg))"
log "=================================================================================="
settings="mode: $([[ $QUICK == 1 ]] && echo quick || echo default)"
for v in SECONDS ROUNDS CONNS SESSIONS EVENTS REPEAT TLS; do
  var=IMAPAV_BENCH_$v
  [[ -n ${!var:-} ]] && settings+=", $var=${!var}"
done
log "$settings (anything not listed: the scripts' defaults)"
durations=""
for part in $PARTS; do
  durations+="${SCRIPT[$part]} $(mmss "${DURATION[$part]}") (exit ${RC[$part]}), "
done
log "durations: ${durations}total $(mmss $((SECONDS - T_START)))"
log ""

awk -F'\t' '
  function kv(   i, p) {
    split("", F)
    for (i = 3; i <= NF; i++) { p = index($i, "="); F[substr($i, 1, p - 1)] = substr($i, p + 1) }
  }
  function size(b) { b += 0; return b >= 1000000 ? sprintf("%g MB", b / 1e6) : sprintf("%g KB", b / 1000) }
  # bench.sh sizes as given ("50k", "5M": 1000-based); anything else from the bytes sent.
  function sizearg(a, b) {
    if (a ~ /^[0-9.]+[kK]$/) return substr(a, 1, length(a) - 1) " KB"
    if (a ~ /^[0-9.]+M$/) return substr(a, 1, length(a) - 1) " MB"
    return size(b)
  }
  # A ratio from the summary (mean/min/max/rounds used): mean, and min-max when rounds > 1.
  function ratio(s,   v) {
    if (s == "") return "n/a"
    split(s, v, "/")
    return v[4] > 1 ? sprintf("%.2fx (%.2f-%.2f)", v[1], v[2], v[3]) : sprintf("%.2fx", v[1])
  }
  function rmean(s,   v) { if (s == "") return ""; split(s, v, "/"); return v[1] + 0 }
  function atleast(s, t) { return s == "" ? "?" : (rmean(s) >= t ? "yes" : "NO") }
  function row(g, c, a, p, r, t, m) {
    n = ++G[g]; CASE[g, n] = c; A[g, n] = a; P[g, n] = p; RT[g, n] = r; T[g, n] = t; M[g, n] = m
  }
  function conns(n) { return n + 0 == 1 ? "1 conn" : n " conns" }
  $1 == "bench.sh" && $2 == "icap" {
    kv(); c = "icap " sizearg(F["size"], F["bytes"]) ", " conns(F["conns"])
    small = F["bytes"] + 0 < 1000000
    row(1, c ": icapd vs c-icap+virus_scan", F["icapd_req_s"] " req/s", F["cicap_req_s"] " req/s",
        ratio(F["r_cicap"]), small ? ">= 2.00x" : "", small ? atleast(F["r_cicap"], 2) : "")
    row(2, c ": icapd vs libclamav alone", F["icapd_req_s"] " req/s", F["libclamav_req_s"] " req/s",
        ratio(F["r_libclamav"]), small ? "" : ">= 0.90x", small ? "" : atleast(F["r_libclamav"], 0.9))
  }
  $1 == "bench-redirector.sh" && $2 == "imap" {
    kv(); large = F["kind"] == "large"
    c = "imap " size(F["bytes"]) ", " conns(F["conns"]) ", " F["imap"]
    u = large ? " MB/s" : " msg/s"
    red = large ? F["redirector_MB_s"] : F["redirector_msg_s"]
    row(3, c ": redirector vs direct Dovecot", red u, (large ? F["direct_MB_s"] : F["direct_msg_s"]) u,
        ratio(F["r_direct"]), "", "")
    row(4, c ": redirector vs icapd scan alone", red u, (large ? F["icapd_MB_s"] : F["icapd_req_s"]) u,
        ratio(F["r_icapd"]), "", "")
    # Small messages: the time a message costs beyond its scan against a direct fetch (on
    # large ones the redirector streams into the scan and this degenerates: see row 4).
    if (!large && F["redirector_msg_s"] + 0 > 0 && F["icapd_req_s"] + 0 > 0 && F["direct_msg_s"] + 0 > 0) {
      beyond = 1000 / F["redirector_msg_s"] - 1000 / F["icapd_req_s"]
      row(5, c ": time beyond the scan vs direct", sprintf("%.2f ms/msg", beyond),
          sprintf("%.2f ms/msg", 1000 / F["direct_msg_s"]), ratio(F["ov_alone"]), ">= 0.90x", atleast(F["ov_alone"], 0.9))
    }
  }
  $1 == "bench-redirector.sh" && $2 == "idle" {
    kv()
    ok = F["alive"] + 0 == F["sessions"] + 0 && F["failed"] + 0 == 0 && F["per_session_KB"] * 2000 < 100 * 1024
    row(6, "imap " F["sessions"] " idle sessions: redirector memory", F["per_session_KB"] " KB/session",
        "-", "-", "2000 in < 100 MB", ok ? "yes" : "NO")
  }
  $1 == "bench-log.sh" && $2 == "setup" {
    kv(); rows = F["rows"]; target = F["target_ms"]
    rows += 0
    logcase = "imapav-log " (rows % 1000000 == 0 ? rows / 1000000 "M" : rows % 1000 == 0 ? rows / 1000 "k" : rows) " events"
    help = F["help_median_ms"]
  }
  $1 == "bench-log.sh" && $2 == "query" {
    kv(); q = F["label"]
    if (F["mark"] == "FAILED") { failedq++; next }
    if (F["targeted"] + 0 == 1) {
      total++; if (F["mark"] == "PASS") passed++
      grp = (q ~ /^stats/) ? "stats" : "events"
      if (!(grp in worst) || F["median_ms"] + 0 > worst[grp] + 0) { worst[grp] = F["median_ms"]; worstq[grp] = q }
    } else {
      other[++nother] = q; otherms[nother] = F["median_ms"]
    }
  }
  # bench-engine.sh: ratios there are costs (synthetic/test database, reload/start-up,
  # peak/before), but for the cache (cold/hit, higher is better).
  function sigs(n) { n += 0; return n >= 1000 ? sprintf("%.0fk", n / 1000) : n }
  function cost(s,   v) {
    if (s == "") return "n/a"
    split(s, v, "/")
    return v[4] > 1 ? sprintf("%.1fx cost (%.1f-%.1f)", v[1], v[2], v[3]) : sprintf("%.1fx cost", v[1])
  }
  function mbytes(kb) { return sprintf("%.0f MB", kb / 1024) }
  $1 == "bench-engine.sh" && $2 == "load" {
    kv()
    c = "engine " sigs(F["syn_signatures"]) " synthetic signatures vs " F["tiny_signatures"] " test"
    row(8, c ": start to first OPTIONS", sprintf("%.2f s", F["syn_ready_s"]), sprintf("%.2f s", F["tiny_ready_s"]),
        cost(F["r_ready"]), "", "")
    row(8, c ": VmRSS after start", mbytes(F["syn_rss_kb"]), mbytes(F["tiny_rss_kb"]), cost(F["r_rss"]), "", "")
  }
  $1 == "bench-engine.sh" && $2 == "reload" {
    kv(); c = "engine reload " (F["kind"] == "idle" ? "idle" : "under load")
    row(8, c ": SIGHUP to new ISTag vs start-up", F["reload_s"] " s", sprintf("%.2f s", F["start_s"]),
        F["start_s"] > 0 ? sprintf("%.1fx cost", F["reload_s"] / F["start_s"]) : "n/a", "", "")
    row(8, c ": VmHWM peak (two engines) vs VmRSS before", mbytes(F["hwm_peak_kb"]), mbytes(F["rss_before_kb"]),
        F["rss_before_kb"] > 0 ? sprintf("%.2fx cost", F["hwm_peak_kb"] / F["rss_before_kb"]) : "n/a", "", "")
    if (F["kind"] != "idle")
      row(8, c ": failed requests (" F["requests_during"] " during it)", F["failed"], "-", "-", "0",
          F["failed"] == "0" ? "yes" : "NO")
  }
  $1 == "bench-engine.sh" && $2 == "cache" {
    kv(); big = F["bytes"] + 0 >= 1000000; on = F["server"] == "cache"
    row(8, "engine cache " sizearg(F["size"], F["bytes"]) " " F["kind"] ": " (on ? "hit" : "repeat, cache off") " vs cold scan",
        F["hit_median_ms"] " ms", F["cold_median_ms"] " ms", sprintf("%.1fx", F["ratio"]),
        on && big ? ">= 20x" : "", on && big ? (F["ratio"] + 0 >= 20 ? "yes" : "NO") : "")
  }
  END {
    if (logcase != "") {
      row(7, logcase ": --help (start-up floor)", help " ms", "-", "-", "", "")
      for (i = 1; i <= 2; i++) {
        grp = i == 1 ? "events" : "stats"
        if (!(grp in worst)) continue
        row(7, logcase ": slowest " (grp == "stats" ? "stats over a day" : "events query") ": " worstq[grp],
            worst[grp] " ms", "-", "-", "< " target " ms", worst[grp] + 0 < target + 0 ? "yes" : "NO")
      }
      row(7, logcase ": targeted queries under " target " ms", (passed + 0) "/" (total + 0) \
          (failedq ? " (" failedq " failed)" : ""), "-", "-", "all", passed == total && !failedq ? "yes" : "NO")
      for (i = 1; i <= nother; i++) row(7, logcase ": " other[i], otherms[i] " ms", "-", "-", "", "")
    }
    split("case|imapav|peer|ratio|target|met", H, "|")
    for (k = 1; k <= 6; k++) W[k] = length(H[k])
    for (g = 1; g <= 8; g++) for (n = 1; n <= G[g]; n++) {
      split(CASE[g, n] "\t" A[g, n] "\t" P[g, n] "\t" RT[g, n] "\t" T[g, n] "\t" M[g, n], X, "\t")
      for (k = 1; k <= 6; k++) if (length(X[k]) > W[k]) W[k] = length(X[k])
    }
    fmt = "%-" W[1] "s  %" W[2] "s  %" W[3] "s  %-" W[4] "s  %-" W[5] "s  %s\n"
    printf fmt, H[1], H[2], H[3], H[4], H[5], H[6]
    for (g = 1; g <= 8; g++) {
      if (G[g]) print ""
      for (n = 1; n <= G[g]; n++) printf fmt, CASE[g, n], A[g, n], P[g, n], RT[g, n], T[g, n], M[g, n]
    }
    if (!G[1] && !G[3] && !G[6] && !G[7] && !G[8]) print "(no figures)"
  }' "$SUMMARY"

cat <<'EOF'

ratio: the mean of per-round ratios imapav/peer, min-max over the rounds in brackets; higher is
better, but for the engine's "cost" ratios ("time beyond the scan": direct time / (redirector
time - icapd-alone time), per message, the issue's overhead figure). Figures are means over
the rounds. The redirector rows with "tls" compare redirector-tls (TLS on both sides) with
Dovecot's imaps. "met": the mean against the target. imapav-log rows: median wall ms of one
query, process start-up included. engine rows: "cost" ratios say what a large signature
database costs (synthetic/test database, reload/start-up, peak/before: lower is better);
cache rows: median ms, cold/hit (higher is better).
tools/bench/README.md explains every figure.
EOF

if ((FAILED)); then
  log ""
  for part in $PARTS; do
    ((RC[$part] == 0)) || log "bench-all.sh: tools/${SCRIPT[$part]} FAILED (exit ${RC[$part]}): its figures above may be missing or wrong"
  done
  exit 1
fi
