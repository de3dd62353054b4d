#!/usr/bin/env python3
"""Minimal BGP router on loopback for testbed/bench-decisions.sh.

Accepts sessions on --port, answers OPEN (AS 65000, --hold seconds, IPv4 unicast, 4-octet AS),
sends KEEPALIVEs every hold/3, counts IPv4 NLRI announced minus withdrawn, and records the longest
silence from the daemon while Established. Also serves --service-port as a healthy TCP service for
the daemon's checks. Stops 2 s after --expect prefixes are in (to catch a freeze right after the
batch) or after --limit seconds, and writes a JSON summary to --out.
"""
import argparse
import json
import socket
import struct
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--service-port", type=int, required=True)
p.add_argument("--hold", type=int, default=9)
p.add_argument("--expect", type=int, required=True)
p.add_argument("--out", required=True)
p.add_argument("--limit", type=float, default=120)
a = p.parse_args()

start = time.monotonic()
lock = threading.Lock()
st = {"sessions": 0, "prefixes": 0, "notifications": 0, "max_gap_s": 0.0, "all_at_s": None}


def msg(kind, body=b""):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body


def open_msg():
    caps = bytes([1, 4, 0, 1, 0, 1, 65, 4]) + struct.pack("!I", 65000)
    params = bytes([2, len(caps)]) + caps
    return msg(1, struct.pack("!BHH4sB", 4, 65000, a.hold, bytes([192, 0, 2, 2]), len(params)) + params)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def count(b):
    n = i = 0
    while i < len(b):
        i += 1 + (b[i] + 7) // 8
        n += 1
    return n


def session(s):
    try:
        head = recv_exact(s, 19)  # the daemon's OPEN
        recv_exact(s, struct.unpack("!H", head[16:18])[0] - 19)
    except EOFError:
        return
    try:
        s.sendall(open_msg() + msg(4))
    except OSError:
        return

    def keepalives():
        while True:
            time.sleep(max(1, a.hold // 3))
            try:
                s.sendall(msg(4))
            except OSError:
                return

    threading.Thread(target=keepalives, daemon=True).start()
    last = time.monotonic()
    try:
        while True:
            head = recv_exact(s, 19)
            length, kind = struct.unpack("!HB", head[16:19])
            body = recv_exact(s, length - 19)
            now = time.monotonic()
            with lock:
                st["max_gap_s"] = max(st["max_gap_s"], now - last)
                last = now
                if kind == 2:
                    wl = struct.unpack("!H", body[:2])[0]
                    al = struct.unpack("!H", body[2 + wl:4 + wl])[0]
                    st["prefixes"] += count(body[4 + wl + al:]) - count(body[2:2 + wl])
                    if st["prefixes"] >= a.expect and st["all_at_s"] is None:
                        st["all_at_s"] = now - start
                elif kind == 3:
                    st["notifications"] += 1
    except (EOFError, OSError):
        return


def accept_forever(port, backlog, handle):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(backlog)
    while True:
        handle(ls.accept()[0])


def new_session(c):
    with lock:
        st["sessions"] += 1
    threading.Thread(target=session, args=(c,), daemon=True).start()


def bgp():
    accept_forever(a.port, 8, new_session)


def service():
    accept_forever(a.service_port, 1024, lambda c: c.close())


threading.Thread(target=bgp, daemon=True).start()
threading.Thread(target=service, daemon=True).start()
while time.monotonic() - start < a.limit:
    with lock:
        done = st["all_at_s"] is not None and time.monotonic() - start > st["all_at_s"] + 2
    if done:
        break
    time.sleep(0.05)
with lock:
    json.dump(st, open(a.out, "w"))
