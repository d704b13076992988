#!/usr/bin/env bash
# Quick-start command 1: installs what is missing, builds, and runs the demo:
# imapav-icapd with the bundled test signatures; the real c-icap-client sends it a clean
# and an infected message, as a redirector would for an IMAP download; then the scan log.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/install-deps.sh"
echo "== building"
"$top/tools/build.sh"
build=${IMAPAV_BUILD_DIR:-$top/build}

work=$(mktemp -d /tmp/imapav-demo-XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/icapd.conf" <<CONF
icap.listen = 127.0.0.1:$port
scan.database_dir = $top/tests/data/signatures
log.database = $work/events.sqlite
policy.fail_mode = drop
CONF
"$top/tools/demo/make-samples.sh" "$work"

echo "== starting imapav-icapd on 127.0.0.1:$port (test signatures: $top/tests/data/signatures)"
"$build/icap-server/imapav-icapd" --config "$work/icapd.conf" 2> "$work/icapd.log" &
server_pid=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done
sed 's/^/   | /' "$work/icapd.log"

user_b64=$(printf 'bob@example.net' | base64)
scan() {  # scan NAME UID
  c-icap-client -i 127.0.0.1 -p "$port" -s avscan -v -f "$work/$1.eml" -o "$work/$1.out" \
    -resp "imap://bob%40example.net@mail.example.net/INBOX;UIDVALIDITY=1700000000/;UID=$2" \
    -x "X-Client-IP: 192.0.2.25" -x "X-Authenticated-User: $user_b64" > "$work/$1.icap" 2>&1 || true
}

echo
echo "== 1. a clean message (c-icap-client, RESPMOD with preview)"
scan clean 101
grep -E 'ICAP/1.0|X-Imapav|ISTag' "$work/clean.icap" | sed 's/^/   /'
if [ ! -s "$work/clean.out" ] || cmp -s "$work/clean.eml" "$work/clean.out"; then
  echo "   -> delivered unchanged"
else
  echo "   -> UNEXPECTED: the clean message was modified"; exit 1
fi

echo
echo "== 2. an infected message (EICAR in a base64 attachment)"
scan infected 102
grep -E 'ICAP/1.0|X-Infection|X-Virus-ID|X-Violations|X-Imapav|ISTag' "$work/infected.icap" | sed 's/^/   /'
echo "   -> what the mail client receives instead:"
sed 's/\r$//; s/^/   | /' "$work/infected.out"

echo
echo "== stopping imapav-icapd (SIGTERM: requests in flight finish, the event log is flushed)"
kill "$server_pid"; wait "$server_pid" || true; server_pid=
sed 's/^/   | /' "$work/icapd.log" | tail -n 6

echo
echo "== the scan log ($work/events.sqlite, table scan_events)"
sqlite3 -header -column "$work/events.sqlite" \
  "SELECT id, time_iso, gateway, client_ip, user, mailbox, uid, sender, subject, size, verdict, threats, action, scan_time_us/1000.0 AS scan_ms FROM scan_events ORDER BY id"
