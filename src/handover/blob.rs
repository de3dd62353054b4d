//! The state blob of the in-place upgrade: what the old process hands the new one, versioned and
//! checksummed. Pure: bytes in, typed state or a typed refusal out (fuzzed: `fuzz_targets/handover_blob`).
//!
//! Layout: `MAGIC` (19 bytes), format version (u32 BE), payload length (u64 BE), SHA-256 of the
//! payload (32 bytes), then the payload: JSON of [`State`]. A blob from another format version,
//! cut short, with bytes after it, or whose payload does not match its checksum is refused with
//! the reason; nothing of it is used.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bgp::fsm::ExportedSession;
use crate::engine::EngineExport;

pub const MAGIC: &[u8; 19] = b"vipwarden-handover\n";
/// Bump on any change of `State` that an older reader would misread.
pub const VERSION: u32 = 1;
const HEADER: usize = MAGIC.len() + 4 + 8 + 32;
/// Far above any real state (100k VIPs is a few MB); a larger blob is refused before parsing.
pub const MAX_BLOB: usize = 256 << 20;
/// A peer sends at most one 4096-byte message we have not parsed, plus whatever queued behind
/// it in the reader's buffer; more than this is not a real read buffer.
const MAX_PENDING: usize = 1 << 20;

/// One Established BGP session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The TCP socket's fd number in the new process (inherited).
    pub fd: i32,
    pub fsm: ExportedSession,
    pub keepalive_in_ms: Option<u64>,
    pub hold_in_ms: Option<u64>,
    /// Bytes read but not yet parsed.
    pub pending: Vec<u8>,
    pub established_since_unix_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The old process's release, for the logs.
    pub from_version: String,
    pub from_pid: u32,
    /// Unix milliseconds of the SIGUSR2 in the old process (for the hand-over time).
    pub requested_at_ms: u64,
    pub sessions: Vec<Session>,
    pub engine: EngineExport,
    /// BFD sessions and their sockets.
    #[serde(default)]
    pub bfd: crate::bfd::driver::Exported,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    NotABlob,
    Version { found: u32, supported: u32 },
    Truncated { expected: u64, got: u64 },
    TooLarge { len: u64 },
    TrailingBytes { extra: u64 },
    Checksum,
    Payload(String),
    Invalid(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NotABlob => f.write_str("not a vipwarden hand-over state (bad magic)"),
            Refused::Version { found, supported } => write!(
                f,
                "state format version {found}, this binary reads version {supported} only"
            ),
            Refused::Truncated { expected, got } => {
                write!(f, "state truncated: {got} of {expected} payload bytes")
            }
            Refused::TooLarge { len } => {
                write!(f, "state of {len} bytes is larger than {MAX_BLOB}")
            }
            Refused::TrailingBytes { extra } => {
                write!(f, "{extra} bytes after the end of the state")
            }
            Refused::Checksum => {
                f.write_str("state checksum mismatch (corrupted or tampered with)")
            }
            Refused::Payload(e) => write!(f, "state payload unreadable: {e}"),
            Refused::Invalid(e) => write!(f, "state invalid: {e}"),
        }
    }
}

impl std::error::Error for Refused {}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn encode(s: &State) -> Vec<u8> {
    // Serialising plain data to a Vec cannot fail (no maps with non-string keys, no I/O).
    frame(&serde_json::to_vec(s).unwrap_or_default())
}

/// The header (magic, this version, length, checksum) followed by `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&sha256(payload));
    out.extend_from_slice(payload);
    out
}

pub fn decode(b: &[u8]) -> Result<State, Refused> {
    if b.len() < MAGIC.len() || &b[..MAGIC.len()] != MAGIC {
        return Err(Refused::NotABlob);
    }
    let rest = &b[MAGIC.len()..];
    let Some(v) = rest.get(..4) else {
        return Err(Refused::Truncated {
            expected: HEADER as u64,
            got: b.len() as u64,
        });
    };
    let found = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    if found != VERSION {
        return Err(Refused::Version {
            found,
            supported: VERSION,
        });
    }
    if b.len() < HEADER {
        return Err(Refused::Truncated {
            expected: HEADER as u64,
            got: b.len() as u64,
        });
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&rest[4..12]);
    let len = u64::from_be_bytes(len8);
    if len > MAX_BLOB as u64 {
        return Err(Refused::TooLarge { len });
    }
    let payload = &b[HEADER..];
    let got = payload.len() as u64;
    if got < len {
        return Err(Refused::Truncated { expected: len, got });
    }
    if got > len {
        return Err(Refused::TrailingBytes { extra: got - len });
    }
    if sha256(payload) != rest[12..44] {
        return Err(Refused::Checksum);
    }
    let s: State = serde_json::from_slice(payload).map_err(|e| Refused::Payload(e.to_string()))?;
    validate(&s)?;
    Ok(s)
}

