//! `vipwarden probe VIP[:PORT]`: the triage ladder for one VIP. 1: do clients' SYNs reach the node
//! and complete (half-open request sockets over a few seconds)? 2: does TCP connect from the
//! node? 3: does TLS complete (https)? 4: does the application answer? Stops at the first failing
//! step and says whose side the evidence points to. Step judgements are pure functions; `run`
//! does the I/O.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::evaluate::Level;
use super::x509;
use crate::signals::handshakes::read_passive_opens;
use crate::signals::sockdiag::{SockDiag, TCP_SYN_RECV};

#[derive(Clone, Debug)]
pub struct ProbeOptions {
    pub vip: IpAddr,
    pub port: u16,
    pub tls: bool,
    /// Path and Host for step 4.
    pub path: String,
    pub host: String,
    /// How long step 1 watches the half-open sockets.
    pub watch: Duration,
    pub timeout: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub step: u8,
    pub name: &'static str,
    pub level: Level,
    pub summary: String,
    pub evidence: Vec<String>,
    /// Whose side the evidence points to, on failure.
    pub points_to: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub target: String,
    pub steps: Vec<Step>,
    /// True when every step ran and none failed.
    pub complete: bool,
}

impl ProbeReport {
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.level == Level::Fail)
    }

    pub fn text(&self) -> String {
        let mut s = format!("probe {}\n", self.target);
        for st in &self.steps {
            let _ = writeln!(
                s,
                "step {} {:<10} {:<4} {}",
                st.step,
                st.name,
                st.level.label(),
                st.summary
            );
            for e in &st.evidence {
                let _ = writeln!(s, "       evidence: {e}");
            }
            if let Some(p) = &st.points_to {
                let _ = writeln!(s, "       points to: {p}");
            }
        }
        let verdict = match self.steps.iter().find(|s| s.level == Level::Fail) {
            Some(f) => format!("stopped at step {} ({})", f.step, f.name),
            None => format!("all {} steps passed", self.steps.len()),
        };
        let _ = writeln!(s, "probe: {verdict}");
        s
    }
}

/// A probe target that is not an address (with or without port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTarget(pub String);

impl std::fmt::Display for BadTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not VIP, VIP:PORT or [IPv6]:PORT", self.0)
    }
}

impl std::error::Error for BadTarget {}

