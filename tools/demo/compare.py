#!/usr/bin/env python3
"""Compares what a mail client got straight from Dovecot with what it got through
imapav-redirector, one line per message, and checks the demo's expectations:
clean messages arrive byte for byte, the infected one is replaced by a notice, and the
RFC822.SIZE the client was told matches what it then received.

usage: compare.py DIRECT_DIR DIRECT_JSON PROXIED_DIR PROXIED_JSON CURL_FILE CURL_UID INFECTED_UID
(the *_JSON files are the output of tests/integration/clients/imap_fetch.py).
Exit code 0 if everything is as expected, 1 otherwise."""
import email.header
import email.parser
import json
import os
import sys

NOTICE_LINES = 25


def load(path):
    with open(path, "rb") as f:
        return f.read()


def subject(raw):
    head = email.parser.BytesHeaderParser().parsebytes(raw)
    value = head.get("Subject", "")
    return str(email.header.make_header(email.header.decode_header(value)))


def is_notice(original, received):
    """The notice, not the original: marked by imapav, and no trace of the EICAR file."""
    return (received != original and b"X-Imapav-Status: infected" in received
            and b"EICAR-STANDARD" not in received and b"WDVPIVAlQEFQ" not in received)


def main():
    direct_dir, direct_json, proxied_dir, proxied_json, curl_file, curl_uid, infected_uid = sys.argv[1:8]
    curl_uid, infected_uid = int(curl_uid), int(infected_uid)
    direct_meta, proxied_meta = json.loads(load(direct_json)), json.loads(load(proxied_json))
    problems = []
    if direct_meta["uids"] != proxied_meta["uids"]:
        problems.append("UIDs differ: direct %s, through the redirector %s" % (direct_meta["uids"], proxied_meta["uids"]))

    for uid in direct_meta["uids"]:
        direct = load(os.path.join(direct_dir, "%d.eml" % uid))
        path = os.path.join(proxied_dir, "%d.eml" % uid)
        proxied = load(path) if os.path.exists(path) else b""
        told = proxied_meta["sizes"].get(str(uid))
        print("   UID %d  %-26s direct %5d bytes   via redirector %5d bytes   RFC822.SIZE told %s (%s)"
              % (uid, '"%s"' % subject(direct)[:24], len(direct), len(proxied), told,
                 "matches" if told == len(proxied) else "MISMATCH"))
        if told != len(proxied):
            problems.append("UID %d: RFC822.SIZE %s but %d bytes delivered" % (uid, told, len(proxied)))
        if uid != infected_uid:
            if proxied == direct:
                print("            -> identical")
            else:
                print("            -> UNEXPECTED: the clean message was changed")
                problems.append("UID %d: clean message not delivered unchanged" % uid)
            continue
        replaced = is_notice(direct, proxied)
        print("            -> %s; the client received instead (first %d lines):"
              % ("replaced by a notice" if replaced else "UNEXPECTED: not replaced", NOTICE_LINES))
        lines = proxied.decode("utf-8", "replace").split("\r\n")
        for line in lines[:NOTICE_LINES]:
            print("               | " + line)
        if len(lines) > NOTICE_LINES:
            print("               | ... (%d more lines)" % (len(lines) - NOTICE_LINES))
        if not replaced:
            problems.append("UID %d: the infected message was not replaced by a notice" % uid)

    via_curl = load(curl_file)
    ok = is_notice(load(os.path.join(direct_dir, "%d.eml" % curl_uid)), via_curl)
    print("   curl, UID %d: %d bytes, %s" % (curl_uid, len(via_curl),
                                             "the notice as well" if ok else "UNEXPECTED: not the notice"))
    if not ok:
        problems.append("curl: UID %d was not replaced by a notice" % curl_uid)

    for p in problems:
        print("   PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
