//! Received-route parser (src/bgp/rib_in.rs): any UPDATE body, with any negotiated ADD-PATH and
//! AS-width combination (taken from the first byte), gives a result or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipwarden::bgp::rib_in::{parse_update, RxParams};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let rx = RxParams {
        add_path_v4: mode & 1 != 0,
        add_path_v6: mode & 2 != 0,
        four_octet_as: mode & 4 != 0,
    };
    // Keep every other prefix so both the stored and the counted paths are exercised.
    let keep = |p: &vipwarden::route::Prefix| p.len() % 2 == 0;
    if let Ok(u) = parse_update(body, &rx, &keep) {
        assert!(u.announced.len() + u.withdrawn.len() <= body.len());
    }
});
