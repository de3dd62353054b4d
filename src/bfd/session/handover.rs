//! One BFD session's RFC 5880 6.8.1 state variables as plain data, for the in-place upgrade: the
//! new process continues the session with the same discriminators, state and negotiated
//! intervals, so the peer sees no change. With authentication the sequence numbers are carried
//! too (bfd.XmitAuthSeq, bfd.RcvAuthSeq and whether it is known); the key is not: the new
//! process reads it from its own config, which must name the same type and key id.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::super::auth::{AuthConfig, AuthType, RxSeq, TxSeq};
use super::{Auth, Diag, Poll, Session, State, Timing};

/// Why an exported session cannot be continued by this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeError {
    /// The configured timing is not the one the session ran with.
    TimingChanged { old: Timing, new: Timing },
    /// A discriminator of 0 or a state/poll code that does not exist.
    OutOfRange,
    /// Authentication was turned on or off, or its type or key id changed, in the config.
    AuthChanged,
}

impl std::fmt::Display for ResumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResumeError::TimingChanged { old, new } => {
                write!(f, "BFD timing changed in the config ({old:?} -> {new:?})")
            }
            ResumeError::OutOfRange => f.write_str("BFD session state out of range"),
            ResumeError::AuthChanged => {
                f.write_str("BFD authentication (on/off, type or key id) changed in the config")
            }
        }
    }
}

impl std::error::Error for ResumeError {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionExport {
    /// The configured timing (the new config must say the same).
    pub desired_min_tx_us: u64,
    pub required_min_rx_us: u64,
    pub detect_mult: u8,
    /// RFC 5880 state codes (0 AdminDown .. 3 Up) and diagnostic codes.
    pub state: u8,
    pub remote_state: u8,
    pub local_discr: u32,
    pub remote_discr: u32,
    pub local_diag: u8,
    pub remote_diag: u8,
    pub adv_tx_us: u64,
    pub adv_rx_us: u64,
    pub tx_base_us: u64,
    pub detect_rx_us: u64,
    pub remote_min_rx_us: u64,
    pub remote_desired_tx_us: u64,
    pub remote_mult: u8,
    /// 0 idle, 1 active, 2 active with another change pending.
    pub poll: u8,
    pub last_tx_age_us: Option<u64>,
    pub last_down_diag: Option<u8>,
    pub state_changes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Absent without authentication (and in blobs from before it was carried).
    #[serde(default)]
    pub auth: Option<AuthExport>,
}

/// The sequence-number state of an authenticated session (RFC 5880 6.8.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthExport {
    /// `keyed-sha1` or `meticulous-keyed-sha1`.
    pub auth_type: String,
    pub key_id: u8,
    /// bfd.XmitAuthSeq.
    pub xmit_seq: u32,
    /// bfd.RcvAuthSeq, when known, and how long ago it was accepted.
    pub rcv_seq: Option<u32>,
    pub rcv_age_us: Option<u64>,
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn dur(us: u64) -> Duration {
    Duration::from_micros(us)
}

impl Session {
    pub fn export(&self, now: Instant) -> SessionExport {
        SessionExport {
            desired_min_tx_us: us(self.timing.desired_min_tx),
            required_min_rx_us: us(self.timing.required_min_rx),
            detect_mult: self.timing.detect_mult,
            state: self.state.bits(),
            remote_state: self.remote_state.bits(),
            local_discr: self.local_discr,
            remote_discr: self.remote_discr,
            local_diag: self.local_diag.code(),
            remote_diag: self.remote_diag.code(),
            adv_tx_us: us(self.adv_tx),
            adv_rx_us: us(self.adv_rx),
            tx_base_us: us(self.tx_base),
            detect_rx_us: us(self.detect_rx),
            remote_min_rx_us: us(self.remote_min_rx),
            remote_desired_tx_us: us(self.remote_desired_tx),
            remote_mult: self.remote_mult,
            poll: match self.poll {
                Poll::Idle => 0,
                Poll::Active => 1,
                Poll::ActivePending => 2,
            },
            last_tx_age_us: self.last_tx.map(|t| us(now.saturating_duration_since(t))),
            last_down_diag: self.last_down_diag.map(Diag::code),
            state_changes: self.state_changes,
            rx_packets: self.rx_packets,
            tx_packets: self.tx_packets,
            auth: self.auth.as_ref().map(|a| {
                let (rcv_seq, rcv_age) = a.rx.export(now);
                AuthExport {
                    auth_type: a.cfg.auth_type.as_str().to_string(),
                    key_id: a.cfg.key_id,
                    xmit_seq: a.tx.current(),
                    rcv_seq,
                    rcv_age_us: rcv_age.map(us),
                }
            }),
        }
    }

