//! BFD authentication, RFC 5880 6.7.4: Keyed SHA1 and Meticulous Keyed SHA1. Pure: signing and
//! verifying one packet, and the receive sequence-number window. Owns the key bytes inside the
//! BFD thread (zeroed when dropped, never printed); knows nothing of files or sockets.
//!
//! The digest is a plain SHA1 over the whole packet with the key, padded with zeros to 20 bytes,
//! in the Auth Key/Digest field (not an HMAC): BIRD 2 computes it so; FRR's bfdd (10.x keychain
//! authentication) computes an HMAC-SHA1 instead and does not interoperate (FRR issue 23274).

use std::fmt;
use std::time::{Duration, Instant};

use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::packet::{
    encode_wire, AuthSection, Packet, RxError, AUTH_KEYED_SHA1, AUTH_METICULOUS_KEYED_SHA1,
    SHA1_AUTH_LEN,
};

/// Longest key: the Auth Key/Digest field (6.7.4).
pub const MAX_KEY_LEN: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// Sequence number may repeat; we advance it when the contents change and at least once a
    /// second (as BIRD does).
    KeyedSha1,
    /// Sequence number advances with every packet.
    MeticulousKeyedSha1,
}

impl AuthType {
    pub fn code(self) -> u8 {
        match self {
            AuthType::KeyedSha1 => AUTH_KEYED_SHA1,
            AuthType::MeticulousKeyedSha1 => AUTH_METICULOUS_KEYED_SHA1,
        }
    }

    pub fn meticulous(self) -> bool {
        self == AuthType::MeticulousKeyedSha1
    }

    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::KeyedSha1 => "keyed-sha1",
            AuthType::MeticulousKeyedSha1 => "meticulous-keyed-sha1",
        }
    }

    pub fn parse(s: &str) -> Option<AuthType> {
        match s {
            "keyed-sha1" => Some(AuthType::KeyedSha1),
            "meticulous-keyed-sha1" => Some(AuthType::MeticulousKeyedSha1),
            _ => None,
        }
    }
}

/// The key as the Auth Key/Digest field carries it before hashing: padded with zeros to 20
/// bytes. Zeroed on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; MAX_KEY_LEN]);

impl Key {
    /// 1-20 bytes, else None.
    pub fn new(bytes: &[u8]) -> Option<Key> {
        if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
            return None;
        }
        let mut k = [0u8; MAX_KEY_LEN];
        k[..bytes.len()].copy_from_slice(bytes);
        Some(Key(k))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// One session's authentication: the type, the Auth Key ID we send and accept, the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub auth_type: AuthType,
    pub key_id: u8,
    pub key: Key,
}

fn sha1_with_key(p: &Packet, a: AuthSection, key: &Key) -> [u8; 20] {
    let mut q = *p;
    q.auth = Some(AuthSection { digest: key.0, ..a });
    let mut wire = encode_wire(&q);
    let mut out = [0u8; 20];
    out.copy_from_slice(digest(&SHA1_FOR_LEGACY_USE_ONLY, wire.bytes()).as_ref());
    // Both copies hold the key in clear.
    wire.zeroize();
    if let Some(a) = &mut q.auth {
        a.digest.zeroize();
    }
    out
}

/// `p` with its authentication section for sequence number `seq` (6.7.4 transmission).
pub fn sign(p: &Packet, cfg: &AuthConfig, seq: u32) -> Packet {
    let a = AuthSection {
        auth_type: cfg.auth_type.code(),
        auth_len: SHA1_AUTH_LEN,
        key_id: cfg.key_id,
        reserved: 0,
        seq,
        digest: [0; 20],
    };
    let mut out = *p;
    out.auth = Some(AuthSection {
        digest: sha1_with_key(p, a, &cfg.key),
        ..a
    });
    out
}

/// Whether `seq` lies in the 6.7.4 window after `last`, in 32-bit circular space: `last` to
/// `last + 3 * detect_mult` for Keyed SHA1, `last + 1` to that for Meticulous.
pub fn seq_in_window(last: u32, seq: u32, meticulous: bool, detect_mult: u8) -> bool {
    let ahead = seq.wrapping_sub(last);
    let max = 3 * u32::from(detect_mult);
    ahead <= max && (!meticulous || ahead >= 1)
}

