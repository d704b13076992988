#!/usr/bin/env bash
# Quick-start command 1: installs what is missing, builds, and runs the demo.
#  Part 1: imapav-icapd with the bundled test signatures; the real c-icap-client sends it a
#          clean and an infected message, as a gateway does for an IMAP download.
#  Part 2: the whole chain. A private Dovecot holds three messages for bob (clean, infected,
#          clean); imapav-redirector sits in front of it and has imapav-icapd scan every
#          download. Real clients (python imaplib, curl) fetch the mailbox through the
#          redirector and, for comparison, straight from Dovecot.
#  Part 3: a signature update without a restart. A new message carries a "threat" the
#          signatures do not know yet: it passes; a new signature file and SIGHUP later it
#          is replaced. The scan log shows repeated downloads answered from the verdict
#          cache (cached = 1) until the update, and every message scanned again after it.
# Then everything is stopped and the redirector's log and the scan log are printed.
# Exits non-zero if anything is not as expected.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${IMAPAV_BUILD_DIR:-$top/build}
"$top/tools/install-deps.sh"

work=$(mktemp -d /tmp/imapav-demo-XXXXXX)
# Dovecot's unprivileged processes (user nobody) must reach the mail under this dir.
chmod 0755 "$work"
names=() pids=()
stop_all() {  # SIGTERM, newest first; also waits for Dovecot's children
  local i pid kids=()
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    [ "${names[i]}" = dovecot ] && kids+=($(pgrep -P "$pid" || true))
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${kids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  names=() pids=()
}
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "   FAILED: $*" >&2; exit 1; }
indent() { sed 's/\r$//; s/^/   | /'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() {  # start NAME LOG COMMAND...: runs COMMAND in the background, stderr to LOG
  local name=$1 log=$2; shift 2
  "$@" > "$log" 2>&1 &
  names+=("$name") pids+=($!)
}
wait_ready() {  # wait_ready PORT NAME LOG [PATTERN]: until LOG has PATTERN, or else PORT
  # accepts a connection; fails if NAME exited. (A probe connection would show up in the
  # redirector's log as an empty session, hence PATTERN.)
  for _ in $(seq 200); do
    if [ $# -ge 4 ]; then grep -q "$4" "$3" && return 0
    else (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  indent < "$3"
  fail "$2 did not start listening on 127.0.0.1:$1"
}

echo "== building (tools/build.sh; a fresh clone takes a few minutes)"
"$top/tools/build.sh" > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "build"; }

"$top/tools/demo/make-samples.sh" "$work"
icap_port=$(free_port) imap_port=$(free_port) proxy_port=$(free_port)
icapd_metrics=$(free_port) redirector_metrics=$(free_port)
password=demo-password

echo
echo "== starting imapav-icapd on 127.0.0.1:$icap_port (test signatures: tests/data/signatures)"
mkdir -p "$work/signatures"
cp "$top"/tests/data/signatures/*.ndb "$work/signatures/"
cat > "$work/icapd.conf" <<CONF
icap.listen = 127.0.0.1:$icap_port
scan.database_dir = $work/signatures
log.database = $work/events.sqlite
policy.fail_mode = drop
metrics.listen = 127.0.0.1:$icapd_metrics
CONF
start imapav-icapd "$work/icapd.log" "$build/icap-server/imapav-icapd" --config "$work/icapd.conf"
wait_ready "$icap_port" imapav-icapd "$work/icapd.log"
indent < "$work/icapd.log"

echo
echo "== part 1: c-icap-client sends imapav-icapd a clean and an infected message (RESPMOD)"
user_b64=$(printf 'bob@example.net' | base64)
for pair in clean:101 infected:102; do
  name=${pair%:*} uid=${pair#*:}
  c-icap-client -i 127.0.0.1 -p "$icap_port" -s avscan -v -f "$work/$name.eml" -o "$work/$name.out" \
    -resp "imap://bob%40example.net@mail.example.net/INBOX;UIDVALIDITY=1700000000/;UID=$uid" \
    -x "X-Client-IP: 192.0.2.25" -x "X-Authenticated-User: $user_b64" > "$work/$name.icap" 2>&1 || true
  status=$(grep -m1 -o 'ICAP/1.0 [0-9]* [A-Za-z ]*' "$work/$name.icap" || echo "no ICAP answer")
  verdict=$(grep -m1 -o 'X-Imapav-Verdict: [a-z]*' "$work/$name.icap" || true)
  virus=$(grep -m1 -o 'X-Virus-ID: .*' "$work/$name.icap" | tr -d '\r' || true)
  printf '   %-13s -> %s, %s%s\n' "$name.eml" "$status" "$verdict" "${virus:+, $virus}"
done
grep -q 'X-Imapav-Verdict: clean' "$work/clean.icap" || fail "clean.eml was not found clean"
grep -q 'X-Imapav-Verdict: infected' "$work/infected.icap" || fail "infected.eml was not found infected"

echo
echo "== part 2: a private Dovecot on 127.0.0.1:$imap_port, mailbox of bob (password $password)"
mkdir -p "$work/run" "$work/state" "$work/mail/bob/cur" "$work/mail/bob/new" "$work/mail/bob/tmp"
n=0
for name in clean infected clean2; do  # maildir names sort by their number: UIDs 1, 2, 3
  n=$((n + 1))
  cp "$work/$name.eml" "$work/mail/bob/new/$((1700000000 + n)).M${n}P1.imapav-demo"
  printf '   UID %d  %s\n' "$n" "$name.eml"
done
chown -R "nobody:$(id -gn nobody)" "$work/mail"
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$imap_port|g" -e "s|@PASSWORD@|$password|g" \
    -e "s|@UID@|$(id -u nobody)|g" -e "s|@GID@|$(id -g nobody)|g" \
    "$top/tools/demo/dovecot.conf.in" > "$work/dovecot.conf"
start dovecot "$work/dovecot.out" "$(command -v dovecot || echo /usr/sbin/dovecot)" -F -c "$work/dovecot.conf"
wait_ready "$imap_port" dovecot "$work/dovecot.log"

echo
echo "== starting imapav-redirector on 127.0.0.1:$proxy_port -> Dovecot, scanning with imapav-icapd"
cat > "$work/redirector.conf" <<CONF
imap.listen = 127.0.0.1:$proxy_port
upstream.address = 127.0.0.1:$imap_port
icap.servers = icap://127.0.0.1:$icap_port/avscan
icap.timeout = 5
fail_mode = drop
metrics.listen = 127.0.0.1:$redirector_metrics
CONF
start imapav-redirector "$work/redirector.log" "$build/redirector/imapav-redirector" --config "$work/redirector.conf"
wait_ready "$proxy_port" imapav-redirector "$work/redirector.log" "listening imap=$proxy_port "
indent < "$work/redirector.log"

echo
echo "== downloading bob's INBOX with real clients"
fetch() {  # fetch PORT OUTDIR [ARGS...]: python imaplib, every message; JSON to OUTDIR.json
  local port=$1 out=$2; shift 2
  python3 "$top/tests/integration/clients/imap_fetch.py" --port "$port" --user bob --password "$password" \
    --out "$out" "$@" > "$out.json" 2> "$out.err" || { indent < "$out.err"; fail "imap_fetch.py on port $port"; }
}
uids() { python3 -c 'import json,sys; print(*json.load(open(sys.argv[1]))["uids"])' "$1"; }
fetch "$imap_port" "$work/direct"
echo "   python imaplib, LOGIN, straight from Dovecot:                UIDs $(uids "$work/direct.json")"
fetch "$proxy_port" "$work/proxied"
echo "   python imaplib, LOGIN, through the redirector:               UIDs $(uids "$work/proxied.json")"
curl -s --max-time 30 --user "bob:$password" "imap://127.0.0.1:$proxy_port/INBOX/;UID=2" -o "$work/curl-2.eml" \
  || fail "curl through the redirector"
echo "   curl, through the redirector:                                UID 2"

echo
echo "== what the client got: straight from Dovecot vs through the redirector"
result=0
python3 "$top/tools/demo/compare.py" "$work/direct" "$work/direct.json" "$work/proxied" "$work/proxied.json" \
  "$work/curl-2.eml" 2 2 || result=1

echo
echo "== part 3: a signature update while everything runs (no restart)"
marker=IMAPAV-DEMO-NEW-CAMPAIGN
sed 's/$/\r/' > "$work/new-threat.eml" <<MSG
From: Mallory <mallory@example.com>
To: Bob Example <bob@example.net>
Subject: Your parcel is waiting
Date: Sat, 28 Nov 2026 10:00:00 +0000
Message-ID: <new-threat-0004@example.com>

Click here: $marker
MSG
cp "$work/new-threat.eml" "$work/mail/bob/new/1700000004.M4P1.imapav-demo"
chown "nobody:$(id -gn nobody)" "$work/mail/bob/new/1700000004.M4P1.imapav-demo"
echo "   UID 4  new-threat.eml arrives; its marker is in no signature yet"
fetch "$proxy_port" "$work/before"
cmp -s "$work/before/4.eml" "$work/new-threat.eml" || { result=1; echo "   PROBLEM: UID 4 was changed before the update"; }
echo "   python imaplib through the redirector: UID 4 arrives unchanged (the signatures miss it)"
printf 'Imapav.Demo.NewCampaign:0:*:%s\n' "$(printf %s "$marker" | od -An -tx1 | tr -d ' \n')" > "$work/update.tmp"
mv "$work/update.tmp" "$work/signatures/update.ndb"  # whole, at once: as freshclam does
kill -HUP "${pids[0]}"
echo "   new signature file installed, SIGHUP sent to imapav-icapd (pid ${pids[0]})"
for _ in $(seq 100); do grep -q 'signatures reloaded\|signature reload FAILED' "$work/icapd.log" && break; sleep 0.1; done
grep -E 'icapd.engine: signature' "$work/icapd.log" | sed -E 's/^[0-9-]+T([0-9:]+)\.[0-9]+Z /\1 /' | indent
fetch "$proxy_port" "$work/after"
if grep -q "$marker" "$work/after/4.eml" || ! grep -q 'Imapav.Demo.NewCampaign' "$work/after/4.eml"; then
  result=1; echo "   PROBLEM: UID 4 was not replaced after the update"
else
  echo "   python imaplib through the redirector: UID 4 is now replaced by a notice naming Imapav.Demo.NewCampaign"
fi
cmp -s "$work/after/1.eml" "$work/clean.eml" || { result=1; echo "   PROBLEM: UID 1 changed after the update"; }

echo
echo "== what Prometheus scrapes (a selection of both daemons' /metrics)"
scrape() {  # scrape PORT PATTERN: the samples of /metrics matching PATTERN
  curl -s --max-time 10 "http://127.0.0.1:$1/metrics" | grep -E "$2" | grep -v '^#' | indent
}
echo "   imapav-redirector, http://127.0.0.1:$redirector_metrics/metrics"
scrape "$redirector_metrics" '^imapav_redirector_(messages_total|sessions_total|icap_up|icap_requests_total|unscanned_total)'
echo "   imapav-icapd, http://127.0.0.1:$icapd_metrics/metrics"
scrape "$icapd_metrics" '^imapav_icapd_(scans_total|actions_total|scan_duration_seconds_(sum|count)|signatures|event_log_written|signature_reloads_total|verdict_cache_lookups_total)'
curl -s --max-time 10 "http://127.0.0.1:$redirector_metrics/metrics" | grep -q '^imapav_redirector_messages_total{outcome="replaced"} [1-9]' \
  || { result=1; echo "   PROBLEM: the redirector's metrics do not count the replaced message"; }

echo
echo "== stopping everything (SIGTERM: downloads in flight finish, the scan log is flushed)"
stop_all
echo "   stopped imapav-redirector, dovecot, imapav-icapd"

echo
echo "== the redirector's log (one 'scan' line per downloaded message, one 'session' line per client)"
grep -E ': (scan|session) ' "$work/redirector.log" | sed -E 's/^[0-9-]+T([0-9:]+)\.[0-9]+Z [A-Za-z]+ [^ ]+ /\1 /' | indent
grep -q 'outcome=replaced' "$work/redirector.log" || { result=1; echo "   PROBLEM: no message was replaced"; }
if grep -E ': scan ' "$work/redirector.log" | grep -qv ' user=bob '; then
  result=1; echo "   PROBLEM: a scan line does not name the user bob"
fi

echo
echo "== the scan log (events.sqlite, table scan_events)"
sqlite3 -header -column "$work/events.sqlite" \
  "SELECT id, substr(time_iso, 12, 12) AS time, client_ip, user, imap_url, subject, size, verdict,
          threats, action, round(scan_time_us / 1000.0, 1) AS scan_ms, signature_version, cached
   FROM scan_events ORDER BY id" | sed 's/^/   /'

echo
echo "== the same log summarised by the operator's tool: imapav-log stats --since 1h"
"$build/tools/log/imapav-log" --db "$work/events.sqlite" stats --since 1h | indent \
  || { result=1; echo "   PROBLEM: imapav-log stats failed"; }

echo
if [ "$result" -ne 0 ]; then
  echo "== demo FAILED: see the PROBLEM lines above"
  exit 1
fi
echo "== demo OK: clean mail passed unchanged, the infected message was replaced by a notice,"
echo "   and a signature update took effect without a restart"
