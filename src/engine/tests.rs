use super::*;
use crate::route::Prefix;
use std::time::Duration;

/// Engine inputs built directly (no YAML): checks named with their rise/fall, one VIP "web".
struct Setup {
    checks: Vec<CheckSpec>,
    vips: Vec<VipSpec>,
}

impl Setup {
    fn engine(&self, now: Instant) -> Engine {
        Engine::new(&self.checks, &self.vips, now)
    }
}

fn config(checks: &[(&str, u32, u32)], vip_checks: &[&str], require: Require) -> Setup {
    let checks: Vec<CheckSpec> = checks
        .iter()
        .map(|&(name, rise, fall)| CheckSpec {
            name: name.into(),
            kind: "tcp",
            rise,
            fall,
        })
        .collect();
    let idx = vip_checks
        .iter()
        .map(|n| checks.iter().position(|c| &*c.name == *n).unwrap())
        .collect();
    let mut vip = VipSpec::new("web", vec!["203.0.113.10/32".parse().unwrap()], idx);
    vip.policy_mut().require = require;
    Setup {
        checks,
        vips: vec![vip],
    }
}

fn obs(check: usize, ok: bool) -> Observation {
    Observation {
        check,
        ok,
        detail: if ok {
            "connected".into()
        } else {
            "connect refused".into()
        },
        definitive: false,
    }
}

#[test]
fn nothing_is_announced_until_rise() {
    let t0 = Instant::now();
    let mut e = config(&[("web", 2, 2)], &["web"], Require::All).engine(t0);
    assert!(e.desired().routes.is_empty());
    assert!(e
        .desired()
        .reason_for("web")
        .contains("waiting for checks web (rise 2)"));
    assert!(e.observe(&obs(0, true), t0).is_empty());
    let d = e.observe(&obs(0, true), t0 + Duration::from_secs(1));
    assert_eq!(
        d,
        vec![Decision {
            vip: "web".into(),
            from: VipState::Withdrawn,
            to: VipState::Announced,
            reason: "check web passed 2/2".into(),
            cause: None,
        }]
    );
    assert_eq!(e.desired().routes.len(), 1);
}

#[test]
fn withdraw_reason_names_the_check_and_the_failure() {
    let t0 = Instant::now();
    let mut e = config(&[("web", 1, 2)], &["web"], Require::All).engine(t0);
    e.observe(&obs(0, true), t0);
    assert!(e.observe(&obs(0, false), t0).is_empty());
    let d = e.observe(&obs(0, false), t0);
    assert_eq!(d[0].reason, "check web failed 2/2: connect refused");
    assert!(!d[0].announce());
    assert!(e.desired().routes.is_empty());
    assert_eq!(
        e.desired().reason_for("web"),
        "check web failed 2/2: connect refused"
    );
}

#[test]
fn a_definitive_failure_withdraws_at_once_with_its_reason() {
    let t0 = Instant::now();
    let mut e = config(&[("web", 1, 3)], &["web"], Require::All).engine(t0);
    e.observe(&obs(0, true), t0);
    let exited = Observation {
        check: 0,
        ok: false,
        detail: "process 42 (pid file /run/nginx.pid) has exited".into(),
        definitive: true,
    };
    let d = e.observe(&exited, t0);
    assert_eq!(d.len(), 1, "no fall confirmations awaited: {d:?}");
    assert!(!d[0].announce());
    assert_eq!(
        d[0].reason,
        "check web failed definitively (fall 3 not awaited): process 42 (pid file /run/nginx.pid) has exited"
    );
}

