#!/usr/bin/env bash
# Benchmark: the operators' typical imapav-log queries on a realistic scan log. Builds
# imapav-log-gen and imapav-log, generates a log of 1,000,000 scan events in a temporary
# directory (or uses IMAPAV_BENCH_LOG_DB), picks real users, senders, recipients and
# Message-IDs from it with the sqlite3 CLI, runs each query several times through the real
# binary (process start-up included) and prints a table: rows, min and median wall ms, and
# PASS/OVER against the target for every events query and every stats over a day.
# See tools/bench/README.md ("Scan log query benchmark").
#
# Environment (all optional):
#   IMAPAV_BENCH_BUILD        build directory                (default: <repo>/build-bench)
#   IMAPAV_BENCH_NO_BUILD=1   use the binaries in the build directory as they are
#   IMAPAV_BENCH_EVENTS       scan events to generate        (default: 1000000)
#   IMAPAV_BENCH_DAYS         days they span, ending now     (default: 30)
#   IMAPAV_BENCH_SEED         generator seed                 (default: 1)
#   IMAPAV_BENCH_REPEAT       timed runs per query           (default: 5)
#   IMAPAV_BENCH_TARGET_MS    target for the marked queries  (default: 100)
#   IMAPAV_BENCH_LOG_DB       an existing event database to query instead of generating one
#                             (relative filters such as --since 1d count back from now, so a
#                             log generated long ago finds few rows; prune runs --dry-run only)
#   IMAPAV_BENCH_PLANS=1      print sqlite3's query plan for every query, not only those over
#   IMAPAV_BENCH_KEEP=1       keep the temporary directory (with the generated database)
#   IMAPAV_BENCH_SUMMARY      a file to append machine-readable result lines to (tab-separated
#                             key=value fields; tools/bench-all.sh reads them)
# Quick run: IMAPAV_BENCH_EVENTS=100000 IMAPAV_BENCH_REPEAT=3 tools/bench-log.sh

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${IMAPAV_BENCH_BUILD:-$ROOT/build-bench}
EVENTS=${IMAPAV_BENCH_EVENTS:-1000000}
DAYS=${IMAPAV_BENCH_DAYS:-30}
SEED=${IMAPAV_BENCH_SEED:-1}
REPEAT=${IMAPAV_BENCH_REPEAT:-5}
TARGET_MS=${IMAPAV_BENCH_TARGET_MS:-100}
LOG_DB=${IMAPAV_BENCH_LOG_DB:-}

GEN=$BUILD/tools/loggen/imapav-log-gen
LOGTOOL=$BUILD/tools/log/imapav-log

WORK=$(mktemp -d /tmp/imapav-bench-log.XXXXXX)
SERVER_PIDS=()  # none: common.sh's helpers expect the array

BENCH_NAME=bench-log.sh
# shellcheck source=tools/bench/common.sh
source "$ROOT/tools/bench/common.sh"

trap finish_bench EXIT
trap 'exit 130' INT TERM

command -v sqlite3 >/dev/null || die "sqlite3 not found (Debian package sqlite3)"
((REPEAT >= 1)) || die "IMAPAV_BENCH_REPEAT must be at least 1"

# --- build -------------------------------------------------------------------------------
# imapav-log is built on its own: while it does not build, the generator part still runs.
LOG_BUILT=1
if [[ ${IMAPAV_BENCH_NO_BUILD:-0} != 1 ]]; then
  cmake -S "$ROOT" -B "$BUILD" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "cmake configure failed"; }
  if [[ -z $LOG_DB ]]; then
    cmake --build "$BUILD" --target imapav-log-gen -j2 >>"$WORK/build.log" 2>&1 ||
      { tail -30 "$WORK/build.log"; die "build of imapav-log-gen failed"; }
  fi
  cmake --build "$BUILD" --target imapav-log -j2 >"$WORK/build-log.log" 2>&1 || LOG_BUILT=0
fi
[[ -x $LOGTOOL ]] || LOG_BUILT=0
if ((!LOG_BUILT)); then
  log "bench-log.sh: imapav-log not built ($LOGTOOL); only the log is generated and checked"
  [[ -s $WORK/build-log.log ]] && grep -m5 -E 'error|No rule' "$WORK/build-log.log" | sed 's/^/  build: /'
fi

# --- the log ------------------------------------------------------------------------------
if [[ -n $LOG_DB ]]; then
  [[ -f $LOG_DB ]] || die "IMAPAV_BENCH_LOG_DB: $LOG_DB not found"
  DB=$LOG_DB
  GEN_LINE="(existing database $DB)"
else
  [[ -x $GEN ]] || die "$GEN not found"
  DB=$WORK/events.db
  GEN_LINE=$("$GEN" --db "$DB" --count "$EVENTS" --days "$DAYS" --seed "$SEED") || die "imapav-log-gen failed"
