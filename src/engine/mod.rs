//! Pure decision core: check results, signal readings and an injected clock in, route decisions
//! out. No I/O, no tokio, no wall clock, so hours of input replay deterministically in tests.
//!
//! Owns VIP health and route state (rise/fall, conditions, hold-down, dampening, drains). Its
//! inputs are its own `spec` types; it imports only `route`, never `config` or `control`.

mod condition;
mod dampening;
mod fmt;
mod handover;
mod lifecycle;

mod spec;
mod vip;
mod vip_state;
mod weight;

pub use crate::risefall::{RiseFall, Step};
pub use condition::{
    BaselineSpec, Cause, Change, Condition, ConditionSpec, Phase, Reading, Threshold, Unit,
};
pub use dampening::{Dampening, DampeningSpec};
pub use fmt::format_duration;
pub use handover::{CheckExport, EngineExport, VipExport};
pub use lifecycle::{
    Connections, DrainStrategy, Lifecycle, LifecycleSpec, OnUnhealthy, Transition,
};
pub use spec::{CheckSpec, Depreference, OnMissing, PolicyInterner, Require, VipPolicy, VipSpec};
pub use vip::{ChecksVerdict, Vip};
pub use vip_state::VipState;
pub use weight::{format_bandwidth, ScaleSpec, Weight, WeightChange, WeightSpec};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::fleet::{DrainRefused, FleetView, Gate, GatePhase, PeerTable, RibInUpdate, Wish};
use crate::route::{Community, DesiredRoute, DesiredRoutes, RouteAttrs, Withheld};

/// What `Engine::new` takes a VIP from: a shared spec is kept as is, a borrowed one is copied.
pub trait SpecRef {
    fn into_spec(self) -> Arc<VipSpec>;
}

impl SpecRef for &Arc<VipSpec> {
    fn into_spec(self) -> Arc<VipSpec> {
        Arc::clone(self)
    }
}

impl SpecRef for &VipSpec {
    fn into_spec(self) -> Arc<VipSpec> {
        Arc::new(self.clone())
    }
}

/// One active-check result, as the engine sees it.
#[derive(Clone, Debug)]
pub struct Observation {
    /// Index into the engine's checks (the order of `Engine::new`'s `checks`).
    pub check: usize,
    pub ok: bool,
    /// What happened, e.g. "connect refused" or "HTTP 200 in 3.1 ms".
    pub detail: String,
    /// A failure the kernel or systemd reported as a fact (process exited, listener closed,
    /// unit failed), trusted by the check's config: it takes the check down without waiting
    /// for `fall`. Ignored on passes.
    pub definitive: bool,
}

/// A change of a VIP's route state, with the reason and figures that caused it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub vip: Arc<str>,
    pub from: VipState,
    pub to: VipState,
    pub reason: String,
    /// The condition's figures when `reason` carries a condition's trip or clear.
    pub cause: Option<Cause>,
}

impl Decision {
    /// Whether the route is in the RIB after this change (draining routes still are).
    pub fn announce(&self) -> bool {
        matches!(self.to, VipState::Announced | VipState::Draining)
    }
}

/// A VIP whose connections a running drain waits for: where to count them, and after how long
/// without a received packet a connection no longer holds the drain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountRequest {
    pub vip: Arc<str>,
    pub prefixes: Arc<[crate::route::Prefix]>,
    pub idle: Option<std::time::Duration>,
}

#[derive(Clone, Debug)]
pub struct CheckState {
    pub name: Arc<str>,
    pub kind: &'static str,
    pub rise_fall: RiseFall,
    pub last_ok: Option<bool>,
    pub last_detail: String,
    pub last_at: Option<Instant>,
}

pub struct Engine {
    checks: Vec<CheckState>,
    vips: Vec<Vip>,
    /// VIP name -> prefixes for the route tables, built once per set of VIPs and shared by
    /// every table published (it changes only when VIPs come or go).
    vip_prefixes: std::sync::OnceLock<Arc<crate::route::VipPrefixes>>,
    /// The other announcers of our VIP prefixes (an input like check results), when a fleet
    /// guard is configured.
    fleet: Option<FleetView>,
    /// VIP name -> index into `vips`, so per-VIP lookups cost O(1) with 100k VIPs.
    by_name: HashMap<Arc<str>, usize>,
    /// Check index -> the VIPs that use it, so a check result touches only its own VIPs.
    by_check: Vec<Vec<usize>>,
    /// The VIPs with a fleet guard: the only ones a change of the view can move.
    guarded: Vec<usize>,
    /// The VIPs with a weight.
    weighted: Vec<usize>,
    /// Until then a signal with no data leaves its conditions as they are, whatever `on_missing`
    /// says: set after an in-place upgrade, whose new process starts the signals' windows empty
    /// (the missing data is our own restart, not the service's).
    missing_held_until: Option<Instant>,
}

