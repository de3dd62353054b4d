//! The few rtnetlink questions doctor and BFD ask, hand-written on `sys::netlink` like
//! sock_diag: links, addresses, policy rules, routes, and `ip route get DST from SRC`
//! (RTM_GETROUTE with the source set; [`route_get`], BFD's and doctor's one route lookup). Decoders are pure and bounds-checked (the replies are outside bytes); `Rtnl` is
//! the blocking edge.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::netlink::{self, attrs, u32_ne, Message, NlSocket, NLM_F_DUMP};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWRULE: u16 = 32;
const RTM_GETRULE: u16 = 34;

const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const FRA_SRC: u16 = 2;
const FRA_PRIORITY: u16 = 6;
const FRA_TABLE: u16 = 15;
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const RTN_UNICAST: u8 = 1;

/// The fixed headers of the bodies (linux/rtnetlink.h, linux/if_addr.h, linux/fib_rules.h),
/// mirrored for their sizes only: the decoders read fields by offset from the bytes.
#[repr(C)]
struct RtMsg {
    family: u8,
    dst_len: u8,
    src_len: u8,
    tos: u8,
    table: u8,
    protocol: u8,
    scope: u8,
    kind: u8,
    flags: u32,
}
#[repr(C)]
struct IfAddrMsg {
    family: u8,
    prefixlen: u8,
    flags: u8,
    scope: u8,
    index: u32,
}
#[repr(C)]
struct FibRuleHdr {
    family: u8,
    dst_len: u8,
    src_len: u8,
    tos: u8,
    table: u8,
    res1: u8,
    res2: u8,
    action: u8,
    flags: u32,
}
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
const FIB_RULE_HDR_LEN: usize = 12;
const _: () = assert!(std::mem::size_of::<libc::ifinfomsg>() == IFINFOMSG_LEN);
const _: () = assert!(std::mem::size_of::<IfAddrMsg>() == IFADDRMSG_LEN);
const _: () = assert!(std::mem::size_of::<RtMsg>() == RTMSG_LEN);
const _: () = assert!(std::mem::size_of::<FibRuleHdr>() == FIB_RULE_HDR_LEN);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub loopback: bool,
    /// IFLA_INFO_KIND, e.g. "veth", "dummy".
    pub kind: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Addr {
    /// Whether `ip` lies in this address's subnet.
    pub fn subnet_contains(&self, ip: IpAddr) -> bool {
        use crate::route::mask;
        ip.is_ipv4() == self.addr.is_ipv4()
            && mask(ip, self.prefix_len) == mask(self.addr, self.prefix_len)
    }
}

/// A policy routing rule (`ip rule`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub family: u8,
    pub priority: u32,
    /// `from` selector; None for "from all".
    pub src: Option<(IpAddr, u8)>,
    pub table: u32,
}

/// A route (from a dump) or the answer to a route lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub family: u8,
    pub dst: Option<(IpAddr, u8)>,
    pub table: u32,
    pub kind: u8,
    /// Output interfaces: one, or several for a multipath route.
    pub oifs: Vec<u32>,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
}

impl Route {
    pub fn is_default_unicast(&self) -> bool {
        self.kind == RTN_UNICAST && self.dst.is_none_or(|(_, len)| len == 0)
    }
}

