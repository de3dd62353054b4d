//! Sliding-window statistics over access-log records. Pure: time is injected in unix (or any
//! monotonic) milliseconds. A fixed ring of slots, each with counters and a latency histogram of
//! fixed size, so memory does not depend on the log volume.

use std::fmt;
use std::time::Duration;

use super::logformat::LogRecord;

mod latency;
use latency::LatencyHistogram;

/// Number of slots in the ring: the window slides in steps of `window / SLOTS`.
pub const SLOTS: usize = 12;
/// Highest latency tracked (1 h in µs); larger values are clamped to it and counted.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Set of HTTP statuses that count as errors, e.g. `5xx` or `[500, 502-504, 429]`.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusSet {
    bits: [u64; 16], // statuses 0..=1023
}

impl Default for StatusSet {
    /// `5xx`.
    fn default() -> Self {
        let mut s = Self::empty();
        s.insert_range(500, 599);
        s
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<u16> = (0..1024).filter(|&c| self.contains(c)).collect();
        f.debug_tuple("StatusSet").field(&codes).finish()
    }
}

/// Why an error-status spec (`5xx`, `[500, 502-504]`) does not parse; `spec` is the whole text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusSpecError {
    BadStatus { status: String, spec: String },
    BadClass { item: String, spec: String },
    EmptyRange { item: String, spec: String },
}

impl fmt::Display for StatusSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusSpecError::BadStatus { status, spec } => {
                write!(f, "bad HTTP status `{status}` in `{spec}`")
            }
            StatusSpecError::BadClass { item, spec } => {
                write!(f, "bad status class `{item}` in `{spec}`")
            }
            StatusSpecError::EmptyRange { item, spec } => {
                write!(f, "empty status range `{item}` in `{spec}`")
            }
        }
    }
}

impl std::error::Error for StatusSpecError {}

impl StatusSet {
    pub fn empty() -> Self {
        Self { bits: [0; 16] }
    }

    fn insert_range(&mut self, lo: u16, hi: u16) {
        for c in lo..=hi.min(1023) {
            self.bits[(c / 64) as usize] |= 1 << (c % 64);
        }
    }

    /// From inclusive ranges, as config validation produces them.
    pub fn from_ranges(ranges: &[(u16, u16)]) -> Self {
        let mut set = Self::empty();
        for &(lo, hi) in ranges {
            set.insert_range(lo, hi);
        }
        set
    }

    pub fn contains(&self, status: u16) -> bool {
        status < 1024 && self.bits[(status / 64) as usize] & (1 << (status % 64)) != 0
    }

    /// Parses `5xx`, `429`, `502-504`, comma-separated and optionally in `[...]`.
    pub fn parse(spec: &str) -> Result<Self, StatusSpecError> {
        let inner = spec.trim();
        let inner = inner
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(inner);
        let mut set = Self::empty();
        for item in inner.split(',') {
            let item = item.trim().trim_matches(|c| c == '"' || c == '\'');
            let code = |s: &str| -> Result<u16, StatusSpecError> {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| StatusSpecError::BadStatus {
                        status: s.to_owned(),
                        spec: spec.to_owned(),
                    })
            };
            if let Some(class) = item.strip_suffix("xx").or_else(|| item.strip_suffix("XX")) {
                match class.parse::<u16>() {
                    Ok(d @ 1..=9) if class.len() == 1 => set.insert_range(d * 100, d * 100 + 99),
                    _ => {
                        return Err(StatusSpecError::BadClass {
                            item: item.to_owned(),
                            spec: spec.to_owned(),
                        })
                    }
                }
            } else if let Some((lo, hi)) = item.split_once('-') {
                let (lo, hi) = (code(lo)?, code(hi)?);
                if lo > hi {
                    return Err(StatusSpecError::EmptyRange {
                        item: item.to_owned(),
                        spec: spec.to_owned(),
                    });
                }
                set.insert_range(lo, hi);
            } else {
                let c = code(item)?;
                set.insert_range(c, c);
            }
        }
        Ok(set)
    }
}

