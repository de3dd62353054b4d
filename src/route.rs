//! Routes as the decision core produces them and the BGP sessions consume them. A leaf: imports
//! nothing of ours, so both sides can depend on it.
//!
//! The core publishes a complete `DesiredRoutes` snapshot; every session diffs it against its own
//! Adj-RIB-Out. Snapshots are immutable and shared (`Arc`), so a session never sees a half-made set.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// An IP prefix whose host bits are zero (enforced by every constructor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why text or an address/length pair is not a [`Prefix`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixError {
    NotPrefix {
        text: String,
    },
    BadLength {
        text: String,
    },
    TooLong {
        len: u8,
        max: u8,
    },
    /// `masked` is the network the user probably meant.
    HostBits {
        addr: IpAddr,
        len: u8,
        masked: IpAddr,
    },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::NotPrefix { text } => {
                write!(f, "\"{text}\" is not an IP prefix (address/length)")
            }
            PrefixError::BadLength { text } => write!(f, "\"{text}\" has an invalid prefix length"),
            PrefixError::TooLong { len, max } => {
                write!(f, "prefix length /{len} is longer than {max}")
            }
            PrefixError::HostBits { addr, len, masked } => write!(
                f,
                "{addr}/{len} has host bits set (did you mean {masked}/{len}?)"
            ),
        }
    }
}

impl std::error::Error for PrefixError {}

impl Prefix {
    /// Builds a prefix; fails when `len` is too long or host bits are set.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(PrefixError::TooLong { len, max });
        }
        let masked = mask(addr, len);
        if masked != addr {
            return Err(PrefixError::HostBits { addr, len, masked });
        }
        Ok(Prefix { addr, len })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits (not a container length, hence no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies in this prefix (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn family(&self) -> Family {
        if self.is_ipv4() {
            Family::Ipv4Unicast
        } else {
            Family::Ipv6Unicast
        }
    }

    /// The significant octets as they go on the wire in NLRI (RFC 4271 4.3): ceil(len/8) bytes.
    pub fn wire_octets(&self) -> Vec<u8> {
        let n = (self.len as usize).div_ceil(8);
        match self.addr {
            IpAddr::V4(a) => a.octets()[..n].to_vec(),
            IpAddr::V6(a) => a.octets()[..n].to_vec(),
        }
    }
}

/// `addr` with every bit past the first `len` cleared (a prefix's network address).
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| PrefixError::NotPrefix { text: s.to_owned() })?;
        let len = match l {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .map_err(|_| PrefixError::BadLength { text: s.to_owned() })?,
            None => {
                if addr.is_ipv4() {
                    32
                } else {
                    128
                }
            }
        };
        Prefix::new(addr, len)
    }
}

/// Address families we speak (AFI/SAFI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (1, 1),
            Family::Ipv6Unicast => (2, 1),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        })
    }
}

/// RFC 8092 large community `global:local1:local2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl FromStr for LargeCommunity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            format!("\"{s}\" is not a large community (GLOBAL:LOCAL1:LOCAL2, each 0..4294967295)")
        };
        if parts.len() != 3 {
            return Err(bad());
        }
        let n = |p: &str| p.trim().parse::<u32>().map_err(|_| bad());
        Ok(LargeCommunity {
            global: n(parts[0])?,
            local1: n(parts[1])?,
            local2: n(parts[2])?,
        })
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// RFC 1997 community `asn:value`, stored as the 32-bit wire value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl Community {
    /// RFC 8326 GRACEFUL_SHUTDOWN.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
}

impl FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("\"{s}\" is not a community (ASN:VALUE, each 0..65535)");
        let (a, v) = s.split_once(':').ok_or_else(bad)?;
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let v: u16 = v.trim().parse().map_err(|_| bad())?;
        Ok(Community(((a as u32) << 16) | v as u32))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

/// Path attributes we attach to a VIP's prefixes. The session adds ORIGIN, AS_PATH and NEXT_HOP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub med: Option<u32>,
    /// LOCAL_PREF, only sent on iBGP sessions (RFC 4271 5.1.5).
    pub local_pref: Option<u32>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Extra copies of our own ASN in AS_PATH (0 = just ours).
    pub as_path_prepend: u8,
    /// RFC 10005 link bandwidth, bytes per second (the VIP's weight); None = not sent.
    pub link_bandwidth: Option<u64>,
}

/// One route the core wants announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRoute {
    /// The VIP this prefix belongs to (for logs).
    pub vip: Arc<str>,
    /// One allocation per VIP, shared by its prefixes (and by the sessions' Adj-RIB-Out): a copy
    /// per prefix cost 88 bytes x 100k prefixes per table.
    pub attrs: Arc<RouteAttrs>,
}

/// VIP name -> its prefixes.
pub type VipPrefixes = BTreeMap<Arc<str>, Arc<[Prefix]>>;

/// The complete set of routes every peer should carry now, with why each VIP is where it is.
#[derive(Clone, Debug, Default)]
pub struct DesiredRoutes {
    /// Grows by one for every published change.
    pub generation: u64,
    pub routes: BTreeMap<Prefix, DesiredRoute>,
    /// VIP name -> human reason for its current state, with figures
    /// (e.g. "check web failed 2/2: connect refused"). Sessions put it in their route-change logs.
    pub reasons: BTreeMap<Arc<str>, Arc<str>>,
    /// VIP name -> its prefixes, for every configured VIP (announced or not), so a session can name
    /// the VIP of a prefix it withdraws.
    pub vip_prefixes: Arc<VipPrefixes>,
    /// Peer -> the routes of `routes` that peer must not get: the fleet guard left that ToR while
    /// it holds the VIP at another (decided per ToR), with the reason per VIP for its log.
    pub withheld: BTreeMap<Arc<str>, Withheld>,
    /// Prefix -> VIP, built from `vip_prefixes` on the first `vip_of` (a session withdrawing 100k
    /// prefixes must not scan every VIP for each). Fill `vip_prefixes` before asking.
    pub(crate) prefix_vip: OnceLock<HashMap<Prefix, Arc<str>>>,
}

