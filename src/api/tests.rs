//! The API over real HTTP on 127.0.0.1 against a fake daemon: endpoints, auth, bad input,
//! timeouts, limits, and the CLI functions against the same server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

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
            token: token.map(String::from),
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
    let server = tokio::spawn(server.run(token.map(String::from), handle, stop.clone()));
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

    let m = get(h.addr, "/metrics").await;
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
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
async fn bad_requests_are_refused_and_send_no_command() {
    let h = start(Some(TOKEN)).await;
    let r = post(h.addr, "/v1/vips/nope/drain", Some(TOKEN), "").await;
    assert_eq!(r.status, 404);
    let j = r.json();
    assert_eq!(
        (j["error"].as_str(), j["vip"].as_str()),
        (Some("unknown_vip"), Some("nope"))
    );

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
async fn connection_limit_queues_and_the_timeout_frees_slots() {
    let limits = Limits {
        max_connections: 2,
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let h = start_with(None, limits, None).await;
    let a = slowloris(h.addr).await;
    let b = slowloris(h.addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Both slots are taken: the third waits in the accept queue until a stalled one is dropped.
    let t0 = Instant::now();
    assert_eq!(get(h.addr, "/v1/status").await.status, 200);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "served too early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    drop((a, b));
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

    let e = client::drain(&t, Some("no pe"), None, false)
        .await
        .unwrap_err();
    assert_eq!(
        format!("{e}"),
        r#"vipwarden API: 404 Not Found: no VIP named "no pe" (known: web, api)"#
    );
    let e = client::drain(&h.target(None), Some("web"), None, false)
        .await
        .unwrap_err();
    assert!(
        format!("{e}").starts_with("vipwarden API: 401 Unauthorized: missing"),
        "{e}"
    );
    assert!(format!("{e}").contains("found no token"), "{e}");

    let dead = ApiTarget {
        addr: "127.0.0.1:1".parse().unwrap(),
        token: None,
    };
    let e = client::status(&dead, false).await.unwrap_err();
    assert!(format!("{e:#}").contains("is the daemon running"), "{e:#}");
}
