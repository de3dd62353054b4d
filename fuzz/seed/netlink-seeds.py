#!/usr/bin/env python3
"""Records real kernel netlink replies for the netlink fuzz target: rtnetlink dumps (links,
addresses, routes, rules, as doctor reads them) and sock_diag dumps of TCP sockets (listeners
with V6ONLY, established with tcp_info, as the signals read them). One file per datagram, named
by content hash.
    netlink-seeds.py CORPUS_DIR/netlink
Run it in a namespace of known content (netlink-seeds.sh does), not on a real host."""
import hashlib, os, socket, struct, sys

NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
n = 0

def dump(proto, kind, payload, seq):
    global n
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    s.bind((0, 0))
    s.settimeout(5)
    msg = struct.pack('=IHHII', 16 + len(payload), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + payload
    s.send(msg)
    for _ in range(200):  # bounded: a dump ends with NLMSG_DONE
        d = s.recv(65536)
        with open(os.path.join(out, hashlib.sha1(d).hexdigest()[:16]), 'wb') as f:
            f.write(d)
        n += 1
        kinds, at = [], 0
        while at + 16 <= len(d):
            ln, kind = struct.unpack('=IH', d[at:at + 6])
            kinds.append(kind)
            at += max(16, (ln + 3) & ~3)
        if 2 in kinds or 3 in kinds:  # NLMSG_ERROR, NLMSG_DONE
            break
    s.close()

# rtnetlink: RTM_GETLINK 18, RTM_GETADDR 22, RTM_GETROUTE 26, RTM_GETRULE 34.
for seq, (kind, fam) in enumerate([(18, 0), (22, 2), (22, 10), (26, 2), (26, 10), (34, 2), (34, 10)], 1):
    hdr = struct.pack('=BBHiII', fam, 0, 0, 0, 0, 0) if kind == 18 else struct.pack('=BBBBI', fam, 0, 0, 0, 0) if kind == 22 else struct.pack('=BBBBBBBBI', fam, 0, 0, 0, 0, 0, 0, 0, 0)
    dump(socket.NETLINK_ROUTE, kind, hdr, seq)
# sock_diag (NETLINK_SOCK_DIAG 4, SOCK_DIAG_BY_FAMILY 20): inet_diag_req_v2 for TCP, listeners
# (state 10) and every state with INET_DIAG_INFO (ext bit 1 << (2 - 1)).
# Some sockets to describe: a v4 and a v6-only listener, one established connection.
l4 = socket.socket(socket.AF_INET); l4.bind(('0.0.0.0', 80)); l4.listen(8)
l6 = socket.socket(socket.AF_INET6); l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
l6.bind(('::', 443)); l6.listen(8)
c = socket.create_connection(('192.0.2.1', 80)); a, _ = l4.accept()
c6 = socket.create_connection(('2001:db8::1', 443)); a6, _ = l6.accept()
for seq, (fam, ext, states) in enumerate([(2, 0, 1 << 10), (10, 0, 1 << 10), (2, 2, 0xfff), (10, 2, 0xfff)], 100):
    dump(4, 20, struct.pack('=BBBBI', fam, socket.IPPROTO_TCP, ext, 0, states) + bytes(48), seq)
print(n, 'datagrams')
