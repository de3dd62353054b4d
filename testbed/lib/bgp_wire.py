#!/usr/bin/env python3
"""BGP UPDATEs on the wire, from a pcap that tcpdump is still writing (tcpdump -U -w).

    bgp_wire.py PCAP SRC_IP SINCE_US withdraw   first UPDATE from SRC_IP at or after SINCE_US
                                                that withdraws a route (IPv4 withdrawn routes or
                                                MP_UNREACH_NLRI)
    bgp_wire.py PCAP SRC_IP SINCE_US update     first UPDATE from SRC_IP at or after SINCE_US
    bgp_wire.py PCAP SRC_IP SINCE_US list       every UPDATE from SRC_IP at or after SINCE_US,
                                                a line each: "US withdraw|announce|empty"

The first two print the packet's capture time in microseconds since the epoch (the same clock as bash's
$EPOCHREALTIME), or nothing. The TCP stream from SRC_IP is reassembled in sequence order
(retransmissions skipped), so a message split over segments is dated by the segment that
completes it. Ethernet (veth) or Linux cooked captures; IPv4 and IPv6.
"""
import struct
import sys


def records(path):
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            end = "<"
        else:
            end = ">"
            magic = struct.unpack(">I", head[:4])[0]
        nano = magic == 0xA1B23C4D
        link = struct.unpack(end + "I", head[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack(end + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                return  # still being written
            us = sec * 1_000_000 + (frac // 1000 if nano else frac)
            yield us, link, data


def ip_payload(link, data):
    """(src, proto, payload) of an IP packet, or None."""
    if link == 1:  # Ethernet
        if len(data) < 14:
            return None
        etype, data = struct.unpack("!H", data[12:14])[0], data[14:]
    elif link == 113:  # Linux cooked
        if len(data) < 16:
            return None
        etype, data = struct.unpack("!H", data[14:16])[0], data[16:]
    else:
        return None
    if etype == 0x0800 and len(data) >= 20:
        ihl = (data[0] & 0x0F) * 4
        total = struct.unpack("!H", data[2:4])[0]
        src = ".".join(str(b) for b in data[12:16])
        return src, data[9], data[ihl:total]
    if etype == 0x86DD and len(data) >= 40:
        plen = struct.unpack("!H", data[4:6])[0]
        import ipaddress

        src = str(ipaddress.IPv6Address(data[8:24]))
        return src, data[6], data[40 : 40 + plen]
    return None


def attribute_types(msg):
    """The path attribute type codes of an UPDATE, in order (stops at a truncated one)."""
    if len(msg) < 23:
        return
    at = 21 + struct.unpack("!H", msg[19:21])[0]
    if len(msg) < at + 2:
        return
    end = min(len(msg), at + 2 + struct.unpack("!H", msg[at : at + 2])[0])
    at += 2
    while at + 3 <= end:
        flags, kind = msg[at], msg[at + 1]
        if flags & 0x10:
            if at + 4 > end:
                return
            alen, hdr = struct.unpack("!H", msg[at + 2 : at + 4])[0], 4
        else:
            alen, hdr = msg[at + 2], 3
        yield kind
        at += hdr + alen


def is_withdrawal(msg):
    """Whether an UPDATE withdraws routes (IPv4 withdrawn routes or MP_UNREACH_NLRI)."""
    if len(msg) >= 21 and struct.unpack("!H", msg[19:21])[0] > 0:
        return True
    return 15 in attribute_types(msg)


def announces(msg):
    """Whether an UPDATE carries reachable routes (IPv4 NLRI or MP_REACH_NLRI)."""
    if len(msg) < 23:
        return False
    at = 21 + struct.unpack("!H", msg[19:21])[0]
    if len(msg) >= at + 2 and at + 2 + struct.unpack("!H", msg[at : at + 2])[0] < len(msg):
        return True  # NLRI after the attributes
    return 14 in attribute_types(msg)


def main():
    path, src_ip, since, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    streams = {}  # (sport, dport) -> [next_seq, buffer]
    for us, link, data in records(path):
        p = ip_payload(link, data)
        if p is None or p[0] != src_ip or p[1] != 6 or len(p[2]) < 20:
            continue
        tcp = p[2]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        payload = tcp[(tcp[12] >> 4) * 4 :]
        if not payload:
            continue
        st = streams.setdefault((sport, dport), [seq, b""])
        if seq != st[0]:
            if (seq - st[0]) % (1 << 32) > (1 << 31):
                continue  # retransmission of what we have
            st[1] = b""  # a gap (capture loss or stream start): resynchronise at this segment
        st[0] = (seq + len(payload)) % (1 << 32)
        buf = st[1] + payload
        while len(buf) >= 19:
            if buf[:16] != b"\xff" * 16:
                buf = b""  # not at a message boundary: wait for the next gap to resync
                break
            mlen = struct.unpack("!H", buf[16:18])[0]
            if mlen < 19 or len(buf) < mlen:
                break
            msg, buf = buf[:mlen], buf[mlen:]
            if msg[18] == 2 and us >= since:
                if want == "list":
                    kind = "withdraw" if is_withdrawal(msg) else "announce" if announces(msg) else "empty"
                    print(us, kind)
                elif want == "update" or is_withdrawal(msg):
                    print(us)
                    return
        st[1] = buf


if __name__ == "__main__":
    main()
