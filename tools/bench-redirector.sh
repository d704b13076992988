#!/usr/bin/env bash
# Benchmark: fetching mail directly from Dovecot versus through imapav-redirector (which
# has imapav-icapd scan every message), over plain IMAP and over implicit TLS, next to
# imapav-icapd scanning the same sizes alone, plus the redirector's memory for many idle
# sessions. Builds what it needs, starts a private Dovecot (plain and IMAPS listeners),
# imapav-icapd and two imapav-redirectors (plain, and TLS on both sides) on free loopback
# ports in a temporary directory, runs the cases interleaved, prints a table, and stops
# everything on exit.
# See tools/bench/README.md ("IMAP redirector benchmark").
#
# Environment (all optional):
#   IMAPAV_BENCH_BUILD        build directory                (default: <repo>/build-bench)
#   IMAPAV_BENCH_NO_BUILD=1   use the binaries in the build directory as they are
#   IMAPAV_BENCH_SECONDS      measured seconds per large-message run (default: 5)
#   IMAPAV_BENCH_ROUNDS       rounds over all cases          (default: 2; order reversed each round)
#   IMAPAV_BENCH_LARGE_SIZE   large message bytes            (default: 5000000)
#   IMAPAV_BENCH_LARGE_COUNT  distinct large messages        (default: 120, 240 with TLS; each
#                             redirector run gets its own share, so nothing is fetched twice
#                             through the scanner)
#   IMAPAV_BENCH_SMALL_SIZE   small message bytes            (default: 10000)
#   IMAPAV_BENCH_SMALL_COUNT  small messages fetched per run (default: 600)
#   IMAPAV_BENCH_CONNS        connections for small messages (default: "1 4")
#   IMAPAV_BENCH_SESSIONS     idle sessions for the memory figure (default: 2000; 0 skips it)
#   IMAPAV_BENCH_TLS=0        plain IMAP only (default 1: also direct-tls and redirector-tls)
#   IMAPAV_BENCH_SIGNATURES   signature directory            (default: <repo>/tests/data/signatures)
#   IMAPAV_BENCH_KEEP=1       keep the temporary directory (configs, logs, raw results)
#   IMAPAV_BENCH_SUMMARY      a file to append machine-readable result lines to (tab-separated
#                             key=value fields; tools/bench-all.sh reads them)
# Quick run: IMAPAV_BENCH_SECONDS=2 IMAPAV_BENCH_ROUNDS=1 IMAPAV_BENCH_SESSIONS=200 tools/bench-redirector.sh

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${IMAPAV_BENCH_BUILD:-$ROOT/build-bench}
RUN_SECONDS=${IMAPAV_BENCH_SECONDS:-5}
ROUNDS=${IMAPAV_BENCH_ROUNDS:-2}
LARGE_SIZE=${IMAPAV_BENCH_LARGE_SIZE:-5000000}
TLS=${IMAPAV_BENCH_TLS:-1}
[[ $TLS == 0 || $TLS == 1 ]] || { printf 'bench-redirector.sh: IMAPAV_BENCH_TLS must be 0 or 1\n' >&2; exit 1; }
# Redirector runs per case and round (plain, and TLS): each needs its own large messages.
REDIR_TARGETS=$((1 + TLS))
LARGE_COUNT=${IMAPAV_BENCH_LARGE_COUNT:-$((120 * REDIR_TARGETS))}
SMALL_SIZE=${IMAPAV_BENCH_SMALL_SIZE:-10000}
SMALL_COUNT=${IMAPAV_BENCH_SMALL_COUNT:-600}
CONNS=${IMAPAV_BENCH_CONNS:-"1 4"}
SESSIONS=${IMAPAV_BENCH_SESSIONS:-2000}
SIGS=${IMAPAV_BENCH_SIGNATURES:-$ROOT/tests/data/signatures}
DOVECOT=/usr/sbin/dovecot
PASSWORD=bench-secret

CLIENT=$ROOT/tools/bench/imap_bench.py
BENCH=$BUILD/tools/bench/imapav-bench-icap
ICAPD=$BUILD/icap-server/imapav-icapd
REDIRECTOR=$BUILD/redirector/imapav-redirector

WORK=$(mktemp -d /tmp/imapav-bench-redirector.XXXXXX)
SERVER_PIDS=()
FAILED=0

BENCH_NAME=bench-redirector.sh
# shellcheck source=tools/bench/common.sh
source "$ROOT/tools/bench/common.sh"

