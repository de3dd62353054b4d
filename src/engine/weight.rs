//! A VIP's announced weight: the RFC 10005 link bandwidth routers turn into weighted ECMP.
//!
//! The weight is `capacity` at full health. After the VIP is (re)announced it ramps from `min` to
//! full over `slow_start`, in steps of `step`; while `scale_when` conditions hold it is multiplied
//! by their `scale`s (combined by product); it never goes below `min` while announced. A draining,
//! marked or held VIP announces `min`.
//!
//! [`target`] is the pure computation (spec, announce time, condition states, clock in; weight and
//! reason out). [`Weight`] owns the conditions and what the route carries, and paces changes:
//! the conditions have the same trip/restore dwell and hysteresis band as `withdraw_when`, and a
//! new value goes out at most once per `step` (one UPDATE per step per peer). Only a route-state
//! change (announce, drain, mark) moves the weight at once, since it sends an UPDATE anyway.

use std::time::{Duration, Instant};

use super::condition::{Cause, Change, Condition, ConditionExport, ConditionSpec, Reading};
use super::fmt::format_duration;

/// One `scale_when` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleSpec {
    pub condition: ConditionSpec,
    /// Multiplier while the condition holds, 0..=1.
    pub scale: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WeightSpec {
    /// Link bandwidth at full health, bytes per second (RFC 10005's unit).
    pub capacity: f64,
    /// Ramp from `min` to full after an announcement (zero: no ramp).
    pub slow_start: Duration,
    /// The shortest time between two weight changes, and the ramp's step.
    pub step: Duration,
    /// Floor while announced, a share of `capacity` (0..=1).
    pub min: f64,
    pub scale_when: Vec<ScaleSpec>,
}

/// How the route stands, as far as the weight cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing<'a> {
    /// Not in the RIB: no weight is sent.
    Gone,
    /// Announced, but held at `min` (draining, marked, held): why.
    Floor(&'a str),
    /// Announced at full health.
    Full,
}

/// A weight and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Bytes per second, rounded (what goes on the wire, as an IEEE float).
    pub bytes: u64,
    pub reason: String,
}

/// The weight a VIP should announce now. `full_since`: when the VIP entered full announcement
/// (the ramp's start); `conditions` pairs with `spec.scale_when`. Non-increasing in each active
/// condition; always within `[min, capacity]` of the capacity.
pub fn target(
    spec: &WeightSpec,
    routing: Routing<'_>,
    full_since: Option<Instant>,
    conditions: &[Condition],
    now: Instant,
) -> Target {
    let floor = spec.min.clamp(0.0, 1.0);
    let share = |f: f64| (spec.capacity * f).round().max(0.0) as u64;
    match routing {
        Routing::Gone => {
            return Target {
                bytes: 0,
                reason: "not announced".into(),
            }
        }
        Routing::Floor(why) => {
            return Target {
                bytes: share(floor),
                reason: format!("{}: {why}", percent_of_capacity(floor)),
            }
        }
        Routing::Full => {}
    }
    let mut factor = 1.0;
    let mut parts = Vec::new();
    let ramp = ramp_share(spec, full_since, now);
    if let Some((r, elapsed)) = ramp {
        factor = r;
        parts.push(format!(
            "slow start {} of {}",
            format_duration(elapsed),
            format_duration(spec.slow_start)
        ));
    }
    for (s, c) in spec.scale_when.iter().zip(conditions) {
        if c.is_active() {
            factor *= s.scale.clamp(0.0, 1.0);
            parts.push(format!("x{} while {}", percent(s.scale), c.describe()));
        }
    }
    let f = factor.max(floor).min(1.0);
    let mut reason = percent_of_capacity(f);
    if factor < floor {
        parts.push(format!("floor min {}", percent(floor)));
    }
    if parts.is_empty() {
        reason += ": full health";
    } else {
        reason += ": ";
        reason += &parts.join(", ");
    }
    Target {
        bytes: share(f),
        reason,
    }
}