/// What the types do not say: fds the new process can own, one session per peer and per fd,
/// a read buffer of a plausible size.
fn validate(s: &State) -> Result<(), Refused> {
    let mut fds = std::collections::HashSet::new();
    let mut peers = std::collections::HashSet::new();
    let bfd_fds = s
        .bfd
        .sessions
        .iter()
        .map(|b| b.tx_fd)
        .chain(s.bfd.receivers.iter().map(|r| r.1));
    for fd in bfd_fds {
        if fd < 3 || !fds.insert(fd) {
            return Err(Refused::Invalid(format!(
                "BFD socket fd {fd} is a standard stream or named twice"
            )));
        }
    }
    for x in &s.sessions {
        if x.fd < 3 {
            return Err(Refused::Invalid(format!(
                "session with {}: fd {} is a standard stream",
                x.fsm.peer, x.fd
            )));
        }
        if !fds.insert(x.fd) {
            return Err(Refused::Invalid(format!("fd {} named twice", x.fd)));
        }
        if !peers.insert(x.fsm.peer.as_str()) {
            return Err(Refused::Invalid(format!(
                "two sessions for peer {}",
                x.fsm.peer
            )));
        }
        if x.pending.len() > MAX_PENDING {
            return Err(Refused::Invalid(format!(
                "session with {}: {} unparsed bytes",
                x.fsm.peer,
                x.pending.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One Established session with a keepalive due in 1.2 s (also for `fdstore`'s tests).
    pub(crate) fn state() -> State {
        State {
            from_version: "0.1.0".into(),
            from_pid: 42,
            requested_at_ms: 1_700_000_000_000,
            sessions: vec![Session {
                fd: 7,
                fsm: ExportedSession {
                    peer: "tor1".into(),
                    remote_as: 65000,
                    local_as: 65101,
                    router_id: "192.0.2.10".parse().unwrap(),
                    our_hold: 9,
                    hold: 9,
                    peer_router_id: Some("192.0.2.1".parse().unwrap()),
                    peer_route_refresh: true,
                    local: "192.0.2.10:40000".parse().unwrap(),
                    families: vec!["ipv4-unicast".into()],
                    four_octet_as: true,
                    next_hop_v4: Some("192.0.2.10".parse().unwrap()),
                    next_hop_v6: None,
                    add_path_v4: false,
                    add_path_v6: false,
                    explained: vec![],
                    route_refresh_received: 0,
                    route_refresh_resends: 0,
                    rib_out: vec![],
                },
                keepalive_in_ms: Some(1200),
                hold_in_ms: Some(8000),
                pending: vec![0xff; 5],
                established_since_unix_ms: Some(1_700_000_000_000),
            }],
            engine: EngineExport::default(),
            bfd: Default::default(),
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&state())).unwrap(), state());
    }

    #[test]
    fn every_truncation_is_refused() {
        let b = encode(&state());
        for n in 0..b.len() {
            assert!(
                decode(&b[..n]).is_err(),
                "accepted {n} of {} bytes",
                b.len()
            );
        }
    }

    #[test]
    fn another_version_is_refused_with_both_numbers() {
        let mut b = encode(&state());
        b[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&2u32.to_be_bytes());
        let e = decode(&b).unwrap_err();
        assert_eq!(
            e,
            Refused::Version {
                found: 2,
                supported: 1
            }
        );
        assert!(e.to_string().contains("version 2"));
    }

    #[test]
    fn a_flipped_payload_byte_is_refused() {
        let b = encode(&state());
        for i in HEADER..b.len() {
            let mut t = b.clone();
            t[i] ^= 0x01;
            assert_eq!(decode(&t), Err(Refused::Checksum), "byte {i}");
        }
    }

    #[test]
    fn trailing_bytes_and_bad_magic_are_refused() {
        let mut b = encode(&state());
        b.push(0);
        assert_eq!(decode(&b), Err(Refused::TrailingBytes { extra: 1 }));
        assert_eq!(decode(b"hello"), Err(Refused::NotABlob));
    }

    /// The fuzz target's property (fuzz/fuzz_targets/handover_blob.rs) on a few inputs.
    #[test]
    fn accepted_payloads_survive_a_round_trip() {
        let good = serde_json::to_vec(&state()).unwrap();
        let spaced = serde_json::to_vec_pretty(&state()).unwrap();
        for p in [
            &good[..],
            &spaced[..],
            b"{}",
            b"null",
            b"\xff\xfe",
            b"{\"sessions\": 1}",
        ] {
            if let Ok(s) = decode(&frame(p)) {
                assert_eq!(decode(&encode(&s)).ok(), Some(s));
            }
        }
        assert!(decode(&frame(&spaced)).is_ok());
    }

    /// A learned baseline crosses the upgrade bit for bit: without serde_json's `float_roundtrip`
    /// about a third of all f64 values read back one ulp off, and the fuzz target's round trip fails.
    #[test]
    fn floats_read_back_bit_for_bit() {
        for x in [
            1.0715660391465826e-75,
            -1.603964615428183e143,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
        ] {
            let back: f64 = serde_json::from_slice(&serde_json::to_vec(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
    }

    /// The committed seed corpus starts the fuzzer from a blob that is accepted (so the JSON and
    /// validation paths are reached from the first run), and stays one as the format moves.
    #[test]
    fn the_fuzz_seed_is_an_accepted_blob() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/handover_blob");
        let accepted = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| decode(&std::fs::read(e.as_ref().unwrap().path()).unwrap()).is_ok())
            .count();
        assert_eq!(accepted, 1);
    }

    #[test]
    fn checksummed_but_inconsistent_state_is_refused() {
        let mut s = state();
        s.sessions[0].fd = 1;
        assert!(matches!(decode(&encode(&s)), Err(Refused::Invalid(_))));
        let mut s = state();
        let again = s.sessions[0].clone();
        s.sessions.push(again);
        assert!(matches!(decode(&encode(&s)), Err(Refused::Invalid(_))));
    }
}
