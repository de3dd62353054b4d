//! `listener` check: passes while a LISTEN socket for the configured port (and address, or a
//! wildcard that covers it) exists in this network namespace.
//!
//! One NETLINK_SOCK_DIAG request per probe, filtered by port in the kernel, on a non-blocking
//! socket driven by the tokio reactor: the kernel answers at once, no thread waits. A second
//! netlink socket takes the kernel's TCP socket-destroy broadcasts for the port
//! (`sys::sock_destroy`): a listener's close wakes [`ListenerProbe::event`] within microseconds,
//! so the scheduler probes at once; where the kernel refuses the subscription the check polls
//! every `interval` only (it polls then too, as a net). "Nobody listens" is a definitive
//! failure: the kernel's own table says so. Owns only its netlink sockets; the wire format
//! (request, bounds-checked decoding) is `signals::sockdiag`'s.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::Mutex;

use super::{CheckConfig, CheckKind, Failure};
use crate::netlink::{decode_datagram, Chunk, NLMSG_HDR_LEN, NLM_F_DUMP, NLM_F_REQUEST};
use crate::signals::sockdiag::{
    decode_socket, destroyed_sockets, listeners_on_port_request, v6only, DiagSocket,
    SOCK_DIAG_BY_FAMILY,
};
use crate::sys::sock_destroy::listener_destroy_watch;

/// A reply is a handful of datagrams at most (filtered by port); this bounds a confused one.
const MAX_DATAGRAMS: usize = 1_000;

pub(super) struct ListenerProbe {
    address: Option<IpAddr>,
    port: u16,
    sock: AsyncFd<Socket>,
    seq: AtomicU32,
    /// Receive buffer, kept across probes (the kernel's dump datagrams are up to 32 KiB).
    buf: Mutex<Vec<u8>>,
    /// Destroy broadcasts of listeners on our port; None where the kernel refused them.
    destroyed: Option<AsyncFd<Socket>>,
}

/// A listening socket on our port: where it is bound and, for IPv6, its V6ONLY flag.
struct Found {
    socket: DiagSocket,
    v6only: Option<bool>,
}

