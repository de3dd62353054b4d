//! Kernel netlink replies and broadcasts (sock_diag, its TCP destroy groups, rtnetlink) into our hand-written decoders: must never panic
//! or hang. (Certificates have their own target, x509.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipwarden::sys::rtnl;
use vipwarden::sys::netlink::{attrs, decode_datagram};
use vipwarden::signals::sockdiag::{decode_socket, decode_sockets, destroyed_sockets, v6only};

fuzz_target!(|data: &[u8]| {
    // As a datagram: framing, then every body through the socket decoder.
    // The reply's sequence number is the first message's, so recorded replies decode; mutations
    // of later messages' numbers exercise the skip path.
    let seq = data
        .get(8..12)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    for single in [false, true] {
        let mut msgs = Vec::new();
        let _ = decode_datagram(data, seq, single, &mut msgs);
        let _ = decode_sockets(&msgs);
        for m in &msgs {
            rtnl::decode_any(&m.body);
            let _ = v6only(&m.body);
        }
    }
    // As a socket-destroy broadcast (the listener check's wake-up).
    let _ = destroyed_sockets(data);
    // As bodies, past the framing.
    let _ = decode_socket(data);
    let _ = v6only(data);
    rtnl::decode_any(data);
    let _ = attrs(data).count();
});
