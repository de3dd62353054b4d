//! Turns successive scrapes into windowed values, with time injected by the caller.
//!
//! Counters are tracked per series and summed afterwards, as PromQL's `sum(rate(...))` does, so one
//! series restarting or vanishing does not look like a reset of the sum. Each scrape adds, per
//! selector, the increase since the previous scrape (a drop means the counter restarted from 0:
//! the new value is the increase, like `rate()`); values are those increases summed over the
//! window divided by the time they span.
//!
//! Unlike `rate()`, a series that first appears after the first scrape counts from 0: Envoy
//! creates counters such as `upstream_rq_5xx` on first use, and their first errors must count.
//! A selector matching no series reads as a counter at 0 for the same reason.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::exposition::{parse_body, BodyStats, Sample};
use super::selector::Selector;
use super::Derive;

/// A scrape body without a single sample (an HTML error page, a wrong URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSamples {
    /// Lines that did not parse.
    pub malformed: usize,
}

impl std::fmt::Display for NoSamples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no samples in body ({} malformed lines)", self.malformed)
    }
}

impl std::error::Error for NoSamples {}
/// Matching series kept per selector: a label with unbounded values cannot grow memory without end.
const MAX_SERIES: usize = 10_000;
/// Scrapes kept in the window, whatever interval and window say (17 min at 1 s).
const MAX_SCRAPES: usize = 1024;
/// Distinct bucket bounds per histogram; real ones have a few dozen. Beyond this the scrape adds
/// nothing to the quantile's window rather than memory without end.
const MAX_BUCKETS: usize = 256;

/// What one successful scrape yields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    pub values: BTreeMap<String, f64>,
    /// Increase of the first ratio's denominator over the window, else the first quantile's
    /// observation count: the requests behind the values.
    pub requests: Option<u64>,
    pub stats: BodyStats,
    /// Selectors that matched no series in this scrape (likely a typo, or not created yet).
    pub unmatched: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    value: f64,
    at: Instant,
}

/// Identity of a series: its labels sorted, minus `skip` (`le` for buckets). Escaped values are
/// as good as unescaped ones for telling series apart.
fn series_key(s: &Sample<'_>, skip: Option<&str>) -> String {
    let mut labels: Vec<(&str, &str)> = s
        .labels()
        .filter(|(n, _)| Some(*n) != skip)
        .map(|(n, v)| (n, v.raw()))
        .collect();
    labels.sort_unstable();
    let mut key = String::new();
    for (n, v) in labels {
        key.push_str(n);
        key.push('=');
        key.push_str(v);
        key.push('\u{1}');
    }
    key
}

/// Per-series last values and the increase they add up to at each scrape.
#[derive(Debug, Default)]
struct Series<K> {
    last: HashMap<K, Seen>,
    current: HashMap<K, f64>,
}

impl<K: std::hash::Hash + Eq + Clone> Series<K> {
    /// Takes a series only if it is tracked or there is room to track it: a series that cannot
    /// be remembered has no previous value, and counting it would count its whole value again on
    /// every scrape.
    fn offer(&mut self, key: K, value: f64) {
        let room = self.last.len() < MAX_SERIES && self.current.len() < MAX_SERIES;
        if !value.is_finite() || !(room || self.last.contains_key(&key)) {
            return;
        }
        self.current.insert(key, value);
    }

    /// Moves this scrape's values into `last`, calling `inc(key, increase)` per series unless this
    /// is a baseline scrape; forgets series not seen for a window.
    fn commit(
        &mut self,
        baseline: bool,
        now: Instant,
        window: Duration,
        mut inc: impl FnMut(&K, f64),
    ) {
        for (key, v) in self.current.drain() {
            if self.last.len() >= MAX_SERIES && !self.last.contains_key(&key) {
                continue; // no room to remember it: it must not count at all (see `offer`)
            }
            let increase = match self.last.get(&key) {
                Some(seen) if v >= seen.value => v - seen.value,
                Some(_) => v, // reset
                None => v,    // new series: counts from 0
            };
            if !baseline {
                inc(&key, increase);
            }
            self.last.insert(key, Seen { value: v, at: now });
        }
        self.last
            .retain(|_, s| now.saturating_duration_since(s.at) <= window);
    }
}

