//! The API over real HTTP on 127.0.0.1 against a fake daemon: endpoints, auth, bad input,
//! timeouts, limits, and the CLI functions against the same server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::auth::Credentials;
use super::client::{self, ApiTarget};
use super::server::{ApiServer, Limits};
use super::testutil::{fake_daemon, FakeDaemon};
use crate::control::{Command, ControlHandle};

const TOKEN: &str = "t0ken-for-tests";

struct Harness {
    addr: SocketAddr,
    daemon: FakeDaemon,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    fn commands(&self) -> Vec<Command> {
        self.daemon.commands.lock().unwrap().clone()
    }

    fn target(&self, token: Option<&str>) -> ApiTarget {
        ApiTarget {
            addr: self.addr,
            token: token.map(|t| zeroize::Zeroizing::new(t.to_string())),
            token_error: None,
            tls: None,
        }
    }
}

async fn start_with(token: Option<&str>, limits: Limits, handle: Option<ControlHandle>) -> Harness {
    let daemon = fake_daemon();
    let mut server = ApiServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    server.limits = limits;
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    let handle = handle.unwrap_or_else(|| daemon.handle.clone());
    let (_, auth) = tokio::sync::watch::channel(Arc::new(Credentials::with_token(token)));
    let server = tokio::spawn(server.run(auth, handle, stop.clone()));
    Harness {
        addr,
        daemon,
        stop,
        server,
    }
}

async fn start(token: Option<&str>) -> Harness {
    start_with(token, Limits::default(), None).await
}

/// A parsed HTTP/1 response.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends a raw request (adds Host and Connection: close) and reads the whole response.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{head}\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> Resp {
    let auth = token
        .map(|t| format!("\r\nAuthorization: Bearer {t}"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nContent-Length: {}{auth}",
        body.len()
    );
    raw(addr, &head, body.as_bytes()).await
}

async fn get(addr: SocketAddr, path: &str) -> Resp {
    raw(addr, &format!("GET {path} HTTP/1.1"), b"").await
}

