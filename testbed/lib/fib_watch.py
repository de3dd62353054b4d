#!/usr/bin/env python3
"""Watch one IPv4 prefix in the kernel FIB of the namespace it runs in (run it with
`ip netns exec NS`): the route a router such as FRR's zebra installed from BGP.

Usage: fib_watch.py PREFIX INTERVAL_MS DURATION_S

Listens to the kernel's route notifications (RTNLGRP_IPV4_ROUTE), so a change is seen when the
router removes the route, not at the next poll; a full dump every INTERVAL_MS as well, in case a
notification was lost (ENOBUFS). Prints a line on every change, in route_watch.py's format, with
epoch milliseconds taken right after the message was read:
  up MS        the prefix is in the main table
  gone MS      it is not
Exits after DURATION_S seconds (bounded).
"""
import ipaddress
import select
import socket
import struct
import sys
import time

RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTA_DST, RTA_TABLE = 1, 15
RT_TABLE_MAIN = 254
RTMGRP_IPV4_ROUTE = 0x40


def routes(buf):
    """Yields (msg_type, dst_bytes, dst_len, table) for each route message in buf."""
    off = 0
    while off + 16 <= len(buf):
        length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if length < 16:
            break
        body = buf[off + 16:off + length]
        off += (length + 3) & ~3
        if mtype not in (RTM_NEWROUTE, RTM_DELROUTE) or len(body) < 12:
            yield mtype, None, 0, 0
            continue
        family, dst_len, _src_len, _tos, table = struct.unpack_from("=BBBBB", body, 0)
        if family != socket.AF_INET:
            continue
        dst, a = b"\0\0\0\0", 12
        while a + 4 <= len(body):
            alen, atype = struct.unpack_from("=HH", body, a)
            if alen < 4:
                break
            val = body[a + 4:a + alen]
            if atype == RTA_DST:
                dst = val
            elif atype == RTA_TABLE and len(val) == 4:
                table = struct.unpack("=I", val)[0]
            a += (alen + 3) & ~3
        yield mtype, dst, dst_len, table


def main():
    prefix, interval_ms, duration_s = sys.argv[1:4]
    net = ipaddress.IPv4Network(prefix)
    want = (net.network_address.packed, net.prefixlen)
    interval = int(interval_ms) / 1000.0
    deadline = time.time() + float(duration_s)

    events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    events.bind((0, RTMGRP_IPV4_ROUTE))
    query = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    query.bind((0, 0))
    seq = 0

    def matches(dst, dst_len, table):
        return table == RT_TABLE_MAIN and (dst, dst_len) == want

    def dump():
        nonlocal seq
        seq += 1
        rtmsg = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        hdr = struct.pack("=IHHII", 16 + len(rtmsg), RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        query.send(hdr + rtmsg)
        present = False
        while True:
            buf = query.recv(1 << 16)
            done = False
            for mtype, dst, dst_len, table in routes(buf):
                if mtype in (NLMSG_DONE, NLMSG_ERROR):
                    done = True
                elif mtype == RTM_NEWROUTE and matches(dst, dst_len, table):
                    present = True
            if done:
                return present

    state = None

    def report(present):
        nonlocal state
        if present != state:
            state = present
            print("%s %d" % ("up" if present else "gone", int(time.time() * 1000)), flush=True)

    report(dump())
    nxt = time.time() + interval
    while time.time() < deadline:
        ready, _, _ = select.select([events], [], [], max(0.0, nxt - time.time()))
        if ready:
            try:
                buf = events.recv(1 << 20)
            except OSError:  # ENOBUFS: notifications lost; the dump below says the truth
                report(dump())
                continue
            for mtype, dst, dst_len, table in routes(buf):
                if dst is not None and matches(dst, dst_len, table):
                    report(mtype == RTM_NEWROUTE)
        if time.time() >= nxt:
            report(dump())
            nxt = time.time() + interval


if __name__ == "__main__":
    main()
