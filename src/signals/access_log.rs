//! Live access-log signal: follower + parser + window as one tokio task publishing its current
//! state on a watch channel. Live mode files records under their arrival time on a monotonic
//! clock, not the time in the line: the window then never sees time go backwards, and a logger
//! with a skewed clock or a request-start timestamp cannot hide fresh errors.
//!
//! The task reads when inotify says the log's directory changed (at most once per
//! [`MIN_STEP_GAP`], so a busy log costs a bounded number of wake-ups), with a slow poll as a
//! safety net; without inotify (limits reached) it polls every `poll_interval` as before.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::follow::{FollowOptions, LogFollower};
use super::logcheck;
use super::logformat::LogFormat;
use super::window::{StatusSet, WindowSnapshot, WindowStats};
use crate::sys::inotify::{self, DirWatch};

/// A validated `type: access_log` signal.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessLogConfig {
    pub name: String,
    pub path: PathBuf,
    pub format: LogFormat,
    pub window: Duration,
    pub errors: StatusSet,
    pub follow: FollowOptions,
}

/// Under heavy write load, at most one read-and-publish per this much time.
pub const MIN_STEP_GAP: Duration = Duration::from_millis(20);
/// With inotify, the poll that still runs in case an event was missed (e.g. the directory was
/// replaced).
const SAFETY_POLL: Duration = Duration::from_secs(1);

/// What the engine reads.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessLogState {
    pub snapshot: WindowSnapshot,
    /// Why the log is not being read (gone, unreadable); its signals are then "missing".
    pub missing: Option<String>,
    /// Lifetime totals, for metrics.
    pub lines_total: u64,
    pub malformed_total: u64,
    /// The latest line not in the format (cut), for status.
    pub malformed_sample: Option<String>,
}

/// A log not in its signal's format is logged at most this often.
const MALFORMED_WARN_EVERY_MS: i64 = 60_000;

/// Follower, parser and window: the synchronous part, moved into `spawn_blocking` for each poll.
struct Pipeline {
    follower: LogFollower,
    format: LogFormat,
    stats: WindowStats,
    malformed_total: u64,
    malformed_sample: Option<String>,
    /// When the "not in the format" WARN was last logged.
    warned_at: Option<i64>,
    name: String,
}

impl Pipeline {
    /// One poll at `now_ms`; returns whether more data is already waiting.
    fn step(&mut self, now_ms: i64) -> bool {
        let Self {
            follower,
            format,
            stats,
            malformed_total,
            malformed_sample,
            ..
        } = self;
        let mut sampled = false;
        let report = follower.poll(&mut |line: &[u8]| match format.parse(line) {
            Ok(rec) => stats.record(&rec, now_ms),
            Err(_) => {
                *malformed_total += 1;
                stats.record_malformed(now_ms);
                // One sample per poll (the first), not an allocation per bad line.
                if !sampled {
                    *malformed_sample = Some(logcheck::sample(line));
                    sampled = true;
                }
            }
        });
        let discarded = follower.take_discarded();
        *malformed_total += discarded;
        stats.record_malformed_n(discarded, now_ms);
        report.more_pending
    }

    /// The WARN for a log mostly not in its format, judged on the window, at most once a minute.
    fn warn_if_not_understood(&mut self, window: &WindowSnapshot, now_ms: i64) {
        if self
            .warned_at
            .is_some_and(|t| now_ms.saturating_sub(t) < MALFORMED_WARN_EVERY_MS)
        {
            return;
        }
        let counts = window_counts(window);
        if counts.mostly_malformed(logcheck::MIN_LINES_LIVE) {
            self.warned_at = Some(now_ms);
            tracing::warn!(
                signal = %self.name,
                malformed = counts.malformed,
                lines = counts.lines,
                "{}",
                logcheck::malformed_message(
                    &self.name,
                    self.format.name(),
                    &counts,
                    self.malformed_sample.as_deref()
                )
            );
        }
    }

    fn state(&mut self, now_ms: i64) -> AccessLogState {
        let snapshot = self.stats.snapshot(now_ms);
        self.warn_if_not_understood(&snapshot, now_ms);
        AccessLogState {
            snapshot,
            missing: self.follower.missing().map(str::to_owned),
            lines_total: self.follower.counters().lines,
            malformed_total: self.malformed_total,
            malformed_sample: self.malformed_sample.clone(),
        }
    }
}

