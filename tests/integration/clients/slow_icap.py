#!/usr/bin/env python3
"""A deliberately slow or broken ICAP server for tests: answers OPTIONS at once and every
RESPMOD after --delay seconds with what --mode says: 204 (a slow scan), garbage (bytes that
are not ICAP), truncated (a 200 whose body ends early) or close (the connection closes, as
if the server died mid-scan). It speaks just enough ICAP for the c-icap client library."""
import argparse
import os
import socket
import threading
import time


def answer(conn, mode):
    if mode == "garbage":
        conn.sendall(b"HTTP/9.9 999 \x00\xff not icap\r\nX: " + os.urandom(300) + b"\r\n\r\n")
        raise ConnectionAbortedError
    if mode == "truncated":
        hdr = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        conn.sendall(b"ICAP/1.0 200 OK\r\nISTag: \"slow-1\"\r\nEncapsulated: res-hdr=0, res-body=%d\r\n\r\n"
                     % len(hdr) + hdr + b"3e8\r\n" + b"x" * 100)
        raise ConnectionAbortedError
    if mode == "close":
        raise ConnectionAbortedError
    conn.sendall(b"ICAP/1.0 204 No Content\r\nISTag: \"slow-1\"\r\n\r\n")


def handle(conn, delay, mode):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            method = head.split(b" ", 1)[0]
            enc = [l for l in head.split(b"\r\n") if l.lower().startswith(b"encapsulated:")]
            enc = enc[0].split(b":", 1)[1].decode() if enc else "null-body=0"
            parts = dict(p.strip().split("=") for p in enc.split(","))
            if method == b"OPTIONS":
                conn.sendall(b"ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nISTag: \"slow-1\"\r\n"
                             b"Max-Connections: 100\r\nOptions-TTL: 3600\r\nAllow: 204\r\n"
                             b"Encapsulated: null-body=0\r\n\r\n")
                continue
            # Skip the encapsulated HTTP heads, then the chunked body up to the last chunk.
            heads = int(parts.get("res-body", parts.get("req-body", parts.get("null-body", "0"))))
            while len(buf) < heads:
                buf += conn.recv(65536)
            buf = buf[heads:]
            if "null-body" not in parts:
                while b"\r\n0\r\n\r\n" not in b"\r\n" + buf and not buf.startswith(b"0\r\n\r\n"):
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                end = buf.find(b"0\r\n\r\n") if buf.startswith(b"0\r\n\r\n") else buf.find(b"\r\n0\r\n\r\n") + 2
                buf = buf[end + 5:]
            time.sleep(delay)
            answer(conn, mode)
    except (ConnectionAbortedError, OSError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=3)
    ap.add_argument("--mode", choices=["204", "garbage", "truncated", "close"], default="204")
    a = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn, a.delay, a.mode), daemon=True).start()


if __name__ == "__main__":
    main()
