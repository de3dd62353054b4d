//! One `withdraw_when` condition: a threshold with a hysteresis band and dwell times.
//!
//! It trips after the value has stayed above `above` for `for`, and clears only after it has stayed
//! below the lower `restore_below` for `restore_for`. Between the two thresholds nothing changes,
//! so noise around either threshold cannot flap the route. A reading without enough evidence
//! (missing signal, too few requests) neither trips nor clears: it restarts any pending dwell.

use std::time::{Duration, Instant};

/// What the condition compares against.
#[derive(Clone, Debug, PartialEq)]
pub enum Threshold {
    /// Fixed values, e.g. error ratio above 0.05, restore below 0.01.
    Fixed { above: f64, restore_below: f64 },
    /// Relative to the signal's own trailing baseline, e.g. p95 above 3x its 10-minute baseline.
    Baseline(BaselineSpec),
}

#[derive(Clone, Debug, PartialEq)]
pub struct BaselineSpec {
    pub above_factor: f64,
    pub restore_factor: f64,
    /// How far back the baseline looks.
    pub span: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConditionSpec {
    /// `SIGNAL.VALUE`, e.g. `web_log.error_ratio`.
    pub signal: String,
    pub threshold: Threshold,
    pub trip_after: Duration,
    pub clear_after: Duration,
    /// Fewer requests than this in the window is not evidence either way.
    pub min_requests: Option<u64>,
    /// How to print values of this signal (ratio, latency, plain number).
    pub unit: Unit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Ratio,
    /// Values are microseconds.
    Latency,
    Plain,
}

impl Unit {
    pub fn fmt(self, v: f64) -> String {
        match self {
            Unit::Ratio => format!("{v:.3}"),
            Unit::Latency if v >= 1_000_000.0 => format!("{:.2}s", v / 1_000_000.0),
            Unit::Latency => format!("{:.0}ms", v / 1000.0),
            Unit::Plain if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
            Unit::Plain => format!("{v:.3}"),
        }
    }
}

/// One reading of a signal at evaluation time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// None: the signal has no data (file gone, scrape failed, no requests for a latency).
    pub value: Option<f64>,
    /// Requests behind the value, where the signal knows it.
    pub requests: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    Clear,
    /// Above the trip threshold since then; trips at since + trip_after.
    Tripping {
        since: Instant,
    },
    Active {
        since: Instant,
    },
    /// Below the restore threshold since then; clears at since + clear_after.
    Clearing {
        since: Instant,
    },
}

/// Why a reading was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoEvidence {
    Missing,
    TooFewRequests,
    /// A baseline condition whose baseline is still being learned.
    NoBaseline,
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub spec: ConditionSpec,
    pub phase: Phase,
    baseline: Baseline,
    pub last: Option<Reading>,
    /// The worst value seen while tripping or active, for the log line.
    peak: f64,
}

/// What one evaluation did.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Tripped { cause: Cause },
    Cleared { cause: Cause },
    None,
}

/// The figures behind a trip or a clear; the text reason is formatted from them, and logs for
/// machines carry them as fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// `SIGNAL.VALUE`.
    pub signal: String,
    pub unit: Unit,
    pub value: f64,
    /// True for a trip (`value > threshold`), false for a clear (`value < threshold`).
    pub tripped: bool,
    pub threshold: f64,
    /// For a baseline threshold: its factor and the baseline.
    pub baseline: Option<(f64, f64)>,
    /// How long the value stayed past the threshold.
    pub held_for: Duration,
    pub requests: Option<u64>,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = self.unit;
        let op = if self.tripped { '>' } else { '<' };
        write!(
            f,
            "{} {} {op} {}",
            self.signal,
            u.fmt(self.value),
            u.fmt(self.threshold)
        )?;
        if let Some((factor, base)) = self.baseline {
            write!(f, " ({factor}x baseline {})", u.fmt(base))?;
        }
        write!(f, " for {}", fmt_secs(self.held_for))?;
        if let Some(n) = self.requests {
            write!(f, " ({n} requests)")?;
        }
        Ok(())
    }
}

