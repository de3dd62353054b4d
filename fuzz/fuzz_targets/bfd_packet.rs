//! BFD Control packets from the network: decode must never panic, and whatever it accepts must
//! re-encode to the same mandatory section (Length aside) and, with a SHA1 authentication
//! section (Keyed or Meticulous Keyed SHA1, not just any 28-byte one), to the same 52 bytes its
//! digest covers; then feed a session without panicking, with
//! and without authentication configured (so the 6.7.4 checks see outside bytes too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use vipwarden::bfd::{
    decode, encode, encode_wire, is_sha1, AuthConfig, AuthType, Event, Key, RandomSource, Session,
    Timing,
};

struct Zero;
impl RandomSource for Zero {
    fn next_u32(&mut self) -> u32 {
        0
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = decode(data) else { return };
    let mut e = encode(&p);
    e[3] = data[3];
    assert_eq!(&e[..], &data[..24]);
    // Other Auth Types may be 28 bytes long too; only the SHA1 ones keep the whole section.
    if p.auth.is_some_and(|a| is_sha1(a.auth_type)) {
        assert_eq!(encode_wire(&p).bytes(), &data[..52]);
    }
    let t = Timing {
        desired_min_tx: Duration::from_millis(300),
        required_min_rx: Duration::from_millis(300),
        detect_mult: 3,
    };
    let now = Instant::now();
    let auth = |meticulous| AuthConfig {
        auth_type: if meticulous {
            AuthType::MeticulousKeyedSha1
        } else {
            AuthType::KeyedSha1
        },
        key_id: data.get(26).copied().unwrap_or(0),
        key: Key::new(b"fuzz").expect("key"),
    };
    for cfg in [None, Some(auth(false)), Some(auth(true))] {
        let (mut s, _) = Session::new(t, p.your_discr.max(1), now);
        if let Some(c) = cfg {
            s = s.with_auth(c, 0);
        }
        let _ = s.handle(Event::Packet(p), now, &mut Zero);
        let _ = s.handle(Event::Packet(p), now + Duration::from_millis(1), &mut Zero);
        let _ = s.handle(Event::TxTimer, now, &mut Zero);
        let _ = s.snapshot();
    }
});
