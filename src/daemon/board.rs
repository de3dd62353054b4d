//! The daemon's view of the passive signal sources: spawns one task per configured signal and
//! answers `SIGNAL.VALUE` reads for the engine from the latest published snapshots.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{SignalConfig, SignalKind};
use crate::engine::Reading;
use crate::signals::{self, SourceSnapshot};

pub struct SignalBoard {
    sources: HashMap<Arc<str>, watch::Receiver<SourceSnapshot>>,
    tasks: Vec<JoinHandle<()>>,
}

impl SignalBoard {
    pub fn spawn(
        configs: &[SignalConfig],
        stop: &CancellationToken,
    ) -> anyhow::Result<SignalBoard> {
        let mut sources = HashMap::new();
        let mut tasks = Vec::new();
        for sig in configs {
            let (tx, rx) = watch::channel(SourceSnapshot::default());
            let task = match &sig.kind {
                SignalKind::TcpStats(c) => signals::tcp_stats::spawn(c.clone(), tx, stop.clone()),
                SignalKind::Conntrack(c) => signals::conntrack::spawn(c.clone(), tx, stop.clone()),
                SignalKind::Prometheus(c) => {
                    signals::prometheus::spawn(c.clone(), tx, stop.clone())
                }
                SignalKind::AccessLog(_) => anyhow::bail!(
                    "signal {}: access_log sources are not wired into the daemon yet",
                    sig.name
                ),
            };
            sources.insert(sig.name.clone(), rx);
            tasks.push(task);
        }
        Ok(SignalBoard { sources, tasks })
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
        let Some(rx) = self.sources.get(name) else {
            return none;
        };
        let snap = rx.borrow();
        Reading {
            value: snap.values.get(value).copied(),
            requests: snap.requests,
        }
    }

    pub fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}
