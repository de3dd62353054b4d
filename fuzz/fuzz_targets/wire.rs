//! Peer bytes into our framer and every parser: must never panic or hang.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use vipwarden::bgp::wire::{self, BgpCodec};

fuzz_target!(|data: &[u8]| {
    // As a stream: frame, then parse each frame.
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = BgpCodec.decode(&mut buf) {
        if let Ok(wire::Message::Notification(n)) = wire::parse(&frame) {
            let _ = n.to_string();
        }
    }
    // As bodies: each parser directly, past the framer's length checks.
    let _ = wire::parse_open(data);
    let _ = wire::parse_update(data);
    let _ = wire::parse_route_refresh(data);
    if let Ok(n) = wire::parse_notification(data) {
        let _ = (n.to_string(), n.shutdown_message());
    }
});
