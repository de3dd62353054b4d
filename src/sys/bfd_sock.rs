//! RFC 5881 sockets: a receiver on UDP 3784 per local address that reports each packet's TTL /
//! Hop Limit and ingress interface (recvmsg ancillary data: IP_RECVTTL + IP_PKTINFO,
//! IPV6_RECVHOPLIMIT + IPV6_RECVPKTINFO), a sender per session bound to a source port in
//! 49152-65535 that sends with TTL 255, and the interface of the route to a peer. Owns only these
//! syscalls.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

pub const PORT: u16 = 3784;
pub const SRC_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

fn new_udp(v6: bool) -> io::Result<Socket> {
    let d = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(d, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn setsockopt_int(s: &Socket, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to an int of the stated size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// UDP 3784 on `local`, with the TTL / Hop Limit of every packet delivered as ancillary data.
pub fn receiver(local: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let s = new_udp(local.is_ipv6())?;
    s.set_reuse_address(true)?;
    recv_options(&s, local.is_ipv6())?;
    s.bind(&SocketAddr::new(local, port).into())?;
    Ok(s.into())
}

/// TTL / Hop Limit and ingress interface with every datagram.
fn recv_options(s: &Socket, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        setsockopt_int(s, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
        setsockopt_int(s, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// The interface of the route from `local` to `peer` (`ip route get PEER from LOCAL`): a
/// single-hop session runs on it and accepts packets from no other (RFC 5881).
pub fn route_ifindex(peer: IpAddr, local: IpAddr) -> io::Result<u32> {
    let r = crate::sys::rtnl::route_get(peer, Some(local))?;
    match r.oifs.as_slice() {
        [i] => Ok(*i),
        [] => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface on the route to {peer}"),
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the route to {peer} is multipath: not a single-hop BFD peer"),
        )),
    }
}

/// `struct in6_pktinfo` (linux/ipv6.h); the libc crate has no Linux definition.
#[repr(C)]
struct In6Pktinfo {
    addr: [u8; 16],
    ifindex: u32,
}
const _: () = assert!(size_of::<In6Pktinfo>() == 20);
const _: () = assert!(size_of::<libc::in_pktinfo>() == 12);

/// What recvmsg said of one datagram besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    pub len: usize,
    pub src: SocketAddr,
    /// TTL / Hop Limit; None when the kernel gave none.
    pub ttl: Option<u8>,
    /// Ingress interface; None when the kernel gave none.
    pub ifindex: Option<u32>,
}

/// A sender from `local`, source port in 49152-65535 (tried from a random start), TTL 255,
/// connected to `peer`:3784.
pub fn sender(local: IpAddr, peer: SocketAddr, start: u16) -> io::Result<UdpSocket> {
    let s = new_udp(local.is_ipv6())?;
    if local.is_ipv6() {
        s.set_unicast_hops_v6(255)?;
    } else {
        s.set_ttl(255)?;
    }
    let n = u32::from(SRC_PORTS.end() - SRC_PORTS.start()) + 1;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
    for i in 0..n.min(256) {
        let port = SRC_PORTS.start() + ((u32::from(start) + i) % n) as u16;
        match s.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => {
                s.connect(&peer.into())?;
                return Ok(s.into());
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// The address the kernel would send from towards `peer` (no packet is sent).
pub fn source_for(peer: IpAddr) -> io::Result<IpAddr> {
    let any: IpAddr = if peer.is_ipv6() {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let s = UdpSocket::bind(SocketAddr::new(any, 0))?;
    s.connect(SocketAddr::new(peer, PORT))?;
    Ok(s.local_addr()?.ip())
}

/// One datagram with its source, TTL / Hop Limit and ingress interface.
pub fn recv_meta(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<RxMeta> {
    // SAFETY: every pointer below refers to a live local buffer of the stated length; the cmsg
    // walk uses the libc macros, which stay inside msg_controllen.
    unsafe {
        let mut addr: libc::sockaddr_storage = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ttl = None;
        let mut ifindex = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let (lvl, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            let holds = |n: usize| (*c).cmsg_len as usize >= libc::CMSG_LEN(n as u32) as usize;
            let is_ttl = (lvl == libc::IPPROTO_IP && ty == libc::IP_TTL)
                || (lvl == libc::IPPROTO_IPV6 && ty == libc::IPV6_HOPLIMIT);
            if is_ttl && holds(size_of::<i32>()) {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
                ttl = u8::try_from(v).ok();
            } else if lvl == libc::IPPROTO_IP
                && ty == libc::IP_PKTINFO
                && holds(size_of::<libc::in_pktinfo>())
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>());
                ifindex = u32::try_from(v.ipi_ifindex).ok();
            } else if lvl == libc::IPPROTO_IPV6
                && ty == libc::IPV6_PKTINFO
                && holds(size_of::<In6Pktinfo>())
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<In6Pktinfo>());
                ifindex = Some(v.ifindex);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let src = match i32::from(addr.ss_family) {
            libc::AF_INET => {
                let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 => {
                let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                ))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unknown address family",
                ))
            }
        };
        Ok(RxMeta {
            len: n as usize,
            src,
            ttl,
            ifindex,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback: the sender's packets arrive with TTL 255 and a source port in range; a plain
    /// socket's default TTL (64) is reported as such.
    #[test]
    fn ttl_255_out_and_reported_in() {
        let lo: IpAddr = Ipv4Addr::LOCALHOST.into();
        // 3784 may be taken by another test run; use the same options on an ephemeral port.
        let r = new_udp(false).expect("socket");
        recv_options(&r, false).expect("recv options");
        r.bind(&SocketAddr::new(lo, 0).into()).expect("bind");
        let r: UdpSocket = r.into();
        let to = r.local_addr().expect("addr");
        let s = new_udp(false).expect("socket");
        s.set_ttl(255).expect("ttl");
        s.bind(&SocketAddr::new(lo, 0).into()).expect("bind");
        let s: UdpSocket = s.into();
        s.send_to(b"x", to).expect("send");
        let plain = UdpSocket::bind("127.0.0.1:0").expect("bind");
        plain.set_ttl(64).expect("ttl");
        plain.send_to(b"y", to).expect("send");
        r.set_nonblocking(false).expect("blocking");
        let mut b = [0u8; 64];
        let lo_index = route_ifindex(lo, lo).expect("route to lo");
        let m = recv_blocking(&r, &mut b);
        let want = RxMeta {
            len: 1,
            src: s.local_addr().expect("addr"),
            ttl: Some(255),
            ifindex: Some(lo_index),
        };
        assert_eq!(m, want);
        let m = recv_blocking(&r, &mut b);
        assert_eq!((m.ttl, m.ifindex), (Some(64), Some(lo_index)));
        let snd = sender(lo, SocketAddr::new(lo, PORT), 65535).expect("sender");
        assert!(SRC_PORTS.contains(&snd.local_addr().expect("addr").port()));
        assert_eq!(source_for(lo).expect("route"), lo);
    }

    /// IPv6 on ::1: Hop Limit and the ingress interface come with the datagram too.
    #[test]
    fn hop_limit_and_interface_on_ipv6() {
        let lo: IpAddr = Ipv6Addr::LOCALHOST.into();
        let r = new_udp(true).expect("socket");
        recv_options(&r, true).expect("recv options");
        if r.bind(&SocketAddr::new(lo, 0).into()).is_err() {
            return; // no IPv6 on this host
        }
        let r: UdpSocket = r.into();
        let s = new_udp(true).expect("socket");
        s.set_unicast_hops_v6(255).expect("hops");
        s.bind(&SocketAddr::new(lo, 0).into()).expect("bind");
        let s: UdpSocket = s.into();
        s.send_to(b"x", r.local_addr().expect("addr"))
            .expect("send");
        r.set_nonblocking(false).expect("blocking");
        let mut b = [0u8; 64];
        let m = recv_blocking(&r, &mut b);
        assert_eq!(m.ttl, Some(255));
        assert_eq!(m.ifindex, Some(route_ifindex(lo, lo).expect("route")));
    }

    fn recv_blocking(s: &UdpSocket, b: &mut [u8]) -> RxMeta {
        for _ in 0..200 {
            match recv_meta(s.as_raw_fd(), b) {
                Ok(r) => return r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("nothing received");
    }
}