# Stops every server we started (Dovecot's children too), then removes WORK.
trap finish_bench EXIT
trap 'exit 130' INT TERM

# Many sessions: the client holds one socket each, the redirector two, Dovecot's master a
# few. Raise the limit as far as the hard limit allows (children inherit it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

# --- build -------------------------------------------------------------------------------
[[ -x $DOVECOT ]] || die "$DOVECOT not found (Debian package dovecot-imapd)"
id nobody >/dev/null 2>&1 || die "user nobody is needed for Dovecot's mail"
[[ $(id -u) == 0 ]] || die "run as root: Dovecot's private instance switches to user nobody"
if [[ ${IMAPAV_BENCH_NO_BUILD:-0} != 1 ]]; then
  cmake -S "$ROOT" -B "$BUILD" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "cmake configure failed"; }
  cmake --build "$BUILD" --target imapav-redirector imapav-icapd imapav-bench-icap -j2 >>"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; die "build failed"; }
fi
for f in "$BENCH" "$ICAPD" "$REDIRECTOR"; do [[ -x $f ]] || die "$f not found"; done

# --- signatures (as tools/bench.sh) ---------------------------------------------------------
if ! compgen -G "$SIGS/*.ndb" >/dev/null && ! compgen -G "$SIGS/*.hdb" >/dev/null; then
  SIGS=$WORK/signatures
  mkdir -p "$SIGS"
  eicar_hex=$(printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR' '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' |
    od -An -tx1 | tr -d ' \n')
  printf 'Imapav.Bench.Eicar:0:*:%s\n' "$eicar_hex" >"$SIGS/bench.ndb"
fi

# --- mail ---------------------------------------------------------------------------------
# Message pools. Dovecot has no scanner, so direct runs may reuse messages; every
# redirector run gets UIDs no earlier run fetched, because imapav-icapd's libclamav caches
# clean results by hash for its whole lifetime. One mailbox (user) per size.
# With TLS each round has two redirector runs per case: the large pool is split into
# ROUNDS x REDIR_TARGETS shares, and the small pool holds the messages and warm-ups
# (2 per connection) of every small redirector run.
NCONNS=$(wc -w <<<"$CONNS")
CONNS_SUM=0
for n in $CONNS; do CONNS_SUM=$((CONNS_SUM + n)); done
SMALL_TOTAL=$((ROUNDS * REDIR_TARGETS * (SMALL_COUNT * NCONNS + 2 * CONNS_SUM) + 64))
LARGE_SHARE=$((LARGE_COUNT / (ROUNDS * REDIR_TARGETS)))
((LARGE_SHARE >= 2)) || die "IMAPAV_BENCH_LARGE_COUNT must give at least 2 messages per redirector run"
chmod 0755 "$WORK"
mkdir -p "$WORK/run" "$WORK/state" "$WORK/mail" "$WORK/log"
t0=$SECONDS
python3 "$CLIENT" gen --dir "$WORK/mail/large" --count "$LARGE_COUNT" --size "$LARGE_SIZE" --seed 1 >/dev/null
python3 "$CLIENT" gen --dir "$WORK/mail/small" --count "$SMALL_TOTAL" --size "$SMALL_SIZE" --seed 2 >/dev/null
chown -R nobody:"$(id -gn nobody)" "$WORK/mail"
GEN_SECONDS=$((SECONDS - t0))

# --- servers ------------------------------------------------------------------------------
USED_PORTS=" "
new_port() {  # new_port VAR: sets VAR to a free port that differs from the earlier ones
  local p
  p=$(free_port)
  while [[ $USED_PORTS == *" $p "* ]]; do p=$(free_port); done
  USED_PORTS+="$p "
  printf -v "$1" '%s' "$p"
}
new_port DOVECOT_PORT
new_port ICAPD_PORT
new_port REDIR_PORT
DOVECOT_TLS_PORT=0  # 0: Dovecot opens no IMAPS listener
if ((TLS)); then
  new_port DOVECOT_TLS_PORT
  new_port REDIR_TLS_PORT
fi

