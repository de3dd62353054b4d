//! Runs every check on its own schedule and streams the results: a fixed grid of `interval` in
//! the steady state, `fast_interval` while a change is being confirmed (between the first
//! failure and `fall`, and between the first pass and `rise`), and at once when the check
//! reports an event (a watched process exited).

use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CheckConfig;
use super::{CheckSample, ProbeResult, Prober, SetupError};
use crate::risefall::RiseFall;

/// Bounds on the interval actually used. Config validation should keep intervals sane; these
/// keep a slip there from becoming a busy loop (zero) or an Instant overflow panic (huge).
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// One task per check: first run after a random jitter in [0, interval) so checks do not fire
/// together, then every `interval` on a fixed grid (no drift; a probe that overruns skips the
/// slots it missed: it never overlaps, nor runs back to back with, the next), every
/// `fast_interval` after the probe while confirming a change, and at once on an event. Stops
/// when `stop` is cancelled (an in-flight probe is dropped, which kills an exec check's
/// processes) or the receiver is gone.
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

/// When the next probe runs, given the results so far. Mirrors the engine's rise/fall (the same
/// [`RiseFall`], fed the same results), so "confirming" means exactly what the engine counts.
struct Cadence {
    interval: Duration,
    fast: Duration,
    rise_fall: RiseFall,
    /// The steady grid; fast probes do not move it.
    grid: tokio::time::Instant,
}

impl Cadence {
    fn new(check: &CheckConfig, first: tokio::time::Instant) -> Cadence {
        let interval = check.interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
        Cadence {
            interval,
            fast: check.fast_interval.clamp(MIN_INTERVAL, interval),
            rise_fall: RiseFall::new(check.rise, check.fall),
            grid: first,
        }
    }

    /// The instant of the next probe after a result `ok` that finished at `now`.
    fn after(
        &mut self,
        ok: bool,
        definitive: bool,
        now: tokio::time::Instant,
    ) -> tokio::time::Instant {
        self.rise_fall.observe_sample(ok, definitive);
        if self.grid <= now {
            self.grid = next_slot(self.grid, self.interval, now);
        }
        if ok != self.rise_fall.is_up() {
            // A change is under way and not yet confirmed: confirm (or refute) it quickly.
            (now + self.fast).min(self.grid)
        } else {
            self.grid
        }
    }
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
    let interval = check.interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
    let jitter = rand::thread_rng().gen_range(Duration::ZERO..interval);
    let mut next = tokio::time::Instant::now() + jitter;
    let mut cadence = Cadence::new(&check, next);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
            _ = event(&prober) => {
                tracing::debug!(check = %check.name, "check event: probing now");
            }
        }
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = probe(&prober) => r,
        };
        let (ok, definitive) = (result.ok, result.definitive);
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
        next = cadence.after(ok, definitive, tokio::time::Instant::now());
    }
}

async fn event(prober: &Result<Prober, SetupError>) {
    match prober {
        Ok(p) => p.event().await,
        Err(_) => std::future::pending().await,
    }
}

/// The grid point after `prev`, or if that has passed already (slow probe, busy receiver), the
/// first one after `now`: missed slots are skipped, never run back to back.
fn next_slot(
    prev: tokio::time::Instant,
    interval: Duration,
    now: tokio::time::Instant,
) -> tokio::time::Instant {
    let next = prev + interval;
    if next > now {
        return next;
    }
    // `behind % interval` < interval, so this never overflows whatever the lag.
    let behind = (now - next).as_nanos();
    let into_period = u64::try_from(behind % interval.as_nanos()).unwrap_or(0);
    now + (interval - Duration::from_nanos(into_period))
}