/// Why `probe`'s options could not be made: the target, or the URL of the http(s) check on it.
#[derive(Debug)]
pub enum OptionsError {
    Target(BadTarget),
    CheckUrl(crate::checks::UrlError),
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionsError::Target(e) => e.fmt(f),
            OptionsError::CheckUrl(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for OptionsError {}

/// Parses `VIP`, `VIP:PORT`, `IPv6` or `[IPv6]:PORT`; the port is None when not given.
pub fn parse_target(t: &str) -> Result<(IpAddr, Option<u16>), BadTarget> {
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    t.parse::<SocketAddr>()
        .map(|a| (a.ip(), Some(a.port())))
        .map_err(|_| BadTarget(t.to_owned()))
}

/// Probe options for `target`: the port, TLS, path and Host come from an http(s) check on that
/// VIP in `cfg` when there is one; else port 80 (plain) or 443 (TLS), path `/`.
pub fn options_for(
    target: &str,
    cfg: Option<&crate::config::Config>,
    watch: Duration,
    timeout: Duration,
) -> Result<ProbeOptions, OptionsError> {
    let (vip, port) = parse_target(target).map_err(OptionsError::Target)?;
    let check = cfg.and_then(|c| {
        c.checks.iter().find_map(|ch| {
            let crate::config::CheckKind::Http(h) = &ch.kind else {
                return None;
            };
            let (ip, p) = crate::checks::check_target(ch)?;
            (ip == vip && port.is_none_or(|want| want == p)).then_some((h, p))
        })
    });
    let host_of = |port: u16, tls: bool| {
        let h = if vip.is_ipv4() {
            vip.to_string()
        } else {
            format!("[{vip}]")
        };
        if port == if tls { 443 } else { 80 } {
            h
        } else {
            format!("{h}:{port}")
        }
    };
    Ok(match check {
        Some((h, p)) => {
            let t = crate::checks::url::parse(&h.url).map_err(OptionsError::CheckUrl)?;
            ProbeOptions {
                vip,
                port: p,
                tls: h.tls,
                path: t.path,
                host: h.host.clone().unwrap_or(t.authority),
                watch,
                timeout,
            }
        }
        None => {
            let port = port.unwrap_or(80);
            let tls = port == 443;
            ProbeOptions {
                vip,
                port,
                tls,
                path: "/".into(),
                host: host_of(port, tls),
                watch,
                timeout,
            }
        }
    })
}

/// One look at the request sockets of the VIP listener: when (since the watch began), the
/// clients (remote address and port) of the half-open connections, and their SYN-ACK
/// retransmissions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HalfOpenSample {
    pub at: Duration,
    pub peers: Vec<(IpAddr, u16)>,
    pub retrans: u64,
}

/// A connection that appeared during the watch and was still half-open this long later stalled:
/// a handshake across any sane network completes in far less.
const STALLED_AFTER: Duration = Duration::from_secs(1);

/// Step 1 from what was watched: half-open samples, handshakes completed (PassiveOpens delta,
/// None if unreadable) over `watched`. Connections already half-open when the watch began are
/// reported but not judged: they may predate a fix.
pub fn judge_arrival(
    target: &str,
    samples: &[HalfOpenSample],
    completed: Option<i64>,
    watched: Duration,
) -> Step {
    use std::collections::HashMap;
    let mut first: HashMap<(IpAddr, u16), Duration> = HashMap::new();
    let mut last: HashMap<(IpAddr, u16), Duration> = HashMap::new();
    for s in samples {
        for p in &s.peers {
            first.entry(*p).or_insert(s.at);
            last.insert(*p, s.at);
        }
    }
    let start = samples.first().map(|s| s.at).unwrap_or_default();
    let stalled = first
        .iter()
        .filter(|(p, f)| **f > start && last[*p].saturating_sub(**f) >= STALLED_AFTER)
        .count();
    let new = first.values().filter(|f| **f > start).count();
    let before = first.len() - new;
    let max = samples.iter().map(|s| s.peers.len()).max().unwrap_or(0);
    let retrans = samples.iter().map(|s| s.retrans).max().unwrap_or(0);
    let secs = watched.as_secs_f64();
    let done = completed.unwrap_or(0);
    let mut evidence = vec![format!(
        "sock_diag over {secs:.1} s ({} samples) on {target}: up to {max} half-open, {retrans} SYN-ACK retransmissions; {new} new, of which {stalled} still half-open after {} s; {before} already half-open at the start",
        samples.len(),
        STALLED_AFTER.as_secs()
    )];
    if let Some(c) = completed {
        evidence.push(format!(
            "handshakes completed on this host (PassiveOpens, local ones included): {c} in {secs:.1} s"
        ));
    }
    // A few slow clients on a busy node are normal; a tenth of the handshakes stalling is not.
    let (level, summary, points_to) = if stalled >= 2 && stalled as i64 * 10 >= done {
        (
            Level::Fail,
            format!("clients' SYNs reach the node ({stalled} new connections stalled half-open), but the handshakes do not complete: our SYN-ACKs do not reach them"),
            Some("the return path: replies from the VIP leave by the wrong uplink or are dropped on the way back (host routing first: run `vipwarden doctor`; then the network team with this evidence)".to_string()),
        )
    } else if first.is_empty() && done > 0 {
        (
            Level::Ok,
            format!("nothing half-open on {target}; {done} handshakes completed on this host in {secs:.1} s (PassiveOpens counts every listener)"),
            None,
        )
    } else if done > 0 || new > 0 {
        (
            Level::Ok,
            format!("handshakes complete ({done} in {secs:.1} s); {stalled} stalled"),
            None,
        )
    } else {
        (
            Level::Warn,
            format!("no client SYN seen for {target} in {secs:.1} s: idle, or the fabric sends no traffic here (is the route announced and preferred at the ToR?)"),
            None,
        )
    };
    Step {
        step: 1,
        name: "arrival",
        level,
        summary,
        evidence,
        points_to,
    }
}

/// The status code of an HTTP/1.x response's first bytes.
pub fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let mut parts = line.split(|&b| b == b' ');
    let version = parts.next()?;
    if !version.starts_with(b"HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn sample(
    diag: &mut SockDiag,
    vip: IpAddr,
    port: u16,
    at: Duration,
) -> Result<HalfOpenSample, String> {
    let socks = diag.sockets(1 << TCP_SYN_RECV).map_err(|e| e.to_string())?;
    let mine: Vec<_> = socks
        .iter()
        .filter(|s| s.state == TCP_SYN_RECV && s.local == vip && s.local_port == port)
        .collect();
    Ok(HalfOpenSample {
        at,
        peers: mine.iter().map(|s| (s.remote, s.remote_port)).collect(),
        retrans: mine.iter().map(|s| u64::from(s.retrans)).sum(),
    })
}

/// Step 1's blocking watch.
fn watch_arrival(
    vip: IpAddr,
    port: u16,
    watch: Duration,
) -> Result<(Vec<HalfOpenSample>, Option<i64>, Duration), String> {
    let mut diag = SockDiag::open().map_err(|e| format!("cannot open NETLINK_SOCK_DIAG: {e}"))?;
    let proc_net = std::path::Path::new("/proc/net");
    let before = read_passive_opens(proc_net).ok();
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        samples.push(sample(&mut diag, vip, port, start.elapsed())?);
        if start.elapsed() >= watch {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = read_passive_opens(proc_net).ok();
    let completed = before.zip(after).map(|(a, b)| (b - a).max(0));
    Ok((samples, completed, start.elapsed()))
}

fn fail(
    step: u8,
    name: &'static str,
    summary: String,
    evidence: Vec<String>,
    points_to: &str,
) -> Step {
    Step {
        step,
        name,
        level: Level::Fail,
        summary,
        evidence,
        points_to: Some(points_to.to_string()),
    }
}

fn ok(step: u8, name: &'static str, summary: String, evidence: Vec<String>) -> Step {
    Step {
        step,
        name,
        level: Level::Ok,
        summary,
        evidence,
        points_to: None,
    }
}

async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    path: &str,
) -> Result<u16, String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipwarden-probe\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // The status line is all we need; a bound keeps a chatty server from growing this.
    while !head.contains(&b'\n') && head.len() < 8192 {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_of(&head).ok_or_else(|| {
        let shown = String::from_utf8_lossy(&head[..head.len().min(60)]).into_owned();
        format!("no HTTP status line in the answer ({shown:?})")
    })
}

/// Runs the ladder.
pub async fn run(o: &ProbeOptions) -> ProbeReport {
    let addr = SocketAddr::new(o.vip, o.port);
    let target = addr.to_string();
    let mut steps = Vec::new();
    let done = |steps: Vec<Step>| {
        let complete = steps.len() == if o.tls { 4 } else { 3 }
            && !steps.iter().any(|s| s.level == Level::Fail);
        ProbeReport {
            target: target.clone(),
            steps,
            complete,
        }
    };

    // 1: arrival.
    let (vip, port, watch) = (o.vip, o.port, o.watch);
    let arrival = tokio::task::spawn_blocking(move || watch_arrival(vip, port, watch)).await;
    let step1 = match arrival {
        Ok(Ok((samples, completed, watched))) => {
            judge_arrival(&target, &samples, completed, watched)
        }
        Ok(Err(e)) => Step {
            step: 1,
            name: "arrival",
            level: Level::Warn,
            summary: format!("could not watch the half-open sockets: {e}"),
            evidence: Vec::new(),
            points_to: None,
        },
        Err(e) => Step {
            step: 1,
            name: "arrival",
            level: Level::Warn,
            summary: format!("watch task failed: {e}"),
            evidence: Vec::new(),
            points_to: None,
        },
    };
    let stop = step1.level == Level::Fail;
    steps.push(step1);
    if stop {
        return done(steps);
    }

    // 2: TCP connect from the node.
    let t = Instant::now();
    let tcp = match tokio::time::timeout(o.timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            steps.push(fail(2, "connect", format!("TCP connect to {target} failed: {e}"), vec![format!("connect from this host after {} ms", t.elapsed().as_millis())], "the service or the host: nothing accepts on the VIP (listener, firewall); run `vipwarden doctor`"));
            return done(steps);
        }
        Err(_) => {
            steps.push(fail(
                2,
                "connect",
                format!("TCP connect to {target} timed out after {:?}", o.timeout),
                Vec::new(),
                "the host: a local firewall or a full accept queue (run `vipwarden doctor`)",
            ));
            return done(steps);
        }
    };
    let local = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
    steps.push(ok(
        2,
        "connect",
        format!(
            "TCP connected in {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        ),
        vec![format!(
            "{local} -> {target} ({})",
            path_note(addr.ip(), crate::checks::on_this_host(addr.ip()))
        )],
    ));

    // 3: TLS, for https.
    if o.tls {
        let t = Instant::now();
        let tls = async {
            let cfg = crate::checks::tls_client_config(None, true).map_err(|e| e.to_string())?;
            let name = crate::checks::tls_server_name(&o.host).map_err(|e| e.to_string())?;
            tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))
        };
        let mut stream = match tokio::time::timeout(o.timeout, tls).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                steps.push(fail(
                    3,
                    "tls",
                    e,
                    Vec::new(),
                    "the service team: TLS configuration of the listener",
                ));
                return done(steps);
            }
            Err(_) => {
                steps.push(fail(
                    3,
                    "tls",
                    format!("no TLS handshake within {:?}", o.timeout),
                    Vec::new(),
                    "the service team: the listener accepts but does not speak TLS",
                ));
                return done(steps);
            }
        };
        let (_, conn) = stream.get_ref();
        let proto = conn
            .protocol_version()
            .map_or_else(|| "?".into(), |v| format!("{v:?}"));
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|d| x509::parse(d));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let ev = vec![match &cert {
            Some(c) => format!(
                "{proto}, subject {:?}, expires {} ({} days)",
                c.subject,
                x509::utc(c.not_after),
                (c.not_after - now).div_euclid(86_400)
            ),
            None => format!("{proto}, certificate not parseable"),
        }];
        if cert.as_ref().is_some_and(|c| c.not_after <= now) {
            steps.push(fail(
                3,
                "tls",
                "the certificate has expired".into(),
                ev,
                "the service team: renew the certificate",
            ));
            return done(steps);
        }
        steps.push(ok(
            3,
            "tls",
            format!(
                "TLS handshake in {:.1} ms",
                t.elapsed().as_secs_f64() * 1000.0
            ),
            ev,
        ));
        let t = Instant::now();
        let res = tokio::time::timeout(o.timeout, http_get(&mut stream, &o.host, &o.path)).await;
        steps.push(answer(4, res, t, o));
    } else {
        let mut tcp = tcp;
        let t = Instant::now();
        let res = tokio::time::timeout(o.timeout, http_get(&mut tcp, &o.host, &o.path)).await;
        steps.push(answer(3, res, t, o));
    }
    done(steps)
}

