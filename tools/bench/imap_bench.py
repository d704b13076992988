#!/usr/bin/env python3
"""IMAP benchmark client for tools/bench-redirector.sh (python3 standard library only).

  imap_bench.py gen   --dir MAILDIR --count N --size BYTES [--seed S]
      writes N distinct MIME messages (text part + base64 attachment of random bytes) into
      MAILDIR/cur. Each carries X-Bench-Check: <body length>-<sha1 of the body>, so a fetch
      can be verified without knowing which file it came from.
  imap_bench.py fetch --port P --user U --password W --uids FIRST:LAST --connections C
                      (--seconds S | --all) [--warmup N] [--label L] [--verify all|first]
                      [--tls --ca-file CA.pem]
      UID FETCH n BODY.PEEK[] one message at a time per connection, no pipelining. With
      --seconds, each connection cycles through its share of the UIDs and starts fetches
      until S seconds have passed (it wraps around if it runs out, and reports it); with
      --all, the connections split the range and fetch every UID once. Prints one line of
      key=value fields. --tls: implicit TLS (IMAPS), the server's certificate verified
      against CA.pem and its name against 127.0.0.1.
  imap_bench.py idle  --port P --user U --password W --sessions N --pid PID
      opens N sessions (LOGIN, SELECT INBOX, IDLE), reads VmRSS of PID before and after,
      then closes them. Prints one line of key=value fields.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import random
import re
import resource
import ssl
import sys
import time

READ_LIMIT = 8 << 20  # StreamReader buffer: a 5 MB literal arrives in few large reads
LITERAL_RE = re.compile(rb"\{(\d+)\+?\}\r\n$")
IO_TIMEOUT = 180.0  # one 5 MB scan on a loaded machine stays far below
HOST = "127.0.0.1"  # every server listens on loopback; with TLS, the certificate must name it


class ImapError(Exception):
    pass


class Imap:
    """One IMAP connection: a command at a time, literals collected per response."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.seq = reader, writer, 0

    @classmethod
    async def connect(cls, port, user, password, tls=None):
        """tls: an ssl.SSLContext for implicit TLS, or None for plain IMAP."""
        reader, writer = await asyncio.open_connection(
            HOST, port, limit=READ_LIMIT, ssl=tls, server_hostname=HOST if tls else None)
        imap = cls(reader, writer)
        greeting = await imap.read_line()
        if not greeting.startswith(b"* OK"):
            raise ImapError("greeting: %r" % greeting[:80])
        await imap.command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
        await imap.command(b"SELECT INBOX")
        return imap

    async def read_line(self):
        line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), IO_TIMEOUT)
        return line

    async def command(self, text):
        """Sends a command; returns (literals of the untagged responses, tagged line)."""
        self.seq += 1
        tag = b"b%d" % self.seq
        self.writer.write(tag + b" " + text + b"\r\n")
        literals = []
        while True:
            line = await self.read_line()
            while True:  # a response line may carry literals: {n}CRLF, n bytes, rest of line
                m = LITERAL_RE.search(line)
                if not m:
                    break
                literals.append(await asyncio.wait_for(self.reader.readexactly(int(m.group(1))), IO_TIMEOUT))
                line = await self.read_line()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise ImapError("%s: %r" % (text.split(b" ")[0].decode(), line[:120]))
                return literals, line
            if line.startswith(b"* BYE"):
                raise ImapError("server said %r" % line[:120])

    async def close(self):
        try:
            self.writer.write(b"z LOGOUT\r\n")
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass


# --- gen ---------------------------------------------------------------------------------

