#!/usr/bin/env python3
"""ICAP client for tools/bench-engine.sh (python3 standard library only): engine start-up,
signature reload under load, and verdict cache hit versus cold scan, against imapav-icapd.

Requests are RESPMOD as a gateway sends them: Allow: 204, Preview: 1024, the rest of the
message after "100 Continue", in 64 KiB chunks. Messages are MIME mail (a text part and a
base64 attachment of random bytes); every one built is unique unless it is sent again on
purpose, so neither the verdict cache nor libclamav's own cache knows it. Message bodies
are never printed. Each command prints one line of key=value fields.

  icap_engine.py ready  --port P --pid-file F --log FILE [--metrics-port M] -- DAEMON ARGS...
      starts the daemon (in a session of its own, output to FILE, its PID written to F)
      and polls OPTIONS until it answers: ready_s is the time from the start. Then the
      signature count and load time from /metrics, and VmRSS/VmHWM once start-up has
      settled. (The client starts the daemon itself: its own start-up, 0.5-1 s of Python
      imports on a busy machine, must not count.)
  icap_engine.py reload --port P --pid PID --metrics-port M --db DIR --new DIR
                        --marker STRING --marker-name NAME [--connections 2] [--size 50k]
      runs a load of unique clean messages, moves every file of --new into --db (rename:
      atomic), sends SIGHUP, and measures the time until OPTIONS shows a new ISTag, the
      memory peak (VmHWM reset just before, where the kernel allows it) and until
      imapav_icapd_engines is back to 1. Every request of the load must come back 204; a
      message with the marker must be clean before and detected as NAME after.
  icap_engine.py cache  --port P --size S --count N [--infected] [--expect-hit yes|no]
      N cold scans (N different messages) interleaved with N repeats of one message
      (after one first scan of it): median and p90 of each, and how many repeats carried
      X-Imapav-Cache: hit.
"""

import argparse
import base64
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
SERVICE = "avscan"
PREVIEW = 1024
CHUNK = 64 * 1024
IO_TIMEOUT = 180.0
CLEAN_TEXT = b"Hello,\r\n\r\nthe figures for the quarter are attached. Regards, Alice\r\n"


class IcapError(Exception):
    pass