fn ip(family: u8, v: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), v.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        (libc::AF_INET6, 16) => {
            let b: [u8; 16] = v.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

fn short(what: &str, len: usize) -> io::Error {
    netlink::bad(format!("{what} of {len} bytes"))
}

/// RTM_NEWLINK body: `struct ifinfomsg` (16 bytes) + attributes.
pub fn decode_link(b: &[u8]) -> io::Result<Link> {
    if b.len() < IFINFOMSG_LEN {
        return Err(short("ifinfomsg", b.len()));
    }
    let index = u32_ne(b, 4).unwrap_or(0);
    let flags = u32_ne(b, 8).unwrap_or(0);
    let mut name = String::new();
    let mut kind = None;
    for (t, v) in attrs(&b[IFINFOMSG_LEN..]) {
        match t {
            IFLA_IFNAME => {
                name = String::from_utf8_lossy(v.split(|&c| c == 0).next().unwrap_or(&[])).into()
            }
            IFLA_LINKINFO => {
                for (t2, v2) in attrs(v) {
                    if t2 == IFLA_INFO_KIND {
                        let k = v2.split(|&c| c == 0).next().unwrap_or(&[]);
                        kind = Some(String::from_utf8_lossy(k).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Link {
        index,
        name,
        up: flags & IFF_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        kind,
    })
}

/// RTM_NEWADDR body: `struct ifaddrmsg` (8 bytes) + attributes.
pub fn decode_addr(b: &[u8]) -> io::Result<Option<Addr>> {
    if b.len() < IFADDRMSG_LEN {
        return Err(short("ifaddrmsg", b.len()));
    }
    let (family, prefix_len) = (b[0], b[1]);
    let ifindex = u32_ne(b, 4).unwrap_or(0);
    let mut address = None;
    let mut local = None;
    for (t, v) in attrs(&b[IFADDRMSG_LEN..]) {
        match t {
            IFA_ADDRESS => address = ip(family, v),
            IFA_LOCAL => local = ip(family, v),
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours when present.
    Ok(local.or(address).map(|addr| Addr {
        ifindex,
        addr,
        prefix_len,
    }))
}

/// RTM_NEWRULE body: `struct fib_rule_hdr` (12 bytes) + attributes.
pub fn decode_rule(b: &[u8]) -> io::Result<Rule> {
    if b.len() < FIB_RULE_HDR_LEN {
        return Err(short("fib_rule_hdr", b.len()));
    }
    let (family, src_len, table8) = (b[0], b[2], b[4]);
    let mut rule = Rule {
        family,
        priority: 0,
        src: None,
        table: u32::from(table8),
    };
    for (t, v) in attrs(&b[FIB_RULE_HDR_LEN..]) {
        match t {
            FRA_SRC => rule.src = ip(family, v).map(|a| (a, src_len)),
            FRA_PRIORITY => rule.priority = u32_ne(v, 0).unwrap_or(0),
            FRA_TABLE => rule.table = u32_ne(v, 0).unwrap_or(rule.table),
            _ => {}
        }
    }
    Ok(rule)
}

/// RTM_NEWROUTE body: `struct rtmsg` (12 bytes) + attributes.
pub fn decode_route(b: &[u8]) -> io::Result<Route> {
    if b.len() < RTMSG_LEN {
        return Err(short("rtmsg", b.len()));
    }
    let (family, dst_len, table8, kind) = (b[0], b[1], b[4], b[7]);
    let mut r = Route {
        family,
        dst: None,
        table: u32::from(table8),
        kind,
        oifs: Vec::new(),
        gateway: None,
        prefsrc: None,
    };
    for (t, v) in attrs(&b[RTMSG_LEN..]) {
        match t {
            RTA_DST => r.dst = ip(family, v).map(|a| (a, dst_len)),
            RTA_OIF => r.oifs.extend(u32_ne(v, 0)),
            RTA_GATEWAY => r.gateway = ip(family, v),
            RTA_PREFSRC => r.prefsrc = ip(family, v),
            RTA_TABLE => r.table = u32_ne(v, 0).unwrap_or(r.table),
            RTA_MULTIPATH => {
                // struct rtnexthop { u16 len; u8 flags; u8 hops; i32 ifindex; } + attributes.
                let mut rest = v;
                while rest.len() >= 8 {
                    let len = usize::from(netlink::u16_ne(rest, 0).unwrap_or(0));
                    if len < 8 || len > rest.len() {
                        break;
                    }
                    r.oifs.extend(u32_ne(rest, 4));
                    for (t2, v2) in attrs(&rest[8..len]) {
                        if t2 == RTA_GATEWAY && r.gateway.is_none() {
                            r.gateway = ip(family, v2);
                        }
                    }
                    rest = &rest[((len + 3) & !3).min(rest.len())..];
                }
            }
            _ => {}
        }
    }
    Ok(r)
}

fn of_kind<T>(
    msgs: &[Message],
    kind: u16,
    f: impl Fn(&[u8]) -> io::Result<T>,
) -> io::Result<Vec<T>> {
    msgs.iter()
        .filter(|m| m.kind == kind)
        .map(|m| f(&m.body))
        .collect()
}

fn family_of(a: IpAddr) -> u8 {
    (if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }) as u8
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// The RTM_GETROUTE payload of `ip route get DST [from SRC]`.
pub fn route_get_request(dst: IpAddr, src: Option<IpAddr>) -> Vec<u8> {
    let host = if dst.is_ipv4() { 32 } else { 128 };
    let mut p = vec![0u8; RTMSG_LEN];
    p[0] = family_of(dst);
    p[1] = host;
    if src.is_some() {
        p[2] = host;
    }
    push_attr(&mut p, RTA_DST, &octets(dst));
    if let Some(s) = src.filter(|s| s.is_ipv4() == dst.is_ipv4()) {
        push_attr(&mut p, RTA_SRC, &octets(s));
    }
    p
}

/// A NETLINK_ROUTE socket.
pub struct Rtnl {
    sock: NlSocket,
}

impl Rtnl {
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            sock: NlSocket::open(libc::NETLINK_ROUTE)?,
        })
    }

    fn dump(&mut self, kind: u16, header: &[u8]) -> io::Result<Vec<Message>> {
        self.sock.request(kind, NLM_F_DUMP, header)
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msgs = self.dump(RTM_GETLINK, &[0u8; IFINFOMSG_LEN])?;
        of_kind(&msgs, RTM_NEWLINK, decode_link)
    }

    pub fn addrs(&mut self) -> io::Result<Vec<Addr>> {
        let msgs = self.dump(RTM_GETADDR, &[0u8; IFADDRMSG_LEN])?;
        Ok(of_kind(&msgs, RTM_NEWADDR, decode_addr)?
            .into_iter()
            .flatten()
            .collect())
    }

    pub fn rules(&mut self) -> io::Result<Vec<Rule>> {
        let mut out = Vec::new();
        for fam in [libc::AF_INET, libc::AF_INET6] {
            let mut h = [0u8; FIB_RULE_HDR_LEN];
            h[0] = fam as u8;
            let msgs = self.dump(RTM_GETRULE, &h)?;
            out.extend(of_kind(&msgs, RTM_NEWRULE, decode_rule)?);
        }
        Ok(out)
    }

    /// Every route of every table, both families.
    pub fn routes(&mut self) -> io::Result<Vec<Route>> {
        let mut out = Vec::new();
        for fam in [libc::AF_INET, libc::AF_INET6] {
            let mut h = [0u8; RTMSG_LEN];
            h[0] = fam as u8;
            let msgs = self.dump(RTM_GETROUTE, &h)?;
            out.extend(of_kind(&msgs, RTM_NEWROUTE, decode_route)?);
        }
        Ok(out)
    }

    /// `ip route get DST [from SRC]`: the route the kernel would use for a packet we send.
    pub fn route_get(&mut self, dst: IpAddr, src: Option<IpAddr>) -> io::Result<Route> {
        let msgs = self
            .sock
            .request(RTM_GETROUTE, 0, &route_get_request(dst, src))?;
        of_kind(&msgs, RTM_NEWROUTE, decode_route)?
            .into_iter()
            .next()
            .ok_or_else(|| netlink::bad("no route in the answer"))
    }
}

/// `ip route get DST [from SRC]` on a socket of its own: the one route lookup doctor and BFD
/// share. Blocking (one request, one answer).
pub fn route_get(dst: IpAddr, src: Option<IpAddr>) -> io::Result<Route> {
    Rtnl::open()?.route_get(dst, src)
}

/// Runs every decoder on `data`; for the fuzz target.
pub fn decode_any(data: &[u8]) {
    let _ = decode_link(data);
    let _ = decode_addr(data);
    let _ = decode_rule(data);
    let _ = decode_route(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::tests::attr;
    use proptest::prelude::*;

    #[test]
    fn route_answer_with_multipath_and_table() {
        let mut b = vec![
            libc::AF_INET as u8,
            0,
            0,
            0,
            254,
            0,
            0,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        b.extend(attr(RTA_TABLE, &100u32.to_ne_bytes()));
        let mut nh = Vec::new();
        for (ifi, gw) in [(3u32, [198, 51, 100, 1]), (4, [198, 51, 100, 9])] {
            let a = attr(RTA_GATEWAY, &gw);
            nh.extend_from_slice(&((8 + a.len()) as u16).to_ne_bytes());
            nh.extend_from_slice(&[0, 0]);
            nh.extend_from_slice(&ifi.to_ne_bytes());
            nh.extend(a);
        }
        b.extend(attr(RTA_MULTIPATH, &nh));
        let r = decode_route(&b).unwrap();
        assert!(r.is_default_unicast());
        assert_eq!(r.table, 100);
        assert_eq!(r.oifs, [3, 4]);
        assert_eq!(r.gateway, Some("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn link_addr_rule() {
        let mut l = vec![0u8; 16];
        l[4..8].copy_from_slice(&1u32.to_ne_bytes());
        l[8..12].copy_from_slice(&(IFF_UP | IFF_LOOPBACK).to_ne_bytes());
        l.extend(attr(IFLA_IFNAME, b"lo\0"));
        l.extend(attr(IFLA_LINKINFO, &attr(IFLA_INFO_KIND, b"dummy\0")));
        let link = decode_link(&l).unwrap();
        assert_eq!(
            (link.index, link.name.as_str(), link.up, link.loopback),
            (1, "lo", true, true)
        );
        assert_eq!(link.kind.as_deref(), Some("dummy"));

        let mut a = vec![libc::AF_INET as u8, 30, 0, 0];
        a.extend_from_slice(&7u32.to_ne_bytes());
        a.extend(attr(IFA_ADDRESS, &[198, 51, 100, 2]));
        let addr = decode_addr(&a).unwrap().unwrap();
        assert_eq!(addr.ifindex, 7);
        assert!(addr.subnet_contains("198.51.100.1".parse().unwrap()));
        assert!(!addr.subnet_contains("198.51.100.5".parse().unwrap()));

        let mut r = vec![libc::AF_INET as u8, 0, 32, 0, 100, 0, 0, 1, 0, 0, 0, 0];
        r.extend(attr(FRA_SRC, &[203, 0, 113, 10]));
        r.extend(attr(FRA_PRIORITY, &100u32.to_ne_bytes()));
        let rule = decode_rule(&r).unwrap();
        assert_eq!(rule.src, Some(("203.0.113.10".parse().unwrap(), 32)));
        assert_eq!((rule.priority, rule.table), (100, 100));
    }

    #[test]
    fn request_carries_source() {
        let p = route_get_request(
            "192.0.2.1".parse().unwrap(),
            Some("203.0.113.10".parse().unwrap()),
        );
        assert_eq!((p[0], p[1], p[2]), (libc::AF_INET as u8, 32, 32));
        let a: Vec<_> = attrs(&p[12..]).collect();
        assert_eq!(
            a,
            [
                (RTA_DST, &[192u8, 0, 2, 1][..]),
                (RTA_SRC, &[203u8, 0, 113, 10][..])
            ]
        );
    }

    #[test]
    fn live_lookup_of_loopback() {
        let mut r = Rtnl::open().unwrap();
        let links = r.links().unwrap();
        let lo = links.iter().find(|l| l.loopback).unwrap();
        let route = r.route_get("127.0.0.1".parse().unwrap(), None).unwrap();
        assert_eq!(route.oifs, [lo.index]);
        assert!(r.addrs().unwrap().iter().any(|a| a.addr.is_loopback()));
        assert!(!r.rules().unwrap().is_empty());
        assert!(!r.routes().unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            decode_any(&b);
        }
    }
}
