//! What a peer session reports and is told from outside: FSM state, the status snapshot the
//! daemon shows, typed reasons a session ended ([`EndReason`]) and typed reasons to close one
//! ([`StopReason`], sent as a [`super::Command`]).
//!
//! Plain data shared by the FSM (`fsm`), the driver (`conn`), the reconnect loop (`session`) and
//! the daemon; it imports none of them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::error::{BgpError, Cease, ErrorCode};
use super::wire::Notification;
use crate::route::Family;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerState {
    #[default]
    Idle,
    Connect,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerState::Idle => "Idle",
            PeerState::Connect => "Connect",
            PeerState::OpenSent => "OpenSent",
            PeerState::OpenConfirm => "OpenConfirm",
            PeerState::Established => "Established",
        })
    }
}

/// Why we close a session ourselves. Each maps onto one Cease subcode (RFC 4486), so the router
/// logs what happened instead of a generic "administrative shutdown".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Planned stop of the daemon (6/2 with the text as RFC 9003 shutdown communication).
    Shutdown(String),
    /// The peer was removed from the configuration (6/3).
    Deconfigured,
    /// A reload changed the peer's parameters; a new session follows (6/6).
    ConfigChanged,
    /// BFD declared the path down (6/10, RFC 9384).
    BfdDown,
    /// Operator-requested reset (6/4 with the text).
    Reset(String),
}

impl StopReason {
    pub fn cease(&self) -> Cease {
        match self {
            StopReason::Shutdown(_) => Cease::AdministrativeShutdown,
            StopReason::Deconfigured => Cease::PeerDeconfigured,
            StopReason::ConfigChanged => Cease::OtherConfigurationChange,
            StopReason::BfdDown => Cease::BfdDown,
            StopReason::Reset(_) => Cease::AdministrativeReset,
        }
    }

    /// Text for the shutdown communication (empty when the subcode cannot carry one).
    pub fn text(&self) -> &str {
        match self {
            StopReason::Shutdown(t) | StopReason::Reset(t) => t,
            _ => "",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Shutdown(t) => {
                write!(f, "administrative shutdown \"{}\"", t.escape_debug())
            }
            StopReason::Deconfigured => f.write_str("peer removed from configuration"),
            StopReason::ConfigChanged => f.write_str("peer configuration changed"),
            StopReason::BfdDown => f.write_str("BFD session down"),
            StopReason::Reset(t) => write!(f, "administrative reset \"{}\"", t.escape_debug()),
        }
    }
}

/// Why a connection attempt or session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// TCP connect answered with a reset.
    ConnectRefused { remote: SocketAddr, detail: String },
    /// No TCP answer within the connect timeout. `detail` says what the silence most likely
    /// means (a key or GTSM mismatch when the address answers other traffic; see `transport`).
    ConnectTimeout {
        remote: SocketAddr,
        after: Duration,
        detail: String,
    },
    /// Any other local socket failure before the connection was up (bind, unreachable, ...).
    ConnectFailed(String),
    /// Nothing from the peer within the hold time (we sent 4/0).
    HoldTimerExpired { state: PeerState, after: Duration },
    /// The peer's bytes broke the protocol; we sent this NOTIFICATION.
    ProtocolError(BgpError),
    /// The peer sent a NOTIFICATION.
    PeerNotification(Notification),
    /// The peer closed TCP without a NOTIFICATION.
    PeerClosed { state: PeerState },
    /// The peer's TCP reset the connection (e.g. the router process was killed).
    PeerReset { state: PeerState },
    /// Reading or writing the socket failed.
    Io(String),
    /// The peer stopped reading: a write did not complete within the limit.
    WriteBlocked { after: Duration },
    /// We closed it (stop, reconfiguration, BFD).
    Stopped(StopReason),
    /// A local limit or bug (e.g. our OPEN could not be built).
    Local(String),
}