#[test]
fn require_modes() {
    let t0 = Instant::now();
    let checks = [("a", 1, 1), ("b", 1, 1), ("c", 1, 1)];
    for (require, ups_needed) in [
        (Require::All, 3),
        (Require::Any, 1),
        (Require::AtLeast(2), 2),
    ] {
        let mut e = config(&checks, &["a", "b", "c"], require).engine(t0);
        let mut announced_at = None;
        for i in 0..3 {
            if !e.observe(&obs(i, true), t0).is_empty() {
                announced_at = Some(i + 1);
            }
        }
        assert_eq!(announced_at, Some(ups_needed), "require {require}");
    }
    let mut e = config(&checks, &["a", "b", "c"], Require::All).engine(t0);
    for i in 0..3 {
        e.observe(&obs(i, true), t0);
    }
    let d = e.observe(&obs(1, false), t0);
    assert_eq!(
        d[0].reason,
        "check b failed 1/1: connect refused (require all: 2/3 checks up)"
    );
}

/// Deterministic pseudo-random bits (xorshift) so simulations repeat exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn hours_of_noise_below_fall_make_zero_route_changes() {
    let t0 = Instant::now();
    let mut e = config(&[("web", 3, 3)], &["web"], Require::All).engine(t0);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut changes = 0;
    let mut t = t0;
    for _ in 0..3 {
        changes += e.observe(&obs(0, true), t).len();
    }
    assert_eq!(changes, 1);
    // Six simulated hours at 1 s: up to 2 consecutive failures (fall is 3), 30% failure rate.
    let mut run = 0;
    for _ in 0..6 * 3600 {
        t += Duration::from_secs(1);
        let fail = rng.next() % 10 < 3 && run < 2;
        run = if fail { run + 1 } else { 0 };
        changes += e.observe(&obs(0, !fail), t).len();
    }
    assert_eq!(changes, 1, "noise below fall must never withdraw");
}

#[test]
fn a_real_outage_trips_after_fall_and_recovers_after_rise() {
    let t0 = Instant::now();
    let mut e = config(&[("web", 2, 3)], &["web"], Require::All).engine(t0);
    let mut log = Vec::new();
    let mut t = t0;
    // 10 min healthy, 1 min down, 10 min healthy, at 1 s.
    for s in 0..(21 * 60) {
        t += Duration::from_secs(1);
        let ok = !(600..660).contains(&s);
        for d in e.observe(&obs(0, ok), t) {
            log.push((s, d.announce()));
        }
    }
    assert_eq!(log, vec![(1, true), (602, false), (661, true)]);
}

// ---- traffic conditions, hold-down, probation, dampening ----

fn error_ratio_condition(trip: u64, clear: u64) -> ConditionSpec {
    ConditionSpec {
        signal: "web_log.error_ratio".into(),
        threshold: Threshold::Fixed {
            above: 0.05,
            restore_below: 0.01,
        },
        trip_after: Duration::from_secs(trip),
        clear_after: Duration::from_secs(clear),
        min_requests: Some(50),
        unit: Unit::Ratio,
    }
}

/// A VIP with one always-passing check (rise 1) and the given policy, already announced at t0.
fn announced_with(
    conds: Vec<ConditionSpec>,
    hold_down: u64,
    damp: Option<DampeningSpec>,
    t0: Instant,
) -> Engine {
    let mut c = config(&[("web", 1, 1)], &["web"], Require::All);
    c.vips[0].policy_mut().withdraw_when = conds;
    c.vips[0].policy_mut().hold_down = Duration::from_secs(hold_down);
    c.vips[0].policy_mut().dampening = damp;
    let mut e = c.engine(t0);
    assert_eq!(e.observe(&obs(0, true), t0).len(), 1);
    e
}

fn reading(v: f64, n: u64) -> Reading {
    Reading {
        value: Some(v),
        requests: Some(n),
    }
}

