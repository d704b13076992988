#!/usr/bin/env python3
"""A real IMAP client for the integration tests (python imaplib): logs in, selects a
mailbox, downloads every message and writes each one to OUT/<uid>.eml.

Prints one JSON object: {"uids": [...], "sizes": {uid: RFC822.SIZE}, "capabilities": [...]}.
Exit code 0 on success, 1 with a message on stderr otherwise."""
import argparse
import imaplib
import json
import os
import re
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--security", choices=["none", "starttls", "tls"], default="none")
    ap.add_argument("--cafile")
    ap.add_argument("--auth", choices=["login", "plain"], default="login")
    ap.add_argument("--mailbox", default="INBOX")
    ap.add_argument("--fetch", default="BODY.PEEK[]", help="the FETCH item to download")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--allow-no", action="store_true",
                    help="a FETCH answered NO is reported under \"refused\" instead of failing")
    ap.add_argument("--batch", action="store_true", help="one FETCH 1:* for all messages")
    a = ap.parse_args()

    context = None
    if a.security != "none":
        context = ssl.create_default_context(cafile=a.cafile)
    if a.security == "tls":
        m = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=context, timeout=a.timeout)
    else:
        m = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
        if a.security == "starttls":
            m.starttls(ssl_context=context)
    if a.auth == "plain":
        m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (a.user, a.password)).encode())
    else:
        m.login(a.user, a.password)
    caps = list(m.capabilities)
    typ, _ = m.select(a.mailbox, readonly=True)
    if typ != "OK":
        raise SystemExit("SELECT failed")
    typ, data = m.uid("SEARCH", None, "ALL")
    uids = [int(u) for u in data[0].split()] if data and data[0] else []
    sizes = {}
    refused = {}
    os.makedirs(a.out, exist_ok=True)
    batches = [",".join(str(u) for u in uids)] if a.batch and uids else [str(u) for u in uids]
    for which in batches:
        typ, data = m.uid("FETCH", which, "(UID RFC822.SIZE %s)" % a.fetch)
        if typ == "NO" and a.allow_no:
            refused[which] = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            # imaplib keeps the FETCH data that came before a NO aside.
            _, data = m.response("FETCH")
            data = [d for d in (data or []) if d is not None]
        elif typ != "OK":
            raise SystemExit("FETCH %s failed: %r" % (which, data))
        for part in data:
            if isinstance(part, tuple):
                meta = part[0].decode("ascii", "replace")
                uid = int(re.search(r"UID (\d+)", meta).group(1))
                size = re.search(r"RFC822\.SIZE (\d+)", meta)
                if size:
                    sizes[uid] = int(size.group(1))
                with open(os.path.join(a.out, "%d.eml" % uid), "wb") as f:
                    f.write(part[1])
    m.logout()
    print(json.dumps({"uids": uids, "sizes": sizes, "capabilities": caps, "refused": refused}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test prints this
        print("imap_fetch: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