/// What the window says at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSnapshot {
    pub requests: u64,
    /// Requests per second over the covered part of the window.
    pub request_rate: f64,
    pub errors: u64,
    /// `errors / requests`; `None` when there were no requests (no evidence either way).
    pub error_ratio: Option<f64>,
    pub latency_p50_us: Option<u64>,
    pub latency_p95_us: Option<u64>,
    pub latency_p99_us: Option<u64>,
    /// Requests that carried a latency.
    pub latency_samples: u64,
    /// Latencies above `MAX_LATENCY_US`, recorded as that value.
    pub latency_clamped: u64,
    pub malformed: u64,
    /// How much of the window has data behind it: less than `window` right after start.
    pub window_covered: Duration,
}

impl WindowSnapshot {
    /// The names conditions use (`SIGNAL.VALUE`); latencies in microseconds, rates per second.
    pub const VALUES: [&'static str; 7] = [
        "request_rate",
        "error_ratio",
        "error_rate",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "malformed_rate",
    ];

    /// One named value; None when the window has no evidence for it.
    pub fn value(&self, name: &str) -> Option<f64> {
        let per_sec = |n: u64| n as f64 / self.window_covered.as_secs_f64().max(1.0);
        match name {
            "request_rate" => Some(self.request_rate),
            "error_ratio" => self.error_ratio,
            "error_rate" => Some(per_sec(self.errors)),
            "latency_p50" => self.latency_p50_us.map(|v| v as f64),
            "latency_p95" => self.latency_p95_us.map(|v| v as f64),
            "latency_p99" => self.latency_p99_us.map(|v| v as f64),
            "malformed_rate" => Some(per_sec(self.malformed)),
            _ => None,
        }
    }
}

struct Slot {
    /// Absolute slot number (`time / slot_ms`) the data belongs to; stale when outside the window.
    idx: i64,
    requests: u64,
    errors: u64,
    malformed: u64,
    clamped: u64,
    latency: LatencyHistogram,
}

fn new_histogram() -> LatencyHistogram {
    // Fixed bounds (hdrhistogram's layout for 1 µs ..= MAX_LATENCY_US at 3 significant digits): the
    // counts array never grows. u32 counts saturate, and a slot would need 4 billion requests in
    // one bucket to reach that.
    LatencyHistogram::new()
}

impl Slot {
    fn reset(&mut self, idx: i64) {
        self.idx = idx;
        self.requests = 0;
        self.errors = 0;
        self.malformed = 0;
        self.clamped = 0;
        if !self.latency.is_empty() {
            self.latency.reset();
        }
    }
}

/// Request rate, error ratio and latency percentiles over a sliding window.
pub struct WindowStats {
    slot_ms: i64,
    errors: StatusSet,
    slots: Box<[Slot]>,
    /// Newest slot number seen.
    head: Option<i64>,
    /// When data collection started, for `window_covered`.
    origin_ms: Option<i64>,
    /// The sum of every ring slot's latency histogram, kept as records come and slots are
    /// reused, so a snapshot whose window holds every non-empty slot (the steady case) reads it
    /// as is instead of merging SLOTS histograms (that merge was a quarter of ingest CPU).
    total: LatencyHistogram,
    /// Scratch for a snapshot that must leave some slot out.
    merged: LatencyHistogram,
    /// Tests: the reference the fast paths are checked against: always merge the slots (no
    /// running total) and find every slot by division (no head span).
    force_merge: bool,
    /// The newest slot's time range `[start, end)` and ring position: a record in it (most are)
    /// needs no division to find its slot.
    head_span: Option<(i64, i64, usize)>,
    late: u64,
    clock_resets: u64,
}