impl Engine {
    /// Everything starts down: no VIP is announced until its checks have passed `rise` times.
    /// A VIP's `checks` index into `checks`; an index out of range counts as a check that is down.
    pub fn new<S: SpecRef>(
        checks: &[CheckSpec],
        vips: impl IntoIterator<Item = S>,
        now: Instant,
    ) -> Engine {
        let checks: Vec<CheckState> = checks
            .iter()
            .map(|c| CheckState {
                name: c.name.clone(),
                kind: c.kind,
                rise_fall: RiseFall::new(c.rise, c.fall),
                last_ok: None,
                last_detail: String::new(),
                last_at: None,
            })
            .collect();
        // The route attributes of a policy, built once for all the VIPs that share it.
        type Shared = (Arc<RouteAttrs>, Arc<RouteAttrs>, Arc<LifecycleSpec>);
        let mut shared: HashMap<*const VipPolicy, Shared> = HashMap::new();
        let mut waiting: HashMap<Arc<[usize]>, Arc<str>> = HashMap::new();
        let vips = vips
            .into_iter()
            .map(|v| {
                let spec = v.into_spec();
                let p = &spec.policy;
                let (attrs, drain, lifecycle) = shared
                    .entry(Arc::as_ptr(p))
                    .or_insert_with(|| {
                        let d = drain_attrs(&p.attrs, &p.depreference);
                        (
                            Arc::new(p.attrs.clone()),
                            Arc::new(d),
                            Arc::new(p.lifecycle),
                        )
                    })
                    .clone();
                // One text per check list, shared by the VIPs that have it.
                let waiting =
                    Arc::clone(waiting.entry(Arc::clone(&spec.checks)).or_insert_with(|| {
                        waiting_reason(spec.checks.iter().filter_map(|&i| checks.get(i))).into()
                    }));
                Vip {
                    attrs,
                    drain_attrs: drain,
                    conditions: p
                        .withdraw_when
                        .iter()
                        .cloned()
                        .map(Condition::new)
                        .collect(),
                    dampening: p.dampening.map(|d| Box::new(Dampening::new(d))),
                    healthy: false,
                    reason: waiting.clone(),
                    since: now,
                    withdrawn_at: None,
                    probation: false,
                    life: Lifecycle::new(lifecycle, waiting, now),
                    guard: p.guard.map(|g| Box::new((g, Gate::starting(now)))),
                    marking: false,
                    cause: None,
                    weight: p.weight.clone().map(|w| Box::new(Weight::new(w))),
                    retiring: false,
                    spec,
                }
            })
            .collect::<Vec<Vip>>();
        let by_name = vips
            .iter()
            .enumerate()
            .map(|(i, v)| (v.spec.name.clone(), i))
            .collect();
        let mut by_check = vec![Vec::new(); checks.len()];
        for (i, v) in vips.iter().enumerate() {
            for &c in v.spec.checks.iter() {
                if let Some(list) = by_check.get_mut(c) {
                    list.push(i);
                }
            }
        }
        let guarded = vips
            .iter()
            .enumerate()
            .filter(|(_, v)| v.guard.is_some())
            .map(|(i, _)| i)
            .collect();
        let weighted = (0..vips.len())
            .filter(|&i| vips[i].weight.is_some())
            .collect();
        Engine {
            checks,
            vips,
            by_name,
            by_check,
            guarded,
            weighted,
            missing_held_until: None,
            fleet: None,
            vip_prefixes: Default::default(),
        }
    }

    /// One VIP by name.
    pub fn vip(&self, name: &str) -> Option<&Vip> {
        self.by_name.get(name).map(|&i| &self.vips[i])
    }

    /// Gives the engine a fleet view (needed by VIPs with a guard; without one they are blind).
    pub fn set_fleet(&mut self, view: FleetView) {
        self.fleet = Some(view);
    }

    pub fn fleet(&self) -> Option<&FleetView> {
        self.fleet.as_ref()
    }

    /// A peer session reached Established (`add_path_*`: the peer sends path ids to us).
    pub fn fleet_peer_up(
        &mut self,
        peer: &str,
        add_path_v4: bool,
        add_path_v6: bool,
        now: Instant,
    ) -> Vec<Decision> {
        if let Some(f) = &mut self.fleet {
            f.peer_up(peer, add_path_v4, add_path_v6, now);
        }
        self.reguard(now)
    }

    pub fn fleet_peer_down(&mut self, peer: &str, now: Instant) -> Vec<Decision> {
        if let Some(f) = &mut self.fleet {
            f.peer_down(peer);
        }
        self.reguard(now)
    }