/// The window's line counts, for [`logcheck`].
pub fn window_counts(w: &WindowSnapshot) -> logcheck::LogCounts {
    logcheck::LogCounts {
        lines: w.requests + w.malformed,
        malformed: w.malformed,
        records: w.requests,
        with_latency: w.latency_samples,
    }
}

pub struct AccessLogSource;

impl AccessLogSource {
    /// Starts following `cfg.path`. The task ends when `cancel` fires or every receiver is gone.
    pub fn spawn(
        cfg: AccessLogConfig,
        cancel: CancellationToken,
    ) -> (watch::Receiver<AccessLogState>, tokio::task::JoinHandle<()>) {
        let clock = Instant::now();
        let now_ms = move || i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        let new_pipeline = {
            let cfg = cfg.clone();
            move || Pipeline {
                follower: LogFollower::new(cfg.path.clone(), cfg.follow.clone()),
                format: cfg.format.clone(),
                stats: WindowStats::new(cfg.window, cfg.errors.clone()),
                malformed_total: 0,
                malformed_sample: None,
                warned_at: None,
                name: cfg.name.to_string(),
            }
        };
        let mut pipeline = new_pipeline();
        pipeline.stats.start(now_ms());
        // Open (and in live mode seek to the end) now, not in the task: every line written after
        // `spawn` returns is then counted. A single open+stat; fine at startup.
        pipeline.step(now_ms());
        let (tx, rx) = watch::channel(pipeline.state(now_ms()));
        let interval = cfg.follow.poll_interval;
        let name = cfg.name;
        let path = cfg.path.clone();
        let task = tokio::spawn(async move {
            let mut slot = Some(pipeline);
            let mut watch = match DirWatch::new(&path, inotify::ENTRY_AND_WRITE_EVENTS) {
                Ok(w) => Some(w),
                Err(e) => {
                    log_fallback(&name, &e);
                    None
                }
            };
            loop {
                let stepped = tokio::time::Instant::now();
                let mut p = slot.take().unwrap_or_else(&new_pipeline);
                let job = tokio::task::spawn_blocking(move || {
                    let now = now_ms();
                    let more = p.step(now);
                    let state = p.state(now);
                    (p, more, state)
                });
                let more = match job.await {
                    Ok((p, more, state)) => {
                        slot = Some(p);
                        tx.send_replace(state);
                        more
                    }
                    Err(e) => {
                        // A bug in the pipeline must not take the daemon down: report the signal
                        // missing and start over with a fresh pipeline on the next round.
                        tracing::error!(signal = %name, error = %e, "access-log pipeline failed");
                        tx.send_modify(|s| s.missing = Some(format!("internal error: {e}")));
                        false
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let pause = match (&watch, more) {
                    (_, true) => Duration::ZERO,
                    (Some(_), false) => SAFETY_POLL.max(interval),
                    (None, false) => interval,
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                    r = changed(&watch) => if let Err(e) = r {
                        log_fallback(&name, &e);
                        watch = None;
                    },
                }
                // Coalesce: a log written continuously is read at most once per MIN_STEP_GAP.
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep_until(stepped + MIN_STEP_GAP) => {}
                }
            }
        });
        (rx, task)
    }
}

static LIMIT_LOGGED: AtomicBool = AtomicBool::new(false);

/// Logs the fallback to polling for an inotify limit once per process (a fleet-wide limit would
/// otherwise log once per log file and reload); other causes are logged at debug level.
fn log_fallback(signal: &str, e: &io::Error) {
    if inotify::is_limit(e) {
        if !LIMIT_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                signal,
                "inotify limit reached ({e}): access logs are polled instead (raise \
                 fs.inotify.max_user_watches / max_user_instances); logged once"
            );
        }
    } else {
        tracing::debug!(signal, "no inotify watch ({e}): polling the access log");
    }
}

