//! One VIP's route policy: announce while its checks pass and no traffic condition is active,
//! with hold-down, probation and dampening so the route does not flap.
//!
//! Recovery without traffic: once withdrawn, a VIP gets no real traffic, so a traffic condition
//! usually cannot clear from evidence. After `hold_down`, with the checks passing, conditions that
//! have no fresh evidence are reset and the VIP is re-announced on probation (a circuit breaker's
//! half-open state). If a condition trips again it is withdrawn again and its dampening penalty
//! grows. A condition that still has evidence (e.g. traffic keeps arriving and is still bad) keeps
//! the VIP withdrawn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::condition::{Change, Condition, Reading};
use super::dampening::Dampening;
use super::fmt::format_duration;
use super::spec::{OnMissing, VipSpec};
use crate::route::RouteAttrs;

#[derive(Clone, Debug)]
pub struct Vip {
    /// Name, prefixes, checks and policy, shared with the configuration.
    pub spec: Arc<VipSpec>,
    /// The route's attributes while announced, and while draining (GRACEFUL_SHUTDOWN plus the
    /// configured de-preference): shared by the VIPs of one policy and by the route tables.
    pub attrs: Arc<RouteAttrs>,
    pub drain_attrs: Arc<RouteAttrs>,
    pub conditions: Vec<Condition>,
    // The rarely set parts are boxed: inline they made a Vip 1256 bytes (125 MB at 100k VIPs).
    pub dampening: Option<Box<Dampening>>,

    pub healthy: bool,
    /// Shared: the VIPs a check result moves all take its one text.
    pub reason: Arc<str>,
    pub since: Instant,
    pub withdrawn_at: Option<Instant>,
    /// Re-announced without evidence that the traffic conditions cleared.
    pub probation: bool,
    /// Route state on top of health (drains, maintenance, stop).
    pub life: super::lifecycle::Lifecycle,
    /// Fleet guard settings and state (None = guard off).
    pub guard: Option<Box<(crate::fleet::GuardSpec, crate::fleet::Gate)>>,
    /// The guard keeps the route announced with the unhealthy mark (marked phase or held).
    pub marking: bool,
    /// The figures of the last condition trip or clear (see `Decision::cause`).
    pub cause: Option<Box<super::Cause>>,
    /// The announced weight and its `scale_when` conditions (None = no weight sent).
    pub weight: Option<Box<super::weight::Weight>>,
    /// Removed from the configuration by a reload, still routed: it leaves as at a planned stop
    /// (its `shutdown` strategy, through the guard's gate) with its health frozen, then is dropped.
    pub retiring: bool,
}

/// Inputs from the checks, computed by the engine.
pub struct ChecksVerdict {
    pub ok: bool,
    /// The check result that just arrived, with figures, if this evaluation is due to one.
    pub event: Option<Arc<str>>,
    /// Whether that result failed.
    pub event_failed: bool,
}

impl Vip {
    /// Feeds signal readings to the conditions; returns the trip/clear reasons that happened.
    /// With `hold_missing`, a signal without data leaves its condition untouched (see
    /// `Engine::hold_missing_signals_until`).
    pub fn observe_signals(
        &mut self,
        read: &dyn Fn(&str) -> Reading,
        now: Instant,
        hold_missing: bool,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for c in &mut self.conditions {
            let r = read(&c.spec.signal);
            if r.value.is_none() && hold_missing {
                continue;
            }
            if r.value.is_none() && self.spec.policy.on_missing == OnMissing::Ignore {
                c.reset();
                continue;
            }
            match c.evaluate(r, now) {
                Change::None => {}
                ch => changes.push(ch),
            }
        }
        changes
    }

    /// The earliest end of a pending `for`/`restore_for` dwell among the conditions.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conditions.iter().filter_map(Condition::deadline).min()
    }

    /// The first reason traffic says "withdraw", if any.
    fn blocking(&self) -> Option<String> {
        for c in &self.conditions {
            if c.is_active() {
                return Some(c.active_reason());
            }
            let missing = c.last.is_some_and(|r| r.value.is_none());
            if missing && self.spec.policy.on_missing == OnMissing::Withdraw {
                return Some(format!(
                    "{} has no data (on_missing: withdraw)",
                    c.spec.signal
                ));
            }
        }
        None
    }

    /// Decides the announcement at `now`. `condition` is a condition trip or clear that just
    /// happened; it and `checks.event` become the reason if the state changes. Returns
    /// Some(announce) when the state changed.
    pub fn decide(
        &mut self,
        checks: &ChecksVerdict,
        condition: Option<&str>,
        now: Instant,
    ) -> Option<bool> {
        if self.healthy {
            let why = if !checks.ok {
                Some(
                    checks
                        .event
                        .clone()
                        .unwrap_or_else(|| "checks failing".into()),
                )
            } else {
                self.blocking()
                    .map(|b| condition.map(Arc::from).unwrap_or_else(|| b.into()))
            };
            self.withdraw(why?, now);
            return Some(false);
        }

        if !checks.ok {
            // Still down: keep the reason current with the latest failure.
            if let (Some(e), true) = (&checks.event, checks.event_failed) {
                self.reason = Arc::clone(e);
            }
            return None;
        }
        if let Some(at) = self.withdrawn_at {
            let held = now.saturating_duration_since(at);
            if held < self.spec.policy.hold_down {
                return None;
            }
        }
        if let Some(d) = &mut self.dampening {
            if d.is_suppressed(now) {
                return None;
            }
        }
        let mut probation = false;
        if self.blocking().is_some() {
            // Never withdrawn (e.g. at start-up): nothing to give probation to.
            self.withdrawn_at?;
            // Hold-down has passed with the checks green: conditions without fresh evidence
            // cannot clear on their own, so give the VIP a half-open try.
            let mut still_blocked = false;
            for c in &mut self.conditions {
                let evidence = c.last.map(|r| c.usable(&r).is_ok()).unwrap_or(false);
                if c.is_active() && !evidence {
                    c.reset();
                    probation = true;
                } else if c.is_active() {
                    still_blocked = true;
                }
            }
            if still_blocked || self.blocking().is_some() {
                return None;
            }
        }
        self.healthy = true;
        self.probation = probation;
        self.since = now;
        self.reason = if probation {
            format!(
                "probation: hold-down {} over and checks pass; traffic conditions had no fresh data",
                format_duration(self.spec.policy.hold_down)
            )
            .into()
        } else if let Some(c) = condition {
            c.into()
        } else {
            checks.event.clone().unwrap_or_else(|| {
                "hold-down over, checks pass and traffic conditions are clear".into()
            })
        };
        Some(true)
    }

    fn withdraw(&mut self, why: Arc<str>, now: Instant) {
        self.healthy = false;
        self.probation = false;
        self.since = now;
        self.withdrawn_at = Some(now);
        self.reason = why;
        if let Some(d) = &mut self.dampening {
            if d.withdrawn(now) {
                let until = d
                    .reuse_at(now)
                    .map(|t| format_duration(Duration::from_secs(t.duration_since(now).as_secs())))
                    .unwrap_or_default();
                self.reason = format!(
                    "{}; flap dampening suppresses it (penalty {:.0} > {:.0}) for about {until}",
                    self.reason,
                    d.penalty(now),
                    d.spec().suppress
                )
                .into();
            }
        }
    }
}

impl Condition {
    /// Why this active condition holds the VIP down, with its latest figure.
    pub fn active_reason(&self) -> String {
        format!("{} active", self.describe())
    }
}