    /// The daemon fell behind `peer`'s UPDATEs: its view is stale until [`Engine::fleet_resync`].
    pub fn fleet_peer_behind(&mut self, peer: &str, now: Instant) -> Vec<Decision> {
        if let Some(f) = &mut self.fleet {
            f.behind(peer);
        }
        self.reguard(now)
    }

    /// `peer`'s whole table after it was behind: replaces what the view held for it.
    pub fn fleet_resync(&mut self, peer: &str, t: &PeerTable, now: Instant) -> Vec<Decision> {
        if let Some(f) = &mut self.fleet {
            f.resync(peer, t, now);
        }
        self.reguard(now)
    }

    /// Routes received from a peer (parsed by `bgp::rib_in`, filtered to VIP prefixes).
    pub fn fleet_update(&mut self, peer: &str, u: &RibInUpdate, now: Instant) -> Vec<Decision> {
        let changed = match &mut self.fleet {
            Some(f) => f.apply(peer, u),
            None => false,
        };
        if changed {
            self.reguard(now)
        } else {
            Vec::new()
        }
    }

    /// Re-evaluates every guarded VIP (the view changed, or a marked phase or dwell ended).
    pub fn reguard(&mut self, now: Instant) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for &i in &self.guarded {
            settle(&mut self.vips[i], self.fleet.as_ref(), now, &mut decisions);
        }
        decisions
    }

    /// Whether an operator may drain `vip` now: Err when that would leave fewer than its
    /// `min_healthy_others` healthy announcers (the API answers 409 unless forced).
    pub fn drain_check(&self, vip: &str, now: Instant) -> Result<(), DrainRefused> {
        let Some(v) = self.vips.iter().find(|v| &*v.spec.name == vip) else {
            return Ok(());
        };
        let Some((spec, _)) = v.guard.as_deref() else {
            return Ok(());
        };
        let view = view_or_empty(self.fleet.as_ref());
        crate::fleet::drain_check(spec, view, &v.spec.prefixes, now)
    }

    /// A planned stop is still in progress: a timed drain runs, or the gate keeps a VIP marked
    /// towards an established ToR (held VIPs stay until a healthy announcer appears, the stop's
    /// bound passes, or a second signal cuts the stop short).
    pub fn stop_pending(&self) -> bool {
        self.stop_deadline().is_some() || self.guard_holds()
    }

    /// Whether the gate keeps some VIP marked towards an established ToR.
    pub fn guard_holds(&self) -> bool {
        let view = view_or_empty(self.fleet.as_ref());
        self.guarded_vips()
            .any(|v| v.guard.as_deref().is_some_and(|(_, g)| g.holds(view)))
    }

    fn guarded_vips(&self) -> impl Iterator<Item = &Vip> {
        self.guarded.iter().map(|&i| &self.vips[i])
    }

    /// VIPs the gate keeps marked (marking or held): persisted, so that a restart keeps them
    /// announced, marked, until the view is complete.
    pub fn held_vips(&self) -> Vec<Arc<str>> {
        self.guarded_vips()
            .filter(|v| v.marking)
            .map(|v| v.spec.name.clone())
            .collect()
    }

    /// After a restart: VIPs that were held when the process last ran start held (announced
    /// marked until each ToR's view is complete), instead of out.
    pub fn restore_held(&mut self, names: &[String], now: Instant) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for v in &mut self.vips {
            if !names.iter().any(|n| **n == *v.spec.name) {
                continue;
            }
            if let Some((_, g)) = v.guard.as_deref_mut() {
                *g = Gate::restored(now);
                settle(v, self.fleet.as_ref(), now, &mut decisions);
            }
        }
        decisions
    }

    /// The earliest instant a guard's marked phase or dwell ends (step the engine then).
    pub fn guard_wake_at(&self) -> Option<Instant> {
        self.guarded_vips()
            .filter_map(|v| v.guard.as_deref().and_then(|(s, g)| g.wake_at(s)))
            .min()
    }

    /// Per ToR, the longest time our mark took to come back reflected (ToRs that reflect our
    /// path): what `fleet.settle` must exceed.
    pub fn mark_propagation(&self) -> std::collections::BTreeMap<Arc<str>, std::time::Duration> {
        let mut m: std::collections::BTreeMap<Arc<str>, std::time::Duration> = Default::default();
        for (_, g) in self.guarded_vips().filter_map(|v| v.guard.as_deref()) {
            for (p, d) in &g.mark_propagation {
                let e = m.entry(p.clone()).or_default();
                *e = (*e).max(*d);
            }
        }
        m
    }

    pub fn checks(&self) -> &[CheckState] {
        &self.checks
    }

    pub fn vips(&self) -> &[Vip] {
        &self.vips
    }

    /// Feeds one check result; returns the VIPs whose announcement changed because of it.
    pub fn observe(&mut self, obs: &Observation, now: Instant) -> Vec<Decision> {
        let Some(check) = self.checks.get_mut(obs.check) else {
            return Vec::new();
        };
        check.rise_fall.observe_sample(obs.ok, obs.definitive);
        check.last_ok = Some(obs.ok);
        check.last_detail.clone_from(&obs.detail);
        check.last_at = Some(now);
        let step: Arc<str> = describe_step(check, obs).into();

        let mut decisions = Vec::new();
        for &i in self.by_check.get(obs.check).into_iter().flatten() {
            let vip = &mut self.vips[i];
            let (up, total) = count_up(&self.checks, &vip.spec.checks);
            let trigger: Arc<str> = if total > 1 {
                format!(
                    "{step} (require {}: {up}/{total} checks up)",
                    vip.spec.policy.require
                )
                .into()
            } else {
                Arc::clone(&step)
            };
            let verdict = ChecksVerdict {
                ok: satisfied(vip.spec.policy.require, up, total),
                event: Some(trigger),
                event_failed: !obs.ok,
            };
            vip.decide(&verdict, None, now);
            settle(vip, self.fleet.as_ref(), now, &mut decisions);
        }
        decisions
    }

    /// Time passes: evaluates traffic conditions with fresh readings, hold-down expiry and
    /// dampening release. Call it on a steady tick (e.g. every second).
    pub fn tick(&mut self, read: &dyn Fn(&str) -> Reading, now: Instant) -> Vec<Decision> {
        self.evaluate(read, now, false)
    }

    /// Fresh signal readings (or a dwell's deadline): evaluates the VIPs that have traffic
    /// conditions, the only ones readings can move. Call it as soon as a source publishes.
    pub fn evaluate_signals(
        &mut self,
        read: &dyn Fn(&str) -> Reading,
        now: Instant,
    ) -> Vec<Decision> {
        self.evaluate(read, now, true)
    }

    /// The earliest instant a pending `for`/`restore_for` dwell completes: evaluate then, so a
    /// condition trips `for` after its crossing, not at the next tick after that.
    pub fn next_deadline(&self) -> Option<Instant> {
        let weights = self.weighted.iter().filter_map(|&i| {
            self.vips[i]
                .weight
                .as_deref()
                .and_then(Weight::next_deadline)
        });
        self.vips
            .iter()
            .filter_map(Vip::next_deadline)
            .chain(weights)
            .min()
    }

    /// The weight changes since the last call, per VIP, oldest first.
    pub fn take_weight_changes(&mut self) -> Vec<(Arc<str>, WeightChange)> {
        let mut out = Vec::new();
        for &i in &self.weighted {
            let v = &mut self.vips[i];
            if let Some(w) = &mut v.weight {
                out.extend(
                    w.take_changes()
                        .into_iter()
                        .map(|c| (v.spec.name.clone(), c)),
                );
            }
        }
        out
    }

    fn evaluate(
        &mut self,
        read: &dyn Fn(&str) -> Reading,
        now: Instant,
        only_with_conditions: bool,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for vip in &mut self.vips {
            if vip.retiring {
                // No checks or signals of its own any more: only its exit moves on.
                settle(vip, self.fleet.as_ref(), now, &mut decisions);
                continue;
            }
            if only_with_conditions && vip.conditions.is_empty() && vip.weight.is_none() {
                continue;
            }
            if let Some(w) = &mut vip.weight {
                w.observe_signals(read, now);
            }
            let hold_missing = self.missing_held_until.is_some_and(|t| now < t);
            let changes = vip.observe_signals(read, now, hold_missing);
            let trigger = changes.iter().find_map(|c| match c {
                Change::Tripped { cause } => Some(cause.clone()),
                _ => None,
            });
            let trigger = trigger.or_else(|| {
                changes.iter().find_map(|c| match c {
                    Change::Cleared { cause } => Some(cause.clone()),
                    _ => None,
                })
            });
            let text = trigger.as_ref().map(ToString::to_string);
            if let Some(t) = trigger {
                vip.cause = Some(Box::new(t));
            }
            let (up, total) = count_up(&self.checks, &vip.spec.checks);
            let verdict = ChecksVerdict {
                ok: satisfied(vip.spec.policy.require, up, total),
                event: None,
                event_failed: false,
            };
            vip.decide(&verdict, text.as_deref(), now);
            settle(vip, self.fleet.as_ref(), now, &mut decisions);
        }
        self.drop_retired();
        decisions
    }

    /// Sets every VIP's maintenance to what `reason` says (persisted drains, disable files);
    /// returns the resulting changes.
    /// `reason` gives a VIP's maintenance reason and whether the operator forced it.
    pub fn sync_maintenance(
        &mut self,
        reason: &dyn Fn(&str) -> Option<(String, bool)>,
        now: Instant,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for v in &mut self.vips {
            let (want, forced) = match reason(&v.spec.name) {
                Some((r, f)) => (Some(r), f),
                None => (None, false),
            };
            if want != v.life.out.maintenance || forced != v.life.out.forced {
                v.life.out.maintenance = want;
                v.life.out.forced = forced;
                settle(v, self.fleet.as_ref(), now, &mut decisions);
            }
        }
        decisions
    }

    pub fn has_vip(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// A planned stop: every VIP drains per its `shutdown` strategy. Keep calling `tick` until
    /// `stop_deadline` is None, then close the sessions.
    pub fn begin_shutdown(&mut self, why: &str, now: Instant) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for v in &mut self.vips {
            v.life.out.stopping = Some(why.to_string());
            settle(v, self.fleet.as_ref(), now, &mut decisions);
        }
        decisions
    }

    /// After a config reload: takes over the state of checks and VIPs that kept their name (and,
    /// for checks, their rise/fall), so a reload does not restart every VIP from "down". VIPs
    /// are then re-evaluated against their (possibly new) checks; returns the resulting changes.
    pub fn carry_over(&mut self, old: &Engine, now: Instant) -> Vec<Decision> {
        let old_checks: HashMap<&str, &CheckState> =
            old.checks.iter().map(|c| (&*c.name, c)).collect();
        for c in &mut self.checks {
            if let Some(&o) = old_checks.get(&*c.name) {
                if (o.rise_fall.rise(), o.rise_fall.fall())
                    == (c.rise_fall.rise(), c.rise_fall.fall())
                {
                    *c = o.clone();
                }
            }
        }
        let mut decisions = Vec::new();
        for v in &mut self.vips {
            let Some(o) = old.vip(&v.spec.name) else {
                continue;
            };
            v.healthy = o.healthy;
            v.reason = Arc::clone(&o.reason);
            v.cause.clone_from(&o.cause);
            v.since = o.since;
            v.withdrawn_at = o.withdrawn_at;
            v.probation = o.probation;
            if v.dampening.as_ref().map(|d| *d.spec()) == o.dampening.as_ref().map(|d| *d.spec()) {
                v.dampening.clone_from(&o.dampening);
            }
            for c in &mut v.conditions {
                if let Some(oc) = o.conditions.iter().find(|oc| oc.spec == c.spec) {
                    *c = oc.clone();
                }
            }
            v.life.inherit(&o.life);
            if o.retiring {
                // Added back while it was leaving: it is configured again, not stopping.
                v.life.out.stopping = None;
            }
            if let (Some((spec, g)), Some((ospec, og))) =
                (v.guard.as_deref_mut(), o.guard.as_deref())
            {
                if spec == ospec {
                    *g = og.clone();
                }
            }
            v.marking = o.marking && v.guard.is_some();
            if let (Some(w), Some(ow)) = (&mut v.weight, &o.weight) {
                w.inherit(ow);
            }
        }
        let retiring = self.removed_but_routed(old);
        if let Some(view) = &mut self.fleet {
            if !retiring.is_empty() {
                let kept = view.vip_prefixes().clone();
                let leaving = retiring
                    .iter()
                    .flat_map(|v| v.spec.prefixes.iter().copied());
                view.set_vip_prefixes(kept.into_iter().chain(leaving));
            }
            if let Some(old) = &old.fleet {
                view.take_peers(old);
            }
        }
        decisions.extend(self.redecide_all("configuration reload", now));
        for o in retiring {
            self.retire(o, now, &mut decisions);
        }
        decisions
    }

    /// Re-decides every VIP on its checks after its state was taken over (a reload, an in-place
    /// upgrade); `why` starts the reason of any change.
    pub(super) fn redecide_all(&mut self, why: &str, now: Instant) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for v in &mut self.vips {
            let (up, total) = count_up(&self.checks, &v.spec.checks);
            let ok = satisfied(v.spec.policy.require, up, total);
            let event = format!(
                "{why}: {up}/{total} checks up (require {})",
                v.spec.policy.require
            );
            let verdict = ChecksVerdict {
                ok,
                event: (ok != v.healthy).then(|| event.into()),
                event_failed: !ok,
            };
            v.decide(&verdict, None, now);
            settle(v, self.fleet.as_ref(), now, &mut decisions);
        }
        decisions
    }

    /// VIPs the reload removed that are still routed do not vanish from the routes: each stays as
    /// a retiring VIP and leaves as at a planned stop, through the gate (a reload must not be the
    /// exit that takes away the last healthy announcer). A removed VIP whose prefix a configured
    /// VIP announces is dropped at once: the prefix stays with that VIP.
    fn removed_but_routed<'o>(&self, old: &'o Engine) -> Vec<&'o Vip> {
        let taken: std::collections::HashSet<crate::route::Prefix> = self
            .vips
            .iter()
            .flat_map(|v| v.spec.prefixes.iter().copied())
            .collect();
        old.vips
            .iter()
            .filter(|o| {
                !self.by_name.contains_key(&o.spec.name)
                    && (o.life.routed().is_some() || o.marking)
                    && !o.spec.prefixes.iter().any(|p| taken.contains(p))
            })
            .collect()
    }

    fn retire(&mut self, o: &Vip, now: Instant, decisions: &mut Vec<Decision>) {
        let mut v = o.clone();
        v.retiring = true;
        Arc::make_mut(&mut v.spec).checks = Arc::new([]);
        v.conditions.clear();
        if v.life.out.stopping.is_none() {
            v.life.out.stopping = Some("removed from the configuration".into());
        }
        if self.fleet.is_none() {
            // The reload also turned the fleet guard off: nothing left to count with.
            v.guard = None;
            v.marking = false;
        }
        let i = self.vips.len();
        self.by_name.insert(v.spec.name.clone(), i);
        if v.guard.is_some() {
            self.guarded.push(i);
        }
        if v.weight.is_some() {
            self.weighted.push(i);
        }
        self.vips.push(v);
        self.vip_prefixes = Default::default();
        settle(&mut self.vips[i], self.fleet.as_ref(), now, decisions);
        self.drop_retired();
    }

    /// Forgets retiring VIPs that have left everywhere. They sit after the configured VIPs, which
    /// keep their indices; `by_check` never lists them.
    fn drop_retired(&mut self) {
        let gone = |v: &Vip| v.retiring && v.life.routed().is_none() && !v.marking;
        if !self.vips.iter().any(gone) {
            return;
        }
        self.vips.retain(|v| !gone(v));
        self.vip_prefixes = Default::default();
        if let Some(view) = &mut self.fleet {
            let kept: Vec<crate::route::Prefix> = self
                .vips
                .iter()
                .flat_map(|v| v.spec.prefixes.iter().copied())
                .collect();
            view.set_vip_prefixes(kept);
        }
        self.by_name = self
            .vips
            .iter()
            .enumerate()
            .map(|(i, v)| (v.spec.name.clone(), i))
            .collect();
        self.guarded = (0..self.vips.len())
            .filter(|&i| self.vips[i].guard.is_some())
            .collect();
        self.weighted = (0..self.vips.len())
            .filter(|&i| self.vips[i].weight.is_some())
            .collect();
    }

    /// The VIPs whose running drain ends on their connections (what the daemon counts and feeds
    /// back through `observe_connections`).
    pub fn counting_connections(&self) -> Vec<CountRequest> {
        self.vips
            .iter()
            .filter(|v| v.life.counts_connections())
            .map(|v| CountRequest {
                vip: v.spec.name.clone(),
                prefixes: v.spec.prefixes.clone(),
                idle: v.life.spec.drain_idle,
            })
            .collect()
    }

    /// A connection count for a draining VIP; may end its drain.
    pub fn observe_connections(
        &mut self,
        vip: &str,
        count: Connections,
        now: Instant,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        if let Some(v) = self.vips.iter_mut().find(|v| &*v.spec.name == vip) {
            v.life.out.connections = count;
            settle(v, self.fleet.as_ref(), now, &mut decisions);
        }
        decisions
    }

    /// The latest end of a running timed drain, if any.
    pub fn stop_deadline(&self) -> Option<Instant> {
        self.vips
            .iter()
            .filter_map(|v| v.life.drain_deadline())
            .max()
    }

    /// The routes every peer should carry now. `generation` is left for the publisher to set.
    pub fn desired(&self) -> DesiredRoutes {
        // Collected rather than inserted one by one: BTreeMap builds a sorted batch in bulk, which
        // matters at 100k VIPs (this runs for every published change).
        let fleet = self.fleet.as_ref();
        let routes = self
            .vips
            .iter()
            .filter_map(|vip| {
                let draining = vip.life.routed()?;
                // The policy's shared attributes unless this VIP's own state changes them.
                let mut attrs = if vip.marking {
                    let episode = vip.guard.as_deref().map_or(0, |(_, g)| g.episode());
                    Arc::new(marked_attrs(&vip.drain_attrs, fleet, episode))
                } else if draining {
                    Arc::clone(&vip.drain_attrs)
                } else {
                    Arc::clone(&vip.attrs)
                };
                if let Some(w) = vip.weight.as_ref().filter(|w| w.current > 0) {
                    Arc::make_mut(&mut attrs).link_bandwidth = Some(w.current);
                }
                Some(vip.spec.prefixes.iter().map(move |p| {
                    (
                        *p,
                        DesiredRoute {
                            vip: vip.spec.name.clone(),
                            attrs: Arc::clone(&attrs),
                        },
                    )
                }))
            })
            .flatten()
            .collect();
        let reasons = self
            .vips
            .iter()
            .map(|v| (v.spec.name.clone(), v.life.reason.clone()))
            .collect();
        let vip_prefixes = Arc::clone(self.vip_prefixes.get_or_init(|| {
            let all = self.vips.iter();
            Arc::new(
                all.map(|v| (v.spec.name.clone(), v.spec.prefixes.clone()))
                    .collect(),
            )
        }));
        let mut withheld: BTreeMap<Arc<str>, Withheld> = BTreeMap::new();
        for v in self.guarded_vips().filter(|v| v.marking) {
            let Some((_, g)) = v.guard.as_deref() else {
                continue;
            };
            for (peer, out, note) in g.peer_states().filter(|(_, out, _)| *out) {
                let _ = out;
                let w = withheld.entry(peer.clone()).or_default();
                w.prefixes.extend(v.spec.prefixes.iter().copied());
                w.reasons.insert(
                    v.spec.name.clone(),
                    format!("fleet guard: left {peer}: {note}"),
                );
            }
        }
        DesiredRoutes {
            generation: 0,
            routes,
            reasons,
            vip_prefixes,
            withheld,
            ..DesiredRoutes::default()
        }
    }
}

