#!/usr/bin/env python3
"""Drives one IMAP session by hand, as clients do on the wire, to exercise what imaplib
does not: LOGIN with a synchronizing literal password, pipelined commands, IDLE/DONE.

Checks every step and prints one JSON object with what it saw; exit code 1 on failure."""
import argparse
import json
import re
import socket
import sys


class Conn:
    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed; had %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed inside a literal")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, tag):
        """Reads until the tagged completion of tag; returns (lines, literals)."""
        lines, literals = [], []
        while True:
            line = self.line()
            lines.append(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m and not line.startswith(tag + b" "):
                literals.append(self.exact(int(m.group(1))))
                continue
            if line.startswith(tag + b" "):
                return lines, literals

    def send(self, data):
        self.s.sendall(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--uid", type=int, default=1)
    ap.add_argument("--out", required=True, help="file for the fetched message")
    ap.add_argument("--expect-bye", action="store_true",
                    help="after the FETCH, only read what the server says next (a server that is stopping)")
    a = ap.parse_args()
    out = {}
    c = Conn(a.port, 30)
    out["greeting"] = c.line().decode()
    pw = a.password.encode()
    c.send(b"a1 LOGIN " + a.user.encode() + b" {%d}\r\n" % len(pw))
    cont = c.line()
    if not cont.startswith(b"+"):
        raise RuntimeError("no continuation for the literal: %r" % cont)
    c.send(pw + b"\r\n")
    lines, _ = c.response(b"a1")
    if not lines[-1].startswith(b"a1 OK"):
        raise RuntimeError("LOGIN failed: %r" % lines)
    # Three commands in one write: their answers must come back whole and in order.
    c.send(b"a2 SELECT INBOX\r\na3 UID FETCH %d (RFC822.SIZE BODY.PEEK[])\r\na4 NOOP\r\n" % a.uid)
    for tag in (b"a2", b"a3", b"a4"):
        lines, literals = c.response(tag)
        if not lines[-1].startswith(tag + b" OK"):
            raise RuntimeError("%s failed: %r" % (tag.decode(), lines[-1]))
        if tag == b"a3":
            if len(literals) != 1:
                raise RuntimeError("expected one literal, got %d" % len(literals))
            with open(a.out, "wb") as f:
                f.write(literals[0])
            size = re.search(rb"RFC822\.SIZE (\d+)", b"".join(lines))
            out["rfc822_size"] = int(size.group(1)) if size else None
            out["literal_size"] = len(literals[0])
            # Untagged "* OK" lines before the FETCH data: keep-alives while it was scanned.
            out["keepalives"] = sum(1 for l in lines if l.startswith(b"* OK imapav"))
    if a.expect_bye:
        try:
            out["after"] = c.line().decode().strip()
        except RuntimeError as e:
            out["after"] = "closed: %s" % e
        print(json.dumps(out))
        return
    c.send(b"a5 IDLE\r\n")
    cont = c.line()
    if not cont.startswith(b"+"):
        raise RuntimeError("IDLE not accepted: %r" % cont)
    c.send(b"DONE\r\n")
    lines, _ = c.response(b"a5")
    out["idle"] = lines[-1].decode().strip()
    c.send(b"a6 COMPRESS DEFLATE\r\n")
    lines, _ = c.response(b"a6")
    out["compress"] = lines[-1].decode().strip()
    c.send(b"a7 LOGOUT\r\n")
    lines, _ = c.response(b"a7")
    out["logout"] = lines[-1].decode().strip()
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print("imap_session: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
