//! Codec checks, and two `Session`s talking to each other in virtual time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::packet::*;
use super::session::*;

fn good() -> Packet {
    Packet {
        diag: Diag::None,
        state: State::Up,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: 7,
        your_discr: 9,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
    }
}

#[test]
fn encode_layout_matches_rfc() {
    let mut p = good();
    p.poll = true;
    p.diag = Diag::ControlDetectionTimeExpired;
    let b = encode(&p);
    assert_eq!(b[0], 0x21, "version 1, diag 1");
    assert_eq!(b[1], 0xe0, "state Up (3) << 6 | P");
    assert_eq!(b[2], 3);
    assert_eq!(b[3], 24);
    assert_eq!(&b[4..8], &[0, 0, 0, 7]);
    assert_eq!(&b[8..12], &[0, 0, 0, 9]);
    assert_eq!(&b[12..16], &300_000u32.to_be_bytes());
    assert_eq!(decode(&b), Ok(p));
}

#[test]
fn every_reception_check_has_its_error() {
    let b = encode(&good());
    let with = |f: &dyn Fn(&mut [u8; 24])| {
        let mut x = b;
        f(&mut x);
        decode(&x)
    };
    assert_eq!(decode(&b[..23]), Err(RxError::Truncated { got: 23 }));
    assert_eq!(decode(&[]), Err(RxError::Truncated { got: 0 }));
    assert_eq!(
        with(&|x| x[0] = 0x00),
        Err(RxError::BadVersion { version: 0 })
    );
    assert_eq!(decode(&[0x40]), Err(RxError::BadVersion { version: 2 }));
    assert_eq!(
        with(&|x| x[3] = 20),
        Err(RxError::LengthTooSmall { length: 20 })
    );
    assert_eq!(
        with(&|x| x[3] = 30),
        Err(RxError::LengthExceedsPayload {
            length: 30,
            payload: 24
        })
    );
    assert_eq!(with(&|x| x[2] = 0), Err(RxError::DetectMultZero));
    assert_eq!(with(&|x| x[1] |= 1), Err(RxError::Multipoint));
    assert_eq!(with(&|x| x[4..8].fill(0)), Err(RxError::MyDiscrZero));
    assert_eq!(
        with(&|x| x[8..12].fill(0)),
        Err(RxError::YourDiscrZeroWhileUp { state: State::Up })
    );
    // A bit: length must allow an auth section, then it is refused (no auth configured).
    assert_eq!(
        with(&|x| x[1] |= 4),
        Err(RxError::LengthTooSmall { length: 24 })
    );
    let mut long = b.to_vec();
    long.extend_from_slice(&[1, 2, 0]);
    long[1] |= 4;
    long[3] = 27;
    assert_eq!(decode(&long), Err(RxError::AuthNotConfigured));
    // Your discriminator 0 is fine in Down.
    let mut d = good();
    d.state = State::Down;
    d.your_discr = 0;
    assert_eq!(decode(&encode(&d)), Ok(d));
    // Trailing bytes beyond Length are ignored.
    let mut t = b.to_vec();
    t.extend_from_slice(&[0xff; 8]);
    assert_eq!(decode(&t), Ok(good()));
    for l in RxError::LABELS {
        assert!(!l.is_empty());
    }
}

fn arb_packet() -> impl Strategy<Value = Packet> {
    (
        0u8..32,
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        1u8..=255,
        1u32..,
        any::<u32>(),
        any::<(u32, u32, u32)>(),
    )
        .prop_map(|(diag, st, p, f, c, d, mult, my, your, (tx, rx, echo))| {
            let state = [State::AdminDown, State::Down, State::Init, State::Up][st as usize];
            let your = if matches!(state, State::Init | State::Up) {
                your.max(1)
            } else {
                your
            };
            Packet {
                diag: Diag::from_code(diag),
                state,
                poll: p,
                final_: f,
                control_plane_independent: c,
                auth_present: false,
                demand: d,
                multipoint: false,
                detect_mult: mult,
                my_discr: my,
                your_discr: your,
                desired_min_tx_us: tx,
                required_min_rx_us: rx,
                required_min_echo_rx_us: echo,
            }
        })
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = decode(&bytes) {
            // Whatever decodes passed every check.
            prop_assert!(p.detect_mult != 0 && p.my_discr != 0 && !p.multipoint && !p.auth_present);
            // Same bytes apart from Length (we always send 24; more may arrive).
            let mut e = encode(&p);
            e[3] = bytes[3];
            prop_assert_eq!(&e[..], &bytes[..24]);
        }
    }

    #[test]
    fn encode_decode_round_trip(p in arb_packet()) {
        prop_assert_eq!(decode(&encode(&p)), Ok(p));
    }
}

/// Counts up; the jitter then covers the whole 75-100 % range over a run.
struct Seq(u32);
impl RandomSource for Seq {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(1);
        self.0
    }
}

