//! Builds the `StatusView` the API serves, from the engine, the sessions and the signal board.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::board::{LogHealth, SignalBoard};
use super::peers::Peers;
use crate::checks::CheckSample;
use crate::config::Config;
use crate::control::{
    CheckView, ConditionView, ConfigView, DurationHistogram, FleetAnnouncerView, FleetPeerView,
    FleetPrefixView, FleetVipView, LogSignalView, PeerView, RouteChangeCount, StatusView, VipExtra,
    VipState, VipView, VipsView, WeightView,
};
use crate::engine::{Engine, Phase};
use crate::signals::logcheck;

#[derive(Default, Clone)]
struct CheckTotals {
    passes: u64,
    failures: u64,
    last_duration_ms: Option<f64>,
    durations: DurationHistogram,
}

pub struct Tracker {
    config: ConfigView,
    checks: HashMap<Arc<str>, CheckTotals>,
    /// Names of checks by index, for samples (rebuilt on reload).
    check_names: Vec<Arc<str>>,
    /// Per peer: the Established-since last seen and the sessions that ended since start. A
    /// session that ends and comes back between two views shows a new since time: still counted.
    flaps: HashMap<Arc<str>, (Option<SystemTime>, u64)>,
    /// Log-signal problems already logged as WARN since start/the last reload.
    warned: std::collections::HashSet<String>,
    /// What this process took over in an in-place upgrade, and the last upgrade that failed.
    pub upgraded: Option<crate::control::UpgradeView>,
    pub upgrade_failed: Option<crate::control::UpgradeFailure>,
}

/// A VIP's drain, guard and weight views (None when it has none of them).
fn vip_extra(
    engine: &Engine,
    v: &crate::engine::Vip,
    board: &SignalBoard,
) -> Option<Box<VipExtra>> {
    let counting = v.life.counts_connections();
    let (holding, silent, note) = match &v.life.out.connections {
        crate::engine::Connections::Count { holding, silent } if counting => {
            let silent = v.life.spec.drain_idle.is_some().then_some(*silent);
            (Some(*holding), silent, None)
        }
        crate::engine::Connections::Unavailable(why) if counting => {
            (None, None, Some(why.as_str().into()))
        }
        _ => (None, None, None),
    };
    VipExtra {
        drain_connections: holding,
        drain_connections_silent: silent,
        drain_note: note,
        draining_for_s: v
            .life
            .drained_for(std::time::Instant::now())
            .map(|d| d.as_secs_f64()),
        fleet: fleet_view(engine, v),
        weight: v.weight.as_ref().map(|w| WeightView {
            bytes_per_sec: w.current,
            capacity_bytes_per_sec: w.spec.capacity.round() as u64,
            reason: w.reason.clone(),
            conditions: w
                .conditions
                .iter()
                .map(|c| condition_view(c, board))
                .collect(),
        }),
    }
    .boxed()
}

