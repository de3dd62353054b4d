//! BFD Control packet codec (RFC 5880 section 4.1) with the packet-only reception checks of
//! section 6.8.6. Owns the byte layout and the typed decode errors; knows nothing of sessions,
//! sockets or time. Checks that need session state (unknown Your Discriminator) live in `session`.

use std::fmt;

/// Length of the mandatory section; we never send the optional authentication section.
pub const MANDATORY_LEN: usize = 24;
/// Smallest length a packet with the A bit may declare (mandatory section + shortest auth).
const MIN_LEN_WITH_AUTH: u8 = 26;
pub const VERSION: u8 = 1;

/// Session state as carried in the Sta field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Diagnostic code (RFC 5880 4.1); values 9-31 are kept as `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFailed,
    NeighborSignaledDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    Other(u8),
}

impl Diag {
    pub fn from_code(c: u8) -> Diag {
        match c & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            n => Diag::Other(n),
        }
    }
    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFailed => 2,
            Diag::NeighborSignaledDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Other(n) => n & 0x1f,
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Diag::None => "no diagnostic",
            Diag::ControlDetectionTimeExpired => "control detection time expired",
            Diag::EchoFailed => "echo function failed",
            Diag::NeighborSignaledDown => "neighbor signaled session down",
            Diag::ForwardingPlaneReset => "forwarding plane reset",
            Diag::PathDown => "path down",
            Diag::ConcatenatedPathDown => "concatenated path down",
            Diag::AdministrativelyDown => "administratively down",
            Diag::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Diag::Other(n) => return write!(f, "diagnostic {n}"),
        };
        f.write_str(s)
    }
}

/// One Control packet (mandatory section). Intervals are in microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub auth_present: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received packet was discarded (RFC 5880 6.8.6 and RFC 5881 5). Every variant is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxError {
    /// Fewer bytes than the mandatory section.
    Truncated {
        got: usize,
    },
    BadVersion {
        version: u8,
    },
    /// Length field below 24 (26 with the A bit).
    LengthTooSmall {
        length: u8,
    },
    /// Length field larger than the UDP payload.
    LengthExceedsPayload {
        length: u8,
        payload: usize,
    },
    DetectMultZero,
    Multipoint,
    MyDiscrZero,
    /// Your Discriminator zero while State is Init or Up.
    YourDiscrZeroWhileUp {
        state: State,
    },
    /// A bit set: we run no authentication, so 6.8.6 says discard.
    AuthNotConfigured,
    /// Your Discriminator names no session of ours.
    UnknownYourDiscr {
        your_discr: u32,
    },
    /// Your Discriminator zero and no session with the source address.
    UnknownSource,
    /// RFC 5881 5: TTL / Hop Limit below 255 (or absent).
    TtlNot255 {
        ttl: Option<u8>,
    },
}

impl RxError {
    /// Stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RxError::Truncated { .. } => "truncated",
            RxError::BadVersion { .. } => "bad_version",
            RxError::LengthTooSmall { .. } => "length_too_small",
            RxError::LengthExceedsPayload { .. } => "length_exceeds_payload",
            RxError::DetectMultZero => "detect_mult_zero",
            RxError::Multipoint => "multipoint",
            RxError::MyDiscrZero => "my_discr_zero",
            RxError::YourDiscrZeroWhileUp { .. } => "your_discr_zero",
            RxError::AuthNotConfigured => "auth_not_configured",
            RxError::UnknownYourDiscr { .. } => "unknown_your_discr",
            RxError::UnknownSource => "unknown_source",
            RxError::TtlNot255 { .. } => "ttl_not_255",
        }
    }

    pub const LABELS: [&'static str; 12] = [
        "truncated",
        "bad_version",
        "length_too_small",
        "length_exceeds_payload",
        "detect_mult_zero",
        "multipoint",
        "my_discr_zero",
        "your_discr_zero",
        "auth_not_configured",
        "unknown_your_discr",
        "unknown_source",
        "ttl_not_255",
    ];
}

