#!/usr/bin/env python3
"""Hand-built messages from the RFCs' formats that the lab's routers do not send by themselves:
End-of-RIB markers (RFC 4724), ROUTE-REFRESH and its BoRR/EoRR subtypes (RFC 2918, 7313), an
OPEN with extended optional parameters (RFC 9072), a Cease with a shutdown communication
(RFC 9003), an ADD-PATH UPDATE (RFC 7911) and BFD packets with the auth sections of RFC 5880.
    rfc-seeds.py CORPUS_DIR"""
import hashlib, os, struct, sys

out = sys.argv[1]

def save(target, blob):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, hashlib.sha1(blob).hexdigest()[:16]), 'wb').write(blob)

def bgp(kind, body):
    return b'\xff' * 16 + struct.pack('>HB', 19 + len(body), kind) + body

def attr(flags, code, value):
    if len(value) > 255:
        return struct.pack('>BBH', flags | 0x10, code, len(value)) + value
    return struct.pack('>BBB', flags, code, len(value)) + value

# End-of-RIB: IPv4 unicast is an empty UPDATE; others an MP_UNREACH_NLRI with only AFI/SAFI.
eor4 = b'\x00\x00\x00\x00'
mp_unreach6 = attr(0x80, 15, struct.pack('>HB', 2, 1))
eor6 = b'\x00\x00' + struct.pack('>H', len(mp_unreach6)) + mp_unreach6
# ROUTE-REFRESH: AFI, subtype (0 normal, 1 BoRR, 2 EoRR), SAFI.
rr = [struct.pack('>HBB', 1, st, 1) for st in (0, 1, 2)] + [struct.pack('>HBB', 2, 0, 1)]
# OPEN, RFC 9072: Non-Ext OP Len 255, Non-Ext OP Type 255, then a two-octet length.
caps = (b'\x01\x04\x00\x01\x00\x01'          # multiprotocol IPv4 unicast
        + b'\x01\x04\x00\x02\x00\x01'        # multiprotocol IPv6 unicast
        + b'\x41\x04\x00\x00\xfd\xe9'        # four-octet AS 65001
        + b'\x45\x08\x00\x01\x01\x03\x00\x02\x01\x03'  # ADD-PATH both, v4 and v6
        + b'\x02\x00')                       # route refresh
param = b'\x02' + struct.pack('>H', len(caps)) + caps
open_ext = struct.pack('>BHH4s', 4, 23456, 9, bytes([192, 0, 2, 1])) + b'\xff\xff' + struct.pack('>H', len(param)) + param
open_plain = struct.pack('>BHH4sB', 4, 65001, 90, bytes([192, 0, 2, 1]), 2 + len(caps)) + b'\x02' + bytes([len(caps)]) + caps
# Cease / Administrative Shutdown with a UTF-8 shutdown communication (RFC 9003).
msg = 'maintenance: kernel upgrade, back at 14:00 UTC ✓'.encode()
cease = b'\x06\x02' + bytes([len(msg)]) + msg
# Hold timer expired, and an OPEN error (unsupported capability) with data.
hold = b'\x04\x00'
open_err = b'\x02\x07' + b'\x45\x04\x00\x01\x01\x03'
# UPDATE with ADD-PATH (path id before each prefix), four-octet AS_PATH, communities.
aspath = attr(0x40, 2, b'\x02\x02' + struct.pack('>II', 65001, 4200000000))
attrs = (attr(0x40, 1, b'\x00') + aspath + attr(0x40, 3, bytes([192, 0, 2, 1]))
         + attr(0x80, 4, struct.pack('>I', 100)) + attr(0xc0, 8, struct.pack('>HH', 65001, 100))
         + attr(0xc0, 32, struct.pack('>III', 65001, 1, 2)))
nlri_ap = struct.pack('>I', 7) + b'\x20' + bytes([203, 0, 113, 10]) + struct.pack('>I', 8) + b'\x18' + bytes([198, 51, 100])
upd_ap = b'\x00\x00' + struct.pack('>H', len(attrs)) + attrs + nlri_ap
mp_reach6 = attr(0x80, 14, struct.pack('>HBB', 2, 1, 16) + bytes.fromhex('20010db8000000000000000000000001') + b'\x00'
                 + b'\x80' + bytes.fromhex('20010db8001000000000000000000010'))
upd6 = b'\x00\x00' + struct.pack('>H', len(mp_reach6) + len(attrs)) + mp_reach6 + attrs

for body, kind in [(eor4, 2), (eor6, 2), (upd_ap, 2), (upd6, 2), (open_ext, 1), (open_plain, 1),
                   (cease, 3), (hold, 3), (open_err, 3)] + [(r, 5) for r in rr]:
    save('wire', bgp(kind, body))
    if kind == 2:
        save('rib_in', bytes([4]) + body)
save('rib_in', bytes([7]) + upd_ap)
save('wire', bgp(4, b'') + bgp(2, eor4) + bgp(3, cease))  # a stream of three

# BFD (RFC 5880 4.1): Up, detect mult 3, 300 ms; then with each auth section of 4.2-4.4.
def bfd(state, flags, auth=b''):
    a_bit = 0x04 if auth else 0
    return struct.pack('>BBBBIIIII', 0x20, (state << 6) | flags | a_bit, 3, 24 + len(auth),
                       0x11223344, 0x55667788, 300000, 300000, 0) + auth

save('bfd_packet', bfd(3, 0))
save('bfd_packet', bfd(1, 0x20))  # Down with Poll
save('bfd_packet', bfd(3, 0, struct.pack('>BBB', 1, 3 + 6, 1) + b'secret'))  # simple password
save('bfd_packet', bfd(3, 0, struct.pack('>BBBBI', 2, 24, 1, 0, 42) + bytes(16)))  # keyed MD5
save('bfd_packet', bfd(3, 0, struct.pack('>BBBBI', 5, 28, 1, 0, 42) + bytes(20)))  # met. SHA1
