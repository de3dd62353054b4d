use super::*;
use crate::config::parse;
use std::path::Path;
use std::time::Duration;

fn config(checks: &[(&str, u32, u32)], vip_checks: &[&str], require: &str) -> Config {
    let mut y = String::from("router_id: 192.0.2.1\nlocal_as: 65101\npeers:\n  - {name: t, address: 192.0.2.2, remote_as: 65000}\nchecks:\n");
    for (i, (name, rise, fall)) in checks.iter().enumerate() {
        y += &format!("  - {{name: {name}, type: tcp, target: '203.0.113.10:{}', rise: {rise}, fall: {fall}}}\n", 80 + i);
    }
    y += &format!("vips:\n  - name: web\n    prefixes: [203.0.113.10/32]\n    checks: [{}]\n    require: {require}\n", vip_checks.join(", "));
    parse(Path::new("t.yaml"), &y).unwrap()
}

fn obs(check: usize, ok: bool) -> Observation {
    Observation { check, ok, detail: if ok { "connected".into() } else { "connect refused".into() } }
}

#[test]
fn nothing_is_announced_until_rise() {
    let t0 = Instant::now();
    let mut e = Engine::new(&config(&[("web", 2, 2)], &["web"], "all"), t0);
    assert!(e.desired().routes.is_empty());
    assert!(e.desired().reason_for("web").contains("waiting for checks web (rise 2)"));
    assert!(e.observe(&obs(0, true), t0).is_empty());
    let d = e.observe(&obs(0, true), t0 + Duration::from_secs(1));
    assert_eq!(d, vec![Decision { vip: "web".into(), announce: true, reason: "check web passed 2/2".into() }]);
    assert_eq!(e.desired().routes.len(), 1);
}

#[test]
fn withdraw_reason_names_the_check_and_the_failure() {
    let t0 = Instant::now();
    let mut e = Engine::new(&config(&[("web", 1, 2)], &["web"], "all"), t0);
    e.observe(&obs(0, true), t0);
    assert!(e.observe(&obs(0, false), t0).is_empty());
    let d = e.observe(&obs(0, false), t0);
    assert_eq!(d[0].reason, "check web failed 2/2: connect refused");
    assert!(!d[0].announce);
    assert!(e.desired().routes.is_empty());
    assert_eq!(e.desired().reason_for("web"), "check web failed 2/2: connect refused");
}

#[test]
fn require_modes() {
    let t0 = Instant::now();
    let checks = [("a", 1, 1), ("b", 1, 1), ("c", 1, 1)];
    for (require, ups_needed) in [("all", 3), ("any", 1), ("{at_least: 2}", 2)] {
        let mut e = Engine::new(&config(&checks, &["a", "b", "c"], require), t0);
        let mut announced_at = None;
        for i in 0..3 {
            if !e.observe(&obs(i, true), t0).is_empty() {
                announced_at = Some(i + 1);
            }
        }
        assert_eq!(announced_at, Some(ups_needed), "require {require}");
    }
    let mut e = Engine::new(&config(&checks, &["a", "b", "c"], "all"), t0);
    for i in 0..3 {
        e.observe(&obs(i, true), t0);
    }
    let d = e.observe(&obs(1, false), t0);
    assert_eq!(d[0].reason, "check b failed 1/1: connect refused (require all: 2/3 checks up)");
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
    let mut e = Engine::new(&config(&[("web", 3, 3)], &["web"], "all"), t0);
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
    let mut e = Engine::new(&config(&[("web", 2, 3)], &["web"], "all"), t0);
    let mut log = Vec::new();
    let mut t = t0;
    // 10 min healthy, 1 min down, 10 min healthy, at 1 s.
    for s in 0..(21 * 60) {
        t += Duration::from_secs(1);
        let ok = !(600..660).contains(&s);
        for d in e.observe(&obs(0, ok), t) {
            log.push((s, d.announce));
        }
    }
    assert_eq!(log, vec![(1, true), (602, false), (661, true)]);
}
