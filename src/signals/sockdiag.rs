//! Accept-queue depth of listening TCP sockets via NETLINK_SOCK_DIAG (inet_diag).
//!
//! For a socket in LISTEN state the kernel reports `recv_queue` = connections waiting in the
//! accept queue and `send_queue` = its limit (the listen backlog). The two structs involved have a
//! fixed layout, so they are encoded and decoded here by hand: no netlink crates, and every reply
//! is bounds-checked, so a short or odd reply is an error, never a panic.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::netlink::{self, Message, NlSocket, NLM_F_DUMP};

/// One listening socket as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub family: u8,
    pub port: u16,
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
}

/// TCP states as the kernel numbers them (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_SYN_RECV: u8 = 3;
pub const TCP_LISTEN: u8 = 10;

/// One socket of a dump (`struct inet_diag_msg`). For a request socket (SYN_RECV) `retrans` is
/// the SYN-ACKs retransmitted so far and `expires_ms` the time until the next one; for a listener
/// `rqueue` is the accept queue and `wqueue` the backlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiagSocket {
    pub family: u8,
    pub state: u8,
    pub retrans: u8,
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub expires_ms: u32,
    pub rqueue: u32,
    pub wqueue: u32,
    /// Milliseconds since the socket last received anything (data or an ACK), from `tcp_info`;
    /// only in dumps that ask for it (`SockDiag::sockets_with_tcp_info`).
    pub last_recv_ms: Option<u32>,
}

impl DiagSocket {
    pub fn as_listener(&self) -> Listener {
        Listener {
            family: self.family,
            port: self.local_port,
            queued: self.rqueue,
            backlog: self.wqueue,
        }
    }
}

pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// Attribute of the request carrying a filter program (struct inet_diag_bc_op list).
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// Reply attribute: an IPv6 listener's V6ONLY flag (u8).
const INET_DIAG_SKV6ONLY: u16 = 11;
/// Reply attribute: `struct tcp_info`; asked for with bit `INET_DIAG_INFO - 1` of idiag_ext.
const INET_DIAG_INFO: u16 = 2;
/// Offsets in `struct tcp_info` (include/uapi/linux/tcp.h; fixed since 2.6) of
/// tcpi_last_data_recv and tcpi_last_ack_recv (u32, ms ago).
const TCPI_LAST_DATA_RECV: usize = 52;
const TCPI_LAST_ACK_RECV: usize = 56;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
/// sizeof(struct inet_diag_msg): family, state, timer, retrans, 48-byte sockid, then
/// expires, rqueue, wqueue, uid, inode (u32 each).
const INET_DIAG_MSG_LEN: usize = 72;

/// The `inet_diag_req_v2` payload for a dump of TCP sockets of `family` in `states` (bitmask of
/// 1 << state), with the extra attributes `ext` asks for (bitmask of 1 << (attribute - 1)).
fn dump_request(family: u8, states: u32, ext: u8) -> [u8; 56] {
    let mut req = [0u8; 56];
    req[0] = family;
    req[1] = libc::IPPROTO_TCP as u8;
    // idiag_ext, pad, idiag_states bitmask, zeroed sockid.
    req[2] = ext;
    req[4..8].copy_from_slice(&states.to_ne_bytes());
    req
}

/// The request payload for the TCP listeners of `family` on local `port` only. The kernel runs
/// the filter (source port >= P, then <= P: ops every kernel since 2.6 knows), so the reply holds
/// only the matching sockets however many the host has.
pub fn listeners_on_port_request(family: u8, port: u16) -> [u8; 76] {
    let mut req = [0u8; 76];
    req[..56].copy_from_slice(&dump_request(family, 1 << TCP_LISTEN, 0));
    // nlattr header: length (4 + 16 bytes of program), type.
    req[56..58].copy_from_slice(&20u16.to_ne_bytes());
    req[58..60].copy_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    // struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }: `yes`/`no` are byte offsets to jump
    // by; landing exactly on the end accepts, jumping past it (4 beyond) rejects. A comparison's
    // operand is the `no` field of the op after it.
    let ops: [(u8, u8, u16); 4] = [
        (INET_DIAG_BC_S_GE, 8, 20),
        (0, 0, port),
        (INET_DIAG_BC_S_LE, 8, 12),
        (0, 0, port),
    ];
    for (i, (code, yes, no)) in ops.into_iter().enumerate() {
        let at = 60 + 4 * i;
        req[at] = code;
        req[at + 1] = yes;
        req[at + 2..at + 4].copy_from_slice(&no.to_ne_bytes());
    }
    req
}

