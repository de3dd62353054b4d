//! BGP speaker: our own framing/parsing of received bytes, zettabgp-backed encoding, per-peer sessions.
//!
//! - `wire`: everything we receive (framing, OPEN/UPDATE/NOTIFICATION/ROUTE-REFRESH parsing).
//! - `encode`: everything we send.
//! - `session`: the per-peer task (reconnect loop, public API); `conn`: one connection's FSM;
//!   `rib_out`: Adj-RIB-Out diffing.

mod conn;
pub mod encode;
pub mod rib_in;
mod rib_out;
pub mod session;
pub mod wire;

#[cfg(test)]
mod crosscheck_tests;
#[cfg(test)]
mod session_tests;

pub use session::{run_peer, PeerState, PeerStatus, SessionSetup};
pub use wire::{BgpError, Notification};
