//! The daemon's side of BFD: starts the BFD thread when a peer wants BFD, keeps its sessions in
//! step with the config, logs state changes, keeps the per-peer status, and publishes a
//! `bfd::Gate` per peer for its BGP session. Runs on the main runtime; the BFD thread only ever
//! sends to it (never the other way round but for commands), so nothing here can delay a packet.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::bfd::driver::{Exported, Handle, Inherited, PeerSpec, PeerStatus, Report};
use crate::bfd::{AuthConfig, Gate, Key, Timing};
use crate::config::{Config, PeerConfig};
use crate::control::BfdView;
use crate::route::DesiredRoutes;

type Views = Arc<Mutex<BTreeMap<Arc<str>, BfdView>>>;
type Gates = Arc<Mutex<HashMap<Arc<str>, watch::Sender<Gate>>>>;
type Unmatched = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct BfdRuntime {
    handle: Option<Handle>,
    /// Sessions handed over by the replaced process, for the BFD thread's start.
    inherited: Option<Inherited>,
    specs: HashMap<Arc<str>, PeerSpec>,
    views: Views,
    gates: Gates,
    unmatched: Unmatched,
}

/// The BFD session a peer's config asks for, if any (also for the in-place upgrade's matching).
pub fn spec(p: &PeerConfig) -> Option<PeerSpec> {
    let b = p.bfd.as_ref()?;
    let auth = match &b.auth {
        None => None,
        // Config validation keeps keys to 1-20 bytes, so `Key::new` cannot refuse one here;
        // if it did, no session at all beats an unauthenticated one.
        Some(a) => Some(AuthConfig {
            auth_type: a.algorithm,
            key_id: a.key_id,
            key: Key::new(a.key.expose())?,
        }),
    };
    Some(PeerSpec {
        name: p.spec.name.clone(),
        peer: p.spec.address,
        local: p.spec.local_address,
        timing: Timing {
            desired_min_tx: b.min_tx,
            required_min_rx: b.min_rx,
            detect_mult: b.multiplier,
        },
        auth,
    })
}

/// Discards are logged at most once a minute per (peer, reason), with the count since the last
/// line: a flood must not flood the log too.
const DISCARD_LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct DiscardLog {
    /// (peer or "" for unmatched, reason) -> when last logged and the total then.
    last: HashMap<(String, &'static str), (Instant, u64)>,
}

impl DiscardLog {
    /// From cumulative `counts`: the (reason, new since the last line) to log now.
    fn due(
        &mut self,
        who: &str,
        counts: &BTreeMap<&'static str, u64>,
        now: Instant,
    ) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        for (&reason, &total) in counts {
            let key = (who.to_string(), reason);
            let (at, seen) = match self.last.get(&key) {
                None => (None, 0),
                Some(&(at, seen)) => (Some(at), seen),
            };
            let quiet_long_enough = at.is_none_or(|t| now.duration_since(t) >= DISCARD_LOG_EVERY);
            if total > seen && quiet_long_enough {
                out.push((reason, total - seen));
                self.last.insert(key, (now, total));
            }
        }
        out
    }
}