# A throw-away CA and a server certificate for 127.0.0.1 (as tests/support/tls_certs.cpp;
# EC P-256: generated in milliseconds). Dovecot and the TLS redirector both serve it; the
# redirector verifies Dovecot's against the CA, and the client verifies both.
CERTS=$WORK/tls
if ((TLS)); then
  mkdir -p "$CERTS"
  newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$CERTS/server.ext"
  {
    openssl req -x509 "${newkey[@]}" -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" -days 30 \
      -subj "/CN=imapav bench CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" &&
      openssl req "${newkey[@]}" -keyout "$CERTS/server.key" -out "$CERTS/server.csr" -subj "/CN=127.0.0.1" &&
      openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -set_serial 2 \
        -days 30 -extfile "$CERTS/server.ext" -out "$CERTS/server.pem"
  } >"$WORK/log/openssl.log" 2>&1 || { cat "$WORK/log/openssl.log" >&2; die "openssl could not make the test certificates"; }
  DOVECOT_SSL="ssl = yes
ssl_cert = <$CERTS/server.pem
ssl_key = <$CERTS/server.key"
else
  DOVECOT_SSL="ssl = no"
fi

# One imap process per session (Dovecot's default); the limits make room for the idle
# sessions, all from one user and one address.
PROC_LIMIT=$((SESSIONS + 100))
cat >"$WORK/dovecot.conf" <<EOF
# Generated by tools/bench-redirector.sh.
protocols = imap
listen = 127.0.0.1
base_dir = $WORK/run
state_dir = $WORK/state
log_path = $WORK/log/dovecot.log
$DOVECOT_SSL
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
    address = 127.0.0.1
    port = $DOVECOT_TLS_PORT
    ssl = yes
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
# Generated by tools/bench-redirector.sh. Everything not set here is imapav-icapd's default.
icap.listen = 127.0.0.1:$ICAPD_PORT
scan.database_dir = $SIGS
log.database = $WORK/events.db
policy.fail_mode = drop
EOF

# fail_mode = drop: a message that could not be scanned comes back as a notice, which the
# client's check (X-Bench-Check) reports as wrong bytes instead of counting it as fast.
cat >"$WORK/imapav-redirector.conf" <<EOF
# Generated by tools/bench-redirector.sh. Everything not set here is the redirector's default.
imap.listen = 127.0.0.1:$REDIR_PORT
upstream.address = 127.0.0.1:$DOVECOT_PORT
icap.servers = icap://127.0.0.1:$ICAPD_PORT/avscan
icap.timeout = 120s
fail_mode = drop
EOF
# The TLS one: implicit TLS towards the client and towards Dovecot (whose certificate it
# verifies), otherwise the same.
if ((TLS)); then
  cat >"$WORK/imapav-redirector-tls.conf" <<EOF
# Generated by tools/bench-redirector.sh. Everything not set here is the redirector's default.
imaps.listen = 127.0.0.1:$REDIR_TLS_PORT
tls.certificate = $CERTS/server.pem
tls.private_key = $CERTS/server.key
upstream.address = 127.0.0.1:$DOVECOT_TLS_PORT
upstream.security = tls
upstream.ca_file = $CERTS/ca.pem
icap.servers = icap://127.0.0.1:$ICAPD_PORT/avscan
icap.timeout = 120s
fail_mode = drop
EOF
fi

setsid "$DOVECOT" -F -c "$WORK/dovecot.conf" >"$WORK/log/dovecot.out" 2>&1 </dev/null &
DOVECOT_PID=$!
SERVER_PIDS+=("$DOVECOT_PID")
wait_port "$DOVECOT_PORT" "$DOVECOT_PID" dovecot "$WORK/log/dovecot.log"
((TLS)) && wait_port "$DOVECOT_TLS_PORT" "$DOVECOT_PID" "dovecot (imaps)" "$WORK/log/dovecot.log"
setsid "$ICAPD" --config "$WORK/imapav-icapd.conf" >"$WORK/log/imapav-icapd.log" 2>&1 </dev/null &
ICAPD_PID=$!
SERVER_PIDS+=("$ICAPD_PID")
wait_port "$ICAPD_PORT" "$ICAPD_PID" imapav-icapd "$WORK/log/imapav-icapd.log"
setsid "$REDIRECTOR" --config "$WORK/imapav-redirector.conf" >"$WORK/log/imapav-redirector.log" 2>&1 </dev/null &
REDIR_PID=$!
SERVER_PIDS+=("$REDIR_PID")
wait_port "$REDIR_PORT" "$REDIR_PID" imapav-redirector "$WORK/log/imapav-redirector.log"
REDIR_TLS_PID=""
if ((TLS)); then
  setsid "$REDIRECTOR" --config "$WORK/imapav-redirector-tls.conf" >"$WORK/log/imapav-redirector-tls.log" 2>&1 </dev/null &
  REDIR_TLS_PID=$!
  SERVER_PIDS+=("$REDIR_TLS_PID")
  wait_port "$REDIR_TLS_PORT" "$REDIR_TLS_PID" "imapav-redirector (tls)" "$WORK/log/imapav-redirector-tls.log"