fn unix_s(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tracker {
    pub fn new(config: &Config, path: &Path) -> Tracker {
        Tracker {
            config: ConfigView {
                path: path.display().to_string(),
                generation: 1,
                loaded_at: unix_s(SystemTime::now()),
                last_reload_error: None,
            },
            checks: HashMap::new(),
            check_names: config.checks.iter().map(|c| c.name.clone()).collect(),
            flaps: HashMap::new(),
            warned: Default::default(),
            upgraded: None,
            upgrade_failed: None,
        }
    }

    pub fn record_check(&mut self, s: &CheckSample) {
        let Some(name) = self.check_names.get(s.check) else {
            return;
        };
        let t = self.checks.entry(name.clone()).or_default();
        if s.result.ok {
            t.passes += 1;
        } else {
            t.failures += 1;
        }
        t.last_duration_ms = Some(s.result.elapsed.as_secs_f64() * 1000.0);
        t.durations.observe(s.result.elapsed.as_secs_f64());
    }

    pub fn reloaded(&mut self, config: &Config) {
        self.config.generation += 1;
        self.config.loaded_at = unix_s(SystemTime::now());
        self.config.last_reload_error = None;
        self.check_names = config.checks.iter().map(|c| c.name.clone()).collect();
        self.warned.clear();
    }

    pub fn reload_failed(&mut self, why: String) {
        self.config.last_reload_error = Some(why);
    }

    pub fn view(
        &mut self,
        config: &Config,
        engine: &Engine,
        peers: &Peers,
        board: &SignalBoard,
        started_at: SystemTime,
    ) -> StatusView {
        let now = SystemTime::now();
        let peers = peers
            .list
            .iter()
            .map(|rt| {
                let st = rt.status.borrow();
                let est = st.established_since.map(unix_s);
                let seen = self.flaps.entry(rt.cfg.spec.name.clone()).or_default();
                if seen.0.is_some() && seen.0 != st.established_since {
                    seen.1 += 1;
                }
                seen.0 = st.established_since;
                let flaps = seen.1;
                PeerView {
                    name: rt.cfg.spec.name.to_string(),
                    address: rt.cfg.spec.address.to_string(),
                    remote_as: rt.cfg.spec.remote_as,
                    state: st.state.to_string().to_lowercase(),
                    established_since: est,
                    uptime_secs: st
                        .established_since
                        .and_then(|t| now.duration_since(t).ok())
                        .map(|d| d.as_secs()),
                    prefixes_announced: st.prefixes_announced,
                    updates_sent: st.updates_sent,
                    updates_received: st.updates_received,
                    connect_attempts: st.connect_attempts,
                    last_error: st.last_error.clone(),
                    bfd: None,
                    flaps,
                    last_end: st.last_end.as_ref().map(|e| e.kind().to_string()),
                    session_ends: st.ends.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                    route_refresh_received: st.route_refresh_received,
                    fleet_resyncs: st.fleet_resyncs,
                    fleet_deltas_replaced: st.fleet_deltas_replaced,
                }
            })
            .collect();
        let latency_conditions: Vec<(String, String)> = engine
            .vips()
            .iter()
            .flat_map(|v| {
                v.conditions
                    .iter()
                    .map(move |c| (v.spec.name.to_string(), c.spec.signal.clone()))
            })
            .collect();
        let (signals, log_problems) = log_signal_views(&board.log_health(), &latency_conditions);
        for p in &log_problems {
            // The source task repeats its own WARN each minute; this one is once per config.
            if self.warned.insert(p.clone()) {
                tracing::warn!("{p}");
            }
        }
        StatusView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            router_id: config.router_id.to_string(),
            local_as: config.local_as,
            started_at: unix_s(started_at),
            config: self.config.clone(),
            peers,
            // Built when asked (`vip_views`): at 100k VIPs they are most of the status.
            vips: Vec::new(),
            errors: self
                .config
                .last_reload_error
                .iter()
                .map(|e| format!("last reload refused: {e}"))
                .chain(log_problems)
                .collect(),
            signals,
            bfd_unmatched: Default::default(),
            pid: std::process::id(),
            upgraded: self.upgraded.clone(),
            upgrade_failed: self.upgrade_failed.clone(),
            route_changes: Vec::new(),
        }
    }

    /// The VIPs' part of the status, for one API request: the published view leaves it out, so
    /// 100k VIP views are neither rebuilt for every change nor held between requests.
    pub fn vip_views(
        &self,
        engine: &Engine,
        board: &SignalBoard,
        route_changes: &BTreeMap<(Arc<str>, VipState), u64>,
    ) -> VipsView {
        let now = SystemTime::now();
        let wall = |at: std::time::Instant| {
            let ago = std::time::Instant::now().saturating_duration_since(at);
            unix_s(now.checked_sub(ago).unwrap_or(now))
        };
        // One view per check, shared by the VIPs that use it.
        let check_views: Vec<Arc<CheckView>> = engine
            .checks()
            .iter()
            .map(|c| {
                let t = self.checks.get(&c.name).cloned().unwrap_or_default();
                Arc::new(CheckView {
                    name: c.name.to_string(),
                    kind: c.kind.to_string(),
                    up: c.rise_fall.is_up(),
                    last_ok: c.last_ok,
                    last_detail: c.last_detail.clone(),
                    last_duration_ms: t.last_duration_ms,
                    passes: t.passes,
                    failures: t.failures,
                    durations: t.durations,
                })
            })
            .collect();
        // One list per distinct `checks:`, shared by the VIPs that have it.
        let mut check_lists: HashMap<&[usize], Arc<[Arc<CheckView>]>> = HashMap::new();
        let vips = engine
            .vips()
            .iter()
            .map(|v| VipView {
                name: v.spec.name.clone(),
                prefixes: crate::control::PrefixList(v.spec.prefixes.clone()),
                state: v.life.state,
                reason: v.life.reason.clone(),
                since: wall(v.life.since),
                checks: Arc::clone(check_lists.entry(&v.spec.checks[..]).or_insert_with(|| {
                    v.spec
                        .checks
                        .iter()
                        .filter_map(|&i| check_views.get(i).cloned())
                        .collect()
                })),
                conditions: v
                    .conditions
                    .iter()
                    .map(|c| condition_view(c, board))
                    .collect(),
                extra: vip_extra(engine, v, board),
            })
            .collect();
        VipsView {
            vips,
            route_changes: route_changes
                .iter()
                .map(|((vip, to), count)| RouteChangeCount {
                    vip: vip.clone(),
                    to: *to,
                    count: *count,
                })
                .collect(),
        }
    }
}

