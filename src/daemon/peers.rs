//! The set of BGP sessions, one task per peer, and how a reload changes it: a peer whose
//! parameters did not change keeps its session (the router's uptime keeps counting); a changed or
//! removed one withdraws, closes with Cease and, if still configured, starts again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bgp::rib_in::RibInSender;
use crate::bgp::{self, PeerState, PeerStatus, SessionSetup};
use crate::config::{Config, PeerConfig};
use crate::route::DesiredRoutes;

/// How long a stop waits for sessions to withdraw and close before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct PeerRuntime {
    pub cfg: PeerConfig,
    pub status: watch::Receiver<PeerStatus>,
    local: (u32, std::net::Ipv4Addr),
    stop: CancellationToken,
    message: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

pub struct Peers {
    pub list: Vec<PeerRuntime>,
    /// Where sessions send the routes they receive for VIP prefixes (the fleet view).
    rib_in: Option<RibInSender>,
}

fn spawn(
    config: &Config,
    peer: &PeerConfig,
    desired: &watch::Receiver<Arc<DesiredRoutes>>,
    rib_in: Option<RibInSender>,
) -> PeerRuntime {
    let (status_tx, status) = watch::channel(PeerStatus::default());
    let stop = CancellationToken::new();
    let message = Arc::new(Mutex::new(String::new()));
    let setup = SessionSetup {
        local_as: config.local_as,
        router_id: config.router_id,
        peer: peer.clone(),
        rib_in,
    };
    let task = tokio::spawn(bgp::run_peer(
        setup,
        desired.clone(),
        status_tx,
        stop.clone(),
        message.clone(),
    ));
    PeerRuntime {
        cfg: peer.clone(),
        status,
        local: (config.local_as, config.router_id),
        stop,
        message,
        task,
    }
}

impl PeerRuntime {
    fn close(self, why: &str) -> JoinHandle<()> {
        if let Ok(mut m) = self.message.lock() {
            *m = why.to_string();
        }
        self.stop.cancel();
        self.task
    }
}

impl Peers {
    pub fn start(
        config: &Config,
        desired: &watch::Receiver<Arc<DesiredRoutes>>,
        rib_in: Option<RibInSender>,
    ) -> Peers {
        Peers {
            list: config
                .peers
                .iter()
                .map(|p| spawn(config, p, desired, rib_in.clone()))
                .collect(),
            rib_in,
        }
    }

    /// Applies a new config; returns how many sessions were kept as they were.
    pub fn reconcile(
        &mut self,
        new: &Config,
        desired: &watch::Receiver<Arc<DesiredRoutes>>,
    ) -> usize {
        let mut kept = Vec::new();
        for rt in std::mem::take(&mut self.list) {
            let same = new.peers.contains(&rt.cfg) && rt.local == (new.local_as, new.router_id);
            if same {
                kept.push(rt);
                continue;
            }
            let still_configured = new.peers.iter().any(|p| p.name == rt.cfg.name);
            let why = if still_configured {
                "peer configuration changed"
            } else {
                "peer removed from configuration"
            };
            info!(peer = %rt.cfg.name, "{why}: withdrawing and closing its session");
            // Closing (withdraw, drain, Cease) runs on its own; the decision loop goes on.
            let task = rt.close(why);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(STOP_GRACE, task).await;
            });
        }
        let n_kept = kept.len();
        for p in &new.peers {
            if !kept.iter().any(|rt| rt.cfg.name == p.name) {
                kept.push(spawn(new, p, desired, self.rib_in.clone()));
            }
        }
        // Keep the config's order for status output.
        kept.sort_by_key(|rt| new.peers.iter().position(|p| p.name == rt.cfg.name));
        self.list = kept;
        n_kept
    }

    /// Waits until every Established session reports its Adj-RIB-Out empty (the withdrawals have
    /// gone out), up to `limit`, then `linger` more so routers act on them while the session is
    /// still up. Only then is it time for Cease: the withdrawal is a step of its own.
    pub async fn wait_withdrawn(&self, limit: Duration, linger: Duration) {
        let all_sent = || {
            self.list.iter().all(|rt| {
                let st = rt.status.borrow();
                st.state != PeerState::Established || st.prefixes_announced == 0
            })
        };
        let deadline = tokio::time::Instant::now() + limit;
        while !all_sent() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !all_sent() {
            warn!("some sessions still report announced prefixes after {limit:?}; closing anyway (they withdraw on close)");
        }
        tokio::time::sleep(linger).await;
    }

    /// Closes every session (each withdraws what it announced, then sends Cease with `why`).
    pub async fn stop_all(self, why: &str) {
        let mut tasks = Vec::new();
        let mut names = Vec::new();
        for rt in self.list {
            names.push((rt.cfg.name.clone(), rt.status.clone()));
            tasks.push(rt.close(why));
        }
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
            for (name, st) in names {
                warn!(peer = %name, state = ?st.borrow().state, "session did not close within {STOP_GRACE:?}; exiting anyway");
            }
        }
    }
}
