//! One BFD session's state machine (RFC 5880 asynchronous mode, no echo, no demand; optional
//! Keyed SHA1 authentication through `auth`). Pure: events in (a decoded packet, a timer expiry,
//! admin down/up) with the current time and a random source passed in; actions out (send a
//! packet, arm or disarm a timer, a state change with its diagnostic). Owns the 6.8.x state
//! variables; knows nothing of sockets, tasks or BGP.

use std::time::{Duration, Instant};

use super::auth::{self, AuthConfig, AuthType, RxSeq, TxSeq};
use super::packet::{Diag, Packet, RxError, State};

mod handover;
pub use handover::{ResumeError, SessionExport};

/// While the session is not Up we transmit no faster than this (RFC 5880 6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// Configured timing of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub desired_min_tx: Duration,
    pub required_min_rx: Duration,
    pub detect_mult: u8,
}

/// Randomness for the transmit jitter (6.8.7), injected so tests are deterministic.
pub trait RandomSource {
    fn next_u32(&mut self) -> u32;
}

impl<R: rand::RngCore> RandomSource for R {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Packet(Packet),
    /// The transmit timer armed by the last `Action::ArmTx` fired.
    TxTimer,
    /// The detection timer armed by the last `Action::ArmDetect(Some)` fired.
    DetectTimer,
    AdminDown,
    AdminUp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub from: State,
    pub to: State,
    /// Our diagnostic for the change (what we send as Diag).
    pub diag: Diag,
    /// What the remote last said, so a consumer can tell its AdminDown from a failure.
    pub remote_state: State,
}

impl StateChange {
    /// Up -> Down that is not the neighbour's (or our) administrative shutdown: the path failed.
    pub fn is_failure(&self) -> bool {
        self.from == State::Up && self.to == State::Down && self.remote_state != State::AdminDown
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Transmit now.
    Send(Packet),
    /// (Re)arm the transmit timer; replaces any earlier deadline.
    ArmTx(Instant),
    /// (Re)arm the detection timer, or disarm it with `None`.
    ArmDetect(Option<Instant>),
    StateChange(StateChange),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    Idle,
    Active,
    /// Active, and another change happened meanwhile: poll again when this one ends.
    ActivePending,
}

/// What status and metrics show of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    pub remote_state: State,
    pub local_discr: u32,
    pub remote_discr: u32,
    /// Transmit interval in use (before jitter), None while the peer asks for no packets.
    pub tx_interval: Option<Duration>,
    /// Time without a packet after which the session goes Down.
    pub detect_time: Duration,
    pub remote_detect_mult: u8,
    /// Diagnostic of the last transition away from Up (None if never).
    pub last_down_diag: Option<Diag>,
    pub remote_diag: Diag,
    pub state_changes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub poll_active: bool,
    /// Authentication in use (every packet signed and required).
    pub auth: Option<AuthType>,
    /// Sequence number of the last authenticated packet accepted (bfd.RcvAuthSeq).
    pub auth_rx_seq: Option<u32>,
}

/// Authentication state of a session: configuration and both sequence numbers.
struct Auth {
    cfg: AuthConfig,
    tx: TxSeq,
    rx: RxSeq,
}

pub struct Session {
    timing: Timing,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    remote_diag: Diag,
    /// Desired Min TX we advertise (>= 1 s while not Up).
    adv_tx: Duration,
    /// Required Min RX we advertise.
    adv_rx: Duration,
    /// Our transmit base; lags an increase of `adv_tx` while Up until the poll ends (6.8.3).
    tx_base: Duration,
    /// RX interval used for the detection time; lags a decrease of `adv_rx` until the poll ends.
    detect_rx: Duration,
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_mult: u8,
    poll: Poll,
    last_tx: Option<Instant>,
    last_down_diag: Option<Diag>,
    state_changes: u64,
    rx_packets: u64,
    tx_packets: u64,
    auth: Option<Auth>,
}