#[derive(Debug)]
enum Track {
    Counter {
        sel: Selector,
        series: Series<String>,
        /// Increase per scrape, aligned with `Deriver::spans`.
        incs: VecDeque<f64>,
        matched: bool,
    },
    Histogram {
        sel: Selector,
        bucket_name: String,
        /// Keyed by (series without `le`, `le` as f64 bits).
        series: Series<(String, u64)>,
        /// Per scrape: increase per upper bound, summed over series, sorted by bound.
        incs: VecDeque<Vec<(f64, f64)>>,
        matched: bool,
    },
    Gauge {
        sel: Selector,
        sum: Option<f64>,
    },
}

impl Track {
    fn offer(&mut self, s: &Sample<'_>) {
        match self {
            Track::Counter {
                sel,
                series,
                matched,
                ..
            } => {
                if s.name == sel.name && sel.matches_labels(s) {
                    *matched = true;
                    series.offer(series_key(s, None), s.value);
                }
            }
            Track::Histogram {
                sel,
                bucket_name,
                series,
                matched,
                ..
            } => {
                if s.name == bucket_name.as_str() && sel.matches_labels(s) {
                    let le = s
                        .label("le")
                        .and_then(|v| v.unescaped().trim().parse::<f64>().ok());
                    if let Some(le) = le.filter(|le| !le.is_nan()) {
                        *matched = true;
                        series.offer((series_key(s, Some("le")), le.to_bits()), s.value);
                    }
                }
            }
            Track::Gauge { sel, sum } => {
                if s.name == sel.name && s.value.is_finite() && sel.matches_labels(s) {
                    *sum = Some(sum.unwrap_or(0.0) + s.value);
                }
            }
        }
    }

    fn begin(&mut self) {
        match self {
            Track::Counter {
                series, matched, ..
            } => {
                series.current.clear();
                *matched = false;
            }
            Track::Histogram {
                series, matched, ..
            } => {
                series.current.clear();
                *matched = false;
            }
            Track::Gauge { sum, .. } => *sum = None,
        }
    }

    fn commit(&mut self, baseline: bool, now: Instant, window: Duration) {
        match self {
            Track::Counter { series, incs, .. } => {
                let mut total = 0.0;
                series.commit(baseline, now, window, |_, inc| total += inc);
                if !baseline {
                    incs.push_back(total);
                }
            }
            Track::Histogram { series, incs, .. } => {
                let mut by_le: Vec<(f64, f64)> = Vec::new();
                series.commit(baseline, now, window, |(_, le), inc| {
                    by_le.push((f64::from_bits(*le), inc));
                });
                if !baseline {
                    let mut merged = merge_buckets(by_le);
                    if merged.len() > MAX_BUCKETS {
                        merged.clear();
                    }
                    incs.push_back(merged);
                }
            }
            Track::Gauge { .. } => {}
        }
    }

    fn pop_front(&mut self) {
        match self {
            Track::Counter { incs, .. } => {
                incs.pop_front();
            }
            Track::Histogram { incs, .. } => {
                incs.pop_front();
            }
            Track::Gauge { .. } => {}
        }
    }

    /// Forgets history but keeps this scrape's values, which become the new baseline.
    fn reset_keep_current(&mut self) {
        match self {
            Track::Counter { series, incs, .. } => {
                series.last.clear();
                incs.clear();
            }
            Track::Histogram { series, incs, .. } => {
                series.last.clear();
                incs.clear();
            }
            Track::Gauge { .. } => {}
        }
    }

    fn unmatched(&self) -> Option<&Selector> {
        match self {
            Track::Counter { sel, matched, .. } | Track::Histogram { sel, matched, .. } => {
                (!*matched).then_some(sel)
            }
            Track::Gauge { sel, sum } => sum.is_none().then_some(sel),
        }
    }

    fn increase(&self) -> f64 {
        match self {
            Track::Counter { incs, .. } => incs.iter().sum(),
            _ => 0.0,
        }
    }

    /// Cumulative bucket increases over the window, sorted by upper bound.
    fn buckets(&self) -> Vec<(f64, f64)> {
        match self {
            Track::Histogram { incs, .. } => {
                merge_buckets(incs.iter().flatten().copied().collect())
            }
            _ => Vec::new(),
        }
    }
}

/// Sorts by bound and adds up entries with the same bound.
fn merge_buckets(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (le, n) in v {
        match out.last_mut() {
            Some(last) if last.0 == le => last.1 += n,
            _ => out.push((le, n)),
        }
    }
    out
}