impl EndReason {
    /// Stable label for metrics and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            EndReason::ConnectRefused { .. } => "connect_refused",
            EndReason::ConnectTimeout { .. } => "connect_timeout",
            EndReason::ConnectFailed(_) => "connect_failed",
            EndReason::HoldTimerExpired { .. } => "hold_timer_expired",
            EndReason::ProtocolError(_) => "protocol_error",
            EndReason::PeerNotification(n) if n.is_cease() => "peer_cease",
            EndReason::PeerNotification(_) => "peer_notification",
            EndReason::PeerClosed { .. } => "peer_closed",
            EndReason::PeerReset { .. } => "peer_reset",
            EndReason::Io(_) => "io_error",
            EndReason::WriteBlocked { .. } => "write_blocked",
            EndReason::Stopped(_) => "admin_stop",
            EndReason::Local(_) => "local_error",
        }
    }

    /// The NOTIFICATION involved, either way.
    pub fn notification_code(&self) -> Option<ErrorCode> {
        match self {
            EndReason::ProtocolError(e) => Some(e.code),
            EndReason::PeerNotification(n) => Some(n.code),
            EndReason::HoldTimerExpired { .. } => Some(ErrorCode::HoldTimerExpired),
            EndReason::Stopped(r) => Some(ErrorCode::Cease(r.cease())),
            _ => None,
        }
    }

    /// The peer ended the session (Cease, a plain close, or a TCP reset when its process
    /// died), e.g. because the router restarts: reconnecting soon is right, backing off further
    /// is not.
    pub fn closed_by_peer(&self) -> bool {
        match self {
            EndReason::PeerNotification(n) => n.is_cease(),
            EndReason::PeerClosed { .. } | EndReason::PeerReset { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::ConnectRefused { remote, detail } => {
                write!(f, "connect to {remote} failed: {detail}")
            }
            EndReason::ConnectTimeout { detail, .. } => f.write_str(detail),
            EndReason::ConnectFailed(s) | EndReason::Io(s) | EndReason::Local(s) => f.write_str(s),
            EndReason::HoldTimerExpired { state, after } => {
                if *state == PeerState::OpenSent {
                    write!(
                        f,
                        "hold timer expired in OpenSent: no OPEN from peer within {} s",
                        after.as_secs_f64()
                    )
                } else {
                    write!(
                        f,
                        "hold timer expired in {state}: nothing from peer for {} s",
                        after.as_secs_f64()
                    )
                }
            }
            EndReason::ProtocolError(e) => write!(f, "we sent NOTIFICATION: {e}"),
            EndReason::PeerNotification(n) => write!(f, "peer sent NOTIFICATION {n}"),
            EndReason::PeerClosed { state } => {
                write!(f, "peer closed the connection in {state}")
            }
            EndReason::PeerReset { state } => {
                write!(f, "peer reset the connection in {state}")
            }
            EndReason::WriteBlocked { after } => write!(
                f,
                "write blocked for {} s (peer not reading)",
                after.as_secs_f64()
            ),
            EndReason::Stopped(r) => write!(f, "closed by us: {r}"),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct PeerStatus {
    pub state: PeerState,
    pub established_since: Option<SystemTime>,
    /// Why the last connection attempt or session ended (`last_end`, as text).
    pub last_error: Option<String>,
    pub last_end: Option<EndReason>,
    /// Session ends since start, by [`EndReason::kind`].
    pub ends: BTreeMap<&'static str, u64>,
    pub negotiated_hold_time: Option<u16>,
    pub peer_router_id: Option<Ipv4Addr>,
    /// Families both sides negotiated on the current session.
    pub families: Vec<Family>,
    pub updates_sent: u64,
    pub updates_received: u64,
    /// ROUTE-REFRESH requests received, and full re-sends they caused (coalesced).
    pub route_refresh_received: u64,
    pub route_refresh_resends: u64,
    /// Times the daemon fell behind this peer's UPDATEs and the session resent its whole table
    /// of VIP paths to the fleet view, and the deltas those resyncs replaced.
    pub fleet_resyncs: u64,
    pub fleet_deltas_replaced: u64,
    /// Prefixes the peer currently holds from us.
    pub prefixes_announced: usize,
    pub connect_attempts: u64,
}

impl PeerStatus {
    /// Records how a session or attempt ended and clears the per-session fields.
    pub fn ended(&mut self, reason: &EndReason) {
        self.state = PeerState::Idle;
        self.last_error = Some(reason.to_string());
        *self.ends.entry(reason.kind()).or_default() += 1;
        self.last_end = Some(reason.clone());
        self.clear_session();
    }

    pub fn clear_session(&mut self) {
        self.state = PeerState::Idle;
        self.established_since = None;
        self.negotiated_hold_time = None;
        self.families.clear();
        self.prefixes_announced = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::parse_notification;

    #[test]
    fn kinds_tell_ends_apart_and_peer_closes_are_orderly() {
        let remote: SocketAddr = "192.0.2.1:179".parse().unwrap();
        let refused = EndReason::ConnectRefused {
            remote,
            detail: "Connection refused (os error 111)".into(),
        };
        assert_eq!(refused.kind(), "connect_refused");
        assert!(refused.to_string().contains("refused"));
        let hold = EndReason::HoldTimerExpired {
            state: PeerState::Established,
            after: Duration::from_secs(9),
        };
        assert_eq!(hold.kind(), "hold_timer_expired");
        assert_eq!(
            hold.to_string(),
            "hold timer expired in Established: nothing from peer for 9 s"
        );
        assert!(!hold.closed_by_peer() && !refused.closed_by_peer());
        let cease = EndReason::PeerNotification(parse_notification(&[6, 4]).unwrap());
        assert_eq!(cease.kind(), "peer_cease");
        assert!(cease.closed_by_peer());
        let err = EndReason::PeerNotification(parse_notification(&[3, 1]).unwrap());
        assert!(!err.closed_by_peer());
        assert!(EndReason::PeerClosed {
            state: PeerState::Established
        }
        .closed_by_peer());
        let mut s = PeerStatus::default();
        s.ended(&hold);
        s.ended(&hold);
        s.ended(&cease);
        assert_eq!(s.ends.get("hold_timer_expired"), Some(&2));
        assert_eq!(s.last_end.as_ref().map(EndReason::kind), Some("peer_cease"));
    }

    #[test]
    fn stop_reasons_map_to_cease_subcodes() {
        assert_eq!(StopReason::ConfigChanged.cease().wire(), 6);
        assert_eq!(StopReason::Deconfigured.cease().wire(), 3);
        assert_eq!(StopReason::BfdDown.cease().wire(), 10);
        assert_eq!(StopReason::Shutdown("bye".into()).cease().wire(), 2);
        assert_eq!(StopReason::Shutdown("bye".into()).text(), "bye");
        assert_eq!(StopReason::ConfigChanged.text(), "");
    }
}
