//! Peer bytes into our framer and every parser: must never panic or hang.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use vipwarden::bgp::rib_in::{DecodeCx, RxParams};
use vipwarden::bgp::wire::{self, BgpCodec};

fuzz_target!(|data: &[u8]| {
    let cx = DecodeCx::keep_all(RxParams::FOUR_OCTET_AS);
    // As a stream: frame, then parse each frame (UPDATEs through the one UPDATE decoder).
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = BgpCodec.decode(&mut buf) {
        match wire::parse(&frame, &cx) {
            Ok(wire::Message::Notification(n)) => {
                let _ = n.to_string();
            }
            Ok(wire::Message::Update(u)) => {
                for e in &u.errors {
                    let _ = (e.to_string(), e.to_bgp_error());
                }
            }
            _ => {}
        }
    }
    // As bodies: each parser directly, past the framer's length checks.
    let _ = wire::parse_open(data);
    let _ = wire::parse_route_refresh(data);
    if let Ok(n) = wire::parse_notification(data) {
        let _ = (n.to_string(), n.shutdown_message());
    }
});
