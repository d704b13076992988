#!/usr/bin/env python3
"""A mail server that fails in the middle of a FETCH literal, for fault-injection tests.
It speaks just enough IMAP4rev1 for a LOGIN, SELECT and FETCH of message 1 (SIZE bytes),
then, per --mode: die (sends half of the literal and closes the connection) or stall
(sends half and then nothing, keeping the connection open)."""
import argparse
import socket
import threading
import time


def handle(conn, mode, size):
    f = conn.makefile("rb")
    try:
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
        while True:
            line = f.readline(8192)
            if not line:
                return
            parts = line.split(b" ", 2)
            tag = parts[0]
            cmd = parts[1].upper().strip() if len(parts) > 1 else b""
            if cmd == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            elif cmd == b"SELECT" or cmd == b"EXAMINE":
                conn.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n" + tag + b" OK [READ-WRITE] done\r\n")
            elif cmd in (b"FETCH", b"UID"):
                body = (b"Subject: half\r\n\r\n" + b"x" * size)[:size]
                conn.sendall(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % size + body[: size // 2])
                if mode == "die":
                    return
                time.sleep(3600)
            elif cmd == b"LOGOUT":
                conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                return
            else:  # LOGIN, NOOP, ...
                conn.sendall(tag + b" OK done\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["die", "stall"], required=True)
    ap.add_argument("--size", type=int, default=100000)
    a = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn, a.mode, a.size), daemon=True).start()


if __name__ == "__main__":
    main()