/// PromQL's `histogram_quantile` on cumulative buckets sorted by upper bound: linear
/// interpolation inside the bucket holding the rank, the lowest bucket starting at 0, and the
/// `+Inf` bucket answered with the highest finite bound. None where PromQL gives NaN.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) || buckets.len() < 2 {
        return None;
    }
    if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
        return None;
    }
    // Increases of separate buckets can disagree slightly (resets seen at different moments);
    // PromQL forces them monotonic the same way.
    let mut counts: Vec<f64> = buckets.iter().map(|b| b.1).collect();
    for i in 1..counts.len() {
        counts[i] = counts[i].max(counts[i - 1]);
    }
    let observations = *counts.last()?;
    if observations <= 0.0 {
        return None;
    }
    let rank = q * observations;
    let b = counts.iter().position(|c| *c >= rank)?;
    let n = buckets.len();
    if b == n - 1 {
        return Some(buckets[n - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (buckets[b - 1].0, counts[b - 1])
    };
    let end = buckets[b].0;
    let in_bucket = counts[b] - below;
    if in_bucket <= 0.0 {
        return Some(start);
    }
    Some(start + (end - start) * ((rank - below) / in_bucket))
}

#[derive(Clone, Copy, Debug)]
enum Plan {
    Rate(usize),
    Ratio(usize, usize),
    Quantile(usize, f64),
    Gauge(usize),
}

/// The pure heart of the Prometheus source: scrapes in, values out.
#[derive(Debug)]
pub struct Deriver {
    window: Duration,
    plan: Vec<(String, Plan)>,
    tracks: Vec<Track>,
    /// (previous scrape, this scrape) for each scrape in the window, oldest first.
    spans: VecDeque<(Instant, Instant)>,
    last_scrape: Option<Instant>,
}

impl Deriver {
    pub fn new(window: Duration, values: &[(String, Derive)]) -> Self {
        let mut tracks = Vec::new();
        let mut add = |t: Track| {
            tracks.push(t);
            tracks.len() - 1
        };
        let counter = |sel: &Selector| Track::Counter {
            sel: sel.clone(),
            series: Series::default(),
            incs: VecDeque::new(),
            matched: false,
        };
        let plan = values
            .iter()
            .map(|(name, d)| {
                let p = match d {
                    Derive::Rate(s) => Plan::Rate(add(counter(s))),
                    Derive::Ratio {
                        numerator,
                        denominator,
                    } => Plan::Ratio(add(counter(numerator)), add(counter(denominator))),
                    Derive::Quantile { histogram, q } => Plan::Quantile(
                        add(Track::Histogram {
                            sel: histogram.clone(),
                            // The base name, as in PromQL; `_bucket` written out works too.
                            bucket_name: if histogram.name.ends_with("_bucket") {
                                histogram.name.clone()
                            } else {
                                format!("{}_bucket", histogram.name)
                            },
                            series: Series::default(),
                            incs: VecDeque::new(),
                            matched: false,
                        }),
                        *q,
                    ),
                    Derive::Gauge(s) => Plan::Gauge(add(Track::Gauge {
                        sel: s.clone(),
                        sum: None,
                    })),
                };
                (name.clone(), p)
            })
            .collect();
        Self {
            window,
            plan,
            tracks,
            spans: VecDeque::new(),
            last_scrape: None,
        }
    }

    /// Feeds one scrape's body, received at `now`. A body without a single sample is garbage
    /// (an HTML error page, a wrong URL): an error, and the window is left as it was.
    pub fn ingest(&mut self, now: Instant, body: &str) -> Result<Derived, NoSamples> {
        for t in &mut self.tracks {
            t.begin();
        }
        let tracks = &mut self.tracks;
        let stats = parse_body(body, |s| {
            for t in tracks.iter_mut() {
                t.offer(s);
            }
        });
        if stats.samples == 0 {
            for t in &mut self.tracks {
                t.begin();
            }
            return Err(NoSamples {
                malformed: stats.malformed,
            });
        }
        let fresh = match self.last_scrape {
            // Time must move forward; a repeated instant adds nothing.
            Some(last) if now <= last => return Ok(self.derived(stats)),
            Some(last) => now.duration_since(last) > self.window,
            None => true,
        };
        if fresh {
            // First scrape, or the last success is older than the window: this one is a baseline.
            self.spans.clear();
            for t in &mut self.tracks {
                t.reset_keep_current();
            }
        }
        for t in &mut self.tracks {
            t.commit(fresh, now, self.window);
        }
        if let (false, Some(last)) = (fresh, self.last_scrape) {
            self.spans.push_back((last, now));
        }
        self.last_scrape = Some(now);
        let start = now.checked_sub(self.window);
        while let Some((_, to)) = self.spans.front() {
            if self.spans.len() > MAX_SCRAPES || start.is_some_and(|s| *to <= s) {
                self.spans.pop_front();
                for t in &mut self.tracks {
                    t.pop_front();
                }
            } else {
                break;
            }
        }
        Ok(self.derived(stats))
    }

    fn derived(&self, stats: BodyStats) -> Derived {
        let mut out = Derived {
            stats,
            unmatched: self
                .tracks
                .iter()
                .filter_map(Track::unmatched)
                .map(ToString::to_string)
                .collect(),
            ..Derived::default()
        };
        let span = match (self.spans.front(), self.spans.back()) {
            (Some((from, _)), Some((_, to))) => to.saturating_duration_since(*from).as_secs_f64(),
            _ => 0.0,
        };
        let mut ratio_requests = None;
        let mut quantile_requests = None;
        for (name, plan) in &self.plan {
            let value = match *plan {
                Plan::Rate(i) => (span > 0.0).then(|| self.tracks[i].increase() / span),
                Plan::Ratio(n, d) => {
                    if span <= 0.0 {
                        None
                    } else {
                        let den = self.tracks[d].increase();
                        ratio_requests.get_or_insert(den.round() as u64);
                        (den > 0.0).then(|| self.tracks[n].increase() / den)
                    }
                }
                Plan::Quantile(i, q) => {
                    if span <= 0.0 {
                        None
                    } else {
                        let buckets = self.tracks[i].buckets();
                        let count = buckets.last().map_or(0.0, |b| b.1);
                        quantile_requests.get_or_insert(count.round() as u64);
                        histogram_quantile(q, &buckets)
                    }
                }
                Plan::Gauge(i) => match &self.tracks[i] {
                    Track::Gauge { sum, .. } => *sum,
                    _ => None,
                },
            };
            if let Some(v) = value.filter(|v| v.is_finite()) {
                out.values.insert(name.clone(), v);
            }
        }
        out.requests = ratio_requests.or(quantile_requests);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_buckets_are_capped() {
        let vals = vec![
            ("r".to_owned(), Derive::Rate(Selector::new("c"))),
            (
                "q".to_owned(),
                Derive::Quantile {
                    histogram: Selector::new("h"),
                    q: 0.5,
                },
            ),
        ];
        let mut d = Deriver::new(Duration::from_secs(60), &vals);
        let body = |extra: usize| {
            let mut b: String = (0..MAX_SERIES + 500)
                .map(|i| format!("c{{i=\"{i}\"}} 1\n"))
                .collect();
            for i in 0..=MAX_BUCKETS {
                b += &format!("h_bucket{{le=\"{i}\"}} {}\n", i + extra);
            }
            b + &format!("h_bucket{{le=\"+Inf\"}} {}\n", 1000 + extra)
        };
        let t = Instant::now();
        d.ingest(t, &body(0)).unwrap();
        let v = d.ingest(t + Duration::from_secs(1), &body(10)).unwrap();
        let Track::Counter { series, .. } = &d.tracks[0] else {
            panic!("counter track first")
        };
        assert_eq!(series.last.len(), MAX_SERIES);
        assert_eq!(v.values["r"], 0.0);
        assert!(!v.values.contains_key("q"), "too many buckets: no quantile");
    }

    /// With the series table full, a series that cannot be tracked must not count: before, its
    /// whole value was counted again on every scrape (a rate of 100/s from a flat counter).
    #[test]
    fn a_series_beyond_a_full_table_is_not_counted_again_every_scrape() {
        let vals = vec![("r".to_owned(), Derive::Rate(Selector::new("c")))];
        let mut d = Deriver::new(Duration::from_secs(60), &vals);
        let full: String = (0..MAX_SERIES)
            .map(|i| format!("c{{i=\"{i}\"}} 1\n"))
            .collect();
        // One old series gone (it stays remembered until the window forgets it), one new one.
        let later: String = (1..MAX_SERIES)
            .map(|i| format!("c{{i=\"{i}\"}} 1\n"))
            .collect::<String>()
            + "c{i=\"new\"} 100\n";
        let t = Instant::now();
        d.ingest(t, &full).unwrap();
        for s in 1..=5 {
            let v = d.ingest(t + Duration::from_secs(s), &later).unwrap();
            assert_eq!(v.values["r"], 0.0, "scrape {s}");
        }
    }
}
