# Shell helpers shared by the tools/bench*.sh scripts (sourced, not run). The sourcing
# script sets BENCH_NAME and WORK (its temporary directory) and keeps the PIDs of the
# servers it starts (each in its own process group, via setsid) in SERVER_PIDS.

log() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# Stops every server started (the whole process group, so children such as c-icap's or
# Dovecot's go too): SIGTERM, then SIGKILL after 10 s.
stop_servers() {
  local pid i
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
      log "$BENCH_NAME: process group $pid did not stop on SIGTERM; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
}

# On exit: stops the servers, then removes WORK unless IMAPAV_BENCH_KEEP=1.
finish_bench() {
  stop_servers
  if [[ ${IMAPAV_BENCH_KEEP:-0} == 1 ]]; then
    log "$BENCH_NAME: kept $WORK"
  else
    rm -rf -- "$WORK"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID NAME LOG: until PORT accepts connections; fails if PID dies first.
wait_port() {
  local port=$1 pid=$2 name=$3 logfile=$4 i
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$logfile" >&2 || true
      die "$name exited during start-up (log above)"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  tail -20 "$logfile" >&2 || true
  die "$name did not listen on 127.0.0.1:$port within 30 s"
}
