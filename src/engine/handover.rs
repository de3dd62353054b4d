//! The engine's decision state as plain data, for the in-place upgrade (`crate::handover`): check
//! hysteresis and history, each VIP's health, hold-down/probation and lifecycle (drains,
//! maintenance). The new process imports it onto the engine it built from its own config, the
//! way `carry_over` does on a reload: checks and VIPs are matched by name (checks also by
//! rise/fall), anything unmatched starts fresh, and the VIPs are then re-decided, so nothing
//! re-learns from scratch (no rise delay) and the routes come out as they were.
//!
//! Also carried: the `withdraw_when` conditions (phase, learned baseline), dampening penalties
//! and each weight (where its slow start stands, its `scale_when` conditions), so an upgrade
//! neither restarts a ramp nor forgets a baseline. Not carried: the fleet guard's gates beyond
//! the mark (the view reloads from the ToRs), and the signals' own sliding windows (they live
//! outside the engine; docs/upgrades.md).

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::condition::ConditionExport;
use super::dampening::DampeningExport;
use super::lifecycle::handover::{age_ms, before};
use super::lifecycle::LifecycleExport;
use super::weight::WeightExport;
use super::{Decision, Engine, Gate, RiseFall};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckExport {
    pub name: String,
    pub rise_fall: RiseFall,
    pub last_ok: Option<bool>,
    pub last_detail: String,
    pub last_age_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VipExport {
    pub name: String,
    pub healthy: bool,
    pub reason: String,
    pub since_age_ms: u64,
    pub withdrawn_age_ms: Option<u64>,
    pub probation: bool,
    pub life: LifecycleExport,
    /// The fleet guard kept the route marked (marked phase or held). The new process restores
    /// the hold as after a restart: marked until each ToR's view is complete, then counted.
    /// Absent in a blob from before it was carried: false.
    #[serde(default)]
    pub marking: bool,
    /// The episode the mark carries (kept, so the marked attributes do not change).
    #[serde(default)]
    pub guard_episode: u32,
    /// `withdraw_when` conditions: phase, learned baseline, last reading. Each is taken over by
    /// the new config's condition with the same spec. Absent in older blobs: start fresh.
    #[serde(default)]
    pub conditions: Vec<ConditionExport>,
    #[serde(default)]
    pub dampening: Option<DampeningExport>,
    /// The announced weight, where the slow start stands, and its `scale_when` conditions.
    #[serde(default)]
    pub weight: Option<WeightExport>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineExport {
    pub checks: Vec<CheckExport>,
    pub vips: Vec<VipExport>,
}

impl Engine {
    pub fn export(&self, now: Instant) -> EngineExport {
        EngineExport {
            checks: self
                .checks
                .iter()
                .map(|c| CheckExport {
                    name: c.name.to_string(),
                    rise_fall: c.rise_fall.clone(),
                    last_ok: c.last_ok,
                    last_detail: c.last_detail.clone(),
                    last_age_ms: c.last_at.map(|t| age_ms(now, t)),
                })
                .collect(),
            vips: self
                .vips
                .iter()
                .map(|v| VipExport {
                    name: v.spec.name.to_string(),
                    healthy: v.healthy,
                    reason: v.reason.to_string(),
                    since_age_ms: age_ms(now, v.since),
                    withdrawn_age_ms: v.withdrawn_at.map(|t| age_ms(now, t)),
                    probation: v.probation,
                    life: v.life.export(now),
                    marking: v.marking,
                    guard_episode: v.guard.as_deref().map_or(0, |(_, g)| g.episode()),
                    conditions: v.conditions.iter().map(|c| c.export(now)).collect(),
                    dampening: v.dampening.as_deref().map(|d| d.export(now)),
                    weight: v.weight.as_deref().map(|w| w.export(now)),
                })
                .collect(),
        }
    }

    /// Takes over an exported state; returns the decisions of re-deciding every VIP (none when
    /// the config is the same and nothing changed meanwhile). Returns how many checks and VIPs
    /// were taken over, too.
    pub fn import(&mut self, e: &EngineExport, now: Instant) -> (Vec<Decision>, usize, usize) {
        let old_checks: HashMap<&str, &CheckExport> =
            e.checks.iter().map(|c| (c.name.as_str(), c)).collect();
        let mut n_checks = 0;
        for c in &mut self.checks {
            let Some(o) = old_checks.get(&*c.name) else {
                continue;
            };
            if (o.rise_fall.rise(), o.rise_fall.fall()) != (c.rise_fall.rise(), c.rise_fall.fall())
            {
                continue;
            }
            c.rise_fall = o.rise_fall.clone();
            c.last_ok = o.last_ok;
            c.last_detail.clone_from(&o.last_detail);
            c.last_at = o.last_age_ms.map(|ms| before(now, ms));
            n_checks += 1;
        }
        let old_vips: HashMap<&str, &VipExport> =
            e.vips.iter().map(|v| (v.name.as_str(), v)).collect();
        let mut n_vips = 0;
        for v in &mut self.vips {
            let Some(o) = old_vips.get(&*v.spec.name) else {
                continue;
            };
            v.healthy = o.healthy;
            v.reason = o.reason.as_str().into();
            v.since = before(now, o.since_age_ms);
            v.withdrawn_at = o.withdrawn_age_ms.map(|ms| before(now, ms));
            v.probation = o.probation;
            v.life.import(&o.life, now);
            let mut taken = vec![false; o.conditions.len()];
            for c in &mut v.conditions {
                for (i, oc) in o.conditions.iter().enumerate() {
                    if !taken[i] && c.import(oc, now) {
                        taken[i] = true;
                        break;
                    }
                }
            }
            if let (Some(d), Some(od)) = (&mut v.dampening, &o.dampening) {
                d.import(od, now);
            }
            if let (Some(w), Some(ow)) = (&mut v.weight, &o.weight) {
                w.import(ow, now);
            }
            if o.marking {
                if let Some((_, g)) = v.guard.as_deref_mut() {
                    // Never unmarked by an upgrade: an unhealthy node's path must not look
                    // healthy to the others, not even for a moment.
                    *g = Gate::restored_episode(now, o.guard_episode);
                    v.marking = true;
                }
            }
            n_vips += 1;
        }
        let decisions = self.redecide_all("in-place upgrade", now);
        (decisions, n_checks, n_vips)
    }

    /// Until `until`, a signal with no data leaves its conditions (and so the routes) as they
    /// are, whatever `on_missing` says. The daemon sets it after an import to the end of the
    /// longest signal window: the new process's windows start empty, and a VIP with
    /// `on_missing: withdraw` must not be withdrawn (nor one with `ignore` cleared) because of
    /// the upgrade itself. Readings that do arrive are evaluated as always.
    pub fn hold_missing_signals_until(&mut self, until: Instant) {
        self.missing_held_until = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CheckSpec, Observation, VipSpec, VipState};
    use super::*;
    use std::time::Duration;

    fn engine(now: Instant) -> Engine {
        let checks = vec![CheckSpec {
            name: "web".into(),
            kind: "tcp",
            rise: 3,
            fall: 2,
        }];
        let vips = vec![VipSpec::new(
            "web",
            vec!["203.0.113.10/32".parse().unwrap()],
            vec![0],
        )];
        Engine::new(&checks, &vips, now)
    }

    fn pass(e: &mut Engine, ok: bool, at: Instant) {
        e.observe(
            &Observation {
                check: 0,
                ok,
                detail: "x".into(),
                definitive: false,
            },
            at,
        );
    }

    #[test]
    fn an_imported_engine_announces_at_once_and_keeps_its_streaks() {
        let t0 = Instant::now();
        let mut old = engine(t0);
        for i in 0..3 {
            pass(&mut old, true, t0 + Duration::from_secs(i));
        }
        pass(&mut old, false, t0 + Duration::from_secs(3));
        assert_eq!(old.desired().routes.len(), 1);
        let t1 = t0 + Duration::from_secs(4);
        let json = serde_json::to_string(&old.export(t1)).unwrap();
        let back: EngineExport = serde_json::from_str(&json).unwrap();

        let mut new = engine(t1);
        assert!(
            new.desired().routes.is_empty(),
            "a fresh engine waits for rise"
        );
        let (decisions, checks, vips) = new.import(&back, t1);
        assert_eq!((checks, vips), (1, 1));
        assert!(decisions.is_empty(), "{decisions:?}");
        assert_eq!(new.desired().routes.len(), 1);
        assert_eq!(new.vip("web").unwrap().life.state, VipState::Announced);
        // One failure was already counted: the next one takes it down (fall 2).
        pass(&mut new, false, t1 + Duration::from_secs(1));
        assert!(new.desired().routes.is_empty());
    }

    #[test]
    fn a_check_whose_rise_changed_starts_fresh() {
        let t0 = Instant::now();
        let mut old = engine(t0);
        for i in 0..3 {
            pass(&mut old, true, t0 + Duration::from_secs(i));
        }
        let mut ex = old.export(t0 + Duration::from_secs(3));
        ex.checks[0].rise_fall = RiseFall::new(5, 2);
        let mut new = engine(t0);
        let (_, checks, _) = new.import(&ex, t0 + Duration::from_secs(3));
        assert_eq!(checks, 0);
        // The VIP's recorded health is re-decided against its checks: down, so withdrawn.
        assert!(new.desired().routes.is_empty());
    }

    /// A VIP with a weight (slow start 4 s in 1 s steps), a baseline `withdraw_when` condition
    /// and dampening: the state an upgrade must not reset.
    fn traffic_engine(now: Instant) -> Engine {
        use super::super::condition::{BaselineSpec, ConditionSpec, Threshold, Unit};
        use super::super::dampening::DampeningSpec;
        use super::super::weight::WeightSpec;
        let checks = vec![CheckSpec {
            name: "web".into(),
            kind: "tcp",
            rise: 1,
            fall: 1,
        }];
        let mut vip = VipSpec::new("web", vec!["203.0.113.10/32".parse().unwrap()], vec![0]);
        vip.policy_mut().withdraw_when = vec![ConditionSpec {
            signal: "lat.p99".into(),
            threshold: Threshold::Baseline(BaselineSpec {
                above_factor: 3.0,
                restore_factor: 1.5,
                span: Duration::from_secs(20),
            }),
            trip_after: Duration::from_secs(1),
            clear_after: Duration::from_secs(1),
            min_requests: None,
            unit: Unit::Plain,
        }];
        vip.policy_mut().dampening = Some(DampeningSpec {
            half_life: Duration::from_secs(60),
            suppress: 2500.0,
            reuse: 750.0,
            penalty: 1000.0,
            max_suppress: Duration::from_secs(600),
        });
        vip.policy_mut().weight = Some(WeightSpec {
            capacity: 100e6,
            slow_start: Duration::from_secs(4),
            step: Duration::from_secs(1),
            min: 0.2,
            scale_when: vec![],
        });
        Engine::new(&checks, [&vip], now)
    }

    fn bandwidth(e: &Engine) -> Option<u64> {
        e.desired()
            .routes
            .values()
            .next()
            .and_then(|r| r.attrs.link_bandwidth)
    }

    fn round_trip(e: &Engine, now: Instant) -> EngineExport {
        serde_json::from_slice(&serde_json::to_vec(&e.export(now)).unwrap()).unwrap()
    }

    #[test]
    fn an_upgrade_mid_slow_start_keeps_the_weight_and_the_ramp() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        let read = |_: &str| super::super::Reading {
            value: Some(100.0),
            requests: None,
        };
        let mut old = traffic_engine(t0);
        pass(&mut old, true, t0);
        old.tick(&read, s(1000));
        old.tick(&read, s(2000));
        assert_eq!(bandwidth(&old), Some(60_000_000), "two steps into the ramp");
        old.take_weight_changes();

        let ex = round_trip(&old, s(2500));
        let mut new = traffic_engine(s(2500));
        let (decisions, ..) = new.import(&ex, s(2500));
        assert!(decisions.is_empty(), "{decisions:?}");
        assert_eq!(
            bandwidth(&new),
            Some(60_000_000),
            "the routers see the same weight"
        );
        assert!(
            new.take_weight_changes().is_empty(),
            "no weight UPDATE at the upgrade"
        );
        assert_eq!(
            new.next_deadline(),
            Some(s(3000)),
            "the ramp's next step is where it was"
        );
        new.tick(&read, s(3000));
        assert_eq!(bandwidth(&new), Some(80_000_000));
    }

    #[test]
    fn an_upgrade_keeps_a_learned_baseline_an_active_condition_and_the_penalty() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        let lat = std::cell::Cell::new(100.0);
        let read = |_: &str| super::super::Reading {
            value: Some(lat.get()),
            requests: None,
        };
        let mut old = traffic_engine(t0);
        pass(&mut old, true, t0);
        // 20 s of calm traffic teach the baseline (100), then latency triples past 3x.
        for i in 1..=20 {
            old.tick(&read, s(i * 1000));
        }
        lat.set(1000.0);
        old.tick(&read, s(21_000));
        old.tick(&read, s(22_500));
        let v = old.vip("web").unwrap();
        assert!(
            v.conditions[0].is_active(),
            "{}",
            v.conditions[0].describe()
        );
        assert!(
            old.desired().routes.is_empty(),
            "withdrawn by the condition"
        );
        let penalty = v.dampening.as_ref().unwrap().penalty(s(23_000));
        assert!(penalty > 900.0, "{penalty}");
        assert_eq!(v.conditions[0].thresholds(), Some((300.0, 150.0)));

        let ex = round_trip(&old, s(23_000));
        let mut new = traffic_engine(s(23_000));
        let (decisions, ..) = new.import(&ex, s(23_000));
        assert!(decisions.is_empty(), "{decisions:?}");
        let v = new.vip("web").unwrap();
        assert!(
            v.conditions[0].is_active(),
            "still active after the upgrade"
        );
        assert_eq!(
            v.conditions[0].thresholds(),
            Some((300.0, 150.0)),
            "the baseline is kept"
        );
        let kept = v.dampening.as_ref().unwrap().penalty(s(23_000));
        assert!((kept - penalty).abs() < 1.0, "{kept} vs {penalty}");
        assert!(new.desired().routes.is_empty(), "still withdrawn");
    }

    #[test]
    fn a_changed_condition_or_weight_starts_fresh_and_a_nan_reading_does_not_break_the_blob() {
        let t0 = Instant::now();
        let read = |_: &str| super::super::Reading {
            value: Some(f64::NAN),
            requests: None,
        };
        let mut old = traffic_engine(t0);
        pass(&mut old, true, t0);
        old.tick(&read, t0 + Duration::from_secs(1));
        let mut ex = round_trip(&old, t0 + Duration::from_secs(1));
        assert_eq!(ex.vips[0].conditions[0].last_value, None);
        ex.vips[0].conditions[0].spec.push('x');
        ex.vips[0].weight.as_mut().unwrap().spec.push('x');
        ex.vips[0].conditions[0].phase = super::super::condition::PhaseExport::Active { age_ms: 5 };
        let mut new = traffic_engine(t0);
        new.import(&ex, t0 + Duration::from_secs(1));
        let v = new.vip("web").unwrap();
        assert!(
            !v.conditions[0].is_active(),
            "another spec's state is not taken"
        );
        assert_eq!(
            bandwidth(&new),
            Some(20_000_000),
            "another weight spec: a fresh ramp at min"
        );
    }

    #[test]
    fn after_an_upgrade_missing_signal_data_holds_for_the_warm_up_even_with_on_missing_withdraw() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        let lat = std::cell::Cell::new(Some(100.0));
        let read = |_: &str| super::super::Reading {
            value: lat.get(),
            requests: None,
        };
        let build = |now| {
            let mut e = traffic_engine(now);
            for v in &mut e.vips {
                std::sync::Arc::make_mut(&mut v.spec)
                    .policy_mut()
                    .on_missing = super::super::spec::OnMissing::Withdraw;
            }
            e
        };
        let mut old = build(t0);
        pass(&mut old, true, t0);
        old.tick(&read, s(1000));
        assert!(!old.desired().routes.is_empty());

        let ex = round_trip(&old, s(1500));
        let mut new = build(s(1500));
        new.import(&ex, s(1500));
        new.hold_missing_signals_until(s(1500 + 31_000));
        // The new process's windows are empty.
        lat.set(None);
        assert!(
            new.tick(&read, s(2500)).is_empty(),
            "no route change for our own restart"
        );
        assert!(!new.desired().routes.is_empty());
        // A window later, no data means what the operator configured.
        let d = new.tick(&read, s(33_000));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            new.desired().routes.is_empty(),
            "on_missing: withdraw applies again"
        );
    }
}