/// What one peer must not get of the desired routes, and why (per VIP).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Withheld {
    pub prefixes: std::collections::BTreeSet<Prefix>,
    pub reasons: BTreeMap<Arc<str>, String>,
}

impl DesiredRoutes {
    pub fn reason_for(&self, vip: &str) -> &str {
        self.reasons.get(vip).map(|r| &**r).unwrap_or("")
    }

    /// Why `vip` is where it is at `peer`: its per-peer reason where the guard left that peer.
    pub fn reason_at(&self, peer: &str, vip: &str) -> &str {
        self.withheld
            .get(peer)
            .and_then(|w| w.reasons.get(vip))
            .map_or_else(|| self.reason_for(vip), String::as_str)
    }

    /// Whether `peer` should carry `prefix` now.
    pub fn routed_to(&self, peer: &str, prefix: &Prefix) -> bool {
        self.routes.contains_key(prefix)
            && !self
                .withheld
                .get(peer)
                .is_some_and(|w| w.prefixes.contains(prefix))
    }

    /// The VIP a prefix is configured under, if any.
    pub fn vip_of(&self, prefix: &Prefix) -> Option<&Arc<str>> {
        self.prefix_vip
            .get_or_init(|| {
                let mut m = HashMap::new();
                for (v, ps) in self.vip_prefixes.iter() {
                    for p in ps.iter() {
                        m.entry(*p).or_insert_with(|| v.clone());
                    }
                }
                m
            })
            .get(prefix)
    }
}

/// How many prefixes a log line lists before it summarises the rest.
pub const LOG_PREFIXES: usize = 8;

/// A prefix list for a log line: all of a short list, the first `LOG_PREFIXES` of a long one with
/// the count ("203.0.113.1/32, ... and 99992 more (100000 prefixes)"), so a VIP with 100k
/// prefixes logs one short line, not megabytes.
pub fn prefix_list(ps: &[Prefix]) -> String {
    let mut s = ps
        .iter()
        .take(LOG_PREFIXES)
        .map(Prefix::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ps.len() > LOG_PREFIXES {
        s += &format!(
            " and {} more ({} prefixes)",
            ps.len() - LOG_PREFIXES,
            ps.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rejects_host_bits_and_suggests_network() {
        let e = "203.0.113.10/24".parse::<Prefix>().unwrap_err();
        assert!(matches!(e, PrefixError::HostBits { len: 24, .. }), "{e}");
        assert!(e.to_string().contains("203.0.113.0/24"), "{e}");
        assert!("2001:db8::1/64".parse::<Prefix>().is_err());
        assert!("203.0.113.10/33".parse::<Prefix>().is_err());
    }

    #[test]
    fn prefix_parses_and_prints() {
        let p: Prefix = "2001:db8:10::10/128".parse().unwrap();
        assert_eq!(p.to_string(), "2001:db8:10::10/128");
        assert_eq!(p.family(), Family::Ipv6Unicast);
        let p: Prefix = "203.0.113.10".parse().unwrap();
        assert_eq!(p.len(), 32);
        assert_eq!(p.wire_octets(), vec![203, 0, 113, 10]);
        let p: Prefix = "203.0.112.0/23".parse().unwrap();
        assert_eq!(p.wire_octets(), vec![203, 0, 112]);
        let p: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(p.wire_octets().is_empty());
    }

    #[test]
    fn long_prefix_lists_are_summarised() {
        let ps: Vec<Prefix> = (0..100_000u32)
            .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32).unwrap())
            .collect();
        let s = prefix_list(&ps);
        assert!(s.starts_with("10.0.0.0/32, 10.0.0.1/32"), "{s}");
        assert!(s.ends_with(" and 99992 more (100000 prefixes)"), "{s}");
        assert!(s.len() < 200, "{}", s.len());
        assert_eq!(prefix_list(&ps[..2]), "10.0.0.0/32, 10.0.0.1/32");
        assert_eq!(prefix_list(&ps[..8]).matches(", ").count(), 7);
    }

    #[test]
    fn vip_of_finds_the_vip_of_a_prefix() {
        let mut d = DesiredRoutes::default();
        let a: Prefix = "203.0.113.10/32".parse().unwrap();
        let b: Prefix = "2001:db8::10/128".parse().unwrap();
        Arc::make_mut(&mut d.vip_prefixes).insert("web".into(), [a].into());
        Arc::make_mut(&mut d.vip_prefixes).insert("dns".into(), [b].into());
        assert_eq!(d.vip_of(&a).map(|v| &**v), Some("web"));
        assert_eq!(d.vip_of(&b).map(|v| &**v), Some("dns"));
        assert_eq!(d.vip_of(&"203.0.113.11/32".parse().unwrap()), None);
    }

    #[test]
    fn communities_parse() {
        assert_eq!(
            "65535:0".parse::<Community>().unwrap(),
            Community::GRACEFUL_SHUTDOWN
        );
        assert!("65536:0".parse::<Community>().is_err());
        assert_eq!(
            "65101:1:2".parse::<LargeCommunity>().unwrap().to_string(),
            "65101:1:2"
        );
        assert!("1:2".parse::<LargeCommunity>().is_err());
    }
}
