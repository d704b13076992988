#!/usr/bin/env python3
"""IMAP clients that misbehave, for fault-injection tests. Prints JSON: whether the server
closed the connection, after how many seconds, and what was received (the tail).

  trickle          sends "a1 LOGIN ..." one byte every --interval seconds (slowloris)
  vanish-download  logs in, FETCHes message 1 and closes after --bytes bytes of it
  vanish-append    logs in, starts an APPEND of a --bytes literal, sends a tenth, closes"""
import argparse
import json
import socket
import sys
import time


def read_until(s, marker, limit=10.0):
    got = b""
    end = time.time() + limit
    while marker not in got and time.time() < end:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["trickle", "vanish-download", "vanish-append"], required=True)
    ap.add_argument("--user", default="bob")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--bytes", type=int, default=65536)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    start = time.time()
    got = read_until(s, b"\r\n")
    closed = False
    login = b"a1 LOGIN %s %s\r\n" % (a.user.encode(), a.password.encode())
    if a.mode == "trickle":
        s.settimeout(a.interval)
        for i in range(int(a.timeout / a.interval)):
            try:
                s.sendall(login[i % (len(login) - 2): i % (len(login) - 2) + 1])  # never the line end
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
    elif a.mode == "vanish-download":
        s.sendall(login + b"a2 SELECT INBOX\r\na3 FETCH 1 BODY.PEEK[]\r\n")
        while len(got) < a.bytes:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
    else:
        s.sendall(login)
        got += read_until(s, b"a1 ")
        s.sendall(b"a2 APPEND INBOX {%d}\r\n" % a.bytes)
        got += read_until(s, b"+ ")
        s.sendall(b"x" * (a.bytes // 10))
    s.close()
    json.dump({"closed": closed, "seconds": round(time.time() - start, 2), "bytes": len(got),
               "tail": got[-300:].decode("latin-1")}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
