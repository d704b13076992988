#!/usr/bin/env bash
# Soak test (issue 6): a bounded run of mixed IMAP load through imapav-redirector, with
# every download checked, the memory of both daemons watched, and their /metrics
# cross-checked against what the clients did.
#
# Starts, on free loopback ports in a temporary directory: a private Dovecot with a
# generated mailbox per user (clean and EICAR-infected messages, 300 bytes to ~2 MB),
# imapav-icapd (test signatures, event log, metrics.listen) and imapav-redirector in front
# of Dovecot (scan.spill_threshold low, so spill files are used; metrics.listen). Then
# IMAPAV_SOAK_CLIENTS python imaplib clients (tools/soak/soak_client.py) run for
# IMAPAV_SOAK_SECONDS: single and batch FETCHes (BODY.PEEK[], RFC822, UID FETCH, FETCH 1:*),
# partial fetches, IDLE sessions, reconnects, dropped connections and downloads abandoned
# half-way. At the end it scrapes both /metrics, stops the daemons with SIGTERM (each must
# exit 0), checks the spill directories are empty and the event log holds every scan, and
# prints a summary. Exit status 0 only if every check passed.
# See tools/bench/README.md ("Soak test").
#
# Environment (all optional):
#   IMAPAV_SOAK_SECONDS          load duration                 (default: 600; 60 for a quick check)
#   IMAPAV_SOAK_CLIENTS          concurrent clients             (default: 32)
#   IMAPAV_SOAK_IDLE_CLIENTS     of those, clients that sit in IDLE (default: 2)
#   IMAPAV_SOAK_USERS            mailboxes (clients share them round-robin) (default: 8)
#   IMAPAV_SOAK_MESSAGES         messages per mailbox, 20% infected (default: 40)
#   IMAPAV_SOAK_DELIVERY_RATE    new messages per second during the load, appended to the
#                                mailboxes (up to 3x IMAPAV_SOAK_MESSAGES each) (default: 1; 0: none)
#   IMAPAV_SOAK_SPILL_THRESHOLD  the redirector's scan.spill_threshold (default: 256k)
#   IMAPAV_SOAK_MAX_GROWTH_MB    memory check: fail if RSS grows by more than this ...
#   IMAPAV_SOAK_MAX_GROWTH_PCT   ... and by more than this percentage (defaults: 10, 20)
#   IMAPAV_SOAK_SEED             generator and client seed     (default: 1)
#   IMAPAV_SOAK_BUILD            build directory with the binaries (default: <repo>/build; not built here)
#   IMAPAV_SOAK_SIGNATURES       signature directory           (default: <repo>/tests/data/signatures)
#   IMAPAV_SOAK_KEEP=1           keep the temporary directory (configs, logs, samples.csv,
#                                results.json, final /metrics, summary.txt)
# Quick check: IMAPAV_SOAK_SECONDS=60 tools/soak.sh

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${IMAPAV_SOAK_BUILD:-$ROOT/build}
RUN_SECONDS=${IMAPAV_SOAK_SECONDS:-600}
CLIENTS=${IMAPAV_SOAK_CLIENTS:-32}
IDLE_CLIENTS=${IMAPAV_SOAK_IDLE_CLIENTS:-2}
USERS=${IMAPAV_SOAK_USERS:-8}
MESSAGES=${IMAPAV_SOAK_MESSAGES:-40}
DELIVERY_RATE=${IMAPAV_SOAK_DELIVERY_RATE:-1}
SPILL=${IMAPAV_SOAK_SPILL_THRESHOLD:-256k}
MAX_GROWTH_MB=${IMAPAV_SOAK_MAX_GROWTH_MB:-10}
MAX_GROWTH_PCT=${IMAPAV_SOAK_MAX_GROWTH_PCT:-20}
SEED=${IMAPAV_SOAK_SEED:-1}
SIGS=${IMAPAV_SOAK_SIGNATURES:-$ROOT/tests/data/signatures}
DOVECOT=/usr/sbin/dovecot
PY=/usr/bin/python3  # Debian's python: imaplib, sqlite3
PASSWORD=soak-secret

