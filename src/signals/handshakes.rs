//! Passive handshake signal: "SYNs arrive, handshakes do not complete". Reads the request sockets
//! (SYN_RECV) of the service's listeners through NETLINK_SOCK_DIAG every interval, plus the
//! kernel's PassiveOpens counter, and publishes:
//!
//! - `half_open`: request sockets on `ports` at `addresses` now;
//! - `synack_retrans`: SYN-ACK retransmissions they carry (sum);
//! - `oldest_half_open`: seconds the oldest has been half-open since this source first saw it
//!   (resolution: the interval). The kernel's retransmit count cannot date it: a client's
//!   retransmitted SYN also makes us resend the SYN-ACK and counts;
//! - `completed_rate`: handshakes completed per second over `window` (PassiveOpens: the kernel
//!   counts completions per namespace, not per listener, so local connections count too);
//! - `stalled_ratio`: half_open / (half_open + completed in the window).
//!
//! A broken return path shows here: clients' SYNs reach the node, our SYN-ACKs leave by the
//! wrong interface and die, request sockets pile up and retransmit, while local checks (which
//! never leave the host) stay green. `HandshakeStats` is the pure part; `spawn` the edge.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::snapshot::{MissingLog, SourceSnapshot, Ticker};
use super::sockdiag::{DiagSocket, SockDiag, TCP_LISTEN, TCP_SYN_RECV};
use super::tcp_stats::{read_proc, section, CounterRates, ProcError};

pub const HALF_OPEN: &str = "half_open";
pub const SYNACK_RETRANS: &str = "synack_retrans";
pub const OLDEST_HALF_OPEN: &str = "oldest_half_open";
pub const COMPLETED_RATE: &str = "completed_rate";
pub const STALLED_RATIO: &str = "stalled_ratio";

/// An address or prefix the handshakes are counted for (a VIP's prefix, or one `addresses:` entry
/// as /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMatch {
    pub addr: IpAddr,
    pub len: u8,
}

