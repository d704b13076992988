#!/usr/bin/env python3
"""An IMAP client that records exactly what it receives: LOGIN, SELECT INBOX, then one
command (FETCH 1 BODY.PEEK[] by default), reading until the server closes or --timeout.
Prints JSON: every literal announced ({N}) with the bytes that followed it, whether the
connection was closed by the server, the seconds waited, and the last lines received."""
import argparse
import json
import re
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="bob")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--command", default="FETCH 1 BODY.PEEK[]")
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    s.sendall(b"a1 LOGIN %s %s\r\na2 SELECT INBOX\r\na3 %s\r\n" % (a.user.encode(), a.password.encode(), a.command.encode()))
    got = b""
    start = time.time()
    closed = False
    s.settimeout(0.5)
    while time.time() - start < a.timeout:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        got += chunk
    literals = []
    pos = 0
    while True:
        m = re.compile(rb"\{(\d+)\}\r\n").search(got, pos)
        if not m:
            break
        n = int(m.group(1))
        following = len(got) - m.end()
        literals.append([n, min(n, following), following > n])  # announced, received, more data after it
        pos = m.end() + min(n, following)
    lines = got[pos:].split(b"\r\n")
    json.dump({"closed": closed, "seconds": round(time.time() - start, 2), "literals": literals,
               "tail": [l.decode("latin-1") for l in lines[-6:]], "bytes": len(got)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
