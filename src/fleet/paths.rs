//! Observed paths: the decision core's own types for what a ToR shows us (RFC 7911 paths of the
//! VIP prefixes), produced by the BGP parser (`bgp::rib_in`) and consumed by the fleet view.
//! Plain data: no parsing, no I/O.

use std::net::IpAddr;

use crate::route::{Community, Family, LargeCommunity, Prefix};

/// One path: a prefix and its RFC 7911 path identifier (0 when ADD-PATH is not in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathKey {
    pub prefix: Prefix,
    pub path_id: u32,
}

/// The attributes of the announced paths that the fleet view needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathAttrs {
    /// NEXT_HOP, or the MP_REACH next hop for MP paths (global address for IPv6).
    pub next_hop: Option<IpAddr>,
    /// AS numbers in order (sets flattened), at most the parser's cap (`bgp::rib_in::MAX_AS_PATH`).
    pub as_path: Vec<u32>,
    /// The AS_PATH length as received (can exceed `as_path.len()`).
    pub as_path_len: usize,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// The routes of one UPDATE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RibInUpdate {
    /// Paths to remove (withdrawn, or treated as withdrawn).
    pub withdrawn: Vec<PathKey>,
    /// Paths announced with `attrs`.
    pub announced: Vec<(PathKey, Family)>,
    pub attrs: PathAttrs,
    /// Why the announcements were turned into withdrawals (RFC 7606 treat-as-withdraw).
    pub treat_as_withdraw: Option<String>,
    /// Families whose NLRI could not be located: drop and ignore them (RFC 7606 AFI/SAFI disable).
    pub disable: Vec<(Family, String)>,
    /// Prefixes the caller's filter did not keep (not VIP prefixes): counted, not stored.
    pub filtered_out: usize,
    /// MP attributes of families we do not speak, ignored.
    pub other_families: usize,
    /// This UPDATE is an End-of-RIB marker (RFC 4724 2).
    pub end_of_rib: Option<Family>,
}