fi

ICAPD_URL=127.0.0.1:$ICAPD_PORT/avscan
fetch() {  # fetch PORT USER LABEL ARGS...: one result line (LABEL *-tls: over implicit TLS)
  local port=$1 user=$2 label=$3 tls=()
  shift 3
  [[ $label == *-tls ]] && tls=(--tls --ca-file "$CERTS/ca.pem")
  python3 "$CLIENT" fetch --port "$port" --user "$user" --password "$PASSWORD" --label "$label" "${tls[@]}" "$@"
}

# Dovecot indexes each mailbox on its first SELECT: do it now, outside any timed run.
fetch "$DOVECOT_PORT" large index --uids 1:1 --all >/dev/null || die "first fetch from Dovecot failed"
fetch "$DOVECOT_PORT" small index --uids 1:1 --all >/dev/null || die "first fetch from Dovecot failed"
if ((TLS)); then  # a certificate or TLS set-up problem stops us here, before any timed run
  fetch "$DOVECOT_TLS_PORT" small index-tls --uids 1:1 --all >/dev/null || die "first fetch from Dovecot over TLS failed"
fi

log "imapav redirector benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), open files limit $NOFILE"
log "  dovecot $("$DOVECOT" --version | cut -d' ' -f1) 127.0.0.1:$DOVECOT_PORT   imapav-icapd icap://$ICAPD_URL   imapav-redirector 127.0.0.1:$REDIR_PORT"
if ((TLS)); then
  log "  TLS: dovecot imaps 127.0.0.1:$DOVECOT_TLS_PORT, a second imapav-redirector imaps 127.0.0.1:$REDIR_TLS_PORT with"
  log "       upstream.security = tls to it; certificates verified against a throw-away CA ($(openssl version | cut -d' ' -f1-2));"
  log "       the client is python3's ssl. *-tls runs: the same cases, over implicit TLS"
fi
log "  large: $LARGE_COUNT distinct messages of $LARGE_SIZE bytes (UID FETCH n BODY.PEEK[], 1 connection, ${RUN_SECONDS}s per run);"
log "         each redirector run$( ((TLS)) && printf ' (plain or TLS)') fetches from its own $LARGE_SHARE UIDs, so libclamav's cache of clean"
log "         results never hits"
log "         (a redirector run that runs out wraps around and reports repeats/laps > 1: those may be cache hits;"
log "         direct runs cycle through all $LARGE_COUNT freely: Dovecot does not scan, its repeats change nothing)"
log "  small: $SMALL_TOTAL distinct messages of $SMALL_SIZE bytes; each run fetches $SMALL_COUNT of them once, split over"
log "         $CONNS connection(s); every redirector run gets UIDs never fetched before"
log "  icapd alone: imapav-bench-icap, 1 connection per IMAP connection, unique generated messages of the same sizes"
log "  every fetched message is checked (length always, sha1 of every small one and of each run's first large one)"
log "  $ROUNDS round(s), order reversed every other round; mail generated in ${GEN_SECONDS}s"

# field LINE KEY: the value of KEY=... in a result line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# --- idle sessions --------------------------------------------------------------------------
# First, while the redirector is fresh: after the fetch runs its heap holds freed buffers
# (glibc keeps them), which new sessions would reuse and the RSS delta would hide.
IDLE_LINE=""
if ((SESSIONS > 0)); then
  log ""
  log "idle sessions through the fresh redirector (LOGIN, SELECT INBOX, IDLE; VmRSS of the redirector):"
  IDLE_LINE=$(python3 "$CLIENT" idle --port "$REDIR_PORT" --user small --password "$PASSWORD" \
                --sessions "$SESSIONS" --pid "$REDIR_PID" --label redirector) || FAILED=1
  log "  ${IDLE_LINE:-FAILED: no output}"
  sleep 1
  log "  redirector VmRSS after closing them: $(awk '/^VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$REDIR_PID/status")"
fi