impl fmt::Debug for WindowStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowStats")
            .field("window", &self.window())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl WindowStats {
    pub fn new(window: Duration, errors: StatusSet) -> Self {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 4);
        let slot_ms = ((window_ms + SLOTS as i64 - 1) / SLOTS as i64).max(1);
        let slots = (0..SLOTS)
            .map(|_| Slot {
                idx: i64::MIN,
                requests: 0,
                errors: 0,
                malformed: 0,
                clamped: 0,
                latency: new_histogram(),
            })
            .collect();
        Self {
            slot_ms,
            errors,
            slots,
            head: None,
            origin_ms: None,
            total: new_histogram(),
            merged: new_histogram(),
            force_merge: false,
            head_span: None,
            late: 0,
            clock_resets: 0,
        }
    }

    /// Effective window: `SLOTS` slots (rounded up from the configured window to whole ms).
    pub fn window(&self) -> Duration {
        Duration::from_millis((self.slot_ms * SLOTS as i64) as u64)
    }

    /// Starts the coverage clock without a record, so an idle start reads as "0 requests over
    /// N seconds" rather than as an empty window.
    pub fn start(&mut self, now_ms: i64) {
        self.slot_for(now_ms);
    }

    pub fn record(&mut self, rec: &LogRecord, now_ms: i64) {
        let Some(pos) = self.slot_for(now_ms) else {
            return;
        };
        let is_error = self.errors.contains(rec.status);
        let slot = &mut self.slots[pos];
        slot.requests += 1;
        slot.errors += u64::from(is_error);
        if let Some(us) = rec.latency_us {
            if us > MAX_LATENCY_US {
                slot.clamped += 1;
            }
            // Clamps to MAX_LATENCY_US: never an error, never a resize; the slot and the running
            // total share one index computation.
            slot.latency.saturating_record_both(&mut self.total, us);
        }
    }

    pub fn record_malformed(&mut self, now_ms: i64) {
        self.record_malformed_n(1, now_ms);
    }

    pub fn record_malformed_n(&mut self, n: u64, now_ms: i64) {
        if n == 0 {
            return;
        }
        if let Some(pos) = self.slot_for(now_ms) {
            self.slots[pos].malformed += n;
        }
    }

    /// Records that arrived too late for the window (older than its start), dropped.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Times the clock jumped back by more than two windows and the window was restarted.
    pub fn clock_resets(&self) -> u64 {
        self.clock_resets
    }

    /// Ring position for time `t`, moving the window forward if needed; `None` if `t` is too old.
    fn slot_for(&mut self, t: i64) -> Option<usize> {
        if let Some((start, end, pos)) = self.head_span {
            if t >= start && t < end && !self.force_merge {
                return Some(pos);
            }
        }
        let idx = t.div_euclid(self.slot_ms);
        let n = SLOTS as i64;
        match self.head {
            Some(h) if idx > h => self.head = Some(idx),
            // Far in the past: the clock went back (replay of concatenated logs, wall clock
            // reset). Old slots would otherwise shadow new data forever, so start over.
            Some(h) if h.saturating_sub(idx) >= 2 * n => {
                for s in self.slots.iter_mut() {
                    s.reset(i64::MIN);
                }
                self.total.reset();
                self.head = Some(idx);
                self.origin_ms = Some(t);
                self.clock_resets += 1;
            }
            Some(h) if h.saturating_sub(idx) >= n => {
                self.late += 1;
                return None;
            }
            Some(_) => {}
            None => {
                self.head = Some(idx);
            }
        }
        if self.origin_ms.is_none() {
            self.origin_ms = Some(t);
        }
        let pos = idx.rem_euclid(n) as usize;
        let slot = &mut self.slots[pos];
        if slot.idx != idx {
            if !slot.latency.is_empty() {
                // `total` holds these counts: costs what the slot held.
                self.total.subtract(&slot.latency);
            }
            slot.reset(idx);
        }
        // The head only ever moves to a slot computed here, so this span is right until then
        // (none at the ends of time, where the bounds would not fit).
        if self.head == Some(idx) {
            self.head_span = idx
                .checked_mul(self.slot_ms)
                .and_then(|start| start.checked_add(self.slot_ms).map(|end| (start, end, pos)));
        }
        Some(pos)
    }

    /// The window ending at `now_ms`. Takes `&mut self` only to reuse the merge histogram.
    pub fn snapshot(&mut self, now_ms: i64) -> WindowSnapshot {
        let n = SLOTS as i64;
        let now_idx = now_ms.div_euclid(self.slot_ms);
        // Slightly behind the newest record (out-of-order replay): still show the newest window.
        let (end_idx, end_ms) = match self.head {
            Some(h) if h > now_idx && h.saturating_sub(now_idx) < 2 * n => {
                (h, (h.saturating_add(1)).saturating_mul(self.slot_ms) - 1)
            }
            _ => (now_idx, now_ms),
        };
        let first_idx = end_idx.saturating_sub(n - 1);
        let inside = |s: &Slot| s.idx >= first_idx && s.idx <= end_idx;
        let (mut requests, mut errors, mut malformed, mut clamped) = (0u64, 0u64, 0u64, 0u64);
        for s in self.slots.iter().filter(|s| inside(s)) {
            requests += s.requests;
            errors += s.errors;
            malformed += s.malformed;
            clamped += s.clamped;
        }
        let use_total =
            !self.force_merge && self.slots.iter().all(|s| s.latency.is_empty() || inside(s));
        if !use_total {
            // Usually one slot has just left the window: the total less the slots outside it
            // (a copy and a subtraction) instead of adding up the SLOTS - 1 inside.
            let outside = self
                .slots
                .iter()
                .filter(|s| !s.latency.is_empty() && !inside(s))
                .count();
            if self.force_merge || outside * 2 > SLOTS {
                self.merged.reset();
                for s in self.slots.iter().filter(|s| inside(s)) {
                    self.merged.add(&s.latency);
                }
            } else {
                self.merged.copy_from(&self.total);
                for s in self
                    .slots
                    .iter()
                    .filter(|s| !s.latency.is_empty() && !inside(s))
                {
                    // `total` holds these counts.
                    self.merged.subtract(&s.latency);
                }
            }
        }
        let latency = if use_total { &self.total } else { &self.merged };
        let start_ms =
            (first_idx.saturating_mul(self.slot_ms)).max(self.origin_ms.unwrap_or(end_ms));
        let covered_ms = end_ms.saturating_sub(start_ms).clamp(0, n * self.slot_ms);
        // Below a second the rate is mostly noise; divide by at least 1 s (or the whole window).
        let rate_ms = covered_ms.max(1000.min(n * self.slot_ms));
        // One scan for the three percentiles (each what hdrhistogram's value_at_quantile gives).
        let [p50, p95, p99] = latency.values_at_quantiles([0.50, 0.95, 0.99]);
        let q = |v: u64| (!latency.is_empty()).then_some(v);
        WindowSnapshot {
            requests,
            request_rate: requests as f64 * 1000.0 / rate_ms as f64,
            errors,
            error_ratio: (requests > 0).then(|| errors as f64 / requests as f64),
            latency_p50_us: q(p50),
            latency_p95_us: q(p95),
            latency_p99_us: q(p99),
            latency_samples: latency.len(),
            latency_clamped: clamped,
            malformed,
            window_covered: Duration::from_millis(covered_ms as u64),
        }
    }

    /// Heap bytes held, for tests and metrics: constant after construction.
    pub fn heap_bytes(&self) -> usize {
        let hist = |h: &LatencyHistogram| h.distinct_values() * std::mem::size_of::<u32>();
        self.slots.len() * std::mem::size_of::<Slot>()
            + self.slots.iter().map(|s| hist(&s.latency)).sum::<usize>()
            + hist(&self.total)
            + hist(&self.merged)
    }
}

#[cfg(test)]
mod tests;