#[tokio::test]
async fn read_endpoints_serve_status_events_and_metrics() {
    let h = start(None).await;
    let r = get(h.addr, "/v1/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["vips"][0]["name"], "web");
    assert_eq!(j["vips"][1]["state"], "maintenance");
    assert_eq!(j["peers"][0]["state"], "established");

    let all = get(h.addr, "/v1/events").await.json();
    assert_eq!(all.as_array().unwrap().len(), 5);
    let last2 = get(h.addr, "/v1/events?limit=2").await.json();
    let reasons: Vec<&str> = last2
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["event 3", "event 4"], "newest last");
    assert_eq!(
        get(h.addr, "/v1/events?limit=99")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(get(h.addr, "/v1/events?limit=x").await.status, 400);

    // Plain clients (curl, promtool) get text 0.0.4; Prometheus asks for OpenMetrics.
    let plain = get(h.addr, "/metrics").await;
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!plain.body.contains("# EOF"), "{}", plain.body);
    assert!(plain.body.contains("\nprocess_open_fds "), "{}", plain.body);
    let m = raw(
        h.addr,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        b"",
    )
    .await;
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(m.body.ends_with("# EOF\n"), "{}", m.body);
    assert!(
        m.body
            .lines()
            .any(|l| l == r#"vipwarden_vip_state{vip="web",state="announced"} 1"#),
        "{}",
        m.body
    );

    // A new snapshot from the daemon is what the next request sees.
    let mut s = (**h.daemon.status_tx.borrow()).clone();
    s.vips[0].state = crate::control::VipState::Withdrawn;
    h.daemon.status_tx.send(Arc::new(s)).unwrap();
    assert_eq!(
        get(h.addr, "/v1/status").await.json()["vips"][0]["state"],
        "withdrawn"
    );
    h.daemon.events_tx.send(Arc::new(Vec::new())).unwrap();
    assert_eq!(get(h.addr, "/v1/events?limit=2").await.body, "[]\n");
    assert!(h.commands().is_empty());
}

#[tokio::test]
async fn drain_and_undrain_send_the_right_commands() {
    let h = start(Some(TOKEN)).await;
    let r = post(
        h.addr,
        "/v1/vips/web/drain",
        Some(TOKEN),
        r#"{"reason":"kernel upgrade"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"changed":[{"vip":"web","state":"maintenance"}]})
    );
    let r = post(h.addr, "/v1/vips/web/undrain", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        post(h.addr, "/v1/vips/drain", Some(TOKEN), "{}")
            .await
            .status,
        200
    );
    assert_eq!(
        post(
            h.addr,
            "/v1/vips/undrain",
            Some(TOKEN),
            r#"{"reason":"done"}"#
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.commands(),
        vec![
            Command::Drain {
                vip: Some("web".into()),
                reason: "kernel upgrade".into(),
                force: false,
            },
            Command::Undrain {
                vip: Some("web".into()),
                reason: "undrained via API".into()
            },
            Command::Drain {
                vip: None,
                reason: "drained via API".into(),
                force: false,
            },
            Command::Undrain {
                vip: None,
                reason: "done".into()
            },
        ]
    );
}

#[tokio::test]
async fn auth_missing_wrong_and_right_token() {
    let h = start(Some(TOKEN)).await;
    let r = post(h.addr, "/v1/vips/web/drain", None, "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert!(r.json()["message"].as_str().unwrap().contains("missing"));
    let r = post(h.addr, "/v1/vips/web/drain", Some("t0ken-for-tesTs"), "").await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("wrong bearer token"));
    let r = raw(
        h.addr,
        "POST /v1/vips/drain HTTP/1.1\r\nContent-Length: 0\r\nAuthorization: Basic eDp5",
        b"",
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(h.commands().is_empty(), "no command on a refused request");
    assert_eq!(
        post(h.addr, "/v1/vips/web/drain", Some(TOKEN), "")
            .await
            .status,
        200
    );
    assert_eq!(h.commands().len(), 1);
    // Reads need no token.
    assert_eq!(get(h.addr, "/v1/status").await.status, 200);
}

#[tokio::test]
async fn without_a_token_file_changes_are_refused_with_the_fix() {
    let h = start(None).await;
    let r = post(h.addr, "/v1/vips/web/drain", Some("anything"), "").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "no_token_configured");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("api.token_file"));
    assert!(h.commands().is_empty());
}

#[tokio::test]
async fn an_unknown_vip_is_refused_by_the_daemon_naming_known_ones() {
    let h = start(Some(TOKEN)).await;
    let r = post(h.addr, "/v1/vips/nope/drain", Some(TOKEN), "").await;
    assert_eq!(r.status, 404);
    let j = r.json();
    assert_eq!(
        (j["error"].as_str(), j["vip"].as_str()),
        (Some("unknown_vip"), Some("nope"))
    );
    assert!(
        j["message"].as_str().unwrap().contains("(known: web"),
        "{}",
        r.body
    );
    // The daemon answered (it has the last word, and the API asks it nothing else first).
    assert_eq!(h.commands().len(), 1, "{:?}", h.commands());
}

#[tokio::test]
async fn bad_requests_are_refused_and_send_no_command() {
    let h = start(Some(TOKEN)).await;
    let r = post(
        h.addr,
        "/v1/vips/web/drain",
        Some(TOKEN),
        r#"{"reason": 5}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{}",
        r.body
    );
    assert_eq!(
        post(h.addr, "/v1/vips/web/drain", Some(TOKEN), "{not json")
            .await
            .status,
        400
    );

    let r = get(h.addr, "/v1/nothing").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("not_found"))
    );

    let r = get(h.addr, "/v1/vips/web/drain").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = post(h.addr, "/v1/status", Some(TOKEN), "").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));

    // Declared too large: refused before reading.
    let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(70 * 1024));
    assert_eq!(
        post(h.addr, "/v1/vips/web/drain", Some(TOKEN), &big)
            .await
            .status,
        413
    );
    // Chunked, no length declared: the limit is enforced while reading.
    let chunk = "a".repeat(40 * 1024);
    let chunked = format!(
        "{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let head = format!("POST /v1/vips/web/drain HTTP/1.1\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer {TOKEN}");
    assert_eq!(raw(h.addr, &head, chunked.as_bytes()).await.status, 413);

    // Oversized headers: refused by hyper's buffer limit, before routing.
    let huge = format!(
        "GET /v1/status HTTP/1.1\r\nX-Pad: {}",
        "p".repeat(20 * 1024)
    );
    assert_eq!(raw(h.addr, &huge, b"").await.status, 431);

    // Garbage instead of HTTP: hyper answers 400, the server keeps serving.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(b"\x16\x03\x01 not http\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{buf:?}"
    );
    assert_eq!(get(h.addr, "/v1/status").await.status, 200);
    assert!(h.commands().is_empty(), "{:?}", h.commands());
}