CLIENT=$ROOT/tools/soak/soak_client.py
ICAPD=$BUILD/icap-server/imapav-icapd
REDIRECTOR=$BUILD/redirector/imapav-redirector

# finish_bench (tools/bench/common.sh) keeps WORK when IMAPAV_BENCH_KEEP=1.
export IMAPAV_BENCH_KEEP=${IMAPAV_SOAK_KEEP:-0}
WORK=$(mktemp -d /tmp/imapav-soak.XXXXXX)
SERVER_PIDS=()

BENCH_NAME=soak.sh
# shellcheck source=tools/bench/common.sh
source "$ROOT/tools/bench/common.sh"
trap finish_bench EXIT
trap 'exit 130' INT TERM

for v in RUN_SECONDS CLIENTS IDLE_CLIENTS USERS MESSAGES SEED; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((RUN_SECONDS >= 10)) || die "IMAPAV_SOAK_SECONDS must be at least 10"
((CLIENTS >= 1 && IDLE_CLIENTS < CLIENTS)) || die "need more clients than IDLE clients"
((MESSAGES >= 10 && MESSAGES < 1000)) || die "IMAPAV_SOAK_MESSAGES must be 10..999"
[[ $DELIVERY_RATE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "IMAPAV_SOAK_DELIVERY_RATE must be a number"
case $SPILL in  # the client needs it in bytes
  *[kK]) SPILL_BYTES=$((${SPILL%?} * 1024)) ;;
  *M) SPILL_BYTES=$((${SPILL%?} * 1024 * 1024)) ;;
  *[0-9]) SPILL_BYTES=$SPILL ;;
  *) die "IMAPAV_SOAK_SPILL_THRESHOLD: a number with k or M" ;;
esac

[[ -x $DOVECOT ]] || die "$DOVECOT not found (Debian package dovecot-imapd)"
[[ -x $PY ]] || die "$PY not found"
id nobody >/dev/null 2>&1 || die "user nobody is needed for Dovecot's mail"
[[ $(id -u) == 0 ]] || die "run as root: Dovecot's private instance switches to user nobody"
for f in "$ICAPD" "$REDIRECTOR"; do
  [[ -x $f ]] || die "$f not found: build first (tools/build.sh) or set IMAPAV_SOAK_BUILD"
done
compgen -G "$SIGS/*.ndb" >/dev/null || die "no signatures (*.ndb) in $SIGS"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- mail -----------------------------------------------------------------------------------
chmod 0755 "$WORK"
mkdir -p "$WORK/run" "$WORK/state" "$WORK/mail" "$WORK/log" "$WORK/spill" "$WORK/icapd-spill"
"$PY" "$CLIENT" gen --work "$WORK" --users "$USERS" --messages "$MESSAGES" --seed "$SEED" >"$WORK/log/gen.log"
chown -R nobody:"$(id -gn nobody)" "$WORK/mail"

# --- servers --------------------------------------------------------------------------------
USED_PORTS=" "
new_port() {  # new_port VAR: a free port that differs from the earlier ones
  local p
  p=$(free_port)
  while [[ $USED_PORTS == *" $p "* ]]; do p=$(free_port); done
  USED_PORTS+="$p "
  printf -v "$1" '%s' "$p"
}
new_port DOVECOT_PORT
new_port ICAPD_PORT
new_port ICAPD_METRICS
new_port REDIR_PORT
new_port REDIR_METRICS

# Room for every client's sessions (one imap process each), those a dropped client leaves
# behind for a moment, and the direct index pass; all from one address.
PROC_LIMIT=$((CLIENTS * 4 + 100))
cat >"$WORK/dovecot.conf" <<EOF
# Generated by tools/soak.sh.
protocols = imap
listen = 127.0.0.1
base_dir = $WORK/run
state_dir = $WORK/state
log_path = $WORK/log/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$WORK/mail/%u
first_valid_uid = 1
default_process_limit = $PROC_LIMIT
default_client_limit = $((PROC_LIMIT * 2))
passdb {
  driver = static
  args = password=$PASSWORD
}
userdb {
  driver = static
  args = uid=$(id -u nobody) gid=$(id -g nobody) home=$WORK/mail/%u
}
protocol imap {
  mail_max_userip_connections = $((PROC_LIMIT * 2))
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
  service_count = 0
  process_min_avail = 2
  client_limit = $((PROC_LIMIT * 2))
}
service imap {
  process_limit = $PROC_LIMIT
}
service anvil {
  chroot =
  client_limit = $((PROC_LIMIT * 3))
}
service auth {
  client_limit = $((PROC_LIMIT * 3))
}
EOF