/// The view, or an empty one when no fleet is configured (a guard then sees no ToR).
fn view_or_empty(fleet: Option<&FleetView>) -> &FleetView {
    static EMPTY: std::sync::LazyLock<FleetView> = std::sync::LazyLock::new(empty_view);
    fleet.unwrap_or(&EMPTY)
}

fn empty_view() -> FleetView {
    FleetView::new(
        std::net::Ipv4Addr::UNSPECIFIED,
        0,
        Community(0),
        std::time::Duration::ZERO,
        [],
    )
}

/// Lets the lifecycle follow the health decision (a guarded VIP's every exit passes its gate),
/// then brings the weight along.
fn settle(vip: &mut Vip, fleet: Option<&FleetView>, now: Instant, out: &mut Vec<Decision>) {
    settle_route(vip, fleet, now, out);
    reweigh(vip, now);
    // A transition may have cleared the last drain or stop field: give the box back.
    vip.life.out.compact();
}

/// The weight follows the route: full while announced, `min` while draining, marked or held.
fn reweigh(vip: &mut Vip, now: Instant) {
    let Some(w) = &mut vip.weight else {
        return;
    };
    let routing = match vip.life.routed() {
        None => weight::Routing::Gone,
        Some(_) if vip.marking => weight::Routing::Floor("marked by the fleet guard"),
        Some(_) if vip.life.state == VipState::Held => {
            weight::Routing::Floor("held by the fleet guard")
        }
        Some(true) => weight::Routing::Floor("draining"),
        Some(false) => weight::Routing::Full,
    };
    w.update(routing, now);
}

