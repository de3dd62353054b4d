#!/usr/bin/env python3
"""Watch one prefix at BIRD through its control socket, every INTERVAL_MS.

Usage: route_watch.py BIRD_CTL PREFIX INTERVAL_MS DURATION_S

Keeps one connection to BIRD's CLI socket (no birdc process per look, so a
look costs well under a millisecond) and prints a line on every change, with
epoch milliseconds taken right after the answer:
  up MS        the prefix is in BIRD's table
  gone MS      it is not
Exits after DURATION_S seconds (bounded) or when BIRD goes away.
"""
import re
import socket
import sys
import time

END = re.compile(rb"^\d{4} ", re.M)


def ask(sock, cmd):
    sock.sendall(cmd)
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("BIRD closed the socket")
        buf += chunk
        # The reply ends with a line "DDDD text" (a space after the code).
        if END.search(buf):
            return buf


def main():
    ctl, prefix, interval_ms, duration_s = sys.argv[1:5]
    interval = int(interval_ms) / 1000.0
    deadline = time.time() + float(duration_s)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(ctl)
    sock.recv(4096)  # "0001 BIRD x.y ready."
    cmd = ("show route %s\n" % prefix).encode()
    # A route line is "1007-PREFIX ..." or, continuing the same reply code, " PREFIX ..."; the
    # "Network not found" answer does not name the prefix.
    route_line = re.compile(rb"^(?:\d{4}-| ?)" + re.escape(prefix.encode()) + rb"\s", re.M)
    state = None
    nxt = time.time()
    while time.time() < deadline:
        reply = ask(sock, cmd)
        t = int(time.time() * 1000)
        present = route_line.search(reply) is not None
        if present != state:
            state = present
            print("%s %d" % ("up" if present else "gone", t), flush=True)
        nxt += interval
        pause = nxt - time.time()
        if pause > 0:
            time.sleep(pause)
        else:
            nxt = time.time()


if __name__ == "__main__":
    try:
        main()
    except (ConnectionError, OSError) as e:
        print("error %s" % e, file=sys.stderr)
        sys.exit(1)