/// The V6ONLY flag in the attributes after an IPv6 listener's inet_diag_msg (the kernel adds it
/// for listening sockets); None when absent or malformed.
pub fn v6only(body: &[u8]) -> Option<bool> {
    netlink::attrs(body.get(INET_DIAG_MSG_LEN..)?)
        .find(|(kind, _)| *kind == INET_DIAG_SKV6ONLY)
        .and_then(|(_, v)| v.first().map(|b| *b != 0))
}

fn addr(family: u8, raw: &[u8]) -> IpAddr {
    let mut b = [0u8; 16];
    b.copy_from_slice(&raw[..16]);
    if i32::from(family) == libc::AF_INET {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        let v6 = Ipv6Addr::from(b);
        // A v4 peer of a dual-stack listener shows as ::ffff:a.b.c.d.
        v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
    }
}

/// Decodes one SOCK_DIAG_BY_FAMILY message body.
pub fn decode_socket(body: &[u8]) -> io::Result<DiagSocket> {
    if body.len() < INET_DIAG_MSG_LEN {
        return Err(netlink::bad(format!(
            "inet_diag_msg of {} bytes",
            body.len()
        )));
    }
    let family = body[0];
    // Ports are big-endian on the wire; the other fields are host order.
    Ok(DiagSocket {
        family,
        state: body[1],
        retrans: body[3],
        local_port: u16::from_be_bytes([body[4], body[5]]),
        remote_port: u16::from_be_bytes([body[6], body[7]]),
        local: addr(family, &body[8..24]),
        remote: addr(family, &body[24..40]),
        expires_ms: netlink::u32_ne(body, 52).unwrap_or(0),
        rqueue: netlink::u32_ne(body, 56).unwrap_or(0),
        wqueue: netlink::u32_ne(body, 60).unwrap_or(0),
        last_recv_ms: last_recv_ms(body),
    })
}

/// The time since the socket last received data or an ACK, from a `tcp_info` attribute after the
/// inet_diag_msg; None when absent or too short.
fn last_recv_ms(body: &[u8]) -> Option<u32> {
    let info = netlink::attrs(body.get(INET_DIAG_MSG_LEN..)?)
        .find(|(kind, _)| *kind == INET_DIAG_INFO)?
        .1;
    let data = netlink::u32_ne(info, TCPI_LAST_DATA_RECV)?;
    let ack = netlink::u32_ne(info, TCPI_LAST_ACK_RECV)?;
    Some(data.min(ack))
}

/// Decodes the messages of a dump reply; other message types are skipped.
pub fn decode_sockets(msgs: &[Message]) -> io::Result<Vec<DiagSocket>> {
    msgs.iter()
        .filter(|m| m.kind == SOCK_DIAG_BY_FAMILY)
        .map(|m| decode_socket(&m.body))
        .collect()
}

/// The sockets of one datagram from the TCP destroy broadcast groups (`sys::sock_destroy`): one
/// SOCK_DIAG_BY_FAMILY message per freed socket, sequence number 0. Anything malformed yields
/// what decoded before it (possibly nothing): the caller re-checks by polling anyway.
pub fn destroyed_sockets(datagram: &[u8]) -> Vec<DiagSocket> {
    let mut msgs = Vec::new();
    let _ = netlink::decode_datagram(datagram, 0, false, &mut msgs);
    msgs.iter()
        .filter(|m| m.kind == SOCK_DIAG_BY_FAMILY)
        .filter_map(|m| decode_socket(&m.body).ok())
        .collect()
}

/// A NETLINK_SOCK_DIAG socket, reused across samples.
pub struct SockDiag {
    sock: NlSocket,
}