impl Condition {
    pub fn new(spec: ConditionSpec) -> Condition {
        let span = match &spec.threshold {
            Threshold::Baseline(b) => b.span,
            Threshold::Fixed { .. } => Duration::ZERO,
        };
        Condition {
            spec,
            phase: Phase::Clear,
            baseline: Baseline::new(span),
            last: None,
            peak: 0.0,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active { .. } | Phase::Clearing { .. })
    }

    /// When a pending dwell completes if the value stays where it is: the instant to evaluate
    /// again so a `for`/`restore_for` takes exactly its duration, not up to a tick more.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Tripping { since } => since.checked_add(self.spec.trip_after),
            Phase::Clearing { since } => since.checked_add(self.spec.clear_after),
            Phase::Clear | Phase::Active { .. } => None,
        }
    }

    /// Forgets an active state, as if the condition had cleared (probation after hold-down).
    pub fn reset(&mut self) {
        self.phase = Phase::Clear;
    }

    /// The thresholds in force now, (trip above, restore below), for status and metrics.
    pub fn thresholds(&self) -> Option<(f64, f64)> {
        self.limits().ok()
    }

    /// The thresholds in force now: (trip above, restore below), or why there are none.
    fn limits(&self) -> Result<(f64, f64), NoEvidence> {
        match &self.spec.threshold {
            Threshold::Fixed {
                above,
                restore_below,
            } => Ok((*above, *restore_below)),
            Threshold::Baseline(b) => {
                let base = self.baseline.value().ok_or(NoEvidence::NoBaseline)?;
                Ok((base * b.above_factor, base * b.restore_factor))
            }
        }
    }

    /// Whether `r` is evidence at all.
    pub fn usable(&self, r: &Reading) -> Result<f64, NoEvidence> {
        let v = r.value.ok_or(NoEvidence::Missing)?;
        if let Some(min) = self.spec.min_requests {
            if r.requests.unwrap_or(0) < min {
                return Err(NoEvidence::TooFewRequests);
            }
        }
        Ok(v)
    }

    pub fn evaluate(&mut self, r: Reading, now: Instant) -> Change {
        self.last = Some(r);
        let value = match self.usable(&r) {
            Ok(v) => v,
            Err(_) => {
                // No evidence: a pending dwell restarts; settled phases stay.
                self.phase = match self.phase {
                    Phase::Tripping { .. } => Phase::Clear,
                    Phase::Clearing { .. } => Phase::Active { since: now },
                    p => p,
                };
                return Change::None;
            }
        };
        let limits = self.limits();
        // The baseline learns only from calm periods, so a fault does not raise its own bar.
        if self.phase == Phase::Clear {
            self.baseline.add(value, now);
        }
        let Ok((above, restore_below)) = limits else {
            return Change::None;
        };
        match self.phase {
            Phase::Clear if value > above => {
                self.peak = value;
                self.phase = Phase::Tripping { since: now };
                self.try_trip(now, above, r)
            }
            Phase::Clear => Change::None,
            Phase::Tripping { .. } if value > above => {
                self.peak = self.peak.max(value);
                self.try_trip(now, above, r)
            }
            Phase::Tripping { .. } => {
                self.phase = Phase::Clear;
                Change::None
            }
            Phase::Active { .. } if value < restore_below => {
                self.phase = Phase::Clearing { since: now };
                self.try_clear(now, value, restore_below, r)
            }
            Phase::Active { .. } => {
                self.peak = self.peak.max(value);
                Change::None
            }
            Phase::Clearing { .. } if value < restore_below => {
                self.try_clear(now, value, restore_below, r)
            }
            Phase::Clearing { .. } => {
                self.phase = Phase::Active { since: now };
                Change::None
            }
        }
    }

    fn try_trip(&mut self, now: Instant, above: f64, r: Reading) -> Change {
        let Phase::Tripping { since } = self.phase else {
            return Change::None;
        };
        if now.duration_since(since) < self.spec.trip_after {
            return Change::None;
        }
        self.phase = Phase::Active { since: now };
        let cause = Cause {
            signal: self.spec.signal.clone(),
            unit: self.spec.unit,
            value: r.value.unwrap_or(self.peak),
            tripped: true,
            threshold: above,
            baseline: match &self.spec.threshold {
                Threshold::Baseline(b) => Some((b.above_factor, above / b.above_factor)),
                Threshold::Fixed { .. } => None,
            },
            held_for: self.spec.trip_after,
            requests: r.requests,
        };
        Change::Tripped { cause }
    }

    fn try_clear(&mut self, now: Instant, value: f64, restore_below: f64, r: Reading) -> Change {
        let Phase::Clearing { since } = self.phase else {
            return Change::None;
        };
        if now.duration_since(since) < self.spec.clear_after {
            return Change::None;
        }
        self.phase = Phase::Clear;
        Change::Cleared {
            cause: Cause {
                signal: self.spec.signal.clone(),
                unit: self.spec.unit,
                value,
                tripped: false,
                threshold: restore_below,
                baseline: None,
                held_for: self.spec.clear_after,
                requests: r.requests,
            },
        }
    }

    /// A short account of the current state for status output.
    pub fn describe(&self) -> String {
        let u = self.spec.unit;
        let v = self
            .last
            .and_then(|r| r.value)
            .map(|v| u.fmt(v))
            .unwrap_or_else(|| "no data".into());
        let phase = match self.phase {
            Phase::Clear => "clear",
            Phase::Tripping { .. } => "tripping",
            Phase::Active { .. } => "ACTIVE",
            Phase::Clearing { .. } => "clearing",
        };
        format!("{} = {v} ({phase})", self.spec.signal)
    }
}

