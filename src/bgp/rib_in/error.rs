//! Typed outcomes of decoding a received UPDATE (RFC 7606): what was wrong ([`Malformed`]) and
//! what the receiver does about it ([`AttrError`]). Callers match on [`AttrError`]; logs print
//! its `Display`, which says what was wrong and where.

use std::fmt;

use crate::bgp::error::{BgpError, UpdateError, UpdateErrorAction};
use crate::route::Family;

/// Which run of NLRI entries a prefix error was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NlriField {
    Withdrawn,
    Nlri,
    MpReach,
    MpUnreach,
}

impl fmt::Display for NlriField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NlriField::Withdrawn => "withdrawn routes",
            NlriField::Nlri => "NLRI",
            NlriField::MpReach => "MP_REACH_NLRI",
            NlriField::MpUnreach => "MP_UNREACH_NLRI",
        })
    }
}

/// A syntax error in a run of (path id, length, prefix) entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NlriError {
    TruncatedPathId,
    PathIdWithoutPrefix,
    PrefixTooLong { bits: u8, max: u8 },
    TruncatedPrefix { bits: u8 },
}

impl fmt::Display for NlriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NlriError::TruncatedPathId => write!(f, "truncated path identifier"),
            NlriError::PathIdWithoutPrefix => write!(f, "path identifier without a prefix"),
            NlriError::PrefixTooLong { bits, max } => {
                write!(f, "prefix length {bits} is longer than {max}")
            }
            NlriError::TruncatedPrefix { bits } => {
                write!(f, "prefix of length {bits} is truncated")
            }
        }
    }
}

/// A malformed AS_PATH (RFC 4271 4.3, RFC 6793).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsPathError {
    TruncatedSegmentHeader,
    SegmentType(u8),
    EmptySegment,
    TruncatedSegment { asns: usize },
}

impl fmt::Display for AsPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsPathError::TruncatedSegmentHeader => write!(f, "truncated segment header"),
            AsPathError::SegmentType(t) => write!(f, "segment type {t}"),
            AsPathError::EmptySegment => write!(f, "empty segment"),
            AsPathError::TruncatedSegment { asns } => {
                write!(f, "segment of {asns} ASNs is truncated")
            }
        }
    }
}

/// What was wrong with a received UPDATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A length field (withdrawn routes, total path attributes) overruns the body.
    LengthOverrun {
        field: &'static str,
        len: usize,
        body: usize,
    },
    /// MP_REACH_NLRI (14) or MP_UNREACH_NLRI (15) twice (RFC 7606 3j).
    DuplicateMpAttribute {
        code: u8,
    },
    /// A well-known (non-optional) attribute we do not recognize (RFC 4271 6.3).
    UnrecognizedWellKnown {
        code: u8,
    },
    /// A second copy of an attribute (RFC 7606 3g: all but the first are discarded).
    Repeated {
        code: u8,
    },
    TruncatedAttributeHeader,
    AttributeOverrun {
        code: u8,
        len: usize,
    },
    /// Flags in conflict with the attribute's kind (RFC 7606 3c).
    Flags {
        code: u8,
        flags: u8,
    },
    Origin {
        len: usize,
    },
    AsPath(AsPathError),
    NextHop {
        len: usize,
    },
    Communities {
        len: usize,
    },
    LargeCommunities {
        len: usize,
    },
    MpReachTooShort {
        len: usize,
    },
    MpReachNextHopOverrun {
        nh_len: usize,
        len: usize,
    },
    MpReachNextHopLength {
        nh_len: usize,
        family: Family,
    },
    MpUnreachTooShort {
        len: usize,
    },
    /// Mandatory attributes missing while there is NLRI (RFC 7606 3d).
    Missing(Vec<&'static str>),
    Nlri {
        field: NlriField,
        error: NlriError,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::LengthOverrun { field, len, body } => {
                write!(f, "{field} {len} overruns the {body}-byte UPDATE body")
            }
            Malformed::DuplicateMpAttribute { code } => {
                write!(f, "attribute {code} (MP_REACH/MP_UNREACH) appears twice")
            }
            Malformed::UnrecognizedWellKnown { code } => {
                write!(f, "unrecognized well-known attribute {code}")
            }
            Malformed::Repeated { code } => {
                write!(f, "attribute {code} repeated; the first copy is kept")
            }
            Malformed::TruncatedAttributeHeader => write!(f, "truncated path attribute header"),
            Malformed::AttributeOverrun { code, len } => {
                write!(
                    f,
                    "attribute {code} length {len} overruns the attribute list"
                )
            }
            Malformed::Flags { code, flags } => {
                write!(f, "attribute {code} has flags {flags:#04x}")
            }
            Malformed::Origin { len } => write!(f, "malformed ORIGIN ({len} bytes)"),
            Malformed::AsPath(e) => write!(f, "malformed AS_PATH: {e}"),
            Malformed::NextHop { len } => write!(f, "NEXT_HOP of {len} bytes"),
            Malformed::Communities { len } => write!(f, "COMMUNITIES of {len} bytes"),
            Malformed::LargeCommunities { len } => write!(f, "LARGE_COMMUNITIES of {len} bytes"),
            Malformed::MpReachTooShort { len } => write!(f, "MP_REACH_NLRI of {len} bytes"),
            Malformed::MpReachNextHopOverrun { nh_len, len } => write!(
                f,
                "MP_REACH_NLRI next-hop length {nh_len} overruns the {len}-byte attribute"
            ),
            Malformed::MpReachNextHopLength { nh_len, family } => {
                write!(f, "MP_REACH_NLRI next-hop length {nh_len} for {family}")
            }
            Malformed::MpUnreachTooShort { len } => write!(f, "MP_UNREACH_NLRI of {len} bytes"),
            Malformed::Missing(attrs) => write!(f, "missing {}", attrs.join(", ")),
            Malformed::Nlri { field, error } => write!(f, "{field}: {error}"),
        }
    }
}