# --- timed runs ---------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
SMALL_NEXT=1  # next never-fetched small UID
TICK=$(getconf CLK_TCK)
cpu_ms() {  # cpu_ms PID: user + system CPU time of the process (all its threads), in ms
  awk -v t="$TICK" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"
}
run_case() {  # run_case ROUND KIND TARGET CONNS
  local round=$1 kind=$2 target=$3 n=$4 line rc=0 first last size r0 i0 port slot
  # The redirector whose CPU and scan log lines count: the TLS one for the *-tls targets.
  local rpid=$REDIR_PID rlog=$WORK/log/imapav-redirector.log
  if [[ $target == *-tls ]]; then
    rpid=$REDIR_TLS_PID rlog=$WORK/log/imapav-redirector-tls.log
  fi
  case $target in
    direct) port=$DOVECOT_PORT ;;
    direct-tls) port=$DOVECOT_TLS_PORT ;;
    redirector) port=$REDIR_PORT ;;
    redirector-tls) port=$REDIR_TLS_PORT ;;
  esac
  r0=$(cpu_ms "$rpid") i0=$(cpu_ms "$ICAPD_PID")
  local log0
  log0=$(wc -l <"$rlog")
  if [[ $kind == large ]]; then
    size=$LARGE_SIZE
    # Large share number: round by round, the plain redirector's run before the TLS one's.
    slot=$(((round - 1) * REDIR_TARGETS))
    [[ $target == redirector-tls ]] && slot=$((slot + 1))
    first=$((slot * LARGE_SHARE + 1)) last=$(((slot + 1) * LARGE_SHARE))
    case $target in
      direct*) line=$(fetch "$port" large "$target" --uids "1:$LARGE_COUNT" --seconds "$RUN_SECONDS" --warmup 1 --verify first) || rc=$? ;;
      redirector*) line=$(fetch "$port" large "$target" --uids "$first:$last" --seconds "$RUN_SECONDS" --warmup 1 --verify first) || rc=$? ;;
    esac
  else
    size=$SMALL_SIZE
    case $target in
      direct*) line=$(fetch "$port" small "$target" --uids "1:$((SMALL_COUNT + 2 * n))" --connections "$n" --all --warmup 2) || rc=$? ;;
      redirector*)
        first=$SMALL_NEXT last=$((SMALL_NEXT + SMALL_COUNT + 2 * n - 1))
        SMALL_NEXT=$((last + 1))
        ((last <= SMALL_TOTAL)) || die "internal: small pool too small ($last > $SMALL_TOTAL)"
        line=$(fetch "$port" small "$target" --uids "$first:$last" --connections "$n" --all --warmup 2) || rc=$? ;;
    esac
  fi
  if [[ $target == icapd ]]; then
    local secs=$RUN_SECONDS
    [[ $kind == small ]] && secs=3
    line=$("$BENCH" --icap "$ICAPD_URL" --label icapd --connections "$n" --size "$size" \
             --seconds "$secs" --warmup 0) || rc=$?
    if [[ -n $line && ( $(field "$line" s204) == 0 || $(field "$line" other) != 0 || $(field "$line" s200) != 0 ) ]]; then
      rc=1
    fi
  fi
  if [[ $rc != 0 || -z $line ]]; then
    FAILED=1
    log "  FAILED ($kind $target $n): ${line:-no output}"
  fi
  # CPU the (plain or TLS) redirector and imapav-icapd used during the run (warm-up included).
  line="$line cpu_redirector_ms=$(($(cpu_ms "$rpid") - r0)) cpu_icapd_ms=$(($(cpu_ms "$ICAPD_PID") - i0))"
  # The ICAP round trip of this run's own messages, as the redirector logged it (ms=).
  if [[ $target == redirector* ]]; then
    line="$line $(awk -v from="$log0" 'NR > from && / scan client=/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^ms=/) { s += substr($i, 4); n++ } }
      END { printf "scans_logged=%d scan_ms_logged=%.2f", n, n ? s / n : 0 }' "$rlog")"
  fi
  log "  $kind $line"
  printf '%s kind=%s n=%s round=%s\n' "$line" "$kind" "$n" "$round" >>"$RESULTS"
}

log ""
log "runs:"
TARGETS="direct redirector"
((TLS)) && TARGETS+=" direct-tls redirector-tls"
cases=()
for t in $TARGETS icapd; do cases+=("large $t 1"); done
for n in $CONNS; do
  for t in $TARGETS icapd; do cases+=("small $t $n"); done
