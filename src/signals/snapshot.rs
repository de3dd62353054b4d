//! The shape every passive source publishes on its `watch` channel, and the tick loop they share.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// What a source currently knows. The daemon reads `VALUE` of signal `NAME` as `snapshot.values[VALUE]`.
#[derive(Clone, Debug, Default)]
pub struct SourceSnapshot {
    pub values: BTreeMap<String, f64>,
    /// Requests behind ratio values, where the source knows it (for min_requests).
    pub requests: Option<u64>,
    /// Why the source has no data now (file/endpoint gone, unreadable, garbage); None when fine.
    pub missing: Option<String>,
    /// When the values were last refreshed.
    pub updated: Option<Instant>,
}

/// Paces a source's sampling loop: `while ticker.tick().await { ... }` runs every `interval`
/// until `stop` fires. A slow round delays the next one instead of bursting to catch up: sources
/// sample "now", so a backlog of ticks would only repeat work.
pub(crate) struct Ticker {
    timer: tokio::time::Interval,
    stop: CancellationToken,
}

impl Ticker {
    pub(crate) fn new(interval: Duration, stop: CancellationToken) -> Self {
        // tokio panics on a zero period; config validation should prevent it, this makes sure.
        let mut timer = tokio::time::interval(interval.max(Duration::from_millis(10)));
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { timer, stop }
    }

    /// Waits for the next round; false once stopped.
    pub(crate) async fn tick(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            _ = self.timer.tick() => true,
        }
    }

    /// Runs one round's work unless stopped first (None then).
    pub(crate) async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => None,
            out = work => Some(out),
        }
    }
}

/// Logs a source's `missing` reason only when it changes, so a source that stays broken does not
/// flood the log once per interval.
#[derive(Debug, Default)]
pub(crate) struct MissingLog {
    last: Option<String>,
}

impl MissingLog {
    pub(crate) fn note(&mut self, source: &str, missing: Option<&str>) {
        if self.last.as_deref() == missing {
            return;
        }
        match missing {
            Some(why) => tracing::warn!(source, reason = why, "passive signal source has no data"),
            None if self.last.is_some() => {
                tracing::info!(source, "passive signal source recovered")
            }
            None => {}
        }
        self.last = missing.map(str::to_owned);
    }
}
