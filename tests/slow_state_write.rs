//! A slow state-file write must not stop the runtime.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use vipwarden::daemon::{run, Options};

/// A drain whose state-file write takes 5 s (the temp file is a FIFO nobody reads for 5 s: the
/// write blocks like a hung disk) must not stop the runtime: the BGP session keeps exchanging
/// KEEPALIVEs every second and the API keeps answering, while the drain itself answers only when
/// the write is over (here with "not saved": fsync on a FIFO fails, so nothing changes).
#[tokio::test(flavor = "current_thread")]
async fn a_5_second_state_file_write_stops_neither_keepalives_nor_the_api() {
    const HOLD: u16 = 3;
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let fifo = state.join(".state.json.tmp");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let (router, log) = fake_router(HOLD).await;
    let target = service().await;
    let api = free_port();
    let y = format!(
        "router_id: 192.0.2.1\nlocal_as: {LOCAL_AS}\nstate_dir: {}\n\
         api: {{listen: '{api}', token_file: {}}}\n\
         peers:\n  - {{name: tor, address: {}, port: {}, remote_as: {PEER_AS}, hold_time: {HOLD}s, next_hop_v4: 192.0.2.1}}\n\
         checks:\n  - {{name: web, type: tcp, target: '{target}', interval: 200ms, timeout: 100ms, rise: 1, fall: 1}}\n\
         vips:\n  - {{name: web, prefixes: ['203.0.113.10/32'], checks: [web]}}\n",
        state.display(),
        token_file.display(),
        router.ip(),
        router.port()
    );
    let config = vipwarden::config::parse(Path::new("test.yaml"), &y).unwrap();
    tokio::spawn(run(Options {
        config,
        config_path: dir.path().join("test.yaml"),
    }));
    wait_for("route at the router", Duration::from_secs(20), || {
        log.lock().unwrap().prefixes == 1
    })
    .await;
    wait_for("the API", Duration::from_secs(5), || {
        std::net::TcpStream::connect(api).is_ok()
    })
    .await;

    // The slow disk: nobody opens the FIFO for reading for 5 s.
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        let mut f = std::fs::File::open(&fifo).unwrap();
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut sink).unwrap();
    });
    let messages_before = log.lock().unwrap().messages.len();
    let t0 = Instant::now();
    let drain = tokio::spawn(http(api, "POST", "/v1/vips/web/drain", TOKEN));
    let mut slowest_status = Duration::ZERO;
    let mut statuses = 0;
    while !drain.is_finished() && t0.elapsed() < Duration::from_secs(15) {
        let (code, took) = http(api, "GET", "/v1/status", TOKEN).await;
        assert_eq!(code, 200);
        slowest_status = slowest_status.max(took);
        statuses += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, drain_took) = drain.await.unwrap();
    reader.join().unwrap();
    let l = log.lock().unwrap();
    let during = &l.messages[messages_before..];
    let keepalives = during.iter().filter(|(_, k)| *k == KEEPALIVE).count();
    let gap = during
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    eprintln!(
        "slow state write: drain answered {code} after {drain_took:?}; meanwhile {keepalives} \
         KEEPALIVEs (longest gap {gap:?}), {statuses} status requests (slowest {slowest_status:?})"
    );
    assert!(drain_took >= Duration::from_millis(4500), "{drain_took:?}");
    assert_eq!(code, 500, "fsync on a FIFO fails: state_not_saved");
    assert!(keepalives >= 3, "{keepalives} KEEPALIVEs in {drain_took:?}");
    assert!(gap < Duration::from_millis(2500), "silence of {gap:?}");
    assert!(statuses >= 10, "{statuses}");
    assert!(
        slowest_status < Duration::from_secs(1),
        "{slowest_status:?}"
    );
    assert_eq!((l.sessions, l.notifications.len()), (1, 0));
}