/// During slow start: the ramp's share of capacity (from `min` to 1) and the elapsed time it
/// stands for, rounded down to whole steps so the value moves at most once per step.
fn ramp_share(
    spec: &WeightSpec,
    full_since: Option<Instant>,
    now: Instant,
) -> Option<(f64, Duration)> {
    let since = full_since?;
    let elapsed = now.saturating_duration_since(since);
    if spec.slow_start.is_zero() || elapsed >= spec.slow_start {
        return None;
    }
    let step = spec.step.max(Duration::from_millis(1));
    let steps = (elapsed.as_nanos() / step.as_nanos()) as u32;
    let q = step.saturating_mul(steps).min(spec.slow_start);
    let floor = spec.min.clamp(0.0, 1.0);
    let frac = q.as_secs_f64() / spec.slow_start.as_secs_f64();
    Some((floor + (1.0 - floor) * frac, q))
}

fn percent(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn percent_of_capacity(f: f64) -> String {
    format!("{} of capacity", percent(f))
}

/// A bandwidth in bytes/s, in the bit/s units the config uses ("2.5 Gbit/s").
pub fn format_bandwidth(bytes: u64) -> String {
    let bits = bytes as f64 * 8.0;
    let (v, unit) = if bits >= 1e12 {
        (bits / 1e12, "Tbit/s")
    } else if bits >= 1e9 {
        (bits / 1e9, "Gbit/s")
    } else if bits >= 1e6 {
        (bits / 1e6, "Mbit/s")
    } else if bits >= 1e3 {
        (bits / 1e3, "kbit/s")
    } else {
        (bits, "bit/s")
    };
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {unit}")
}

/// A change of the announced weight, with its reason and, when a condition moved it, its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightChange {
    pub from: u64,
    pub to: u64,
    pub reason: String,
    pub cause: Option<Cause>,
}

impl std::fmt::Display for WeightChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "weight {} -> {} ({})",
            format_bandwidth(self.from),
            format_bandwidth(self.to),
            self.reason
        )
    }
}

/// A VIP's weight state: its scale conditions, what the route carries and the pacing.
#[derive(Clone, Debug)]
pub struct Weight {
    pub spec: WeightSpec,
    /// Pairs with `spec.scale_when`.
    pub conditions: Vec<Condition>,
    /// What the route carries now (bytes/s; 0 while not announced) and why.
    pub current: u64,
    pub reason: String,
    /// When the VIP entered full announcement (the ramp's start).
    full_since: Option<Instant>,
    /// When `current` last changed.
    changed_at: Option<Instant>,
    /// The last `update` (the ramp's next step is the first boundary after it).
    evaluated_at: Option<Instant>,
    /// The last condition trip or clear, for the next change's figures.
    cause: Option<Cause>,
    /// A paced change waits for `changed_at + step`.
    due: Option<Instant>,
    /// Changes not yet taken by the engine's caller.
    changes: Vec<WeightChange>,
}

impl Weight {
    pub fn new(spec: WeightSpec) -> Weight {
        let conditions = spec
            .scale_when
            .iter()
            .map(|s| Condition::new(s.condition.clone()))
            .collect();
        Weight {
            spec,
            conditions,
            current: 0,
            reason: "not announced".into(),
            full_since: None,
            changed_at: None,
            evaluated_at: None,
            cause: None,
            due: None,
            changes: Vec::new(),
        }
    }

    /// Takes over the state of an older weight whose spec is the same (configuration reload).
    pub fn inherit(&mut self, old: &Weight) {
        if old.spec == self.spec {
            let changes = std::mem::take(&mut self.changes);
            *self = old.clone();
            self.changes = changes;
        }
    }

    /// Feeds fresh readings to the scale conditions.
    pub fn observe_signals(&mut self, read: &dyn Fn(&str) -> Reading, now: Instant) {
        for c in &mut self.conditions {
            match c.evaluate(read(&c.spec.signal), now) {
                Change::Tripped { cause } | Change::Cleared { cause } => self.cause = Some(cause),
                Change::None => {}
            }
        }
    }