fn us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Session {
    /// A session in Down; the first packet goes out at once. `local_discr` must be non-zero and
    /// unique among our sessions (the caller allocates it).
    pub fn new(timing: Timing, local_discr: u32, now: Instant) -> (Session, Vec<Action>) {
        let adv_tx = timing.desired_min_tx.max(SLOW_TX);
        let s = Session {
            timing,
            state: State::Down,
            remote_state: State::Down,
            local_discr: local_discr.max(1),
            remote_discr: 0,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            adv_tx,
            adv_rx: timing.required_min_rx,
            tx_base: adv_tx,
            detect_rx: timing.required_min_rx,
            // 6.8.1: initialised to 1 (microsecond).
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_mult: 0,
            poll: Poll::Idle,
            last_tx: None,
            last_down_diag: None,
            state_changes: 0,
            rx_packets: 0,
            tx_packets: 0,
            auth: None,
        };
        (s, vec![Action::ArmTx(now)])
    }

    /// Turns on authentication (before the first packet): every packet sent is signed, every
    /// packet received must be. `xmit_seq`: the random initial bfd.XmitAuthSeq (6.8.1).
    pub fn with_auth(mut self, cfg: AuthConfig, xmit_seq: u32) -> Session {
        self.auth = Some(Auth {
            cfg,
            tx: TxSeq::new(xmit_seq),
            rx: RxSeq::default(),
        });
        self
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            remote_state: self.remote_state,
            local_discr: self.local_discr,
            remote_discr: self.remote_discr,
            tx_interval: self.tx_interval(),
            detect_time: self.detect_time(),
            remote_detect_mult: self.remote_mult,
            last_down_diag: self.last_down_diag,
            remote_diag: self.remote_diag,
            state_changes: self.state_changes,
            rx_packets: self.rx_packets,
            tx_packets: self.tx_packets,
            poll_active: self.poll != Poll::Idle,
            auth: self.auth.as_ref().map(|a| a.cfg.auth_type),
            auth_rx_seq: self.auth.as_ref().and_then(|a| a.rx.last()),
        }
    }

    /// Detection time for the remote's packets (6.8.4, asynchronous mode).
    pub fn detect_time(&self) -> Duration {
        self.detect_rx.max(self.remote_desired_tx) * u32::from(self.remote_mult)
    }

    /// Interval between our periodic packets before jitter; None: the peer wants none (6.8.7).
    pub fn tx_interval(&self) -> Option<Duration> {
        if self.remote_min_rx.is_zero() {
            return None;
        }
        Some(self.tx_base.max(self.remote_min_rx))
    }

    /// 75-100 % of the interval, 75-90 % with a detect multiplier of 1 (6.8.7).
    fn jittered(&self, interval: Duration, rng: &mut dyn RandomSource) -> Duration {
        let span = if self.timing.detect_mult == 1 { 16 } else { 26 };
        let pct = 75 + rng.next_u32() % span;
        interval * pct / 100
    }

    fn packet(&self, final_: bool) -> Packet {
        Packet {
            diag: self.local_diag,
            state: self.state,
            // P and F never together (6.5); the Final answer goes out without P.
            poll: !final_ && self.poll != Poll::Idle,
            final_,
            control_plane_independent: false,
            auth: None,
            demand: false,
            multipoint: false,
            detect_mult: self.timing.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: us(self.adv_tx),
            required_min_rx_us: us(self.adv_rx),
            required_min_echo_rx_us: 0,
        }
    }

    fn send(&mut self, out: &mut Vec<Action>, final_: bool, now: Instant) {
        let p = self.packet(final_);
        let p = match &mut self.auth {
            None => p,
            Some(a) => {
                let seq = a.tx.next(&p, a.cfg.auth_type.meticulous(), now);
                auth::sign(&p, &a.cfg, seq)
            }
        };
        out.push(Action::Send(p));
        self.tx_packets += 1;
        if !final_ {
            self.last_tx = Some(now);
        }
    }

    fn arm_tx(&self, out: &mut Vec<Action>, now: Instant, rng: &mut dyn RandomSource) {
        if let Some(i) = self.tx_interval() {
            let from = self.last_tx.unwrap_or(now);
            out.push(Action::ArmTx((from + self.jittered(i, rng)).max(now)));
        }
    }

    fn start_poll(&mut self) {
        self.poll = match self.poll {
            Poll::Idle => Poll::Active,
            _ => Poll::ActivePending,
        };
    }

    /// New advertised intervals; 6.8.3 decides when each takes effect.
    fn advertise(&mut self, tx: Duration, rx: Duration) {
        if tx == self.adv_tx && rx == self.adv_rx {
            return;
        }
        let up = self.state == State::Up;
        // A faster transmit rate, or any change while not Up, applies at once; a slower one while
        // Up waits for the Final.
        if !up || tx < self.tx_base {
            self.tx_base = tx;
        }
        // A larger RX interval protects us at once; a smaller one counts only after the Final.
        if !up || rx > self.detect_rx {
            self.detect_rx = rx;
        }
        self.adv_tx = tx;
        self.adv_rx = rx;
        self.start_poll();
    }

    fn change_state(&mut self, out: &mut Vec<Action>, to: State, diag: Diag) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        if from == State::Up {
            self.last_down_diag = Some(diag);
        }
        self.state_changes += 1;
        out.push(Action::StateChange(StateChange {
            from,
            to,
            diag,
            remote_state: self.remote_state,
        }));
        let tx = if to == State::Up {
            self.timing.desired_min_tx
        } else {
            self.timing.desired_min_tx.max(SLOW_TX)
        };
        self.advertise(tx, self.timing.required_min_rx);
    }

    /// Reconfigure the intervals (a Poll Sequence tells the peer).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
        let tx = if self.state == State::Up {
            timing.desired_min_tx
        } else {
            timing.desired_min_tx.max(SLOW_TX)
        };
        self.advertise(tx, timing.required_min_rx);
    }

    /// Feeds one event. Errors are packets the session must discard (count them); the session
    /// state is then unchanged.
    pub fn handle(
        &mut self,
        ev: Event,
        now: Instant,
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<Action>, RxError> {
        let mut out = Vec::new();
        match ev {
            Event::Packet(p) => self.receive(p, now, rng, &mut out)?,
            Event::TxTimer => {
                self.send(&mut out, false, now);
                self.arm_tx(&mut out, now, rng);
            }
            Event::DetectTimer => self.detect_expired(now, rng, &mut out),
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    out.push(Action::ArmDetect(None));
                    self.change_state(&mut out, State::AdminDown, Diag::AdministrativelyDown);
                    self.send(&mut out, false, now);
                    self.arm_tx(&mut out, now, rng);
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.change_state(&mut out, State::Down, Diag::AdministrativelyDown);
                    self.arm_tx(&mut out, now, rng);
                }
            }
        }
        Ok(out)
    }

    fn detect_expired(&mut self, now: Instant, rng: &mut dyn RandomSource, out: &mut Vec<Action>) {
        if self.state == State::AdminDown {
            return;
        }
        // 6.8.1: forget the remote after a Detection Time of silence.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_min_rx = Duration::from_micros(1);
        out.push(Action::ArmDetect(None));
        if matches!(self.state, State::Init | State::Up) {
            // The peer cannot answer a poll now; do not keep the P bit forever.
            self.poll = Poll::Idle;
            self.change_state(out, State::Down, Diag::ControlDetectionTimeExpired);
            self.send(out, false, now);
            self.arm_tx(out, now, rng);
        }
    }

    fn receive(
        &mut self,
        p: Packet,
        now: Instant,
        rng: &mut dyn RandomSource,
        out: &mut Vec<Action>,
    ) -> Result<(), RxError> {
        // The packet-only checks of 6.8.6 were done by `packet::decode`.
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            return Err(RxError::UnknownYourDiscr {
                your_discr: p.your_discr,
            });
        }
        // Up, the peer is known by its discriminator: a Your Discriminator 0 packet must come
        // from it (BIRD checks the same). A restarted peer is noticed by detection instead.
        if p.your_discr == 0 && self.state == State::Up && p.my_discr != self.remote_discr {
            return Err(RxError::RemoteDiscrMismatch {
                my_discr: p.my_discr,
            });
        }
        // 6.8.6: the A bit must match our configuration; then 6.7.4.
        let detect_time = self.detect_time();
        match (&mut self.auth, p.auth.is_some()) {
            (None, false) => {}
            (None, true) => return Err(RxError::AuthNotConfigured),
            (Some(_), false) => return Err(RxError::AuthMissing),
            (Some(a), true) => auth::verify(&p, &a.cfg, &mut a.rx, now, detect_time)?,
        }
        self.rx_packets += 1;
        let old_interval = self.tx_interval();
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_diag = p.diag;
        self.remote_min_rx = Duration::from_micros(p.required_min_rx_us.into());
        self.remote_desired_tx = Duration::from_micros(p.desired_min_tx_us.into());
        self.remote_mult = p.detect_mult;
        if p.final_ && self.poll != Poll::Idle {
            // The peer has our new intervals: they all apply now.
            self.tx_base = self.adv_tx;
            self.detect_rx = self.adv_rx;
            self.poll = if self.poll == Poll::ActivePending {
                Poll::Active
            } else {
                Poll::Idle
            };
        }
        if self.state == State::AdminDown {
            return Ok(());
        }
        if p.state == State::AdminDown {
            if self.state != State::Down {
                self.change_state(out, State::Down, Diag::NeighborSignaledDown);
            }
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => self.change_state(out, State::Init, Diag::None),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.change_state(out, State::Up, Diag::None)
                }
                (State::Up, State::Down) => {
                    self.change_state(out, State::Down, Diag::NeighborSignaledDown)
                }
                _ => {}
            }
        }
        out.push(Action::ArmDetect(Some(now + self.detect_time())));
        let changed = out.iter().any(|a| matches!(a, Action::StateChange(_)));
        if p.poll {
            // 6.5: the Final goes out at once, outside the transmit schedule.
            self.send(out, true, now);
        }
        if changed {
            // Tell the peer our new state now rather than up to a second later.
            self.send(out, false, now);
            self.arm_tx(out, now, rng);
        } else if self.tx_interval() != old_interval {
            self.arm_tx(out, now, rng);
        }
        Ok(())
    }
}
