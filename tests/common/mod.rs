//! Helpers for the end-to-end daemon tests: a minimal in-process BGP router on loopback that
//! records what it receives and when, a healthy TCP service for checks, an HTTP client for the
//! API. Each scenario is its own test binary so heavy ones do not skew others' timing.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use vipwarden::config::Config;

pub const PEER_AS: u32 = 65000;
pub const LOCAL_AS: u32 = 65101;
pub const KEEPALIVE: u8 = 4;
const UPDATE: u8 = 2;
const NOTIFICATION: u8 = 3;

/// What the fake router saw from the daemon.
#[derive(Default)]
pub struct PeerLog {
    /// Sessions accepted (a reset shows as a second one).
    pub sessions: usize,
    /// Arrival time and type of every message after our OPEN.
    pub messages: Vec<(Instant, u8)>,
    /// IPv4 prefixes announced minus withdrawn.
    pub prefixes: i64,
    pub notifications: Vec<Vec<u8>>,
}

impl PeerLog {
    /// The longest silence from the daemon while Established.
    pub fn max_gap(&self) -> Duration {
        self.messages
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default()
    }
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

fn open(hold: u16) -> Vec<u8> {
    let caps: &[u8] = &[
        1, 4, 0, 1, 0, 1, // multiprotocol IPv4 unicast
        65, 4, 0, 0, 0xfd, 0xe8, // four-octet AS 65000
    ];
    let mut b = vec![4];
    b.extend_from_slice(&(PEER_AS as u16).to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&[192, 0, 2, 2]);
    b.push(caps.len() as u8 + 2);
    b.push(2);
    b.push(caps.len() as u8);
    b.extend_from_slice(caps);
    message(1, &b)
}

/// Counts NLRI in an IPv4 UPDATE body (withdrawn routes, attributes, NLRI).
fn count_update(body: &[u8]) -> i64 {
    let count = |mut b: &[u8]| {
        let mut n = 0;
        while let Some(&len) = b.first() {
            let skip = 1 + usize::from(len).div_ceil(8);
            b = b.get(skip..).unwrap_or_default();
            n += 1;
        }
        n
    };
    let wlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let withdrawn = count(&body[2..2 + wlen]);
    let at = 2 + wlen;
    let alen = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    let announced = count(&body[at + 2 + alen..]);
    announced - withdrawn
}

async fn read_message(s: &mut tokio::net::tcp::OwnedReadHalf) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 19];
    s.read_exact(&mut head).await.ok()?;
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let mut body = vec![0u8; len.checked_sub(19)?];
    s.read_exact(&mut body).await.ok()?;
    Some((head[18], body))
}

/// A router that accepts sessions, offers `hold` seconds and sends KEEPALIVEs every hold/3.
pub async fn fake_router(hold: u16) -> (SocketAddr, Arc<Mutex<PeerLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(PeerLog::default()));
    let l = log.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            l.lock().unwrap().sessions += 1;
            tokio::spawn(serve(s, hold, l.clone()));
        }
    });
    (addr, log)
}

async fn serve(s: TcpStream, hold: u16, log: Arc<Mutex<PeerLog>>) {
    let (mut r, mut w) = s.into_split();
    if read_message(&mut r).await.is_none() {
        return;
    }
    if w.write_all(&open(hold)).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        loop {
            if w.write_all(&message(KEEPALIVE, &[])).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(u64::from(hold / 3).max(1))).await;
        }
    });
    while let Some((kind, body)) = read_message(&mut r).await {
        let mut l = log.lock().unwrap();
        l.messages.push((Instant::now(), kind));
        match kind {
            UPDATE => l.prefixes += count_update(&body),
            NOTIFICATION => l.notifications.push(body),
            _ => {}
        }
    }
    writer.abort();
}

/// Accepts TCP connections and keeps them open until the peer closes (a healthy service).
pub async fn service() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 64];
                while matches!(s.read(&mut b).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// A config of `vips` VIPs (10.0.0.0/32 upwards) spread over `checks` TCP checks of `target`.
pub fn config(
    dir: &Path,
    router: SocketAddr,
    target: SocketAddr,
    checks: usize,
    vips: usize,
    api: SocketAddr,
) -> Config {
    use std::fmt::Write;
    let mut y = format!(
        "router_id: 192.0.2.1\nlocal_as: {LOCAL_AS}\nstate_dir: {}\napi: {{listen: '{api}'}}\n\
         peers:\n  - {{name: tor, address: {}, port: {}, remote_as: {PEER_AS}, next_hop_v4: 192.0.2.1}}\nchecks:\n",
        dir.display(),
        router.ip(),
        router.port()
    );
    for c in 0..checks {
        let _ = writeln!(
            y,
            "  - {{name: c{c}, type: tcp, target: '{target}', interval: 1s, timeout: 500ms, rise: 1, fall: 1}}"
        );
    }
    y += "vips:\n";
    for v in 0..vips {
        let a = std::net::Ipv4Addr::from(0x0a00_0000u32 + v as u32);
        let _ = writeln!(
            y,
            "  - {{name: v{v}, prefixes: ['{a}/32'], checks: [c{}]}}",
            v % checks
        );
    }
    vipwarden::config::parse(Path::new("test.yaml"), &y).unwrap()
}

pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 request to the API; returns the status code and how long the answer took.
pub async fn http(api: SocketAddr, method: &str, path: &str, token: &str) -> (u16, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(api).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: vipwarden\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let code = String::from_utf8_lossy(&resp)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, t0.elapsed())
}

pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