/// Per access-log signal its view, and the problems: a window mostly not in the format, and a
/// latency condition (`(vip, SIGNAL.VALUE)`) on a log whose records carry no request time.
fn log_signal_views(
    health: &[LogHealth],
    conditions: &[(String, String)],
) -> (Vec<LogSignalView>, Vec<String>) {
    let mut problems = Vec::new();
    let views = health
        .iter()
        .map(|h| {
            let not_understood = h.counts.mostly_malformed(logcheck::MIN_LINES_LIVE);
            if not_understood {
                problems.push(logcheck::malformed_message(
                    &h.name,
                    h.format,
                    &h.counts,
                    h.sample.as_deref(),
                ));
            }
            if h.counts.lacks_latency() {
                for (vip, sig) in conditions {
                    if logcheck::is_latency_value(sig)
                        && sig.split_once('.').is_some_and(|(s, _)| s == &*h.name)
                    {
                        problems.push(logcheck::latency_missing_message(
                            vip,
                            sig,
                            h.counts.records,
                        ));
                    }
                }
            }
            LogSignalView {
                name: h.name.to_string(),
                format: h.format.to_string(),
                lines: h.counts.lines,
                malformed: h.counts.malformed,
                malformed_ratio: h.counts.malformed_ratio(),
                malformed_sample: h.sample.clone(),
                not_understood,
            }
        })
        .collect();
    (views, problems)
}

/// A guarded VIP's fleet view for status: per prefix the counts, per peer the announcers.
fn fleet_view(engine: &Engine, v: &crate::engine::Vip) -> Option<FleetVipView> {
    let (spec, guard) = v.guard.as_deref()?;
    let now = std::time::Instant::now();
    let mut out = FleetVipView {
        guard: guard.phase_name().to_string(),
        min_healthy_others: spec.min_healthy_others,
        when_blind: spec.when_blind.as_str().to_string(),
        ..FleetVipView::default()
    };
    let Some(view) = engine.fleet() else {
        out.warnings
            .push("no fleet view (no fleet: section loaded)".to_string());
        return Some(out);
    };
    let mut peers: BTreeMap<String, FleetPeerView> = BTreeMap::new();
    for p in v.spec.prefixes.iter() {
        let c = crate::fleet::count_others(view, p, now);
        out.prefixes.push(FleetPrefixView {
            prefix: p.to_string(),
            healthy: c.healthy.iter().map(ToString::to_string).collect(),
            marked: c.marked.iter().map(ToString::to_string).collect(),
            blind: c.blind(),
        });
        for snap in view.snapshot(p, now) {
            let e = peers.entry(snap.peer.to_string()).or_insert_with(|| {
                let gate = guard.peer_states().find(|(peer, ..)| ***peer == *snap.peer);
                FleetPeerView {
                    peer: snap.peer.to_string(),
                    view: snap.state.as_str().to_string(),
                    announcers: Vec::new(),
                    guard: gate
                        .map(|(_, out, _)| if out { "out" } else { "held" })
                        .unwrap_or_default()
                        .to_string(),
                    guard_reason: gate.map(|(.., n)| n.to_string()).unwrap_or_default(),
                    mark_propagation_ms: guard
                        .mark_propagation
                        .get(&snap.peer)
                        .map(|d| d.as_millis() as u64),
                }
            });
            match &snap.state {
                crate::fleet::ViewState::Partial => out.warnings.push(format!(
                    "{}: no ADD-PATH for {}, the view is partial (best path only); on the router: \
                     BIRD `add paths tx;`, FRR `neighbor <node> addpath-tx-all-paths`, GoBGP \
                     add-paths send-max",
                    snap.peer,
                    p.family()
                )),
                crate::fleet::ViewState::Disabled(why) => out.warnings.push(format!(
                    "{}: {} view dropped after a malformed UPDATE until the session restarts: {why}",
                    snap.peer,
                    p.family()
                )),
                crate::fleet::ViewState::Down => {
                    out.warnings.push(format!("{}: session down, no view", snap.peer))
                }
                crate::fleet::ViewState::Behind => out.warnings.push(format!(
                    "{}: the daemon fell behind its UPDATEs; its announcers do not count until \
                     the session resends its table",
                    snap.peer
                )),
                _ => {}
            }
            for a in snap.announcers {
                e.announcers.push(FleetAnnouncerView {
                    prefix: p.to_string(),
                    node: a
                        .identity
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| format!("path {}", a.path_id)),
                    path_id: a.path_id,
                    next_hop: a.next_hop.map(|n| n.to_string()),
                    health: if a.marked { "marked" } else { "healthy" }.to_string(),
                });
            }
        }
    }
    out.warnings.sort();
    out.warnings.dedup();
    out.peers = peers.into_values().collect();
    Some(out)
}

