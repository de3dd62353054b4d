//! Issue 22: `status` shows a transition as soon as it happens, not at the next policy tick
//! (up to a second later: `status` said `draining` after the router had dropped the route).

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::checks::ProbeResult;

const YAML: &str = "router_id: 192.0.2.10
local_as: 65101
peers:
  - name: tor1
    address: 127.0.0.1
    port: 1
    remote_as: 65000
checks:
  - name: web
    type: tcp
    target: 127.0.0.1:1
    rise: 2
    fall: 2
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
";

fn sample(ok: bool) -> CheckSample {
    CheckSample {
        check: 0,
        result: ProbeResult {
            ok,
            detail: "stand-in".into(),
            elapsed: Duration::from_millis(1),
            definitive: false,
        },
        at: Instant::now(),
    }
}

#[tokio::test]
async fn a_check_transition_and_its_route_are_in_status_at_once() {
    let state = tempfile::tempdir().unwrap();
    let text = format!("{YAML}state_dir: {}\n", state.path().display());
    let cfg = crate::config::parse(Path::new("vw.yaml"), &text).unwrap();
    let (mut daemon, control) = Daemon::start(
        Options {
            config: cfg,
            config_path: state.path().join("vw.yaml"),
        },
        None,
    );
    let mut status = control.handle.status.clone();
    daemon.publish_status();
    status.borrow_and_update();
    // Past the last publication's cost, so nothing defers the next one.
    tokio::time::sleep(Duration::from_millis(20)).await;
    daemon.on_samples(sample(true));
    assert!(
        !status.has_changed().unwrap(),
        "one pass of rise 2 moves nothing"
    );
    daemon.on_samples(sample(true));
    assert!(
        status.has_changed().unwrap(),
        "the check went up and the VIP was announced: not published"
    );
    status.borrow_and_update();
    // The VIPs' part is built per API request, from the same state.
    let vips = |d: &Daemon| {
        d.status
            .vip_views(&d.engine, &d.board, &d.route_changes)
            .vips
    };
    let v = vips(&daemon);
    assert!(v[0].checks[0].up, "{:?}", v[0]);
    assert_eq!(v[0].state, VipState::Announced);
    tokio::time::sleep(Duration::from_millis(20)).await;
    daemon.on_samples(sample(false));
    daemon.on_samples(sample(false));
    assert!(
        status.has_changed().unwrap(),
        "the withdrawal was not published"
    );
    assert_ne!(vips(&daemon)[0].state, VipState::Announced);
    daemon.checks.shutdown();
}

/// A session's change of state wakes the daemon's loop (which then publishes status).
#[tokio::test]
async fn a_session_change_wakes_the_loop() {
    let state = tempfile::tempdir().unwrap();
    let text = format!("{YAML}state_dir: {}\n", state.path().display());
    let cfg = crate::config::parse(Path::new("vw.yaml"), &text).unwrap();
    let (daemon, _control) = Daemon::start(
        Options {
            config: cfg,
            config_path: state.path().join("vw.yaml"),
        },
        None,
    );
    // Port 1 on loopback refuses: the session's connect attempt changes its status.
    let woke = tokio::time::timeout(Duration::from_secs(5), daemon.peers.changed.notified()).await;
    assert!(woke.is_ok(), "no wake-up from the session's status");
    daemon.checks.shutdown();
}
