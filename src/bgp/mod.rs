//! BGP speaker: our own framing/parsing of received bytes, zettabgp-backed encoding, per-peer sessions.
//!
//! - `wire`: everything we receive (framing, OPEN/UPDATE/NOTIFICATION/ROUTE-REFRESH parsing).
//! - `encode`: everything we send.
//! - `session`: one task per peer (RFC 4271 FSM, active side), keeping the Adj-RIB-Out in sync.

pub mod encode;
pub mod wire;

pub use wire::{BgpError, Notification};
