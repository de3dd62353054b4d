//! The UPDATE decoder (src/bgp/rib_in): any UPDATE body, with any negotiated ADD-PATH and
//! AS-width combination (taken from the first byte), decodes to routes and typed outcomes, and
//! a session reset leaves nothing usable behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipwarden::bgp::rib_in::{decode_update, AttrError, DecodeCx, RibInUpdate, RxParams};

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
    let u = decode_update(body, &DecodeCx { rx, keep: &keep });
    let r = &u.routes;
    assert!(r.announced.len() + r.withdrawn.len() <= body.len());
    for e in &u.errors {
        let _ = e.to_string();
    }
    if let Some(reset) = u.session_reset() {
        assert!(matches!(u.errors.last(), Some(AttrError::SessionReset { .. })));
        assert!(reset.to_bgp_error().is_some());
        assert_eq!(u.routes, RibInUpdate::default());
    }
});