/// bfd.AuthSeqKnown and bfd.RcvAuthSeq, plus when the last packet was accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxSeq {
    last: Option<u32>,
    at: Option<Instant>,
}

impl RxSeq {
    /// bfd.RcvAuthSeq of the last accepted packet (for status; None before the first).
    pub fn last(&self) -> Option<u32> {
        self.last
    }

    /// 6.8.1: bfd.AuthSeqKnown goes back to 0 after no packet for twice the Detection Time.
    fn known(&self, now: Instant, detect_time: Duration) -> Option<u32> {
        let fresh = self
            .at
            .is_some_and(|t| now.saturating_duration_since(t) < detect_time * 2);
        self.last.filter(|_| fresh)
    }
}

/// 6.7.4 reception of `p` (its A bit already found set): key id, type, sequence window, digest,
/// in that order. On success the window moves to the packet's sequence number; on failure
/// nothing changes. `detect_time`: the session's, for forgetting the sequence number.
pub fn verify(
    p: &Packet,
    cfg: &AuthConfig,
    rx: &mut RxSeq,
    now: Instant,
    detect_time: Duration,
) -> Result<(), RxError> {
    let Some(a) = p.auth else {
        return Err(RxError::AuthMissing);
    };
    if a.auth_type != cfg.auth_type.code() {
        return Err(RxError::AuthTypeMismatch {
            auth_type: a.auth_type,
        });
    }
    if a.key_id != cfg.key_id {
        return Err(RxError::AuthKeyId { key_id: a.key_id });
    }
    if a.auth_len != SHA1_AUTH_LEN {
        return Err(RxError::AuthLenMismatch {
            auth_type: a.auth_type,
            auth_len: a.auth_len,
        });
    }
    if let Some(last) = rx.known(now, detect_time) {
        if !seq_in_window(last, a.seq, cfg.auth_type.meticulous(), p.detect_mult) {
            return Err(RxError::AuthSequence { seq: a.seq, last });
        }
    }
    let want = sha1_with_key(p, a, &cfg.key);
    if !bool::from(want.ct_eq(&a.digest)) {
        return Err(RxError::AuthDigest);
    }
    rx.last = Some(a.seq);
    rx.at = Some(now);
    Ok(())
}

impl RxSeq {
    /// For the in-place upgrade: the last accepted sequence number and its age.
    pub fn export(&self, now: Instant) -> (Option<u32>, Option<Duration>) {
        (self.last, self.at.map(|t| now.saturating_duration_since(t)))
    }

    pub fn resume(last: Option<u32>, age: Option<Duration>, now: Instant) -> RxSeq {
        RxSeq {
            last,
            at: age.map(|a| now.checked_sub(a).unwrap_or(now)),
        }
    }
}

/// bfd.XmitAuthSeq: random start (6.8.1), advanced per 6.7.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxSeq {
    seq: u32,
    /// Contents (without the auth section) of the last packet sent, and when `seq` last moved.
    last: Option<(Packet, Instant)>,
}

/// Keyed SHA1: how long a sequence number may be reused for unchanged contents.
const KEYED_SEQ_HOLD: Duration = Duration::from_secs(1);

impl TxSeq {
    pub fn new(start: u32) -> TxSeq {
        TxSeq {
            seq: start,
            last: None,
        }
    }

    /// bfd.XmitAuthSeq now, for the in-place upgrade. The new process goes on from it with
    /// `new`, whose first packet advances it: inside the peer's window (6.7.4) for both types.
    pub fn current(&self) -> u32 {
        self.seq
    }

    /// The sequence number for unsigned packet `p` sent at `now`: Meticulous advances it every
    /// packet; Keyed when the contents change (6.7.3's SHOULD) or a second has passed.
    pub fn next(&mut self, p: &Packet, meticulous: bool, now: Instant) -> u32 {
        let advance = match self.last {
            None => true,
            Some((q, at)) => {
                meticulous || q != *p || now.saturating_duration_since(at) >= KEYED_SEQ_HOLD
            }
        };
        if advance {
            self.seq = self.seq.wrapping_add(1);
            self.last = Some((*p, now));
        }
        self.seq
    }
}
