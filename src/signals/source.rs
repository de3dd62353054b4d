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

/// Runs `tick` every `interval` until `stop` fires. A slow tick delays the next one instead of
/// bursting to catch up: sources sample "now", so a backlog of ticks would only repeat work.
pub(crate) async fn every<F, Fut>(interval: Duration, stop: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // tokio panics on a zero period; config validation should prevent it, this makes sure.
    let mut timer = tokio::time::interval(interval.max(Duration::from_millis(10)));
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tick() => {}
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
            None if self.last.is_some() => tracing::info!(source, "passive signal source recovered"),
            None => {}
        }
        self.last = missing.map(str::to_owned);
    }
}
