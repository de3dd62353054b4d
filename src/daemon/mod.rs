//! Wiring: checks and signals -> engine -> desired routes -> per-peer sessions, plus the control
//! surface (status, events, drain commands), config reload and the planned stop.
//!
//! Owns the one loop and the order of effects. Owns no policy (that is the engine's) and no
//! protocol (the sessions'); blocking work (state file, config read, disable files) runs on
//! blocking threads, never on this loop. Nothing imports `daemon`.
//!
//! The daemon loop is the only writer of `DesiredRoutes` (the engine computes it; a planned stop
//! publishes the final empty set); sessions only read it. A planned stop drains
//! every VIP per its `shutdown` strategy (graceful: GRACEFUL_SHUTDOWN for `drain_period`), then
//! withdraws, and only then tells the sessions to close with NOTIFICATION Cease/Administrative
//! Shutdown, so the routers never lose the session before they have the withdrawal.

mod bfd;
mod board;
mod drain_count;
mod maintenance;
mod peers;
mod status;
mod upgrade;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::bgp::rib_in::RibInEvent;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use bfd::BfdRuntime;
use board::SignalBoard;
use maintenance::Maintenance;
use peers::Peers;

use crate::checks::{self, CheckSample};
use crate::config::{Config, ConfigErrors};
use crate::control::{
    Command, CommandError, CommandOutcome, CommandReply, ControlHandle, EventView, StatusView,
    VipState,
};
use crate::engine::{Decision, Engine, Observation, Reading};
use crate::ops::sdnotify::{self, Notifier};
use crate::ops::state::{MaintenanceState, Mark};
use crate::route::DesiredRoutes;

/// How often traffic conditions, hold-downs, drains and dampening are evaluated.
const POLICY_TICK: Duration = Duration::from_secs(1);
/// Decisions kept for `GET /v1/events`.
const EVENTS_KEPT: usize = 512;
/// A running drain's progress line and event at most this often per VIP.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long the loop takes check results off the queue before it publishes the routes once and
/// yields, so a flood of results (100k VIPs coming up) costs one route snapshot per slice instead
/// of one per result, and sessions keep sending KEEPALIVEs in between.
const SAMPLE_SLICE: Duration = Duration::from_millis(20);
/// Signal sources wake the loop when they publish; under heavy load (a busy access log) at most
/// one evaluation runs per this much time, however often they publish.
const SIGNAL_COALESCE: Duration = Duration::from_millis(20);
/// A route snapshot costs O(VIPs) here and in every session. While decisions keep coming, the next
/// snapshot waits this many times the last one's cost, so a flood (100k VIPs over 100 checks)
/// spends at most a fifth of its time on snapshots; with few VIPs the wait is microseconds.
const PUBLISH_COST_FACTOR: u32 = 4;
/// The status view also costs O(VIPs) (~1 s for 100k in a debug build); it is rebuilt at most
/// once per this many times its last cost, so it never takes more than a tenth of the thread.
const STATUS_COST_FACTOR: u32 = 10;
/// How often freed heap goes back to the kernel (see `on_tick`).
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Everything the daemon needs to start.
pub struct Options {
    pub config: Config,
    pub config_path: PathBuf,
}

/// Sessions and decision state handed over by the process this one replaced.
pub struct Inherited {
    pub sessions: std::collections::HashMap<String, crate::bgp::session::Handed>,
    pub bfd: Option<crate::bfd::driver::Inherited>,
    /// Unix milliseconds of the SIGUSR2 (or the restart's SIGTERM) in the old process.
    pub requested_at_ms: u64,
    pub engine: crate::engine::EngineExport,
    pub from_pid: u32,
    pub from_version: String,
    /// Through systemd's fd store (`systemctl restart`), not started by the old process.
    pub via_store: bool,
}

/// The long-lived parts that other components talk to.
pub struct Daemon {
    config: Config,
    config_path: PathBuf,
    started_at: SystemTime,
    engine: Engine,
    generation: u64,
    desired_tx: watch::Sender<Arc<DesiredRoutes>>,
    /// When the last route snapshot went out and what it cost to build.
    published_at: Instant,
    publish_cost: Duration,
    /// Set while decisions are waiting for the next snapshot.
    publish_due: Option<Instant>,
    /// When the status view was last built and what it cost.
    status_at: Instant,
    status_cost: Duration,
    /// When freed heap was last handed back to the kernel (`sys::malloc`).
    trimmed_at: Instant,
    /// A transition that came while the last status was too recent for its cost: published
    /// then, not at the next tick.
    status_due: Option<Instant>,
    /// The command whose state file is being written, if any.
    saving: Option<Saving>,
    /// The config being read after SIGHUP, if any.
    reloading: Option<JoinHandle<Result<Config, ConfigErrors>>>,
    peers: Peers,
    bfd: BfdRuntime,
    board: SignalBoard,
    checks: CheckRuntime,
    stop_sources: CancellationToken,
    events: VecDeque<EventView>,
    route_changes: BTreeMap<(Arc<str>, VipState), u64>,
    /// Connection counts for connection-aware drains.
    drain_count: drain_count::DrainCounter,
    /// Which of those counts are shown as drain progress.
    progress: drain_count::ProgressGate,
    status: status::Tracker,
    status_tx: watch::Sender<Arc<StatusView>>,
    /// The API's requests for the VIPs' part of the status (built per request).
    vips_rx: mpsc::Receiver<crate::control::VipsRequest>,
    events_tx: watch::Sender<Arc<Vec<EventView>>>,
    maint: Maintenance,
    notifier: Notifier,
    last_notify_status: String,
    /// Routes the sessions received for VIP prefixes, for the engine's fleet view.
    rib_in_rx: mpsc::Receiver<RibInEvent>,
    /// The `api:` section of each applied config, for the API supervisor (token/listen reload).
    api_tx: watch::Sender<crate::config::ApiConfig>,
    /// The fleet guard's held VIPs as last persisted, and where.
    held: Vec<Arc<str>>,
    held_store: crate::ops::held::HeldStore,
    /// Peers already warned this session about paths without identity.
    anonymous_warned: std::collections::BTreeSet<String>,
}