/// Records a route-state change, and the gate's per-ToR changes (a VIP can leave one ToR and
/// stay at another without changing its overall state).
fn settle_route(vip: &mut Vip, fleet: Option<&FleetView>, now: Instant, out: &mut Vec<Decision>) {
    if let Some((spec, gate)) = vip.guard.as_deref_mut() {
        let wish = Wish {
            leave: vip.life.wants_gone(vip.healthy),
            forced: vip.life.forced_leave(),
            drained: vip.life.drain_finished(now),
        };
        let view = view_or_empty(fleet);
        let o = gate.step(spec, wish, view, &vip.spec.prefixes, now);
        let t = match o.phase {
            GatePhase::Pass => {
                vip.marking = false;
                None
            }
            GatePhase::Marking => {
                vip.marking = true;
                vip.life.mark(None, spec.settle, &vip.reason, now)
            }
            GatePhase::Held => {
                vip.marking = true;
                let held = gate
                    .held_reason()
                    .unwrap_or_else(|| "no established ToR".to_string());
                vip.life.mark(
                    Some(&format!("held: {held}")),
                    spec.settle,
                    &vip.reason,
                    now,
                )
            }
            GatePhase::Left => {
                vip.marking = false;
                let why = if o.changes.is_empty() {
                    "fleet guard: no established ToR".to_string()
                } else {
                    format!("fleet guard: {}", o.changes.join("; "))
                };
                let t = vip.life.leave(&why, vip.healthy, &vip.reason, now);
                if t.is_some() && !vip.healthy {
                    // Hold-down counts from the route leaving, not from the marking before it.
                    vip.withdrawn_at = Some(now);
                }
                t
            }
        };
        if o.phase != GatePhase::Pass {
            let cause = current_cause(vip);
            match t {
                Some(t) => out.push(Decision {
                    vip: vip.spec.name.clone(),
                    from: t.from,
                    to: t.to,
                    reason: with_changes(&t.reason, &o.changes),
                    cause,
                }),
                None if !o.changes.is_empty() => out.push(Decision {
                    vip: vip.spec.name.clone(),
                    from: vip.life.state,
                    to: vip.life.state,
                    reason: format!("fleet guard: {}", o.changes.join("; ")),
                    cause,
                }),
                None => {}
            }
            return;
        }
    }
    if let Some(t) = vip.life.settle(vip.healthy, &vip.reason, now) {
        // Usually the health reason itself (a check result many VIPs share): keep one copy.
        if vip.life.reason == vip.reason {
            vip.life.reason = Arc::clone(&vip.reason);
        }
        out.push(Decision {
            vip: vip.spec.name.clone(),
            from: t.from,
            to: t.to,
            reason: t.reason,
            cause: current_cause(vip),
        });
    }
}

