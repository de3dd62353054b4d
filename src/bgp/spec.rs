//! What the BGP speaker needs to know about one peer, built by `config` (config -> bgp is the
//! allowed direction). Owns nothing else; imports only `transport` for the auth options.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use super::transport::Auth;

/// One BGP peer as the session task sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: Arc<str>,
    pub address: IpAddr,
    pub remote_as: u32,
    pub local_address: Option<IpAddr>,
    pub port: u16,
    /// Hold time we offer in OPEN; the session uses min(ours, theirs).
    pub hold_time: Duration,
    /// NEXT_HOP for IPv4 prefixes; default: the session's local IPv4 address.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// NEXT_HOP for IPv6 prefixes; default: the session's local IPv6 address (IPv6 transport only).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// TCP-MD5 or TCP-AO key for the session (`password_file` / `tcp_ao`); keys never print.
    pub auth: Auth,
    /// GTSM: send TTL 255, accept only TTL >= 254.
    pub ttl_security: bool,
}
