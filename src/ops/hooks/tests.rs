use super::*;
use std::path::Path;
use std::time::Instant;

fn ev(vip: &str, previous: VipState, state: VipState, reason: &str) -> HookEvent {
    HookEvent {
        vip: vip.to_string(),
        state,
        previous,
        reason: reason.to_string(),
        prefixes: vec!["203.0.113.10/32".into(), "2001:db8:10::10/128".into()],
    }
}

fn sh(script: &str, timeout: Duration) -> Arc<HookSpec> {
    Arc::new(HookSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        timeout,
    })
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// True once `pid` is gone or a zombie (killed; its reaper may be slow).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..250 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn environment_is_passed_without_a_shell() {
    let spec = HookSpec {
        // No shell: `$HOME;` must arrive literally as one argument.
        argv: vec![
            "printf".into(),
            "%s|%s|%s|%s|%s|%s".into(),
            "$HOME; echo injected".into(),
        ],
        timeout: Duration::from_secs(5),
    };
    let e = ev(
        "web",
        VipState::Announced,
        VipState::Maintenance,
        "drained: kernel\nupgrade\0",
    );
    let run = run_hook(&spec, &e).await;
    assert!(run.ok(), "{run:?}");
    assert_eq!(run.stdout, "$HOME; echo injected|||||");

    let spec = sh(
        "printf '%s\\n' \"$VIPWARDEN_VIP\" \"$VIPWARDEN_STATE\" \"$VIPWARDEN_PREVIOUS_STATE\" \
         \"$VIPWARDEN_REASON\" \"$VIPWARDEN_PREFIXES\" \"${NOTIFY_SOCKET-unset}\"",
        Duration::from_secs(5),
    );
    let run = run_hook(&spec, &e).await;
    assert!(run.ok(), "{run:?}");
    assert_eq!(
        run.stdout,
        "web\nmaintenance\nannounced\ndrained: kernel\nupgrade\u{FFFD}\n\
         203.0.113.10/32 2001:db8:10::10/128\nunset\n"
    );
}

#[tokio::test]
async fn failures_are_reported_with_output() {
    let e = ev("web", VipState::Announced, VipState::Withdrawn, "down");
    let run = run_hook(&sh("echo out; echo oops >&2; exit 3", DEFAULT_TIMEOUT), &e).await;
    assert_eq!(run.outcome, Outcome::Exited(3));
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("out\n", "oops\n")
    );
    let run = run_hook(&sh("kill -TERM $$", DEFAULT_TIMEOUT), &e).await;
    assert_eq!(run.outcome, Outcome::Signalled(libc::SIGTERM));
}

#[tokio::test]
async fn missing_or_empty_program_is_reported() {
    let e = ev("web", VipState::Announced, VipState::Withdrawn, "down");
    let missing = HookSpec {
        argv: vec!["/nonexistent/vipwarden-hook".into()],
        timeout: DEFAULT_TIMEOUT,
    };
    match run_hook(&missing, &e).await.outcome {
        Outcome::CannotRun(why) => assert!(why.contains("program not found"), "{why}"),
        other => panic!("{other:?}"),
    }
    let empty = HookSpec {
        argv: vec![],
        timeout: DEFAULT_TIMEOUT,
    };
    assert!(matches!(
        run_hook(&empty, &e).await.outcome,
        Outcome::CannotRun(_)
    ));
}