fn condition_view(c: &crate::engine::Condition, board: &SignalBoard) -> ConditionView {
    ConditionView {
        signal: c.spec.signal.clone(),
        value: board.read(&c.spec.signal).value,
        phase: match c.phase {
            Phase::Clear => "clear",
            Phase::Tripping { .. } => "tripping",
            Phase::Active { .. } => "active",
            Phase::Clearing { .. } => "clearing",
        }
        .to_string(),
        description: c.describe(),
        trip_above: c.thresholds().map(|t| t.0),
        restore_below: c.thresholds().map(|t| t.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::logcheck::LogCounts;

    fn health(lines: u64, malformed: u64, with_latency: u64) -> LogHealth {
        LogHealth {
            name: "web_log".into(),
            format: "haproxy",
            counts: LogCounts {
                lines,
                malformed,
                records: lines - malformed,
                with_latency,
            },
            sample: Some(
                "192.0.2.9 - - [22/Nov/2026:13:00:00 +0000] \"GET / HTTP/1.1\" 200".into(),
            ),
        }
    }

    #[test]
    fn a_live_log_mostly_not_in_its_format_is_a_status_problem() {
        let conds = vec![("web".to_string(), "web_log.error_ratio".to_string())];
        let (views, problems) = log_signal_views(&[health(100, 90, 10)], &conds);
        assert_eq!(views.len(), 1);
        let v = &views[0];
        assert!(v.not_understood);
        assert_eq!((v.lines, v.malformed), (100, 90));
        assert_eq!(v.malformed_ratio, Some(0.9));
        assert!(v.malformed_sample.as_deref().unwrap().contains("GET /"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .contains("90 of 100 lines (90.0%) are not in signal web_log's format (haproxy)"),
            "{problems:?}"
        );
        // A few bad lines among good ones, or too few lines to judge: no problem.
        let (views, problems) = log_signal_views(&[health(100, 10, 90), health(5, 5, 0)], &conds);
        assert!(
            views.iter().all(|v| !v.not_understood) && problems.is_empty(),
            "{problems:?}"
        );
    }

    #[test]
    fn a_live_latency_condition_on_a_log_without_request_time_is_a_problem() {
        let conds = vec![
            ("web".to_string(), "web_log.latency_p95".to_string()),
            ("web".to_string(), "web_log.error_ratio".to_string()),
            ("api".to_string(), "other.latency_p95".to_string()),
        ];
        let (_, problems) = log_signal_views(&[health(50, 0, 0)], &conds);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("vip web: condition on web_log.latency_p95 needs a request time")
        );
        let (_, problems) = log_signal_views(&[health(50, 0, 50)], &conds);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
