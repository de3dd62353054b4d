//! Per-check hysteresis: `rise` consecutive passes to go up, `fall` consecutive failures to go down.
//! Starts down, so nothing is announced before a check has proven itself. A *definitive* failure
//! (the kernel or systemd reported the checked thing gone: a process exit, a closed listener, a
//! failed unit) is a fact rather than a noisy probe: it takes an up check down at once.

/// Serialisable for the in-place upgrade's state hand-over (`crate::handover`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive passes (when the last result passed) or failures (when it failed).
    streak: u32,
    last_ok: Option<bool>,
}

/// What one result did to the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Went up: `streak` passes reached `rise`.
    WentUp,
    /// Went down: `streak` failures reached `fall`.
    WentDown,
    /// No change; `streak` results of this kind so far.
    Same,
}

impl RiseFall {
    /// `rise` and `fall` are at least 1 (config validation guarantees it; 0 is treated as 1).
    pub fn new(rise: u32, fall: u32) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            up: false,
            streak: 0,
            last_ok: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Consecutive results equal to the last one.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    pub fn rise(&self) -> u32 {
        self.rise
    }

    pub fn fall(&self) -> u32 {
        self.fall
    }

    pub fn observe(&mut self, ok: bool) -> Step {
        self.observe_sample(ok, false)
    }

    /// Like [`RiseFall::observe`], but a failure that is `definitive` counts as `fall` failures
    /// at once. Passes are never definitive: a recovered service still proves itself `rise`
    /// times.
    pub fn observe_sample(&mut self, ok: bool, definitive: bool) -> Step {
        if self.last_ok == Some(ok) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.streak = 1;
            self.last_ok = Some(ok);
        }
        if definitive && !ok {
            self.streak = self.streak.max(self.fall);
        }
        match (self.up, ok) {
            (false, true) if self.streak >= self.rise => {
                self.up = true;
                Step::WentUp
            }
            (true, false) if self.streak >= self.fall => {
                self.up = false;
                Step::WentDown
            }
            _ => Step::Same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_down_and_rises_after_rise_passes() {
        let mut rf = RiseFall::new(3, 2);
        assert!(!rf.is_up());
        assert_eq!(rf.observe(true), Step::Same);
        assert_eq!(rf.observe(true), Step::Same);
        assert_eq!(rf.observe(true), Step::WentUp);
        assert_eq!(rf.observe(true), Step::Same);
        assert_eq!(rf.observe(false), Step::Same);
        assert_eq!(
            rf.observe(true),
            Step::Same,
            "a single failure must not count toward fall later"
        );
        assert_eq!(rf.observe(false), Step::Same);
        assert_eq!(rf.observe(false), Step::WentDown);
        assert_eq!(rf.observe(true), Step::Same);
        assert_eq!(rf.observe(false), Step::Same);
        assert!(!rf.is_up());
    }

    /// Reference model: the state after a sequence, computed from the definition.
    fn model(rise: u32, fall: u32, seq: &[bool]) -> bool {
        let mut up = false;
        for (i, _) in seq.iter().enumerate() {
            let tail = &seq[..=i];
            let last = tail[tail.len() - 1];
            let run = tail.iter().rev().take_while(|&&x| x == last).count() as u32;
            if !up && last && run >= rise {
                up = true;
            } else if up && !last && run >= fall {
                up = false;
            }
        }
        up
    }

    #[test]
    fn a_definitive_failure_falls_at_once_and_a_pass_still_rises_slowly() {
        let mut rf = RiseFall::new(2, 3);
        rf.observe(true);
        assert_eq!(rf.observe(true), Step::WentUp);
        assert_eq!(rf.observe_sample(false, true), Step::WentDown);
        assert_eq!(rf.streak(), 3, "reads as fall/fall");
        assert_eq!(
            rf.observe_sample(true, true),
            Step::Same,
            "passes are never definitive"
        );
        assert_eq!(rf.observe(true), Step::WentUp);
        // A noisy probe failure still waits for fall.
        assert_eq!(rf.observe_sample(false, false), Step::Same);
        assert_eq!(rf.observe_sample(false, false), Step::Same);
        assert_eq!(rf.observe_sample(false, true), Step::WentDown);
    }

    proptest! {
        /// A definitive failure leaves the check down (going down iff it was up); any other
        /// sample does exactly what `observe` does.
        #[test]
        fn definitive_failures_always_leave_the_check_down(rise in 1u32..5, fall in 1u32..5,
                seq in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..200)) {
            let mut a = RiseFall::new(rise, fall);
            for &(ok, definitive) in &seq {
                let before = a.clone();
                let step = a.observe_sample(ok, definitive);
                if definitive && !ok {
                    prop_assert!(!a.is_up());
                    prop_assert_eq!(step == Step::WentDown, before.is_up());
                } else {
                    let mut plain = before;
                    prop_assert_eq!(plain.observe(ok), step);
                    prop_assert_eq!(&plain, &a);
                }
            }
        }

        #[test]
        fn matches_reference_model(rise in 1u32..5, fall in 1u32..5, seq in proptest::collection::vec(any::<bool>(), 0..200)) {
            let mut rf = RiseFall::new(rise, fall);
            for (i, &ok) in seq.iter().enumerate() {
                rf.observe(ok);
                prop_assert_eq!(rf.is_up(), model(rise, fall, &seq[..=i]));
            }
        }

        /// Failures that never come `fall` in a row never take an up check down.
        #[test]
        fn short_failure_bursts_never_flap(fall in 2u32..6, gaps in proptest::collection::vec(0u32..10, 1..100)) {
            let mut rf = RiseFall::new(1, fall);
            rf.observe(true);
            for g in gaps {
                for _ in 0..(g % fall) { prop_assert_eq!(rf.observe(false), Step::Same); }
                rf.observe(true);
                prop_assert!(rf.is_up());
            }
        }
    }
}
