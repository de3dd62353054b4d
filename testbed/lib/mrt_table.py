#!/usr/bin/env python3
"""Write an MRT TABLE_DUMP_V2 file (RFC 6396) for `gobgp mrt inject global`.

Usage: mrt_table.py OUT LOCAL_AS ROUTER_ID NEXT_HOP_V6 < prefixes
One prefix a line (IPv4 or IPv6). Each gets ORIGIN IGP and an empty AS_PATH
(gobgpd prepends its own AS towards eBGP peers); IPv4 routes carry NEXT_HOP
0.0.0.0 and IPv6 ones a full MP_REACH_NLRI with NEXT_HOP_V6 and the prefix
(gobgp 3.10 does not read RFC 6396 4.3.4's abbreviated form). One inject call
replaces thousands of CLI calls (~10 ms each).

The RIB records are written twice: gobgp 3.10's `mrt inject` exits before the
last few hundred records of its stream reach gobgpd, so the tail it loses is
the second copy of routes the first copy already delivered.
"""
import ipaddress
import struct
import sys

TABLE_DUMP_V2 = 13
PEER_INDEX_TABLE, RIB_IPV4_UNICAST, RIB_IPV6_UNICAST = 1, 2, 4


def record(subtype, body):
    return struct.pack("!IHHI", 0, TABLE_DUMP_V2, subtype, len(body)) + body


def attr(flags, code, value):
    return struct.pack("!BBB", flags, code, len(value)) + value


def main():
    out, local_as, router_id, nh6 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rid = ipaddress.IPv4Address(router_id).packed
    # One peer (ourselves): IPv4 address, 4-octet AS.
    peer_entry = struct.pack("!B", 0x02) + rid + rid + struct.pack("!I", local_as)
    peers = rid + struct.pack("!H", 0) + struct.pack("!H", 1) + peer_entry
    chunks = [record(PEER_INDEX_TABLE, peers)]
    base = attr(0x40, 1, b"\x00") + attr(0x40, 2, b"")
    nh4 = attr(0x40, 3, bytes(4))
    nh6 = ipaddress.IPv6Address(nh6).packed
    rib = []
    for seq, line in enumerate(sys.stdin.read().split()):
        net = ipaddress.ip_network(line)
        plen = net.prefixlen
        pbytes = net.network_address.packed[: (plen + 7) // 8]
        if net.version == 4:
            attrs = base + nh4
        else:
            mp = struct.pack("!HBB", 2, 1, 16) + nh6 + b"\x00" + bytes([plen]) + pbytes
            attrs = base + attr(0x80, 14, mp)
        entry = struct.pack("!HIH", 0, 0, len(attrs)) + attrs
        body = struct.pack("!IB", seq, plen) + pbytes + struct.pack("!H", 1) + entry
        rib.append(record(RIB_IPV4_UNICAST if net.version == 4 else RIB_IPV6_UNICAST, body))
    chunks += rib + rib
    with open(out, "wb") as f:
        f.write(b"".join(chunks))


if __name__ == "__main__":
    main()