/// A transition's reason with the gate's per-ToR changes that are not already in it.
fn with_changes(reason: &str, changes: &[String]) -> String {
    let extra: Vec<&str> = changes
        .iter()
        .map(String::as_str)
        .filter(|c| !reason.contains(c))
        .collect();
    if extra.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} (fleet guard: {})", extra.join("; "))
    }
}

/// The last condition cause, while the VIP's health reason is still that cause's text (a check
/// failure or a probation since then replaced it).
fn current_cause(vip: &Vip) -> Option<Cause> {
    vip.cause
        .as_ref()
        .filter(|c| *vip.reason == *c.to_string())
        .map(|c| Cause::clone(c))
}

/// Draining attributes: RFC 8326 GRACEFUL_SHUTDOWN plus the configured de-preference.
fn drain_attrs(base: &RouteAttrs, depref: &Depreference) -> RouteAttrs {
    let mut a = base.clone();
    if !a.communities.contains(&Community::GRACEFUL_SHUTDOWN) {
        a.communities.push(Community::GRACEFUL_SHUTDOWN);
    }
    if depref.med.is_some() {
        a.med = depref.med;
    }
    if depref.local_pref.is_some() {
        a.local_pref = depref.local_pref;
    }
    a.as_path_prepend = a.as_path_prepend.saturating_add(depref.as_path_prepend);
    a
}