/// Whether a connection to `want` (None: any address) reaches a listener bound to `local`: same
/// address, a wildcard of the same family, or an IPv6 wildcard that also takes IPv4 (V6ONLY off).
/// IPv4-mapped addresses arrive as IPv4 (sock_diag's decoder maps them).
fn accepts(local: IpAddr, v6only: Option<bool>, want: Option<IpAddr>) -> bool {
    let Some(want) = want else { return true };
    if local == want {
        return true;
    }
    match (local, want) {
        (IpAddr::V4(a), IpAddr::V4(_)) => a.is_unspecified(),
        (IpAddr::V6(a), IpAddr::V6(_)) => a.is_unspecified(),
        (IpAddr::V6(a), IpAddr::V4(_)) => a.is_unspecified() && v6only == Some(false),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

impl ListenerProbe {
    /// Opens the netlink socket (needs a tokio runtime with I/O enabled).
    pub(super) fn new(
        address: Option<IpAddr>,
        port: u16,
    ) -> Result<ListenerProbe, super::SetupError> {
        let open = || -> io::Result<AsyncFd<Socket>> {
            let sock = Socket::new(
                Domain::from(libc::AF_NETLINK),
                Type::RAW.cloexec().nonblocking(),
                Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
            )?;
            crate::sys::fd::async_owned(sock)
        };
        let sock = open().map_err(super::SetupError::SockDiag)?;
        let destroyed = match listener_destroy_watch(port) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::info!(
                    "listener check on port {port}: no socket-destroy notifications ({e}); \
                     polling only, so a closed listener is seen within the interval"
                );
                None
            }
        };
        Ok(ListenerProbe {
            address,
            port,
            sock,
            seq: AtomicU32::new(0),
            buf: Mutex::new(vec![0u8; 64 * 1024]),
            destroyed,
        })
    }

    /// Resolves when a listening socket on our port was destroyed (the kernel filter passes
    /// only those), or when notifications may have been lost (receive buffer overrun): either
    /// way the scheduler probes now. Pending forever without notifications. Cancel-safe: a
    /// datagram is consumed only by the non-awaiting read that returns.
    pub(super) async fn event(&self) {
        let Some(sock) = &self.destroyed else {
            return std::future::pending().await;
        };
        let mut buf = [0u8; 2048];
        loop {
            let Ok(mut guard) = sock.readable().await else {
                return std::future::pending().await;
            };
            match guard.try_io(|s| {
                let mut r: &Socket = s.get_ref();
                r.read(&mut buf)
            }) {
                Ok(Ok(n)) => {
                    let port = self.port;
                    if destroyed_sockets(buf.get(..n).unwrap_or(&[]))
                        .iter()
                        .any(|s| s.local_port == port)
                    {
                        return;
                    }
                }
                // ENOBUFS: the kernel dropped broadcasts, ours may be among them.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => return,
                Ok(Err(_)) => return std::future::pending().await,
                Err(_would_block) => {}
            }
        }
    }

    pub(super) async fn run(&self) -> Result<String, Failure> {
        // An IPv4 address may also be served by a dual-stack IPv6 wildcard: ask IPv4 first (the
        // common case answers in one round trip), then IPv6.
        let families: &[i32] = match self.address {
            Some(IpAddr::V6(_)) => &[libc::AF_INET6],
            _ => &[libc::AF_INET, libc::AF_INET6],
        };
        for &family in families {
            let found = self
                .query(family as u8)
                .await
                .map_err(|e| format!("sock_diag query for port {} failed: {e}", self.port))?;
            if let Some(f) = found
                .iter()
                .find(|f| accepts(f.socket.local, f.v6only, self.address))
            {
                return Ok(format!(
                    "listening on {} (accept queue {}/{})",
                    SocketAddr::new(f.socket.local, f.socket.local_port),
                    f.socket.rqueue,
                    f.socket.wqueue
                ));
            }
        }
        Err(Failure::definitive(format!(
            "nobody listens on {}",
            self.wanted()
        )))
    }

    fn wanted(&self) -> String {
        match self.address {
            Some(a) => SocketAddr::new(a, self.port).to_string(),
            None => format!("*:{}", self.port),
        }
    }

    /// The listeners of `family` on our port.
    async fn query(&self, family: u8) -> io::Result<Vec<Found>> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let payload = listeners_on_port_request(family, self.port);
        let len = NLMSG_HDR_LEN + payload.len();
        let mut req = Vec::with_capacity(len);
        req.extend_from_slice(&(len as u32).to_ne_bytes());
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&seq.to_ne_bytes());
        // pid 0: the kernel fills in our port id.
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&payload);
        loop {
            let mut guard = self.sock.writable().await?;
            match guard.try_io(|s| s.get_ref().send(&req)) {
                Ok(sent) => {
                    sent?;
                    break;
                }
                Err(_would_block) => continue,
            }
        }
        let mut buf = self.buf.lock().await;
        let mut msgs = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let mut guard = self.sock.readable().await?;
            let n = match guard.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "empty netlink datagram",
                ));
            }
            // Datagrams of an earlier, abandoned request carry another seq and are skipped.
            match decode_datagram(&buf[..n.min(buf.len())], seq, false, &mut msgs) {
                Ok(Chunk::Done) => {
                    return msgs
                        .iter()
                        .filter(|m| m.kind == SOCK_DIAG_BY_FAMILY)
                        .map(|m| {
                            Ok(Found {
                                socket: decode_socket(&m.body)?,
                                v6only: v6only(&m.body),
                            })
                        })
                        .collect();
                }
                Ok(Chunk::More) => {}
                // No inet6 diag handler (kernel without IPv6): no IPv6 listeners.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "netlink reply did not end",
        ))
    }
}

/// Whether `addr` is assigned to this node (binding to it works). Wildcard addresses are.
pub(super) fn is_local(addr: IpAddr) -> bool {
    match UdpSocket::bind(SocketAddr::new(addr, 0)) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::AddrNotAvailable,
    }
}