/// The running check tasks of one config generation; samples from older generations are dropped
/// with their channel, so a reload can never misattribute a sample to a renumbered check.
struct CheckRuntime {
    rx: mpsc::Receiver<CheckSample>,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

impl CheckRuntime {
    fn spawn(config: &Config) -> CheckRuntime {
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(256);
        let tasks = checks::spawn_checks(&config.checks, tx, stop.clone());
        CheckRuntime { rx, tasks, stop }
    }

    fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.abort();
        }
    }
}

/// A drain/undrain whose state file is being written on a blocking thread.
struct Saving {
    task: JoinHandle<Result<(), crate::ops::state::SaveError>>,
    next: MaintenanceState,
    reply: oneshot::Sender<CommandReply>,
}

/// A handle for the HTTP API, plus the receiving end of its commands.
pub struct Control {
    pub handle: ControlHandle,
    /// Every applied config's `api:` section (sent on each successful reload).
    pub api_config: watch::Receiver<crate::config::ApiConfig>,
    pub commands: mpsc::Receiver<(Command, oneshot::Sender<CommandReply>)>,
}

impl Daemon {
    /// Starts sessions, checks and signal sources. Nothing is announced until checks pass.
    pub fn start(opts: Options, inherited: Option<Inherited>) -> (Daemon, Control) {
        let now = Instant::now();
        let config = opts.config;
        let mut engine = config.engine(now);
        let held_store = crate::ops::held::HeldStore::new(&config.state_dir);
        // Small file, read once before anything runs.
        match held_store.load() {
            Ok(names) if !names.is_empty() => {
                info!(
                    "fleet guard: {} held when vipwarden last ran ({}): announced marked until \
                     each ToR's view is complete",
                    names.join(", "),
                    held_store.path().display()
                );
                engine.restore_held(&names, now);
            }
            Ok(_) => {}
            Err(e) => warn!("{e}; starting with no held VIPs"),
        }
        let mut handed = std::collections::HashMap::new();
        let mut imported = Vec::new();
        let mut upgraded = None;
        let mut bfd_inherited = None;
        if let Some(mut inh) = inherited {
            bfd_inherited = inh.bfd.take();
            let (decisions, n_checks, n_vips) = engine.import(&inh.engine, now);
            // The new signal sources start with empty windows: no data is not evidence until
            // they have had one full window (`on_missing` applies again after that).
            engine.hold_missing_signals_until(
                now + config.signals_warm_up() + Duration::from_secs(1),
            );
            info!(
                sessions = inh.sessions.len(),
                checks = n_checks,
                vips = n_vips,
                "{} from vipwarden {} (PID {}): taking over {} BGP sessions, the state of {n_checks} checks and {n_vips} VIPs",
                if inh.via_store { "restart through systemd's fd store" } else { "in-place upgrade" },
                inh.from_version,
                inh.from_pid,
                inh.sessions.len()
            );
            let at_ms = crate::handover::unix_ms(SystemTime::now());
            let mut sessions: Vec<String> = inh.sessions.keys().cloned().collect();
            sessions.sort();
            upgraded = Some(crate::control::UpgradeView {
                from_pid: inh.from_pid,
                from_version: inh.from_version.clone(),
                sessions,
                checks: n_checks,
                vips: n_vips,
                handover_ms: at_ms.saturating_sub(inh.requested_at_ms),
                at_ms,
            });
            handed = inh.sessions;
            imported = decisions;
        }
        let held = engine.held_vips();
        let (desired_tx, desired_rx) = watch::channel(Arc::new(with_generation(&engine, 0)));
        let bfd = BfdRuntime::start_inherited(&config, bfd_inherited);
        let (rib_in_tx, rib_in_rx) = mpsc::channel(1024);
        let peers = Peers::start(&config, &desired_rx, &bfd, Some(rib_in_tx), &mut handed);
        let stop_sources = CancellationToken::new();
        let board = SignalBoard::spawn(&config.signals, &stop_sources);
        let checks = CheckRuntime::spawn(&config);
        let mut status = status::Tracker::new(&config, &opts.config_path);
        status.upgraded = upgraded;
        let (status_tx, status_rx) = watch::channel(Arc::new(StatusView::default()));
        let (vips_tx, vips_rx) = mpsc::channel(16);
        let (events_tx, events_rx) = watch::channel(Arc::new(Vec::new()));
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let maint = Maintenance::start(&config);
        let (api_tx, api_rx) = watch::channel(config.api.clone());
        let notifier = Notifier::from_env();
        if let Some(p) = notifier.problem() {
            warn!("systemd notification disabled: {p}");
        }
        info!(
            peers = config.peers.len(),
            checks = config.checks.len(),
            signals = config.signals.len(),
            vips = config.vips.len(),
            "vipwarden {} started: nothing is announced until checks pass",
            env!("CARGO_PKG_VERSION")
        );
        config_warnings(&config, "configuration");
        let mut daemon = Daemon {
            config,
            config_path: opts.config_path,
            started_at: SystemTime::now(),
            engine,
            generation: 0,
            desired_tx,
            published_at: now,
            publish_cost: Duration::ZERO,
            publish_due: None,
            status_at: now,
            status_cost: Duration::ZERO,
            trimmed_at: Instant::now(),
            status_due: None,
            saving: None,
            reloading: None,
            peers,
            bfd,
            board,
            checks,
            stop_sources,
            events: VecDeque::new(),
            route_changes: BTreeMap::new(),
            drain_count: drain_count::DrainCounter::default(),
            progress: drain_count::ProgressGate::new(PROGRESS_EVERY),
            status,
            status_tx,
            vips_rx,
            events_tx,
            maint,
            notifier,
            last_notify_status: String::new(),
            rib_in_rx,
            api_tx,
            held,
            held_store,
            anonymous_warned: Default::default(),
        };
        daemon.sync_maintenance();
        // Re-deciding the handed-over state (normally no change: the routes are as they were).
        daemon.apply(imported);
        daemon.publish_status();
        if let Err(e) = daemon.notifier.ready("started; waiting for checks") {
            warn!("systemd READY notification failed: {e}");
        }
        let control = Control {
            handle: ControlHandle {
                status: status_rx,
                vips: vips_tx,
                events: events_rx,
                commands: cmd_tx,
            },
            commands: cmd_rx,
            api_config: api_rx,
        };
        (daemon, control)
    }