    /// The exported session under this process's `timing` and `auth` (its key from this
    /// process's config); refused (with the reason) when the configured timing or
    /// authentication changed or a value is impossible.
    pub fn resume(
        timing: Timing,
        auth: Option<AuthConfig>,
        e: &SessionExport,
        now: Instant,
    ) -> Result<Session, ResumeError> {
        let old = Timing {
            desired_min_tx: dur(e.desired_min_tx_us),
            required_min_rx: dur(e.required_min_rx_us),
            detect_mult: e.detect_mult,
        };
        if old != timing {
            return Err(ResumeError::TimingChanged { old, new: timing });
        }
        if e.local_discr == 0 || e.state > 3 || e.remote_state > 3 || e.poll > 2 {
            return Err(ResumeError::OutOfRange);
        }
        let (mut s, _) = Session::new(timing, e.local_discr, now);
        s.state = State::from_bits(e.state);
        s.remote_state = State::from_bits(e.remote_state);
        s.remote_discr = e.remote_discr;
        s.local_diag = Diag::from_code(e.local_diag);
        s.remote_diag = Diag::from_code(e.remote_diag);
        s.adv_tx = dur(e.adv_tx_us);
        s.adv_rx = dur(e.adv_rx_us);
        s.tx_base = dur(e.tx_base_us);
        s.detect_rx = dur(e.detect_rx_us);
        s.remote_min_rx = dur(e.remote_min_rx_us);
        s.remote_desired_tx = dur(e.remote_desired_tx_us);
        s.remote_mult = e.remote_mult;
        s.poll = match e.poll {
            0 => Poll::Idle,
            1 => Poll::Active,
            _ => Poll::ActivePending,
        };
        s.last_tx = e
            .last_tx_age_us
            .map(|a| now.checked_sub(dur(a)).unwrap_or(now));
        s.last_down_diag = e.last_down_diag.map(Diag::from_code);
        s.state_changes = e.state_changes;
        s.rx_packets = e.rx_packets;
        s.tx_packets = e.tx_packets;
        s.auth = match (auth, &e.auth) {
            (None, None) => None,
            (Some(cfg), Some(a))
                if AuthType::parse(&a.auth_type) == Some(cfg.auth_type)
                    && a.key_id == cfg.key_id =>
            {
                Some(Auth {
                    cfg,
                    tx: TxSeq::new(a.xmit_seq),
                    rx: RxSeq::resume(a.rcv_seq, a.rcv_age_us.map(dur), now),
                })
            }
            _ => return Err(ResumeError::AuthChanged),
        };
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }

    #[test]
    fn round_trip_keeps_every_state_variable() {
        let now = Instant::now();
        let (mut s, _) = Session::new(timing(), 77, now);
        s.state = State::Up;
        s.remote_state = State::Up;
        s.remote_discr = 99;
        s.remote_mult = 3;
        s.remote_min_rx = Duration::from_millis(300);
        s.tx_base = Duration::from_millis(300);
        s.last_tx = Some(now);
        let e = s.export(now);
        let json = serde_json::to_string(&e).unwrap();
        let back: SessionExport = serde_json::from_str(&json).unwrap();
        let r = Session::resume(timing(), None, &back, now + Duration::from_millis(5)).unwrap();
        assert_eq!(r.snapshot(), s.snapshot());
        assert_eq!(r.export(now + Duration::from_millis(5)).local_discr, 77);
    }

    #[test]
    fn changed_timing_or_garbage_is_refused() {
        let now = Instant::now();
        let (s, _) = Session::new(timing(), 5, now);
        let e = s.export(now);
        let mut t = timing();
        t.detect_mult = 5;
        assert!(Session::resume(t, None, &e, now).is_err());
        let mut bad = e;
        bad.state = 9;
        assert_eq!(
            Session::resume(timing(), None, &bad, now).err(),
            Some(ResumeError::OutOfRange)
        );
    }
}