#[test]
fn six_hours_of_noise_around_the_threshold_make_zero_route_changes() {
    let t0 = Instant::now();
    let mut e = announced_with(vec![error_ratio_condition(10, 30)], 30, None, t0);
    let mut rng = Rng(42);
    let mut changes = 0;
    for s in 1..6 * 3600u64 {
        // Mostly 1-4%; spikes above 5% last at most 9 s (shorter than `for`).
        let spike = (s % 600) < 9 && rng.next() % 2 == 0;
        let v = if spike {
            0.08
        } else {
            0.01 + (rng.next() % 300) as f64 / 10_000.0
        };
        let r = reading(v, 1000);
        changes += e.tick(&|_| r, t0 + Duration::from_secs(s)).len();
    }
    assert_eq!(changes, 0);
}

#[test]
fn a_step_change_trips_within_for_plus_one_evaluation() {
    let t0 = Instant::now();
    let mut e = announced_with(vec![error_ratio_condition(10, 30)], 30, None, t0);
    let mut withdrawn_at = None;
    for s in 1..100u64 {
        let v = if s >= 20 { 0.124 } else { 0.002 };
        for d in e.tick(&|_| reading(v, 1843), t0 + Duration::from_secs(s)) {
            assert!(!d.announce());
            assert_eq!(
                d.reason,
                "web_log.error_ratio 0.124 > 0.050 for 10s (1843 requests)"
            );
            // The same figures, structured: the text is formatted from them.
            let c = d
                .cause
                .as_ref()
                .expect("a condition's withdrawal carries its cause");
            assert_eq!(c.to_string(), d.reason);
            assert_eq!(
                (
                    c.signal.as_str(),
                    c.value,
                    c.threshold,
                    c.held_for,
                    c.requests,
                    c.tripped
                ),
                (
                    "web_log.error_ratio",
                    0.124,
                    0.05,
                    Duration::from_secs(10),
                    Some(1843),
                    true
                )
            );
            withdrawn_at.get_or_insert(s);
        }
    }
    let at = withdrawn_at.expect("must trip");
    assert!((30..=31).contains(&at), "tripped at {at}");
}

#[test]
fn probation_after_hold_down_then_dampening_suppresses_and_releases_on_time() {
    let t0 = Instant::now();
    let damp = DampeningSpec {
        half_life: Duration::from_secs(300),
        suppress: 3000.0,
        reuse: 750.0,
        penalty: 1000.0,
        max_suppress: Duration::from_secs(3600),
    };
    let mut e = announced_with(vec![error_ratio_condition(10, 30)], 30, Some(damp), t0);
    let mut events: Vec<(u64, bool, String)> = Vec::new();
    // The service is broken for good: whenever announced it gets traffic with 50% errors; when
    // withdrawn it gets none (too few requests in the window).
    for s in 1..4 * 3600u64 {
        let announced = e.vips()[0].healthy;
        let r = if announced {
            reading(0.5, 500)
        } else {
            reading(0.0, 3)
        };
        for d in e.tick(&|_| r, t0 + Duration::from_secs(s)) {
            events.push((s, d.announce(), d.reason));
        }
    }
    let times: Vec<(u64, bool)> = events.iter().map(|(s, a, _)| (*s, *a)).collect();
    // Trip at 11 (10 s dwell), hold-down 30 s, probation re-announce, trip again 11 s later...
    assert_eq!(
        &times[..4],
        &[(11, false), (41, true), (52, false), (82, true)]
    );
    assert!(
        events[1].2.starts_with("probation: hold-down 30s over"),
        "{}",
        events[1].2
    );
    // Fourth withdrawal pushes the penalty over 3000: suppressed.
    let (t4, _, why) = &events[6];
    assert!(why.contains("flap dampening suppresses it"), "{why}");
    // Release when the penalty decays below 750: computed from the penalty at t4.
    let mut d = Dampening::new(damp);
    for (s, a, _) in &events[..7] {
        if !a {
            d.withdrawn(t0 + Duration::from_secs(*s));
        }
    }
    let reuse = d
        .reuse_at(t0 + Duration::from_secs(*t4))
        .unwrap()
        .duration_since(t0)
        .as_secs();
    let (t5, a5, _) = &events[7];
    assert!(*a5);
    assert!(
        *t5 == reuse || *t5 == reuse + 1,
        "released at {t5}, computed {reuse}"
    );
    // The same broken service without dampening flaps every hold-down + for (~41 s).
    let mut undamped = announced_with(vec![error_ratio_condition(10, 30)], 30, None, t0);
    let mut undamped_changes = 0;
    for s in 1..4 * 3600u64 {
        let r = if undamped.vips()[0].healthy {
            reading(0.5, 500)
        } else {
            reading(0.0, 3)
        };
        undamped_changes += undamped.tick(&|_| r, t0 + Duration::from_secs(s)).len();
    }
    assert!(
        events.len() * 4 < undamped_changes,
        "dampening must cut the flapping: {} vs {undamped_changes} changes in 4 h",
        events.len()
    );
}