impl SockDiag {
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            sock: NlSocket::open(libc::NETLINK_SOCK_DIAG)?,
        })
    }

    /// All TCP listeners (IPv4 and IPv6) of this network namespace.
    pub fn listeners(&mut self) -> io::Result<Vec<Listener>> {
        Ok(self
            .sockets(1 << TCP_LISTEN)?
            .iter()
            .map(DiagSocket::as_listener)
            .collect())
    }

    /// All TCP sockets (IPv4 and IPv6) whose state is in `states` (bitmask of 1 << state).
    pub fn sockets(&mut self, states: u32) -> io::Result<Vec<DiagSocket>> {
        self.sockets_ext(states, 0)
    }

    /// As `sockets`, with each socket's `last_recv_ms` (the kernel adds its tcp_info).
    pub fn sockets_with_tcp_info(&mut self, states: u32) -> io::Result<Vec<DiagSocket>> {
        self.sockets_ext(states, 1 << (INET_DIAG_INFO - 1))
    }

    fn sockets_ext(&mut self, states: u32, ext: u8) -> io::Result<Vec<DiagSocket>> {
        let mut out = self.dump(libc::AF_INET as u8, states, ext)?;
        match self.dump(libc::AF_INET6 as u8, states, ext) {
            // A kernel built without IPv6 has no inet6 diag handler: no IPv6 sockets then.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => out.extend(r?),
        }
        Ok(out)
    }

    fn dump(&mut self, family: u8, states: u32, ext: u8) -> io::Result<Vec<DiagSocket>> {
        let msgs = self.sock.request(
            SOCK_DIAG_BY_FAMILY,
            NLM_F_DUMP,
            &dump_request(family, states, ext),
        )?;
        decode_sockets(&msgs)
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

/// The established connections served on a VIP, split by whether they still hold a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Served {
    /// Connections that hold a drain.
    pub holding: u32,
    /// Connections silent for at least the idle limit: behind a stateless ECMP ToR the clients of
    /// a node that left send to other nodes, so its sockets fall silent for good.
    pub silent: u32,
}