def parse_size(text):
    m = re.fullmatch(r"(\d+)([kM]?)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    return int(m[1]) * {"": 1, "k": 1000, "M": 1000 * 1000}[m[2]]


def make_message(size, rng, text=CLEAN_TEXT):
    """A MIME mail of about SIZE bytes: TEXT, then an attachment of random bytes."""
    token = rng.randbytes(12).hex()
    head = (f"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
            f"Subject: report {token}\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n"
            f"Message-ID: <{token}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"b-{token}\"\r\n\r\n"
            f"--b-{token}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").encode() + text + (
            f"\r\n--b-{token}\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n").encode()
    tail = f"--b-{token}--\r\n".encode()
    room = max(size - len(head) - len(tail), 80)
    raw = rng.randbytes(room * 57 // 78)  # base64 lines: 76 characters + CRLF per 57 bytes
    body = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return head + body + tail


def chunked(data):
    out = []
    for off in range(0, len(data), CHUNK):
        piece = data[off:off + CHUNK]
        out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    return b"".join(out)


class Request:
    """A RESPMOD with preview, prepared before it is timed."""

    def __init__(self, port, message):
        self.size = len(message)
        req_hdr = b"GET imap://bench@localhost/INBOX;UIDVALIDITY=1/;UID=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
        res_hdr = (b"HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: %d\r\n\r\n"
                   % len(message))
        preview = message[:PREVIEW]
        whole = len(message) <= PREVIEW
        self.first = (f"RESPMOD icap://{HOST}:{port}/{SERVICE} ICAP/1.0\r\nHost: {HOST}:{port}\r\n"
                      f"Allow: 204\r\nPreview: {len(preview)}\r\n"
                      f"Encapsulated: req-hdr=0, res-hdr={len(req_hdr)}, res-body={len(req_hdr) + len(res_hdr)}"
                      "\r\n\r\n").encode() + req_hdr + res_hdr + chunked(preview) + (
                          b"0; ieof\r\n\r\n" if whole else b"0\r\n\r\n")
        self.rest = b"" if whole else chunked(message[PREVIEW:]) + b"0\r\n\r\n"


class Connection:
    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb", buffering=256 * 1024)

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def read_head(self):
        status_line = self.reader.readline(8192)
        if not status_line:
            raise IcapError("connection closed by the server")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"ICAP/"):
            raise IcapError(f"bad status line {status_line[:80]!r}")
        headers = {}
        while True:
            line = self.reader.readline(65536)
            if not line:
                raise IcapError("connection closed inside the response head")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def read_body(self, headers):
        """Skips the encapsulated HTTP head and the chunked body; returns the body size."""
        enc = dict(kv.strip().split("=") for kv in headers.get("encapsulated", "null-body=0").split(","))
        if "res-body" not in enc and "req-body" not in enc:
            if "null-body" in enc and int(enc["null-body"]) > 0:
                self.reader.read(int(enc["null-body"]))
            return 0
        body_at = int(enc.get("res-body", enc.get("req-body")))
        if body_at:
            self.reader.read(body_at)
        size = 0
        while True:
            line = self.reader.readline(1024)
            if not line:
                raise IcapError("connection closed inside the response body")
            n = int(line.split(b";")[0].strip() or b"0", 16)
            if n == 0:
                while self.reader.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return size
            self.reader.read(n)
            self.reader.readline(1024)
            size += n

    def respmod(self, request):
        """Sends REQUEST; returns (status, headers) of the final answer."""
        self.sock.sendall(request.first)
        status, headers = self.read_head()
        if status == 100:
            self.sock.sendall(request.rest)
            status, headers = self.read_head()
        self.read_body(headers)
        if headers.get("connection", "").lower() == "close":
            raise IcapError(f"server closed the connection after status {status}")
        return status, headers

    def options(self):
        self.sock.sendall((f"OPTIONS icap://{HOST}:{self.port}/{SERVICE} ICAP/1.0\r\n"
                           f"Host: {HOST}:{self.port}\r\nEncapsulated: null-body=0\r\n\r\n").encode())
        status, headers = self.read_head()
        self.read_body(headers)
        if status != 200:
            raise IcapError(f"OPTIONS answered {status}")
        return headers


def metrics(port):
    """The samples of http://127.0.0.1:PORT/metrics: {'name{labels}': value}."""
    if not port:
        return {}
    import urllib.request  # slow to import: not before a start-up is timed
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def memory(pid):
    """VmRSS and VmHWM of PID in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0, the process's owner or root)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def quantile(values, q):
    s = sorted(values)
    if not s:
        return 0.0
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def fmt(x, digits=3):
    return f"{x:.{digits}f}"


def emit(fields):
    print(" ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


# --- ready ------------------------------------------------------------------------------------

def cmd_ready(a):
    if a.command[:1] == ["--"]:
        a.command = a.command[1:]
    if not a.command:
        sys.exit("icap_engine: ready needs the daemon's command line after --")
    t0 = time.time()
    with open(a.log, "ab") as log:
        daemon = subprocess.Popen(a.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    with open(a.pid_file, "w") as f:
        f.write(f"{daemon.pid}\n")
    a.pid = daemon.pid
    deadline = t0 + a.timeout
    istag = None
    while time.time() < deadline:
        if daemon.poll() is not None:
            sys.exit(f"icap_engine: the daemon exited during start-up (status {daemon.returncode})")
        try:
            c = Connection(a.port)
            try:
                istag = c.options().get("istag", "")
            finally:
                c.close()
            break
        except (OSError, IcapError):
            time.sleep(0.02)
    if istag is None:
        sys.exit(f"icap_engine: no OPTIONS answer on port {a.port} within {a.timeout} s")
    ready = time.time() - t0
    time.sleep(a.settle)  # threads, first allocations of the connection and metrics listeners
    rss, hwm = memory(a.pid)
    m = metrics(a.metrics_port)
    emit({"ready_s": fmt(ready), "istag": istag.strip('"'),
          "signatures": int(m.get("imapav_icapd_signatures", -1)),
          "load_metric_s": fmt(m["imapav_icapd_signature_load_seconds"]) if "imapav_icapd_signature_load_seconds" in m else "n/a",
          "rss_kb": rss, "hwm_kb": hwm})


# --- reload under load ------------------------------------------------------------------------

class Load:
    """CONNECTIONS threads sending unique clean messages until stopped; records every request."""

    def __init__(self, port, connections, size):
        self.port, self.size = port, size
        self.stop = threading.Event()
        self.records = []  # (start, end, ok, what) with monotonic times
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(connections)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def worker(self, index):
        rng = random.Random(os.urandom(16))
        conn = None
        while not self.stop.is_set():
            request = Request(self.port, make_message(self.size, rng))
            start = time.monotonic()
            ok, what = False, ""
            try:
                if conn is None:
                    conn = Connection(self.port)
                status, headers = conn.respmod(request)
                verdict = headers.get("x-imapav-verdict", "")
                ok = status == 204 and verdict in ("", "clean")
                what = f"{status}/{verdict or '-'}"
            except (OSError, IcapError) as e:
                what = type(e).__name__ + ":" + str(e).replace(" ", "_")[:60]
                if conn:
                    conn.close()
                conn = None
            with self.lock:
                self.records.append((start, time.monotonic(), ok, what))
        if conn:
            conn.close()


def check_marker(port, request):
    """(status, virus name or '') for REQUEST."""
    c = Connection(port)
    try:
        status, headers = c.respmod(request)
    finally:
        c.close()
    name = headers.get("x-virus-id", "") or headers.get("x-infection-found", "")
    return status, name


def cmd_reload(a):
    marker_msg = make_message(50_000, random.Random(os.urandom(16)),
                              CLEAN_TEXT + b"\r\n" + a.marker.encode() + b"\r\n")
    marker_req = Request(a.port, marker_msg)
    status, name = check_marker(a.port, marker_req)
    marker_before = "clean" if status == 204 else f"{status}:{name or '-'}".replace(" ", "_")

    probe = Connection(a.port)
    old_tag = probe.options().get("istag", "")
    m0 = metrics(a.metrics_port)
    load = Load(a.port, a.connections, a.size)
    load.start()
    time.sleep(a.before)
    rss_before, hwm_start = memory(a.pid)
    hwm_reset = reset_hwm(a.pid)

    # The new database goes in file by file, each one a rename: never a half-written file.
    for name in sorted(os.listdir(a.new)):
        os.replace(os.path.join(a.new, name), os.path.join(a.db, name))
    peak = [rss_before]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            try:
                peak[0] = max(peak[0], memory(a.pid)[0])
            except OSError:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t_hup = time.monotonic()
    os.kill(a.pid, signal.SIGHUP)
    new_tag, t_tag = None, None
    deadline = t_hup + a.timeout
    while time.monotonic() < deadline:
        try:
            tag = probe.options().get("istag", "")
        except (OSError, IcapError):
            probe.close()
            probe = Connection(a.port)
            continue
        if tag != old_tag:
            new_tag, t_tag = tag, time.monotonic()
            break
        time.sleep(0.02)
    probe.close()
    # The old engine goes when its last scan has finished.
    engines, t_freed = None, None
    while new_tag and time.monotonic() < deadline:
        engines = metrics(a.metrics_port).get("imapav_icapd_engines")
        if engines is not None and engines <= 1:
            t_freed = time.monotonic()
            break
        time.sleep(0.1)
    time.sleep(a.after)
    load.finish()
    sampling.set()
    sampler.join()
    rss_after, hwm_after = memory(a.pid)
    m1 = metrics(a.metrics_port)

    status, name = check_marker(a.port, marker_req)
    marker_after = name.replace(" ", "_") if status == 200 and name else f"{status}:missed"

    records = load.records
    t_end = t_tag or time.monotonic()
    during = [r for r in records if r[1] >= t_hup and r[0] <= t_end]
    before = [r for r in records if r[1] < t_hup]
    failed = [r for r in records if not r[2]]
    kinds = {}
    for r in failed:
        kinds[r[3]] = kinds.get(r[3], 0) + 1
    lat_before = [1000 * (r[1] - r[0]) for r in before]
    lat_during = [1000 * (r[1] - r[0]) for r in during]
    success = 'imapav_icapd_signature_reloads_total{outcome="success"}'
    failure = 'imapav_icapd_signature_reloads_total{outcome="failure"}'
    emit({
        "reload_s": fmt(t_tag - t_hup) if t_tag else "timeout",
        "load_metric_s": fmt(m1.get("imapav_icapd_signature_load_seconds", float("nan"))),
        "freed_s": fmt(t_freed - t_hup) if t_freed else "n/a",
        "engines_after": int(engines) if engines is not None else "n/a",
        "old_istag": old_tag.strip('"'), "new_istag": (new_tag or "").strip('"'),
        "signatures_before": int(m0.get("imapav_icapd_signatures", -1)),
        "signatures_after": int(m1.get("imapav_icapd_signatures", -1)),
        "reloads_ok": int(m1.get(success, 0) - m0.get(success, 0)),
        "reloads_failed": int(m1.get(failure, 0) - m0.get(failure, 0)),
        "rss_before_kb": rss_before, "hwm_start_kb": hwm_start,
        "hwm_reset": "yes" if hwm_reset else "no",
        "hwm_peak_kb": hwm_after, "rss_peak_sampled_kb": peak[0], "rss_after_kb": rss_after,
        "requests": len(records), "requests_during": len(during), "failed": len(failed),
        "failed_during": sum(1 for r in during if not r[2]),
        "failures": ",".join(f"{k}x{v}" for k, v in sorted(kinds.items())) or "none",
        "lat_before_p50_ms": fmt(quantile(lat_before, 0.5), 1),
        "lat_during_p50_ms": fmt(quantile(lat_during, 0.5), 1),
        "lat_during_max_ms": fmt(max(lat_during, default=0), 1),
        "marker_before": marker_before, "marker_after": marker_after,
    })


# --- cache: hit vs cold -----------------------------------------------------------------------

def timed(conn, request):
    start = time.perf_counter()
    status, headers = conn.respmod(request)
    return 1000 * (time.perf_counter() - start), status, headers


def cmd_cache(a):
    rng = random.Random(os.urandom(16))
    text = CLEAN_TEXT + (b"\r\nIMAPAV-TEST-VIRUS-MARKER\r\n" if a.infected else b"")
    expected = 200 if a.infected else 204
    # Built before timing: generating 5 MB in Python takes longer than a cache hit.
    colds = [Request(a.port, make_message(a.size, rng, text)) for _ in range(a.count)]
    repeat = Request(a.port, make_message(a.size, rng, text))
    conn = Connection(a.port)
    _, status, _ = timed(conn, repeat)  # first scan of the repeated message: a miss
    bad = 0 if status == expected else 1
    cold_ms, hit_ms, marked = [], [], 0
    for cold in colds:  # interleaved, so drift in the machine's load hits both alike
        ms, status, _ = timed(conn, cold)
        cold_ms.append(ms)
        bad += status != expected
        ms, status, headers = timed(conn, repeat)
        hit_ms.append(ms)
        bad += status != expected
        marked += headers.get("x-imapav-cache", "").lower() == "hit"
    conn.close()
    cold_med, hit_med = statistics.median(cold_ms), statistics.median(hit_ms)
    emit({"kind": "infected" if a.infected else "clean", "bytes": colds[0].size, "count": a.count,
          "cold_median_ms": fmt(cold_med, 2), "cold_p90_ms": fmt(quantile(cold_ms, 0.9), 2),
          "hit_median_ms": fmt(hit_med, 2), "hit_p90_ms": fmt(quantile(hit_ms, 0.9), 2),
          "ratio": fmt(cold_med / hit_med if hit_med > 0 else 0, 2),
          "hits_marked": marked, "unexpected": bad})
    if bad or (a.expect_hit == "yes" and marked != a.count) or (a.expect_hit == "no" and marked):
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--pid-file", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--metrics-port", type=int, default=0)
    r.add_argument("--timeout", type=float, default=300)
    r.add_argument("--settle", type=float, default=0.5)
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- DAEMON ARGS...")
    r.set_defaults(func=cmd_ready)
    r = sub.add_parser("reload")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--metrics-port", type=int, required=True)
    r.add_argument("--db", required=True)
    r.add_argument("--new", required=True)
    r.add_argument("--marker", required=True)
    r.add_argument("--marker-name", required=True)
    r.add_argument("--connections", type=int, default=2)
    r.add_argument("--size", type=parse_size, default=50_000)
    r.add_argument("--before", type=float, default=2)
    r.add_argument("--after", type=float, default=2)
    r.add_argument("--timeout", type=float, default=300)
    r.set_defaults(func=cmd_reload)
    r = sub.add_parser("cache")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--size", type=parse_size, required=True)
    r.add_argument("--count", type=int, default=15)
    r.add_argument("--infected", action="store_true")
    r.add_argument("--expect-hit", choices=["yes", "no", "any"], default="any")
    r.set_defaults(func=cmd_cache)
    a = p.parse_args()
    try:
        a.func(a)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: the script's clean-up stops the daemon


if __name__ == "__main__":
    main()