#[test]
fn a_condition_with_fresh_bad_evidence_keeps_the_vip_down_past_hold_down() {
    let t0 = Instant::now();
    let mut e = announced_with(vec![error_ratio_condition(5, 30)], 30, None, t0);
    let mut changes = Vec::new();
    for s in 1..600u64 {
        // Traffic keeps arriving (e.g. established flows) and stays bad.
        for d in e.tick(&|_| reading(0.3, 400), t0 + Duration::from_secs(s)) {
            changes.push((s, d.announce()));
        }
    }
    assert_eq!(changes, vec![(6, false)]);
}

#[test]
fn recovery_from_evidence_needs_restore_for_below_the_lower_threshold() {
    let t0 = Instant::now();
    let mut e = announced_with(vec![error_ratio_condition(5, 30)], 10, None, t0);
    let mut changes = Vec::new();
    for s in 1..300u64 {
        let v = match s {
            ..=50 => 0.3,
            51..=100 => 0.03, // in the band: not yet clearing
            _ => 0.002,
        };
        for d in e.tick(&|_| reading(v, 400), t0 + Duration::from_secs(s)) {
            if d.announce() {
                let c = d
                    .cause
                    .clone()
                    .expect("a restore by evidence carries its cause");
                assert_eq!(
                    (c.tripped, c.threshold, c.requests),
                    (false, 0.01, Some(400))
                );
            }
            changes.push((s, d.announce(), d.reason));
        }
    }
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!((changes[1].0, changes[1].1), (131, true));
    assert_eq!(
        changes[1].2,
        "web_log.error_ratio 0.002 < 0.010 for 30s (400 requests)"
    );
}

#[test]
fn on_missing_modes() {
    let t0 = Instant::now();
    let none = Reading {
        value: None,
        requests: None,
    };
    for (mode, expect_withdraw) in [
        (OnMissing::Hold, false),
        (OnMissing::Ignore, false),
        (OnMissing::Withdraw, true),
    ] {
        let mut c = config(&[("web", 1, 1)], &["web"], Require::All);
        c.vips[0].policy_mut().withdraw_when = vec![error_ratio_condition(5, 5)];
        c.vips[0].policy_mut().on_missing = mode;
        let mut e = c.engine(t0);
        e.observe(&obs(0, true), t0);
        let d = e.tick(&|_| none, t0 + Duration::from_secs(1));
        assert_eq!(!d.is_empty(), expect_withdraw, "{mode:?}");
        if expect_withdraw {
            assert_eq!(
                d[0].reason,
                "web_log.error_ratio has no data (on_missing: withdraw)"
            );
            // Data returns and is fine: announced again.
            let d = e.tick(&|_| reading(0.0, 500), t0 + Duration::from_secs(2));
            assert!(d[0].announce());
        }
    }
}

// ---- lifecycle through the engine: drains, maintenance, stop ----

