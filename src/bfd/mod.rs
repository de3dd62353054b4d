//! BFD (RFC 5880 asynchronous mode, RFC 5881 single hop) so a router drops our routes within a
//! second of the node hanging or losing its link, instead of after the BGP hold time.
//!
//! - `packet`: Control packet codec with the 6.8.6 checks (pure, fuzzed).
//! - `auth`: Keyed SHA1 / Meticulous Keyed SHA1 signing, verification, sequence numbers (pure).
//! - `session`: one session's state machine (pure: events + injected clock and randomness in,
//!   actions out).
//! - `ingress`: which session a datagram may reach (TTL 255, peer address, interface; pure).
//! - `driver`: sockets (TTL 255 in and out) and timers on a dedicated OS thread, so nothing else in
//!   the process can delay a packet; reports state changes through channels only.
//!
//! May not touch BGP, config loading or the engine: the daemon couples BFD to the BGP sessions.

pub mod auth;
pub mod driver;
pub mod ingress;
pub mod packet;
pub mod session;
use crate::sys::bfd_sock as sock;

#[cfg(test)]
mod tests;

pub use auth::{AuthConfig, AuthType, Key};
pub use packet::{decode, encode, encode_wire, is_sha1, AuthSection, Diag, Packet, RxError, State};
pub use session::{Action, Event, RandomSource, Session, Snapshot, StateChange, Timing};

/// What a BGP session needs to know of its peer's BFD (the daemon publishes it per peer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// BFD is configured for this peer.
    pub configured: bool,
    /// The BFD session is Up now, or the router set it AdminDown (not a failure, RFC 5882 3.2).
    pub up: bool,
    /// The session has been Up since start: the router does run BFD with us.
    pub ever_up: bool,
    /// Up -> Down transitions that were failures (not an AdminDown): a change means "close the
    /// BGP session now with Cease".
    pub failures: u64,
}

impl Gate {
    /// Announcing is allowed: BFD is off or Up; or it has never come Up since start (a router
    /// without BFD for us must not make a fleet-wide config rollout withdraw every node; status
    /// shows the session down). Once BFD has been Up, a BGP session that comes back before BFD
    /// (kube-router's window) announces nothing until BFD is Up again.
    pub fn allows_routes(&self) -> bool {
        !self.configured || self.up || !self.ever_up
    }
}
