//! `on_change` hooks: a command (argv, no shell) run when a VIP changes state, e.g. to page, to
//! update a dashboard, or to tell a local load balancer.
//!
//! The daemon's decision loop only enqueues ([`HookRunner::fire`] never blocks or awaits); one
//! worker task per VIP runs that VIP's hooks strictly in order, so a script always sees
//! `withdrawn` after the `announced` that preceded it. VIPs do not wait for each other: a hook
//! hung on one VIP delays only that VIP's later hooks, and only until its timeout.
//!
//! Each run gets its own process group, and on timeout the whole group is SIGKILLed, so a hook
//! stuck in `curl` leaves nothing behind. Output is captured (bounded) and logged line by line
//! after the hook ends. A VIP's queue is bounded: when full, its oldest pending hook is dropped and
//! logged (a flapping VIP must not queue hours of hooks; the latest states matter most).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::control::VipState;

mod run;

pub use run::{run_hook, HookRun, Outcome, OUTPUT_LIMIT};

/// Default `on_change_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on a VIP's pending hooks (not counting the one running).
pub const DEFAULT_QUEUE_PER_VIP: usize = 16;

/// One configured hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    /// Program and arguments; the program is looked up in `PATH` when it has no slash.
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// What happened to a VIP: becomes the hook's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEvent {
    pub vip: String,
    pub state: VipState,
    pub previous: VipState,
    pub reason: String,
    pub prefixes: Vec<String>,
}

impl HookEvent {
    /// `(name, value)` pairs set for the hook. NUL cannot be in an environment value, so it is
    /// replaced rather than making the spawn fail.
    pub fn env(&self) -> [(&'static str, String); 5] {
        let clean = |s: &str| s.replace('\0', "\u{FFFD}");
        [
            ("VIPWARDEN_VIP", clean(&self.vip)),
            ("VIPWARDEN_STATE", self.state.to_string()),
            ("VIPWARDEN_PREVIOUS_STATE", self.previous.to_string()),
            ("VIPWARDEN_REASON", clean(&self.reason)),
            ("VIPWARDEN_PREFIXES", clean(&self.prefixes.join(" "))),
        ]
    }
}

/// Totals since start, for metrics and status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HookStats {
    pub started: u64,
    pub succeeded: u64,
    /// Non-zero exit, signal, could not start, or timeout.
    pub failed: u64,
    pub timed_out: u64,
    /// Dropped unrun because the VIP's queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    dropped: AtomicU64,
}

type Job = (Arc<HookSpec>, HookEvent);

struct Inner {
    bound: usize,
    /// A VIP has an entry exactly while its worker task runs.
    queues: Mutex<HashMap<String, VecDeque<Job>>>,
    /// Jobs queued or running, over all VIPs.
    busy: watch::Sender<usize>,
    counters: Counters,
    runtime: tokio::runtime::Handle,
}

/// Queues and runs hooks. Cheap to clone; clones share the queues.
#[derive(Clone)]
pub struct HookRunner {
    inner: Arc<Inner>,
}

