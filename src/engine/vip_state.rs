//! Where a VIP stands: the engine's output vocabulary, shared with status, events and hooks.

use serde::{Deserialize, Serialize};

/// Where a VIP stands. Order of precedence: maintenance > withdrawn > draining > announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VipState {
    Announced,
    /// Still announced, de-preferred (GRACEFUL_SHUTDOWN, MED, prepend) until the drain ends.
    Draining,
    Withdrawn,
    /// Drained by an operator (API, CLI, disable file); survives restarts.
    Maintenance,
    /// Wants to leave, but the fleet guard keeps it announced, marked, because too few other
    /// healthy announcers would remain (fail open).
    Held,
}

impl std::fmt::Display for VipState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VipState::Announced => "announced",
            VipState::Draining => "draining",
            VipState::Withdrawn => "withdrawn",
            VipState::Maintenance => "maintenance",
            VipState::Held => "held",
        })
    }
}
