//! The set of BGP sessions, one task per peer, and how a reload changes it: a peer whose
//! parameters did not change keeps its session (the router's uptime keeps counting); a changed or
//! removed one withdraws and closes with Cease (6/6 Other Configuration Change, or 6/3 Peer
//! De-configured, RFC 4486); a changed one starts again only once the old session has closed, so
//! the router never sees two connections from us at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::bfd::BfdRuntime;
use std::collections::HashMap;

use crate::bgp::pause::{Pause, Paused};
use crate::bgp::rib_in::RibInSender;
use crate::bgp::session::Handed;
use crate::bgp::{self, Command, PeerIo, PeerState, PeerStatus, SessionSetup, StopReason};
use crate::config::{Config, PeerConfig};
use crate::route::DesiredRoutes;

/// How long a stop waits for sessions to withdraw and close before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct PeerRuntime {
    pub cfg: PeerConfig,
    pub status: watch::Receiver<PeerStatus>,
    local: (u32, std::net::Ipv4Addr),
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

pub struct Peers {
    pub list: Vec<PeerRuntime>,
    /// Woken (one stored permit) whenever any session's status changes, so the daemon publishes
    /// its status at that transition instead of at the next tick.
    pub changed: Arc<Notify>,
    /// Where sessions send their up/down and the routes they receive for VIP prefixes.
    rib_in: Option<RibInSender>,
}

/// How a peer task begins.
enum Start {
    /// Connects at once.
    Fresh,
    /// Connects once this task (the peer's previous session) has ended, or `STOP_GRACE` has
    /// passed.
    After(JoinHandle<()>),
    /// Continues a session the process this one replaced handed over (in-place upgrade).
    Handed(Box<Handed>),
}

/// Starts a peer task.
fn spawn(
    config: &Config,
    peer: &PeerConfig,
    desired: &watch::Receiver<Arc<DesiredRoutes>>,
    start: Start,
    bfd: &BfdRuntime,
    rib_in: Option<RibInSender>,
    changed: &Arc<Notify>,
) -> PeerRuntime {
    let (status_tx, status) = watch::channel(PeerStatus::default());
    // Ends with the session task (its sender dropped).
    let mut watch_status = status.clone();
    let wake = changed.clone();
    tokio::spawn(async move {
        while watch_status.changed().await.is_ok() {
            wake.notify_one();
        }
    });
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let setup = SessionSetup {
        local_as: config.local_as,
        router_id: config.router_id,
        peer: peer.spec.clone(),
    };
    let io = PeerIo {
        // BFD (issue 10): nothing announced while BFD is down after having been Up; a BFD
        // failure closes the session at once with Cease 6/10 and it reconnects.
        desired: bfd.routes_for(peer, desired),
        status: status_tx,
        commands: commands_rx,
        received: rib_in,
    };
    let reset = commands.clone();
    bfd.on_failure(peer, move || {
        reset.send(Command::Reset(StopReason::BfdDown)).is_ok()
    });
    let task = tokio::spawn(async move {
        match start {
            Start::Handed(h) => bgp::session::run_peer_handed(setup, io, *h).await,
            Start::After(old) => {
                let _ = tokio::time::timeout(STOP_GRACE, old).await;
                bgp::run_peer(setup, io).await
            }
            Start::Fresh => bgp::run_peer(setup, io).await,
        }
    });
    PeerRuntime {
        cfg: peer.clone(),
        status,
        local: (config.local_as, config.router_id),
        commands,
        task,
    }
}

impl PeerRuntime {
    fn close(self, why: StopReason) -> JoinHandle<()> {
        // A task that already ended has dropped its receiver; nothing to tell it.
        let _ = self.commands.send(Command::Stop(why));
        self.task
    }

    /// Asks the session to pause at a message boundary for an in-place upgrade. None: the task
    /// has ended (nothing to hand over).
    pub fn pause(&self) -> Option<tokio::sync::oneshot::Receiver<Paused>> {
        let (p, rx) = Pause::new();
        self.commands.send(Command::Pause(p)).ok().map(|()| rx)
    }

    /// Closes the current session at once with Cease (e.g. BFD down); the task reconnects.
    #[allow(dead_code)] // the seam for the BFD coupling (issue 10), exercised in bgp::session_tests
    pub fn reset(&self, why: StopReason) {
        let _ = self.commands.send(Command::Reset(why));
    }
}

impl Peers {
    /// Starts every peer; one in `handed` continues its session handed over by the process this
    /// one replaced.
    pub fn start(
        config: &Config,
        desired: &watch::Receiver<Arc<DesiredRoutes>>,
        bfd: &BfdRuntime,
        rib_in: Option<RibInSender>,
        handed: &mut HashMap<String, Handed>,
    ) -> Peers {
        let changed = Arc::new(Notify::new());
        Peers {
            list: config
                .peers
                .iter()
                .map(|p| {
                    let h = handed.remove(&*p.spec.name);
                    let start = h.map_or(Start::Fresh, |h| Start::Handed(Box::new(h)));
                    spawn(config, p, desired, start, bfd, rib_in.clone(), &changed)
                })
                .collect(),
            changed,
            rib_in,
        }
    }