    /// Runs until SIGTERM/SIGINT, then drains, withdraws and closes every session.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<(Command, oneshot::Sender<CommandReply>)>,
    ) -> anyhow::Result<()> {
        let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
        let mut sigusr2 =
            signal(SignalKind::user_defined2()).context("installing SIGUSR2 handler")?;
        let mut tick = tokio::time::interval(POLICY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The watchdog is pinged from the decision loop itself, so a hung loop stops pinging.
        let mut watchdog = tokio::time::interval(
            sdnotify::watchdog_interval().unwrap_or(Duration::from_secs(3600)),
        );
        let watchdog_on = sdnotify::watchdog_interval().is_some();
        let mut disabled = self.maint.disabled.clone();
        // A signal-driven evaluation is due then (coalesced); and when the last one ran.
        let mut eval_due: Option<Instant> = None;
        let mut last_eval = Instant::now();
        // The earliest end of a pending `for` dwell. Conditions move only when evaluated (tick,
        // signals) or on reload, so it is recomputed there, not on every turn (O(VIPs)).
        let mut dwell_end = self.engine.next_deadline();

        let why = loop {
            // Evaluate when sources published (coalesced) and exactly when a `for` dwell ends.
            let dwell_due = dwell_end.map(|d| d.max(last_eval + SIGNAL_COALESCE));
            let wake = match (eval_due, dwell_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let count_due = self.drain_count.due();
            let guard_due = self.engine.guard_wake_at();
            tokio::select! {
                _ = watchdog.tick(), if watchdog_on => {
                    let _ = self.notifier.watchdog();
                }
                Ok(()) = disabled.changed() => {
                    self.sync_maintenance();
                    self.status_changed();
                }
                _ = sleep_until(self.publish_due), if self.publish_due.is_some() => {
                    self.publish_routes();
                }
                _ = sleep_until(self.status_due), if self.status_due.is_some() => {
                    self.publish_status();
                }
                // A session changed state or its announced routes: status shows it now.
                _ = self.peers.changed.notified() => self.status_changed(),
                Some(sample) = self.checks.rx.recv() => self.on_samples(sample),
                Some(ev) = self.rib_in_rx.recv() => self.on_rib_in(ev),
                counts = self.drain_count.finished() => {
                    self.on_counts(counts);
                    self.status_changed();
                }
                _ = sleep_until(count_due), if count_due.is_some() => self.start_count(),
                // A guard's marked phase or fail-open dwell ends: step the gates exactly then.
                _ = sleep_until(guard_due), if guard_due.is_some() => {
                    let d = self.engine.reguard(Instant::now());
                    self.apply(d);
                    self.status_changed();
                }
                _ = tick.tick() => {
                    self.on_tick();
                    dwell_end = self.engine.next_deadline();
                    self.status_changed();
                }
                _ = self.board.changed(), if eval_due.is_none() => {
                    eval_due = Some(Instant::now().max(last_eval + SIGNAL_COALESCE));
                }
                _ = sleep_until(wake), if wake.is_some() => {
                    eval_due = None;
                    last_eval = Instant::now();
                    if self.on_signals() {
                        self.status_changed();
                    }
                    dwell_end = self.engine.next_deadline();
                }
                // One command at a time: the next waits until this one's state file is written.
                r = join(self.saving.as_mut().map(|s| &mut s.task)), if self.saving.is_some() => {
                    self.command_saved(r);
                    // Always now, not coalesced: the API answers the command when this loop
                    // yields, and a client that reads status after the answer must see its effect.
                    self.publish_status();
                }
                Some(reply) = self.vips_rx.recv() => self.answer_vips(reply),
                Some((cmd, reply)) = commands.recv(), if self.saving.is_none() => {
                    self.on_command(cmd, reply);
                    // A drain it began is counted now, not at the next tick.
                    self.start_count();
                    self.publish_status();
                }
                _ = sighup.recv(), if self.reloading.is_none() => self.begin_reload(),
                r = join(self.reloading.as_mut()), if self.reloading.is_some() => {
                    self.finish_reload(r);
                    dwell_end = self.engine.next_deadline();
                    self.status_changed();
                }
                _ = sigusr2.recv() => {
                    let started = Instant::now();
                    match self.upgrade(started).await {
                        Ok(done) => self.exit_upgraded(&done),
                        Err(why) => {
                            warn!("in-place upgrade failed, this process serves on with every session resumed: {why}");
                            self.status.upgrade_failed = Some(crate::control::UpgradeFailure {
                                at_ms: crate::handover::unix_ms(SystemTime::now()),
                                reason: why,
                            });
                            self.publish_status();
                        }
                    }
                }
                _ = sigterm.recv() => {
                    // A restart job (the ExecStop= hook said so) hands the sessions over through
                    // systemd's fd store; anything else, and any failure, is a planned stop.
                    let started = Instant::now();
                    let verdict = tokio::task::spawn_blocking(crate::handover::fdstore::restart_requested)
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    match verdict {
                        Ok(()) => match self.restart_handover(started).await {
                            Ok(done) => self.exit_restarted(&done),
                            Err(why) => {
                                warn!("systemctl restart: the sessions cannot go through systemd's fd store ({why}); stopping as planned instead");
                                break "SIGTERM";
                            }
                        },
                        Err(why) => {
                            info!("SIGTERM is a planned stop: {why}");
                            break "SIGTERM";
                        }
                    }
                }
                _ = sigint.recv() => break "SIGINT",
            }
            // Sessions and the API run between any two pieces of work, even when the next one
            // is already waiting (a branch that is ready does not yield by itself).
            tokio::task::yield_now().await;
        };
        self.stop(why, commands, &mut sigterm, &mut sigint).await;
        Ok(())
    }

    /// Feeds `first` and whatever else is queued (for at most `SAMPLE_SLICE`), then applies the
    /// decisions once.
    fn on_samples(&mut self, first: CheckSample) {
        let started = Instant::now();
        let mut check_moved = false;
        let mut decisions = self.on_sample(&first, &mut check_moved);
        while started.elapsed() < SAMPLE_SLICE {
            let Ok(sample) = self.checks.rx.try_recv() else {
                break;
            };
            decisions.extend(self.on_sample(&sample, &mut check_moved));
        }
        let route_moved = !decisions.is_empty();
        self.apply(decisions);
        // `apply` published a route change; a check going up or down alone is a transition too.
        if check_moved && !route_moved {
            self.status_changed();
        }
    }

    /// Feeds one check result to the engine and logs the check's own change (setting `moved`
    /// when the check went up or down).
    fn on_sample(&mut self, sample: &CheckSample, moved: &mut bool) -> Vec<Decision> {
        let Some(check) = self.config.checks.get(sample.check) else {
            return Vec::new();
        };
        self.status.record_check(sample);
        let was_up = self.engine.checks()[sample.check].rise_fall.is_up();
        let was_ok = self.engine.checks()[sample.check].last_ok;
        let obs = Observation {
            check: sample.check,
            ok: sample.result.ok,
            detail: sample.result.detail.clone(),
            definitive: sample.result.definitive,
        };
        let decisions = self.engine.observe(&obs, sample.at);
        let rf = &self.engine.checks()[sample.check].rise_fall;
        *moved |= was_up != rf.is_up();
        let name = &check.name;
        match (was_up, rf.is_up(), obs.ok) {
            (false, true, _) => {
                info!(check = %name, "check {name} up: passed {}/{} ({})", rf.rise(), rf.rise(), obs.detail)
            }
            (true, false, _) if obs.definitive => {
                info!(check = %name, "check {name} down at once (a definitive failure; fall {} not awaited): {}", rf.fall(), obs.detail)
            }
            (true, false, _) => {
                info!(check = %name, "check {name} down: failed {}/{}: {}", rf.fall(), rf.fall(), obs.detail)
            }
            (true, true, false) => {
                info!(check = %name, "check {name} failed {}/{}: {}", rf.streak(), rf.fall(), obs.detail)
            }
            // A check that is down and starts failing (its first result, or after a pass): at
            // the default level, so a newcomer sees why nothing is announced.
            (false, false, false) if was_ok != Some(false) => {
                info!(check = %name, "check {name} failing (down; {} passes in a row bring it up): {}", rf.rise(), obs.detail)
            }
            _ => debug!(check = %name, ok = obs.ok, "check {name}: {}", obs.detail),
        }
        decisions
    }

    /// Evaluates the VIPs with traffic conditions on fresh readings; true if a route moved.
    fn on_signals(&mut self) -> bool {
        let board = &self.board;
        let decisions = self
            .engine
            .evaluate_signals(&|s: &str| -> Reading { board.read(s) }, Instant::now());
        let moved = !decisions.is_empty();
        self.apply(decisions);
        moved
    }

    /// A session came up or went down, or received routes for VIP prefixes.
    fn on_rib_in(&mut self, ev: RibInEvent) {
        let now = Instant::now();
        let decisions = match ev {
            RibInEvent::Up {
                peer,
                add_path_v4,
                add_path_v6,
            } => {
                if self.config.fleet.is_some() {
                    self.warn_partial_view(&peer, add_path_v4, add_path_v6);
                }
                self.engine
                    .fleet_peer_up(&peer, add_path_v4, add_path_v6, now)
            }
            RibInEvent::Down { peer } => {
                self.anonymous_warned.remove(&*peer);
                self.engine.fleet_peer_down(&peer, now)
            }
            RibInEvent::Update { peer, update } => {
                debug!(peer = %peer, "fleet view: {} announced, {} withdrawn", update.announced.len(), update.withdrawn.len());
                let d = self.engine.fleet_update(&peer, &update, now);
                self.warn_anonymous(&peer);
                d
            }
            RibInEvent::Behind { peer } => {
                warn!(peer = %peer, "fleet view of {peer} is behind: the daemon did not keep up with its UPDATEs; \
                    none of its announcers count (the guard holds rather than leaves) until the session resends its table");
                self.engine.fleet_peer_behind(&peer, now)
            }
            RibInEvent::Resync { peer, table } => {
                info!(peer = %peer, "fleet view of {peer} resynced: {} paths", table.len());
                let d = self.engine.fleet_resync(&peer, &table, now);
                self.warn_anonymous(&peer);
                d
            }
        };
        self.apply(decisions);
    }

    /// A ToR that sends VIP paths without a node identity gives the guard no view (it holds
    /// there): say so once per session, with the router-side fix.
    fn warn_anonymous(&mut self, peer: &str) {
        if self.anonymous_warned.contains(peer) {
            return;
        }
        let n = self.engine.fleet().map_or(0, |f| f.anonymous_paths(peer));
        if n == 0 {
            return;
        }
        self.anonymous_warned.insert(peer.to_string());
        warn!(
            peer = %peer,
            paths = n,
            "fleet view from {peer}: {n} VIP paths without a node identity (large community \
             LOCAL_AS:22103:ROUTER_ID): the ToR strips large communities, so the fleet guard cannot \
             count there and holds. On the router: FRR `neighbor <node> send-community large` (or \
             `all`); BIRD: keep bgp_large_community in the export filter"
        );
    }

    /// A peer that does not send every path gives only a partial view: say what to add on the
    /// router.
    fn warn_partial_view(&self, peer: &str, v4: bool, v6: bool) {
        let prefixes = self.config.vips.iter().flat_map(|v| v.spec.prefixes.iter());
        let (mut need4, mut need6) = (false, false);
        for p in prefixes {
            if p.is_ipv4() {
                need4 |= !v4;
            } else {
                need6 |= !v6;
            }
        }
        if !(need4 || need6) {
            return;
        }
        let fams = match (need4, need6) {
            (true, true) => "IPv4 and IPv6",
            (true, false) => "IPv4",
            _ => "IPv6",
        };
        warn!(
            peer = %peer,
            "fleet view from {peer} is partial for {fams}: it sends only its best path (no ADD-PATH). \
             On the router add: BIRD `add paths tx;` in the channel; FRR `neighbor <node> addpath-tx-all-paths` \
             in the address family; GoBGP `[neighbors.add-paths.config] send-max = 8`"
        );
    }

    fn on_tick(&mut self) {
        let board = &self.board;
        let decisions = self
            .engine
            .tick(&|s: &str| -> Reading { board.read(s) }, Instant::now());
        self.apply(decisions);
        // Also starts the counting of a drain that began since (e.g. on a health drain).
        self.start_count();
        // Rebuilt status views and route tables free large blocks that glibc keeps resident;
        // hand them back so RSS follows the live state (a call costs ~1 ms at 100k VIPs, on a
        // blocking thread: it takes the allocator's locks and walks the whole heap).
        if self.trimmed_at.elapsed() >= TRIM_EVERY {
            drop(tokio::task::spawn_blocking(
                crate::sys::malloc::release_free_memory,
            ));
            self.trimmed_at = Instant::now();
        }
    }

    /// Starts counting connections if a connection-aware drain runs and no count is in flight.
    fn start_count(&mut self) {
        let wanted = self.engine.counting_connections();
        self.progress.keep_only(&wanted);
        self.drain_count.start(wanted);
    }

    /// Feeds finished connection counts to the engine: progress lines, or the drain's end.
    fn on_counts(&mut self, done: drain_count::Counts) {
        let now = Instant::now();
        let mut decisions = Vec::new();
        for (vip, c) in done {
            let show = self.progress.show(&vip, &c, now);
            let ended = self.engine.observe_connections(&vip, c, now);
            if !ended.is_empty() {
                self.progress.ended(&vip);
            } else if show {
                self.drain_progress(&vip, now);
            }
            decisions.extend(ended);
        }
        self.apply(decisions);
    }

    /// A running drain's count changed (shown at most every `PROGRESS_EVERY`): one log line and
    /// one event (from and to both `draining`), so `vipwarden events` shows the connections
    /// going over time.
    fn drain_progress(&mut self, vip: &str, now: Instant) {
        let Some(progress) = self
            .engine
            .vip(vip)
            .and_then(|v| v.life.drain_progress(now))
        else {
            return;
        };
        info!(vip, "vip {vip} draining: {progress}");
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(EventView {
            at_ms: unix_ms(SystemTime::now()),
            vip: vip.to_string(),
            from: VipState::Draining,
            to: VipState::Draining,
            reason: format!("drain: {progress}"),
            weight: None,
        });
        self.events_tx
            .send_replace(Arc::new(self.events.iter().cloned().collect()));
    }

    /// Answers at once when nothing needs writing; otherwise starts writing the state file on a
    /// blocking thread (`command_saved` answers when it is done).
    fn on_command(&mut self, cmd: Command, reply: oneshot::Sender<CommandReply>) {
        let (verb, target, why) = match &cmd {
            Command::Drain { vip, reason, .. } => ("drain", vip.as_deref(), reason.as_str()),
            Command::Undrain { vip, reason } => ("undrain", vip.as_deref(), reason.as_str()),
        };
        let target = target.unwrap_or("*");
        info!(
            command = verb,
            vip = target,
            reason = why,
            "control command: {verb} {target}: {why}"
        );
        // An unknown name is refused first, before the guard, which knows only configured VIPs.
        if let Command::Drain { vip: Some(v), .. } | Command::Undrain { vip: Some(v), .. } = &cmd {
            if !self.engine.has_vip(v) {
                let names = self.config.vips.iter().map(|v| &*v.spec.name);
                let _ = reply.send(Err(CommandError::unknown_vip(v, names)));
                return;
            }
        }
        let (vip, mark) = match cmd {
            Command::Drain { vip, reason, force } => {
                let reason = if reason.is_empty() {
                    "no reason given".to_string()
                } else {
                    reason
                };
                if let Err(e) = self.guard_drain(vip.as_deref(), force) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let mut mark = Mark::now(reason, "api");
                mark.forced = force;
                (vip, Some(mark))
            }
            Command::Undrain { vip, .. } => (vip, None),
        };
        let names: Vec<&str> = self.config.vips.iter().map(|v| &*v.spec.name).collect();
        match self.maint.plan(vip.as_deref(), mark, &names) {
            None => {
                let decisions = self.sync_maintenance();
                let _ = reply.send(Ok(outcome(&decisions)));
            }
            Some(next) => {
                let store = self.maint.store();
                let state = next.clone();
                let task = tokio::task::spawn_blocking(move || store.save(&state));
                self.saving = Some(Saving { task, next, reply });
            }
        }
    }

    /// The state file of the pending command is written (or failed): apply and answer.
    fn command_saved(
        &mut self,
        written: Result<Result<(), crate::ops::state::SaveError>, JoinError>,
    ) {
        let Some(s) = self.saving.take() else {
            return;
        };
        // The detail goes into the command's answer (a string on the wire).
        let written = match written {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("state writer failed: {e}")),
        };
        let r = match self.maint.saved(s.next, written) {
            Ok(()) => Ok(outcome(&self.sync_maintenance())),
            Err(detail) => Err(CommandError::StateNotSaved { detail }),
        };
        let _ = s.reply.send(r);
    }

    /// The fleet guard's word on an operator drain: refused (unless forced) when it would leave
    /// fewer than `min_healthy_others` healthy announcers. Both outcomes are logged.
    fn guard_drain(&self, vip: Option<&str>, force: bool) -> Result<(), CommandError> {
        let now = Instant::now();
        for v in self.config.vips.iter().map(|v| &*v.spec.name) {
            if vip.is_some_and(|n| n != v) {
                continue;
            }
            let Err(r) = self.engine.drain_check(v, now) else {
                continue;
            };
            if force {
                warn!(
                    vip = v,
                    "forced drain: the fleet guard would refuse it: {}", r.reason
                );
                continue;
            }
            warn!(
                vip = v,
                "drain refused by the fleet guard: {} (announcers: {})",
                r.reason,
                r.announcers.join(", ")
            );
            return Err(CommandError::GuardRefused {
                vip: v.to_string(),
                prefix: r.prefix.to_string(),
                healthy: r.healthy,
                min_healthy_others: r.min_healthy_others,
                announcers: r.announcers,
                reason: r.reason,
            });
        }
        Ok(())
    }

    /// Brings the engine's maintenance in line with persisted drains and disable files.
    fn sync_maintenance(&mut self) -> Vec<Decision> {
        let maint = &self.maint;
        let decisions = self
            .engine
            .sync_maintenance(&|v: &str| maint.reason_forced(v), Instant::now());
        self.apply(decisions.clone());
        decisions
    }

    /// Logs and records decisions and publishes the new routes.
    fn apply(&mut self, decisions: Vec<Decision>) {
        let weights = self.engine.take_weight_changes();
        if decisions.is_empty() && weights.is_empty() {
            return;
        }
        let at_ms = unix_ms(SystemTime::now());
        for d in &decisions {
            log_decision(d);
            if d.from == VipState::Draining && !d.announce() {
                if let Some(end) = self
                    .engine
                    .vip(&d.vip)
                    .and_then(|v| v.life.out.drain_end.as_deref())
                {
                    info!(vip = %d.vip, "withdrew {} after drain: {end}", d.vip);
                }
            }
            *self.route_changes.entry((d.vip.clone(), d.to)).or_default() += 1;
            if self.events.len() == EVENTS_KEPT {
                self.events.pop_front();
            }
            self.events.push_back(EventView {
                at_ms,
                vip: d.vip.to_string(),
                from: d.from,
                to: d.to,
                reason: d.reason.clone(),
                weight: None,
            });
        }
        for (vip, w) in &weights {
            log_weight(vip, w);
            let state = self
                .engine
                .vip(vip)
                .map(|v| v.life.state)
                .unwrap_or(VipState::Announced);
            if self.events.len() == EVENTS_KEPT {
                self.events.pop_front();
            }
            self.events.push_back(EventView {
                at_ms,
                vip: vip.to_string(),
                from: state,
                to: state,
                reason: w.to_string(),
                weight: Some(w.to),
            });
        }
        self.routes_changed();
        // Every transition is visible in status at once, not at the next tick.
        self.status_changed();
        self.events_tx
            .send_replace(Arc::new(self.events.iter().cloned().collect()));
        let engine = &self.engine;
        self.maint.notify(&decisions, |vip| {
            engine
                .vip(vip)
                .map(|v| v.spec.prefixes.iter().map(|p| p.to_string()).collect())
                .unwrap_or_default()
        });
        self.persist_held();
    }

    /// Writes the guard's held VIPs when they changed, on a blocking thread (a failure is logged;
    /// the only loss is that a restart starts those VIPs out instead of held).
    fn persist_held(&mut self) {
        let held = self.engine.held_vips();
        if held == self.held {
            return;
        }
        self.held.clone_from(&held);
        let store = self.held_store.clone();
        let names: Vec<String> = held.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.save(&names) {
                warn!("fleet guard: could not persist the held VIPs: {e}");
            }
        });
    }

    /// Publishes the routes now, or arms `publish_due` if the last snapshot was too recent.
    fn routes_changed(&mut self) {
        let due = self.published_at + self.publish_cost * PUBLISH_COST_FACTOR;
        if Instant::now() >= due {
            self.publish_routes();
        } else {
            self.publish_due.get_or_insert(due);
        }
    }

    /// Builds and sends a new route snapshot.
    fn publish_routes(&mut self) {
        let started = Instant::now();
        self.generation += 1;
        self.desired_tx
            .send_replace(Arc::new(with_generation(&self.engine, self.generation)));
        self.publish_due = None;
        self.published_at = Instant::now();
        self.publish_cost = self.published_at - started;
    }

    /// SIGHUP: reads and validates the file on a blocking thread (a slow or hung file system
    /// must not stop the sessions); `finish_reload` applies it.
    fn begin_reload(&mut self) {
        let _ = self.notifier.reloading();
        let path = self.config_path.clone();
        // `config::load`, not `preflight::load`: a token or TLS file refused on reload is the
        // API supervisor's to handle (it keeps the previous one and says so), not a reason to
        // keep the old VIPs and peers too.
        self.reloading = Some(tokio::task::spawn_blocking(move || {
            crate::config::load(&path)
        }));
    }

    /// Applies the reloaded config as a diff, or keeps everything and says why.
    fn finish_reload(&mut self, loaded: Result<Result<Config, ConfigErrors>, JoinError>) {
        self.reloading = None;
        match loaded {
            Ok(Ok(new)) => self.apply_config(new),
            Ok(Err(e)) => {
                let msg = e.to_string();
                warn!("SIGHUP: configuration not reloaded, the running one stays:\n{msg}");
                self.status.reload_failed(msg);
            }
            Err(e) => {
                let msg = format!("reading the configuration failed: {e}");
                warn!("SIGHUP: {msg}; the running one stays");
                self.status.reload_failed(msg);
            }
        }
        let _ = self.notifier.ready("configuration reloaded");
    }

    fn apply_config(&mut self, new: Config) {
        let now = Instant::now();
        let mut engine = new.engine(now);
        let decisions = engine.carry_over(&self.engine, now);
        self.engine = engine;

        let old_checks = std::mem::replace(&mut self.checks, CheckRuntime::spawn(&new));
        old_checks.shutdown();
        if self.config.signals != new.signals {
            self.stop_sources.cancel();
            self.stop_sources = CancellationToken::new();
            let old = std::mem::replace(
                &mut self.board,
                SignalBoard::spawn(&new.signals, &self.stop_sources),
            );
            old.abort();
        }
        self.bfd.reconcile(&new);
        let kept = self
            .peers
            .reconcile(&new, &self.desired_tx.subscribe(), &self.bfd);
        info!(
            sessions_kept = kept,
            "SIGHUP: configuration {} applied ({} peers, {} checks, {} vips)",
            self.config_path.display(),
            new.peers.len(),
            new.checks.len(),
            new.vips.len()
        );
        config_warnings(&new, "SIGHUP");
        self.status.reloaded(&new);
        self.maint.reconfigure(&new);
        // Always sent, even unchanged: the API re-reads the token file on every reload.
        self.api_tx.send_replace(new.api.clone());
        self.config = new;
        // Routes change only where the config changed: sessions diff the new set against theirs.
        self.publish_routes();
        self.apply(decisions);
        self.sync_maintenance();
    }

    /// Planned stop: drain per `shutdown`, withdraw, then close sessions with Cease.
    async fn stop(
        mut self,
        why: &str,
        mut commands: mpsc::Receiver<(Command, oneshot::Sender<CommandReply>)>,
        sigterm: &mut tokio::signal::unix::Signal,
        sigint: &mut tokio::signal::unix::Signal,
    ) {
        let reason = format!("vipwarden stopping ({why})");
        info!("{why}: draining and withdrawing all routes before closing sessions");
        // Commands can no longer take effect: answer them at once, with the reason, for as long as
        // the process lives, instead of letting the API time out.
        let pending = self.saving.take().map(|s| s.reply);
        let stopping = reason.clone();
        tokio::spawn(async move {
            let refuse = |r: oneshot::Sender<CommandReply>, reason: &str| {
                let _ = r.send(Err(CommandError::Stopping {
                    reason: reason.to_string(),
                }));
            };
            if let Some(r) = pending {
                refuse(r, &format!("{stopping} (the drain state write was still running and may have been saved)"));
            }
            while let Some((_, r)) = commands.recv().await {
                refuse(r, &stopping);
            }
        });
        let _ = self.notifier.stopping("withdrawing routes");
        self.checks.stop.cancel();
        let decisions = self.engine.begin_shutdown(&reason, Instant::now());
        self.apply(decisions);
        // A planned stop does not coalesce: every change goes out at once.
        self.publish_routes();
        if self.engine.stop_pending() {
            match self.engine.stop_deadline() {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    info!("graceful drain: routes stay de-preferred for {}; a second SIGTERM/SIGINT withdraws at once", crate::engine::format_duration(Duration::from_secs(wait.as_secs_f64().round() as u64)));
                }
                None => info!("fleet guard: routes stay marked for fleet.settle, then until other healthy announcers are seen (at most fleet.stop_hold_limit); a second SIGTERM/SIGINT withdraws at once"),
            }
            let hold_limit = self
                .config
                .fleet
                .as_ref()
                .map_or(crate::config::DEFAULT_STOP_HOLD_LIMIT, |f| {
                    f.stop_hold_limit
                });
            let hold_deadline = Instant::now() + hold_limit;
            let drain_end = self.engine.stop_deadline();
            // Ask systemd for the time the hold may take (past a unit's TimeoutStopSec).
            let wait = drain_end
                .map_or(Duration::ZERO, |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .max(hold_limit)
                + Duration::from_secs(15);
            let _ = self
                .notifier
                .send(&format!("EXTEND_TIMEOUT_USEC={}", wait.as_micros()));
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                let count_due = self.drain_count.due();
                tokio::select! {
                    _ = tick.tick() => {
                        let d = self.engine.tick(&|_: &str| Reading { value: None, requests: None }, Instant::now());
                        self.apply(d);
                        self.start_count();
                    }
                    counts = self.drain_count.finished() => self.on_counts(counts),
                    _ = sleep_until(count_due), if count_due.is_some() => self.start_count(),
                    // Sessions keep feeding the fleet view: a held VIP leaves when a healthy
                    // announcer appears.
                    Some(ev) = self.rib_in_rx.recv() => self.on_rib_in(ev),
                    Some(reply) = self.vips_rx.recv() => self.answer_vips(reply),
                    _ = sigterm.recv() => { warn!("second {why}: withdrawing now"); break; }
                    _ = sigint.recv() => { warn!("second {why}: withdrawing now"); break; }
                }
                // A planned stop does not coalesce: every change goes out at once.
                if self.publish_due.is_some() {
                    self.publish_routes();
                }
                self.status_changed();
                if !self.engine.stop_pending() {
                    break;
                }
                if self.engine.stop_deadline().is_none()
                    && self.engine.guard_holds()
                    && Instant::now() >= hold_deadline
                {
                    warn!(
                        "fleet guard: still held after fleet.stop_hold_limit {}: {}; withdrawing \
                         as the process stops (the ToRs lose this node's marked path; a restart \
                         restores the hold)",
                        crate::engine::format_duration(hold_limit),
                        self.engine.held_vips().join(", ")
                    );
                    break;
                }
            }
        }
        // Whatever is still routed goes now (also after a cut-short drain).
        let mut last = with_generation(&self.engine, self.generation + 1);
        last.routes.clear();
        let reason: Arc<str> = reason.as_str().into();
        for r in last.reasons.values_mut() {
            *r = Arc::clone(&reason);
        }
        self.desired_tx.send_replace(Arc::new(last));
        self.peers
            .wait_withdrawn(Duration::from_secs(2), Duration::from_millis(300))
            .await;
        self.checks.shutdown();
        self.stop_sources.cancel();
        self.board.abort();
        // BFD AdminDown after the Cease, not before: BIRD 2.0.12 takes a neighbour's AdminDown
        // as "BFD session down" and closes BGP with an error (RFC 5882 3.2 says it should not).
        // Quiesced, our sessions cannot follow the fresh BFD session BIRD starts on the Cease;
        // FRR's bfdd keeps its session and sees a planned "neighbor-down" instead of a
        // detection-time expiry when we exit.
        self.bfd.quiesce().await;
        self.peers
            .stop_all(&format!("vipwarden node shutdown ({why})"))
            .await;
        self.bfd.admin_down_all().await;
        self.maint.finish(Duration::from_secs(15)).await;
        info!("stopped");
    }

    /// Publishes the status now, unless the last one was built too recently for its cost (then
    /// `status_due` does, as soon as that cost allows).
    fn status_changed(&mut self) {
        let due = self.status_at + self.status_cost * STATUS_COST_FACTOR;
        if Instant::now() >= due {
            self.publish_status();
        } else {
            self.status_due.get_or_insert(due);
        }
    }

    /// The VIPs' part of the status for one API request.
    fn answer_vips(&self, reply: crate::control::VipsRequest) {
        let _ = reply.send(
            self.status
                .vip_views(&self.engine, &self.board, &self.route_changes),
        );
    }

    fn publish_status(&mut self) {
        let started = Instant::now();
        let mut view = self.status.view(
            &self.config,
            &self.engine,
            &self.peers,
            &self.board,
            self.started_at,
        );
        view.errors.extend(self.maint.errors.iter().cloned());
        for p in &mut view.peers {
            p.bfd = self.bfd.view(&p.name);
        }
        view.bfd_unmatched = self.bfd.unmatched();
        let line = systemd_status(&view, &self.engine);
        self.status_tx.send_replace(Arc::new(view));
        if line != self.last_notify_status {
            let _ = self.notifier.status(&line);
            self.last_notify_status = line;
        }
        self.status_at = Instant::now();
        self.status_cost = self.status_at - started;
        self.status_due = None;
    }
}