fn graceful_engine(t0: Instant) -> Engine {
    let mut c = config(&[("web", 1, 1)], &["web"], Require::All);
    c.vips[0].policy_mut().lifecycle = LifecycleSpec {
        drain: DrainStrategy::Graceful,
        drain_period: Duration::from_secs(30),
        on_unhealthy: OnUnhealthy::Withdraw,
        shutdown: DrainStrategy::Graceful,
        ..LifecycleSpec::default()
    };
    c.vips[0].policy_mut().attrs.med = Some(100);
    c.vips[0].policy_mut().depreference = Depreference {
        med: Some(1000),
        local_pref: None,
        as_path_prepend: 2,
    };
    let mut e = c.engine(t0);
    e.observe(&obs(0, true), t0);
    e
}

#[test]
fn a_connection_aware_stop_asks_for_counts_and_ends_on_them() {
    let t0 = Instant::now();
    let ms = |x| t0 + Duration::from_millis(x);
    let mut c = config(&[("web", 1, 1)], &["web"], Require::All);
    c.vips[0].policy_mut().lifecycle = LifecycleSpec {
        drain: DrainStrategy::Graceful,
        shutdown: DrainStrategy::Graceful,
        drain_until_connections: Some(0),
        ..LifecycleSpec::default()
    };
    let mut e = c.engine(t0);
    e.observe(&obs(0, true), t0);
    assert!(e.counting_connections().is_empty(), "nothing drains yet");
    let d = e.begin_shutdown("vipwarden stopping (SIGTERM)", ms(0));
    assert_eq!(d[0].to, VipState::Draining);
    let want = e.counting_connections();
    assert_eq!(want.len(), 1);
    assert_eq!(&*want[0].vip, "web");
    assert_eq!(want[0].idle, None);
    assert!(e
        .observe_connections(
            "web",
            Connections::Count {
                holding: 3,
                silent: 0
            },
            ms(500)
        )
        .is_empty());
    assert!(e.stop_deadline().is_some());
    assert!(e
        .observe_connections(
            "nope",
            Connections::Count {
                holding: 0,
                silent: 0
            },
            ms(600)
        )
        .is_empty());
    let d = e.observe_connections(
        "web",
        Connections::Count {
            holding: 0,
            silent: 0,
        },
        ms(2300),
    );
    assert_eq!(d[0].to, VipState::Withdrawn);
    assert!(
        d[0].reason
            .ends_with("(drain: 0 connections left after 2.3 s)"),
        "{}",
        d[0].reason
    );
    assert_eq!(e.stop_deadline(), None, "the stop need not wait any longer");
    assert!(e.desired().routes.is_empty());
    assert!(e.counting_connections().is_empty());
}

#[test]
fn a_graceful_drain_publishes_graceful_shutdown_and_de_preference_then_withdraws() {
    let t0 = Instant::now();
    let s = |x| t0 + Duration::from_secs(x);
    let mut e = graceful_engine(t0);
    let d = e.sync_maintenance(
        &|v| (v == "web").then(|| ("drained via API: kernel upgrade".into(), false)),
        s(1),
    );
    assert_eq!(
        (d[0].from, d[0].to),
        (VipState::Announced, VipState::Draining)
    );
    let r = e.desired();
    let attrs = &r.routes.values().next().unwrap().attrs;
    assert!(attrs
        .communities
        .contains(&crate::route::Community::GRACEFUL_SHUTDOWN));
    assert_eq!((attrs.med, attrs.as_path_prepend), (Some(1000), 2));
    assert!(e
        .tick(
            &|_| Reading {
                value: None,
                requests: None
            },
            s(30)
        )
        .is_empty());
    let d = e.tick(
        &|_| Reading {
            value: None,
            requests: None,
        },
        s(31),
    );
    assert_eq!(d[0].to, VipState::Maintenance);
    assert!(e.desired().routes.is_empty());
    // Checks keep running in maintenance; undrain announces at once with plain attributes.
    e.observe(&obs(0, true), s(32));
    let d = e.sync_maintenance(&|_| None, s(40));
    assert_eq!(d[0].to, VipState::Announced);
    assert_eq!(
        e.desired().routes.values().next().unwrap().attrs.med,
        Some(100)
    );
}

