//! BFD Control packets from the network: decode must never panic, and whatever it accepts must
//! re-encode to the same mandatory section (Length aside), then feed a session without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use vipwarden::bfd::{decode, encode, Event, RandomSource, Session, Timing};

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
    let t = Timing {
        desired_min_tx: Duration::from_millis(300),
        required_min_rx: Duration::from_millis(300),
        detect_mult: 3,
    };
    let now = Instant::now();
    let (mut s, _) = Session::new(t, p.your_discr.max(1), now);
    let _ = s.handle(Event::Packet(p), now, &mut Zero);
    let _ = s.handle(Event::TxTimer, now, &mut Zero);
    let _ = s.snapshot();
});