/// The warning for a listener check whose address is not on this node: it can never pass.
pub(super) fn not_local_warning(check: &CheckConfig) -> Option<String> {
    let CheckKind::Listener {
        address: Some(a),
        port,
    } = &check.kind
    else {
        return None;
    };
    (!is_local(*a)).then(|| {
        format!(
            "check {}: listener address {a} is not an address of this node, so nothing can \
             listen on {}; the check fails until it is added (e.g. on lo)",
            check.name,
            SocketAddr::new(*a, *port)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(addr: &str) -> (Socket, SocketAddr) {
        let a: SocketAddr = addr.parse().unwrap();
        let s = Socket::new(Domain::for_address(a), Type::STREAM, None).unwrap();
        if a.is_ipv6() {
            s.set_only_v6(false).unwrap();
        }
        s.set_reuse_address(true).unwrap();
        s.bind(&a.into()).unwrap();
        s.listen(16).unwrap();
        let local = s.local_addr().unwrap().as_socket().unwrap();
        (s, local)
    }

    #[tokio::test]
    async fn passes_while_listening_fails_at_once_after_close() {
        let (s, a) = listen("127.0.0.1:0");
        let p = ListenerProbe::new(Some(a.ip()), a.port()).unwrap();
        let ok = p.run().await.unwrap();
        assert!(ok.starts_with(&format!("listening on {a}")), "{ok}");
        let any = ListenerProbe::new(None, a.port()).unwrap();
        assert!(any.run().await.is_ok());
        let other = ListenerProbe::new(Some("127.0.0.2".parse().unwrap()), a.port()).unwrap();
        assert_eq!(
            other.run().await.unwrap_err().detail,
            format!("nobody listens on 127.0.0.2:{}", a.port())
        );
        drop(s);
        let e = p.run().await.unwrap_err();
        assert_eq!(e.detail, format!("nobody listens on {a}"));
        assert!(e.definitive, "the kernel's table has no such listener");
    }

    #[tokio::test]
    async fn a_closed_listener_is_an_event_and_closed_connections_are_not() {
        let (s, a) = listen("127.0.0.1:0");
        let p = ListenerProbe::new(Some(a.ip()), a.port()).unwrap();
        if p.destroyed.is_none() {
            // No broadcasts on this kernel: the fallback (polling) is tested above.
            return eprintln!("no socket-destroy notifications here");
        }
        assert!(p.run().await.is_ok());
        // A client connection comes and goes: no event.
        let c = std::net::TcpStream::connect(a).unwrap();
        let (accepted, _) = s.accept().unwrap();
        drop(accepted);
        drop(c);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(100), p.event())
                .await
                .is_err(),
            "a closed connection is not a closed listener"
        );
        let t0 = std::time::Instant::now();
        drop(s);
        tokio::time::timeout(std::time::Duration::from_secs(2), p.event())
            .await
            .expect("the listener's close wakes the check");
        let waited = t0.elapsed();
        assert!(waited < std::time::Duration::from_millis(100), "{waited:?}");
        assert!(p.run().await.unwrap_err().definitive);
    }

    #[tokio::test]
    async fn wildcards_cover_specific_addresses() {
        let (_s, a) = listen("0.0.0.0:0");
        let p = ListenerProbe::new(Some("127.0.0.1".parse().unwrap()), a.port()).unwrap();
        assert!(p.run().await.unwrap().contains("0.0.0.0:"), "wildcard");
        // Dual-stack [::] (V6ONLY off) takes IPv4 too.
        let (_d, d) = listen("[::]:0");
        let p = ListenerProbe::new(Some("127.0.0.1".parse().unwrap()), d.port()).unwrap();
        let detail = p.run().await.unwrap();
        assert!(detail.contains("[::]:"), "{detail}");
        let p6 = ListenerProbe::new(Some("::1".parse().unwrap()), d.port()).unwrap();
        assert!(p6.run().await.is_ok());
    }

    #[test]
    fn accepts_matches_exact_wildcard_and_dual_stack() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = |s: &str| Some(ip(s));
        assert!(accepts(ip("203.0.113.10"), None, a("203.0.113.10")));
        assert!(!accepts(ip("203.0.113.11"), None, a("203.0.113.10")));
        assert!(accepts(ip("0.0.0.0"), None, a("203.0.113.10")));
        assert!(!accepts(ip("0.0.0.0"), None, a("2001:db8::10")));
        assert!(accepts(ip("::"), Some(true), a("2001:db8::10")));
        assert!(!accepts(ip("::"), Some(true), a("203.0.113.10")));
        assert!(accepts(ip("::"), Some(false), a("203.0.113.10")));
        assert!(
            !accepts(ip("::"), None, a("203.0.113.10")),
            "unknown V6ONLY"
        );
        assert!(accepts(ip("203.0.113.11"), None, None));
    }

    #[tokio::test]
    async fn many_probes_reuse_one_socket() {
        let (_s, a) = listen("127.0.0.1:0");
        let p = ListenerProbe::new(Some(a.ip()), a.port()).unwrap();
        for _ in 0..500 {
            assert!(p.run().await.is_ok());
        }
    }

    #[test]
    fn non_local_address_is_warned_about() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(is_local("0.0.0.0".parse().unwrap()));
        let mut c = super::super::testutil::check(CheckKind::Listener {
            address: Some("203.0.113.254".parse().unwrap()),
            port: 80,
        });
        let w = not_local_warning(&c).unwrap();
        assert!(
            w.contains("203.0.113.254 is not an address of this node"),
            "{w}"
        );
        c.kind = CheckKind::Listener {
            address: Some("127.0.0.1".parse().unwrap()),
            port: 80,
        };
        assert_eq!(not_local_warning(&c), None);
    }
}
