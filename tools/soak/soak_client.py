#!/usr/bin/python3
"""Soak test client for tools/soak.sh (python3 standard library only; Debian's /usr/bin/python3).

  soak_client.py gen    --work DIR --users N --messages M [--seed S]
      writes M messages per user (clean and EICAR-infected, 300 bytes to ~2 MB) into the
      maildirs DIR/mail/soakNN/cur and a manifest DIR/manifest.json (size, sha256, sha256
      of the first 1000 bytes, infected or not, per message).
  soak_client.py index  --work DIR --port DOVECOT_PORT --password W
      logs in to Dovecot directly, maps each user's UIDs to the generated messages
      (X-Soak-Id header) and checks that Dovecot serves every message byte-identical to the
      generated file (so a difference seen through the redirector is the redirector's).
  soak_client.py run    --work DIR --port REDIRECTOR_PORT --password W --seconds S --clients C
                        --redirector-pid P --icapd-pid P --redirector-metrics HOST:PORT
                        --icapd-metrics HOST:PORT [--idle-clients N] [--spill-threshold BYTES]
      the load: C threads, each a python imaplib client of one user, with a mix of
      behaviours (see README "Soak test"), every whole-message download checked; samples
      the RSS of both daemons; at the end scrapes both /metrics. Writes DIR/results.json
      and DIR/samples.csv.
  soak_client.py report --work DIR
      reads DIR/results.json and DIR/stop.env (written by soak.sh after stopping the
      daemons), prints the summary table and the checks; exit status 0 only if all passed.
"""

import argparse
import base64
import csv
import hashlib
import imaplib
import json
import os
import random
import re
import socket
import statistics
import struct
import sys
import threading
import time
import urllib.request

HOST = "127.0.0.1"
PARTIAL = 1000  # BODY.PEEK[]<0.PARTIAL>
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
EICAR_B64 = base64.b64encode(EICAR)
THREAT = b"Eicar-Test-Signature"
IO_TIMEOUT = 180.0


def log(*args):
    print(*args, flush=True)


# --- gen ---------------------------------------------------------------------------------

def b64_lines(raw):
    return base64.encodebytes(raw).replace(b"\n", b"\r\n")