/// One RFC 7606 outcome of decoding an UPDATE, least to most severe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrError {
    /// The attribute is dropped; the routes stay (RFC 7606 2 "attribute discard").
    Discard { code: u8, why: Malformed },
    /// Every route the UPDATE announces is handled as withdrawn.
    TreatAsWithdraw(Malformed),
    /// The family's NLRI cannot be located: its routes from this peer are dropped and the
    /// family ignored until the session restarts (RFC 4760 7, RFC 7606 5.3).
    AfiSafiDisable { family: Family, why: Malformed },
    /// NOTIFICATION UPDATE Message Error with this subcode and data, then close.
    SessionReset {
        subcode: UpdateError,
        data: Vec<u8>,
        why: Malformed,
    },
}

impl AttrError {
    pub fn action(&self) -> UpdateErrorAction {
        match self {
            AttrError::Discard { .. } => UpdateErrorAction::AttributeDiscard,
            AttrError::TreatAsWithdraw(_) => UpdateErrorAction::TreatAsWithdraw,
            AttrError::AfiSafiDisable { .. } => UpdateErrorAction::AfiSafiDisable,
            AttrError::SessionReset { .. } => UpdateErrorAction::SessionReset,
        }
    }

    pub fn why(&self) -> &Malformed {
        match self {
            AttrError::Discard { why, .. }
            | AttrError::TreatAsWithdraw(why)
            | AttrError::AfiSafiDisable { why, .. }
            | AttrError::SessionReset { why, .. } => why,
        }
    }

    /// The NOTIFICATION a session reset owes the peer; `None` for the lighter outcomes.
    pub fn to_bgp_error(&self) -> Option<BgpError> {
        match self {
            AttrError::SessionReset { subcode, data, why } => {
                Some(BgpError::update(*subcode, data.clone(), why.to_string()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrError::Discard { why, .. } => write!(f, "attribute discarded: {why}"),
            AttrError::TreatAsWithdraw(why) => write!(f, "treated as withdraw: {why}"),
            AttrError::AfiSafiDisable { family, why } => {
                write!(f, "{family} disabled: {why}")
            }
            AttrError::SessionReset { subcode, why, .. } => {
                write!(f, "session reset (3/{}): {why}", subcode.wire())
            }
        }
    }
}

impl std::error::Error for AttrError {}
