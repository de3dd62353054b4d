//! Fleet safety: who else announces our VIP prefixes, and whether we may leave.
//!
//! - `view`: the other announcers of each VIP prefix as each ToR shows them (RFC 7911 ADD-PATH),
//!   fed with parsed UPDATEs (`bgp::rib_in`) and session up/down events; a peer the daemon fell
//!   behind on is marked behind (not counted) until its session resyncs it. Bounded in memory.
//! - `guard`: the two-phase leave (mark, settle, count, then leave or hold) and the operator-drain
//!   check, as pure functions of the view and an injected clock.
//!
//! Pure: no I/O, no tokio, no wall clock, no configuration types. May not touch sessions or the
//! engine; the daemon feeds the view and the engine asks the guard.

mod guard;
mod view;

pub use guard::{
    count_others, drain_check, Count, DrainRefused, Guard, GuardOutput, GuardSpec, WhenBlind,
};
pub use view::{
    identity_community, Announcer, AnnouncerId, FleetView, PeerSnapshot, ViewState, IDENTITY_TAG,
    MAX_PATHS_PER_PREFIX,
};

#[cfg(test)]
mod resync_tests;
#[cfg(test)]
mod sim_tests;