#[tokio::test]
async fn a_slow_body_is_cut_off_and_sends_no_command() {
    let mut limits = Limits::default();
    limits.request.body_timeout = Duration::from_millis(300);
    let h = start_with(Some(TOKEN), limits, None).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /v1/vips/web/drain HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 20\r\n\r\n{{\"rea"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t0 = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        &buf[..n]
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(h.commands().is_empty());
}

#[tokio::test]
async fn state_not_saved_is_a_500_with_the_detail() {
    let h = start(Some(TOKEN)).await;
    *h.daemon.fail_save.lock().unwrap() =
        Some("/var/lib/vipwarden/state.json: read-only file system".into());
    let r = post(h.addr, "/v1/vips/drain", Some(TOKEN), "").await;
    assert_eq!(r.status, 500);
    let j = r.json();
    assert_eq!(j["error"], "state_not_saved");
    assert_eq!(
        j["detail"],
        "/var/lib/vipwarden/state.json: read-only file system"
    );
}

#[tokio::test]
async fn a_gone_daemon_is_a_503() {
    let daemon = fake_daemon();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    let handle = ControlHandle {
        commands: tx,
        ..daemon.handle.clone()
    };
    let h = start_with(Some(TOKEN), Limits::default(), Some(handle)).await;
    let r = post(h.addr, "/v1/vips/web/drain", Some(TOKEN), "").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (503, Some("daemon_unavailable"))
    );
}

#[tokio::test]
async fn concurrent_requests_are_all_answered() {
    let h = start(Some(TOKEN)).await;
    let target = h.target(Some(TOKEN));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                client::drain(&t, Some("web"), None, true).await
            } else {
                client::status(&t, true).await
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(h.commands().len(), 10);
}

/// Opens a connection and sends half a request header, then stalls.
async fn slowloris(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    s
}

/// Waits until the server closes `s`; returns how long that took.
async fn closed_after(mut s: TcpStream) -> Duration {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return t0.elapsed(),
            Ok(Ok(_)) => continue, // hyper may answer 408 before closing
            Err(_) => panic!("stalled connection still open after 5s"),
        }
    }
}