const FAST: Timing = Timing {
    desired_min_tx: Duration::from_millis(300),
    required_min_rx: Duration::from_millis(300),
    detect_mult: 3,
};

/// Two sessions joined by a link with a fixed delay, in virtual time.
struct Pair {
    t0: Instant,
    now: Instant,
    s: [Session; 2],
    tx_at: [Option<Instant>; 2],
    detect_at: [Option<Instant>; 2],
    /// (arrival, seq) -> (to, packet)
    wire: BTreeMap<(Instant, u64), (usize, Packet)>,
    seq: u64,
    delay: Duration,
    /// Packets from side i are lost while cut[i].
    cut: [bool; 2],
    changes: Vec<(Duration, usize, StateChange)>,
    sent: Vec<(Duration, usize, Packet)>,
    rng: StdRng,
}

impl Pair {
    fn new(a: Timing, b: Timing, seed: u64) -> Pair {
        let t0 = Instant::now();
        let (sa, aa) = Session::new(a, 11, t0);
        let (sb, ab) = Session::new(b, 22, t0 + Duration::from_millis(137));
        let mut p = Pair {
            t0,
            now: t0,
            s: [sa, sb],
            tx_at: [None; 2],
            detect_at: [None; 2],
            wire: BTreeMap::new(),
            seq: 0,
            delay: Duration::from_millis(2),
            cut: [false; 2],
            changes: Vec::new(),
            sent: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        };
        p.apply(0, aa);
        p.apply(1, ab);
        p
    }

    fn apply(&mut self, i: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(pk) => {
                    self.sent.push((self.now - self.t0, i, pk));
                    if !self.cut[i] {
                        self.seq += 1;
                        self.wire
                            .insert((self.now + self.delay, self.seq), (1 - i, pk));
                    }
                }
                Action::ArmTx(t) => self.tx_at[i] = Some(t),
                Action::ArmDetect(t) => self.detect_at[i] = t,
                Action::StateChange(c) => self.changes.push((self.now - self.t0, i, c)),
            }
        }
    }

    fn event(&mut self, i: usize, ev: Event) {
        let acts = self.s[i]
            .handle(ev, self.now, &mut self.rng)
            .expect("no rx error");
        self.apply(i, acts);
    }

    /// Runs every event up to `until` (relative to start).
    fn run_until(&mut self, until: Duration) {
        let end = self.t0 + until;
        loop {
            let mut next: Option<(Instant, u8, usize)> = None;
            let mut consider = |t: Option<Instant>, kind: u8, i: usize| {
                if let Some(t) = t {
                    if next.is_none_or(|n| t < n.0) {
                        next = Some((t, kind, i));
                    }
                }
            };
            for i in 0..2 {
                consider(self.tx_at[i], 0, i);
                consider(self.detect_at[i], 1, i);
            }
            consider(self.wire.keys().next().map(|k| k.0), 2, 0);
            let Some((t, kind, i)) = next else { break };
            if t > end {
                break;
            }
            self.now = t;
            match kind {
                0 => {
                    self.tx_at[i] = None;
                    self.event(i, Event::TxTimer);
                }
                1 => {
                    self.detect_at[i] = None;
                    self.event(i, Event::DetectTimer);
                }
                _ => {
                    let (k, (to, pk)) = self.wire.pop_first().expect("non-empty");
                    debug_assert_eq!(k.0, t);
                    self.event(to, Event::Packet(pk));
                }
            }
        }
        self.now = end;
    }
}

#[test]
fn two_sessions_come_up_and_poll_to_fast_timers() {
    let mut p = Pair::new(FAST, FAST, 1);
    p.run_until(Duration::from_secs(4));
    assert_eq!(p.s[0].state(), State::Up);
    assert_eq!(p.s[1].state(), State::Up);
    let snap = p.s[0].snapshot();
    assert_eq!(snap.tx_interval, Some(Duration::from_millis(300)));
    assert_eq!(snap.detect_time, Duration::from_millis(900));
    assert!(!snap.poll_active, "the poll ended with a Final");
    // Down -> Init -> Up on at least one side, Down -> Up on the other; no failure.
    assert!(p.changes.iter().all(|c| !c.2.is_failure()));
    // While not Up, nothing was sent faster than 750 ms apart (slow rate with jitter), apart from
    // immediate state-change and Final packets.
    let periodic: Vec<_> = p
        .sent
        .iter()
        .filter(|(_, i, pk)| *i == 0 && pk.state == State::Down && !pk.final_)
        .map(|(t, ..)| *t)
        .collect();
    for w in periodic.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(750), "{periodic:?}");
    }
    // Packets while Up advertise the configured intervals.
    let last = p.sent.iter().rev().find(|s| s.1 == 0).expect("sent").2;
    assert_eq!(last.desired_min_tx_us, 300_000);
    assert_eq!(last.state, State::Up);
}

