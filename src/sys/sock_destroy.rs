//! The kernel's TCP socket-destroy broadcasts: a NETLINK_SOCK_DIAG socket bound to the
//! SKNLGRP_INET_TCP_DESTROY and SKNLGRP_INET6_TCP_DESTROY groups receives one inet_diag message
//! per TCP socket freed in this network namespace (Linux 4.4+), microseconds after the last close.
//! The listener check wakes on its listener's message instead of waiting for its next poll.
//!
//! A classic BPF filter on the socket drops, in the kernel, every message but those of sockets
//! bound to the watched port without a peer (a listener's; an accepted connection has one), so a
//! busy server's closing connections never wake the daemon. Decoding the messages is
//! `signals::sockdiag::destroyed_sockets` (bounds-checked, fuzzed).

use std::io;
use std::mem::size_of;

use socket2::{Domain, Protocol, Socket, Type};

/// `enum sknetlink_groups` (linux/sock_diag.h).
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;

/// Offsets in a broadcast datagram: nlmsghdr (16 bytes), then inet_diag_msg, whose
/// inet_diag_sockid starts at byte 4 with the source then destination port (network order).
const SPORT_AT: u32 = 16 + 4;
const DPORT_AT: u32 = 16 + 6;

const _: () = assert!(size_of::<libc::sockaddr_nl>() == 12);
const _: () = assert!(size_of::<libc::sock_filter>() == 8);

/// A non-blocking, close-on-exec netlink socket that receives the destroy messages of TCP
/// sockets (IPv4 and IPv6) bound to `port` with no peer. Fails where the kernel lacks the groups
/// (ENOENT) or refuses the subscription (EPERM where CAP_NET_ADMIN is required): the caller then
/// polls.
pub fn listener_destroy_socket(port: u16) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW.cloexec().nonblocking(),
        Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
    )?;
    // Filter before subscribing, so no unfiltered message is ever queued.
    sock.attach_filter(&listener_filter(port))?;
    bind_groups(
        &sock,
        (1 << (SKNLGRP_INET_TCP_DESTROY - 1)) | (1 << (SKNLGRP_INET6_TCP_DESTROY - 1)),
    )?;
    Ok(sock)
}

/// [`listener_destroy_socket`] registered with the tokio reactor (needs a runtime with I/O).
pub fn listener_destroy_watch(port: u16) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    let sock = listener_destroy_socket(port)?;
    // SAFETY: the Socket owns its fd for its whole life and always returns that one.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(sock) }?)
}

/// `sport == port && dport == 0`: accept the whole datagram, else drop it. One message per
/// datagram (the kernel sends each destroyed socket in its own skb).
fn listener_filter(port: u16) -> [libc::sock_filter; 6] {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld_half = libc::BPF_LD | libc::BPF_H | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    [
        op(ld_half, 0, 0, SPORT_AT),
        op(jeq, 0, 3, u32::from(port)),
        op(ld_half, 0, 0, DPORT_AT),
        op(jeq, 0, 1, 0),
        op(ret, 0, 0, u32::MAX),
        op(ret, 0, 0, 0),
    ]
}

/// bind(2) to the multicast `groups` (a bitmask: group n is bit n-1), port id chosen by the
/// kernel. A socket left unbound is never delivered a broadcast. rustix builds the sockaddr_nl.
fn bind_groups(sock: &Socket, groups: u32) -> io::Result<()> {
    let addr = rustix::net::netlink::SocketAddrNetlink::new(0, groups);
    rustix::net::bind(sock, &addr).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    use super::*;

    /// Reads datagrams until `deadline`, returning them.
    fn drain(sock: &Socket, until: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        while Instant::now() < until {
            match (&*sock).read(&mut buf) {
                Ok(n) => out.push(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn a_closed_listener_is_broadcast_and_connections_are_filtered_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sock = match listener_destroy_socket(port) {
            Ok(s) => s,
            // A kernel or sandbox without the groups: the check polls; nothing to test here.
            Err(e) => return eprintln!("no TCP destroy broadcasts here: {e}"),
        };
        // A connection to the port and its accepted side close: both carry a peer, so both
        // are filtered out in the kernel.
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (a, _) = l.accept().unwrap();
        drop(a);
        drop(c);
        // Another listener's close: another port, filtered out.
        drop(TcpListener::bind("127.0.0.1:0").unwrap());
        drop(l);
        let got = drain(&sock, Instant::now() + Duration::from_millis(300));
        let sockets: Vec<_> = got
            .iter()
            .flat_map(|d| crate::signals::sockdiag::destroyed_sockets(d))
            .collect();
        assert_eq!(sockets.len(), 1, "only the listener's close: {sockets:?}");
        assert_eq!(sockets[0].local_port, port);
        assert_eq!(
            sockets[0].local,
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_filter_reads_the_ports_where_the_kernel_puts_them() {
        let f = listener_filter(80);
        assert_eq!(f[0].k, 20);
        assert_eq!(f[1].k, 80);
        assert_eq!(f[2].k, 22);
        assert_eq!(f[4].k, u32::MAX, "accept");
        assert_eq!(f[5].k, 0, "drop");
        // Jumps land on the drop instruction.
        assert_eq!(1 + 1 + usize::from(f[1].jf), 5);
        assert_eq!(3 + 1 + usize::from(f[3].jf), 5);
    }
}
