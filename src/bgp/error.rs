//! Typed BGP protocol errors: NOTIFICATION codes and subcodes (RFC 4271 4.5 and 6, RFC 4486
//! Cease subcodes, RFC 6608 FSM subcodes, RFC 7313, RFC 8203/9003 shutdown communication, RFC 9384
//! BFD Down), the RFC 7606 error-handling actions, and [`BgpError`], a detected error carrying
//! exactly the NOTIFICATION it owes the peer.
//!
//! Pure data: no I/O, nothing from the rest of the crate. Every (code, subcode) pair round-trips
//! through [`ErrorCode::from_wire`] / [`ErrorCode::wire`], unknown ones included, so a peer's
//! NOTIFICATION is shown as it was sent.

use std::fmt;

/// Declares a subcode enum: named values, `Other(u8)` for the rest, wire conversion and names.
macro_rules! subcodes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A subcode this enum does not name (kept as received).
            Other(u8),
        }

        impl $name {
            pub fn from_wire(s: u8) -> $name {
                match s {
                    $($n => $name::$v,)*
                    n => $name::Other(n),
                }
            }

            pub fn wire(self) -> u8 {
                match self {
                    $($name::$v => $n,)*
                    $name::Other(n) => n,
                }
            }

            /// The registry name; `None` for subcode 0 and unnamed subcodes.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $($name::$v => Some($text),)*
                    $name::Other(_) => None,
                }
                .filter(|s| !s.is_empty())
            }
        }
    };
}

subcodes!(
    /// Code 1 (RFC 4271 6.1).
    HeaderError {
        Unspecific = 0 => "",
        ConnectionNotSynchronized = 1 => "Connection Not Synchronized",
        BadMessageLength = 2 => "Bad Message Length",
        BadMessageType = 3 => "Bad Message Type",
    }
);

subcodes!(
    /// Code 2 (RFC 4271 6.2, RFC 5492, RFC 9234).
    OpenError {
        Unspecific = 0 => "",
        UnsupportedVersion = 1 => "Unsupported Version Number",
        BadPeerAs = 2 => "Bad Peer AS",
        BadBgpIdentifier = 3 => "Bad BGP Identifier",
        UnsupportedOptionalParameter = 4 => "Unsupported Optional Parameter",
        UnacceptableHoldTime = 6 => "Unacceptable Hold Time",
        UnsupportedCapability = 7 => "Unsupported Capability",
        RoleMismatch = 11 => "Role Mismatch",
    }
);

subcodes!(
    /// Code 3 (RFC 4271 6.3).
    UpdateError {
        Unspecific = 0 => "",
        MalformedAttributeList = 1 => "Malformed Attribute List",
        UnrecognizedWellKnownAttribute = 2 => "Unrecognized Well-known Attribute",
        MissingWellKnownAttribute = 3 => "Missing Well-known Attribute",
        AttributeFlagsError = 4 => "Attribute Flags Error",
        AttributeLengthError = 5 => "Attribute Length Error",
        InvalidOrigin = 6 => "Invalid ORIGIN Attribute",
        InvalidNextHop = 8 => "Invalid NEXT_HOP Attribute",
        OptionalAttributeError = 9 => "Optional Attribute Error",
        InvalidNetworkField = 10 => "Invalid Network Field",
        MalformedAsPath = 11 => "Malformed AS_PATH",
    }
);

subcodes!(
    /// Code 5 (RFC 6608).
    FsmError {
        Unspecific = 0 => "",
        UnexpectedInOpenSent = 1 => "Unexpected Message in OpenSent State",
        UnexpectedInOpenConfirm = 2 => "Unexpected Message in OpenConfirm State",
        UnexpectedInEstablished = 3 => "Unexpected Message in Established State",
    }
);