#[test]
fn silence_brings_the_session_down_within_detection_time() {
    let mut p = Pair::new(FAST, FAST, 2);
    p.run_until(Duration::from_secs(5));
    assert_eq!(p.s[0].state(), State::Up);
    // Side 1 stops sending (a hung node).
    p.cut[1] = true;
    let cut_at = p.now - p.t0;
    p.run_until(Duration::from_secs(7));
    let down = p
        .changes
        .iter()
        .find(|c| c.1 == 0 && c.0 > cut_at)
        .expect("side 0 went down");
    assert_eq!(down.2.to, State::Down);
    assert_eq!(down.2.diag, Diag::ControlDetectionTimeExpired);
    assert!(down.2.is_failure());
    let took = down.0 - cut_at;
    assert!(took <= Duration::from_millis(900), "{took:?}");
    // At least (mult - 1) intervals minus jitter.
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert_eq!(
        p.s[0].snapshot().last_down_diag,
        Some(Diag::ControlDetectionTimeExpired)
    );
    // Side 1 sees side 0's Down (or silence) and follows; both come back when the link heals.
    p.cut[1] = false;
    p.run_until(Duration::from_secs(12));
    assert_eq!(p.s[0].state(), State::Up);
    assert_eq!(p.s[1].state(), State::Up);
}

#[test]
fn remote_admin_down_is_not_a_failure_and_local_admin_down_is_sent_at_once() {
    let mut p = Pair::new(FAST, FAST, 3);
    p.run_until(Duration::from_secs(4));
    let n = p.sent.len();
    p.event(1, Event::AdminDown);
    // The AdminDown packet left immediately.
    assert!(p.sent[n..].iter().any(|s| s.1 == 1
        && s.2.state == State::AdminDown
        && s.2.diag == Diag::AdministrativelyDown));
    p.run_until(Duration::from_secs(6));
    assert_eq!(p.s[1].state(), State::AdminDown);
    assert_eq!(p.s[0].state(), State::Down);
    let c = p.changes.iter().rev().find(|c| c.1 == 0).expect("change").2;
    assert_eq!(c.diag, Diag::NeighborSignaledDown);
    assert_eq!(c.remote_state, State::AdminDown);
    assert!(!c.is_failure());
    // AdminDown stays put whatever arrives; AdminUp resumes.
    p.run_until(Duration::from_secs(8));
    assert_eq!(p.s[1].state(), State::AdminDown);
    p.event(1, Event::AdminUp);
    p.run_until(Duration::from_secs(12));
    assert_eq!(p.s[0].state(), State::Up);
    assert_eq!(p.s[1].state(), State::Up);
}

#[test]
fn neighbor_down_while_up_is_a_failure() {
    let t0 = Instant::now();
    let (mut s, _) = Session::new(FAST, 5, t0);
    let mut r = Seq(0);
    let mut pk = good();
    pk.your_discr = 0;
    pk.state = State::Down;
    s.handle(Event::Packet(pk), t0, &mut r).expect("ok");
    assert_eq!(s.state(), State::Init);
    pk.your_discr = 5;
    pk.state = State::Up;
    s.handle(Event::Packet(pk), t0, &mut r).expect("ok");
    assert_eq!(s.state(), State::Up);
    pk.state = State::Down;
    let acts = s.handle(Event::Packet(pk), t0, &mut r).expect("ok");
    let c = acts.iter().find_map(|a| match a {
        Action::StateChange(c) => Some(*c),
        _ => None,
    });
    let c = c.expect("state change");
    assert!(c.is_failure());
    assert_eq!(c.diag, Diag::NeighborSignaledDown);
    // A foreign Your Discriminator is refused and changes nothing.
    pk.your_discr = 99;
    assert_eq!(
        s.handle(Event::Packet(pk), t0, &mut r),
        Err(RxError::UnknownYourDiscr { your_discr: 99 })
    );
}

#[test]
fn poll_gets_final_at_once_and_slower_tx_waits_for_final() {
    let mut p = Pair::new(FAST, FAST, 4);
    p.run_until(Duration::from_secs(4));
    let n = p.sent.len();
    let slow = Timing {
        desired_min_tx: Duration::from_millis(600),
        ..FAST
    };
    p.s[0].set_timing(slow);
    // Still 300 ms until the peer answered the poll.
    assert_eq!(
        p.s[0].snapshot().tx_interval,
        Some(Duration::from_millis(300))
    );
    assert!(p.s[0].snapshot().poll_active);
    p.run_until(Duration::from_secs(5));
    let poll = p.sent[n..]
        .iter()
        .find(|s| s.1 == 0 && s.2.poll)
        .expect("poll sent");
    let fin = p.sent[n..]
        .iter()
        .find(|s| s.1 == 1 && s.2.final_)
        .expect("final sent");
    // Final within the link round trip of the Poll, not a transmit interval later.
    assert!(
        fin.0 - poll.0 <= Duration::from_millis(5),
        "{:?} {:?}",
        poll.0,
        fin.0
    );
    assert!(!fin.2.poll, "P and F never together");
    assert_eq!(
        p.s[0].snapshot().tx_interval,
        Some(Duration::from_millis(600))
    );
    assert!(!p.s[0].snapshot().poll_active);
    // The peer's detection time follows our slower rate.
    assert_eq!(p.s[1].snapshot().detect_time, Duration::from_millis(1800));
    p.run_until(Duration::from_secs(8));
    assert_eq!(p.s[1].state(), State::Up);
}