    /// When to evaluate again: a pending dwell, the next paced change or the next ramp step.
    pub fn next_deadline(&self) -> Option<Instant> {
        let dwell = self.conditions.iter().filter_map(Condition::deadline).min();
        let ramp = self.full_since.and_then(|s| {
            let end = s.checked_add(self.spec.slow_start)?;
            let step = self.spec.step.max(Duration::from_millis(1));
            // After the last evaluation, not the last change: a step that changes nothing (min
            // at 100%, a scale below the floor) must not leave a deadline in the past.
            let done = self.evaluated_at.unwrap_or(s).saturating_duration_since(s);
            let next =
                s.checked_add(step.saturating_mul((done.as_nanos() / step.as_nanos()) as u32 + 1))?;
            (self.current > 0 && next <= end).then_some(next)
        });
        [dwell, self.due, ramp].into_iter().flatten().min()
    }

    /// Brings the carried weight toward the target; records a change if there is one.
    pub fn update(&mut self, routing: Routing<'_>, now: Instant) {
        self.evaluated_at = Some(now);
        match routing {
            Routing::Full => {
                if self.full_since.is_none() {
                    self.full_since = Some(now);
                }
            }
            Routing::Gone | Routing::Floor(_) => self.full_since = None,
        }
        let t = target(&self.spec, routing, self.full_since, &self.conditions, now);
        if t.bytes == self.current {
            self.reason = t.reason;
            self.due = None;
            return;
        }
        // Entering or leaving the RIB, or the floor: the route-state change sends an UPDATE
        // anyway, so the weight goes with it. Everything else is paced.
        let state_change =
            self.current == 0 || t.bytes == 0 || matches!(routing, Routing::Floor(_));
        if !state_change {
            if let Some(at) = self.changed_at {
                let due = at + self.spec.step;
                if now < due {
                    self.due = Some(due);
                    return;
                }
            }
        }
        self.due = None;
        let cause = if t.bytes == 0 {
            None
        } else {
            self.cause.take()
        };
        if t.bytes != 0 {
            self.changes.push(WeightChange {
                from: self.current,
                to: t.bytes,
                reason: t.reason.clone(),
                cause,
            });
        }
        self.current = t.bytes;
        self.reason = t.reason;
        self.changed_at = Some(now);
    }

    /// The changes since the last call.
    pub fn take_changes(&mut self) -> Vec<WeightChange> {
        std::mem::take(&mut self.changes)
    }
}

/// A weight's state as plain data, for the in-place upgrade (`engine::handover`): without it a
/// VIP would restart its slow start after an upgrade and the routers would see its weight drop.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WeightExport {
    /// The spec as `Debug` prints it: taken over only by the same spec (as `inherit`).
    pub spec: String,
    pub current: u64,
    pub reason: String,
    pub full_since_age_ms: Option<u64>,
    pub changed_at_age_ms: Option<u64>,
    pub evaluated_at_age_ms: Option<u64>,
    /// A paced change's due time, in ms from the export.
    pub due_in_ms: Option<u64>,
    pub conditions: Vec<ConditionExport>,
}

impl Weight {
    pub fn export(&self, now: Instant) -> WeightExport {
        use super::lifecycle::handover::age_ms;
        WeightExport {
            spec: format!("{:?}", self.spec),
            current: self.current,
            reason: self.reason.clone(),
            full_since_age_ms: self.full_since.map(|t| age_ms(now, t)),
            changed_at_age_ms: self.changed_at.map(|t| age_ms(now, t)),
            evaluated_at_age_ms: self.evaluated_at.map(|t| age_ms(now, t)),
            due_in_ms: (self.due).map(|t| t.saturating_duration_since(now).as_millis() as u64),
            conditions: self.conditions.iter().map(|c| c.export(now)).collect(),
        }
    }

