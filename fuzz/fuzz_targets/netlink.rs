//! Kernel netlink replies (sock_diag, rtnetlink) and server certificates into our hand-written
//! decoders: must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipwarden::doctor::{rtnl, x509};
use vipwarden::netlink::{attrs, decode_datagram};
use vipwarden::signals::sockdiag::{decode_socket, decode_sockets, v6only};

fuzz_target!(|data: &[u8]| {
    // As a datagram: framing, then every body through the socket decoder.
    let seq = data.first().copied().map_or(0, u32::from);
    for single in [false, true] {
        let mut msgs = Vec::new();
        let _ = decode_datagram(data, seq, single, &mut msgs);
        let _ = decode_sockets(&msgs);
        for m in &msgs {
            rtnl::decode_any(&m.body);
            let _ = v6only(&m.body);
        }
    }
    // As bodies, past the framing.
    let _ = decode_socket(data);
    let _ = v6only(data);
    rtnl::decode_any(data);
    let _ = attrs(data).count();
    if let Some(c) = x509::parse(data) {
        let _ = x509::utc(c.not_after);
    }
});
