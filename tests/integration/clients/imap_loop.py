#!/usr/bin/env python3
"""A busy IMAP client for the integration tests (python imaplib): logs in once, then
downloads every message of INBOX again and again, one UID FETCH each, until --until FILE
exists (or 90 s have passed).

Each distinct body it receives is written once to OUT/<sha256>.eml. After every round
the number of rounds done is written to OUT.progress (replaced atomically), so a test can
wait for the client to make progress.

Prints one JSON object: {"rounds": N, "error": null or "...", "fetches": [[start, end,
uid, "sha256", bytes received, RFC822.SIZE], ...]} with start and end in unix seconds.
Exit code 0 when every fetch succeeded, 1 otherwise (the JSON says what it got so far)."""
import argparse
import hashlib
import imaplib
import json
import os
import re
import sys
import time

TIMEOUT = 30  # seconds for any one answer
MAX_SECONDS = 90  # a client nobody stops ends by itself


def write_progress(path, rounds):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(rounds))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="on 127.0.0.1")
    ap.add_argument("--login", required=True, metavar="USER:PASSWORD")
    ap.add_argument("--out", required=True, help="the bodies; OUT.progress counts the rounds")
    ap.add_argument("--until", required=True, metavar="FILE", help="stop once FILE exists")
    a = ap.parse_args()
    user, password = a.login.split(":", 1)
    progress = a.out + ".progress"

    os.makedirs(a.out, exist_ok=True)
    fetches = []
    rounds = 0
    error = None
    seen = set()
    try:
        m = imaplib.IMAP4("127.0.0.1", a.port, timeout=TIMEOUT)
        m.login(user, password)
        typ, _ = m.select("INBOX", readonly=True)
        if typ != "OK":
            raise RuntimeError("SELECT failed")
        typ, data = m.uid("SEARCH", None, "ALL")
        uids = [int(u) for u in data[0].split()] if data and data[0] else []
        if not uids:
            raise RuntimeError("empty mailbox")
        write_progress(progress, 0)
        deadline = time.time() + MAX_SECONDS
        while not os.path.exists(a.until) and time.time() < deadline:
            for uid in uids:
                start = time.time()
                typ, data = m.uid("FETCH", str(uid), "(UID RFC822.SIZE BODY.PEEK[])")
                end = time.time()
                if typ != "OK":
                    raise RuntimeError("FETCH %d: %s %r" % (uid, typ, data))
                parts = [p for p in data if isinstance(p, tuple)]
                if len(parts) != 1:
                    raise RuntimeError("FETCH %d: %d literals in %r" % (uid, len(parts), data))
                meta = parts[0][0].decode("ascii", "replace")
                got = re.search(r"UID (\d+)", meta)
                size = re.search(r"RFC822\.SIZE (\d+)", meta)
                if not got or int(got.group(1)) != uid or not size:
                    raise RuntimeError("FETCH %d: unexpected answer %r" % (uid, meta))
                body = parts[0][1]
                digest = hashlib.sha256(body).hexdigest()
                if digest not in seen:
                    with open(os.path.join(a.out, digest + ".eml"), "wb") as f:
                        f.write(body)
                    seen.add(digest)
                fetches.append([start, end, uid, digest, len(body), int(size.group(1))])
            rounds += 1
            write_progress(progress, rounds)
        m.logout()
    except Exception as e:  # reported in the JSON; the test prints it
        error = "%s: %s" % (type(e).__name__, e)
    print(json.dumps({"rounds": rounds, "error": error, "fetches": fetches}))
    sys.exit(0 if error is None else 1)


if __name__ == "__main__":
    main()