/// A condition's state as plain data (instants as ages), for the in-place upgrade
/// (`engine::handover`). Floats are finite: the blob is JSON, where NaN does not round-trip.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConditionExport {
    /// The spec as `Debug` prints it: state is taken over only by a condition with the same spec
    /// (as on a reload); a version that prints it differently starts fresh, the safe side.
    pub spec: String,
    pub phase: PhaseExport,
    /// The baseline's buckets, oldest first: (age of the bucket's start in ms, sum, count).
    pub baseline: Vec<(u64, f64, u32)>,
    pub last_value: Option<f64>,
    pub last_requests: Option<u64>,
    pub peak: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PhaseExport {
    #[default]
    Clear,
    Tripping {
        age_ms: u64,
    },
    Active {
        age_ms: u64,
    },
    Clearing {
        age_ms: u64,
    },
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl Condition {
    pub fn export(&self, now: Instant) -> ConditionExport {
        use super::lifecycle::handover::age_ms;
        ConditionExport {
            spec: format!("{:?}", self.spec),
            phase: match self.phase {
                Phase::Clear => PhaseExport::Clear,
                Phase::Tripping { since } => PhaseExport::Tripping {
                    age_ms: age_ms(now, since),
                },
                Phase::Active { since } => PhaseExport::Active {
                    age_ms: age_ms(now, since),
                },
                Phase::Clearing { since } => PhaseExport::Clearing {
                    age_ms: age_ms(now, since),
                },
            },
            baseline: (self.baseline.buckets.iter())
                .filter(|(_, sum, _)| sum.is_finite())
                .map(|&(start, sum, n)| (age_ms(now, start), sum, n))
                .collect(),
            last_value: self.last.and_then(|r| r.value).and_then(finite),
            last_requests: self.last.and_then(|r| r.requests),
            peak: finite(self.peak).unwrap_or(0.0),
        }
    }

    /// Takes over an exported state when its spec is this one's; false (and nothing changed)
    /// otherwise.
    pub fn import(&mut self, e: &ConditionExport, now: Instant) -> bool {
        use super::lifecycle::handover::before;
        if e.spec != format!("{:?}", self.spec) {
            return false;
        }
        self.phase = match e.phase {
            PhaseExport::Clear => Phase::Clear,
            PhaseExport::Tripping { age_ms } => Phase::Tripping {
                since: before(now, age_ms),
            },
            PhaseExport::Active { age_ms } => Phase::Active {
                since: before(now, age_ms),
            },
            PhaseExport::Clearing { age_ms } => Phase::Clearing {
                since: before(now, age_ms),
            },
        };
        self.baseline.buckets = (e.baseline.iter())
            .filter(|(_, sum, n)| sum.is_finite() && *n > 0)
            .map(|&(age, sum, n)| (before(now, age), sum, n))
            .collect();
        self.last = (e.last_value.is_some() || e.last_requests.is_some()).then_some(Reading {
            value: e.last_value,
            requests: e.last_requests,
        });
        self.peak = e.peak;
        true
    }
}

fn fmt_secs(d: Duration) -> String {
    super::fmt::format_duration(d)
}

/// Trailing baseline: the median of per-bucket means over `span`. Buckets keep memory fixed and the
/// median ignores a few wild buckets. Needs half the span of data before it gives a value.
#[derive(Clone, Debug)]
struct Baseline {
    span: Duration,
    bucket: Duration,
    /// (bucket start, sum, count), oldest first.
    buckets: std::collections::VecDeque<(Instant, f64, u32)>,
}

const BASELINE_BUCKETS: u32 = 20;

impl Baseline {
    fn new(span: Duration) -> Baseline {
        Baseline {
            span,
            bucket: (span / BASELINE_BUCKETS).max(Duration::from_millis(1)),
            buckets: Default::default(),
        }
    }

    fn add(&mut self, v: f64, now: Instant) {
        if self.span.is_zero() || !v.is_finite() {
            return;
        }
        match self.buckets.back_mut() {
            Some((start, sum, n)) if now.duration_since(*start) < self.bucket => {
                *sum += v;
                *n += 1;
            }
            _ => self.buckets.push_back((now, v, 1)),
        }
        while let Some((start, ..)) = self.buckets.front() {
            if now.duration_since(*start) > self.span {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn value(&self) -> Option<f64> {
        if (self.buckets.len() as u32) < BASELINE_BUCKETS / 2 {
            return None;
        }
        let mut means: Vec<f64> = self.buckets.iter().map(|(_, s, n)| s / *n as f64).collect();
        means.sort_by(f64::total_cmp);
        let m = means[means.len() / 2];
        // A zero baseline would make any value "3x" it.
        (m > 0.0).then_some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(above: f64, restore: f64, trip: u64, clear: u64, min: Option<u64>) -> ConditionSpec {
        ConditionSpec {
            signal: "web_log.error_ratio".into(),
            threshold: Threshold::Fixed {
                above,
                restore_below: restore,
            },
            trip_after: Duration::from_secs(trip),
            clear_after: Duration::from_secs(clear),
            min_requests: min,
            unit: Unit::Ratio,
        }
    }

    fn r(v: f64, n: u64) -> Reading {
        Reading {
            value: Some(v),
            requests: Some(n),
        }
    }

    #[test]
    fn trips_after_for_and_clears_after_restore_for() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut c = Condition::new(spec(0.05, 0.01, 10, 30, Some(50)));
        assert_eq!(c.evaluate(r(0.2, 1000), s(0)), Change::None);
        assert_eq!(c.evaluate(r(0.2, 1000), s(9)), Change::None);
        match c.evaluate(r(0.124, 1843), s(10)) {
            Change::Tripped { cause } => {
                assert_eq!(
                    cause.to_string(),
                    "web_log.error_ratio 0.124 > 0.050 for 10s (1843 requests)"
                )
            }
            other => panic!("{other:?}"),
        }
        // Inside the band: stays active however long.
        for x in 11..200 {
            assert_eq!(c.evaluate(r(0.03, 1000), s(x)), Change::None);
        }
        assert!(c.is_active());
        assert_eq!(c.evaluate(r(0.005, 1000), s(200)), Change::None);
        assert_eq!(c.evaluate(r(0.005, 1000), s(229)), Change::None);
        assert!(matches!(
            c.evaluate(r(0.005, 1000), s(230)),
            Change::Cleared { .. }
        ));
        assert!(!c.is_active());
    }

    #[test]
    fn deadline_is_the_end_of_the_pending_dwell() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = Condition::new(spec(0.1, 0.05, 5, 3, None));
        assert_eq!(c.deadline(), None);
        c.evaluate(r(0.5, 100), t0 + Duration::from_millis(1234));
        assert_eq!(c.deadline(), Some(t0 + Duration::from_millis(6234)));
        // Evaluating exactly at the deadline trips: no extra tick.
        let ch = c.evaluate(r(0.5, 100), t0 + Duration::from_millis(6234));
        assert!(matches!(ch, Change::Tripped { .. }), "{ch:?}");
        assert_eq!(c.deadline(), None);
        c.evaluate(r(0.01, 100), t0 + s(10));
        assert_eq!(c.deadline(), Some(t0 + s(13)));
    }

    #[test]
    fn too_few_requests_neither_trips_nor_clears() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut c = Condition::new(spec(0.05, 0.01, 2, 2, Some(50)));
        for x in 0..100 {
            assert_eq!(c.evaluate(r(1.0, 10), s(x)), Change::None);
        }
        assert!(!c.is_active());
        c.evaluate(r(1.0, 100), s(100));
        assert!(matches!(
            c.evaluate(r(1.0, 100), s(102)),
            Change::Tripped { .. }
        ));
        for x in 103..200 {
            assert_eq!(c.evaluate(r(0.0, 10), s(x)), Change::None);
        }
        assert!(c.is_active());
    }

    #[test]
    fn missing_data_restarts_a_pending_dwell() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut c = Condition::new(spec(0.05, 0.01, 10, 10, None));
        c.evaluate(r(0.5, 100), s(0));
        c.evaluate(
            Reading {
                value: None,
                requests: None,
            },
            s(5),
        );
        assert_eq!(
            c.evaluate(r(0.5, 100), s(10)),
            Change::None,
            "dwell must restart"
        );
        assert!(matches!(
            c.evaluate(r(0.5, 100), s(20)),
            Change::Tripped { .. }
        ));
    }

    #[test]
    fn baseline_condition_trips_on_a_relative_step_only() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut c = Condition::new(ConditionSpec {
            signal: "web_log.latency_p95".into(),
            threshold: Threshold::Baseline(BaselineSpec {
                above_factor: 3.0,
                restore_factor: 2.0,
                span: Duration::from_secs(600),
            }),
            trip_after: Duration::from_secs(30),
            clear_after: Duration::from_secs(30),
            min_requests: None,
            unit: Unit::Latency,
        });
        // Learning: nothing trips before half the span, even on a huge value.
        assert_eq!(c.evaluate(r(50_000.0, 0), s(0)), Change::None);
        for x in 1..1200 {
            // 40-60 ms wobble around a 50 ms baseline.
            let v = 40_000.0 + (x % 21) as f64 * 1000.0;
            assert_eq!(c.evaluate(r(v, 0), s(x)), Change::None, "at {x}");
        }
        let mut tripped_at = None;
        for x in 1200..1300 {
            if let Change::Tripped { cause } = c.evaluate(r(200_000.0, 0), s(x)) {
                let reason = cause.to_string();
                assert!(reason.contains("(3x baseline 50ms)"), "{reason}");
                tripped_at = Some(x);
            }
        }
        assert_eq!(tripped_at, Some(1230));
    }

    #[test]
    fn latency_formatting() {
        assert_eq!(Unit::Latency.fmt(1_500_000.0), "1.50s");
        assert_eq!(Unit::Latency.fmt(250_000.0), "250ms");
        assert_eq!(Unit::Plain.fmt(7.0), "7");
    }
}