#[test]
fn unknown_vip_changes_nothing() {
    let t0 = Instant::now();
    let mut e = graceful_engine(t0);
    assert!(e.vip("nope").is_none() && !e.has_vip("nope"));
    assert!(e.vip("web").is_some() && e.has_vip("web"));
    assert!(e
        .sync_maintenance(&|v| (v == "nope").then(|| ("x".into(), false)), t0)
        .is_empty());
    assert_eq!(e.desired().routes.len(), 1);
}

/// Cost must grow with the work: each check result touches only its own VIPs, lookups are by
/// name. 100k VIPs with a check each come up in one pass; the quadratic version took minutes.
#[test]
fn a_hundred_thousand_vips_come_up_in_linear_time() {
    const N: usize = 100_000;
    let t0 = Instant::now();
    let checks: Vec<CheckSpec> = (0..N)
        .map(|i| CheckSpec {
            name: format!("c{i}").into(),
            kind: "tcp",
            rise: 1,
            fall: 1,
        })
        .collect();
    let vips: Vec<VipSpec> = (0..N)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0x0a00_0000u32 + i as u32);
            VipSpec::new(
                &format!("v{i}"),
                vec![Prefix::new(a.into(), 32).unwrap()],
                vec![i],
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let mut e = Engine::new(&checks, &vips, t0);
    let mut decisions = 0;
    for i in 0..N {
        decisions += e.observe(&obs(i, true), t0).len();
    }
    assert_eq!(decisions, N);
    assert!(e
        .vip("v99999")
        .is_some_and(|v| v.life.state == VipState::Announced));
    assert_eq!(e.desired().routes.len(), N);
    let took = started.elapsed();
    // Debug build on a loaded 2-core machine: ~1 s; quadratic work would take minutes.
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn planned_stop_drains_then_everything_is_withdrawn() {
    let t0 = Instant::now();
    let s = |x| t0 + Duration::from_secs(x);
    let mut e = graceful_engine(t0);
    let d = e.begin_shutdown("vipwarden stopping (SIGTERM)", s(5));
    assert_eq!(d[0].to, VipState::Draining);
    assert_eq!(e.stop_deadline(), Some(s(35)));
    // Checks failing during the stop drain do not cut it short into a different reason.
    let d = e.tick(
        &|_| Reading {
            value: None,
            requests: None,
        },
        s(35),
    );
    assert_eq!(d[0].to, VipState::Withdrawn);
    assert!(
        d[0].reason
            .starts_with("vipwarden stopping (SIGTERM) (drain period 30s over)"),
        "{}",
        d[0].reason
    );
    assert_eq!(e.stop_deadline(), None);
    assert!(e.desired().routes.is_empty());
}

#[test]
fn reload_carries_state_so_unchanged_vips_do_not_move() {
    let t0 = Instant::now();
    let mut old = graceful_engine(t0);
    old.sync_maintenance(&|_| Some(("ops".into(), false)), t0);
    let mut c = config(&[("web", 1, 1)], &["web"], Require::All);
    c.vips[0].policy_mut().attrs.med = Some(200);
    let mut new = c.engine(t0);
    let d = new.carry_over(&old, t0 + Duration::from_secs(1));
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(new.vips()[0].life.out.maintenance.as_deref(), Some("ops"));

    // Adding a check that has not proven itself withdraws the VIP (require all), with the reason.
    let mut up = graceful_engine(t0);
    up.sync_maintenance(&|_| None, t0);
    let c2 = config(&[("web", 1, 1), ("db", 2, 2)], &["web", "db"], Require::All);
    let mut new = c2.engine(t0);
    let d = new.carry_over(&up, t0);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].to, VipState::Withdrawn);
    assert!(
        d[0].reason
            .starts_with("configuration reload: 1/2 checks up"),
        "{}",
        d[0].reason
    );
}
