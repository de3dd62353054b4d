use super::*;
use crate::signals::sockdiag::tests::{flood, small_listener};

fn cfg(ports: &[u16]) -> TcpStatsConfig {
    TcpStatsConfig {
        interval: Duration::from_millis(50),
        window: Duration::from_secs(10),
        ports: ports.to_vec(),
    }
}

fn sample(overflows: i64, estab: i64) -> Result<TcpSample, String> {
    let mut counters = [0; 10];
    counters[0] = overflows;
    counters[9] = 2 * overflows;
    Ok(TcpSample {
        counters,
        curr_estab: estab,
    })
}

fn listener(port: u16, queued: u32, backlog: u32) -> Listener {
    Listener {
        family: libc::AF_INET as u8,
        port,
        queued,
        backlog,
    }
}

#[test]
fn counters_become_rates_named_like_the_kernel() {
    let t = Instant::now();
    let mut s = TcpStats::new(&cfg(&[]));
    let first = s.update(t, sample(100, 3), None);
    assert_eq!(first.missing, None);
    assert_eq!(
        first.values.len(),
        1,
        "only the gauge before a second sample"
    );
    assert_eq!(first.values[CURR_ESTAB], 3.0);
    let snap = s.update(t + Duration::from_secs(2), sample(110, 4), None);
    assert_eq!(snap.values["ListenOverflows"], 5.0);
    assert_eq!(snap.values["RetransSegs"], 10.0);
    assert_eq!(snap.values["OutRsts"], 0.0);
    assert_eq!(snap.values[CURR_ESTAB], 4.0);
    assert_eq!(snap.values.len(), RATE_NAMES.len() + 1);
    assert!(
        !snap.values.contains_key(ACCEPT_QUEUE_FILL),
        "no ports, no fill"
    );
    assert_eq!(snap.updated, Some(t + Duration::from_secs(2)));
}

#[test]
fn unreadable_proc_is_missing_but_queues_still_report() {
    let t = Instant::now();
    let mut s = TcpStats::new(&cfg(&[80]));
    let snap = s.update(
        t,
        Err("snmp: no Tcp section".into()),
        Some(Ok(vec![listener(80, 5, 9)])),
    );
    assert_eq!(snap.missing.as_deref(), Some("snmp: no Tcp section"));
    assert_eq!(snap.values[ACCEPT_QUEUE_FILL], 0.5);
    assert!(!snap.values.contains_key(CURR_ESTAB));
}

#[test]
fn ports_without_listener_are_left_out() {
    let t = Instant::now();
    let mut s = TcpStats::new(&cfg(&[80, 443]));
    // One of two ports listening: its value, and nothing reported missing.
    let snap = s.update(t, sample(0, 0), Some(Ok(vec![listener(443, 1, 1)])));
    assert_eq!(snap.values[ACCEPT_QUEUE_FILL], 0.5);
    assert_eq!(snap.missing, None);
    // None listening: no current fill, the window max survives, and `missing` says why.
    let t1 = t + Duration::from_secs(1);
    let snap = s.update(t1, sample(0, 0), Some(Ok(vec![listener(22, 1, 1)])));
    assert!(!snap.values.contains_key(ACCEPT_QUEUE_FILL));
    assert_eq!(snap.values[ACCEPT_QUEUE_FILL_MAX], 0.5);
    assert_eq!(
        snap.missing.as_deref(),
        Some("no listener on ports [80, 443]")
    );
    let snap = s.update(t1, sample(0, 0), Some(Err("EPERM".into())));
    assert_eq!(snap.missing.as_deref(), Some("sock_diag: EPERM"));
}

#[test]
fn reads_this_namespaces_proc_files() {
    let s = read_counters(Path::new("/proc/net")).unwrap();
    assert!(s.counters.iter().all(|c| *c >= 0));
    let err = read_counters(Path::new("/nonexistent/net")).unwrap_err();
    assert!(matches!(err, ProcError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/net/netstat"),
        "{err}"
    );
}

/// The whole task against the kernel: a backlog-4 listener flooded with 10 connects shows a full
/// accept queue and a positive ListenOverflows rate. Counters are namespace-wide and other tests
/// run in parallel, hence `>` and not `==` on the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_overflow_shows_in_queue_fill_and_listen_overflows() {
    let (_listener, addr) = small_listener("127.0.0.1");
    let (tx, rx) = watch::channel(SourceSnapshot::default());
    let stop = CancellationToken::new();
    let task = spawn(cfg(&[addr.port()]), tx, stop.clone());

    let before = wait_for(&rx, "a first rate", |s| {
        s.values.contains_key("ListenOverflows")
    })
    .await;
    assert_eq!(before.values[ACCEPT_QUEUE_FILL], 0.0);
    assert_eq!(before.missing, None);

    let _clients = flood(addr, 10);
    let after = wait_for(&rx, "a full queue and overflows", |s| {
        s.values.get(ACCEPT_QUEUE_FILL) == Some(&1.0)
            && s.values.get("ListenOverflows").is_some_and(|r| *r > 0.0)
    })
    .await;
    assert_eq!(after.values[ACCEPT_QUEUE_FILL_MAX], 1.0);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("task stops on cancel")
        .unwrap();
}

async fn wait_for(
    rx: &watch::Receiver<SourceSnapshot>,
    what: &str,
    f: impl FnMut(&SourceSnapshot) -> bool,
) -> SourceSnapshot {
    let mut rx = rx.clone();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        rx.wait_for(f).await.map(|s| s.clone())
    })
    .await;
    match seen {
        Ok(Ok(snap)) => snap,
        _ => panic!("timed out waiting for {what}: last {:?}", *rx.borrow()),
    }
}
