use super::*;

fn rec(status: u16, latency_us: Option<u64>) -> LogRecord {
    LogRecord {
        status,
        latency_us,
        time_ms: None,
    }
}

fn stats_30s() -> WindowStats {
    WindowStats::new(Duration::from_secs(30), StatusSet::default())
}

#[test]
fn status_set_specs() {
    let d = StatusSet::default();
    assert!(d.contains(500) && d.contains(599) && !d.contains(499) && !d.contains(600));
    let s = StatusSet::parse("[500, 502-504, 429]").unwrap();
    let got: Vec<u16> = (0..1024).filter(|&c| s.contains(c)).collect();
    assert_eq!(got, [429, 500, 502, 503, 504]);
    let s = StatusSet::parse(" 4xx,5XX ").unwrap();
    assert!(s.contains(404) && s.contains(503) && !s.contains(200));
    assert_eq!(StatusSet::parse("5xx").unwrap(), StatusSet::default());
    for bad in [
        "", "[]", "5x", "55xx", "0xx", "abc", "504-502", "600000", "99", "5xx,",
    ] {
        assert!(StatusSet::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        StatusSet::parse("504-502").unwrap_err().to_string(),
        "empty status range `504-502` in `504-502`"
    );
    assert!(!d.contains(u16::MAX));
}

#[test]
fn counts_ratio_rate_and_percentiles() {
    let mut w = stats_30s();
    w.start(0);
    // 1000 requests spread over the 30 s window: 1..=1000 ms latency, every 10th a 503.
    for i in 0..1000u64 {
        let t = (i * 30) as i64;
        let status = if i % 10 == 0 { 503 } else { 200 };
        w.record(&rec(status, Some((i + 1) * 1000)), t);
    }
    w.record(&rec(200, None), 29_990);
    w.record_malformed(29_990);
    let s = w.snapshot(29_999);
    assert_eq!(s.requests, 1001);
    assert_eq!(s.errors, 100);
    assert!((s.error_ratio.unwrap() - 100.0 / 1001.0).abs() < 1e-12);
    assert_eq!(s.latency_samples, 1000);
    assert_eq!(s.malformed, 1);
    assert_eq!(s.window_covered, Duration::from_millis(29_999));
    assert!(
        (s.request_rate - 1001.0 / 29.999).abs() < 1e-6,
        "{}",
        s.request_rate
    );
    // hdrhistogram with 3 significant digits: within 0.1%.
    let near = |got: Option<u64>, want: u64| {
        let got = got.unwrap() as f64;
        assert!(
            (got - want as f64).abs() / want as f64 <= 0.001,
            "{got} vs {want}"
        );
    };
    near(s.latency_p50_us, 500_000);
    near(s.latency_p95_us, 950_000);
    near(s.latency_p99_us, 990_000);
}

#[test]
fn empty_window_has_no_ratio_and_no_percentiles() {
    let mut w = stats_30s();
    let s = w.snapshot(5_000);
    assert_eq!(s.requests, 0);
    assert_eq!(s.error_ratio, None);
    assert_eq!(s.latency_p99_us, None);
    assert_eq!(s.request_rate, 0.0);
    w.start(5_000);
    assert_eq!(w.snapshot(15_000).window_covered, Duration::from_secs(10));
}

#[test]
fn old_slots_expire_as_the_window_slides() {
    let mut w = stats_30s(); // 12 slots of 2.5 s
    w.record(&rec(500, Some(10)), 0);
    w.record(&rec(200, Some(10)), 10_000);
    assert_eq!(w.snapshot(29_999).requests, 2);
    // At 30 s the slot [0, 2.5 s) has left the window; the 10 s record is still in.
    let s = w.snapshot(30_000);
    assert_eq!((s.requests, s.errors), (1, 0));
    assert_eq!(s.error_ratio, Some(0.0));
    assert_eq!(w.snapshot(40_000).requests, 0);
    // Recording after a gap reuses the ring without counting stale data.
    w.record(&rec(200, None), 40_000);
    assert_eq!(w.snapshot(40_000).requests, 1);
    // The window is 11 whole slots plus the current partial one: [12.5 s, 40 s].
    assert_eq!(
        w.snapshot(40_000).window_covered,
        Duration::from_millis(27_500)
    );
}

#[test]
fn huge_forward_jump_is_instant_and_clears_everything() {
    let mut w = stats_30s();
    for t in 0..100 {
        w.record(&rec(503, Some(5)), t * 100);
    }
    let far = 1_000_000_000_000_000;
    w.record(&rec(200, Some(5)), far);
    let s = w.snapshot(far);
    assert_eq!((s.requests, s.errors), (1, 0));
}

#[test]
fn time_going_backwards() {
    let mut w = stats_30s();
    w.record(&rec(200, None), 100_000);
    // Out of order by a few seconds (HAProxy logs accept time): still counted.
    w.record(&rec(500, None), 95_000);
    let s = w.snapshot(94_000);
    assert_eq!(
        (s.requests, s.errors),
        (2, 1),
        "snapshot slightly behind still sees newest"
    );
    // Older than the window start: dropped and counted as late.
    w.record(&rec(500, None), 60_000);
    assert_eq!(w.late(), 1);
    assert_eq!(w.snapshot(100_000).requests, 2);
    // Far back (clock reset): the window restarts at the new time instead of ignoring data.
    w.record(&rec(500, None), 1_000);
    assert_eq!(w.clock_resets(), 1);
    let s = w.snapshot(1_000);
    assert_eq!((s.requests, s.errors), (1, 1));
    w.record(&rec(200, None), 2_000);
    assert_eq!(w.snapshot(2_000).requests, 2);
}

#[test]
fn clamped_latencies_are_counted() {
    let mut w = stats_30s();
    w.record(&rec(200, Some(u64::MAX)), 0);
    w.record(&rec(200, Some(MAX_LATENCY_US + 1)), 0);
    w.record(&rec(200, Some(0)), 0);
    let s = w.snapshot(0);
    assert_eq!(s.latency_clamped, 2);
    assert_eq!(s.latency_samples, 3);
    let p99 = s.latency_p99_us.unwrap();
    assert!((MAX_LATENCY_US..=MAX_LATENCY_US + MAX_LATENCY_US / 1000).contains(&p99));
}

#[test]
fn extreme_times_do_not_panic() {
    let mut w = WindowStats::new(Duration::from_millis(1), StatusSet::default());
    for t in [i64::MIN, -1, 0, i64::MAX, i64::MIN + 1, i64::MAX - 1, 0] {
        w.record(&rec(500, Some(1)), t);
        w.record_malformed(t);
        let _ = w.snapshot(t);
        let _ = w.snapshot(t.wrapping_add(1));
    }
    let mut w = WindowStats::new(Duration::MAX, StatusSet::default());
    w.record(&rec(500, Some(1)), i64::MAX);
    let _ = w.snapshot(i64::MIN);
    let mut w = WindowStats::new(Duration::ZERO, StatusSet::default());
    w.record(&rec(500, Some(1)), 5);
    assert_eq!(w.snapshot(5).requests, 1);
}

/// Memory is fixed by construction: 10 million records over hours of time, any latency, leave the
/// heap footprint and the slot count exactly as they were after `new`.
#[test]
fn memory_is_independent_of_volume() {
    let mut w = stats_30s();
    let before = w.heap_bytes();
    assert_eq!(w.slots.len(), SLOTS);
    let mut x = 88172645463325252u64;
    for i in 0..10_000_000i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let status = if x % 50 == 0 { 502 } else { 200 };
        // Mostly ms-range latencies, sometimes absurd ones.
        let lat = if x % 1000 == 0 { x } else { x % 2_000_000 };
        w.record(&rec(status, Some(lat)), i / 2); // ~1.4 hours of log time
    }
    let s = w.snapshot(5_000_000);
    assert_eq!(w.heap_bytes(), before);
    assert_eq!(w.slots.len(), SLOTS);
    // Slots [4972.5 s, 5002.5 s) at 2000 records per second of log time.
    assert_eq!(s.requests, 55_000);
    assert!(before < 2 * 1024 * 1024, "{before} bytes");
}

proptest::proptest! {
    // Histograms are slow in debug builds: fewer, longer cases.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// The running total gives exactly the percentiles of merging the window's slots, and the
    /// head slot's cached span the slot division gives, whatever the order of records and
    /// snapshots (late records, clock jumps back, idle gaps, many records in one slot).
    #[test]
    fn running_total_matches_merging_the_slots(
        steps in proptest::collection::vec((proptest::prop_oneof![-40_000i64..60_000, -3_000i64..3_000, 0i64..3], 0u64..2_000_000, proptest::bool::ANY), 1..300)
    ) {
        let mut fast = stats_30s();
        let mut slow = stats_30s();
        slow.force_merge = true;
        let mut t = 1_700_000_000_000i64;
        for (dt, us, snap) in steps {
            t += dt;
            let r = rec(200, Some(us));
            fast.record(&r, t);
            slow.record(&r, t);
            if snap {
                let now = t + dt.abs() / 2;
                proptest::prop_assert_eq!(fast.snapshot(now), slow.snapshot(now));
            }
        }
        proptest::prop_assert_eq!(
            (fast.late(), fast.clock_resets()),
            (slow.late(), slow.clock_resets())
        );
    }
}