impl HookRunner {
    /// `per_vip_bound` pending hooks per VIP (at least 1). Must be called inside a tokio runtime;
    /// hooks run on that runtime.
    pub fn new(per_vip_bound: usize) -> HookRunner {
        HookRunner {
            inner: Arc::new(Inner {
                bound: per_vip_bound.max(1),
                queues: Mutex::new(HashMap::new()),
                busy: watch::channel(0).0,
                counters: Counters::default(),
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// Queues `hook` for `ev.vip`; returns at once. Call once per configured hook, in the order
    /// they should run.
    pub fn fire(&self, hook: Arc<HookSpec>, ev: HookEvent) {
        let inner = &self.inner;
        let vip = ev.vip.clone();
        let (start_worker, dropped) = {
            let mut queues = lock(&inner.queues);
            let start_worker = !queues.contains_key(&vip);
            let q = queues.entry(vip.clone()).or_default();
            q.push_back((hook, ev));
            inner.busy.send_modify(|n| *n += 1);
            let dropped = if q.len() > inner.bound {
                inner.busy.send_modify(|n| *n -= 1);
                q.pop_front()
            } else {
                None
            };
            (start_worker, dropped)
        };
        if let Some((spec, old)) = dropped {
            inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            warn!(
                vip = %vip,
                "on_change queue for vip {vip} full ({} pending): dropped the hook {} for {} -> {} ({})",
                inner.bound,
                program(&spec),
                old.previous,
                old.state,
                old.reason
            );
        }
        if start_worker {
            inner.runtime.spawn(worker(inner.clone(), vip));
        }
    }

    /// Waits until every queued hook has finished, at most `limit`; true if all did. For a
    /// planned stop, so hooks see the final withdrawal.
    pub async fn idle(&self, limit: Duration) -> bool {
        let mut rx = self.inner.busy.subscribe();
        let done = matches!(
            tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await,
            Ok(Ok(_))
        );
        done
    }

    pub fn stats(&self) -> HookStats {
        let c = &self.inner.counters;
        HookStats {
            started: c.started.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Runs one VIP's hooks in order until its queue is empty, then removes the queue (under the same
/// lock that `fire` checks, so a job is never left without a worker).
async fn worker(inner: Arc<Inner>, vip: String) {
    loop {
        let job = {
            let mut queues = lock(&inner.queues);
            let next = queues.get_mut(&vip).and_then(|q| q.pop_front());
            if next.is_none() {
                queues.remove(&vip);
            }
            next
        };
        let Some((spec, ev)) = job else { return };
        inner.counters.started.fetch_add(1, Ordering::Relaxed);
        let run = run_hook(&spec, &ev).await;
        let c = &inner.counters;
        if run.ok() {
            c.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
        if run.outcome == Outcome::TimedOut {
            c.timed_out.fetch_add(1, Ordering::Relaxed);
        }
        log_run(&spec, &ev, &run);
        inner.busy.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn log_run(spec: &HookSpec, ev: &HookEvent, run: &HookRun) {
    let (vip, prog) = (&ev.vip, program(spec));
    let what = format!(
        "on_change {prog} for vip {vip} ({} -> {})",
        ev.previous, ev.state
    );
    for (stream, text, extra) in [
        ("stdout", &run.stdout, run.dropped_bytes.0),
        ("stderr", &run.stderr, run.dropped_bytes.1),
    ] {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            info!(vip = %vip, hook = %prog, stream, "{what}: {}", printable(line));
        }
        if extra > 0 {
            info!(vip = %vip, hook = %prog, stream, "{what}: ({extra} more bytes of {stream} not logged)");
        }
    }
    let took = run.took.as_millis();
    match &run.outcome {
        Outcome::Exited(0) => info!(vip = %vip, hook = %prog, "{what}: exit 0 in {took} ms"),
        Outcome::Exited(code) => {
            warn!(vip = %vip, hook = %prog, "{what}: exit status {code} after {took} ms")
        }
        Outcome::Signalled(sig) => {
            warn!(vip = %vip, hook = %prog, "{what}: killed by signal {sig} after {took} ms")
        }
        Outcome::TimedOut => warn!(
            vip = %vip, hook = %prog,
            "{what}: timed out after {:?}; killed its process group", spec.timeout
        ),
        Outcome::CannotRun(why) => error!(vip = %vip, hook = %prog, "{what}: cannot run: {why}"),
        Outcome::Lost(why) => error!(vip = %vip, hook = %prog, "{what}: {why}"),
    }
}

fn program(spec: &HookSpec) -> &str {
    spec.argv.first().map(String::as_str).unwrap_or("")
}

/// Control characters replaced, so hook output never carries terminal escapes into text logs.
fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// A poisoned lock only means another thread panicked mid-update of a plain queue map; the data
/// is still usable, and hooks must keep running.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