    /// Applies a new config; returns how many sessions were kept as they were.
    pub fn reconcile(
        &mut self,
        new: &Config,
        desired: &watch::Receiver<Arc<DesiredRoutes>>,
        bfd: &BfdRuntime,
    ) -> usize {
        let mut kept = Vec::new();
        // Closing sessions of peers still configured: their successors wait for them.
        let mut closing: Vec<(Arc<str>, JoinHandle<()>)> = Vec::new();
        for rt in std::mem::take(&mut self.list) {
            let same = new.peers.contains(&rt.cfg) && rt.local == (new.local_as, new.router_id);
            if same {
                kept.push(rt);
                continue;
            }
            let still_configured = new.peers.iter().any(|p| p.spec.name == rt.cfg.spec.name);
            let why = if still_configured {
                StopReason::ConfigChanged
            } else {
                StopReason::Deconfigured
            };
            info!(peer = %rt.cfg.spec.name, "{why}: withdrawing and closing its session");
            // Closing (withdraw, drain, Cease) runs on its own; the decision loop goes on.
            let name = rt.cfg.spec.name.clone();
            let task = rt.close(why);
            if still_configured {
                closing.push((name, task));
            } else {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(STOP_GRACE, task).await;
                });
            }
        }
        let n_kept = kept.len();
        for p in &new.peers {
            if !kept.iter().any(|rt| rt.cfg.spec.name == p.spec.name) {
                let after = closing
                    .iter()
                    .position(|(n, _)| *n == p.spec.name)
                    .map(|i| closing.swap_remove(i).1);
                kept.push(spawn(
                    new,
                    p,
                    desired,
                    after.map_or(Start::Fresh, Start::After),
                    bfd,
                    self.rib_in.clone(),
                    &self.changed,
                ));
            }
        }
        // Keep the config's order for status output.
        kept.sort_by_key(|rt| {
            new.peers
                .iter()
                .position(|p| p.spec.name == rt.cfg.spec.name)
        });
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
            names.push((rt.cfg.spec.name.clone(), rt.status.clone()));
            tasks.push(rt.close(StopReason::Shutdown(why.to_string())));
        }
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
            for (name, st) in names {
                warn!(peer = %name, state = ?st.borrow().state, "session did not close within {STOP_GRACE:?}; exiting anyway");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::Path;

    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::codec::FramedRead;

    use super::*;
    use crate::bgp::{encode, wire};

    const YAML: &str = "router_id: 192.0.2.10
local_as: 65101
peers:
  - name: tor1
    address: 127.0.0.1
    remote_as: 65000
checks:
  - name: web
    type: tcp
    target: 203.0.113.10:80
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
";

    type Peer = FramedRead<TcpStream, wire::BgpCodec>;

    async fn next(p: &mut Peer) -> Option<wire::Message> {
        match tokio::time::timeout(Duration::from_secs(5), p.next()).await {
            Ok(Some(Ok(f))) => Some(
                wire::parse(
                    &f,
                    &crate::bgp::rib_in::DecodeCx::keep_all(
                        crate::bgp::rib_in::RxParams::FOUR_OCTET_AS,
                    ),
                )
                .unwrap(),
            ),
            _ => None,
        }
    }

    async fn accept_and_establish(l: &TcpListener) -> Peer {
        let (s, _) = tokio::time::timeout(Duration::from_secs(5), l.accept())
            .await
            .expect("no connection")
            .unwrap();
        let mut p = FramedRead::new(s, wire::BgpCodec);
        assert!(matches!(next(&mut p).await, Some(wire::Message::Open(_))));
        let open = encode::open(65000, 90, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        p.get_mut().write_all(&open).await.unwrap();
        assert_eq!(next(&mut p).await, Some(wire::Message::Keepalive));
        p.get_mut().write_all(&encode::keepalive()).await.unwrap();
        p
    }

    #[tokio::test]
    async fn changed_peer_closes_with_6_6_and_reconnects_only_after_the_old_session_closed() {
        let listener = TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .await
            .unwrap();
        let mut cfg = crate::config::parse(Path::new("vw.yaml"), YAML).unwrap();
        cfg.peers[0].spec.port = listener.local_addr().unwrap().port();
        let (_dtx, drx) = watch::channel(Arc::new(DesiredRoutes::default()));
        let bfd = BfdRuntime::start(&cfg);
        let mut peers = Peers::start(&cfg, &drx, &bfd, None, &mut HashMap::new());
        let mut old = accept_and_establish(&listener).await;

        let mut new = cfg.clone();
        new.peers[0].spec.hold_time = Duration::from_secs(30);
        assert_eq!(peers.reconcile(&new, &drx, &bfd), 0);
        // The old session ends with Cease / Other Configuration Change...
        let n = loop {
            match next(&mut old).await {
                Some(wire::Message::Notification(n)) => break n,
                Some(_) => {}
                None => panic!("no NOTIFICATION on the old session"),
            }
        };
        assert_eq!(n.code.wire(), (6, 6));
        // ... and while it is still open, no second connection comes.
        let early = tokio::time::timeout(Duration::from_millis(400), listener.accept()).await;
        assert!(
            early.is_err(),
            "new session connected before the old one closed"
        );
        drop(old);
        let _new = accept_and_establish(&listener).await;
        peers.stop_all("test done").await;
    }
}
