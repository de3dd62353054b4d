#!/usr/bin/env python3
"""Many short HTTP connections to ADDR:PORT; prints each node's share in percent.

Usage: ecmp_shares.py ADDR PORT COUNT

Each connection has a new source port, so a router hashing on L4
(fib_multipath_hash_policy=1) spreads them over its next hops by weight. The
lab's nginx answers "served by vw-nodeI". Prints "P1 P2 P3" (percent, one
decimal) and, on stderr, the counts and failures. Bounded: COUNT connections,
1 s timeout each.
"""

import re
import socket
import sys


def one(addr, port):
    with socket.create_connection((addr, port), timeout=1.0) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = b""
        while len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.search(rb"served by vw-node(\d+)", data)
    return int(m.group(1)) if m else None


def main():
    addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    counts = {1: 0, 2: 0, 3: 0}
    failed = 0
    for _ in range(count):
        try:
            n = one(addr, port)
        except OSError:
            n = None
        if n in counts:
            counts[n] += 1
        else:
            failed += 1
    done = sum(counts.values()) or 1
    print(" ".join(f"{100.0 * counts[i] / done:.1f}" for i in (1, 2, 3)))
    print(f"counts {counts[1]} {counts[2]} {counts[3]}, failed {failed}", file=sys.stderr)


if __name__ == "__main__":
    main()
