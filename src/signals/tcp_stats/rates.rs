//! Sliding-window math on timestamped samples, with time injected by the caller.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Hard cap on kept samples, whatever interval and window say: memory stays bounded even for a
/// 10 ms interval over a 10 min window (the window then just covers fewer seconds).
const MAX_SAMPLES: usize = 4096;

/// Per-second rates of `N` monotonic counters over a sliding window.
#[derive(Debug)]
pub struct CounterRates<const N: usize> {
    window: Duration,
    /// Oldest first. The front is the newest sample at or before the window start (the baseline).
    samples: VecDeque<(Instant, [i64; N])>,
}

impl<const N: usize> CounterRates<N> {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Adds a sample taken at `now`; returns the rates, or None until two samples span some time.
    pub fn push(&mut self, now: Instant, sample: [i64; N]) -> Option<[f64; N]> {
        match self.samples.back() {
            // Time must move forward; a repeated instant adds nothing.
            Some((t, _)) if now <= *t => return self.rates(),
            // A counter went backwards: the namespace (or the module) was recreated. Rates across
            // the drop would be negative or, read as a wrap, huge; start over from this sample.
            Some((_, last)) if last.iter().zip(&sample).any(|(a, b)| b < a) => self.samples.clear(),
            _ => {}
        }
        self.samples.push_back((now, sample));
        if let Some(start) = now.checked_sub(self.window) {
            while self.samples.len() >= 2 && self.samples[1].0 <= start {
                self.samples.pop_front();
            }
        }
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.rates()
    }

    fn rates(&self) -> Option<[f64; N]> {
        let (t0, first) = self.samples.front()?;
        let (t1, last) = self.samples.back()?;
        let secs = t1.saturating_duration_since(*t0).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let mut out = [0.0; N];
        for (o, (a, b)) in out.iter_mut().zip(first.iter().zip(last)) {
            *o = b.saturating_sub(*a).max(0) as f64 / secs;
        }
        Some(out)
    }
}

/// Max of an instantaneous reading over a sliding window.
#[derive(Debug)]
pub struct WindowMax {
    window: Duration,
    samples: VecDeque<(Instant, f64)>,
}

impl WindowMax {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Adds a reading (None: nothing to read now) and returns the max over the window.
    pub fn push(&mut self, now: Instant, value: Option<f64>) -> Option<f64> {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            self.samples.push_back((now, v));
        }
        if let Some(start) = now.checked_sub(self.window) {
            while self.samples.front().is_some_and(|(t, _)| *t <= start) {
                self.samples.pop_front();
            }
        }
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.iter().map(|(_, v)| *v).reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn rate_over_window_forgets_old_increases() {
        let t = Instant::now();
        let mut r = CounterRates::<2>::new(Duration::from_secs(10));
        assert_eq!(r.push(at(t, 0), [0, 100]), None, "one sample is no rate");
        assert_eq!(r.push(at(t, 1), [10, 100]), Some([10.0, 0.0]));
        // Burst of 10 in the first second, then flat: the rate decays as the span grows...
        for s in 2..=10 {
            r.push(at(t, s), [10, 100]);
        }
        assert_eq!(r.push(at(t, 10), [10, 100]), Some([1.0, 0.0]));
        // ...and is gone once the burst leaves the window.
        assert_eq!(r.push(at(t, 11), [10, 100]), Some([0.0, 0.0]));
        assert_eq!(r.push(at(t, 12), [40, 110]), Some([3.0, 1.0]));
    }

    #[test]
    fn counter_going_backwards_restarts_the_window() {
        let t = Instant::now();
        let mut r = CounterRates::<2>::new(Duration::from_secs(30));
        r.push(at(t, 0), [1_000, 5]);
        assert_eq!(r.push(at(t, 1), [1_010, 6]), Some([10.0, 1.0]));
        // Namespace recreated: one counter drops. No negative, no wrap-sized rate, no rate at all
        // until the next sample.
        assert_eq!(r.push(at(t, 2), [3, 6]), None);
        assert_eq!(r.push(at(t, 4), [7, 8]), Some([2.0, 1.0]));
    }

    #[test]
    fn time_not_advancing_is_ignored() {
        let t = Instant::now();
        let mut r = CounterRates::<1>::new(Duration::from_secs(30));
        r.push(at(t, 5), [0]);
        assert_eq!(r.push(at(t, 5), [100]), None);
        assert_eq!(r.push(at(t, 3), [100]), None);
        assert_eq!(r.push(at(t, 7), [10]), Some([5.0]));
    }

    #[test]
    fn memory_is_bounded() {
        let t = Instant::now();
        let mut r = CounterRates::<1>::new(Duration::from_secs(1_000_000));
        let mut m = WindowMax::new(Duration::from_secs(1_000_000));
        for i in 0..(MAX_SAMPLES as u64 + 100) {
            r.push(t + Duration::from_millis(i), [i as i64]);
            m.push(t + Duration::from_millis(i), Some(0.0));
        }
        assert_eq!(r.samples.len(), MAX_SAMPLES);
        assert_eq!(m.samples.len(), MAX_SAMPLES);
    }

    #[test]
    fn window_max_keeps_peaks_for_the_window() {
        let t = Instant::now();
        let mut m = WindowMax::new(Duration::from_secs(5));
        assert_eq!(m.push(at(t, 0), None), None);
        assert_eq!(m.push(at(t, 1), Some(0.2)), Some(0.2));
        assert_eq!(m.push(at(t, 2), Some(1.0)), Some(1.0));
        assert_eq!(m.push(at(t, 3), Some(0.1)), Some(1.0));
        assert_eq!(
            m.push(at(t, 4), None),
            Some(1.0),
            "no reading now keeps the window"
        );
        assert_eq!(m.push(at(t, 6), Some(0.3)), Some(1.0));
        assert_eq!(
            m.push(at(t, 8), Some(f64::NAN)),
            Some(0.3),
            "peak aged out, NaN ignored"
        );
    }
}