cat >"$WORK/imapav-icapd.conf" <<EOF
# Generated by tools/soak.sh. Everything not set here is imapav-icapd's default.
icap.listen = 127.0.0.1:$ICAPD_PORT
scan.database_dir = $SIGS
scan.spill_threshold = 1M
scan.spill_dir = $WORK/icapd-spill
log.database = $WORK/events.db
policy.fail_mode = drop
metrics.listen = 127.0.0.1:$ICAPD_METRICS
EOF

# fail_mode = drop: a message no ICAP server answered for comes as a notice, which the
# client reports as an altered clean message. Short keep-alives, so that clients waiting
# for a scan under load get some.
cat >"$WORK/imapav-redirector.conf" <<EOF
# Generated by tools/soak.sh. Everything not set here is the redirector's default.
imap.listen = 127.0.0.1:$REDIR_PORT
upstream.address = 127.0.0.1:$DOVECOT_PORT
icap.servers = icap://127.0.0.1:$ICAPD_PORT/avscan
icap.timeout = 120
fail_mode = drop
scan.spill_threshold = $SPILL
scan.spill_dir = $WORK/spill
imap.keepalive_interval = 5s
metrics.listen = 127.0.0.1:$REDIR_METRICS
EOF

setsid "$DOVECOT" -F -c "$WORK/dovecot.conf" >"$WORK/log/dovecot.out" 2>&1 </dev/null &
DOVECOT_PID=$!
SERVER_PIDS+=("$DOVECOT_PID")
wait_port "$DOVECOT_PORT" "$DOVECOT_PID" dovecot "$WORK/log/dovecot.log"
setsid "$ICAPD" --config "$WORK/imapav-icapd.conf" >"$WORK/log/imapav-icapd.log" 2>&1 </dev/null &
ICAPD_PID=$!
SERVER_PIDS+=("$ICAPD_PID")
wait_port "$ICAPD_PORT" "$ICAPD_PID" imapav-icapd "$WORK/log/imapav-icapd.log"
setsid "$REDIRECTOR" --config "$WORK/imapav-redirector.conf" >"$WORK/log/imapav-redirector.log" 2>&1 </dev/null &
REDIR_PID=$!
SERVER_PIDS+=("$REDIR_PID")
# Not a probe connection (it would count as a session): its "listening" log line.
for ((i = 0; i < 300; i++)); do
  grep -q "listening imap=$REDIR_PORT " "$WORK/log/imapav-redirector.log" && break
  kill -0 "$REDIR_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q "listening imap=$REDIR_PORT " "$WORK/log/imapav-redirector.log" ||
  { tail -20 "$WORK/log/imapav-redirector.log" >&2; die "imapav-redirector did not start (log above)"; }
curl -sf --max-time 10 "http://127.0.0.1:$REDIR_METRICS/metrics" >/dev/null || die "no /metrics from imapav-redirector"
curl -sf --max-time 10 "http://127.0.0.1:$ICAPD_METRICS/metrics" >/dev/null || die "no /metrics from imapav-icapd"

# UIDs of the generated messages, and Dovecot serves each one byte-identical (directly).
"$PY" "$CLIENT" index --work "$WORK" --port "$DOVECOT_PORT" --password "$PASSWORD" >"$WORK/log/index.log" 2>&1 ||
  { cat "$WORK/log/index.log" >&2; die "the direct check of the mailboxes in Dovecot failed"; }