#[tokio::test]
async fn output_is_bounded_and_a_chatty_hook_does_not_block() {
    let e = ev("web", VipState::Announced, VipState::Withdrawn, "down");
    // 1 MB on each stream: more than a pipe buffer, so an undrained pipe would hang until timeout.
    let run = run_hook(
        &sh(
            "head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero >&2",
            Duration::from_secs(20),
        ),
        &e,
    )
    .await;
    assert!(run.ok(), "{:?}", run.outcome);
    assert_eq!(run.stdout.len(), OUTPUT_LIMIT);
    assert_eq!(
        run.dropped_bytes,
        (
            1_000_000 - OUTPUT_LIMIT as u64,
            1_000_000 - OUTPUT_LIMIT as u64
        )
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
    let e = ev("web", VipState::Announced, VipState::Withdrawn, "down");
    let started = Instant::now();
    let run = run_hook(&sh(&script, Duration::from_millis(300)), &e).await;
    assert_eq!(run.outcome, Outcome::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the hook's background sleep to die", || dead(pid)).await;
}

#[tokio::test]
async fn leftovers_holding_the_pipes_are_killed_after_the_hook_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // The shell exits at once; its background child keeps stdout open.
    let script = format!("sleep 60 & echo $! > {}", pidfile.display());
    let e = ev("web", VipState::Announced, VipState::Withdrawn, "down");
    let run = run_hook(&sh(&script, Duration::from_secs(20)), &e).await;
    assert!(run.ok(), "{run:?}");
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the leftover sleep to die", || dead(pid)).await;
}

#[tokio::test]
async fn hooks_of_one_vip_run_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let runner = HookRunner::new(DEFAULT_QUEUE_PER_VIP);
    // Earlier hooks sleep longer: running them concurrently would reverse the log.
    let states = [
        VipState::Announced,
        VipState::Draining,
        VipState::Withdrawn,
        VipState::Maintenance,
        VipState::Announced,
    ];
    let mut prev = VipState::Withdrawn;
    for (i, s) in states.iter().enumerate() {
        let pause = format!("0.{}", 5 - i);
        let spec = sh(
            &format!(
                "sleep {pause}; echo \"$VIPWARDEN_PREVIOUS_STATE>$VIPWARDEN_STATE\" >> {}",
                log.display()
            ),
            Duration::from_secs(10),
        );
        runner.fire(spec, ev("web", prev, *s, "r"));
        prev = *s;
    }
    assert!(runner.idle(Duration::from_secs(20)).await);
    assert_eq!(
        lines(&log),
        [
            "withdrawn>announced",
            "announced>draining",
            "draining>withdrawn",
            "withdrawn>maintenance",
            "maintenance>announced"
        ]
    );
    let st = runner.stats();
    assert_eq!((st.started, st.succeeded, st.failed), (5, 5, 0));
}

#[tokio::test]
async fn a_hung_hook_blocks_neither_the_caller_nor_other_vips() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("dns-done");
    let runner = HookRunner::new(DEFAULT_QUEUE_PER_VIP);
    let t = Instant::now();
    runner.fire(
        sh("sleep 60", Duration::from_secs(60)),
        ev("web", VipState::Announced, VipState::Withdrawn, "down"),
    );
    runner.fire(
        sh(&format!("touch {}", done.display()), Duration::from_secs(5)),
        ev("dns", VipState::Announced, VipState::Withdrawn, "down"),
    );
    assert!(t.elapsed() < Duration::from_millis(100), "fire blocked");
    eventually("the dns hook to run", || done.exists()).await;
    assert!(!runner.idle(Duration::from_millis(50)).await);
    // Dropping the runtime at the end of the test kills the sleeping hook's group.
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_pending_hook() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate, started) = (
        dir.path().join("log"),
        dir.path().join("gate"),
        dir.path().join("started"),
    );
    let runner = HookRunner::new(2);
    // The first hook waits for the gate, so the next four queue up behind it.
    let script = format!(
        "touch {s}; while [ ! -e {g} ]; do sleep 0.02; done; echo \"$VIPWARDEN_REASON\" >> {l}",
        s = started.display(),
        g = gate.display(),
        l = log.display()
    );
    let spec = sh(&script, Duration::from_secs(20));
    runner.fire(
        spec.clone(),
        ev("web", VipState::Withdrawn, VipState::Announced, "1"),
    );
    eventually("the first hook to start", || started.exists()).await;
    for n in 2..=5 {
        runner.fire(
            spec.clone(),
            ev(
                "web",
                VipState::Withdrawn,
                VipState::Announced,
                &n.to_string(),
            ),
        );
    }
    std::fs::write(&gate, b"").unwrap();
    assert!(runner.idle(Duration::from_secs(20)).await);
    assert_eq!(lines(&log), ["1", "4", "5"]);
    let st = runner.stats();
    assert_eq!((st.started, st.dropped), (3, 2));
}

#[tokio::test]
async fn a_missing_binary_does_not_stall_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let runner = HookRunner::new(DEFAULT_QUEUE_PER_VIP);
    let missing = Arc::new(HookSpec {
        argv: vec!["vipwarden-no-such-hook".into()],
        timeout: DEFAULT_TIMEOUT,
    });
    let e = ev("web", VipState::Announced, VipState::Withdrawn, "down");
    runner.fire(missing, e.clone());
    runner.fire(sh(&format!("touch {}", done.display()), DEFAULT_TIMEOUT), e);
    assert!(runner.idle(Duration::from_secs(10)).await);
    assert!(done.exists());
    let st = runner.stats();
    assert_eq!((st.started, st.succeeded, st.failed), (2, 1, 1));
}