/// Established connections served on `prefixes`: local address in one of them and local port one
/// that a listener has (so connections this host opened from a VIP address are not counted).
/// A listener on a wildcard or VIP address counts; one on another specific address does not.
/// With `idle_ms`, a connection that has received nothing for that long (per `last_recv_ms`) is
/// `silent`; one whose last receipt is unknown holds. None when nothing listens there at all (a
/// UDP service, or one that is stopped): a count of 0 would then say "drained" about connections
/// it cannot see.
pub fn count_served(
    sockets: &[DiagSocket],
    prefixes: &[crate::route::Prefix],
    idle_ms: Option<u32>,
) -> Option<Served> {
    let on_vip = |ip: IpAddr| prefixes.iter().any(|p| p.contains(ip));
    let ports: Vec<u16> = sockets
        .iter()
        .filter(|s| s.state == TCP_LISTEN && (s.local.is_unspecified() || on_vip(s.local)))
        .map(|s| s.local_port)
        .collect();
    if ports.is_empty() {
        return None;
    }
    let mut served = Served::default();
    for s in sockets
        .iter()
        .filter(|s| s.state == TCP_ESTABLISHED && on_vip(s.local) && ports.contains(&s.local_port))
    {
        let silent = matches!((idle_ms, s.last_recv_ms), (Some(limit), Some(ago)) if ago >= limit);
        let n = if silent {
            &mut served.silent
        } else {
            &mut served.holding
        };
        *n = n.saturating_add(1);
    }
    Some(served)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::netlink::tests::msg;
    use crate::netlink::{decode_datagram, Chunk, NLMSG_DONE};
    use proptest::prelude::*;
    use socket2::{Domain, Socket, Type};
    use std::time::Duration;

    const SEQ: u32 = 7;

    fn diag(port: u16, queued: u32, backlog: u32) -> Vec<u8> {
        let mut b = vec![0u8; INET_DIAG_MSG_LEN];
        b[0] = libc::AF_INET as u8;
        b[1] = TCP_LISTEN;
        b[4..6].copy_from_slice(&port.to_be_bytes());
        b[8..12].copy_from_slice(&[203, 0, 113, 10]);
        b[56..60].copy_from_slice(&queued.to_ne_bytes());
        b[60..64].copy_from_slice(&backlog.to_ne_bytes());
        // A trailing attribute, as the kernel may add: must be ignored.
        b.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]);
        b
    }

    fn decode_all(d: &[u8]) -> io::Result<(Chunk, Vec<DiagSocket>)> {
        let mut msgs = Vec::new();
        let c = decode_datagram(d, SEQ, false, &mut msgs)?;
        Ok((c, decode_sockets(&msgs)?))
    }

    #[test]
    fn decodes_listeners_then_done() {
        let mut d = msg(SOCK_DIAG_BY_FAMILY, SEQ, &diag(8080, 3, 128));
        d.extend(msg(SOCK_DIAG_BY_FAMILY, SEQ, &diag(443, 0, 4096)));
        let (c, out) = decode_all(&d).unwrap();
        assert_eq!(c, Chunk::More);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local_port, 8080);
        assert_eq!(out[0].local, "203.0.113.10".parse::<IpAddr>().unwrap());
        assert_eq!((out[0].rqueue, out[0].wqueue), (3, 128));
        assert_eq!(
            decode_all(&msg(NLMSG_DONE, SEQ, &[0; 4])).unwrap().0,
            Chunk::Done
        );
    }

    #[test]
    fn destroy_broadcasts_decode_and_garbage_yields_what_came_before() {
        let mut d = msg(SOCK_DIAG_BY_FAMILY, 0, &diag(80, 0, 0));
        d.extend(msg(SOCK_DIAG_BY_FAMILY, 0, &diag(443, 0, 0)));
        let out = destroyed_sockets(&d);
        assert_eq!(
            out.iter().map(|s| s.local_port).collect::<Vec<_>>(),
            [80, 443]
        );
        // A short body, a length past the end, and a truncated header.
        let mut bad = msg(SOCK_DIAG_BY_FAMILY, 0, &diag(80, 0, 0));
        bad.extend(msg(SOCK_DIAG_BY_FAMILY, 0, &[0u8; 10]));
        assert_eq!(destroyed_sockets(&bad).len(), 1);
        let mut past = msg(SOCK_DIAG_BY_FAMILY, 0, &diag(80, 0, 0));
        past[0] = 0xff;
        assert!(destroyed_sockets(&past).is_empty());
        assert!(destroyed_sockets(&[1, 2, 3]).is_empty());
    }

    proptest! {
        #[test]
        fn destroy_broadcast_decoding_never_panics(d in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = destroyed_sockets(&d);
        }
    }

    #[test]
    fn v4_mapped_addresses_read_as_v4() {
        let mut b = vec![0u8; INET_DIAG_MSG_LEN];
        b[0] = libc::AF_INET6 as u8;
        b[1] = TCP_SYN_RECV;
        b[3] = 2;
        b[8..24].copy_from_slice(&"::ffff:203.0.113.10".parse::<Ipv6Addr>().unwrap().octets());
        b[24..40].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        let s = decode_socket(&b).unwrap();
        assert_eq!(s.local, "203.0.113.10".parse::<IpAddr>().unwrap());
        assert_eq!(s.remote, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!((s.state, s.retrans), (TCP_SYN_RECV, 2));
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let good = msg(SOCK_DIAG_BY_FAMILY, SEQ, &diag(80, 1, 1));
        for cut in 1..good.len() {
            let _ = decode_all(&good[..cut]);
        }
        assert!(decode_all(&good[..good.len() - 12]).is_err());
        assert!(decode_all(&msg(SOCK_DIAG_BY_FAMILY, SEQ, &[0; 20])).is_err());
    }

    proptest! {
        #[test]
        fn any_body_decodes_or_errs(body in proptest::collection::vec(any::<u8>(), 0..160)) {
            match decode_socket(&body) {
                Ok(_) => prop_assert!(body.len() >= INET_DIAG_MSG_LEN),
                Err(_) => prop_assert!(body.len() < INET_DIAG_MSG_LEN),
            }
        }
    }

    #[test]
    fn fill_counts_backlog_plus_one_and_max_skips_other_ports() {
        let l = |port, queued, backlog| Listener {
            family: 2,
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

    #[test]
    fn last_receipt_comes_from_tcp_info() {
        let with_info = |info: &[u8]| {
            let mut b = vec![0u8; INET_DIAG_MSG_LEN];
            b[0] = libc::AF_INET as u8;
            b[1] = TCP_ESTABLISHED;
            // Another attribute first, then INET_DIAG_INFO; nlattr lengths include the header.
            b.extend_from_slice(&[5, 0, 8, 0, 1, 0, 0, 0]);
            let len = u16::try_from(4 + info.len()).unwrap();
            b.extend_from_slice(&len.to_ne_bytes());
            b.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
            b.extend_from_slice(info);
            b
        };
        let mut info = vec![0u8; 104];
        info[TCPI_LAST_DATA_RECV..TCPI_LAST_DATA_RECV + 4].copy_from_slice(&700u32.to_ne_bytes());
        info[TCPI_LAST_ACK_RECV..TCPI_LAST_ACK_RECV + 4].copy_from_slice(&300u32.to_ne_bytes());
        let s = decode_socket(&with_info(&info)).unwrap();
        assert_eq!(s.last_recv_ms, Some(300), "the later of data and ACK");
        let s = decode_socket(&with_info(&info[..58])).unwrap();
        assert_eq!(s.last_recv_ms, None, "a truncated tcp_info is no figure");
        assert_eq!(decode_socket(&with_info(&[])).unwrap().last_recv_ms, None);
    }

    #[test]
    fn count_served_needs_a_vip_address_and_a_listening_port() {
        let sock = |state, local: &str, port| DiagSocket {
            family: 2,
            state,
            retrans: 0,
            local: local.parse().unwrap(),
            local_port: port,
            remote: "198.51.100.7".parse().unwrap(),
            remote_port: 40000,
            expires_ms: 0,
            rqueue: 0,
            wqueue: 0,
            last_recv_ms: None,
        };
        let vip = [crate::route::Prefix::new("203.0.113.10".parse().unwrap(), 32).unwrap()];
        let socks = [
            sock(TCP_LISTEN, "0.0.0.0", 80),
            sock(TCP_LISTEN, "203.0.113.10", 443),
            sock(TCP_LISTEN, "192.0.2.1", 8080),
            sock(TCP_ESTABLISHED, "203.0.113.10", 80),
            sock(TCP_ESTABLISHED, "203.0.113.10", 80),
            sock(TCP_ESTABLISHED, "203.0.113.10", 443),
            // Listener on another address: not served on the VIP.
            sock(TCP_ESTABLISHED, "203.0.113.10", 8080),
            // Outgoing from the VIP address (ephemeral port), another address, not established.
            sock(TCP_ESTABLISHED, "203.0.113.10", 51234),
            sock(TCP_ESTABLISHED, "192.0.2.1", 80),
            sock(TCP_SYN_RECV, "203.0.113.10", 80),
        ];
        let holding = |n| {
            Some(Served {
                holding: n,
                silent: 0,
            })
        };
        assert_eq!(count_served(&socks, &vip, None), holding(3));
        assert_eq!(
            count_served(&socks, &[], None),
            holding(0),
            "the wildcard listener"
        );
        let v6 = [crate::route::Prefix::new("2001:db8::".parse().unwrap(), 64).unwrap()];
        assert_eq!(
            count_served(&socks, &v6, None),
            holding(0),
            "families do not mix"
        );
        let no_listener = [
            sock(TCP_LISTEN, "192.0.2.1", 8080),
            sock(TCP_ESTABLISHED, "203.0.113.10", 80),
        ];
        assert_eq!(
            count_served(&no_listener, &vip, None),
            None,
            "nothing to count for"
        );
        // Silent connections: at or past the idle limit; an unknown last receipt holds.
        let aged = |ago| DiagSocket {
            last_recv_ms: ago,
            ..sock(TCP_ESTABLISHED, "203.0.113.10", 80)
        };
        let socks = [
            sock(TCP_LISTEN, "0.0.0.0", 80),
            aged(Some(10)),
            aged(Some(1999)),
            aged(Some(2000)),
            aged(Some(90_000)),
            aged(None),
        ];
        assert_eq!(
            count_served(&socks, &vip, Some(2000)),
            Some(Served {
                holding: 3,
                silent: 2
            })
        );
        assert_eq!(
            count_served(&socks, &vip, None),
            holding(5),
            "no limit: all hold"
        );
    }

    #[test]
    fn live_count_of_served_connections() {
        let mut diag = SockDiag::open().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let lo = [crate::route::Prefix::new("127.0.0.1".parse().unwrap(), 32).unwrap()];
        let states = (1 << TCP_LISTEN) | (1 << TCP_ESTABLISHED);
        let on_port = |d: &mut SockDiag, idle_ms| {
            let s: Vec<DiagSocket> = d
                .sockets_with_tcp_info(states)
                .unwrap()
                .into_iter()
                .filter(|s| s.local_port == addr.port())
                .collect();
            count_served(&s, &lo, idle_ms)
        };
        let counted = |holding, silent| Some(Served { holding, silent });
        assert_eq!(on_port(&mut diag, None), counted(0, 0));
        let c1 = std::net::TcpStream::connect(addr).unwrap();
        let c2 = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(on_port(&mut diag, None), counted(2, 0));
        // The kernel reports tcp_info: fresh connections are not silent for 60 s, but are for 0 ms.
        assert_eq!(on_port(&mut diag, Some(60_000)), counted(2, 0));
        assert_eq!(on_port(&mut diag, Some(0)), counted(0, 2));
        drop((c1, c2));
        drop(l);
        assert_eq!(on_port(&mut diag, None), None, "listener gone");
    }

    #[test]
    fn v6only_attribute_is_found_or_unknown() {
        let body = |attrs: &[u8]| {
            let mut b = vec![0u8; INET_DIAG_MSG_LEN];
            b.extend_from_slice(attrs);
            b
        };
        assert_eq!(v6only(&body(&[5, 0, 11, 0, 1, 0, 0, 0])), Some(true));
        // Another attribute first, then V6ONLY = 0.
        assert_eq!(
            v6only(&body(&[8, 0, 1, 0, 9, 9, 9, 9, 5, 0, 11, 0, 0, 0, 0, 0])),
            Some(false)
        );
        assert_eq!(v6only(&body(&[])), None);
        assert_eq!(v6only(&[0; 10]), None, "short body");
        assert_eq!(
            v6only(&body(&[200, 0, 11, 0, 1])),
            None,
            "length past the end"
        );
        assert_eq!(v6only(&body(&[4, 0, 11, 0])), None, "no payload");
    }

    /// Sends `payload` as a SOCK_DIAG_BY_FAMILY dump and collects the sockets.
    fn ask(payload: &[u8]) -> Vec<(DiagSocket, Option<bool>)> {
        let mut s = NlSocket::open(libc::NETLINK_SOCK_DIAG).unwrap();
        let msgs = s.request(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, payload).unwrap();
        msgs.iter()
            .map(|m| (decode_socket(&m.body).unwrap(), v6only(&m.body)))
            .collect()
    }

    #[test]
    fn port_filter_runs_in_the_kernel() {
        let (_a, a) = small_listener("127.0.0.1");
        let (_b, b) = small_listener("127.0.0.1");
        let (_c, c) = small_listener("[::1]");
        let got = ask(&listeners_on_port_request(libc::AF_INET as u8, a.port()));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0.local, got[0].0.local_port), (a.ip(), a.port()));
        assert_eq!(got[0].1, None, "no V6ONLY for IPv4");
        assert_ne!(a.port(), b.port());
        let got = ask(&listeners_on_port_request(libc::AF_INET6 as u8, c.port()));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0.local, c.ip());
        // The kernel reports the flag; binding a specific IPv6 address sets it.
        assert_eq!(got[0].1, Some(true));
        // A port nobody listens on: empty, not an error.
        drop(_b);
        assert!(ask(&listeners_on_port_request(libc::AF_INET as u8, b.port())).is_empty());
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
