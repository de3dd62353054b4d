//! The weight through the engine: announce at `min`, ramp, scale on a condition, `min` while
//! draining, carried on the route's attributes.

use super::*;
use crate::engine::condition::{Threshold, Unit};
use std::time::Duration;

fn engine(t0: Instant) -> Engine {
    let checks = [CheckSpec {
        name: "web".into(),
        kind: "tcp",
        rise: 1,
        fall: 1,
    }];
    let mut vip = VipSpec::new("web", vec!["203.0.113.10/32".parse().unwrap()], vec![0]);
    vip.policy_mut().lifecycle = LifecycleSpec {
        drain: DrainStrategy::Graceful,
        shutdown: DrainStrategy::Graceful,
        ..LifecycleSpec::default()
    };
    vip.policy_mut().weight = Some(WeightSpec {
        capacity: 100e6,
        slow_start: Duration::from_secs(4),
        step: Duration::from_secs(1),
        min: 0.2,
        scale_when: vec![ScaleSpec {
            condition: ConditionSpec {
                signal: "lat.p99".into(),
                threshold: Threshold::Fixed {
                    above: 200.0,
                    restore_below: 150.0,
                },
                trip_after: Duration::from_secs(2),
                clear_after: Duration::from_secs(2),
                min_requests: None,
                unit: Unit::Plain,
            },
            scale: 0.5,
        }],
    });
    Engine::new(&checks, [&vip], t0)
}

fn bw(e: &Engine) -> Option<u64> {
    e.desired()
        .routes
        .values()
        .next()
        .and_then(|r| r.attrs.link_bandwidth)
}

#[test]
fn announce_ramp_scale_and_drain() {
    let t0 = Instant::now();
    let s = |x: u64| t0 + Duration::from_secs(x);
    let lat = std::cell::Cell::new(100.0);
    let read = |_: &str| Reading {
        value: Some(lat.get()),
        requests: None,
    };
    let mut e = engine(t0);
    assert_eq!(bw(&e), None, "nothing announced");
    let ok = Observation {
        check: 0,
        ok: true,
        detail: "connected".into(),
        definitive: false,
    };
    e.observe(&ok, t0);
    assert_eq!(bw(&e), Some(20_000_000), "announced at min");
    let c = e.take_weight_changes();
    assert_eq!((c.len(), c[0].1.to), (1, 20_000_000));
    assert_eq!(e.next_deadline(), Some(s(1)), "the next ramp step");
    let mut timeline = Vec::new();
    for x in 1..=6 {
        e.tick(&read, s(x));
        timeline.push(bw(&e).unwrap() / 1_000_000);
    }
    assert_eq!(timeline, vec![40, 60, 80, 100, 100, 100]);
    assert_eq!(e.take_weight_changes().len(), 4);
    // Latency above 200 for the 2 s dwell: half.
    lat.set(300.0);
    e.evaluate_signals(&read, s(10));
    assert_eq!(bw(&e), Some(100_000_000));
    assert_eq!(e.next_deadline(), Some(s(12)), "the dwell's end");
    e.evaluate_signals(&read, s(12));
    assert_eq!(bw(&e), Some(50_000_000));
    let c = e.take_weight_changes();
    assert_eq!(c.len(), 1);
    assert!(
        c[0].1.reason.contains("x50% while lat.p99"),
        "{}",
        c[0].1.reason
    );
    assert_eq!(c[0].1.cause.as_ref().map(|c| c.value), Some(300.0));
    // Inside the band (150..200): stays halved.
    lat.set(170.0);
    e.evaluate_signals(&read, s(20));
    assert_eq!(bw(&e), Some(50_000_000));
    // A planned stop drains: min at once, with GRACEFUL_SHUTDOWN.
    e.begin_shutdown("stop", s(21));
    assert_eq!(bw(&e), Some(20_000_000));
    assert_eq!(e.take_weight_changes().len(), 1);
}

#[test]
fn reload_keeps_the_weight_state() {
    let t0 = Instant::now();
    let mut e = engine(t0);
    let ok = Observation {
        check: 0,
        ok: true,
        detail: "connected".into(),
        definitive: false,
    };
    e.observe(&ok, t0);
    let read = |_: &str| Reading {
        value: None,
        requests: None,
    };
    e.tick(&read, t0 + Duration::from_secs(10));
    assert_eq!(bw(&e), Some(100_000_000));
    let mut new = engine(t0);
    new.carry_over(&e, t0 + Duration::from_secs(11));
    assert_eq!(bw(&new), Some(100_000_000), "no new slow start on reload");
}