#[test]
fn detection_uses_remote_multiplier_and_slower_of_intervals() {
    let b = Timing {
        desired_min_tx: Duration::from_millis(500),
        required_min_rx: Duration::from_millis(200),
        detect_mult: 5,
    };
    let mut p = Pair::new(FAST, b, 5);
    p.run_until(Duration::from_secs(5));
    assert_eq!(p.s[0].state(), State::Up);
    // Side 0 detects side 1 with side 1's multiplier x max(our rx 300, their tx 500).
    assert_eq!(p.s[0].snapshot().detect_time, Duration::from_millis(2500));
    // Side 1: 3 x max(200, 300).
    assert_eq!(p.s[1].snapshot().detect_time, Duration::from_millis(900));
    // Side 0 sends at max(its tx 300, their rx 200).
    assert_eq!(
        p.s[0].snapshot().tx_interval,
        Some(Duration::from_millis(300))
    );
}

#[test]
fn jitter_stays_in_range() {
    let t0 = Instant::now();
    for mult in [1u8, 3] {
        let (mut s, _) = Session::new(
            Timing {
                detect_mult: mult,
                ..FAST
            },
            1,
            t0,
        );
        let mut r = Seq(0);
        let mut seen = std::collections::BTreeSet::new();
        let mut now = t0;
        for _ in 0..200 {
            let acts = s.handle(Event::TxTimer, now, &mut r).expect("ok");
            let at = acts
                .iter()
                .find_map(|a| match a {
                    Action::ArmTx(t) => Some(*t),
                    _ => None,
                })
                .expect("tx armed");
            let gap = at - now;
            let hi = if mult == 1 { 900 } else { 1000 };
            assert!(
                gap >= Duration::from_millis(750) && gap <= Duration::from_millis(hi),
                "{gap:?}"
            );
            seen.insert(gap.as_millis());
            now = at;
        }
        assert!(seen.len() > 10, "jitter varies: {seen:?}");
    }
}

#[test]
fn peer_asking_for_no_packets_stops_periodic_tx() {
    let t0 = Instant::now();
    let (mut s, _) = Session::new(FAST, 1, t0);
    let mut pk = good();
    pk.state = State::Down;
    pk.your_discr = 0;
    pk.required_min_rx_us = 0;
    let acts = s.handle(Event::Packet(pk), t0, &mut Seq(0)).expect("ok");
    assert!(
        !acts.iter().any(|a| matches!(a, Action::ArmTx(_))),
        "{acts:?}"
    );
    assert_eq!(s.snapshot().tx_interval, None);
}

proptest! {
    /// Whatever the timings and the link delay, two sessions come Up, and a cut link brings the
    /// listening side Down within its detection time.
    #[test]
    fn pair_converges_and_detects(
        tx in 10u64..2000, rx in 10u64..2000, mult in 1u8..8,
        tx2 in 10u64..2000, rx2 in 10u64..2000, mult2 in 1u8..8,
        delay in 0u64..20, seed in any::<u64>(),
    ) {
        let a = Timing { desired_min_tx: Duration::from_millis(tx), required_min_rx: Duration::from_millis(rx), detect_mult: mult };
        let b = Timing { desired_min_tx: Duration::from_millis(tx2), required_min_rx: Duration::from_millis(rx2), detect_mult: mult2 };
        let mut p = Pair::new(a, b, seed);
        p.delay = Duration::from_millis(delay);
        p.run_until(Duration::from_secs(30));
        prop_assert_eq!(p.s[0].state(), State::Up);
        prop_assert_eq!(p.s[1].state(), State::Up);
        let detect = p.s[0].snapshot().detect_time;
        prop_assert_eq!(detect, Duration::from_millis(rx.max(tx2)) * u32::from(mult2));
        prop_assert!(p.changes.iter().all(|c| !c.2.is_failure()));
        p.cut[1] = true;
        let cut_at = p.now - p.t0;
        p.run_until(cut_at + detect + Duration::from_millis(delay + 1));
        prop_assert_eq!(p.s[0].state(), State::Down);
    }
}