fn log_discards(log: &mut DiscardLog, who: &str, counts: &BTreeMap<&'static str, u64>) {
    let due = log.due(who, counts, Instant::now());
    if due.is_empty() {
        return;
    }
    let what = due
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join(", ");
    if who.is_empty() {
        warn!("BFD: discarded packets that match no peer's session: {what} (logged at most once a minute per reason)");
    } else {
        warn!(peer = %who, "BFD {who}: discarded packets: {what} (logged at most once a minute per reason)");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn view(s: &PeerStatus) -> BfdView {
    let mut v = BfdView {
        local: s.local.map(|a| a.to_string()),
        ifindex: s.ifindex,
        discarded: s
            .rx_errors
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        send_errors: s.send_errors,
        setup_error: s.setup_error.clone(),
        state: "down".into(),
        remote_state: "down".into(),
        ..Default::default()
    };
    if let Some(x) = &s.session {
        v.state = x.state.as_str().to_lowercase();
        v.remote_state = x.remote_state.as_str().to_lowercase();
        v.local_discriminator = x.local_discr;
        v.remote_discriminator = x.remote_discr;
        v.tx_interval_ms = x.tx_interval.map(ms);
        v.detect_time_ms = ms(x.detect_time);
        v.remote_multiplier = x.remote_detect_mult;
        v.last_diagnostic = x.last_down_diag.map(|d| d.to_string());
        v.remote_diagnostic = x.remote_diag.to_string();
        v.state_changes = x.state_changes;
        v.packets_received = x.rx_packets;
        v.packets_sent = x.tx_packets;
        v.authentication = x.auth.map(|a| a.as_str().to_string());
        v.auth_sequence_received = x.auth_rx_seq;
    }
    v
}

async fn consume(
    mut reports: mpsc::UnboundedReceiver<Report>,
    views: Views,
    gates: Gates,
    unmatched: Unmatched,
) {
    let mut discards = DiscardLog::default();
    while let Some(r) = reports.recv().await {
        match r {
            Report::Changed {
                peer,
                change,
                status,
            } => {
                let v = view(&status);
                let detail = format!(
                    "tx {} ms, detect {} ms, remote state {}",
                    v.tx_interval_ms.map_or("-".into(), |t| format!("{t:.0}")),
                    v.detect_time_ms.round(),
                    change.remote_state
                );
                if change.is_failure() {
                    warn!(peer = %peer, "BFD {peer}: {} -> {} ({}): the path to the router failed; closing the BGP session", change.from, change.to, change.diag);
                } else {
                    info!(peer = %peer, "BFD {peer}: {} -> {} ({}; {detail})", change.from, change.to, change.diag);
                }
                if let Ok(mut g) = gates.lock() {
                    if let Some(tx) = g.get_mut(&peer) {
                        tx.send_modify(|g| {
                            let up = change.to == crate::bfd::State::Up;
                            g.up = up || change.remote_state == crate::bfd::State::AdminDown;
                            g.ever_up |= up;
                            if change.is_failure() {
                                g.failures += 1;
                            }
                        });
                    }
                }
                if let Ok(mut m) = views.lock() {
                    m.insert(peer, v);
                }
            }
            Report::Status { peer, status } => {
                log_discards(&mut discards, &peer, &status.rx_errors);
                if let Some(e) = &status.setup_error {
                    let first = views
                        .lock()
                        .map(|m| {
                            m.get(&peer).and_then(|v| v.setup_error.clone()) != Some(e.clone())
                        })
                        .unwrap_or(false);
                    if first {
                        warn!(peer = %peer, "BFD {peer}: cannot open its sockets ({e}); retrying every second");
                    }
                }
                if let Ok(mut m) = views.lock() {
                    m.insert(peer, view(&status));
                }
            }
            Report::Unattributed(counts) => {
                log_discards(&mut discards, "", &counts);
                if let Ok(mut m) = unmatched.lock() {
                    *m = counts.iter().map(|(k, n)| (k.to_string(), *n)).collect();
                }
            }
        }
    }
}

impl BfdRuntime {
    #[cfg(test)]
    pub fn start(config: &Config) -> BfdRuntime {
        Self::start_inherited(config, None)
    }

    /// `start`, continuing the BFD sessions a replaced process handed over (in-place upgrade).
    pub fn start_inherited(config: &Config, inherited: Option<Inherited>) -> BfdRuntime {
        let up: Vec<Arc<str>> = inherited
            .iter()
            .flat_map(|i| i.sessions.iter())
            .filter(|a| a.session.state() == crate::bfd::State::Up)
            .map(|a| a.spec.name.clone())
            .collect();
        let mut rt = BfdRuntime {
            handle: None,
            inherited,
            specs: HashMap::new(),
            views: Views::default(),
            gates: Gates::default(),
            unmatched: Unmatched::default(),
        };
        rt.reconcile(config);
        // Up before the upgrade, Up now: the gates say so from the start.
        if let Ok(mut g) = rt.gates.lock() {
            for name in up {
                if let Some(tx) = g.get_mut(&name) {
                    tx.send_modify(|g| {
                        g.up = true;
                        g.ever_up = true;
                    });
                }
            }
        }
        rt
    }

    /// In-place upgrade: every BFD session paused and exported (None: no BFD runs). Send the
    /// verdict (true: released) through the returned sender.
    pub async fn pause(
        &self,
    ) -> Result<
        Option<(Exported, tokio::sync::oneshot::Sender<bool>)>,
        crate::bfd::driver::PauseError,
    > {
        match &self.handle {
            None => Ok(None),
            Some(h) => h.pause(Duration::from_secs(2)).await.map(Some),
        }
    }

    /// Adds, changes and removes BFD sessions to match `config`.
    pub fn reconcile(&mut self, config: &Config) {
        let want: HashMap<Arc<str>, PeerSpec> = config
            .peers
            .iter()
            .filter_map(spec)
            .map(|s| (s.name.clone(), s))
            .collect();
        if let Ok(mut g) = self.gates.lock() {
            g.retain(|name, _| config.peers.iter().any(|p| &p.spec.name == name));
            for p in &config.peers {
                let configured = p.bfd.is_some();
                let tx = g
                    .entry(p.spec.name.clone())
                    .or_insert_with(|| watch::channel(Gate::default()).0);
                tx.send_if_modified(|g| {
                    let changed = g.configured != configured;
                    g.configured = configured;
                    if !configured {
                        g.up = false;
                    }
                    changed
                });
            }
        }
        if self.handle.is_none() && !want.is_empty() {
            let started = match self.inherited.take() {
                Some(i) => Handle::start_inherited(i),
                None => Handle::start(),
            };
            match started {
                Ok((h, reports)) => {
                    tokio::spawn(consume(
                        reports,
                        self.views.clone(),
                        self.gates.clone(),
                        self.unmatched.clone(),
                    ));
                    self.handle = Some(h);
                }
                Err(e) => warn!("BFD: cannot start its thread: {e}; BFD is off"),
            }
        }
        let Some(h) = &self.handle else { return };
        for (name, old) in &self.specs {
            if want.get(name) != Some(old) {
                h.remove(name);
                if let Ok(mut m) = self.views.lock() {
                    m.remove(name);
                }
                if let Ok(g) = self.gates.lock() {
                    if let Some(tx) = g.get(name) {
                        tx.send_modify(|g| g.up = false);
                    }
                }
            }
        }
        for (name, s) in &want {
            if self.specs.get(name) != Some(s) {
                let auth = s
                    .auth
                    .as_ref()
                    .map_or("no authentication".to_string(), |a| {
                        format!("{} key id {}", a.auth_type.as_str(), a.key_id)
                    });
                info!(peer = %name, "BFD {name}: session to {} ({} x {} ms, {auth})", s.peer, s.timing.detect_mult, s.timing.required_min_rx.as_millis());
                h.add(s.clone());
            }
        }
        self.specs = want;
    }

    /// What the peer's BGP session announces: `desired`, gated by BFD when the peer has it.
    pub fn routes_for(
        &self,
        peer: &PeerConfig,
        desired: &watch::Receiver<Arc<DesiredRoutes>>,
    ) -> watch::Receiver<Arc<DesiredRoutes>> {
        if peer.bfd.is_none() {
            return desired.clone();
        }
        gated(
            peer.spec.name.clone(),
            desired.clone(),
            self.gate(&peer.spec.name),
        )
    }

    /// Calls `reset` on every BFD failure of the peer (Up -> Down, not AdminDown) until it
    /// returns false (the session is gone).
    pub fn on_failure(&self, peer: &PeerConfig, reset: impl Fn() -> bool + Send + 'static) {
        if peer.bfd.is_none() {
            return;
        }
        let mut g = self.gate(&peer.spec.name);
        tokio::spawn(async move {
            let mut seen = g.borrow_and_update().failures;
            while g.changed().await.is_ok() {
                let n = g.borrow_and_update().failures;
                if n != seen {
                    seen = n;
                    if !reset() {
                        return;
                    }
                }
            }
        });
    }

    /// The gate a peer's BGP session follows (BFD off: always open).
    fn gate(&self, peer: &Arc<str>) -> watch::Receiver<Gate> {
        let mut g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        g.entry(peer.clone())
            .or_insert_with(|| watch::channel(Gate::default()).0)
            .subscribe()
    }

    /// Packets that matched no peer's session since start, by reason (for metrics).
    pub fn unmatched(&self) -> BTreeMap<String, u64> {
        self.unmatched.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn view(&self, peer: &str) -> Option<BfdView> {
        if !self.specs.contains_key(peer) {
            return None;
        }
        let m = self.views.lock().ok()?;
        Some(m.get(peer).cloned().unwrap_or_else(|| BfdView {
            state: "down".into(),
            remote_state: "down".into(),
            ..Default::default()
        }))
    }

    /// Planned stop, before the Cease: our sessions stop following the routers (see
    /// `Cmd::Quiesce`); packets keep going out until `admin_down_all`.
    pub async fn quiesce(&self) {
        if let Some(h) = &self.handle {
            h.quiesce(Duration::from_millis(200)).await;
        }
    }

    /// Planned stop: AdminDown to every router (after the Cease; see `Daemon::stop`), so none
    /// sees our BFD packets stop as a failure.
    pub async fn admin_down_all(&self) {
        let Some(h) = &self.handle else { return };
        for name in self.specs.keys() {
            h.admin_down(name, Duration::from_millis(200)).await;
            info!(peer = %name, "BFD {name}: sent AdminDown (planned stop)");
        }
    }
}

/// What a peer's BGP session is given to announce: `desired` while BFD allows it, else nothing,
/// with the reason on every VIP so the session's withdraw log says why.
pub fn gate_routes(peer: &str, desired: &Arc<DesiredRoutes>, gate: Gate) -> Arc<DesiredRoutes> {
    if gate.allows_routes() {
        return desired.clone();
    }
    let why: Arc<str> = format!("BFD with {peer} is not Up (routes wait for it)").into();
    Arc::new(DesiredRoutes {
        generation: desired.generation,
        routes: Default::default(),
        reasons: desired
            .vip_prefixes
            .keys()
            .map(|v| (v.clone(), why.clone()))
            .collect(),
        vip_prefixes: desired.vip_prefixes.clone(),
        withheld: Default::default(),
        prefix_vip: Default::default(),
    })
}

/// A per-peer view of `desired` that follows the peer's BFD gate (kube-router's window: a BGP
/// session that comes back before BFD must not announce over a path BFD has not confirmed).
/// The task ends when the session drops its receiver or the daemon drops `desired`.
pub fn gated(
    peer: Arc<str>,
    mut desired: watch::Receiver<Arc<DesiredRoutes>>,
    mut gate: watch::Receiver<Gate>,
) -> watch::Receiver<Arc<DesiredRoutes>> {
    let first = gate_routes(
        &peer,
        &desired.borrow_and_update(),
        *gate.borrow_and_update(),
    );
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = desired.changed() => if r.is_err() { return },
                r = gate.changed() => if r.is_err() { return },
                () = tx.closed() => return,
            }
            let d = desired.borrow_and_update().clone();
            let g = *gate.borrow_and_update();
            tx.send_replace(gate_routes(&peer, &d, g));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Arc<DesiredRoutes> {
        let p: crate::route::Prefix = "203.0.113.10/32".parse().expect("prefix");
        let mut d = DesiredRoutes {
            generation: 7,
            ..Default::default()
        };
        let route = crate::route::DesiredRoute {
            vip: "web".into(),
            attrs: Default::default(),
        };
        d.routes.insert(p, route);
        Arc::make_mut(&mut d.vip_prefixes).insert("web".into(), [p].into());
        d.reasons
            .insert("web".into(), "check web passed 2/2".into());
        Arc::new(d)
    }

    #[test]
    fn discards_are_logged_once_a_minute_per_reason_with_the_new_count() {
        let mut log = DiscardLog::default();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let c = |w: u64, t: u64| BTreeMap::from([("wrong_interface", w), ("ttl_not_255", t)]);
        assert_eq!(
            log.due("tor1", &c(5, 0), at(0)),
            vec![("wrong_interface", 5)]
        );
        // More within the minute: nothing; another reason: its own first line.
        assert_eq!(log.due("tor1", &c(900, 0), at(30)), vec![]);
        assert_eq!(
            log.due("tor1", &c(900, 2), at(31)),
            vec![("ttl_not_255", 2)]
        );
        // Another peer is counted apart.
        assert_eq!(
            log.due("tor2", &c(1, 0), at(31)),
            vec![("wrong_interface", 1)]
        );
        // After a minute: the count since the last line.
        assert_eq!(
            log.due("tor1", &c(1000, 2), at(61)),
            vec![("wrong_interface", 995)]
        );
        // Nothing new: nothing, however long.
        assert_eq!(log.due("tor1", &c(1000, 2), at(600)), vec![]);
    }

    #[test]
    fn routes_wait_for_bfd_up_only_when_configured() {
        let d = desired();
        let off = Gate::default();
        assert!(Arc::ptr_eq(&gate_routes("tor1", &d, off), &d));
        let never = Gate {
            configured: true,
            ..Default::default()
        };
        assert!(
            Arc::ptr_eq(&gate_routes("tor1", &d, never), &d),
            "never Up: not gated"
        );
        let down = Gate {
            configured: true,
            up: false,
            ever_up: true,
            failures: 0,
        };
        let g = gate_routes("tor1", &d, down);
        assert!(g.routes.is_empty());
        assert_eq!(g.generation, 7);
        assert!(
            g.reason_for("web").contains("BFD with tor1 is not Up"),
            "{}",
            g.reason_for("web")
        );
        assert_eq!(g.vip_prefixes, d.vip_prefixes);
        let up = Gate { up: true, ..down };
        assert!(Arc::ptr_eq(&gate_routes("tor1", &d, up), &d));
    }

    #[tokio::test]
    async fn gated_view_follows_the_gate() {
        let (dtx, drx) = watch::channel(desired());
        let (gtx, grx) = watch::channel(Gate {
            configured: true,
            up: false,
            ever_up: true,
            failures: 0,
        });
        let mut v = gated("tor1".into(), drx, grx);
        assert!(v.borrow().routes.is_empty());
        gtx.send_modify(|g| g.up = true);
        v.changed().await.expect("changed");
        assert_eq!(v.borrow_and_update().routes.len(), 1);
        gtx.send_modify(|g| {
            g.up = false;
            g.failures += 1;
        });
        v.changed().await.expect("changed");
        assert!(v.borrow_and_update().routes.is_empty());
        drop(dtx);
    }
}
