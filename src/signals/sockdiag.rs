//! Accept-queue depth of listening TCP sockets via NETLINK_SOCK_DIAG (inet_diag).
//!
//! For a socket in LISTEN state the kernel reports `recv_queue` = connections waiting in the
//! accept queue and `send_queue` = its limit (the listen backlog). The two structs involved have a
//! fixed layout, so they are encoded and decoded here by hand: no netlink crates, and every reply
//! is bounds-checked, so a short or odd reply is an error, never a panic.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// One listening socket as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub family: u8,
    /// The bound address (`0.0.0.0` / `::` for a wildcard listener).
    pub addr: IpAddr,
    pub port: u16,
    /// IPV6_V6ONLY of an IPv6 listener (None when the kernel did not say, or IPv4).
    pub v6only: Option<bool>,
    /// Connections waiting to be accepted.
    pub queued: u32,
    /// The backlog limit.
    pub backlog: u32,
}

impl Listener {
    /// Fill of the accept queue in [0, 1]. The kernel drops only once the queue holds more than
    /// `backlog` entries (`sk_acceptq_is_full`), so capacity is `backlog + 1` and 1.0 means the
    /// next completed handshake is dropped.
    pub fn fill(&self) -> f64 {
        (f64::from(self.queued) / (f64::from(self.backlog) + 1.0)).min(1.0)
    }