impl fmt::Display for RxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RxError::Truncated { got } => write!(f, "truncated: {got} bytes < {MANDATORY_LEN}"),
            RxError::BadVersion { version } => write!(f, "version {version}, expected {VERSION}"),
            RxError::LengthTooSmall { length } => write!(f, "length field {length} too small"),
            RxError::LengthExceedsPayload { length, payload } => {
                write!(f, "length field {length} > payload {payload}")
            }
            RxError::DetectMultZero => f.write_str("detect multiplier 0"),
            RxError::Multipoint => f.write_str("multipoint bit set"),
            RxError::MyDiscrZero => f.write_str("my discriminator 0"),
            RxError::YourDiscrZeroWhileUp { state } => {
                write!(f, "your discriminator 0 with state {state}")
            }
            RxError::AuthNotConfigured => f.write_str("authentication bit set, none configured"),
            RxError::UnknownYourDiscr { your_discr } => {
                write!(f, "unknown your discriminator {your_discr}")
            }
            RxError::UnknownSource => f.write_str("no session for the source address"),
            RxError::TtlNot255 { ttl: Some(t) } => write!(f, "TTL {t}, 255 required"),
            RxError::TtlNot255 { ttl: None } => f.write_str("no TTL ancillary data"),
        }
    }
}

impl std::error::Error for RxError {}

/// Parses and checks one UDP payload. Never panics; reads only inside `buf`.
pub fn decode(buf: &[u8]) -> Result<Packet, RxError> {
    let Some(h) = buf.get(..MANDATORY_LEN) else {
        // The version check comes first in 6.8.6, when there is a byte to check.
        if let Some(&b0) = buf.first() {
            if b0 >> 5 != VERSION {
                return Err(RxError::BadVersion { version: b0 >> 5 });
            }
        }
        return Err(RxError::Truncated { got: buf.len() });
    };
    let version = h[0] >> 5;
    if version != VERSION {
        return Err(RxError::BadVersion { version });
    }
    let flags = h[1];
    let auth_present = flags & 0x04 != 0;
    let length = h[3];
    let min = if auth_present {
        MIN_LEN_WITH_AUTH
    } else {
        MANDATORY_LEN as u8
    };
    if length < min {
        return Err(RxError::LengthTooSmall { length });
    }
    if usize::from(length) > buf.len() {
        return Err(RxError::LengthExceedsPayload {
            length,
            payload: buf.len(),
        });
    }
    let detect_mult = h[2];
    if detect_mult == 0 {
        return Err(RxError::DetectMultZero);
    }
    let multipoint = flags & 0x01 != 0;
    if multipoint {
        return Err(RxError::Multipoint);
    }
    let be = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let my_discr = be(4);
    if my_discr == 0 {
        return Err(RxError::MyDiscrZero);
    }
    let your_discr = be(8);
    let state = State::from_bits(flags >> 6);
    if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
        return Err(RxError::YourDiscrZeroWhileUp { state });
    }
    if auth_present {
        return Err(RxError::AuthNotConfigured);
    }
    Ok(Packet {
        diag: Diag::from_code(h[0]),
        state,
        poll: flags & 0x20 != 0,
        final_: flags & 0x10 != 0,
        control_plane_independent: flags & 0x08 != 0,
        auth_present,
        demand: flags & 0x02 != 0,
        multipoint,
        detect_mult,
        my_discr,
        your_discr,
        desired_min_tx_us: be(12),
        required_min_rx_us: be(16),
        required_min_echo_rx_us: be(20),
    })
}

/// The 24 bytes of `p` (A bit and auth section are never sent).
pub fn encode(p: &Packet) -> [u8; MANDATORY_LEN] {
    let mut b = [0u8; MANDATORY_LEN];
    b[0] = (VERSION << 5) | p.diag.code();
    b[1] = (p.state.bits() << 6)
        | (u8::from(p.poll) << 5)
        | (u8::from(p.final_) << 4)
        | (u8::from(p.control_plane_independent) << 3)
        | (u8::from(p.demand) << 1)
        | u8::from(p.multipoint);
    b[2] = p.detect_mult;
    b[3] = MANDATORY_LEN as u8;
    b[4..8].copy_from_slice(&p.my_discr.to_be_bytes());
    b[8..12].copy_from_slice(&p.your_discr.to_be_bytes());
    b[12..16].copy_from_slice(&p.desired_min_tx_us.to_be_bytes());
    b[16..20].copy_from_slice(&p.required_min_rx_us.to_be_bytes());
    b[20..24].copy_from_slice(&p.required_min_echo_rx_us.to_be_bytes());
    b
}
