//! BGP speaker: our own framing/parsing of received bytes, zettabgp-backed encoding, per-peer sessions.
//!
//! Layers, each importing only those below it:
//! - `error`: typed NOTIFICATION codes, RFC 7606 actions, [`BgpError`].
//! - `rib_in`: the one UPDATE decoder (routes plus typed RFC 7606 outcomes, `AttrError`).
//! - `wire`: everything we receive (framing, OPEN/NOTIFICATION/ROUTE-REFRESH parsing; UPDATEs
//!   through `rib_in`).
//! - `encode`: everything we send.
//! - `transport`: the connecting socket with TCP-MD5/TCP-AO/GTSM (imports nothing of the crate).
//! - `rib_out`: Adj-RIB-Out diffing; `sync`: Adj-RIB-Out changes into UPDATEs.
//! - `spec`: the peer as config hands it over ([`PeerSpec`]).
//! - `status`: peer state, status snapshot, typed end and stop reasons, commands.
//! - `fsm`: one connection's pure state machine (events in, actions out).
//! - `feed`: received VIP routes to the fleet view (deltas, or a resync when the daemon fell
//!   behind), never blocking a live session.
//! - `conn`: the async driver of one connection (socket, framing, timers).
//! - `pause`: pausing an Established session for the in-place upgrade (`crate::handover`).
//! - `session`: the per-peer task (connect, reconnect with backoff, public entry point).

pub mod command;
mod conn;
pub mod encode;
pub mod error;
pub(crate) mod feed;
pub mod fsm;
pub mod pause;
pub mod rib_in;
mod rib_out;
pub mod session;
mod spec;
pub mod status;
mod sync;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod feed_view_tests;
#[cfg(test)]
mod tests;

pub use command::Command;
pub use error::{BgpError, ErrorCode};
pub use fsm::{ReceivedUpdate, SessionSetup};
pub use session::{run_peer, PeerIo};
pub use spec::PeerSpec;
pub use status::{EndReason, PeerState, PeerStatus, StopReason};
pub use wire::Notification;
