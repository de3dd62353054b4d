//! Runs every check on its own fixed schedule and streams the results.

use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{CheckSample, ProbeResult, Prober};
use crate::config::CheckConfig;

/// `tokio::time::interval` panics on a zero period; config validation should prevent one, this
/// keeps a slip there from becoming a crash or a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One task per check: first run after a random jitter in [0, interval) so checks do not fire
/// together, then every `interval` on a fixed grid (no drift; a probe that overruns skips the
/// ticks it missed rather than overlapping the next). Stops when `stop` is cancelled (an
/// in-flight probe is dropped, which kills an exec check's processes) or the receiver is gone.
///
/// Must be called inside a tokio runtime.
pub fn spawn_checks(
    checks: &[CheckConfig],
    tx: Sender<CheckSample>,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    checks
        .iter()
        .enumerate()
        .map(|(index, check)| {
            let check = check.clone();
            let tx = tx.clone();
            let stop = stop.clone();
            tokio::spawn(async move { run_check(index, check, tx, stop).await })
        })
        .collect()
}

async fn run_check(
    index: usize,
    check: CheckConfig,
    tx: Sender<CheckSample>,
    stop: CancellationToken,
) {
    // Built once: a check whose setup fails (unreadable ca_file, bad URL) still reports that
    // reason on every interval instead of going silent.
    let prober = Prober::new(&check);
    if let Err(reason) = &prober {
        tracing::warn!(check = %check.name, %reason, "check cannot run");
    }
    let interval = check.interval.max(MIN_INTERVAL);
    let jitter = rand::thread_rng().gen_range(Duration::ZERO..interval);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + jitter, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = probe(&prober) => r,
        };
        let sample = CheckSample {
            check: index,
            result,
            at: Instant::now(),
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            sent = tx.send(sample) => if sent.is_err() { return },
        }
    }
}

async fn probe(prober: &Result<Prober, String>) -> ProbeResult {
    match prober {
        Ok(p) => p.probe().await,
        Err(reason) => ProbeResult {
            ok: false,
            detail: reason.clone(),
            elapsed: Duration::ZERO,
        },
    }
}
