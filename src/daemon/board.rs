//! The daemon's view of the passive signal sources: spawns one task per configured signal,
//! answers `SIGNAL.VALUE` reads for the engine from the latest published snapshots, and wakes the
//! daemon ([`SignalBoard::changed`]) when any source publishes, so conditions are evaluated at
//! once rather than at the next tick.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{SignalConfig, SignalKind};
use crate::engine::Reading;
use crate::signals::{self, AccessLogSource, AccessLogState, SourceSnapshot};

/// A source's latest state: access logs publish their window, the others a value map.
enum Feed {
    Values(watch::Receiver<SourceSnapshot>),
    /// With the format's name, for messages.
    AccessLog(watch::Receiver<AccessLogState>, &'static str),
}

/// One access-log signal's understanding of its log, over its window.
pub struct LogHealth {
    pub name: Arc<str>,
    pub format: &'static str,
    pub counts: signals::logcheck::LogCounts,
    pub sample: Option<String>,
}

pub struct SignalBoard {
    sources: HashMap<Arc<str>, Feed>,
    tasks: Vec<JoinHandle<()>>,
    changed: Arc<Notify>,
}

/// Wakes `changed` whenever `rx` sees a new value; ends with the source.
fn forward<T: Send + Sync + 'static>(
    mut rx: watch::Receiver<T>,
    changed: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            changed.notify_one();
        }
    })
}

impl SignalBoard {
    pub fn spawn(configs: &[SignalConfig], stop: &CancellationToken) -> SignalBoard {
        let mut sources = HashMap::new();
        let mut tasks = Vec::new();
        let changed = Arc::new(Notify::new());
        for sig in configs {
            let (tx, rx) = watch::channel(SourceSnapshot::default());
            let (feed, task) = match &sig.kind {
                SignalKind::TcpStats(c) => (
                    Feed::Values(rx),
                    signals::tcp_stats::spawn(c.clone(), tx, stop.clone()),
                ),
                SignalKind::Conntrack(c) => (
                    Feed::Values(rx),
                    signals::conntrack::spawn(c.clone(), tx, stop.clone()),
                ),
                SignalKind::Handshakes(c) => (
                    Feed::Values(rx),
                    signals::handshakes::spawn(c.clone(), tx, stop.clone()),
                ),
                SignalKind::Prometheus(c) => (
                    Feed::Values(rx),
                    signals::prometheus::spawn(c.clone(), tx, stop.clone()),
                ),
                SignalKind::AccessLog(c) => {
                    let (rx, task) = AccessLogSource::spawn(c.clone(), stop.clone());
                    (Feed::AccessLog(rx, c.format.name()), task)
                }
            };
            tasks.push(match &feed {
                Feed::Values(rx) => forward(rx.clone(), changed.clone()),
                Feed::AccessLog(rx, _) => forward(rx.clone(), changed.clone()),
            });
            sources.insert(sig.name.clone(), feed);
            tasks.push(task);
        }
        SignalBoard {
            sources,
            tasks,
            changed,
        }
    }

    /// Resolves when a source has published since the last call (a publication in between is
    /// kept as a permit, so none is lost). Pending forever without sources.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The current reading of `SIGNAL.VALUE`; no data when the source has none.
    pub fn read(&self, reference: &str) -> Reading {
        let none = Reading {
            value: None,
            requests: None,
        };
        let Some((name, value)) = reference.split_once('.') else {
            return none;
        };
        match self.sources.get(name) {
            None => none,
            Some(Feed::Values(rx)) => {
                let snap = rx.borrow();
                Reading {
                    value: snap.values.get(value).copied(),
                    requests: snap.requests,
                }
            }
            Some(Feed::AccessLog(rx, _)) => {
                let state = rx.borrow();
                if state.missing.is_some() {
                    return none;
                }
                Reading {
                    value: state.snapshot.value(value),
                    requests: Some(state.snapshot.requests),
                }
            }
        }
    }

    /// Every access-log signal's line counts over its window, by name.
    pub fn log_health(&self) -> Vec<LogHealth> {
        let mut out: Vec<LogHealth> = self
            .sources
            .iter()
            .filter_map(|(name, feed)| match feed {
                Feed::AccessLog(rx, format) => {
                    let st = rx.borrow();
                    Some(LogHealth {
                        name: name.clone(),
                        format,
                        counts: signals::access_log::window_counts(&st.snapshot),
                        sample: st.malformed_sample.clone(),
                    })
                }
                Feed::Values(_) => None,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}
