//! BFD Control packet codec (RFC 5880 section 4.1) with the packet-only reception checks of
//! section 6.8.6, and the layout of the SHA1 authentication section (6.7.4). Owns the byte layout
//! and the typed discard reasons; knows nothing of sessions, sockets, keys or time. Checks that
//! need session state (Your Discriminator, authentication) live in `session` and `auth`.

use std::fmt;

/// Length of the mandatory section.
pub const MANDATORY_LEN: usize = 24;
/// Smallest length a packet with the A bit may declare (mandatory section + shortest auth).
const MIN_LEN_WITH_AUTH: u8 = 26;
/// Auth Len of the (Meticulous) Keyed SHA1 section (6.7.4): type, len, key id, reserved,
/// sequence number, 20-byte key/digest.
pub const SHA1_AUTH_LEN: u8 = 28;
/// Longest packet we send or re-encode: mandatory section + SHA1 section.
pub const MAX_LEN: usize = MANDATORY_LEN + SHA1_AUTH_LEN as usize;
/// Auth Type codes (RFC 5880 4.1) of the SHA1 variants, the only ones we speak (6.7: the ones an
/// implementation with authentication must support).
pub const AUTH_KEYED_SHA1: u8 = 4;
pub const AUTH_METICULOUS_KEYED_SHA1: u8 = 5;
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
    pub(crate) fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
    pub(crate) fn bits(self) -> u8 {
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

/// The authentication section as received or to be sent. For Auth Types other than the SHA1
/// ones only `auth_type`, `auth_len` and `key_id` are read (the session refuses them anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthSection {
    pub auth_type: u8,
    pub auth_len: u8,
    pub key_id: u8,
    /// Zero on transmit, ignored on receipt, but covered by the digest: kept as received.
    pub reserved: u8,
    pub seq: u32,
    /// Auth Key/Digest: the SHA1 digest (or, while signing, the padded key).
    pub digest: [u8; 20],
}