#[tokio::test]
async fn a_stalled_client_is_dropped_without_blocking_others() {
    let limits = Limits {
        header_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let h = start_with(None, limits, None).await;
    let slow = slowloris(h.addr).await;
    // Others are served at once while the stalled one waits.
    let t0 = Instant::now();
    assert_eq!(get(h.addr, "/v1/status").await.status, 200);
    assert!(
        t0.elapsed() < Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    let waited = closed_after(slow).await;
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_full_house_of_clients_without_the_token_gives_way_to_a_newcomer() {
    let limits = Limits {
        max_connections: 2,
        header_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let h = start_with(None, limits, None).await;
    let a = slowloris(h.addr).await;
    let b = slowloris(h.addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Both slots are taken by clients that never showed a token: the third is served at once,
    // and the oldest stalled one is closed to make room.
    let t0 = Instant::now();
    assert_eq!(get(h.addr, "/v1/status").await.status, 200);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(closed_after(a).await < Duration::from_secs(1));
    drop(b);
}

#[tokio::test]
async fn connections_that_showed_the_token_keep_their_slots_and_newcomers_queue() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let h = start_with(Some(TOKEN), limits, None).await;
    // A keep-alive connection that showed the token holds the only slot.
    let mut kept = TcpStream::connect(h.addr).await.unwrap();
    kept.write_all(
        format!("GET /v1/status HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), kept.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A newcomer waits in the accept queue instead of taking it.
    let newcomer = tokio::spawn(get(h.addr, "/v1/status"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!newcomer.is_finished(), "a token holder's slot was taken");
    drop(kept);
    let r = tokio::time::timeout(Duration::from_secs(3), newcomer)
        .await
        .expect("served once the slot was free")
        .unwrap();
    assert_eq!(r.status, 200);
}

/// Issue 18: 40 connections without the token (more than the 32 slots), held open with half a
/// request head, cannot keep a drain out; the drain is served within a second (their header
/// timeout is 5 s), and the daemon gets the command.
#[tokio::test]
async fn a_drain_gets_through_while_40_clients_without_the_token_hold_connections_open() {
    let h = start(Some(TOKEN)).await;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(slowloris(h.addr).await);
    }
    // Wrong tokens on open keep-alive connections count as without the token too.
    for _ in 0..8 {
        let mut s = TcpStream::connect(h.addr).await.unwrap();
        s.write_all(b"POST /v1/vips/web/drain HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer nope\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    let r = post(
        h.addr,
        "/v1/vips/web/drain",
        Some(TOKEN),
        r#"{"reason":"starve test"}"#,
    )
    .await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(took < Duration::from_secs(1), "drain took {took:?}");
    assert!(matches!(h.commands().last(), Some(Command::Drain { .. })));
    drop(held);
}

#[tokio::test]
async fn stop_ends_the_server_and_bind_errors_are_prompt() {
    let h = start(None).await;
    let addr = h.addr;
    let err = ApiServer::bind(addr).await.err().expect("port is taken");
    assert!(
        format!("{err:#}").contains(&format!("cannot listen on {addr}")),
        "{err:#}"
    );
    // An idle keep-alive connection must not hold the stop up.
    let _idle = TcpStream::connect(addr).await.unwrap();
    h.stop.cancel();
    let done = tokio::time::timeout(Duration::from_secs(3), h.server)
        .await
        .expect("stopped in time");
    done.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn cli_functions_print_what_operators_read() {
    let h = start(Some(TOKEN)).await;
    let t = h.target(Some(TOKEN));

    let text = client::status(&t, false).await.unwrap();
    assert!(
        text.contains("tor1  192.0.2.1    65000  established  1h02m   2    -"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("web  announced")),
        "{text}"
    );
    assert!(
        text.contains("    web_tcp           up     connected in 0.3 ms"),
        "{text}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&client::status(&t, true).await.unwrap()).unwrap();
    assert_eq!(j["router_id"], "192.0.2.11");

    let ev = client::events(&t, Some(1), false).await.unwrap();
    assert!(
        ev.ends_with("web  withdrawn -> announced  event 4\n")
            || ev.ends_with("web  announced -> withdrawn  event 4\n"),
        "{ev}"
    );
    assert_eq!(ev.lines().count(), 1);

    assert_eq!(
        client::drain(&t, Some("web"), Some("disk swap"), false)
            .await
            .unwrap(),
        "web  -> maintenance\n"
    );
    let all = client::undrain(&t, None, None, false).await.unwrap();
    assert_eq!(all, "web  -> announced\napi  -> announced\n");
    assert_eq!(
        h.commands()[0],
        Command::Drain {
            vip: Some("web".into()),
            reason: "disk swap".into(),
            force: false,
        }
    );

    let e = client::drain(&t, Some("nope"), None, false)
        .await
        .unwrap_err();
    assert_eq!(
        format!("{e}"),
        r#"vipwarden API: 404 Not Found: no VIP named "nope" (known: web, api)"#
    );
    // Escaped on the way (the client percent-encodes), refused by the rule for names.
    let e = client::drain(&t, Some("no pe"), None, false)
        .await
        .unwrap_err();
    assert_eq!(
        format!("{e}"),
        "vipwarden API: 400 Bad Request: VIP name in the path is not a valid name \
         (1-64 characters of letters, digits, '-', '_' or '.')"
    );
    let e = client::drain(&h.target(None), Some("web"), None, false)
        .await
        .unwrap_err();
    assert!(
        format!("{e}").starts_with("vipwarden API: 401 Unauthorized: missing"),
        "{e}"
    );
    assert!(format!("{e}").contains("api.token_file is not set"), "{e}");

    let dead = ApiTarget {
        addr: "127.0.0.1:1".parse().unwrap(),
        token: None,
        token_error: None,
        tls: None,
    };
    let e = client::status(&dead, false).await.unwrap_err();
    assert!(format!("{e:#}").contains("is the daemon running"), "{e:#}");
}

// --- The daemon's API lifecycle: token and listener reload (SIGHUP) ---

mod reload {
    use super::*;
    use crate::config::ApiConfig;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use tokio::sync::watch;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn write_token(path: &Path, token: &str, mode: u32) {
        std::fs::write(path, format!("{token}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    struct Live {
        tx: watch::Sender<ApiConfig>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        daemon: FakeDaemon,
        _dir: tempfile::TempDir,
        token_file: PathBuf,
    }

    async fn start_live(token: Option<(&str, u32)>, listen: SocketAddr) -> Live {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        if let Some((t, mode)) = token {
            write_token(&token_file, t, mode);
        }
        let cfg = ApiConfig {
            listen,
            token_file: Some(token_file.clone()),
            ..ApiConfig::loopback_default()
        };
        let (tx, rx) = watch::channel(cfg.clone());
        let daemon = fake_daemon();
        let stop = CancellationToken::new();
        let task = tokio::spawn(crate::api::supervise(
            cfg,
            rx,
            daemon.handle.clone(),
            stop.clone(),
        ));
        wait_up(listen).await;
        Live {
            tx,
            stop,
            task,
            daemon,
            _dir: dir,
            token_file,
        }
    }

    async fn wait_up(addr: SocketAddr) {
        let t0 = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "API never came up on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    impl Live {
        /// SIGHUP as the daemon sends it: the applied config's api section, and a moment to apply.
        async fn reload(&self, cfg: ApiConfig) {
            self.tx.send_replace(cfg);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }

        fn cfg(&self, listen: SocketAddr) -> ApiConfig {
            ApiConfig {
                listen,
                token_file: Some(self.token_file.clone()),
                ..ApiConfig::loopback_default()
            }
        }

        async fn finish(self) {
            self.stop.cancel();
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .expect("supervisor stops")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_new_token_works_after_reload_and_the_old_one_stops() {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("old-token", 0o600)), addr).await;
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("old-token"), "")
                .await
                .status,
            200
        );
        write_token(&live.token_file, "new-token", 0o600);
        // Before the reload the running token is still the old one (nothing changes silently).
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("new-token"), "")
                .await
                .status,
            401
        );
        live.reload(live.cfg(addr)).await;
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("new-token"), "")
                .await
                .status,
            200
        );
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("old-token"), "")
                .await
                .status,
            401
        );
        // The CLI, which reads the file, can drain again.
        let target = ApiTarget::from_config(addr, Some(&live.token_file));
        let out = client::drain(&target, Some("web"), Some("rotated"), false)
            .await
            .unwrap();
        assert!(out.contains("web"), "{out}");
        assert_eq!(live.daemon.commands.lock().unwrap().len(), 3);
        live.finish().await;
    }

    #[tokio::test]
    async fn a_token_file_fixed_from_0644_to_0600_works_after_reload() {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("tok", 0o644)), addr).await;
        let r = post(addr, "/v1/vips/web/drain", Some("tok"), "").await;
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["error"], "token_file_refused");
        let msg = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains("world-readable") && msg.contains("SIGHUP"),
            "{msg}"
        );
        // The refusal is in the status errors too.
        let st = get(addr, "/v1/status").await.json();
        assert!(
            st["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains("world-readable")),
            "{st}"
        );
        // The CLI says the mode is the problem, not the user.
        let target = ApiTarget::from_config(addr, Some(&live.token_file));
        let e = client::drain(&target, Some("web"), None, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("403"), "{e}");
        assert_eq!(
            target.token_error.as_ref().unwrap().kind,
            crate::api::TokenErrorKind::UnsafeMode
        );
        // Against a daemon that wants a token (401), the CLI names the mode as the cause.
        let h = start(Some("tok")).await;
        let t2 = ApiTarget {
            addr: h.addr,
            ..target.clone()
        };
        let e = client::drain(&t2, Some("web"), None, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mode or owner is unsafe, not because of who you are"),
            "{e}"
        );
        std::fs::set_permissions(&live.token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        live.reload(live.cfg(addr)).await;
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("tok"), "")
                .await
                .status,
            200
        );
        let st = get(addr, "/v1/status").await.json();
        assert_eq!(
            st["errors"].as_array().unwrap().len(),
            1,
            "only the fixture's error: {st}"
        );
        live.finish().await;
    }

    #[tokio::test]
    async fn a_token_file_broken_on_reload_keeps_the_working_token() {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("good", 0o600)), addr).await;
        write_token(&live.token_file, "planted", 0o666);
        live.reload(live.cfg(addr)).await;
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("good"), "")
                .await
                .status,
            200
        );
        assert_eq!(
            post(addr, "/v1/vips/web/drain", Some("planted"), "")
                .await
                .status,
            401
        );
        let st = get(addr, "/v1/status").await.json();
        let errs = st["errors"].to_string();
        assert!(
            errs.contains("world-writable") && errs.contains("previous token stays"),
            "{errs}"
        );
        live.finish().await;
    }

    #[tokio::test]
    async fn a_new_listen_address_moves_the_api_without_a_restart() {
        let a: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("tok", 0o600)), a).await;
        // Another loopback address, another port.
        let b: SocketAddr = format!("127.0.0.2:{}", free_port()).parse().unwrap();
        live.reload(live.cfg(b)).await;
        wait_up(b).await;
        assert_eq!(get(b, "/v1/status").await.status, 200);
        assert!(
            TcpStream::connect(a).await.is_err(),
            "old listener still open"
        );
        // The same port on the wildcard address collides with our own socket: handled.
        let c: SocketAddr = format!("0.0.0.0:{}", b.port()).parse().unwrap();
        live.reload(live.cfg(c)).await;
        let via_lo: SocketAddr = format!("127.0.0.1:{}", b.port()).parse().unwrap();
        wait_up(via_lo).await;
        assert_eq!(
            post(via_lo, "/v1/vips/web/drain", Some("tok"), "")
                .await
                .status,
            200
        );
        live.finish().await;
    }

    #[tokio::test]
    async fn a_busy_listen_address_on_reload_keeps_the_old_listener_and_says_so() {
        let a: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("tok", 0o600)), a).await;
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = squatter.local_addr().unwrap();
        live.reload(live.cfg(busy)).await;
        let st = get(a, "/v1/status").await.json();
        let errs = st["errors"].to_string();
        assert!(errs.contains(&format!("keeps listening on {a}")), "{errs}");
        assert_eq!(
            post(a, "/v1/vips/web/drain", Some("tok"), "").await.status,
            200
        );
        live.finish().await;
    }

    fn self_signed(dir: &Path, name: &str) -> crate::config::ApiTls {
        let ck = rcgen::generate_simple_self_signed(vec!["vipwarden-api".into()]).unwrap();
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, ck.cert.pem()).unwrap();
        std::fs::write(&key_file, ck.key_pair.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        crate::config::ApiTls {
            cert_file,
            key_file,
        }
    }

    #[tokio::test]
    async fn read_token_guards_status_events_and_metrics() {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("tok", 0o600)), addr).await;
        assert_eq!(
            get(addr, "/v1/status").await.status,
            200,
            "open by default on loopback"
        );
        let mut cfg = live.cfg(addr);
        cfg.read_token = true;
        live.reload(cfg).await;
        for path in ["/v1/status", "/v1/events", "/metrics"] {
            let r = get(addr, path).await;
            assert_eq!(r.status, 401, "{path}");
            let r = raw(
                addr,
                &format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer tok"),
                b"",
            )
            .await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
        }
        // The CLI sends the token on reads too.
        let target = ApiTarget::from_config(addr, Some(&live.token_file));
        client::status(&target, false).await.unwrap();
        live.finish().await;
    }

    #[tokio::test]
    async fn tls_listener_serves_https_only_and_the_cli_pins_the_certificate() {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("tok", 0o600)), addr).await;
        let tls = self_signed(live._dir.path(), "api");
        let mut cfg = live.cfg(addr);
        cfg.tls = Some(tls.clone());
        live.reload(cfg.clone()).await;
        // Plain HTTP gets no HTTP answer from a TLS listener.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(
            !buf.starts_with(b"HTTP/1.1 200"),
            "clear-text answer from a TLS listener"
        );
        // The CLI over TLS: reads and an authorised drain.
        let target = ApiTarget::from_api_config(&cfg);
        let out = client::status(&target, false).await.unwrap();
        assert!(out.contains("web"), "{out}");
        client::drain(&target, Some("web"), Some("tls"), false)
            .await
            .unwrap();
        assert_eq!(live.daemon.commands.lock().unwrap().len(), 1);
        // A CLI that pins another certificate refuses to talk (and sends no token).
        let other = self_signed(live._dir.path(), "other");
        let mut wrong = cfg.clone();
        wrong.tls = Some(other);
        let e = client::status(&ApiTarget::from_api_config(&wrong), false)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("TLS handshake"), "{e:#}");
        live.finish().await;
    }

    #[tokio::test]
    async fn a_tls_key_readable_by_everyone_is_refused_and_nothing_is_served_in_clear() {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let live = start_live(Some(("tok", 0o600)), addr).await;
        let tls = self_signed(live._dir.path(), "api");
        std::fs::set_permissions(&tls.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cfg = live.cfg(addr);
        cfg.tls = Some(tls);
        live.reload(cfg.clone()).await;
        // Connections are closed at once: no clear-text fallback.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s
            .write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
        live.finish().await;
    }
}