done
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2 == 1)); then
    for c in "${cases[@]}"; do run_case "$round" $c; done
  else
    for ((i = ${#cases[@]} - 1; i >= 0; i--)); do run_case "$round" ${cases[i]}; done
  fi
done

# --- table --------------------------------------------------------------------------------
# Ratios are taken per round between runs that ran next to each other, then averaged.
awk -v conns="$CONNS" -v rounds="$ROUNDS" -v targets="$TARGETS icapd" -v tls="$TLS" -v summary="${IMAPAV_BENCH_SUMMARY:-}" \
  -v large_size="$LARGE_SIZE" -v small_size="$SMALL_SIZE" '
  function val(key,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return kv[2] }
    return ""
  }
  {
    t = val("target"); k = val("kind"); n = val("n"); r = val("round")
    rate = (t == "icapd") ? val("req_s") : val("msg_s")
    key = k SUBSEP n SUBSEP t
    runs[key]++; sum[key] += rate; R[key, r] = rate; L[key, r] = val("scan_ms_logged")
    mb[key] += val("MB_s")
    if (t != "icapd") { rep[key] += val("repeats"); if (val("laps") > laps[key]) laps[key] = val("laps") }
    list[key] = list[key] sprintf("%s%.1f", (runs[key] > 1 ? " " : ""), rate)
    # Messages the CPU figures cover: counted ones plus the warm-up fetches.
    cnt = (t == "icapd") ? val("requests") : val("fetches") + (k == "large" ? 1 : 2 * n)
    msgs[key] += cnt; cpur[key] += val("cpu_redirector_ms"); cpui[key] += val("cpu_icapd_ms")
  }
  function mean(a, key) { return runs[key] ? a[key] / runs[key] : 0 }
  # Mean over rounds of a ratio for one kind and connection count. sfx "" compares the plain
  # runs, "-tls" the TLS ones (both against the same icapd-alone run); "tlsd" and "tlsr" are
  # direct-tls/direct and redirector-tls/redirector.
  # pstat gives "mean/min/max/rounds used" (or "" if no round counts), paired formats it.
  function paired(k, n, what, sfx,   s, v) {
    s = pstat(k, n, what, sfx)
    if (s == "") return "n/a"
    split(s, v, "/")
    # Rounds left out (scan time not below the total: noise) show as [used/all].
    return sprintf("%.2fx (%.2f-%.2f)%s", v[1], v[2], v[3], v[4] < rounds ? "[" v[4] "/" rounds "]" : "")
  }
  function pstat(k, n, what, sfx,   r, d, x, s, v, tg, sum2, cnt, lo, hi) {
    cnt = 0
    for (r = 1; r <= rounds; r++) {
      d = R[k, n, "direct" sfx, r]; x = R[k, n, "redirector" sfx, r]; s = R[k, n, "icapd", r]
      if (what == "tlsd" || what == "tlsr") {
        tg = (what == "tlsd") ? "direct" : "redirector"
        d = R[k, n, tg, r]; x = R[k, n, tg "-tls", r]
      }
      if (d <= 0 || x <= 0) continue
      if (what == "rd" || what == "tlsd" || what == "tlsr") v = x / d
      else if (what == "ri") { if (s <= 0) continue; v = x / s }
      else if (what == "ov") {  # direct time / (redirector time - scan time alone), per message
        if (s <= 0 || 1 / x - 1 / s <= 0) continue
        v = (1 / d) / (1 / x - 1 / s)
      } else {  # the same with the scan time the redirector logged for these very messages
        s = L[k, n, "redirector" sfx, r] / 1000
        if (n != 1 || s <= 0 || 1 / x - s <= 0) continue
        v = (1 / d) / (1 / x - s)
      }
      sum2 += v; cnt++
      if (cnt == 1 || v < lo) lo = v
      if (cnt == 1 || v > hi) hi = v
    }
    return cnt ? sprintf("%.4f/%.4f/%.4f/%d", sum2 / cnt, lo, hi, cnt) : ""
  }
  function ms(k, n, t,   v) { v = mean(sum, k SUBSEP n SUBSEP t); return v > 0 ? 1000 / v : 0 }
  END {
    nc = split(conns, C, " "); nt = split(targets, T, " ")
    split("large small", K, " ")
    printf "\n%-6s %-5s %-14s %9s %8s %9s  %-16s %-22s %s\n", "kind", "conns", "target", "msg/s", "MB/s", "ms/msg", "CPU ms/msg r+i", "msg/s per round", "repeats (laps)"
    for (i = 1; i <= 2; i++) for (j = 1; j <= nc; j++) for (t = 1; t <= nt; t++) {
      n = (K[i] == "large") ? 1 : C[j]
      if (K[i] == "large" && j > 1) continue
      key = K[i] SUBSEP n SUBSEP T[t]
      if (!runs[key]) continue
      cpu = msgs[key] ? sprintf("%.2f+%.2f", cpur[key] / msgs[key], cpui[key] / msgs[key]) : "n/a"
      printf "%-6s %-5s %-14s %9.2f %8.2f %9.3f  %-16s %-22s %s\n", K[i], n, T[t], mean(sum, key), mean(mb, key), \
        ms(K[i], n, T[t]), cpu, "[" list[key] "]", (T[t] == "icapd") ? "unique per request" : sprintf("%d (%.2f)", rep[key], laps[key])
    }
    printf "\nratios (mean of per-round ratios, min-max)%s:\n", tls ? "; imap tls: redirector-tls against direct-tls" : ""
    printf "  %-6s %-5s %-5s %-19s %-23s %-26s %s\n", "kind", "conns", "imap", "redirector/direct", "redirector/icapd-alone", "direct/(redir-scan alone)", "direct/(redir-scan logged)"
    for (i = 1; i <= 2; i++) for (j = 1; j <= nc; j++) for (m = 0; m <= tls; m++) {
      n = (K[i] == "large") ? 1 : C[j]
      if (K[i] == "large" && j > 1) continue
      sfx = m ? "-tls" : ""
      printf "  %-6s %-5s %-5s %-19s %-23s %-26s %s\n", K[i], n, m ? "tls" : "plain", paired(K[i], n, "rd", sfx), \
        paired(K[i], n, "ri", sfx), paired(K[i], n, "ov", sfx), paired(K[i], n, "lg", sfx)
    }
    if (tls) {
      printf "\nwhat TLS costs (msg/s over TLS / msg/s plain, per round):\n"
      printf "  %-6s %-5s %-23s %s\n", "kind", "conns", "direct-tls/direct", "redirector-tls/redirector"
      for (i = 1; i <= 2; i++) for (j = 1; j <= nc; j++) {
        n = (K[i] == "large") ? 1 : C[j]
        if (K[i] == "large" && j > 1) continue
        printf "  %-6s %-5s %-23s %s\n", K[i], n, paired(K[i], n, "tlsd", ""), paired(K[i], n, "tlsr", "")
      }
    }
    printf "\n  direct/(redir-scan) = t_direct / (t_redirector - t_scan), with t = 1/(msg/s) of each run:\n"
    printf "  the time a message costs through the redirector beyond its ICAP scan, against the time it\n"
    printf "  costs fetched directly. 1.00x: the proxy adds nothing but the scan; target >= 0.90x.\n"
    if (tls) {
      printf "  imap tls: the same with redirector-tls and direct-tls: the client speaks implicit TLS to\n"
      printf "  Dovecot or to the TLS redirector, which speaks TLS to Dovecot too (it decrypts, scans and\n"
      printf "  encrypts again: twice the TLS work of a direct fetch, on the same 2 cores).\n"
    }
    printf "  t_scan alone: 1/(req/s) of imapav-bench-icap against imapav-icapd at the same concurrency in\n"
    printf "  the same round (other generated messages of the same size and structure; plain ICAP).\n"
    printf "  t_scan logged: mean ms= of the redirector scan log lines of that run: the ICAP round trip of\n"
    printf "  the very same messages as the redirector ICAP client saw it (1 connection only).\n"
    printf "  The redirector streams a message to ICAP while it arrives, but sends nothing to the client\n"
    printf "  before the verdict: a perfect one costs about t_scan + t_direct. On large messages read\n"
    printf "  redirector/icapd-alone (1.00x: it costs what the scan costs); this formula degenerates there.\n"
    printf "  With 4 connections the times are aggregate (1/total rate), and client, Dovecot, redirector\n"
    printf "  and icapd share 2 cores: there the figures show contention more than overhead.\n"
    printf "  CPU ms/msg r+i: CPU time of imapav-redirector (the TLS one for *-tls runs) + imapav-icapd\n"
    printf "  per message (all threads, warm-up included, 10 ms tick); the client and Dovecot use the rest.\n"
    # Machine-readable: one line per case (kind, connections, plain or TLS IMAP); the TLS
    # lines compare redirector-tls with direct-tls and the same icapd-alone run.
    if (summary != "") for (i = 1; i <= 2; i++) for (j = 1; j <= nc; j++) for (m = 0; m <= tls; m++) {
      n = (K[i] == "large") ? 1 : C[j]
      if (K[i] == "large" && j > 1) continue
      sfx = m ? "-tls" : ""
      d = K[i] SUBSEP n SUBSEP "direct" sfx; x = K[i] SUBSEP n SUBSEP "redirector" sfx; s = K[i] SUBSEP n SUBSEP "icapd"
      printf "bench-redirector.sh\timap\tkind=%s\tbytes=%s\tconns=%s\timap=%s\tround_count=%d", K[i], \
        K[i] == "large" ? large_size : small_size, n, m ? "tls" : "plain", rounds >> summary
      printf "\tdirect_msg_s=%.2f\tredirector_msg_s=%.2f\ticapd_req_s=%.2f", mean(sum, d), mean(sum, x), mean(sum, s) >> summary
      printf "\tdirect_MB_s=%.2f\tredirector_MB_s=%.2f\ticapd_MB_s=%.2f", mean(mb, d), mean(mb, x), mean(mb, s) >> summary
      printf "\tr_direct=%s\tr_icapd=%s\tov_alone=%s\tov_logged=%s\n", pstat(K[i], n, "rd", sfx), pstat(K[i], n, "ri", sfx), \
        pstat(K[i], n, "ov", sfx), pstat(K[i], n, "lg", sfx) >> summary
    }
  }' "$RESULTS"

if [[ -n $IDLE_LINE ]]; then
  printf '\nidle sessions: %s sessions (%s alive at measurement), redirector RSS %s MB before, %s MB with them open:\n' \
    "$(field "$IDLE_LINE" sessions)" "$(field "$IDLE_LINE" alive)" \
    "$(awk -v k="$(field "$IDLE_LINE" rss_before_kb)" 'BEGIN {printf "%.1f", k / 1024}')" "$(field "$IDLE_LINE" total_MB)"
  printf '  %s MB for the sessions, %s KB per session (target: %s sessions under 100 MB in total)\n' \
    "$(field "$IDLE_LINE" delta_MB)" "$(field "$IDLE_LINE" per_session_KB)" "$SESSIONS"
  if [[ -n ${IMAPAV_BENCH_SUMMARY:-} ]]; then
    printf 'bench-redirector.sh\tidle\tsessions=%s\talive=%s\tfailed=%s\trss_before_kb=%s\tdelta_MB=%s\ttotal_MB=%s\tper_session_KB=%s\n' \
      "$(field "$IDLE_LINE" sessions)" "$(field "$IDLE_LINE" alive)" "$(field "$IDLE_LINE" failed)" \
      "$(field "$IDLE_LINE" rss_before_kb)" "$(field "$IDLE_LINE" delta_MB)" "$(field "$IDLE_LINE" total_MB)" \
      "$(field "$IDLE_LINE" per_session_KB)" >>"$IMAPAV_BENCH_SUMMARY"
  fi
fi

# The ICAP round trip as each redirector saw it (its scan log lines), per mailbox.
REDIRECTORS=("redirector $REDIR_PID $WORK/log/imapav-redirector.log")
((TLS)) && REDIRECTORS+=("redirector-tls $REDIR_TLS_PID $WORK/log/imapav-redirector-tls.log")
printf '\nICAP round trip per message as logged by the redirector (ms=, all its fetches, warm-ups included):\n'
for r in "${REDIRECTORS[@]}"; do
  read -r name pid rlog <<<"$r"
  awk -v name="$name" '/ scan client=/ {
      u = ""; ms = ""
      for (i = 1; i <= NF; i++) { if ($i ~ /^user=/) u = substr($i, 6); if ($i ~ /^ms=/) ms = substr($i, 4) }
      if (u != "" && ms != "") { n[u]++; s[u] += ms }
    }
    END { for (u in n) printf "  %-14s %-6s %6d scans, mean %.2f ms\n", name, u, n[u], s[u] / n[u] }' "$rlog"
done

log ""
for r in "${REDIRECTORS[@]}"; do
  read -r name pid rlog <<<"$r"
  warn=$(grep -ciE ' (warning|error|critical|fatal) ' "$rlog" || true)
  log "$name log: $(wc -l <"$rlog") lines, $warn warning/error lines"
  if ((warn > 0)); then
    grep -iE ' (warning|error|critical|fatal) ' "$rlog" | sed 's/^/  /' | head -10
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    FAILED=1
    log "imapav-$name is no longer running (log: $rlog)"
  fi
done
if ((FAILED)); then
  log ""
  log "bench-redirector.sh: some runs failed or answered unexpectedly (see above)"
  exit 1
fi