/// One Control packet. Intervals are in microseconds, as on the wire. `auth` is the A bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub auth: Option<AuthSection>,
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
    /// A bit set with an Auth Len that does not fit the Length field or the Auth Type (6.7.4:
    /// Keyed SHA1 sections are 28 bytes).
    AuthLenMismatch {
        auth_type: u8,
        auth_len: u8,
    },
    /// A bit set: we run no authentication with this peer, so 6.8.6 says discard.
    AuthNotConfigured,
    /// A bit clear while authentication is configured (6.8.6).
    AuthMissing,
    /// Auth Type other than the configured one.
    AuthTypeMismatch {
        auth_type: u8,
    },
    /// Auth Key ID other than the configured one (6.7.4: no such key).
    AuthKeyId {
        key_id: u8,
    },
    /// Sequence number outside the 6.7.4 window after bfd.RcvAuthSeq (a replay, or a sender
    /// far ahead).
    AuthSequence {
        seq: u32,
        last: u32,
    },
    /// The SHA1 digest does not match: wrong key, or altered bytes.
    AuthDigest,
    /// Your Discriminator names no session of ours.
    UnknownYourDiscr {
        your_discr: u32,
    },
    /// No session with the source address on this local address (RFC 5881 binding).
    UnknownSource,
    /// The source is a peer of ours, but the packet came in on another interface than the one
    /// the session runs on (RFC 5881 single hop: a spoofed packet from another link).
    WrongInterface {
        ifindex: Option<u32>,
    },
    /// Your Discriminator 0 while our session is Up, with a My Discriminator other than the
    /// peer's (as BIRD does: a restarted peer is found by detection instead, a spoofer that does
    /// not know the discriminators cannot end the session).
    RemoteDiscrMismatch {
        my_discr: u32,
    },
    /// RFC 5881 5: TTL / Hop Limit below 255 (or absent).
    TtlNot255 {
        ttl: Option<u8>,
    },
    /// The receive queue to the session thread was full (a flood): dropped unread.
    QueueFull,
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
            RxError::AuthLenMismatch { .. } => "auth_len",
            RxError::AuthNotConfigured => "auth_not_configured",
            RxError::AuthMissing => "auth_missing",
            RxError::AuthTypeMismatch { .. } => "auth_type",
            RxError::AuthKeyId { .. } => "auth_key_id",
            RxError::AuthSequence { .. } => "auth_sequence",
            RxError::AuthDigest => "auth_digest",
            RxError::UnknownYourDiscr { .. } => "unknown_your_discr",
            RxError::UnknownSource => "unknown_source",
            RxError::WrongInterface { .. } => "wrong_interface",
            RxError::RemoteDiscrMismatch { .. } => "remote_discr_mismatch",
            RxError::TtlNot255 { .. } => "ttl_not_255",
            RxError::QueueFull => "queue_full",
        }
    }

    pub const LABELS: [&'static str; 21] = [
        "truncated",
        "bad_version",
        "length_too_small",
        "length_exceeds_payload",
        "detect_mult_zero",
        "multipoint",
        "my_discr_zero",
        "your_discr_zero",
        "auth_len",
        "auth_not_configured",
        "auth_missing",
        "auth_type",
        "auth_key_id",
        "auth_sequence",
        "auth_digest",
        "unknown_your_discr",
        "unknown_source",
        "wrong_interface",
        "remote_discr_mismatch",
        "ttl_not_255",
        "queue_full",
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
            RxError::AuthLenMismatch {
                auth_type,
                auth_len,
            } => write!(f, "auth type {auth_type} with auth len {auth_len}"),
            RxError::AuthNotConfigured => f.write_str("authentication bit set, none configured"),
            RxError::AuthMissing => f.write_str("no authentication section, one is configured"),
            RxError::AuthTypeMismatch { auth_type } => {
                write!(f, "auth type {auth_type}, another is configured")
            }
            RxError::AuthKeyId { key_id } => write!(f, "auth key id {key_id} unknown"),
            RxError::AuthSequence { seq, last } => {
                write!(f, "auth sequence {seq} outside the window after {last}")
            }
            RxError::AuthDigest => f.write_str("authentication digest mismatch"),
            RxError::UnknownYourDiscr { your_discr } => {
                write!(f, "unknown your discriminator {your_discr}")
            }
            RxError::UnknownSource => f.write_str("no session for the source address"),
            RxError::WrongInterface { ifindex: Some(i) } => {
                write!(f, "arrived on interface {i}, not the session's")
            }
            RxError::WrongInterface { ifindex: None } => f.write_str("no ingress interface"),
            RxError::RemoteDiscrMismatch { my_discr } => write!(
                f,
                "your discriminator 0 while Up, my discriminator {my_discr} is not the peer's"
            ),
            RxError::TtlNot255 { ttl: Some(t) } => write!(f, "TTL {t}, 255 required"),
            RxError::TtlNot255 { ttl: None } => f.write_str("no TTL ancillary data"),
            RxError::QueueFull => f.write_str("receive queue full"),
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
    let auth = if auth_present {
        Some(auth_section(&buf[MANDATORY_LEN..usize::from(length)])?)
    } else {
        None
    };
    Ok(Packet {
        diag: Diag::from_code(h[0]),
        state,
        poll: flags & 0x20 != 0,
        final_: flags & 0x10 != 0,
        control_plane_independent: flags & 0x08 != 0,
        auth,
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

/// The authentication section: `a` is what follows the mandatory section up to Length (at least
/// 2 bytes: decode checked Length >= 26). The SHA1 types must be exactly 28 bytes and fill the
/// packet, so that re-encoding gives back the bytes the digest covers.
fn auth_section(a: &[u8]) -> Result<AuthSection, RxError> {
    let (auth_type, auth_len) = (a[0], a[1]);
    let sha1 = is_sha1(auth_type);
    let fits = usize::from(auth_len) == a.len() && auth_len >= 3;
    if !fits || (sha1 && auth_len != SHA1_AUTH_LEN) {
        return Err(RxError::AuthLenMismatch {
            auth_type,
            auth_len,
        });
    }
    let mut s = AuthSection {
        auth_type,
        auth_len,
        key_id: a[2],
        reserved: 0,
        seq: 0,
        digest: [0; 20],
    };
    if sha1 {
        s.reserved = a[3];
        s.seq = u32::from_be_bytes([a[4], a[5], a[6], a[7]]);
        s.digest.copy_from_slice(&a[8..28]);
    }
    Ok(s)
}

/// Keyed or Meticulous Keyed SHA1: the Auth Types whose section decode keeps whole (28 bytes,
/// re-encoded by [`encode_wire`] to the bytes the digest covers). Other types may be 28 bytes
/// long too; of those only type, length and key id are read.
pub fn is_sha1(auth_type: u8) -> bool {
    matches!(auth_type, AUTH_KEYED_SHA1 | AUTH_METICULOUS_KEYED_SHA1)
}

/// The mandatory section of `p`: the A bit and Length follow `p.auth`.
pub fn encode(p: &Packet) -> [u8; MANDATORY_LEN] {
    let mut b = [0u8; MANDATORY_LEN];
    b[0] = (VERSION << 5) | p.diag.code();
    b[1] = (p.state.bits() << 6)
        | (u8::from(p.poll) << 5)
        | (u8::from(p.final_) << 4)
        | (u8::from(p.control_plane_independent) << 3)
        | (u8::from(p.auth.is_some()) << 2)
        | (u8::from(p.demand) << 1)
        | u8::from(p.multipoint);
    b[2] = p.detect_mult;
    b[3] = MANDATORY_LEN as u8 + p.auth.map_or(0, |a| a.auth_len);
    b[4..8].copy_from_slice(&p.my_discr.to_be_bytes());
    b[8..12].copy_from_slice(&p.your_discr.to_be_bytes());
    b[12..16].copy_from_slice(&p.desired_min_tx_us.to_be_bytes());
    b[16..20].copy_from_slice(&p.required_min_rx_us.to_be_bytes());
    b[20..24].copy_from_slice(&p.required_min_echo_rx_us.to_be_bytes());
    b
}

/// A whole packet on the wire: mandatory section and, with `p.auth`, the SHA1-layout section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    buf: [u8; MAX_LEN],
    len: usize,
}

impl Wire {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Clears the buffer (it held a key while a digest was computed).
    pub fn zeroize(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

/// `p` as sent (or, for verification, as it was received: decode only accepts SHA1 sections
/// that re-encode to the same 52 bytes). Other Auth Types are never sent; their section is
/// written in the SHA1 layout all the same and the session refuses them before this is used.
pub fn encode_wire(p: &Packet) -> Wire {
    let mut buf = [0u8; MAX_LEN];
    buf[..MANDATORY_LEN].copy_from_slice(&encode(p));
    let Some(a) = p.auth else {
        return Wire {
            buf,
            len: MANDATORY_LEN,
        };
    };
    buf[3] = MAX_LEN as u8;
    buf[24] = a.auth_type;
    buf[25] = SHA1_AUTH_LEN;
    buf[26] = a.key_id;
    buf[27] = a.reserved;
    buf[28..32].copy_from_slice(&a.seq.to_be_bytes());
    buf[32..52].copy_from_slice(&a.digest);
    Wire { buf, len: MAX_LEN }
}