subcodes!(
    /// Code 6 (RFC 4486, RFC 8538, RFC 9384).
    Cease {
        Unspecific = 0 => "",
        MaxPrefixes = 1 => "Maximum Number of Prefixes Reached",
        /// May carry an RFC 9003 shutdown communication.
        AdministrativeShutdown = 2 => "Administrative Shutdown",
        PeerDeconfigured = 3 => "Peer De-configured",
        /// May carry an RFC 9003 shutdown communication.
        AdministrativeReset = 4 => "Administrative Reset",
        ConnectionRejected = 5 => "Connection Rejected",
        OtherConfigurationChange = 6 => "Other Configuration Change",
        CollisionResolution = 7 => "Connection Collision Resolution",
        OutOfResources = 8 => "Out of Resources",
        HardReset = 9 => "Hard Reset",
        BfdDown = 10 => "BFD Down",
    }
);

subcodes!(
    /// Code 7 (RFC 7313).
    RouteRefreshError {
        Reserved = 0 => "",
        InvalidMessageLength = 1 => "Invalid Message Length",
    }
);

/// A NOTIFICATION error code with its subcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Header(HeaderError),
    Open(OpenError),
    Update(UpdateError),
    /// Code 4; subcode 0 (anything else is kept as [`ErrorCode::Unknown`]).
    HoldTimerExpired,
    Fsm(FsmError),
    Cease(Cease),
    RouteRefresh(RouteRefreshError),
    Unknown {
        code: u8,
        subcode: u8,
    },
}

impl ErrorCode {
    pub fn from_wire(code: u8, subcode: u8) -> ErrorCode {
        match code {
            1 => ErrorCode::Header(HeaderError::from_wire(subcode)),
            2 => ErrorCode::Open(OpenError::from_wire(subcode)),
            3 => ErrorCode::Update(UpdateError::from_wire(subcode)),
            4 if subcode == 0 => ErrorCode::HoldTimerExpired,
            5 => ErrorCode::Fsm(FsmError::from_wire(subcode)),
            6 => ErrorCode::Cease(Cease::from_wire(subcode)),
            7 => ErrorCode::RouteRefresh(RouteRefreshError::from_wire(subcode)),
            _ => ErrorCode::Unknown { code, subcode },
        }
    }

    /// (code, subcode) as on the wire.
    pub fn wire(self) -> (u8, u8) {
        match self {
            ErrorCode::Header(s) => (1, s.wire()),
            ErrorCode::Open(s) => (2, s.wire()),
            ErrorCode::Update(s) => (3, s.wire()),
            ErrorCode::HoldTimerExpired => (4, 0),
            ErrorCode::Fsm(s) => (5, s.wire()),
            ErrorCode::Cease(s) => (6, s.wire()),
            ErrorCode::RouteRefresh(s) => (7, s.wire()),
            ErrorCode::Unknown { code, subcode } => (code, subcode),
        }
    }

    /// Whether the data field may hold an RFC 9003 shutdown communication.
    pub fn carries_shutdown_message(self) -> bool {
        matches!(
            self,
            ErrorCode::Cease(Cease::AdministrativeShutdown | Cease::AdministrativeReset)
        )
    }

    /// Short stable label for metrics and JSON (`cease`, `hold_timer_expired`, ...).
    pub fn label(self) -> &'static str {
        match self {
            ErrorCode::Header(_) => "message_header_error",
            ErrorCode::Open(_) => "open_message_error",
            ErrorCode::Update(_) => "update_message_error",
            ErrorCode::HoldTimerExpired => "hold_timer_expired",
            ErrorCode::Fsm(_) => "fsm_error",
            ErrorCode::Cease(_) => "cease",
            ErrorCode::RouteRefresh(_) => "route_refresh_error",
            ErrorCode::Unknown { .. } => "unknown_error",
        }
    }
}

/// "2/6 OPEN Message Error / Unacceptable Hold Time"
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, subcode) = self.wire();
        let (name, sub) = match *self {
            ErrorCode::Header(s) => ("Message Header Error", s.name()),
            ErrorCode::Open(s) => ("OPEN Message Error", s.name()),
            ErrorCode::Update(s) => ("UPDATE Message Error", s.name()),
            ErrorCode::HoldTimerExpired => ("Hold Timer Expired", None),
            ErrorCode::Fsm(s) => ("Finite State Machine Error", s.name()),
            ErrorCode::Cease(s) => ("Cease", s.name()),
            ErrorCode::RouteRefresh(s) => ("ROUTE-REFRESH Message Error", s.name()),
            ErrorCode::Unknown { .. } => {
                return write!(
                    f,
                    "{code}/{subcode} unknown error code {code} subcode {subcode}"
                )
            }
        };
        match (sub, subcode) {
            (Some(s), _) => write!(f, "{code}/{subcode} {name} / {s}"),
            (None, 0) => write!(f, "{code}/{subcode} {name}"),
            (None, n) => write!(f, "{code}/{subcode} {name} / subcode {n}"),
        }
    }
}