/// Runs the daemon until a planned stop. A file check-config refuses (a token or TLS file
/// included) never gets here (`preflight::load`); what only shows at run time (the API port
/// taken, a token file broken after start) is reported in status and logs but never keeps the
/// node from announcing: stopping on it, fleet-wide, would withdraw every node at once.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let api = opts.config.api.clone();
    let inherited = match crate::handover::intake(&opts.config, bfd::spec).await {
        crate::handover::Intake::None => from_store(&opts.config).await,
        crate::handover::Intake::Refused(why) => {
            anyhow::bail!("in-place upgrade refused: {why}; the running process serves on")
        }
        crate::handover::Intake::Ready(mut t) => {
            if let Err(why) = t.wait_go().await {
                anyhow::bail!("in-place upgrade abandoned: {why}");
            }
            Some(Inherited {
                bfd: Some(std::mem::take(&mut t.bfd)),
                requested_at_ms: t.state.requested_at_ms,
                from_pid: t.state.from_pid,
                from_version: t.state.from_version.clone(),
                engine: std::mem::take(&mut t.state.engine),
                sessions: std::mem::take(&mut t.sessions),
                via_store: false,
            })
        }
    };
    let (daemon, control) = Daemon::start(opts, inherited);
    let stop_api = CancellationToken::new();
    // The API supervisor logs and shows its own problems (token file, port) in /v1/status.
    let api_task = tokio::spawn(crate::api::supervise(
        api,
        control.api_config,
        control.handle,
        stop_api.clone(),
    ));
    let result = daemon.run(control.commands).await;
    stop_api.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(4), api_task).await;
    result
}