async fn probe(prober: &Result<Prober, SetupError>) -> ProbeResult {
    match prober {
        Ok(p) => p.probe().await,
        Err(reason) => ProbeResult {
            ok: false,
            detail: reason.to_string(),
            elapsed: Duration::ZERO,
            definitive: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokio::sync::mpsc;

    use super::super::testutil::{exec_check, http_check, tcp_check};
    use super::*;

    /// Collects samples until `window` has passed since `t0`.
    async fn collect(
        rx: &mut mpsc::Receiver<CheckSample>,
        t0: Instant,
        window: Duration,
    ) -> HashMap<usize, Vec<(Duration, ProbeResult)>> {
        let mut by_check: HashMap<usize, Vec<(Duration, ProbeResult)>> = HashMap::new();
        let end = tokio::time::Instant::from_std(t0 + window);
        while let Ok(Some(s)) = tokio::time::timeout_at(end, rx.recv()).await {
            by_check
                .entry(s.check)
                .or_default()
                .push((s.at - t0, s.result));
        }
        by_check
    }

    fn gaps(samples: &[(Duration, ProbeResult)]) -> Vec<Duration> {
        samples.windows(2).map(|w| w[1].0 - w[0].0).collect()
    }

    #[tokio::test]
    async fn samples_come_every_interval_after_a_jitter() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut check = tcp_check(l.local_addr().unwrap());
        check.interval = Duration::from_millis(200);
        let checks = vec![check; 6];
        let (tx, mut rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        let t0 = Instant::now();
        let handles = spawn_checks(&checks, tx, stop.clone());
        let got = collect(&mut rx, t0, Duration::from_millis(1100)).await;
        stop.cancel();
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(got.len(), 6, "every check reports: {got:?}");
        let mut firsts = Vec::new();
        for (i, samples) in &got {
            assert!(samples.iter().all(|(_, r)| r.ok), "{samples:?}");
            // First run in [0, 200) ms plus scheduling slack.
            assert!(
                samples[0].0 < Duration::from_millis(250),
                "check {i}: {samples:?}"
            );
            firsts.push(samples[0].0);
            assert!((5..=6).contains(&samples.len()), "check {i}: {samples:?}");
            for g in gaps(samples) {
                assert!(
                    g > Duration::from_millis(150) && g < Duration::from_millis(250),
                    "{g:?}"
                );
            }
        }
        let spread = firsts
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*firsts.iter().min().unwrap());
        assert!(spread > Duration::from_millis(5), "no jitter: {firsts:?}");
    }

    #[tokio::test]
    async fn probe_time_does_not_accumulate_as_drift() {
        // Each probe takes ~30 ms; sleeping `interval` after each one would make 7 gaps ~910 ms.
        let mut check = exec_check(&["sleep", "0.03"]);
        check.interval = Duration::from_millis(100);
        let (tx, mut rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        let _h = spawn_checks(&[check], tx, stop.clone());
        let mut at = Vec::new();
        while at.len() < 8 {
            let s = rx.recv().await.unwrap();
            assert!(s.result.ok, "{:?}", s.result);
            at.push(s.at);
        }
        stop.cancel();
        let span = at[7] - at[0];
        assert!(
            span > Duration::from_millis(650) && span < Duration::from_millis(800),
            "{span:?}"
        );
    }

    #[tokio::test]
    async fn slow_probe_skips_slots_instead_of_overlapping() {
        // 250 ms probe, 100 ms interval: runs at 0, 300, 600 ms... on the grid.
        let mut check = exec_check(&["sleep", "0.25"]);
        check.interval = Duration::from_millis(100);
        let (tx, mut rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        let _h = spawn_checks(&[check], tx, stop.clone());
        let mut at = Vec::new();
        while at.len() < 4 {
            at.push(rx.recv().await.unwrap().at);
        }
        stop.cancel();
        for w in at.windows(2) {
            let g = w[1] - w[0];
            assert!(
                g > Duration::from_millis(270) && g < Duration::from_millis(380),
                "{g:?}"
            );
        }
    }

    #[tokio::test]
    async fn stop_ends_tasks_mid_probe() {
        let mut check = exec_check(&["sleep", "30"]);
        check.interval = Duration::from_millis(10);
        check.timeout = Duration::from_secs(60);
        let (tx, mut rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let handles = spawn_checks(&[check.clone(), check], tx, stop.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
        for h in handles {
            tokio::time::timeout(Duration::from_millis(500), h)
                .await
                .unwrap()
                .unwrap();
        }
        // Every sender is gone with its task.
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn dropped_receiver_ends_tasks() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut check = tcp_check(l.local_addr().unwrap());
        check.interval = Duration::from_millis(20);
        let (tx, rx) = mpsc::channel(4);
        let handles = spawn_checks(&[check], tx, CancellationToken::new());
        drop(rx);
        for h in handles {
            tokio::time::timeout(Duration::from_millis(500), h)
                .await
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn broken_check_keeps_reporting_why() {
        let mut check = http_check("https://127.0.0.1:1/", |h| {
            h.ca_file = Some("/nonexistent/vw-ca.pem".into())
        });
        check.interval = Duration::from_millis(20);
        let (tx, mut rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let _h = spawn_checks(&[check], tx, stop.clone());
        for _ in 0..3 {
            let s = rx.recv().await.unwrap();
            assert!(!s.result.ok);
            assert!(
                s.result.detail.starts_with("cannot read ca_file"),
                "{:?}",
                s.result
            );
        }
        stop.cancel();
    }

    /// Feeds `results` to a cadence (each probe finishing 1 ms after it started) and returns
    /// the gaps between probe starts, in ms.
    fn gaps_for(check: &CheckConfig, results: &[bool]) -> Vec<u64> {
        let t0 = tokio::time::Instant::now();
        let mut c = Cadence::new(check, t0);
        let mut at = t0;
        results
            .iter()
            .map(|&ok| {
                let next = c.after(ok, false, at + Duration::from_millis(1));
                let gap = (next - at).as_millis() as u64;
                at = next;
                gap
            })
            .collect()
    }

    #[test]
    fn fast_interval_between_first_change_and_rise_or_fall() {
        let mut check = exec_check(&["true"]);
        check.interval = Duration::from_millis(1000);
        check.fast_interval = Duration::from_millis(200);
        check.rise = 3;
        check.fall = 2;
        // Down at start: passes 1 and 2 confirm the rise fast; up after the 3rd: steady grid.
        // Then a failure (fast), a pass (refuted: steady), a failure (fast) and a second one
        // (down: steady).
        let results = [true, true, true, true, false, true, false, false, false];
        assert_eq!(
            gaps_for(&check, &results),
            [201, 201, 598, 1000, 201, 799, 201, 799, 1000]
        );
        // Failing while down costs no more than the steady interval.
        assert_eq!(gaps_for(&check, &[false; 4]), [1000; 4]);
    }

    #[test]
    fn fast_probes_never_pass_the_next_grid_slot() {
        let mut check = exec_check(&["true"]);
        check.interval = Duration::from_millis(100);
        check.fast_interval = Duration::from_millis(80);
        check.rise = 5;
        assert_eq!(gaps_for(&check, &[true; 3]), [81, 19, 81]);
    }

    #[test]
    fn rise_and_fall_of_one_stay_on_the_grid() {
        let mut check = exec_check(&["true"]);
        check.interval = Duration::from_millis(50);
        check.fast_interval = Duration::from_millis(10);
        assert_eq!(gaps_for(&check, &[true, false, true]), [50, 50, 50]);
    }

    #[tokio::test]
    async fn a_process_exit_is_probed_at_once_and_down_at_once_or_confirmed_fast() {
        for definitive_fall in [true, false] {
            process_exit(definitive_fall).await;
        }
    }

    async fn process_exit(definitive_fall: bool) {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("svc.pid");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        let mut check = super::super::testutil::check(super::super::CheckKind::Process {
            pid_file: pid_file.clone(),
        });
        check.interval = Duration::from_secs(5);
        check.fast_interval = Duration::from_millis(100);
        check.rise = 1;
        check.fall = 2;
        check.definitive_fall = definitive_fall;
        let (tx, mut rx) = mpsc::channel(16);
        let stop = CancellationToken::new();
        let _h = spawn_checks(&[check], tx, stop.clone());
        // First probe within the jitter (< 5 s); then nothing until the exit.
        let first = tokio::time::timeout(Duration::from_secs(6), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(first.result.ok, "{:?}", first.result);
        let killed = Instant::now();
        child.kill().unwrap();
        child.wait().unwrap();
        let exit = rx.recv().await.unwrap();
        assert!(!exit.result.ok);
        assert_eq!(exit.result.definitive, definitive_fall, "{:?}", exit.result);
        let seen = exit.at - killed;
        assert!(
            seen < Duration::from_millis(100),
            "exit seen after {seen:?}"
        );
        if definitive_fall {
            // Down at once: nothing to confirm, the next probe is on the steady grid.
            assert!(
                tokio::time::timeout(Duration::from_millis(300), rx.recv())
                    .await
                    .is_err(),
                "no fast confirmation of a definitive failure"
            );
        } else {
            let confirm = rx.recv().await.unwrap();
            assert!(!confirm.result.ok);
            let gap = confirm.at - exit.at;
            assert!(
                gap >= Duration::from_millis(95) && gap < Duration::from_millis(250),
                "second failure after {gap:?}"
            );
        }
        stop.cancel();
    }

    #[test]
    fn next_slot_stays_on_the_grid() {
        let t0 = tokio::time::Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_slot(t0, ms(100), t0 + ms(30)), t0 + ms(100));
        assert_eq!(next_slot(t0, ms(100), t0 + ms(250)), t0 + ms(300));
        assert_eq!(next_slot(t0, ms(100), t0 + ms(300)), t0 + ms(400));
        assert_eq!(
            next_slot(t0, ms(100), t0 + ms(86_400_000)),
            t0 + ms(86_400_100)
        );
    }
}
