//! The engine's decision state as plain data, for the in-place upgrade (`crate::handover`): check
//! hysteresis and history, each VIP's health, hold-down/probation and lifecycle (drains,
//! maintenance). The new process imports it onto the engine it built from its own config, the
//! way `carry_over` does on a reload: checks and VIPs are matched by name (checks also by
//! rise/fall), anything unmatched starts fresh, and the VIPs are then re-decided, so nothing
//! re-learns from scratch (no rise delay) and the routes come out as they were.
//!
//! Not carried (they start as on a reload of a new VIP): traffic-condition windows, dampening
//! history, the fleet guard's gates and the weights; see docs/upgrades.md.

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::lifecycle::handover::{age_ms, before};
use super::lifecycle::LifecycleExport;
use super::{Decision, Engine, Gate, RiseFall};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckExport {
    pub name: String,
    pub rise_fall: RiseFall,
    pub last_ok: Option<bool>,
    pub last_detail: String,
    pub last_age_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
                    name: v.name.to_string(),
                    healthy: v.healthy,
                    reason: v.reason.clone(),
                    since_age_ms: age_ms(now, v.since),
                    withdrawn_age_ms: v.withdrawn_at.map(|t| age_ms(now, t)),
                    probation: v.probation,
                    life: v.life.export(now),
                    marking: v.marking,
                    guard_episode: v.guard.as_deref().map_or(0, |(_, g)| g.episode()),
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
            let Some(o) = old_vips.get(&*v.name) else {
                continue;
            };
            v.healthy = o.healthy;
            v.reason.clone_from(&o.reason);
            v.since = before(now, o.since_age_ms);
            v.withdrawn_at = o.withdrawn_age_ms.map(|ms| before(now, ms));
            v.probation = o.probation;
            v.life.import(&o.life, now);
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
}