fi

q() { sqlite3 -readonly -batch -noheader "$DB" "$1"; }  # one value from the log
sqlq() { printf "'%s'" "${1//\'/\'\'}"; }                 # an SQL string literal

ROWS=$(q "SELECT count(*) FROM scan_events")
((ROWS > 0)) || die "$DB holds no scan events"
NOW_US=$(($(date +%s) * 1000000))
DAY_US=$((NOW_US - 86400 * 1000000))
ROWS_1D=$(q "SELECT count(*) FROM scan_events WHERE time_us >= $DAY_US")
read -r FIRST LAST < <(q "SELECT min(time_iso) || ' ' || max(time_iso) FROM scan_events")
# The values the queries look for: the busiest user and sender (the most rows to sort
# through), the first recipient and the Message-ID of a row from the last day, a row in the
# middle for show.
USER_=$(q "SELECT user FROM scan_events GROUP BY user ORDER BY count(*) DESC LIMIT 1")
SENDER=$(q "SELECT sender FROM scan_events GROUP BY sender ORDER BY count(*) DESC LIMIT 1")
RECENT_ID=$(q "SELECT max(id) - 1000 FROM scan_events")
RECIPIENT=$(q "SELECT recipients FROM scan_events WHERE id >= $RECENT_ID ORDER BY id LIMIT 1")
RECIPIENT=${RECIPIENT%%,*}
# And a rare one, in fewer than 50 rows: a recipient filter has no index, so how far it reads
# depends on how soon 50 matches turn up, and this one reads the whole log. Candidates: the
# last of several recipients in recent rows.
RARE_RECIPIENT=$RECIPIENT
while IFS= read -r list; do
  candidate=${list##*,}
  if (($(q "SELECT count(*) FROM scan_events WHERE instr(recipients, $(sqlq "$candidate"))") < 50)); then
    RARE_RECIPIENT=$candidate
    break
  fi
done < <(q "SELECT recipients FROM scan_events WHERE id >= $RECENT_ID AND instr(recipients, ',') ORDER BY id LIMIT 20")
MESSAGE_ID=$(q "SELECT message_id FROM scan_events WHERE id >= $RECENT_ID ORDER BY id LIMIT 1")
SHOW_ID=$(q "SELECT id FROM scan_events WHERE id >= (SELECT (min(id) + max(id)) / 2 FROM scan_events) ORDER BY id LIMIT 1")
# The signatures of that middle row: a version long replaced, whose newest rows are far back.
SIGNATURES=$(q "SELECT signature_version FROM scan_events WHERE id = $SHOW_ID")
GATEWAY=10.0.0.3
[[ $(q "SELECT count(*) FROM scan_events WHERE gateway = '$GATEWAY'") != 0 ]] ||
  GATEWAY=$(q "SELECT gateway FROM scan_events GROUP BY gateway ORDER BY count(*) DESC LIMIT 1")

log "imapav scan log query benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), sqlite $(sqlite3 --version | cut -d' ' -f1)"
log "  $GEN_LINE"
log "  $DB: $ROWS rows ($ROWS_1D in the last day), $FIRST .. $LAST, $(du -m "$DB" | cut -f1) MB"
log "  user=$USER_ sender=$SENDER recipient=$RECIPIENT rare recipient=$RARE_RECIPIENT message-id=$MESSAGE_ID show=$SHOW_ID gateway=$GATEWAY signatures=$SIGNATURES"
((ROWS_1D > 0)) || log "  warning: no row in the last day, --since 1d queries find nothing (an old IMAPAV_BENCH_LOG_DB?)"

# Sanity checks of the generated log (the figures the issue asks for); not a test.
log "  verdicts: $(q "SELECT group_concat(verdict || ' ' || printf('%.2f%%', n * 100.0 / $ROWS), ', ') FROM (SELECT verdict, count(*) n FROM scan_events GROUP BY verdict ORDER BY n DESC)")"
log "  answered from the verdict cache: $(q "SELECT printf('%.1f%%', sum(cached) * 100.0 / count(*)) FROM scan_events"), $(q "SELECT count(DISTINCT signature_version) FROM scan_events") signature versions"
log "  distinct: $(q "SELECT count(DISTINCT user) || ' users, ' || count(DISTINCT sender) || ' senders, ' || count(DISTINCT mailbox) || ' mailboxes, ' || count(DISTINCT gateway) || ' gateways, ' || count(DISTINCT threats) || ' threat lists, ' || count(DISTINCT message_id) || ' Message-IDs' FROM scan_events")"

if ((!LOG_BUILT)); then
  log "imapav-log not built: no query timed"
  exit 1
fi

# --- queries ------------------------------------------------------------------------------
# add LABEL TARGETED SQL ARGS...: TARGETED 1 marks PASS/OVER; SQL is a hand-written
# equivalent for sqlite3's EXPLAIN QUERY PLAN ("" for none).
SEP=$'\x1f'
LABELS=() TARGETED=() SQLS=() ARGS=()
add() {
  local label=$1 targeted=$2 sql=$3
  shift 3
  LABELS+=("$label") TARGETED+=("$targeted") SQLS+=("$sql")
  local IFS=$SEP
  ARGS+=("$*")
}
S1D="time_us >= (CAST(strftime('%s','now') AS INTEGER) - 86400) * 1000000"
S7D="time_us >= (CAST(strftime('%s','now') AS INTEGER) - 7 * 86400) * 1000000"
NEWEST="ORDER BY time_us DESC LIMIT 50"

add "events --limit 50" 1 "SELECT * FROM scan_events $NEWEST" events --limit 50
add "events --since 1d --verdict infected" 1 "SELECT * FROM scan_events WHERE $S1D AND verdict = 'infected' $NEWEST" \
  events --since 1d --verdict infected
add "events --since 7d --threat 'Win.Trojan*'" 1 "SELECT * FROM scan_events WHERE $S7D AND threats GLOB '*Win.Trojan*' $NEWEST" \
  events --since 7d --threat 'Win.Trojan*'
add "events --user U" 1 "SELECT * FROM scan_events WHERE user = $(sqlq "$USER_") $NEWEST" events --user "$USER_"
add "events --sender S" 1 "SELECT * FROM scan_events WHERE sender = $(sqlq "$SENDER") $NEWEST" events --sender "$SENDER"
add "events --recipient R" 1 "SELECT * FROM scan_events WHERE instr(recipients, $(sqlq "$RECIPIENT")) $NEWEST" \
  events --recipient "$RECIPIENT"
add "events --recipient R (rare: full scan)" 1 "SELECT * FROM scan_events WHERE instr(recipients, $(sqlq "$RARE_RECIPIENT")) $NEWEST" \
  events --recipient "$RARE_RECIPIENT"
add "events --gateway $GATEWAY --since 1d" 1 "SELECT * FROM scan_events WHERE gateway = '$GATEWAY' AND $S1D $NEWEST" \
  events --gateway "$GATEWAY" --since 1d
add "events --mailbox INBOX --since 1d" 1 "SELECT * FROM scan_events WHERE mailbox = 'INBOX' AND $S1D $NEWEST" \
  events --mailbox INBOX --since 1d
add "events --message-id ID" 1 "SELECT * FROM scan_events WHERE message_id = $(sqlq "$MESSAGE_ID") $NEWEST" \
  events --message-id "$MESSAGE_ID"
add "events --error-class timeout --since 7d" 1 "SELECT * FROM scan_events WHERE error_class = 'timeout' AND $S7D $NEWEST" \
  events --error-class timeout --since 7d
add "events --action pass-unscanned --since 1d" 1 "SELECT * FROM scan_events WHERE action = 'pass-unscanned' AND $S1D $NEWEST" \
  events --action pass-unscanned --since 1d
add "events --cached yes --since 1d" 1 "SELECT * FROM scan_events WHERE cached = 1 AND $S1D $NEWEST" \
  events --cached yes --since 1d
add "events --signature-version V (old)" 1 "SELECT * FROM scan_events WHERE signature_version = $(sqlq "$SIGNATURES") $NEWEST" \
  events --signature-version "$SIGNATURES"
add "events --since 1d --format json" 1 "SELECT * FROM scan_events WHERE $S1D $NEWEST" events --since 1d --format json
add "stats --since 1d" 1 "SELECT verdict, count(*) FROM scan_events WHERE $S1D GROUP BY verdict" stats --since 1d
add "stats --since 1d --by hour" 1 "SELECT time_us / 3600000000, verdict, count(*) FROM scan_events WHERE $S1D GROUP BY 1, 2" \
  stats --since 1d --by hour
add "stats --since 7d --by day" 0 "SELECT time_us / 86400000000, verdict, count(*) FROM scan_events WHERE $S7D GROUP BY 1, 2" \
  stats --since 7d --by day
add "show ID" 0 "SELECT * FROM scan_events WHERE id = $SHOW_ID" show "$SHOW_ID"
add "prune --older-than 90d --dry-run" 0 "" prune --older-than 90d --dry-run

# run_once ARGS...: runs imapav-log once; sets LAST_MS and LAST_RC, output in $WORK/out.
run_once() {
  local t0 t1
  t0=${EPOCHREALTIME/./}
  LAST_RC=0
  "$LOGTOOL" --db "$DB" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || LAST_RC=$?
  t1=${EPOCHREALTIME/./}
  LAST_MS=$(((t1 - t0) / 1000)).$(printf '%d' $((((t1 - t0) % 1000) / 100)))
}

# min and median of the numbers on stdin
min_median() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %.1f\n", v[1], m }'; }

time_query() {  # time_query ARGS...: sets MIN MEDIAN RC
  local i times=()
  run_once "$@"  # warm-up: the first run reads the file into the page cache
  for ((i = 0; i < REPEAT; i++)); do
    run_once "$@"
    times+=("$LAST_MS")
    ((LAST_RC == 0)) || break
  done
  RC=$LAST_RC
  read -r MIN MEDIAN < <(printf '%s\n' "${times[@]}" | min_median)
}

SUMMARY=${IMAPAV_BENCH_SUMMARY:-}
summary() {  # summary FIELDS...: one tab-separated line in IMAPAV_BENCH_SUMMARY, if set
  [[ -n $SUMMARY ]] || return 0
  local IFS=$'\t'
  printf 'bench-log.sh\t%s\n' "$*" >>"$SUMMARY"
}

time_query --help
HELP_MIN=$MIN HELP_MEDIAN=$MEDIAN
summary setup "rows=$ROWS" "rows_1d=$ROWS_1D" "repeat=$REPEAT" "target_ms=$TARGET_MS" \
  "help_min_ms=$HELP_MIN" "help_median_ms=$HELP_MEDIAN"
log ""
log "each query: 1 warm-up run, then $REPEAT timed runs of '$LOGTOOL --db DB ...', wall time"
log "including process start-up; target ${TARGET_MS} ms for the events queries and stats over a day"
log ""
printf '%-44s %9s %9s %9s  %s\n' query rows "min ms" "med ms" "vs ${TARGET_MS} ms"
printf '%-44s %9s %9s %9s  %s\n' "--help (start-up floor)" - "$HELP_MIN" "$HELP_MEDIAN" ""
BEFORE=$ROWS
OVER=() FAILED=0
for i in "${!LABELS[@]}"; do
  IFS=$SEP read -ra args <<<"${ARGS[i]}"
  time_query "${args[@]}"
  if ((RC != 0)); then
    printf '%-44s %9s %9s %9s  %s\n' "${LABELS[i]}" - - - "FAILED rc=$RC: $(head -c 200 "$WORK/err" | head -1)"
    FAILED=$((FAILED + 1))
    summary query "label=${LABELS[i]}" "targeted=${TARGETED[i]}" "mark=FAILED"
    continue
  fi
  # Rows: events through an untimed --format csv run (lines minus the header), anything
  # else as lines of output.
  if [[ ${args[0]} == events ]]; then
    csv=("${args[@]}")
    for j in "${!csv[@]}"; do [[ ${csv[j]} == json ]] && csv[j]=csv; done
    [[ " ${csv[*]} " == *" --format "* ]] || csv+=(--format csv)
    if "$LOGTOOL" --db "$DB" "${csv[@]}" >"$WORK/csv" 2>/dev/null </dev/null; then
      rows=$(($(wc -l <"$WORK/csv") - 1))
      ((rows >= 0)) || rows=0
    else
      rows="?"
    fi
  else
    rows="$(wc -l <"$WORK/out")L"
  fi
  mark=""
  if [[ ${TARGETED[i]} == 1 ]]; then
    if awk -v m="$MEDIAN" -v t="$TARGET_MS" 'BEGIN { exit !(m < t) }'; then
      mark=PASS
    else
      mark=OVER
      OVER+=("$i")
    fi
  fi
  printf '%-44s %9s %9s %9s  %s\n' "${LABELS[i]}" "$rows" "$MIN" "$MEDIAN" "$mark"
  summary query "label=${LABELS[i]}" "targeted=${TARGETED[i]}" "rows=$rows" "min_ms=$MIN" "median_ms=$MEDIAN" "mark=$mark"
done
log "(rows: for events the rows of a --format csv run; nL: lines of output)"
AFTER=$(q "SELECT count(*) FROM scan_events")
[[ $AFTER == "$BEFORE" ]] || log "WARNING: prune --dry-run changed the log: $BEFORE rows before, $AFTER after"

# --- plans --------------------------------------------------------------------------------
# imapav-log's own SQL is not visible from outside: these are hand-written equivalents,
# showing which index sqlite3 picks for such a query on this file.
PLANS=("${OVER[@]}")
[[ ${IMAPAV_BENCH_PLANS:-0} == 1 ]] && PLANS=("${!LABELS[@]}")
for i in "${PLANS[@]}"; do
  [[ -n ${SQLS[i]} ]] || continue
  log ""
  log "plan for a hand-written equivalent of '${LABELS[i]}':"
  log "  ${SQLS[i]}"
  q "EXPLAIN QUERY PLAN ${SQLS[i]}" | sed 's/^/  /'
done
log ""
log "${#OVER[@]} of the targeted queries over ${TARGET_MS} ms, $FAILED failed"
((FAILED == 0))