def make_message(rng, user, n, target, infected):
    """One message of about target bytes (exact sizes do not matter)."""
    token = b"%s-%04d-%016x" % (user.encode(), n, rng.getrandbits(64))
    head = (b"Received: from soak.example (localhost [127.0.0.1]) by mail.soak.example\r\n"
            b"From: Soak Sender <sender%d@soak.example>\r\n"
            b"To: %s@soak.example\r\n"
            b"Subject: soak %s (%s, ~%d bytes)\r\n"
            b"Date: Sat, 28 Nov 2026 10:%02d:%02d +0000\r\n"
            b"Message-ID: <%s@soak.example>\r\n"
            b"X-Soak-Id: %s-%d\r\n"
            b"MIME-Version: 1.0\r\n") % (n % 7, user.encode(), token, b"infected" if infected else b"clean",
                                         target, n % 60, n % 59, token, user.encode(), n)
    line = b"Soak test text line, nothing to see here; token " + token + b".\r\n"
    if target < 1000:  # a single text part
        body = b"Hello,\r\n\r\n"
        if infected:
            body += b"The test file follows:\r\n" + EICAR + b"\r\n"
        while len(head) + len(body) + 60 + len(line) < target:
            body += line
        return head + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
    parts = []
    text = b"Hello,\r\n\r\nthe attachment is for the soak test.\r\n" + line * max(1, min(40, target // 2000))
    parts.append(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text)
    if n % 3 == 0:
        parts.append(b"Content-Type: text/html; charset=us-ascii\r\n\r\n<html><body><p>" +
                     line * 3 + b"</p></body></html>\r\n")
    eicar_part = None
    if infected:
        if n % 2:
            eicar_part = (b"Content-Type: application/octet-stream; name=\"invoice.com\"\r\n"
                          b"Content-Transfer-Encoding: base64\r\n"
                          b"Content-Disposition: attachment; filename=\"invoice.com\"\r\n\r\n" + b64_lines(EICAR))
        else:
            eicar_part = (b"Content-Type: application/octet-stream; name=\"readme.txt\"\r\n"
                          b"Content-Disposition: attachment; filename=\"readme.txt\"\r\n\r\n" + EICAR + b"\r\n")
        if (n // 2) % 2 == 0:  # the virus before or after the large filler
            parts.append(eicar_part)
            eicar_part = None
    used = len(head) + sum(len(p) + 40 for p in parts) + 200 + (len(eicar_part) + 40 if eicar_part else 0)
    room = target - used
    if room > 200:
        raw = rng.randbytes(room * 57 // 78)
        parts.append(b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
                     b"Content-Transfer-Encoding: base64\r\n"
                     b"Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n" + b64_lines(raw))
    if eicar_part:
        parts.append(eicar_part)
    boundary = b"soak-" + token
    body = b"This is a multi-part message in MIME format.\r\n"
    for p in parts:
        body += b"\r\n--" + boundary + b"\r\n" + p
    body += b"\r\n--" + boundary + b"--\r\n"
    return head + b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n" + body


def pick_size(rng):
    r = rng.random()
    if r < 0.10:
        lo, hi = 300, 950         # tiny: a partial fetch of <0.1000> gets it whole (scanned)
    elif r < 0.45:
        lo, hi = 1000, 20000      # small
    elif r < 0.75:
        lo, hi = 20000, 240000    # medium, below the spill threshold
    else:
        lo, hi = 300000, 2000000  # large, above the redirector's spill threshold (256 KiB)
    return int(lo * (hi / lo) ** rng.random())


def cmd_gen(a):
    rng = random.Random(a.seed)
    manifest = {"users": {}}
    total = 0
    for u in range(1, a.users + 1):
        user = "soak%02d" % u
        d = os.path.join(a.work, "mail", user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        msgs = {}
        for n in range(1, a.messages + 1):
            infected = n % 5 == 2  # 20%
            data = make_message(rng, user, n, pick_size(rng), infected)
            name = "%d.M%dP%d.soak,S=%d:2," % (1700000000 + n, n, u, len(data))
            with open(os.path.join(d, "cur", name), "wb") as f:
                f.write(data)
            msgs["%s-%d" % (user, n)] = {
                "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "prefix_sha256": hashlib.sha256(data[:PARTIAL]).hexdigest(), "infected": infected}
            total += len(data)
        manifest["users"][user] = {"messages": msgs}
    with open(os.path.join(a.work, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    log("generated %d users x %d messages, %.1f MB" % (a.users, a.messages, total / 1e6))


# --- FETCH responses as imaplib returns them ---------------------------------------------

ITEM_RE = re.compile(rb"(RFC822(?:\.HEADER|\.TEXT)?|BODY\[[^\]]*\](?:<\d+>)?|BINARY\[[^\]]*\](?:<\d+>)?) \{(\d+)\}$",
                     re.I)


class Fetched:
    __slots__ = ("seq", "text", "literals")

    def __init__(self, seq):
        self.seq, self.text, self.literals = seq, b"", []  # literals: [(item, bytes)]

    def number(self, name):
        m = re.search(rb"\b" + name + rb" (\d+)", self.text, re.I)
        return int(m.group(1)) if m else None


def parse_fetch(data):
    """imaplib's FETCH data -> [Fetched]. A tuple is (text up to a literal, literal); a
    bytes element starting with a digit is a new response, else the rest of the last one."""
    out = []
    for el in data:
        if el is None:
            continue
        prefix = el[0] if isinstance(el, tuple) else el
        if prefix[:1].isdigit() or not out:
            m = re.match(rb"(\d+) ", prefix)
            out.append(Fetched(int(m.group(1)) if m else None))
        r = out[-1]
        r.text += prefix
        if isinstance(el, tuple):
            m = ITEM_RE.search(prefix)
            r.literals.append(((m.group(1).upper() if m else b"?"), el[1]))
    return out


# --- run ---------------------------------------------------------------------------------

class SoakError(Exception):
    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}
        self.errors = []      # first ones in detail
        self.error_kinds = {}
        self.lat = []         # (op, size, seconds) of single-message whole downloads

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n

    def error(self, kind, text):
        with self.lock:
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
            if len(self.errors) < 200:
                self.errors.append({"t": round(time.time(), 3), "kind": kind, "text": text[:500]})
        log("  ERROR %s: %s" % (kind, text[:300]))

    def latency(self, op, size, dt):
        with self.lock:
            self.lat.append((op, size, dt))


class Mailbox:
    """One user's messages as Dovecot numbers them. Grows while the deliverer appends; no
    message is ever expunged, so sequence number n is always the n-th UID."""

    def __init__(self, user, entry):
        self.user = user
        self.lock = threading.Condition()
        self.msgs = entry["messages"]
        self.uid_id = {int(k): v for k, v in entry["uids"].items()}
        self.uids = sorted(self.uid_id)
        self.initial = len(self.uids)

    def add(self, uid, ident, info):
        with self.lock:
            if self.uids and uid <= self.uids[-1]:
                raise SoakError("protocol", "%s: APPENDUID %d not above the last UID %d" % (self.user, uid, self.uids[-1]))
            self.msgs[ident] = info
            self.uid_id[uid] = ident
            self.uids.append(uid)
            self.lock.notify_all()

    def count(self):
        with self.lock:
            return len(self.uids)

    def first(self, n):
        """The UIDs of sequence numbers 1..n (those registered so far)."""
        with self.lock:
            return self.uids[:n]

    def known(self, uid=None, seq=None, wait=5.0):
        """The UID (given it or its sequence number) once the deliverer has registered it:
        Dovecot may show a new message a moment before APPEND's answer reaches the deliverer."""
        with self.lock:
            end = time.monotonic() + wait
            while True:
                if uid is not None and uid in self.uid_id:
                    return uid
                if uid is None and seq is not None and 1 <= seq <= len(self.uids):
                    return self.uids[seq - 1]
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)

    def info(self, uid):
        with self.lock:
            return self.msgs[self.uid_id[uid]]

    def ident(self, uid):
        with self.lock:
            return self.uid_id[uid]


class Client(threading.Thread):
    # op: weight. Each session does 1-6 ops, then LOGOUT or just drops the connection.
    OPS = [("uid_peek", 30), ("seq_peek", 10), ("rfc822", 14), ("batch", 4), ("partial", 15),
           ("abort", 6), ("unseen", 3), ("noop", 6)]

    def __init__(self, n, mailbox, a, stats, stop, idle):
        super().__init__(name="client%d" % n, daemon=True)
        self.n, self.mb, self.a, self.stats, self.stop, self.idle = n, mailbox, a, stats, stop, idle
        self.rng = random.Random(a.seed * 1000 + n)
        self.spill = a.spill_threshold
        self.ops = [o for o, w in self.OPS for _ in range(w)]

    # -- helpers --
    def connect(self):
        M = imaplib.IMAP4(HOST, self.a.port, timeout=IO_TIMEOUT)
        self.stats.add("sessions")
        typ, _ = M.login(self.mb.user, self.a.password)
        if typ != "OK":
            raise SoakError("no-bad", "LOGIN %s" % typ)
        typ, dat = M.select("INBOX")
        if typ != "OK" or int(dat[0]) < self.mb.initial:
            raise SoakError("no-bad", "SELECT %s %r" % (typ, dat))
        self.exists = int(dat[0])  # the messages this session knows of
        return M

    def update_exists(self, M):
        ex = M.untagged_responses.get("EXISTS")
        if ex and ex[-1] is not None:
            self.exists = max(self.exists, int(ex[-1]))

    def verify(self, uid, item, literal, size_told, op):
        """Checks one literal of a FETCH answer; counts it. Returns its kind."""
        info = self.mb.info(uid)
        where = "%s uid=%d (%s, %d bytes, %s) %s" % (self.mb.user, uid, self.mb.ident(uid), info["size"],
                                                    "infected" if info["infected"] else "clean", op)
        partial = item.startswith(b"BODY[]<") or item.startswith(b"BINARY[]<")
        self.stats.add("bytes", len(literal))
        if partial and info["size"] >= PARTIAL:
            self.stats.add("partial_unscanned")
            if len(literal) != PARTIAL or hashlib.sha256(literal).hexdigest() != info["prefix_sha256"]:
                raise SoakError("content", "%s: partial answer of %d bytes is not the message's first %d" %
                                (where, len(literal), PARTIAL))
            return "partial"
        kind = "infected" if info["infected"] else "clean"
        self.stats.add("whole_" + kind)
        self.stats.add("whole_" + kind + "_" + op)
        if info["size"] > self.spill:
            self.stats.add("whole_spill_size")
        if size_told is not None and size_told != len(literal):
            raise SoakError("size", "%s: RFC822.SIZE %d but %d bytes received" % (where, size_told, len(literal)))
        if info["infected"]:
            if THREAT not in literal or EICAR in literal or EICAR_B64[:40] in literal:
                raise SoakError("content", "%s: infected message did not arrive as the notice (%d bytes, threat name %s, "
                                "EICAR %s)" % (where, len(literal), THREAT in literal,
                                              EICAR in literal or EICAR_B64[:40] in literal))
        elif len(literal) != info["size"] or hashlib.sha256(literal).hexdigest() != info["sha256"]:
            raise SoakError("content", "%s: clean message altered (%d bytes received)" % (where, len(literal)))
        self.stats.add("ok_" + kind)
        return kind

    def fetch(self, M, op, use_uid, msgset, items, expect_uids, expect_item):
        t0 = time.monotonic()
        typ, data = (M.uid("FETCH", msgset, items) if use_uid else M.fetch(msgset, items))
        dt = time.monotonic() - t0
        if typ != "OK":
            raise SoakError("no-bad", "%s %s %s %s: %s %r" % (self.mb.user, "UID FETCH" if use_uid else "FETCH",
                                                             msgset, items, typ, data[:1]))
        got = set()
        size = 0
        for r in parse_fetch(data):
            if not r.literals:
                continue  # e.g. FLAGS of a message another session read
            uid = self.mb.known(uid=r.number(b"UID"), seq=r.seq)
            if uid is None:
                raise SoakError("protocol", "%s %s: FETCH response without a known UID: %r" % (self.mb.user, op, r.text[:200]))
            for item, lit in r.literals:
                if not item.startswith(expect_item):
                    raise SoakError("protocol", "%s %s uid=%d: unexpected item %r" % (self.mb.user, op, uid, item))
                if uid in got:
                    raise SoakError("protocol", "%s %s uid=%d: message sent twice" % (self.mb.user, op, uid))
                got.add(uid)
                self.verify(uid, item, lit, r.number(rb"RFC822\.SIZE"), op)
                size += len(lit)
        missing = set(expect_uids) - got
        if missing:
            raise SoakError("protocol", "%s %s %s: no message for UIDs %s" % (self.mb.user, op, msgset,
                                                                             sorted(missing)[:10]))
        self.stats.add("op_" + op)
        self.update_exists(M)
        if len(expect_uids) == 1:
            self.stats.latency(op, size, dt)
        return dt

    def close(self, M, logout):
        if M is None:
            return
        try:
            if logout:
                M.logout()
                self.stats.add("logouts")
            else:
                M.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                M.shutdown()
                self.stats.add("drops")
        except (OSError, imaplib.IMAP4.error):
            pass

    def read_until_tagged(self, M, tag):
        while True:
            line = M.readline()
            if not line:
                raise SoakError("protocol", "connection closed while waiting for %s" % tag.decode())
            if line.startswith(tag + b" "):
                return line
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                self.stats.add("idle_exists")
                self.exists = max(self.exists, int(m.group(1)))

    # -- operations --
    def op(self, M, name):
        rng, mb = self.rng, self.mb
        uids = mb.first(self.exists)
        seq = rng.randrange(len(uids)) + 1
        uid = uids[seq - 1]
        if name == "uid_peek":
            self.fetch(M, name, True, str(uid), "(UID RFC822.SIZE BODY.PEEK[])", [uid], b"BODY[]")
        elif name == "seq_peek":  # items after the literal, and no UID asked for
            self.fetch(M, name, False, str(seq), "(BODY.PEEK[] RFC822.SIZE)", [uid], b"BODY[]")
        elif name == "rfc822":    # sets \Seen: the other sessions of the mailbox see FETCH FLAGS
            if rng.random() < 0.5:
                self.fetch(M, name, False, str(seq), "(RFC822.SIZE RFC822)", [uid], b"RFC822")
            else:
                self.fetch(M, name, True, str(uid), "(UID RFC822 RFC822.SIZE)", [uid], b"RFC822")
        elif name == "batch":
            r = rng.random()
            if r < 0.25:  # everything the session knows of (and what arrives meanwhile)
                self.fetch(M, name, False, "1:*", "(UID RFC822.SIZE BODY.PEEK[])", uids, b"BODY[]")
            elif r < 0.7:
                i = rng.randrange(len(uids))
                j = min(len(uids), i + rng.randint(2, 10))
                self.fetch(M, name, True, "%d:%d" % (uids[i], uids[j - 1]), "(UID RFC822.SIZE BODY.PEEK[])",
                           uids[i:j], b"BODY[]")
            else:
                some = sorted(rng.sample(uids, min(len(uids), rng.randint(2, 6))))
                self.fetch(M, name, True, ",".join(map(str, some)), "(UID BODY.PEEK[] RFC822.SIZE FLAGS)",
                           some, b"BODY[]")
            self.stats.add("batches")
        elif name == "partial":
            self.fetch(M, name, True, str(uid), "(UID BODY.PEEK[]<0.%d>)" % PARTIAL, [uid], b"BODY[]<0>")
        elif name == "unseen":
            typ, _ = M.store(str(seq), "-FLAGS", "(\\Seen)")
            if typ != "OK":
                raise SoakError("no-bad", "STORE %s" % typ)
            self.stats.add("op_unseen")
            self.update_exists(M)
        elif name == "noop":
            typ, _ = (M.noop() if rng.random() < 0.5 else M.status("INBOX", "(MESSAGES UNSEEN)"))
            if typ != "OK":
                raise SoakError("no-bad", "NOOP/STATUS %s" % typ)
            self.stats.add("op_noop")
            self.update_exists(M)

    def abort(self, M):
        """Sends a FETCH and drops the connection in the middle of the answer (or while the
        redirector still waits for the scan)."""
        rng, mb = self.rng, self.mb
        uids = mb.first(self.exists)
        big = [u for u in uids if mb.info(u)["size"] > 50000] or uids
        uid = rng.choice(big)
        info = mb.info(uid)
        tag = M._new_tag()
        M.send(tag + b" UID FETCH %d (UID RFC822.SIZE BODY.PEEK[])\r\n" % uid)
        mode = "scan" if rng.random() < 0.4 else "literal"
        if mode == "scan":
            time.sleep(rng.uniform(0, 0.3))
        else:
            while True:
                line = M.readline()
                if not line:
                    raise SoakError("protocol", "%s abort uid=%d: connection closed before the message" % (mb.user, uid))
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if m:
                    n = int(m.group(1))
                    if not info["infected"] and n != info["size"]:
                        raise SoakError("size", "%s abort uid=%d: literal of %d bytes for a clean message of %d" %
                                        (mb.user, uid, n, info["size"]))
                    if n > 1:
                        M.read(rng.randint(1, n - 1))
                    break
                if line.startswith(tag + b" "):
                    raise SoakError("protocol", "%s abort uid=%d: FETCH answered %r without the message" %
                                    (mb.user, uid, line[:100]))
        self.stats.add("aborts_" + mode)
        self.stats.add("aborts_" + ("infected" if info["infected"] else "clean"))
        if info["size"] > self.spill:
            self.stats.add("aborts_spill_size")
        self.close(M, False)

    def idle_session(self, M):
        tag = M._new_tag()
        M.send(tag + b" IDLE\r\n")
        while True:
            line = M.readline()
            if line.startswith(b"+"):
                break
            if not line or line.startswith(tag + b" "):
                raise SoakError("protocol", "%s IDLE refused: %r" % (self.mb.user, line[:100]))
        t0 = time.monotonic()
        length = self.rng.uniform(15, 45)
        while time.monotonic() - t0 < length and not self.stop.is_set():
            time.sleep(0.5)
        M.send(b"DONE\r\n")
        line = self.read_until_tagged(M, tag)
        if not line[len(tag) + 1:].upper().startswith(b"OK"):
            raise SoakError("no-bad", "%s IDLE ended with %r" % (self.mb.user, line[:100]))
        self.stats.add("idle_sessions")
        self.stats.add("idle_seconds", int(time.monotonic() - t0))

    def run(self):
        while not self.stop.is_set():
            M = None
            op = "connect"
            try:
                M = self.connect()
                if self.idle:
                    op = "idle"
                    self.idle_session(M)
                    op = "uid_peek"
                    self.op(M, op)
                    self.close(M, True)
                    continue
                for _ in range(self.rng.randint(1, 6)):
                    if self.stop.is_set():
                        break
                    op = self.rng.choice(self.ops)
                    if op == "abort":
                        self.abort(M)
                        M = None
                        break
                    self.op(M, op)
                    time.sleep(self.rng.uniform(0, 0.1))
                self.close(M, self.rng.random() < 0.85)
            except SoakError as e:
                self.stats.error(e.kind, str(e))
                self.close(M, False)
            except (socket.timeout, TimeoutError) as e:
                self.stats.error("timeout", "%s %s: %r" % (self.mb.user, op, e))
                self.close(M, False)
            except (imaplib.IMAP4.error, OSError, ValueError) as e:
                self.stats.error("imaplib", "%s %s: %s: %s" % (self.mb.user, op, type(e).__name__, e))
                self.close(M, False)
            if not self.stop.is_set():
                time.sleep(self.rng.uniform(0, 0.2))


class Deliverer(threading.Thread):
    """New mail while the clients read: every 1/rate s a fresh message (new bytes, so
    libclamav's cache of clean results does not know it; 20% infected) is appended to a
    mailbox, mostly straight to Dovecot as a mail server's delivery would, and one in five
    through the redirector (a client's APPEND: relayed unscanned, counted as an upload).
    IDLE sessions hear of it (EXISTS). A mailbox takes at most max_per_user messages."""

    def __init__(self, a, mailboxes, stats, stop):
        super().__init__(name="deliverer", daemon=True)
        self.a, self.mailboxes, self.stats, self.stop = a, mailboxes, stats, stop
        self.rng = random.Random(a.seed * 7919 + 1)
        self.next_n = {m.user: 1001 for m in mailboxes}

    def deliver(self, mb):
        rng = self.rng
        n = self.next_n[mb.user]
        self.next_n[mb.user] += 1
        infected = rng.random() < 0.2
        data = make_message(rng, mb.user, n, pick_size(rng), infected)
        ident = "%s-%d" % (mb.user, n)
        via = "redirector" if rng.random() < 0.2 else "direct"
        M = imaplib.IMAP4(HOST, self.a.port if via == "redirector" else self.a.dovecot_port, timeout=IO_TIMEOUT)
        if via == "redirector":
            self.stats.add("sessions")
        try:
            M.login(mb.user, self.a.password)
            typ, dat = M.append("INBOX", None, None, data)
            m = re.search(rb"APPENDUID \d+ (\d+)", dat[0] or b"") if typ == "OK" else None
            if not m:
                raise SoakError("no-bad", "%s APPEND (%s) of %d bytes: %s %r" % (mb.user, via, len(data), typ, dat[:1]))
            mb.add(int(m.group(1)), ident, {
                "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "prefix_sha256": hashlib.sha256(data[:PARTIAL]).hexdigest(), "infected": infected})
            self.stats.add("delivered_" + via)
            self.stats.add("delivered_bytes", len(data))
            if infected:
                self.stats.add("delivered_infected")
            M.logout()
        finally:
            try:
                M.shutdown()
            except OSError:
                pass

    def run(self):
        interval = 1.0 / self.a.delivery_rate
        while not self.stop.wait(interval):
            room = [m for m in self.mailboxes if m.count() < self.a.max_per_user]
            if not room:
                continue
            try:
                self.deliver(self.rng.choice(room))
            except SoakError as e:
                self.stats.error(e.kind, "deliverer: " + str(e))
            except (socket.timeout, TimeoutError) as e:
                self.stats.error("timeout", "deliverer: %r" % e)
            except (imaplib.IMAP4.error, OSError, ValueError) as e:
                self.stats.error("imaplib", "deliverer: %s: %s" % (type(e).__name__, e))


# --- metrics and memory --------------------------------------------------------------------

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            continue
        labels = tuple(sorted(LABEL_RE.findall(m.group(2) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric(ms, name, **labels):
    """Sum of the samples of name whose labels include the given ones."""
    total = 0.0
    for (n, ls), v in ms.items():
        if n == name and all((k, v2) in ls for k, v2 in labels.items()):
            total += v
    return total


def scrape(address):
    with urllib.request.urlopen("http://%s/metrics" % address, timeout=10) as r:
        return r.read().decode()


def vmrss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Sampler(threading.Thread):
    def __init__(self, a, interval, stop, t0):
        super().__init__(name="sampler", daemon=True)
        self.a, self.interval, self.stop, self.t0 = a, interval, stop, t0
        self.samples = []
        self.dead = []
        self.scrape_errors = 0

    def sample(self, phase):
        s = {"t": round(time.monotonic() - self.t0, 1), "phase": phase}
        for name, pid, addr in (("redirector", self.a.redirector_pid, self.a.redirector_metrics),
                                ("icapd", self.a.icapd_pid, self.a.icapd_metrics)):
            if not alive(pid):
                if name not in self.dead:
                    self.dead.append(name)
                    log("  ERROR imapav-%s (pid %d) is no longer running" % (name, pid))
                continue
            s[name + "_vmrss_kb"] = vmrss_kb(pid)
            try:
                ms = parse_metrics(scrape(addr))
                s[name + "_metrics_rss_kb"] = int(metric(ms, "process_resident_memory_bytes") / 1024)
                if name == "redirector":
                    s["sessions_active"] = int(metric(ms, "imapav_redirector_sessions_active"))
                    s["redirector_scans_in_progress"] = int(metric(ms, "imapav_redirector_scans_in_progress"))
                    s["redirector_queue"] = int(metric(ms, "imapav_redirector_scan_queue_depth"))
                    s["messages"] = int(metric(ms, "imapav_redirector_messages_total"))
                else:
                    s["icapd_scans_in_progress"] = int(metric(ms, "imapav_icapd_scans_in_progress"))
                    s["event_log_queue"] = int(metric(ms, "imapav_icapd_event_log_queue_depth"))
                    s["threads"] = int(metric(ms, "process_threads"))
            except (OSError, ValueError):
                self.scrape_errors += 1
        self.samples.append(s)
        return s

    def run(self):
        while not self.stop.wait(self.interval):
            self.sample("load")


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def histogram_quantile(ms, name, q):
    """Quantile from a cumulative Prometheus histogram, linear inside the bucket."""
    buckets = []
    for (n, ls), v in ms.items():
        if n == name + "_bucket":
            le = dict(ls).get("le")
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le  # above the last bound: report the bound
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 1)
        prev_le, prev_c = le, c
    return None


def cmd_index(a):
    with open(os.path.join(a.work, "manifest.json")) as f:
        manifest = json.load(f)
    checked = 0
    for user, entry in manifest["users"].items():
        M = imaplib.IMAP4(HOST, a.port, timeout=IO_TIMEOUT)
        M.login(user, a.password)
        typ, dat = M.select("INBOX", readonly=True)
        if typ != "OK" or int(dat[0]) != len(entry["messages"]):
            sys.exit("index: %s has %r messages in Dovecot, %d generated" % (user, dat, len(entry["messages"])))
        typ, data = M.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (X-SOAK-ID)])")
        uids = {}
        for r in parse_fetch(data):
            if not r.literals:
                continue
            m = re.search(rb"X-Soak-Id: (\S+)", r.literals[0][1])
            ident = m.group(1).decode()
            uid = r.number(b"UID")
            if r.number(rb"RFC822\.SIZE") != entry["messages"][ident]["size"]:
                sys.exit("index: %s %s: Dovecot says RFC822.SIZE %s, file has %d" % (
                    user, ident, r.number(rb"RFC822\.SIZE"), entry["messages"][ident]["size"]))
            uids[uid] = ident
        typ, data = M.fetch("1:*", "(UID BODY.PEEK[])")
        for r in parse_fetch(data):
            if not r.literals:
                continue
            info = entry["messages"][uids[r.number(b"UID")]]
            if hashlib.sha256(r.literals[0][1]).hexdigest() != info["sha256"]:
                sys.exit("index: %s UID %s: Dovecot does not serve the generated bytes" % (user, r.number(b"UID")))
            checked += 1
        M.logout()
        entry["uids"] = {str(k): v for k, v in uids.items()}
    with open(os.path.join(a.work, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    log("index: %d messages served byte-identical by Dovecot directly" % checked)


def cmd_run(a):
    with open(os.path.join(a.work, "manifest.json")) as f:
        manifest = json.load(f)
    mailboxes = [Mailbox(u, e) for u, e in sorted(manifest["users"].items())]
    initial_bytes = sum(m["size"] for e in manifest["users"].values() for m in e["messages"].values())
    stats = Stats()
    stop = threading.Event()
    t0 = time.monotonic()
    interval = max(1.0, min(5.0, a.seconds / 40.0))
    sampler = Sampler(a, interval, stop, t0)
    sampler.sample("start")
    clients = [Client(i, mailboxes[i % len(mailboxes)], a, stats, stop, i < a.idle_clients)
               for i in range(a.clients)]
    for c in clients:
        c.start()
    deliverer = Deliverer(a, mailboxes, stats, stop) if a.delivery_rate > 0 else None
    if deliverer:
        deliverer.start()
    sampler.start()
    progress = max(10, min(60, a.seconds // 10))
    next_progress = progress
    while True:
        el = time.monotonic() - t0
        if el >= a.seconds or sampler.dead:
            break
        if el >= next_progress:
            with stats.lock:
                c = dict(stats.c)
                nerr = sum(stats.error_kinds.values())
            s = sampler.samples[-1]
            log("  %4ds  downloads %6d  %8.1f MB  errors %d  RSS redirector %s MB icapd %s MB  sessions %s" % (
                el, c.get("whole_clean", 0) + c.get("whole_infected", 0) + c.get("partial_unscanned", 0),
                c.get("bytes", 0) / 1e6, nerr, mb(s.get("redirector_vmrss_kb")), mb(s.get("icapd_vmrss_kb")),
                s.get("sessions_active", "?")))
            next_progress += progress
        time.sleep(min(1.0, max(0.05, a.seconds - el)))
    load_seconds = time.monotonic() - t0
    stop.set()
    log("  load stopped after %.0f s; waiting for the clients to finish their current command" % load_seconds)
    hung = []
    for c in clients:
        c.join(timeout=max(1.0, IO_TIMEOUT + 30 - (time.monotonic() - t0 - load_seconds)))
        if c.is_alive():
            hung.append(c.name)
    for name in hung:
        stats.error("timeout", "%s did not finish its command within %d s of the end" % (name, IO_TIMEOUT))
    if deliverer:
        deliverer.join(timeout=IO_TIMEOUT + 30)
    sampler.join(timeout=30)
    # Settle: no session, no scan, the event log written.
    settle0 = time.monotonic()
    while time.monotonic() - settle0 < 30:
        s = sampler.sample("settle")
        if (s.get("sessions_active") == 0 and s.get("redirector_scans_in_progress") == 0 and
                s.get("icapd_scans_in_progress") == 0 and s.get("event_log_queue") == 0):
            break
        time.sleep(0.5)
    time.sleep(1)
    final = {}
    for name, addr in (("redirector", a.redirector_metrics), ("icapd", a.icapd_metrics)):
        try:
            text = scrape(addr)
            with open(os.path.join(a.work, "metrics-%s.txt" % name), "w") as f:
                f.write(text)
            final[name] = text
        except OSError as e:
            stats.error("metrics", "final scrape of %s failed: %s" % (name, e))
    sampler.sample("after")
    keys = sorted({k for s in sampler.samples for k in s}, key=lambda k: (k != "t", k != "phase", k))
    with open(os.path.join(a.work, "samples.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(sampler.samples)
    results = {
        "seconds": a.seconds, "delivery_rate": a.delivery_rate, "load_seconds": load_seconds, "clients": a.clients, "idle_clients": a.idle_clients,
        "users": len(mailboxes), "messages_per_user": mailboxes[0].initial, "spill_threshold": a.spill_threshold,
        "sample_interval": interval, "counters": stats.c, "errors": stats.errors, "error_kinds": stats.error_kinds,
        "latency": stats.lat, "samples": sampler.samples, "dead": sampler.dead, "scrape_errors": sampler.scrape_errors,
        "final_metrics_ok": sorted(final), "mailbox_bytes": initial_bytes,
        "mailbox_counts": {m.user: m.count() for m in mailboxes},
    }
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(results, f)


def mb(kb):
    return "?" if kb is None else "%.1f" % (kb / 1024)


# --- report --------------------------------------------------------------------------------

def window_median(samples, key, lo, hi):
    v = [s[key] for s in samples if s.get("phase") in ("start", "load") and lo <= s["t"] <= hi and s.get(key)]
    return statistics.median(v) if v else None


def cmd_report(a):
    work = a.work
    with open(os.path.join(work, "results.json")) as f:
        R = json.load(f)
    stop = {}
    if os.path.exists(os.path.join(work, "stop.env")):
        with open(os.path.join(work, "stop.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                stop[k] = v
    ms = {}
    for name in ("redirector", "icapd"):
        p = os.path.join(work, "metrics-%s.txt" % name)
        ms[name] = parse_metrics(open(p).read()) if os.path.exists(p) else {}
    rm, im = ms["redirector"], ms["icapd"]
    c = R["counters"]
    g = lambda k: c.get(k, 0)  # noqa: E731
    checks = []  # (name, ok, detail)

    def check(name, ok, detail):
        checks.append((name, bool(ok), detail))

    dur = R["load_seconds"]
    whole = g("whole_clean") + g("whole_infected")
    downloads = whole + g("partial_unscanned")
    out = []
    P = out.append
    P("")
    P("imapav soak test: summary")
    P("  %-34s %.0f s (asked %d s), load average now %s" % ("duration", dur, R["seconds"],
                                                             " ".join(open("/proc/loadavg").read().split()[:3])))
    P("  %-34s %d (%d of them IDLE clients), %d users x %d messages (%.1f MB in the mailboxes)" % (
        "clients", R["clients"], R["idle_clients"], R["users"], R["messages_per_user"], R["mailbox_bytes"] / 1e6))
    P("  %-34s %d (%d LOGOUT, %d dropped without LOGOUT)" % ("IMAP sessions", g("sessions"), g("logouts"), g("drops")))
    delivered = g("delivered_direct") + g("delivered_redirector")
    P("  %-34s %d messages, %.1f MB, %d infected (%d to Dovecot directly, %d APPENDed through the redirector)" % (
        "new mail during the load", delivered, g("delivered_bytes") / 1e6, g("delivered_infected"),
        g("delivered_direct"), g("delivered_redirector")))
    P("  %-34s %s" % ("messages per mailbox at the end", "-".join(map(str, sorted(set(
        [min(R["mailbox_counts"].values()), max(R["mailbox_counts"].values())]))))))
    P("  downloads by kind:")
    for op, label in (("uid_peek", "UID FETCH (BODY.PEEK[])"), ("seq_peek", "FETCH n (BODY.PEEK[] RFC822.SIZE)"),
                      ("rfc822", "FETCH (RFC822), sets \\Seen"), ("batch", "batch FETCH 1:* / ranges / sets"),
                      ("partial", "partial: BODY.PEEK[]<0.%d> tiny msg" % PARTIAL)):
        P("    %-32s %7d clean %7d infected" % (label, g("whole_clean_" + op), g("whole_infected_" + op)))
    P("    %-32s %7d (%d batch commands)" % ("  whole messages, total", whole, g("batches")))
    P("    %-32s %7d (relayed unscanned, as documented)" % ("partial BODY.PEEK[]<0.%d>" % PARTIAL, g("partial_unscanned")))
    P("    %-32s %7d (%d while scanning, %d mid-literal)" % ("aborted mid-download", g("aborts_scan") + g("aborts_literal"),
                                                             g("aborts_scan"), g("aborts_literal")))
    P("    %-32s %7d (%d s idling, %d EXISTS heard)" % ("IDLE sessions", g("idle_sessions"), g("idle_seconds"),
                                                         g("idle_exists")))
    P("    %-32s %7d STORE -FLAGS, %d NOOP/STATUS" % ("other commands", g("op_unseen"), g("op_noop")))
    P("  %-34s %.1f MB, %.2f MB/s" % ("downloaded (message bytes)", g("bytes") / 1e6, g("bytes") / 1e6 / dur))
    P("  %-34s %.1f downloads/s (%.1f whole messages/s)" % ("rate", downloads / dur, whole / dur))
    nerr = sum(R["error_kinds"].values())
    P("  %-34s %d %s" % ("protocol errors", nerr, json.dumps(R["error_kinds"]) if nerr else "(target: 0)"))
    for e in R["errors"][:15]:
        P("      %s %s" % (e["kind"], e["text"]))
    check("no protocol errors", nerr == 0, "%d errors" % nerr)
    check("every checked download verified", g("ok_clean") == g("whole_clean") and g("ok_infected") == g("whole_infected"),
          "clean %d/%d byte-identical, infected %d/%d notices" % (g("ok_clean"), g("whole_clean"), g("ok_infected"),
                                                                 g("whole_infected")))
    check("load ran (whole downloads > 0, both kinds)", g("ok_clean") > 0 and g("ok_infected") > 0,
          "%d clean, %d infected" % (g("ok_clean"), g("ok_infected")))
    if R.get("delivery_rate"):
        check("new mail delivered and IDLE heard of it", delivered > 0 and (g("idle_exists") > 0 or not g("idle_sessions")),
              "%d delivered, %d EXISTS in IDLE" % (delivered, g("idle_exists")))

    # Latency.
    lat = R["latency"]
    P("  latency (s):                        p50      p99     (n)")
    for label, vals in (("client, single-message FETCH", [x[2] for x in lat]),
                        ("client, messages <= 256 KiB", [x[2] for x in lat if x[1] <= R["spill_threshold"]]),
                        ("client, messages > 256 KiB", [x[2] for x in lat if x[1] > R["spill_threshold"]])):
        if vals:
            P("    %-32s %7.3f  %7.3f  (%d)" % (label, percentile(vals, 0.5), percentile(vals, 0.99), len(vals)))
    for label, m, name in (("redirector scan (histogram)", rm, "imapav_redirector_scan_duration_seconds"),
                           ("icapd scan (histogram)", im, "imapav_icapd_scan_duration_seconds")):
        p50, p99 = histogram_quantile(m, name, 0.5), histogram_quantile(m, name, 0.99)
        n = metric(m, name + "_count")
        if p50 is not None:
            P("    %-32s %7.3f  %7.3f  (%d)" % (label, p50, p99, n))

    # Memory.
    samples = R["samples"]
    end_t = max([s["t"] for s in samples if s["phase"] in ("start", "load")] or [0])
    warm = min(60.0, 0.1 * end_t)
    base_lo, base_hi = warm, warm + 0.2 * end_t
    last_lo = 0.8 * end_t
    P("  memory (RSS, MB; %d samples every %.0f s; baseline: median of %.0f-%.0f s, after %.0f s warm-up;"
      % (len([s for s in samples if s["phase"] == "load"]), R["sample_interval"], base_lo, base_hi, warm))
    P("          end: median of the last 20%%, %.0f-%.0f s; after: once the load stopped)" % (last_lo, end_t))
    P("    %-26s %9s %9s %9s %9s %14s" % ("", "start", "baseline", "end", "after", "growth"))
    for name in ("redirector", "icapd"):
        for src, key in (("VmRSS", name + "_vmrss_kb"), ("metrics", name + "_metrics_rss_kb")):
            first = next((s.get(key) for s in samples if s.get(key)), None)
            after = next((s.get(key) for s in reversed(samples) if s["phase"] == "after" and s.get(key)), None)
            base = window_median(samples, key, base_lo, base_hi)
            end = window_median(samples, key, last_lo, end_t)
            f = lambda kb: "%9.1f" % (kb / 1024) if kb else "%9s" % "?"  # noqa: E731
            if base and end:
                gm, gp = (end - base) / 1024, 100.0 * (end - base) / base
                growth = "%+.1f MB %+.0f%%" % (gm, gp)
                if src == "VmRSS":
                    check("imapav-%s memory flat" % name,
                          not (gm > a.max_growth_mb and gp > a.max_growth_pct),
                          "%s (fails above %g MB and %g%%)" % (growth, a.max_growth_mb, a.max_growth_pct))
            else:
                growth = "?"
                if src == "VmRSS":
                    check("imapav-%s memory flat" % name, False, "not enough samples")
            P("    %-26s %s %s %s %s %14s" % ("imapav-%s %s" % (name, src), f(first), f(base), f(end), f(after), growth))

    # Metrics cross-check.
    P("  metrics cross-check (final /metrics against what the clients did):")
    if not rm or not im:
        check("final /metrics scraped", False, "missing: %s" % [n for n in ("redirector", "icapd") if not ms[n]])

    def rng_check(name, value, lo, hi, why):
        ok = lo <= value <= hi
        want = "%d" % lo if lo == hi else "%d..%d" % (lo, hi)
        check(name, ok, "%d, expected %s (%s)" % (value, want, why))

    aborts = g("aborts_scan") + g("aborts_literal")
    if rm:
        rng_check("redirector messages{clean}", metric(rm, "imapav_redirector_messages_total", outcome="clean"),
                  g("whole_clean"), g("whole_clean") + g("aborts_clean"), "clean whole downloads + aborted ones")
        rng_check("redirector messages{replaced}", metric(rm, "imapav_redirector_messages_total", outcome="replaced"),
                  g("whole_infected"), g("whole_infected") + g("aborts_infected"), "infected downloads + aborted ones")
        for o in ("withheld", "passed_unscanned", "failed_passed", "failed_dropped"):
            rng_check("redirector messages{%s}" % o, metric(rm, "imapav_redirector_messages_total", outcome=o), 0, 0, "none")
        rng_check("redirector unscanned{partial}", metric(rm, "imapav_redirector_unscanned_total", reason="partial"),
                  g("partial_unscanned"), g("partial_unscanned"), "partial fetches of messages >= %d bytes" % PARTIAL)
        rng_check("redirector unscanned{upload}", metric(rm, "imapav_redirector_unscanned_total", reason="upload"),
                  g("delivered_redirector"), g("delivered_redirector"), "APPENDs through the redirector")
        for r in ("section", "too_large"):
            rng_check("redirector unscanned{%s}" % r, metric(rm, "imapav_redirector_unscanned_total", reason=r), 0, 0, "none")
        rng_check("redirector spilled", metric(rm, "imapav_redirector_spilled_total"), g("whole_spill_size"),
                  g("whole_spill_size") + g("aborts_spill_size"), "downloads of messages > spill threshold (+ aborted)")
        rng_check("redirector sessions{imap}", metric(rm, "imapav_redirector_sessions_total", listener="imap"),
                  g("sessions"), g("sessions"), "client connections")
        rng_check("redirector sessions_active", metric(rm, "imapav_redirector_sessions_active"), 0, 0, "after the load")
        rng_check("redirector icap failures", metric(rm, "imapav_redirector_icap_failures_total"), 0, 0, "none")
        P("    redirector: scanned bytes %.1f MB, client bytes sent %.1f MB, icap requests %d, answered %d" % (
            metric(rm, "imapav_redirector_scanned_bytes_total") / 1e6,
            metric(rm, "imapav_redirector_client_bytes_total", direction="sent") / 1e6,
            metric(rm, "imapav_redirector_icap_requests_total"), metric(rm, "imapav_redirector_icap_answered_total")))
    if im:
        scans = metric(im, "imapav_icapd_scans_total")
        rng_check("icapd scans{clean}", metric(im, "imapav_icapd_scans_total", verdict="clean"),
                  metric(rm, "imapav_redirector_messages_total", outcome="clean"),
                  metric(rm, "imapav_redirector_messages_total", outcome="clean") + aborts,
                  "redirector clean (+ aborted downloads)")
        rng_check("icapd scans{infected}", metric(im, "imapav_icapd_scans_total", verdict="infected"),
                  metric(rm, "imapav_redirector_messages_total", outcome="replaced"),
                  metric(rm, "imapav_redirector_messages_total", outcome="replaced") + aborts,
                  "redirector replaced (+ aborted downloads)")
        rng_check("icapd scans{error}", metric(im, "imapav_icapd_scans_total", verdict="error"), 0, 0, "none")
        rng_check("icapd event_log_failed", metric(im, "imapav_icapd_event_log_failed_total"), 0, 0, "none")
        rng_check("icapd event_log_dropped", metric(im, "imapav_icapd_event_log_dropped_total"), 0, 0, "none")
        rng_check("icapd connections_rejected", metric(im, "imapav_icapd_connections_rejected_total"), 0, 0, "none")
        if stop.get("events_rows", "") != "":
            rng_check("icapd event log rows (after stop)", int(stop["events_rows"]), scans, scans, "icapd scans")
        P("    icapd: RESPMOD %d, scans %d, scanned %.1f MB, event log written %d" % (
            metric(im, "imapav_icapd_requests_total", method="RESPMOD"), scans,
            metric(im, "imapav_icapd_scanned_bytes_total") / 1e6, metric(im, "imapav_icapd_event_log_written_total")))

    # Shutdown.
    check("daemons alive at the end of the load", not R["dead"], "dead: %s" % (R["dead"] or "none"))
    for name in ("redirector", "icapd"):
        rc = stop.get(name + "_rc", "?")
        check("imapav-%s stops on SIGTERM with 0" % name, rc == "0",
              "exit %s after %s s" % (rc, stop.get(name + "_stop_s", "?")))
    for d in ("redirector_spill_left", "icapd_spill_left"):
        check("%s directory empty afterwards" % d.replace("_left", "").replace("_", " "), stop.get(d) == "0",
              "%s entries left" % stop.get(d, "?"))
    for name in ("redirector", "icapd"):
        n = stop.get(name + "_log_problems", "?")
        P("  imapav-%s log: %s lines, %s at level warning or above%s" % (
            name, stop.get(name + "_log_lines", "?"), n, (" (see %s)" % stop.get(name + "_log")) if n not in ("0", "?") else ""))

    width = max(len(n) for n, _, _ in checks)
    P("  checks:")
    for name, ok, detail in checks:
        P("    %-4s %-*s  %s" % ("ok" if ok else "FAIL", width, name, detail))
    failed = [n for n, ok, _ in checks if not ok]
    P("")
    P("soak: %s" % ("PASSED" if not failed else "FAILED (%d of %d checks): %s" % (len(failed), len(checks),
                                                                                 ", ".join(failed))))
    print("\n".join(out), flush=True)
    with open(os.path.join(work, "summary.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
    return 0 if not failed else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--work", required=True)
    g.add_argument("--users", type=int, default=8)
    g.add_argument("--messages", type=int, default=40)
    g.add_argument("--seed", type=int, default=1)
    i = sub.add_parser("index")
    i.add_argument("--work", required=True)
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--password", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--seconds", type=int, default=600)
    r.add_argument("--clients", type=int, default=32)
    r.add_argument("--idle-clients", type=int, default=2)
    r.add_argument("--spill-threshold", type=int, default=256 * 1024)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--dovecot-port", type=int, required=True)
    r.add_argument("--delivery-rate", type=float, default=1.0, help="new messages per second (0: none)")
    r.add_argument("--max-per-user", type=int, default=120)
    r.add_argument("--redirector-pid", type=int, required=True)
    r.add_argument("--icapd-pid", type=int, required=True)
    r.add_argument("--redirector-metrics", required=True)
    r.add_argument("--icapd-metrics", required=True)
    rp = sub.add_parser("report")
    rp.add_argument("--work", required=True)
    rp.add_argument("--max-growth-mb", type=float, default=10.0)
    rp.add_argument("--max-growth-pct", type=float, default=20.0)
    a = p.parse_args()
    if a.cmd == "gen":
        cmd_gen(a)
    elif a.cmd == "index":
        cmd_index(a)
    elif a.cmd == "run":
        cmd_run(a)
    else:
        sys.exit(cmd_report(a))


if __name__ == "__main__":
    main()
