//! `fleet:` and `vips[].guard` (issue 8).

use super::*;
use crate::fleet::{GuardSpec, WhenBlind};
use std::path::Path;
use std::time::Duration;

const BASE: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers:
  - name: tor1
    address: 198.51.100.1
    remote_as: 65000
checks:
  - name: web
    type: tcp
    target: 203.0.113.10:80
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
"#;

#[test]
fn no_fleet_no_guard_changes_nothing() {
    let c = parse(Path::new("vw.yaml"), BASE).unwrap();
    assert!(c.fleet.is_none());
    assert!(c.vips[0].spec.policy.guard.is_none());
    assert!(c.vips[0].spec.policy.attrs.large_communities.is_empty());
}

#[test]
fn guard_and_fleet_as_in_the_issue() {
    let text = format!(
        "{BASE}    drain: graceful\n    drain_period: 5s\n    guard:\n      min_healthy_others: 1\n      when_blind: hold\nfleet:\n  unhealthy_community: \"65101:666\"\n  settle: 3s\n"
    );
    let c = parse(Path::new("vw.yaml"), &text).unwrap();
    let f = c.fleet.as_ref().unwrap();
    assert_eq!(f.unhealthy_community.to_string(), "65101:666");
    assert_eq!(f.settle, Duration::from_secs(3));
    // Settle alone: the graceful drain (5 s here) runs inside the marked phase, and counting
    // waits for both.
    assert_eq!(
        c.vips[0].spec.policy.guard,
        Some(GuardSpec {
            min_healthy_others: 1,
            when_blind: WhenBlind::Hold,
            settle: Duration::from_secs(3),
            dwell: Duration::from_secs(1),
        })
    );
    // Identity: local_as:0x5657:router_id.
    assert_eq!(
        c.vips[0].spec.policy.attrs.large_communities[0].to_string(),
        format!(
            "65101:22103:{}",
            u32::from("198.51.100.2".parse::<std::net::Ipv4Addr>().unwrap())
        )
    );
    assert!(c.fleet_view().is_some());
}

#[test]
fn guard_without_fleet_uses_documented_defaults() {
    let text = format!("{BASE}    guard: {{}}\n");
    let c = parse(Path::new("vw.yaml"), &text).unwrap();
    let f = c.fleet.as_ref().unwrap();
    assert_eq!(f.unhealthy_community.to_string(), "65101:666");
    assert_eq!(f.settle, Duration::from_secs(3));
    let g = c.vips[0].spec.policy.guard.unwrap();
    // Doubt holds: a ToR without ADD-PATH makes a guarded VIP hold unless told otherwise.
    assert_eq!((g.min_healthy_others, g.when_blind), (1, WhenBlind::Hold));
    assert_eq!(f.fail_open_dwell, Duration::from_secs(1));
    assert_eq!(f.stop_hold_limit, Duration::from_secs(60));
}

#[test]
fn bad_guard_and_fleet_values_name_their_path() {
    let text = format!(
        "{BASE}    guard:\n      when_blind: maybe\nfleet:\n  unhealthy_community: \"70000:1\"\n  settle: 3\n"
    );
    let e = match parse(Path::new("vw.yaml"), &text) {
        Ok(_) => panic!("accepted"),
        Err(e) => {
            e.0.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    assert!(
        e.contains("vips[0].guard.when_blind \"maybe\" must be leave or hold"),
        "{e}"
    );
    assert!(e.contains("fleet.unhealthy_community"), "{e}");
    assert!(e.contains("fleet.settle"), "{e}");
    let text = format!("{BASE}    guard:\n      min_healthy_others: 1\n      extra: 2\n");
    assert!(parse(Path::new("vw.yaml"), &text).is_err());
}

fn errors_of(text: &str) -> String {
    match parse(Path::new("vw.yaml"), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            e.0.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

#[test]
fn a_guard_that_cannot_be_safe_is_an_error() {
    // settle 0: nodes leaving together would count each other healthy.
    let e = errors_of(&format!("{BASE}    guard: {{}}\nfleet:\n  settle: 0s\n"));
    assert!(
        e.contains("vw.yaml:") && e.contains("fleet.settle is 0 with a guard"),
        "{e}"
    );
    // A user large community in the fleet's identity or mark space could pose as a node.
    for c in ["65101:22103:1", "65101:22104:7"] {
        let e = errors_of(&format!("{BASE}    large_communities: [\"{c}\"]\n"));
        assert!(e.contains("is in the fleet's identity space"), "{e}");
    }
    // The new keys parse, with units.
    let text =
        format!("{BASE}    guard: {{}}\nfleet:\n  fail_open_dwell: 2s\n  stop_hold_limit: 45s\n");
    let c = parse(Path::new("vw.yaml"), &text).unwrap();
    let f = c.fleet.unwrap();
    assert_eq!(
        (f.fail_open_dwell, f.stop_hold_limit),
        (Duration::from_secs(2), Duration::from_secs(45))
    );
    assert_eq!(
        c.vips[0].spec.policy.guard.unwrap().dwell,
        Duration::from_secs(2)
    );
}