def make_messages(directory, count, size, seed):
    rng = random.Random(seed)
    cur = os.path.join(directory, "cur")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    text_len = max(200, size // 50)
    attach_raw = max(300, (size - text_len - 900) * 57 // 78)  # base64 + CRLF per 76 chars
    blob = base64.encodebytes(rng.randbytes(attach_raw)).replace(b"\n", b"\r\n")
    text_line = b"This is the text part of a benchmark message. " * 2
    text = (text_line + b"\r\n") * (text_len // (len(text_line) + 2) + 1)
    stamp = b"%032x" % seed
    for i in range(count):
        token = b"%016x%016x" % (seed & 0xFFFFFFFFFFFFFFFF, i)
        # Unique bytes in the text and in the decoded attachment: libclamav caches clean
        # results by hash of the message and of each part.
        att = token + blob[len(token):]
        body = (b"This is a multi-part message in MIME format.\r\n\r\n--bench-boundary\r\n"
                b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                b"token " + token + b"\r\n" + text +
                b"\r\n--bench-boundary\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
                b"Content-Transfer-Encoding: base64\r\n"
                b"Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n" + att +
                b"\r\n--bench-boundary--\r\n")
        head = (b"Received: from bench.example (localhost [127.0.0.1]) by mail.example\r\n"
                b"From: Bench Sender <sender@bench.example>\r\nTo: bench@bench.example\r\n"
                b"Subject: benchmark message " + token + b"\r\n"
                b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
                b"Message-ID: <" + token + b"@bench.example>\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=\"bench-boundary\"\r\n"
                b"X-Bench-Check: %d-%s\r\n\r\n" % (len(body), hashlib.sha1(body).hexdigest().encode()))
        data = head + body
        name = "%d.M%dP%s.bench,S=%d:2," % (1700000000 + i, i, stamp[:8].decode(), len(data))
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)
    print("generated=%d size=%d dir=%s" % (count, len(data), directory))


CHECK_RE = re.compile(rb"\r\nX-Bench-Check: (\d+)-([0-9a-f]{40})\r\n")


def verify(message, full):
    """None when the fetched message is what was delivered, else what is wrong."""
    end = message.find(b"\r\n\r\n")
    m = CHECK_RE.search(message, 0, end + 2) if end >= 0 else None
    if not m:
        return "no X-Bench-Check header"
    body = memoryview(message)[end + 4:]
    if len(body) != int(m.group(1)):
        return "body length %d, expected %s" % (len(body), m.group(1).decode())
    if full and hashlib.sha1(body).hexdigest().encode() != m.group(2):
        return "body sha1 differs"
    return None


# --- fetch -------------------------------------------------------------------------------

async def fetch_worker(args, uids, stats, start_evt, deadline_box):
    imap = await Imap.connect(args.port, args.user, args.password, args.tls_context)
    try:
        pos = 0
        for _ in range(args.warmup):  # not counted; the UIDs are used up all the same
            await imap.command(b"UID FETCH %d BODY.PEEK[]" % uids[pos % len(uids)])
            pos += 1
        stats["ready"] += 1
        await start_evt.wait()
        first = None
        last = None
        done = 0
        while True:
            if args.seconds is not None:
                if time.perf_counter() >= deadline_box[0]:
                    break
            elif pos >= len(uids):
                break
            uid = uids[pos % len(uids)]
            if pos >= len(uids):
                stats["repeats"] += 1
            pos += 1
            t0 = time.perf_counter()
            first = first or t0
            literals, _ = await imap.command(b"UID FETCH %d BODY.PEEK[]" % uid)
            last = time.perf_counter()
            if len(literals) != 1:
                stats["bad"] += 1
                stats["why"] = "uid %d: %d literals in the response" % (uid, len(literals))
                continue
            problem = verify(literals[0], args.verify == "all" or done == 0)
            if problem:
                stats["bad"] += 1
                stats["why"] = "uid %d: %s" % (uid, problem)
            done += 1
            stats["fetches"] += 1
            stats["bytes"] += len(literals[0])
        if done:
            stats["rate"] += done / (last - first)
            stats["busy"] += last - first
            stats["laps"] = max(stats["laps"], pos / len(uids))
    finally:
        await imap.close()


async def run_fetch(args):
    first, last = (int(x) for x in args.uids.split(":"))
    all_uids = list(range(first, last + 1))
    # Each connection gets every C-th UID: disjoint shares, none ever fetched twice unless a
    # timed run wraps around.
    shares = [all_uids[i::args.connections] for i in range(args.connections)]
    stats = dict(fetches=0, bytes=0, bad=0, repeats=0, rate=0.0, busy=0.0, laps=0.0, ready=0, why="")
    start_evt = asyncio.Event()
    deadline_box = [0.0]
    tasks = [asyncio.ensure_future(fetch_worker(args, s, stats, start_evt, deadline_box)) for s in shares]
    errors, why = 0, ""
    while stats["ready"] < len(tasks) and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    deadline_box[0] = t0 + (args.seconds or 0)
    start_evt.set()
    for t in tasks:
        try:
            await t
        except Exception as e:  # reported, and the run fails
            errors += 1
            why = "%s: %s" % (type(e).__name__, e)
    wall = time.perf_counter() - t0
    n = stats["fetches"]
    # Timed runs: per-connection rates (fetches / time from the first start to the last
    # end) added up; --all runs: everything divided by the wall time.
    msg_s = stats["rate"] if args.seconds is not None else (n / wall if wall > 0 else 0)
    avg = stats["bytes"] / n if n else 0
    print("target=%s tls=%d conns=%d fetches=%d msg_s=%.2f MB_s=%.2f avg_bytes=%d lat_ms=%.3f wall_s=%.2f "
          "distinct=%d repeats=%d laps=%.2f bad=%d errors=%d%s" % (
              args.label, 1 if args.tls else 0, args.connections, n, msg_s, msg_s * avg / 1e6, avg,
              1000 * stats["busy"] / n if n else 0, wall, min(n, len(all_uids)),
              stats["repeats"], stats["laps"], stats["bad"], errors,
              (" why=" + (why or stats["why"]).replace(" ", "_")[:200]) if (errors or stats["bad"]) else ""))
    return 1 if errors or stats["bad"] or n == 0 else 0


# --- idle --------------------------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ImapError("no VmRSS for pid %d" % pid)


async def open_idle(args, sem, sessions, failures):
    async with sem:
        try:
            imap = await Imap.connect(args.port, args.user, args.password)
            imap.writer.write(b"i IDLE\r\n")
            line = await imap.read_line()
            while line.startswith(b"* "):
                line = await imap.read_line()
            if not line.startswith(b"+"):
                raise ImapError("IDLE: %r" % line[:80])
            sessions.append(imap)
        except Exception as e:
            failures.append("%s: %s" % (type(e).__name__, e))


async def run_idle(args):
    before = rss_kb(args.pid)
    sem = asyncio.Semaphore(args.concurrency)
    sessions, failures = [], []
    t0 = time.perf_counter()
    await asyncio.gather(*(open_idle(args, sem, sessions, failures) for _ in range(args.sessions)))
    opened = time.perf_counter() - t0
    await asyncio.sleep(args.settle)
    after = rss_kb(args.pid)
    # Every session must still be there: read nothing, but check none was closed.
    alive = sum(1 for s in sessions if not s.reader.at_eof())
    t1 = time.perf_counter()
    for s in sessions:
        s.writer.write(b"DONE\r\n")
    await asyncio.gather(*(s.close() for s in sessions))
    closed = time.perf_counter() - t1
    n = len(sessions)
    print("target=%s sessions=%d alive=%d failed=%d rss_before_kb=%d rss_after_kb=%d delta_MB=%.1f "
          "total_MB=%.1f per_session_KB=%.1f open_s=%.1f close_s=%.1f%s" % (
              args.label, n, alive, len(failures), before, after, (after - before) / 1024, after / 1024,
              (after - before) / n if n else 0, opened, closed,
              (" why=" + failures[0].replace(" ", "_")[:200]) if failures else ""))
    return 1 if failures or alive != n else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--dir", required=True)
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--size", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    for name in ("fetch", "idle"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--user", required=True)
        s.add_argument("--password", required=True)
        s.add_argument("--label", default=name)
    f = sub.choices["fetch"]
    f.add_argument("--uids", required=True, help="FIRST:LAST")
    f.add_argument("--connections", type=int, default=1)
    mode = f.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seconds", type=float)
    mode.add_argument("--all", action="store_true")
    f.add_argument("--warmup", type=int, default=0, help="fetches per connection before timing")
    f.add_argument("--verify", choices=("all", "first"), default="all",
                   help="sha1 of every message, or only of each connection's first (length always)")
    f.add_argument("--tls", action="store_true", help="implicit TLS (IMAPS) instead of plain IMAP")
    f.add_argument("--ca-file", help="CA certificate(s) that must have signed the server's (with --tls)")
    i = sub.choices["idle"]
    i.add_argument("--sessions", type=int, default=2000)
    i.add_argument("--pid", type=int, required=True)
    i.add_argument("--concurrency", type=int, default=50, help="sessions being opened at once")
    i.add_argument("--settle", type=float, default=2.0, help="seconds to wait before reading RSS")
    args = p.parse_args()
    if args.cmd == "gen":
        make_messages(args.dir, args.count, args.size, args.seed)
        return 0
    if args.cmd == "fetch":
        if args.ca_file and not args.tls:
            p.error("--ca-file needs --tls")
        # Verification stays on (CERT_REQUIRED, name checked against HOST): a benchmark that
        # skipped it would not measure what a mail client does.
        args.tls_context = ssl.create_default_context(cafile=args.ca_file) if args.tls else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return asyncio.run(run_fetch(args) if args.cmd == "fetch" else run_idle(args))


if __name__ == "__main__":
    sys.exit(main())