log "imapav soak test: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), work dir $WORK"
log "  dovecot $("$DOVECOT" --version | cut -d' ' -f1) 127.0.0.1:$DOVECOT_PORT   imapav-icapd icap://127.0.0.1:$ICAPD_PORT/avscan (metrics :$ICAPD_METRICS)"
log "  imapav-redirector 127.0.0.1:$REDIR_PORT (metrics :$REDIR_METRICS), scan.spill_threshold = $SPILL, binaries from $BUILD"
log "  $(cat "$WORK/log/gen.log"); $(cat "$WORK/log/index.log")"
log "  load: $CLIENTS clients ($IDLE_CLIENTS in IDLE) for $RUN_SECONDS s; new mail: $DELIVERY_RATE message(s)/s"

# --- load -----------------------------------------------------------------------------------
"$PY" "$CLIENT" run --work "$WORK" --port "$REDIR_PORT" --password "$PASSWORD" --seconds "$RUN_SECONDS" \
  --clients "$CLIENTS" --idle-clients "$IDLE_CLIENTS" --spill-threshold "$SPILL_BYTES" --seed "$SEED" \
  --dovecot-port "$DOVECOT_PORT" --delivery-rate "$DELIVERY_RATE" --max-per-user "$((MESSAGES * 3))" \
  --redirector-pid "$REDIR_PID" --icapd-pid "$ICAPD_PID" \
  --redirector-metrics "127.0.0.1:$REDIR_METRICS" --icapd-metrics "127.0.0.1:$ICAPD_METRICS" ||
  log "soak.sh: the load client failed (exit $?); the report says what is missing"

# --- stop: each daemon must exit 0 on SIGTERM ------------------------------------------------
running() {  # running PID: the process exists and is not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}
STOP_ENV=$WORK/stop.env
: >"$STOP_ENV"
stop_daemon() {  # stop_daemon NAME PID: SIGTERM, up to 60 s, then SIGKILL; records the exit code
  local name=$1 pid=$2 rc=0 t0 i
  t0=$(date +%s.%N)
  if running "$pid"; then
    kill -TERM "$pid"
    for ((i = 0; i < 600; i++)); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
      log "soak.sh: imapav-$name did not stop within 60 s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" || rc=$?
  printf '%s_rc=%s\n%s_stop_s=%s\n' "$name" "$rc" "$name" \
    "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')" >>"$STOP_ENV"
  local keep=() p
  for p in "${SERVER_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  SERVER_PIDS=("${keep[@]}")
}
stop_daemon redirector "$REDIR_PID"
stop_daemon icapd "$ICAPD_PID"
stop_servers  # Dovecot

{
  printf 'redirector_spill_left=%s\n' "$(find "$WORK/spill" -mindepth 1 | wc -l)"
  printf 'icapd_spill_left=%s\n' "$(find "$WORK/icapd-spill" -mindepth 1 | wc -l)"
  printf 'events_rows=%s\n' "$("$PY" -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM scan_events").fetchone()[0])' "$WORK/events.db" 2>/dev/null || true)"
  for name in redirector icapd; do
    f=$WORK/log/imapav-$name.log
    printf '%s_log=%s\n%s_log_lines=%s\n' "$name" "$f" "$name" "$(wc -l <"$f")"
    printf '%s_log_problems=%s\n' "$name" "$(grep -ciE ' (warning|error|critical|fatal) ' "$f" || true)"
  done
} >>"$STOP_ENV"

rc=0
"$PY" "$CLIENT" report --work "$WORK" --max-growth-mb "$MAX_GROWTH_MB" --max-growth-pct "$MAX_GROWTH_PCT" || rc=$?
for name in redirector icapd; do
  if grep -qiE ' (warning|error|critical|fatal) ' "$WORK/log/imapav-$name.log"; then
    log "  imapav-$name warnings/errors, by kind (first 10 kinds):"
    grep -iE ' (warning|error|critical|fatal) ' "$WORK/log/imapav-$name.log" |
      sed -E 's/^[^ ]+ //; s/client=[^ ]+/client=.../; s/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -10 | sed 's/^/    /'
  fi
done
exit "$rc"