/// What a `systemctl restart` left in systemd's fd store, if anything. A state this process
/// refuses has had its sessions closed (Cease): a normal start re-establishes them.
async fn from_store(config: &Config) -> Option<Inherited> {
    use crate::handover::fdstore::{self, StoreIntake};
    match fdstore::intake(config, bfd::spec).await {
        StoreIntake::None => None,
        StoreIntake::Refused { why, closed } => {
            warn!(
                closed,
                "systemd's fd store held a hand-over this process refuses: {why}; closed its {closed} BGP sessions with a Cease and starts normally (sessions are established again)"
            );
            None
        }
        StoreIntake::Ready(t) => {
            let t = *t;
            Some(Inherited {
                bfd: Some(t.bfd),
                requested_at_ms: t.state.requested_at_ms,
                from_pid: t.state.from_pid,
                from_version: t.state.from_version,
                engine: t.state.engine,
                sessions: t.sessions,
                via_store: true,
            })
        }
    }
}

/// The config's warnings (loads, but cannot work as written), the same lines `check-config`
/// prints, as WARN at start and on every reload.
fn config_warnings(config: &Config, when: &str) {
    for w in &config.warnings {
        warn!("{when}: {w}");
    }
}

/// The route-change line: the text reason, and for a condition its figures as fields (values in
/// the signal's unit: ratios, per second, latencies in microseconds; `for` in seconds).
fn log_decision(d: &Decision) {
    let c = d.cause.as_ref();
    info!(
        vip = %d.vip,
        from = %d.from,
        to = %d.to,
        signal = c.map(|c| c.signal.as_str()),
        value = c.map(|c| c.value),
        threshold = c.map(|c| c.threshold),
        "for" = c.map(|c| c.held_for.as_secs_f64()),
        requests = c.and_then(|c| c.requests),
        "vip {} {} -> {}: {}",
        d.vip,
        d.from,
        d.to,
        d.reason
    );
}