    /// Whether a connection to `addr` (None: any address) on this listener's port would reach
    /// it: same address, or a wildcard of the same family, or an IPv6 wildcard that also takes
    /// IPv4 (not V6ONLY).
    pub fn accepts(&self, addr: Option<IpAddr>) -> bool {
        let Some(want) = addr else { return true };
        if self.addr == want || canonical(self.addr) == canonical(want) {
            return true;
        }
        match (self.addr, want) {
            (IpAddr::V4(a), IpAddr::V4(_)) => a.is_unspecified(),
            (IpAddr::V6(a), IpAddr::V6(_)) => a.is_unspecified(),
            (IpAddr::V6(a), IpAddr::V4(_)) => a.is_unspecified() && self.v6only == Some(false),
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so `::ffff:192.0.2.1` equals `192.0.2.1`.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const TCP_LISTEN: u32 = 10;
/// Attribute of the request carrying a filter program (struct inet_diag_bc_op list).
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// Reply attribute: the IPv6 socket's V6ONLY flag (u8).
const INET_DIAG_SKV6ONLY: u16 = 11;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
/// sizeof(struct inet_diag_msg): family, state, timer, retrans, 48-byte sockid, then
/// expires, rqueue, wqueue, uid, inode (u32 each).
const INET_DIAG_MSG_LEN: usize = 72;
/// Stops a dump that never ends (it cannot, but a bug must not spin forever).
const MAX_DATAGRAMS: usize = 10_000;

/// The request for a dump of all TCP sockets of `family` in LISTEN state.
fn dump_request(family: u8, seq: u32) -> [u8; 72] {
    let mut req = [0u8; 72];
    req[0..4].copy_from_slice(&72u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0: the kernel fills in our port id. Then struct inet_diag_req_v2:
    req[16] = family;
    req[17] = libc::IPPROTO_TCP as u8;
    // idiag_ext = 0 (no extra attributes), pad, idiag_states bitmask, zeroed sockid.
    req[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    req
}

/// The request for the TCP listeners of `family` on local `port` only. The kernel runs the filter
/// (source port >= P, then <= P: the ops every kernel since 2.6 knows), so the reply holds only
/// the matching sockets however many the host has.
pub(crate) fn port_request(family: u8, port: u16, seq: u32) -> [u8; 92] {
    let mut req = [0u8; 92];
    req[..72].copy_from_slice(&dump_request(family, seq));
    req[0..4].copy_from_slice(&92u32.to_ne_bytes());
    // nlattr header: length (4 + 16 bytes of program), type.
    req[72..74].copy_from_slice(&20u16.to_ne_bytes());
    req[74..76].copy_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    // struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }: `yes`/`no` are byte offsets to jump
    // by; landing exactly on the end accepts, jumping past it (no = 4 beyond) rejects. A
    // comparison's operand is the `no` field of the op after it.
    let ops: [(u8, u8, u16); 4] = [
        (INET_DIAG_BC_S_GE, 8, 20),
        (0, 0, port),
        (INET_DIAG_BC_S_LE, 8, 12),
        (0, 0, port),
    ];
    for (i, (code, yes, no)) in ops.into_iter().enumerate() {
        let at = 76 + 4 * i;
        req[at] = code;
        req[at + 1] = yes;
        req[at + 2..at + 4].copy_from_slice(&no.to_ne_bytes());
    }
    req
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What one datagram of a dump reply said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    More,
    Done,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Decodes one datagram of the reply to request `seq`, appending listeners to `out`. Messages
/// with another sequence number (left over from an earlier, failed dump) are skipped.
pub(crate) fn decode_datagram(buf: &[u8], seq: u32, out: &mut Vec<Listener>) -> io::Result<Chunk> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let len = u32_ne(rest, 0).ok_or_else(|| bad("truncated netlink header"))? as usize;
        let kind = u16_ne(rest, 4).ok_or_else(|| bad("truncated netlink header"))?;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            return Err(bad(format!("netlink message length {len} out of bounds")));
        }
        let body = &rest[NLMSG_HDR_LEN..len];
        // Messages are 4-byte aligned within a datagram.
        at += (len + 3) & !3;
        if u32_ne(rest, 8) != Some(seq) {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(Chunk::Done),
            NLMSG_ERROR => {
                let errno = i32::from_ne_bytes(
                    body.get(0..4)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 4]),
                );
                // An error with code 0 is an ACK; a dump does not send those, treat as done.
                if errno == 0 {
                    return Ok(Chunk::Done);
                }
                return Err(io::Error::from_raw_os_error(errno.wrapping_neg()));
            }
            SOCK_DIAG_BY_FAMILY => {
                if body.len() < INET_DIAG_MSG_LEN {
                    return Err(bad(format!("inet_diag_msg of {} bytes", body.len())));
                }
                // Port and address are big-endian on the wire; the queue fields are host order.
                let port = u16::from_be_bytes([body[4], body[5]]);
                let family = body[0];
                let mut src = [0u8; 16];
                src.copy_from_slice(&body[8..24]);
                let addr = if i32::from(family) == libc::AF_INET6 {
                    IpAddr::V6(Ipv6Addr::from(src))
                } else {
                    IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
                };
                out.push(Listener {
                    family,
                    addr,
                    port,
                    v6only: v6only_attr(&body[INET_DIAG_MSG_LEN..]),
                    queued: u32_ne(body, 56).unwrap_or(0),
                    backlog: u32_ne(body, 60).unwrap_or(0),
                });
            }
            _ => {} // NOOP and anything unknown: skip.
        }
    }
    Ok(Chunk::More)
}

/// The INET_DIAG_SKV6ONLY attribute among those after an inet_diag_msg, if present. Malformed
/// attributes end the scan (the flag is then unknown), never panic.
fn v6only_attr(mut attrs: &[u8]) -> Option<bool> {
    while attrs.len() >= 4 {
        let len = usize::from(u16_ne(attrs, 0)?);
        let kind = u16_ne(attrs, 2)? & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == INET_DIAG_SKV6ONLY {
            return attrs.get(4).map(|b| *b != 0).filter(|_| len >= 5);
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// A NETLINK_SOCK_DIAG socket, reused across samples.
pub struct SockDiag {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl SockDiag {
    pub fn open() -> io::Result<Self> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW.cloexec(),
            Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
        )?;
        // The kernel answers at once; the timeout only keeps a wedged socket from hanging a thread.
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Self {
            sock,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    /// All TCP listeners (IPv4 and IPv6) of this network namespace.
    pub fn listeners(&mut self) -> io::Result<Vec<Listener>> {
        let mut out = Vec::new();
        self.dump(libc::AF_INET as u8, &mut out)?;
        match self.dump(libc::AF_INET6 as u8, &mut out) {
            // A kernel built without IPv6 has no inet6 diag handler: no IPv6 listeners then.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => r?,
        }
        Ok(out)
    }

    fn dump(&mut self, family: u8, out: &mut Vec<Listener>) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        // Unconnected and unaddressed: netlink sends to the kernel (port id 0) by default.
        self.sock.send(&dump_request(family, self.seq))?;
        for _ in 0..MAX_DATAGRAMS {
            let n = (&self.sock).read(&mut self.buf)?;
            if n == 0 {
                return Err(bad("empty netlink datagram"));
            }
            let res = decode_datagram(&self.buf[..n.min(self.buf.len())], self.seq, out);
            match res {
                Ok(Chunk::Done) => return Ok(()),
                Ok(Chunk::More) => {}
                Err(e) => {
                    // Leave no half-read dump behind to confuse the next request.
                    self.drain();
                    return Err(e);
                }
            }
        }
        self.drain();
        Err(bad("netlink dump did not end"))
    }

    fn drain(&mut self) {
        let _ = self.sock.set_nonblocking(true);
        while matches!((&self.sock).read(&mut self.buf), Ok(n) if n > 0) {}
        let _ = self.sock.set_nonblocking(false);
    }
}

/// Max fill over the listeners on `ports`; None when none of them has a listener.
pub fn max_fill(listeners: &[Listener], ports: &[u16]) -> Option<f64> {
    listeners
        .iter()
        .filter(|l| ports.contains(&l.port))
        .map(Listener::fill)
        .fold(None, |acc: Option<f64>, f| {
            Some(acc.map_or(f, |a| a.max(f)))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SEQ: u32 = 7;

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        msg_seq(kind, SEQ, body)
    }

    fn msg_seq(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR_LEN + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 2]);
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn diag(port: u16, queued: u32, backlog: u32) -> Vec<u8> {
        let mut b = vec![0u8; INET_DIAG_MSG_LEN];
        b[0] = libc::AF_INET as u8;
        b[1] = TCP_LISTEN as u8;
        b[4..6].copy_from_slice(&port.to_be_bytes());
        b[56..60].copy_from_slice(&queued.to_ne_bytes());
        b[60..64].copy_from_slice(&backlog.to_ne_bytes());
        // A trailing attribute, as the kernel may add: must be ignored.
        b.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn decodes_listeners_then_done() {
        let mut d = msg(SOCK_DIAG_BY_FAMILY, &diag(8080, 3, 128));
        d.extend(msg(SOCK_DIAG_BY_FAMILY, &diag(443, 0, 4096)));
        let mut out = Vec::new();
        assert_eq!(decode_datagram(&d, SEQ, &mut out).unwrap(), Chunk::More);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].port, 8080);
        assert_eq!((out[0].queued, out[0].backlog), (3, 128));
        assert_eq!(
            decode_datagram(&msg(NLMSG_DONE, &[0; 4]), SEQ, &mut out).unwrap(),
            Chunk::Done
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let good = msg(SOCK_DIAG_BY_FAMILY, &diag(80, 1, 1));
        let mut out = Vec::new();
        // Every truncation of a valid datagram.
        for cut in 1..good.len() {
            let _ = decode_datagram(&good[..cut], SEQ, &mut out);
        }
        assert!(decode_datagram(&good[..good.len() - 12], SEQ, &mut out).is_err());
        // Declared length shorter than a header, and a body too short for inet_diag_msg.
        let mut zero = good.clone();
        zero[0..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(decode_datagram(&zero, SEQ, &mut out).is_err());
        assert!(decode_datagram(&msg(SOCK_DIAG_BY_FAMILY, &[0; 20]), SEQ, &mut out).is_err());
        // A kernel error is reported with its errno.
        let err = decode_datagram(
            &msg(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes()),
            SEQ,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let min = decode_datagram(&msg(NLMSG_ERROR, &i32::MIN.to_ne_bytes()), SEQ, &mut out);
        assert!(min.is_err());
    }

    #[test]
    fn stale_replies_of_an_earlier_dump_are_skipped() {
        let mut d = msg_seq(SOCK_DIAG_BY_FAMILY, SEQ - 1, &diag(1, 1, 1));
        d.extend(msg_seq(NLMSG_DONE, SEQ - 1, &[0; 4]));
        d.extend(msg(SOCK_DIAG_BY_FAMILY, &diag(2, 1, 1)));
        let mut out = Vec::new();
        assert_eq!(decode_datagram(&d, SEQ, &mut out).unwrap(), Chunk::More);
        assert_eq!(out.iter().map(|l| l.port).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn fill_counts_backlog_plus_one_and_max_skips_other_ports() {
        let l = |port, queued, backlog| Listener {
            family: 2,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            v6only: None,
            port,
            queued,
            backlog,
        };
        assert_eq!(l(1, 5, 4).fill(), 1.0);
        assert_eq!(l(1, 0, 0).fill(), 0.0);
        assert_eq!(l(1, 9, 4).fill(), 1.0, "clamped");
        let ls = [l(80, 1, 9), l(443, 5, 9), l(22, 10, 9)];
        assert_eq!(max_fill(&ls, &[80, 443]), Some(0.5));
        assert_eq!(max_fill(&ls, &[8080]), None);
    }

    /// A listener with backlog 4 on `ip`, nothing accepting.
    pub(crate) fn small_listener(ip: &str) -> (Socket, std::net::SocketAddr) {
        let addr: std::net::SocketAddr = format!("{ip}:0").parse().unwrap();
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        s.bind(&addr.into()).unwrap();
        s.listen(4).unwrap();
        let local = s.local_addr().unwrap().as_socket().unwrap();
        (s, local)
    }

    /// Non-blocking connects: the kernel completes what fits and drops the rest, nobody waits.
    pub(crate) fn flood(addr: std::net::SocketAddr, n: usize) -> Vec<Socket> {
        (0..n)
            .map(|_| {
                let c = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
                c.set_nonblocking(true).unwrap();
                let _ = c.connect(&addr.into());
                c
            })
            .collect()
    }

    #[test]
    fn accepts_matches_exact_wildcard_and_dual_stack() {
        let l = |addr: &str, v6only| Listener {
            family: 0,
            addr: addr.parse().unwrap(),
            v6only,
            port: 80,
            queued: 0,
            backlog: 0,
        };
        let a = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(l("203.0.113.10", None).accepts(a("203.0.113.10")));
        assert!(!l("203.0.113.11", None).accepts(a("203.0.113.10")));
        assert!(l("0.0.0.0", None).accepts(a("203.0.113.10")));
        assert!(!l("0.0.0.0", None).accepts(a("2001:db8::10")));
        assert!(l("::", Some(true)).accepts(a("2001:db8::10")));
        assert!(!l("::", Some(true)).accepts(a("203.0.113.10")));
        assert!(l("::", Some(false)).accepts(a("203.0.113.10")));
        assert!(!l("::", None).accepts(a("203.0.113.10")), "unknown V6ONLY");
        assert!(l("::ffff:203.0.113.10", None).accepts(a("203.0.113.10")));
        assert!(l("203.0.113.11", None).accepts(None));
    }

    #[test]
    fn v6only_attribute_is_found_or_unknown() {
        assert_eq!(v6only_attr(&[5, 0, 11, 0, 1, 0, 0, 0]), Some(true));
        // Another attribute first, then V6ONLY = 0.
        assert_eq!(
            v6only_attr(&[8, 0, 1, 0, 9, 9, 9, 9, 5, 0, 11, 0, 0, 0, 0, 0]),
            Some(false)
        );
        assert_eq!(v6only_attr(&[]), None);
        assert_eq!(
            v6only_attr(&[200, 0, 11, 0, 1]),
            None,
            "length past the end"
        );
        assert_eq!(v6only_attr(&[4, 0, 11, 0]), None, "no payload");
        assert_eq!(v6only_attr(&[0, 0, 11, 0, 1]), None);
    }

    /// Sends `req` and collects the whole reply.
    fn ask(diag: &mut SockDiag, req: &[u8], seq: u32) -> Vec<Listener> {
        diag.sock.send(req).unwrap();
        let mut out = Vec::new();
        loop {
            let n = (&diag.sock).read(&mut diag.buf).unwrap();
            if decode_datagram(&diag.buf[..n], seq, &mut out).unwrap() == Chunk::Done {
                return out;
            }
        }
    }

    #[test]
    fn port_filter_runs_in_the_kernel() {
        let mut diag = SockDiag::open().unwrap();
        let (_a, a) = small_listener("127.0.0.1");
        let (_b, b) = small_listener("127.0.0.1");
        let (_c, c) = small_listener("[::1]");
        let got = ask(
            &mut diag,
            &port_request(libc::AF_INET as u8, a.port(), 900),
            900,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].port, a.port());
        assert_eq!(got[0].addr, a.ip());
        assert!(got[0].accepts(Some(a.ip())));
        assert_ne!(a.port(), b.port());
        let got = ask(
            &mut diag,
            &port_request(libc::AF_INET6 as u8, c.port(), 901),
            901,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].addr, c.ip());
        // The kernel reports the flag; binding a specific IPv6 address sets it.
        assert_eq!(got[0].v6only, Some(true));
        // A port nobody listens on: empty, not an error.
        drop(_b);
        let got = ask(
            &mut diag,
            &port_request(libc::AF_INET as u8, b.port(), 902),
            902,
        );
        assert!(got.is_empty(), "{got:?}");
    }

    fn fill_of(diag: &mut SockDiag, port: u16) -> Option<f64> {
        max_fill(&diag.listeners().unwrap(), &[port])
    }

    #[test]
    fn live_accept_queue_fills_up() {
        let mut diag = SockDiag::open().unwrap();
        for ip in ["127.0.0.1", "[::1]"] {
            let (_listener, addr) = small_listener(ip);
            assert_eq!(fill_of(&mut diag, addr.port()), Some(0.0), "{ip} before");
            let _clients = flood(addr, 10);
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            let mut fill = 0.0;
            while std::time::Instant::now() < deadline {
                fill = fill_of(&mut diag, addr.port()).unwrap();
                if fill >= 1.0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!((fill - 1.0).abs() < 1e-9, "{ip}: fill {fill}");
            let l = diag.listeners().unwrap();
            let l = l.iter().find(|l| l.port == addr.port()).unwrap();
            assert_eq!(l.backlog, 4);
        }
    }
}