/// JSON logs: the HTTP client is `client` (never `peer`, which means a BGP peer), the VIP is a
/// field, and no Rust debug text leaks into messages.
#[tokio::test]
async fn json_logs_name_the_http_client_and_the_vip() {
    #[derive(Clone)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(std::sync::Mutex::new(Vec::new())));
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(sub);
    let h = start(Some(TOKEN)).await;
    for _ in 0..3 {
        assert_eq!(
            post(h.addr, "/v1/vips/web/drain", Some("nope"), "")
                .await
                .status,
            401
        );
    }
    let r = post(
        h.addr,
        "/v1/vips/web/drain",
        Some(TOKEN),
        r#"{"reason":"disk swap"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let drain = lines
        .iter()
        .find(|l| l["message"] == "API drain: disk swap")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(drain["vip"], "web");
    assert!(drain["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(drain.get("peer").is_none(), "{drain}");
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("API request refused: wrong bearer token"))
        })
        .collect();
    // Three failures from one address within a minute: one line, the first.
    assert_eq!(refused.len(), 1, "{text}");
    assert_eq!(refused[0]["failures"], 1, "{text}");
    assert!(refused[0].get("client").is_some() && refused[0].get("peer").is_none());
    assert!(!text.contains("Some(") && !text.contains("Wrong"), "{text}");
}