/// The weight-change line, with the condition's figures as fields when one moved it.
fn log_weight(vip: &str, w: &crate::engine::WeightChange) {
    let c = w.cause.as_ref();
    info!(
        vip,
        weight_from = w.from,
        weight_to = w.to,
        signal = c.map(|c| c.signal.as_str()),
        value = c.map(|c| c.value),
        threshold = c.map(|c| c.threshold),
        "vip {vip} {w}{}",
        c.map(|c| format!(" after {c}")).unwrap_or_default()
    );
}

fn systemd_status(v: &StatusView, engine: &Engine) -> String {
    let up = v.peers.iter().filter(|p| p.state == "established").count();
    let mut counts: BTreeMap<VipState, usize> = BTreeMap::new();
    for vip in engine.vips() {
        *counts.entry(vip.life.state).or_default() += 1;
    }
    let states: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!(
        "{up}/{} sessions established; VIPs: {}",
        v.peers.len(),
        states.join(", ")
    )
}

/// Awaits a background task; never completes without one (the caller's `if` guard keeps that
/// branch off).
async fn join<T>(task: Option<&mut JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

fn outcome(decisions: &[Decision]) -> CommandOutcome {
    CommandOutcome {
        changed: decisions
            .iter()
            .map(|d| (d.vip.to_string(), d.to))
            .collect(),
    }
}

/// Sleeps until `due` (forever without one; the caller's `if` guard keeps that branch off).
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn with_generation(engine: &Engine, generation: u64) -> DesiredRoutes {
    let mut d = engine.desired();
    d.generation = generation;
    d
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod transition_tests;

#[cfg(test)]
mod log_tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::engine::{Cause, Unit};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The decision line as `--log-format json` writes it.
    fn json_line(d: &Decision) -> serde_json::Value {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .json()
            .flatten_event(true)
            .finish();
        tracing::subscriber::with_default(sub, || log_decision(d));
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    #[test]
    fn json_decision_line_carries_the_figures_as_fields() {
        let cause = Cause {
            signal: "web_log.error_ratio".into(),
            unit: Unit::Plain,
            value: 0.124,
            tripped: true,
            threshold: 0.05,
            baseline: None,
            held_for: Duration::from_secs(10),
            requests: Some(1843),
        };
        let d = Decision {
            vip: "web".into(),
            from: VipState::Announced,
            to: VipState::Withdrawn,
            reason: cause.to_string(),
            cause: Some(cause),
        };
        let j = json_line(&d);
        assert_eq!(j["vip"], "web", "{j}");
        assert_eq!(j["signal"], "web_log.error_ratio", "{j}");
        assert_eq!(j["value"], 0.124, "{j}");
        assert_eq!(j["threshold"], 0.05, "{j}");
        assert_eq!(j["for"], 10.0, "{j}");
        assert_eq!(j["requests"], 1843, "{j}");
        assert!(j["message"]
            .as_str()
            .unwrap()
            .contains("web_log.error_ratio 0.124 > 0.050 for 10s (1843 requests)"));
        // A check-caused change has no figures to give: no empty fields either.
        let d = Decision {
            cause: None,
            reason: "check web failed 2/2: connect refused".into(),
            ..d
        };
        let j = json_line(&d);
        assert_eq!(j["vip"], "web");
        assert!(j.get("signal").is_none() && j.get("value").is_none(), "{j}");
    }
}