/// RFC 7606 section 2: what a receiver does with a malformed UPDATE, from least to most severe
/// in reverse (session reset is the last resort).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UpdateErrorAction {
    /// Drop the malformed attribute, keep the route.
    AttributeDiscard,
    /// Handle the UPDATE's NLRI as withdrawn.
    TreatAsWithdraw,
    /// Stop using the AFI/SAFI on this session (RFC 4760 7).
    AfiSafiDisable,
    /// NOTIFICATION and close (RFC 4271 behaviour).
    SessionReset,
}

/// A protocol error we detected, carrying exactly the NOTIFICATION that reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpError {
    pub code: ErrorCode,
    pub data: Vec<u8>,
    /// Human explanation for our logs (not sent).
    pub what: String,
}

impl BgpError {
    pub fn new(code: ErrorCode, data: Vec<u8>, what: impl Into<String>) -> BgpError {
        BgpError {
            code,
            data,
            what: what.into(),
        }
    }

    pub fn header(sub: HeaderError, data: Vec<u8>, what: impl Into<String>) -> BgpError {
        BgpError::new(ErrorCode::Header(sub), data, what)
    }

    pub fn open(sub: OpenError, data: Vec<u8>, what: impl Into<String>) -> BgpError {
        BgpError::new(ErrorCode::Open(sub), data, what)
    }

    pub fn update(sub: UpdateError, data: Vec<u8>, what: impl Into<String>) -> BgpError {
        BgpError::new(ErrorCode::Update(sub), data, what)
    }

    pub fn fsm(sub: FsmError, what: impl Into<String>) -> BgpError {
        BgpError::new(ErrorCode::Fsm(sub), Vec::new(), what)
    }

    /// Bad Message Length (1/2) for a message whose body has `body_len` bytes; the data is the
    /// erroneous length field.
    pub fn bad_length(body_len: usize, what: impl Into<String>) -> BgpError {
        // 19: the message header (error.rs sits below wire.rs and does not import it).
        let total = (body_len + 19).min(u16::MAX as usize) as u16;
        BgpError::header(
            HeaderError::BadMessageLength,
            total.to_be_bytes().to_vec(),
            what,
        )
    }
}

impl fmt::Display for BgpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (NOTIFICATION {})", self.what, self.code)
    }
}

impl std::error::Error for BgpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_subcode_pair_round_trips() {
        for code in 0..=255u8 {
            for subcode in 0..=255u8 {
                let c = ErrorCode::from_wire(code, subcode);
                assert_eq!(c.wire(), (code, subcode));
                let _ = c.to_string();
            }
        }
    }

    #[test]
    fn names_are_operator_friendly() {
        assert_eq!(
            ErrorCode::Open(OpenError::UnacceptableHoldTime).to_string(),
            "2/6 OPEN Message Error / Unacceptable Hold Time"
        );
        assert_eq!(
            ErrorCode::HoldTimerExpired.to_string(),
            "4/0 Hold Timer Expired"
        );
        assert_eq!(
            ErrorCode::from_wire(6, 6).to_string(),
            "6/6 Cease / Other Configuration Change"
        );
        assert_eq!(ErrorCode::from_wire(6, 0).to_string(), "6/0 Cease");
        assert_eq!(
            ErrorCode::from_wire(6, 99).to_string(),
            "6/99 Cease / subcode 99"
        );
        assert_eq!(
            ErrorCode::from_wire(4, 1).to_string(),
            "4/1 unknown error code 4 subcode 1"
        );
        assert!(ErrorCode::Cease(Cease::AdministrativeReset).carries_shutdown_message());
        assert!(!ErrorCode::Cease(Cease::PeerDeconfigured).carries_shutdown_message());
    }
}