fn answer(
    step: u8,
    res: Result<Result<u16, String>, tokio::time::error::Elapsed>,
    t: Instant,
    o: &ProbeOptions,
) -> Step {
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let what = format!("GET {} (Host {})", o.path, o.host);
    match res {
        Ok(Ok(code)) if (200..400).contains(&code) => ok(
            step,
            "answer",
            format!("HTTP {code} in {ms:.1} ms"),
            vec![what],
        ),
        Ok(Ok(code)) => fail(
            step,
            "answer",
            format!("HTTP {code} in {ms:.1} ms"),
            vec![what],
            "the application team: the service answers with an error",
        ),
        Ok(Err(e)) => fail(
            step,
            "answer",
            e,
            vec![what],
            "the application team: the service accepts but does not answer HTTP",
        ),
        Err(_) => fail(
            step,
            "answer",
            format!("no answer within {:?}", o.timeout),
            vec![what],
            "the application team: the service accepts but does not answer",
        ),
    }
}

/// Whether the connect of step 2 stayed on this host: only when the VIP is an address of it
/// (the test `check-config` uses too). From a client's namespace the connection went out
/// through the fabric, and says so.
fn path_note(ip: IpAddr, on_host: bool) -> String {
    if on_host {
        "local: does not cross the fabric".to_string()
    } else {
        format!("crossed the network: {ip} is not an address of this host")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Issue 22: a probe from a client's namespace went through the ToR; it is not "local".
    #[test]
    fn the_connect_step_is_local_only_for_an_address_of_this_host() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(crate::checks::on_this_host(lo));
        assert_eq!(path_note(lo, true), "local: does not cross the fabric");
        // A documentation address no test machine holds.
        let vip: IpAddr = "203.0.113.254".parse().unwrap();
        let on = crate::checks::on_this_host(vip);
        assert!(!on);
        assert_eq!(
            path_note(vip, on),
            "crossed the network: 203.0.113.254 is not an address of this host"
        );
    }

    fn s(at_ms: u64, ports: &[u16]) -> HalfOpenSample {
        HalfOpenSample {
            at: Duration::from_millis(at_ms),
            peers: ports.iter().map(|p| (ip("192.0.2.2"), *p)).collect(),
            retrans: ports.len() as u64,
        }
    }

    #[test]
    fn stalled_handshakes_fail_step_one_and_blame_the_return_path() {
        let w = Duration::from_secs(3);
        // Broken: new clients keep arriving and none completes.
        let broken = [
            s(0, &[1]),
            s(500, &[1, 2]),
            s(1000, &[1, 2, 3]),
            s(1600, &[1, 2, 3, 4]),
            s(2600, &[2, 3, 4, 5]),
        ];
        let st = judge_arrival("203.0.113.10:80", &broken, Some(4), w);
        assert_eq!(st.level, Level::Fail, "{st:?}");
        assert!(st.points_to.unwrap().contains("return path"));
        assert!(
            st.evidence[0].contains("4 new, of which 3 still half-open"),
            "{}",
            st.evidence[0]
        );
        // Fixed: leftovers from before (1, 2) linger; new ones complete between samples.
        let fixed = [
            s(0, &[1, 2]),
            s(500, &[1, 2, 7]),
            s(1000, &[1]),
            s(2000, &[1, 9]),
        ];
        let st = judge_arrival("v", &fixed, Some(30), w);
        assert_eq!(st.level, Level::Ok, "{st:?}");
        // Idle.
        let st = judge_arrival("v", &[s(0, &[]), s(3000, &[])], Some(0), w);
        assert_eq!(st.level, Level::Warn);
        // Two slow clients among hundreds of completions: not the return path.
        let slow = [s(0, &[]), s(100, &[5, 6]), s(1500, &[5, 6])];
        assert_eq!(judge_arrival("v", &slow, Some(400), w).level, Level::Ok);
    }

    #[test]
    fn targets_and_options() {
        assert_eq!(
            parse_target("203.0.113.10").unwrap(),
            (ip("203.0.113.10"), None)
        );
        assert_eq!(
            parse_target("203.0.113.10:443").unwrap(),
            (ip("203.0.113.10"), Some(443))
        );
        assert_eq!(
            parse_target("[2001:db8::10]:80").unwrap(),
            (ip("2001:db8::10"), Some(80))
        );
        assert_eq!(
            parse_target("2001:db8::10").unwrap(),
            (ip("2001:db8::10"), None)
        );
        assert_eq!(
            parse_target("vip.example").unwrap_err().to_string(),
            "\"vip.example\" is not VIP, VIP:PORT or [IPv6]:PORT"
        );
        let w = Duration::from_secs(1);
        let o = options_for("203.0.113.10:443", None, w, w).unwrap();
        assert!(o.tls);
        assert_eq!(o.host, "203.0.113.10");
        let cfg = crate::config::parse(
            std::path::Path::new("vw.yaml"),
            r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: t, address: 198.51.100.1, remote_as: 65000}]
checks: [{name: h, type: https, url: "https://203.0.113.10:8443/healthz", host: www.example}]
vips: [{name: web, prefixes: [203.0.113.10/32], checks: [h]}]
"#,
        )
        .unwrap();
        let o = options_for("203.0.113.10", Some(&cfg), w, w).unwrap();
        assert_eq!(
            (o.port, o.tls, o.path.as_str(), o.host.as_str()),
            (8443, true, "/healthz", "www.example")
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\nServer: x"), Some(200));
        assert_eq!(
            status_of(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 20"), None);
        assert_eq!(status_of(b""), None);
    }

    proptest! {
        #[test]
        fn status_of_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(c) = status_of(&b) { prop_assert!(c <= 999); }
        }
    }

    #[tokio::test]
    async fn ladder_against_a_local_http_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let mut b = [0u8; 512];
                let _ = c.read(&mut b).await;
                let _ = c.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            }
        });
        let o = ProbeOptions {
            vip: "127.0.0.1".parse().unwrap(),
            port,
            tls: false,
            path: "/".into(),
            host: "127.0.0.1".into(),
            watch: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
        };
        let r = run(&o).await;
        assert!(!r.failed(), "{}", r.text());
        assert_eq!(r.steps.len(), 3);
        assert!(r.steps[2].summary.contains("HTTP 204"));
        // Nothing listening: stops at connect.
        drop(r);
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let r = run(&ProbeOptions { port, ..o }).await;
        assert!(r.failed());
        assert_eq!(r.steps.last().unwrap().name, "connect");
    }
}
