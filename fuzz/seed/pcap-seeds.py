#!/usr/bin/env python3
"""Cuts fuzz seeds out of lab pcaps (capture-lab.sh): every BGP message of every TCP stream
(reassembled in sequence order) and every BFD control packet, one file each, named by content
hash so duplicates collapse.
    pcap-seeds.py CORPUS_DIR PCAP...
writes CORPUS_DIR/wire/ (whole messages, header included), CORPUS_DIR/rib_in/ (UPDATE bodies
behind a mode byte: bit 2 four-octet AS, as every lab router negotiates) and
CORPUS_DIR/bfd_packet/."""
import hashlib, os, struct, sys

def packets(path):
    data = open(path, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    linktype = struct.unpack(endian + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + 'IIII', data[off:off + 16])
        yield linktype, data[off + 16:off + 16 + incl]
        off += 16 + incl

def ip_payload(linktype, frame):
    if linktype == 113:  # Linux cooked (SLL)
        proto, frame = struct.unpack('>H', frame[14:16])[0], frame[16:]
    elif linktype == 276:  # SLL2
        proto, frame = struct.unpack('>H', frame[0:2])[0], frame[20:]
    elif linktype == 1:
        proto, frame = struct.unpack('>H', frame[12:14])[0], frame[14:]
    else:
        return None
    if proto == 0x0800:
        ihl = (frame[0] & 15) * 4
        return frame[9], frame[12:16], frame[16:20], frame[ihl:]
    if proto == 0x86dd:
        return frame[6], frame[8:24], frame[24:40], frame[40:]
    return None

def save(d, blob):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()[:16]), 'wb') as f:
        f.write(blob)

def main():
    out, pcaps = sys.argv[1], sys.argv[2:]
    counts = {}
    for p in pcaps:
        streams = {}
        for lt, frame in packets(p):
            r = ip_payload(lt, frame)
            if r is None:
                continue
            proto, src, dst, l4 = r
            if proto == 6 and len(l4) >= 20:
                sport, dport, seq = struct.unpack('>HHI', l4[:8])
                payload = l4[(l4[12] >> 4) * 4:]
                if payload:
                    streams.setdefault((src, sport, dst, dport), {})[seq] = payload
            elif proto == 17 and len(l4) >= 8 and struct.unpack('>H', l4[2:4])[0] == 3784:
                save(os.path.join(out, 'bfd_packet'), l4[8:])
                counts['bfd'] = counts.get('bfd', 0) + 1
        for segs in streams.values():
            # In sequence order; retransmitted bytes are trimmed, a gap ends the stream.
            buf, nxt = b'', None
            for seq in sorted(segs):
                s = segs[seq]
                if nxt is not None:
                    if seq > nxt:
                        break
                    s = s[nxt - seq:]
                buf += s
                nxt = (seq if nxt is None else nxt) + len(s)
            while len(buf) >= 19:
                ln = struct.unpack('>H', buf[16:18])[0]
                if ln < 19 or len(buf) < ln:
                    break
                msg, buf = buf[:ln], buf[ln:]
                save(os.path.join(out, 'wire'), msg)
                counts['bgp type %d' % msg[18]] = counts.get('bgp type %d' % msg[18], 0) + 1
                if msg[18] == 2:
                    save(os.path.join(out, 'rib_in'), bytes([4]) + msg[19:])
    print(counts)

main()