    /// Takes over an exported state when its spec is this one's (conditions included).
    pub fn import(&mut self, e: &WeightExport, now: Instant) -> bool {
        use super::lifecycle::handover::before;
        if e.spec != format!("{:?}", self.spec) || e.conditions.len() != self.conditions.len() {
            return false;
        }
        for (c, ce) in self.conditions.iter_mut().zip(&e.conditions) {
            c.import(ce, now);
        }
        self.current = e.current;
        self.reason.clone_from(&e.reason);
        self.full_since = e.full_since_age_ms.map(|ms| before(now, ms));
        self.changed_at = e.changed_at_age_ms.map(|ms| before(now, ms));
        self.evaluated_at = e.evaluated_at_age_ms.map(|ms| before(now, ms));
        self.due = e
            .due_in_ms
            .and_then(|ms| now.checked_add(Duration::from_millis(ms)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::condition::{Threshold, Unit};
    use super::*;
    use proptest::prelude::*;

    const MB: f64 = 1_000_000.0;

    fn cond(signal: &str, above: f64, restore: f64, dwell: u64) -> ConditionSpec {
        ConditionSpec {
            signal: signal.into(),
            threshold: Threshold::Fixed {
                above,
                restore_below: restore,
            },
            trip_after: Duration::from_secs(dwell),
            clear_after: Duration::from_secs(dwell),
            min_requests: None,
            unit: Unit::Plain,
        }
    }

    fn spec(scales: &[f64]) -> WeightSpec {
        WeightSpec {
            capacity: 100.0 * MB,
            slow_start: Duration::from_secs(10),
            step: Duration::from_secs(1),
            min: 0.1,
            scale_when: scales
                .iter()
                .enumerate()
                .map(|(i, &s)| ScaleSpec {
                    condition: cond(&format!("s{i}.v"), 10.0, 5.0, 0),
                    scale: s,
                })
                .collect(),
        }
    }

    /// Conditions with the given ones active (tripped by a reading above 10).
    fn conds(spec: &WeightSpec, active: &[bool], now: Instant) -> Vec<Condition> {
        spec.scale_when
            .iter()
            .zip(active)
            .map(|(s, &a)| {
                let mut c = Condition::new(s.condition.clone());
                let v = if a { 20.0 } else { 1.0 };
                c.evaluate(
                    Reading {
                        value: Some(v),
                        requests: None,
                    },
                    now,
                );
                assert_eq!(c.is_active(), a);
                c
            })
            .collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn full_health_is_capacity_and_scales_multiply() {
        let t0 = Instant::now();
        let sp = spec(&[0.5, 0.5]);
        let long_ago = Some(t0);
        let now = t0 + secs(60);
        let t = target(
            &sp,
            Routing::Full,
            long_ago,
            &conds(&sp, &[false, false], now),
            now,
        );
        assert_eq!(t.bytes, 100_000_000);
        assert_eq!(t.reason, "100% of capacity: full health");
        let t = target(
            &sp,
            Routing::Full,
            long_ago,
            &conds(&sp, &[true, false], now),
            now,
        );
        assert_eq!(t.bytes, 50_000_000);
        assert!(
            t.reason
                .starts_with("50% of capacity: x50% while s0.v = 20 (ACTIVE)"),
            "{}",
            t.reason
        );
        let t = target(
            &sp,
            Routing::Full,
            long_ago,
            &conds(&sp, &[true, true], now),
            now,
        );
        assert_eq!(t.bytes, 25_000_000);
    }

    #[test]
    fn never_below_min_while_announced_and_min_when_floored() {
        let t0 = Instant::now();
        let sp = spec(&[0.05]);
        let now = t0 + secs(60);
        let t = target(&sp, Routing::Full, Some(t0), &conds(&sp, &[true], now), now);
        assert_eq!(t.bytes, 10_000_000);
        assert!(t.reason.contains("floor min 10%"), "{}", t.reason);
        let t = target(&sp, Routing::Floor("draining"), None, &[], now);
        assert_eq!(
            (t.bytes, t.reason.as_str()),
            (10_000_000, "10% of capacity: draining")
        );
        assert_eq!(target(&sp, Routing::Gone, None, &[], now).bytes, 0);
    }

    #[test]
    fn slow_start_ramps_in_whole_steps() {
        let t0 = Instant::now();
        let sp = spec(&[]);
        let at = |ms: u64| {
            target(
                &sp,
                Routing::Full,
                Some(t0),
                &[],
                t0 + Duration::from_millis(ms),
            )
            .bytes
        };
        assert_eq!(at(0), 10_000_000);
        assert_eq!(at(999), 10_000_000, "no change inside a step");
        assert_eq!(at(1000), 19_000_000);
        assert_eq!(at(5500), 55_000_000);
        assert_eq!(at(9999), 91_000_000);
        assert_eq!(at(10_000), 100_000_000);
        let r = target(&sp, Routing::Full, Some(t0), &[], t0 + secs(4)).reason;
        assert_eq!(r, "46% of capacity: slow start 4s of 10s");
    }

    #[test]
    fn weight_paces_changes_and_ramps_through_update() {
        let t0 = Instant::now();
        let mut w = Weight::new(spec(&[0.5]));
        w.update(Routing::Gone, t0);
        assert!(w.take_changes().is_empty());
        w.update(Routing::Full, t0);
        let c = w.take_changes();
        assert_eq!(
            (c[0].from, c[0].to),
            (0, 10_000_000),
            "announced at min at once"
        );
        assert_eq!(w.next_deadline(), Some(t0 + secs(1)));
        let mut seen = vec![w.current];
        for ms in (100..=12_000).step_by(100) {
            w.update(Routing::Full, t0 + Duration::from_millis(ms));
            if seen.last() != Some(&w.current) {
                seen.push(w.current);
            }
        }
        let mb: Vec<u64> = seen.iter().map(|b| b / 1_000_000).collect();
        assert_eq!(mb, vec![10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100]);
        // A condition trips: the change goes out at once (the last one was over a step ago),
        // with the figures of the trip.
        let t = t0 + secs(20);
        w.observe_signals(
            &|_| Reading {
                value: Some(20.0),
                requests: None,
            },
            t,
        );
        w.take_changes();
        w.update(Routing::Full, t);
        let c = w.take_changes();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].to, 50_000_000);
        assert_eq!(c[0].cause.as_ref().map(|c| c.signal.as_str()), Some("s0.v"));
        assert!(
            c[0].to_string()
                .starts_with("weight 800 Mbit/s -> 400 Mbit/s (50% of capacity"),
            "{}",
            c[0]
        );
        // Draining: min at once, no pacing.
        w.update(Routing::Floor("draining"), t + Duration::from_millis(10));
        assert_eq!(w.take_changes()[0].to, 10_000_000);
        // Withdrawn: no change recorded (the withdrawal is its own decision).
        w.update(Routing::Gone, t + secs(1));
        assert!(w.take_changes().is_empty());
        assert_eq!(w.current, 0);
    }

    #[test]
    fn a_change_inside_a_step_waits_for_the_step() {
        let t0 = Instant::now();
        let mut sp = spec(&[0.5]);
        sp.slow_start = Duration::ZERO;
        let mut w = Weight::new(sp);
        w.update(Routing::Full, t0);
        assert_eq!(w.current, 100_000_000);
        let t = t0 + Duration::from_millis(300);
        w.observe_signals(
            &|_| Reading {
                value: Some(20.0),
                requests: None,
            },
            t,
        );
        w.update(Routing::Full, t);
        assert_eq!(w.current, 100_000_000, "paced");
        assert_eq!(w.next_deadline(), Some(t0 + secs(1)));
        w.update(Routing::Full, t0 + secs(1));
        assert_eq!(w.current, 50_000_000);
    }

    #[test]
    fn a_step_that_changes_nothing_moves_the_deadline_on() {
        let t0 = Instant::now();
        let mut sp = spec(&[]);
        sp.min = 1.0;
        let mut w = Weight::new(sp);
        w.update(Routing::Full, t0);
        let t = t0 + Duration::from_millis(1500);
        w.update(Routing::Full, t);
        assert_eq!(w.take_changes().len(), 1, "only the announcement");
        let d = w.next_deadline().unwrap();
        assert!(d > t, "{:?} not after the evaluation", d - t0);
    }

    #[test]
    fn bandwidth_prints_in_bits() {
        assert_eq!(format_bandwidth(12_500_000), "100 Mbit/s");
        assert_eq!(format_bandwidth(312_500_000), "2.5 Gbit/s");
        assert_eq!(format_bandwidth(0), "0 bit/s");
    }

    proptest! {
        /// Activating any one condition never raises the weight; the result stays in
        /// [min, capacity] whatever the ramp, scales and clock.
        #[test]
        fn monotone_and_bounded(
            scales in proptest::collection::vec(0.0f64..=1.0, 1..5),
            active in proptest::collection::vec(any::<bool>(), 5),
            which in 0usize..5,
            min in 0.0f64..=1.0,
            cap in 1.0f64..1e12,
            elapsed_ms in 0u64..20_000,
            ramp in any::<bool>(),
        ) {
            let t0 = Instant::now();
            let mut sp = spec(&scales);
            sp.min = min;
            sp.capacity = cap;
            let now = t0 + Duration::from_millis(elapsed_ms);
            let since = if ramp { Some(t0) } else { None };
            let n = scales.len();
            let which = which % n;
            let mut off = active[..n].to_vec();
            off[which] = false;
            let mut on = off.clone();
            on[which] = true;
            let lo = target(&sp, Routing::Full, since, &conds(&sp, &on, now), now).bytes;
            let hi = target(&sp, Routing::Full, since, &conds(&sp, &off, now), now).bytes;
            prop_assert!(lo <= hi, "{lo} > {hi}");
            let floor = (cap * min).round() as u64;
            let ceil = cap.round() as u64;
            prop_assert!(lo >= floor && hi <= ceil, "{lo}..{hi} outside {floor}..{ceil}");
            // The ramp never decreases with time.
            let later = target(&sp, Routing::Full, since, &conds(&sp, &off, now), now + Duration::from_millis(700)).bytes;
            prop_assert!(later >= hi);
        }

        /// Noisy readings (every 100 ms, random around both thresholds) for 10 minutes, with
        /// random short drains: at most one paced change per step, plus the state changes.
        #[test]
        fn no_update_storm_under_noise(
            values in proptest::collection::vec(0.0f64..30.0, 6000),
            floors in proptest::collection::vec(any::<bool>(), 6000),
            dwell in 0u64..3,
        ) {
            let t0 = Instant::now();
            let mut sp = spec(&[0.5, 0.7]);
            for s in &mut sp.scale_when {
                s.condition = cond(&s.condition.signal, 10.0, 5.0, dwell);
            }
            let mut w = Weight::new(sp);
            let mut state_changes = 0usize;
            let mut paced = Vec::new();
            let mut floored = false;
            for (i, (&v, &f)) in values.iter().zip(&floors).enumerate() {
                let now = t0 + Duration::from_millis(100 * i as u64);
                // A drain starts or ends at most once a minute.
                if f && i % 600 == 0 {
                    floored = !floored;
                    state_changes += 1;
                }
                w.observe_signals(&|_| Reading { value: Some(v), requests: None }, now);
                let r = if floored { Routing::Floor("draining") } else { Routing::Full };
                w.update(r, now);
                for _ in w.take_changes() {
                    paced.push(now);
                }
            }
            // 600 s at one change per second at most, plus one per state change and the first.
            prop_assert!(paced.len() <= 600 + 2 * state_changes + 1, "{} changes", paced.len());
            // Between two changes not caused by a state change, at least a step.
            let tight = paced.windows(2).filter(|p| p[1] - p[0] < Duration::from_secs(1)).count();
            prop_assert!(tight <= 2 * state_changes + 1, "{tight} changes closer than a step");
        }
    }
}