impl AddrMatch {
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let bits = u32::from(self.len.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let bits = u32::from(self.len.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakesConfig {
    pub interval: Duration,
    pub window: Duration,
    pub ports: Vec<u16>,
    /// Local addresses the clients connect to; config fills in the VIP prefixes when not given.
    pub addresses: Vec<AddrMatch>,
}

/// A request socket: local address and port, remote address and port.
type Key = (IpAddr, u16, IpAddr, u16);

/// Most request sockets whose first sighting is remembered; a SYN flood beyond this only makes
/// `oldest_half_open` younger, never memory larger.
const MAX_TRACKED: usize = 65_536;

/// One round's reading: the sockets the dump returned (LISTEN and SYN_RECV) and the PassiveOpens
/// counter.
pub struct Reading {
    pub sockets: Result<Vec<DiagSocket>, String>,
    pub passive_opens: Result<i64, String>,
}

/// The pure part: turns readings into snapshots.
#[derive(Debug)]
pub struct HandshakeStats {
    cfg: HandshakesConfig,
    completed: CounterRates<1>,
    first_seen: HashMap<Key, Instant>,
}

impl HandshakeStats {
    pub fn new(cfg: &HandshakesConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            completed: CounterRates::new(cfg.window),
            first_seen: HashMap::new(),
        }
    }

    fn ours(&self, s: &DiagSocket) -> bool {
        self.cfg.ports.contains(&s.local_port)
            && (self.cfg.addresses.is_empty()
                || self.cfg.addresses.iter().any(|m| m.contains(s.local)))
    }

    /// A listener serves our addresses when bound to one of them or to the wildcard.
    fn listens(&self, s: &DiagSocket) -> bool {
        s.state == TCP_LISTEN
            && self.cfg.ports.contains(&s.local_port)
            && (s.local.is_unspecified() || self.ours(s))
    }

    pub fn update(&mut self, now: Instant, reading: Reading) -> SourceSnapshot {
        let mut snap = SourceSnapshot {
            updated: Some(now),
            ..SourceSnapshot::default()
        };
        let rate = match reading.passive_opens {
            Ok(n) => self.completed.push(now, [n]).map(|[r]| r),
            Err(e) => {
                snap.missing = Some(e);
                return snap;
            }
        };
        let sockets = match reading.sockets {
            Ok(s) => s,
            Err(e) => {
                snap.missing = Some(format!("sock_diag: {e}"));
                return snap;
            }
        };
        if !sockets.iter().any(|s| self.listens(s)) {
            snap.missing = Some(format!(
                "no listener on ports {:?} at the watched addresses",
                self.cfg.ports
            ));
            return snap;
        }
        let half: Vec<&DiagSocket> = sockets
            .iter()
            .filter(|s| s.state == TCP_SYN_RECV && self.ours(s))
            .collect();
        let half_open = half.len() as f64;
        let retrans: u64 = half.iter().map(|s| u64::from(s.retrans)).sum();
        let mut seen = HashMap::with_capacity(half.len().min(MAX_TRACKED));
        for s in half.iter().take(MAX_TRACKED) {
            let k = (s.local, s.local_port, s.remote, s.remote_port);
            seen.insert(k, self.first_seen.get(&k).copied().unwrap_or(now));
        }
        self.first_seen = seen;
        let oldest = self
            .first_seen
            .values()
            .map(|t| now.saturating_duration_since(*t))
            .max()
            .unwrap_or_default();
        let v = &mut snap.values;
        v.insert(HALF_OPEN.to_owned(), half_open);
        v.insert(SYNACK_RETRANS.to_owned(), retrans as f64);
        v.insert(OLDEST_HALF_OPEN.to_owned(), oldest.as_secs_f64());
        // Until two counter samples exist nothing is known about completions: no ratio either.
        if let Some(rate) = rate {
            v.insert(COMPLETED_RATE.to_owned(), rate);
            let completed = rate * self.cfg.window.as_secs_f64();
            let ratio = if half_open + completed > 0.0 {
                half_open / (half_open + completed)
            } else {
                0.0
            };
            v.insert(STALLED_RATIO.to_owned(), ratio);
        }
        snap
    }
}

/// PassiveOpens from the Tcp section of /proc/net/snmp.
pub fn read_passive_opens(proc_net: &std::path::Path) -> Result<i64, ProcError> {
    let snmp = read_proc(&proc_net.join("snmp"))?;
    section(&snmp, "Tcp")
        .map_err(|source| ProcError::Section {
            file: "snmp",
            source,
        })?
        .into_iter()
        .find(|(n, _)| *n == "PassiveOpens")
        .map(|(_, v)| v)
        .ok_or(ProcError::Missing {
            file: Some("snmp"),
            section: "Tcp",
            name: "PassiveOpens",
        })
}

/// One blocking round; the socket is handed back for reuse, or dropped after an error.
fn sample_blocking(diag: Option<SockDiag>) -> (Reading, Option<SockDiag>) {
    // The state machine takes the reason as the snapshot's `missing` text.
    let passive_opens = read_passive_opens(&PathBuf::from("/proc/net")).map_err(|e| e.to_string());
    let mut diag = match diag.map_or_else(SockDiag::open, Ok) {
        Ok(d) => d,
        Err(e) => {
            let sockets = Err(format!("cannot open NETLINK_SOCK_DIAG: {e}"));
            return (
                Reading {
                    sockets,
                    passive_opens,
                },
                None,
            );
        }
    };
    match diag.sockets((1 << TCP_LISTEN) | (1 << TCP_SYN_RECV)) {
        Ok(s) => (
            Reading {
                sockets: Ok(s),
                passive_opens,
            },
            Some(diag),
        ),
        Err(e) => (
            Reading {
                sockets: Err(e.to_string()),
                passive_opens,
            },
            None,
        ),
    }
}

pub fn spawn(
    cfg: HandshakesConfig,
    tx: watch::Sender<SourceSnapshot>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stats = HandshakeStats::new(&cfg);
        let mut diag: Option<SockDiag> = None;
        let mut log = MissingLog::default();
        let mut ticker = Ticker::new(cfg.interval, stop);
        while ticker.tick().await {
            let d = diag.take();
            let round = tokio::task::spawn_blocking(move || sample_blocking(d));
            let Some(round) = ticker.run(round).await else {
                return;
            };
            let reading = match round {
                Ok((r, d)) => {
                    diag = d;
                    r
                }
                Err(e) => Reading {
                    sockets: Err(format!("sampling task failed: {e}")),
                    passive_opens: Err(String::new()),
                },
            };
            let snap = stats.update(Instant::now(), reading);
            log.note("handshakes", snap.missing.as_deref());
            tx.send_replace(snap);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VIP: &str = "203.0.113.10";

    fn cfg() -> HandshakesConfig {
        HandshakesConfig {
            interval: Duration::from_secs(1),
            window: Duration::from_secs(10),
            ports: vec![80, 443],
            addresses: vec![AddrMatch::host(VIP.parse().unwrap())],
        }
    }

    fn sock(state: u8, local: &str, port: u16, retrans: u8, expires_ms: u32) -> DiagSocket {
        DiagSocket {
            family: 2,
            state,
            retrans,
            local: local.parse().unwrap(),
            local_port: port,
            remote: "192.0.2.2".parse().unwrap(),
            remote_port: 40000,
            expires_ms,
            rqueue: 0,
            wqueue: 128,
            last_recv_ms: None,
        }
    }

    fn reading(sockets: Vec<DiagSocket>, opens: i64) -> Reading {
        Reading {
            sockets: Ok(sockets),
            passive_opens: Ok(opens),
        }
    }

    #[test]
    fn stalled_handshakes_on_the_vip() {
        let mut hs = HandshakeStats::new(&cfg());
        let t0 = Instant::now();
        let listener = sock(TCP_LISTEN, "0.0.0.0", 80, 0, 0);
        let first = hs.update(t0, reading(vec![listener], 100));
        assert_eq!(first.missing, None);
        assert_eq!(first.values[HALF_OPEN], 0.0);
        assert!(!first.values.contains_key(STALLED_RATIO), "no rate yet");
        let round = vec![
            listener,
            sock(TCP_SYN_RECV, VIP, 80, 2, 1000),
            sock(TCP_SYN_RECV, VIP, 443, 1, 500),
            // Other port, other address: not ours.
            sock(TCP_SYN_RECV, VIP, 22, 3, 0),
            sock(TCP_SYN_RECV, "198.51.100.2", 80, 3, 0),
        ];
        // 2 completions in 1 s (local checks): 20 over the 10 s window.
        let s = hs.update(t0 + Duration::from_secs(1), reading(round, 102));
        assert_eq!(s.values[HALF_OPEN], 2.0);
        assert_eq!(s.values[SYNACK_RETRANS], 3.0);
        assert_eq!(s.values[OLDEST_HALF_OPEN], 0.0, "first seen now");
        assert_eq!(s.values[COMPLETED_RATE], 2.0);
        assert!((s.values[STALLED_RATIO] - 2.0 / 22.0).abs() < 1e-9);
        // 2 s later the one on port 80 is still there, the other completed; a new one arrived.
        let later = vec![
            listener,
            sock(TCP_SYN_RECV, VIP, 80, 3, 1000),
            DiagSocket {
                remote_port: 40001,
                ..sock(TCP_SYN_RECV, VIP, 80, 0, 1000)
            },
        ];
        let s = hs.update(t0 + Duration::from_secs(3), reading(later, 102));
        assert_eq!(s.values[OLDEST_HALF_OPEN], 2.0);
        assert_eq!(s.values[HALF_OPEN], 2.0);
    }

    #[test]
    fn nothing_arriving_is_not_stalled() {
        let mut hs = HandshakeStats::new(&cfg());
        let t0 = Instant::now();
        let l = sock(TCP_LISTEN, VIP, 443, 0, 0);
        hs.update(t0, reading(vec![l], 5));
        let s = hs.update(t0 + Duration::from_secs(1), reading(vec![l], 5));
        assert_eq!(s.values[STALLED_RATIO], 0.0);
        assert_eq!(s.values[COMPLETED_RATE], 0.0);
    }

    #[test]
    fn missing_listener_or_netlink_is_missing_not_zero() {
        let mut hs = HandshakeStats::new(&cfg());
        let t0 = Instant::now();
        // A listener on another address does not serve the VIP.
        let s = hs.update(
            t0,
            reading(vec![sock(TCP_LISTEN, "127.0.0.1", 80, 0, 0)], 1),
        );
        assert!(s.missing.unwrap().contains("no listener"));
        assert!(s.values.is_empty());
        let s = hs.update(
            t0,
            Reading {
                sockets: Err("Operation not permitted (os error 1)".into()),
                passive_opens: Ok(1),
            },
        );
        assert!(s.missing.unwrap().contains("not permitted"));
        let s = hs.update(
            t0,
            Reading {
                sockets: Ok(vec![]),
                passive_opens: Err("snmp: gone".into()),
            },
        );
        assert_eq!(s.missing.as_deref(), Some("snmp: gone"));
    }

    #[test]
    fn prefixes_match_by_length() {
        let m = AddrMatch {
            addr: "203.0.113.0".parse().unwrap(),
            len: 24,
        };
        assert!(m.contains("203.0.113.77".parse().unwrap()));
        assert!(!m.contains("203.0.114.1".parse().unwrap()));
        assert!(!m.contains("2001:db8::1".parse().unwrap()));
        let all = AddrMatch {
            addr: "::".parse().unwrap(),
            len: 0,
        };
        assert!(all.contains("2001:db8::1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn ratio_is_a_ratio(n in 0usize..50, opens in proptest::collection::vec(0i64..1000, 1..8),
                            retrans in any::<u8>(), expires in any::<u32>()) {
            let mut hs = HandshakeStats::new(&cfg());
            let t0 = Instant::now();
            let mut socks = vec![sock(TCP_LISTEN, "::", 80, 0, 0)];
            socks.extend((0..n).map(|_| sock(TCP_SYN_RECV, VIP, 80, retrans, expires)));
            for (i, o) in opens.iter().enumerate() {
                let s = hs.update(t0 + Duration::from_secs(i as u64), reading(socks.clone(), *o));
                prop_assert_eq!(s.values[HALF_OPEN], n as f64);
                if let Some(r) = s.values.get(STALLED_RATIO) {
                    prop_assert!((0.0..=1.0).contains(r));
                }
            }
        }
    }

    #[test]
    fn live_half_open_on_loopback() {
        // A SYN to a listener whose SYN-ACK cannot be answered is what a broken return path
        // looks like; here, a full accept queue with backlog 0 stands in: the kernel keeps
        // further connections as request sockets or drops them. Only the read path is tested:
        // the dump works unprivileged and finds our listener.
        let (_l, addr) = crate::signals::sockdiag::tests::small_listener("127.0.0.1");
        let mut d = SockDiag::open().unwrap();
        let socks = d.sockets((1 << TCP_LISTEN) | (1 << TCP_SYN_RECV)).unwrap();
        assert!(socks
            .iter()
            .any(|s| s.state == TCP_LISTEN && s.local_port == addr.port()));
        assert!(read_passive_opens(std::path::Path::new("/proc/net")).unwrap() >= 0);
    }
}
