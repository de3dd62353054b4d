//! Fleet safety: who else announces our VIP prefixes, and whether we may leave a ToR.
//!
//! - `paths`: the core's own types for observed paths (what the BGP parser produces).
//! - `table`: one session's received VIP paths, kept by the session for a wholesale resync.
//! - `view`: the other announcers of each VIP prefix as each ToR shows them (RFC 7911 ADD-PATH),
//!   fed with observed paths and session up/down events; a peer the daemon fell behind on is
//!   marked behind (not counted) until its session resyncs it. Bounded in memory.
//! - `gate`: the one gate every exit of a guarded VIP passes: mark, settle, then per ToR leave,
//!   hold, or come back (fail open), as pure functions of the view and an injected clock.
//! - `guard`: the aggregate count across ToRs, for status.
//!
//! Part of the decision core: no I/O, no tokio, no wall clock, no configuration or BGP types
//! (`tests/layering.rs` holds it to that). The daemon feeds the view and the engine asks the gate.

pub mod gate;
mod guard;
pub mod paths;
mod table;
mod view;

pub use gate::{
    count_at, drain_check, verdict_at, DrainRefused, Gate, GateOutput, GatePhase, GuardSpec,
    PeerCount, PeerVerdict, WhenBlind, Wish,
};
pub use guard::{count_others, Count};
pub use paths::{PathAttrs, PathKey, RibInUpdate};
pub use table::{PeerTable, MAX_TABLE_PATHS_PER_PREFIX};
pub use view::{
    identity_community, in_fleet_space, Announcer, AnnouncerId, FleetView, PeerSnapshot, ViewState,
    IDENTITY_TAG, MARK_TAG, MAX_PATHS_PER_PREFIX,
};