/// The guard's mark: the drain attributes plus the fleet's unhealthy community and its large twin.
fn marked_attrs(drain: &RouteAttrs, fleet: Option<&FleetView>, episode: u32) -> RouteAttrs {
    let mut a = drain.clone();
    if let Some(f) = fleet {
        let c = f.unhealthy();
        if !a.communities.contains(&c) {
            a.communities.push(c);
        }
        let l = f.mark_large(episode);
        if !a.large_communities.contains(&l) {
            a.large_communities.push(l);
        }
    }
    a
}

fn count_up(checks: &[CheckState], idx: &[usize]) -> (usize, usize) {
    let up = idx
        .iter()
        .filter(|&&i| checks.get(i).is_some_and(|c| c.rise_fall.is_up()))
        .count();
    (up, idx.len())
}

fn satisfied(require: Require, up: usize, total: usize) -> bool {
    match require {
        Require::All => total > 0 && up == total,
        Require::Any => up > 0,
        Require::AtLeast(n) => up >= n as usize,
    }
}

/// "check web failed 2/2: connect refused" / "check web passed 2/2".
fn describe_step(check: &CheckState, obs: &Observation) -> String {
    let rf = &check.rise_fall;
    let need = if obs.ok { rf.rise() } else { rf.fall() };
    let streak = rf.streak().min(need);
    if obs.ok {
        format!("check {} passed {streak}/{need}", check.name)
    } else if obs.definitive {
        format!(
            "check {} failed definitively (fall {need} not awaited): {}",
            check.name, obs.detail
        )
    } else {
        format!(
            "check {} failed {streak}/{need}: {}",
            check.name, obs.detail
        )
    }
}

fn waiting_reason<'a>(checks: impl Iterator<Item = &'a CheckState>) -> String {
    let names: Vec<String> = checks
        .map(|c| format!("{} (rise {})", c.name, c.rise_fall.rise()))
        .collect();
    format!("starting: waiting for checks {}", names.join(", "))
}

#[cfg(test)]
mod fleet_sim_tests;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod weight_tests;
