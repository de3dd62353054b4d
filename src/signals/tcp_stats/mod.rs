//! Kernel TCP health of this network namespace: counter rates from /proc/net/{netstat,snmp}
//! (listen overflows, resets, retransmits, ...) plus accept-queue fill of the service's listeners.
//! These move when users suffer (SYNs dropped, connections reset) even while /healthz answers.
//!
//! Values: [`RATE_NAMES`] as per-second rates over `window`, `CurrEstab` as a gauge,
//! `accept_queue_fill` (max over the `ports` listeners, now) and `accept_queue_fill_max` (its max
//! over `window`).

mod proc_net;
mod rates;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use proc_net::{parse, section, ProcError, SectionError, TcpSample, CURR_ESTAB, RATE_NAMES};
pub use rates::{CounterRates, WindowMax};

use super::snapshot::{MissingLog, SourceSnapshot, Ticker};
use super::sockdiag::{max_fill, Listener, SockDiag};

pub const ACCEPT_QUEUE_FILL: &str = "accept_queue_fill";
pub const ACCEPT_QUEUE_FILL_MAX: &str = "accept_queue_fill_max";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpStatsConfig {
    pub interval: Duration,
    pub window: Duration,
    /// Listening ports whose accept queues to watch; empty: no accept-queue values.
    pub ports: Vec<u16>,
}

impl Default for TcpStatsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            window: Duration::from_secs(30),
            ports: Vec::new(),
        }
    }
}

/// The pure part: turns readings into snapshots.
#[derive(Debug)]
pub struct TcpStats {
    ports: Vec<u16>,
    counters: CounterRates<10>,
    fill: WindowMax,
}

impl TcpStats {
    pub fn new(cfg: &TcpStatsConfig) -> Self {
        Self {
            ports: cfg.ports.clone(),
            counters: CounterRates::new(cfg.window),
            fill: WindowMax::new(cfg.window),
        }
    }

    /// One sampling round at `now`. `listeners` is None when no ports are configured.
    pub fn update(
        &mut self,
        now: Instant,
        counters: Result<TcpSample, String>,
        listeners: Option<Result<Vec<Listener>, String>>,
    ) -> SourceSnapshot {
        let mut snap = SourceSnapshot {
            updated: Some(now),
            ..SourceSnapshot::default()
        };
        let mut missing = Vec::new();
        match counters {
            Ok(sample) => {
                if let Some(rates) = self.counters.push(now, sample.counters) {
                    for (name, rate) in RATE_NAMES.iter().zip(rates) {
                        snap.values.insert((*name).to_owned(), rate);
                    }
                }
                snap.values
                    .insert(CURR_ESTAB.to_owned(), sample.curr_estab as f64);
            }
            Err(e) => missing.push(e),
        }
        if let Some(listeners) = listeners {
            let now_fill = match listeners {
                Ok(ls) => {
                    let f = max_fill(&ls, &self.ports);
                    if f.is_none() {
                        missing.push(format!("no listener on ports {:?}", self.ports));
                    }
                    f
                }
                Err(e) => {
                    missing.push(format!("sock_diag: {e}"));
                    None
                }
            };
            if let Some(f) = now_fill {
                snap.values.insert(ACCEPT_QUEUE_FILL.to_owned(), f);
            }
            // Kept while the listener is gone: a queue that overflowed seconds ago still counts.
            if let Some(m) = self.fill.push(now, now_fill) {
                snap.values.insert(ACCEPT_QUEUE_FILL_MAX.to_owned(), m);
            }
        }
        if !missing.is_empty() {
            snap.missing = Some(missing.join("; "));
        }
        snap
    }
}

/// Proc files are small; the cap only guards against something odd mounted there.
const MAX_PROC_FILE: u64 = 1 << 20;

fn read_small(path: &Path) -> Result<String, ProcError> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PROC_FILE).read_to_string(&mut text))
        .map_err(|source| ProcError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(text)
}

/// Reads a small proc file (bounded), with the path in the error.
pub fn read_proc(path: &Path) -> Result<String, ProcError> {
    read_small(path)
}

/// Reads both counter files under `proc_net` (normally /proc/net, i.e. our own namespace).
pub fn read_counters(proc_net: &Path) -> Result<TcpSample, ProcError> {
    let netstat = read_small(&proc_net.join("netstat"))?;
    let snmp = read_small(&proc_net.join("snmp"))?;
    parse(&netstat, &snmp)
}

/// What sock_diag said this round.
type ListenerReading = Result<Vec<Listener>, String>;

/// Blocking reads for one round; the socket is handed back so it is reused, or dropped after an
/// error so the next round starts from a fresh one.
fn sample_blocking(
    proc_net: PathBuf,
    watch_ports: bool,
    diag: Option<SockDiag>,
) -> (
    Result<TcpSample, String>,
    Option<ListenerReading>,
    Option<SockDiag>,
) {
    // The state machine takes the reason as the snapshot's `missing` text.
    let counters = read_counters(&proc_net).map_err(|e| e.to_string());
    if !watch_ports {
        return (counters, None, None);
    }
    let mut diag = match diag.map_or_else(SockDiag::open, Ok) {
        Ok(d) => d,
        Err(e) => return (counters, Some(Err(format!("open: {e}"))), None),
    };
    match diag.listeners() {
        Ok(ls) => (counters, Some(Ok(ls)), Some(diag)),
        Err(e) => (counters, Some(Err(e.to_string())), None),
    }
}

pub fn spawn(
    cfg: TcpStatsConfig,
    tx: watch::Sender<SourceSnapshot>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stats = TcpStats::new(&cfg);
        let watch_ports = !cfg.ports.is_empty();
        let mut diag: Option<SockDiag> = None;
        let mut log = MissingLog::default();
        let mut ticker = Ticker::new(cfg.interval, stop);
        while ticker.tick().await {
            let d = diag.take();
            let round = tokio::task::spawn_blocking(move || {
                sample_blocking(PathBuf::from("/proc/net"), watch_ports, d)
            });
            let Some(round) = ticker.run(round).await else {
                return;
            };
            let (counters, listeners) = match round {
                Ok((c, l, d)) => {
                    diag = d;
                    (c, l)
                }
                Err(e) => (Err(format!("sampling task failed: {e}")), None),
            };
            let snap = stats.update(Instant::now(), counters, listeners);
            log.note("tcp_stats", snap.missing.as_deref());
            tx.send_replace(snap);
        }
    })
}

#[cfg(test)]
mod tests;
