//! A lifecycle's state as plain data for the in-place upgrade: instants become ages (or
//! remaining times) relative to the export, so the new process re-anchors them on its own clock.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Connections, Lifecycle, VipState};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleExport {
    pub state: VipState,
    pub since_age_ms: u64,
    pub reason: String,
    pub maintenance: Option<String>,
    pub forced: bool,
    /// A running drain: when the route goes (from the export) and into which state.
    pub drain_until_in_ms: Option<u64>,
    pub drain_then: VipState,
    pub drain_started_age_ms: Option<u64>,
}

pub(crate) fn age_ms(now: Instant, t: Instant) -> u64 {
    now.saturating_duration_since(t).as_millis() as u64
}

/// `now - age`, or `now` when the clock does not reach that far back.
pub(crate) fn before(now: Instant, age_ms: u64) -> Instant {
    now.checked_sub(Duration::from_millis(age_ms))
        .unwrap_or(now)
}

impl Lifecycle {
    pub fn export(&self, now: Instant) -> LifecycleExport {
        LifecycleExport {
            state: self.state,
            since_age_ms: age_ms(now, self.since),
            reason: self.reason.to_string(),
            maintenance: self.out.maintenance.clone(),
            forced: self.out.forced,
            drain_until_in_ms: self
                .out
                .drain_until
                .map(|t| t.saturating_duration_since(now).as_millis() as u64),
            drain_then: self.out.drain_then,
            drain_started_age_ms: self.out.drain_started.map(|t| age_ms(now, t)),
        }
    }

    /// Takes over an exported state (like `inherit` on reload), keeping this one's spec. A
    /// planned stop is never carried (the new process is not stopping); connection counts start
    /// again (the counter runs in this process).
    pub fn import(&mut self, e: &LifecycleExport, now: Instant) {
        self.state = e.state;
        self.since = before(now, e.since_age_ms);
        self.reason = e.reason.as_str().into();
        self.out.maintenance.clone_from(&e.maintenance);
        self.out.forced = e.forced;
        self.out.stopping = None;
        self.out.drain_until = e
            .drain_until_in_ms
            .map(|ms| now + Duration::from_millis(ms.min(86_400_000)));
        self.out.drain_then = e.drain_then;
        self.out.drain_started = e.drain_started_age_ms.map(|ms| before(now, ms));
        self.out.connections = Connections::Unknown;
    }
}
