//! Flap dampening in the style of RFC 2439: each withdrawal adds a penalty that decays
//! exponentially with `half_life`; above `suppress` the VIP stays withdrawn until the penalty has
//! decayed below `reuse`. Pure: the caller supplies the time.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DampeningSpec {
    pub half_life: Duration,
    pub suppress: f64,
    pub reuse: f64,
    pub penalty: f64,
    /// RFC 2439's ceiling: the penalty never exceeds what decays to `reuse` within this time,
    /// so a VIP is never suppressed forever.
    pub max_suppress: Duration,
}

#[derive(Clone, Debug)]
pub struct Dampening {
    spec: DampeningSpec,
    penalty: f64,
    at: Option<Instant>,
    suppressed: bool,
}

impl Dampening {
    pub fn new(spec: DampeningSpec) -> Dampening {
        Dampening {
            spec,
            penalty: 0.0,
            at: None,
            suppressed: false,
        }
    }

    pub fn spec(&self) -> &DampeningSpec {
        &self.spec
    }

    /// The penalty decayed to `now`.
    pub fn penalty(&self, now: Instant) -> f64 {
        match self.at {
            None => 0.0,
            Some(at) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                let hl = self.spec.half_life.as_secs_f64().max(1e-3);
                self.penalty * 0.5f64.powf(dt / hl)
            }
        }
    }

    fn ceiling(&self) -> f64 {
        let hl = self.spec.half_life.as_secs_f64().max(1e-3);
        self.spec.reuse * 2f64.powf(self.spec.max_suppress.as_secs_f64() / hl)
    }

    /// Records one withdrawal; returns true when this made the VIP suppressed.
    pub fn withdrawn(&mut self, now: Instant) -> bool {
        self.penalty = (self.penalty(now) + self.spec.penalty).min(self.ceiling());
        self.at = Some(now);
        if !self.suppressed && self.penalty > self.spec.suppress {
            self.suppressed = true;
            return true;
        }
        false
    }

    /// Whether the VIP must stay withdrawn now; releases the suppression once below `reuse`.
    pub fn is_suppressed(&mut self, now: Instant) -> bool {
        if self.suppressed && self.penalty(now) < self.spec.reuse {
            self.suppressed = false;
        }
        self.suppressed
    }

    /// When a suppressed VIP becomes usable again: half_life * log2(penalty / reuse) from now.
    pub fn reuse_at(&self, now: Instant) -> Option<Instant> {
        if !self.suppressed {
            return None;
        }
        let p = self.penalty(now);
        if p < self.spec.reuse {
            return Some(now);
        }
        let secs = self.spec.half_life.as_secs_f64() * (p / self.spec.reuse).log2();
        Some(now + Duration::from_secs_f64(secs.max(0.0)))
    }
}

/// Dampening state as plain data, for the in-place upgrade (`engine::handover`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DampeningExport {
    /// The spec as `Debug` prints it: taken over only by the same spec.
    pub spec: String,
    pub penalty: f64,
    /// Age of the last penalty update.
    pub age_ms: Option<u64>,
    pub suppressed: bool,
}

impl Dampening {
    pub fn export(&self, now: Instant) -> DampeningExport {
        DampeningExport {
            spec: format!("{:?}", self.spec),
            penalty: if self.penalty.is_finite() {
                self.penalty
            } else {
                0.0
            },
            age_ms: self.at.map(|t| super::lifecycle::handover::age_ms(now, t)),
            suppressed: self.suppressed,
        }
    }

    /// Takes over an exported state when its spec is this one's.
    pub fn import(&mut self, e: &DampeningExport, now: Instant) -> bool {
        if e.spec != format!("{:?}", self.spec) || !e.penalty.is_finite() {
            return false;
        }
        self.penalty = e.penalty.max(0.0);
        self.at = e
            .age_ms
            .map(|ms| super::lifecycle::handover::before(now, ms));
        self.suppressed = e.suppressed;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DampeningSpec {
        DampeningSpec {
            half_life: Duration::from_secs(300),
            suppress: 3000.0,
            reuse: 750.0,
            penalty: 1000.0,
            max_suppress: Duration::from_secs(3600),
        }
    }

    #[test]
    fn suppresses_on_the_fourth_quick_flap_and_releases_at_the_computed_time() {
        let t0 = Instant::now();
        let mut d = Dampening::new(spec());
        assert!(!d.withdrawn(t0));
        assert!(!d.withdrawn(t0 + Duration::from_secs(1)));
        assert!(!d.withdrawn(t0 + Duration::from_secs(2)));
        let t3 = t0 + Duration::from_secs(3);
        assert!(d.withdrawn(t3), "penalty ~3990 > 3000 suppresses");
        let p = d.penalty(t3);
        assert!((3985.0..4000.0).contains(&p), "{p}");
        // Release when p * 0.5^(t/300) < 750  =>  t = 300 * log2(p/750) ~ 723 s.
        let expect = 300.0 * (p / 750.0).log2();
        let at = d.reuse_at(t3).unwrap();
        assert!((at.duration_since(t3).as_secs_f64() - expect).abs() < 0.01);
        assert!(d.is_suppressed(t3 + Duration::from_secs_f64(expect - 1.0)));
        assert!(!d.is_suppressed(t3 + Duration::from_secs_f64(expect + 1.0)));
    }

    #[test]
    fn slow_flaps_never_suppress() {
        let t0 = Instant::now();
        let mut d = Dampening::new(spec());
        // One withdrawal every 10 minutes: penalty settles near 1000/(1-0.25) = 1333.
        for i in 0..200u64 {
            assert!(!d.withdrawn(t0 + Duration::from_secs(600 * i)));
        }
    }

    #[test]
    fn penalty_is_capped_by_max_suppress() {
        let t0 = Instant::now();
        let mut d = Dampening::new(spec());
        for i in 0..1000u64 {
            d.withdrawn(t0 + Duration::from_millis(i));
        }
        let at = d.reuse_at(t0 + Duration::from_secs(1)).unwrap();
        assert!(at.duration_since(t0) <= Duration::from_secs(3601));
    }
}