async fn changed(watch: &Option<DirWatch>) -> io::Result<()> {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::signals::follow::tests::TempDir;

    /// The `web_log` nginx source the tests follow, 30 s window, default error statuses.
    fn nginx_config(path: &std::path::Path, follow: FollowOptions) -> AccessLogConfig {
        AccessLogConfig {
            name: "web_log".into(),
            path: path.to_path_buf(),
            format: LogFormat::Nginx,
            window: Duration::from_secs(30),
            errors: StatusSet::default(),
            follow,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inotify_reads_new_lines_at_once_despite_a_slow_poll() {
        let dir = TempDir::new("source-inotify");
        let path = dir.join("access.log");
        std::fs::write(&path, "").unwrap();
        let cfg = nginx_config(
            &path,
            FollowOptions {
                poll_interval: Duration::from_secs(30),
                ..FollowOptions::default()
            },
        );
        let cancel = CancellationToken::new();
        let (mut rx, _task) = AccessLogSource::spawn(cfg, cancel.clone());
        // Let the task start and settle into its wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let t0 = Instant::now();
        writeln!(
            f,
            "1.2.3.4 - - [22/Nov/2026:13:45:01 +0000] \"GET / HTTP/1.1\" 503 1 \"-\" \"ua\" 0.010"
        )
        .unwrap();
        tokio::time::timeout(
            Duration::from_secs(2),
            rx.wait_for(|s| s.snapshot.requests == 1),
        )
        .await
        .expect("line seen without waiting for the 30 s poll")
        .unwrap();
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        // A burst of writes is read in few steps: publications are coalesced.
        let mut versions = 0u32;
        let counter = {
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                while rx.changed().await.is_ok() {
                    n += 1;
                    if rx.borrow().snapshot.requests >= 2001 {
                        break;
                    }
                }
                n
            })
        };
        let t1 = Instant::now();
        for _ in 0..2000 {
            writeln!(
                f,
                "1.2.3.4 - - [22/Nov/2026:13:45:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"ua\" 0.010"
            )
            .unwrap();
        }
        versions += tokio::time::timeout(Duration::from_secs(5), counter)
            .await
            .unwrap()
            .unwrap();
        let span = t1.elapsed();
        // At most one publication per 20 ms (+1 for the edges).
        let bound = (span.as_millis() / 20) as u32 + 2;
        assert!(versions <= bound, "{versions} publications in {span:?}");
        cancel.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follows_a_live_log_and_reports_missing() {
        let dir = TempDir::new("source");
        let path = dir.join("access.log");
        std::fs::write(&path, "old line before start\n").unwrap();
        let cfg = nginx_config(
            &path,
            FollowOptions {
                poll_interval: Duration::from_millis(20),
                vanish_grace: Duration::ZERO,
                ..FollowOptions::default()
            },
        );
        let cancel = CancellationToken::new();
        let (mut rx, task) = AccessLogSource::spawn(cfg, cancel.clone());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for i in 0..100 {
            let status = if i % 4 == 0 { 502 } else { 200 };
            writeln!(
                f,
                "1.2.3.4 - - [22/Nov/2026:13:45:01 +0000] \"GET / HTTP/1.1\" {status} 1 \"-\" \"ua\" 0.010"
            )
            .unwrap();
        }
        writeln!(f, "not an access log line").unwrap();
        let wait = |rx: &mut watch::Receiver<AccessLogState>, pred: fn(&AccessLogState) -> bool| {
            let mut rx = rx.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(5), rx.wait_for(pred))
                    .await
                    .expect("state not reached in time")
                    .expect("source ended")
                    .clone()
            }
        };
        let s = wait(&mut rx, |s| {
            s.snapshot.requests == 100 && s.snapshot.malformed == 1
        })
        .await;
        assert_eq!(s.snapshot.errors, 25);
        assert_eq!(s.snapshot.error_ratio, Some(0.25));
        assert_eq!(s.missing, None);
        assert_eq!(s.lines_total, 101);
        drop(f);
        std::fs::remove_file(&path).unwrap();
        let s = wait(&mut rx, |s| s.missing.is_some()).await;
        assert!(s.missing.unwrap().contains("access.log"));
        std::fs::write(&path, "").unwrap();
        wait(&mut rx, |s| s.missing.is_none()).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
