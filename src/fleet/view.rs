//! The fleet view: per ToR (peer) and per VIP prefix, the other announcers the ToR shows us.
//!
//! Owns the received-path store. Inputs: session up (with what ADD-PATH gave us), session down,
//! parsed UPDATEs, the clock. Only exact VIP prefixes are stored (everything else is counted and
//! dropped, so memory does not follow the router's table), at most [`MAX_PATHS_PER_PREFIX`] paths
//! per prefix per peer (the excess is counted). Our own routes reflected back are recognised by
//! the identity large community and never stored.
//!
//! When the daemon falls behind a session's UPDATEs, the session marks the peer *behind* at the
//! exact point of the first delta it could not pass on and later resyncs it with its whole table
//! (`bgp::feed`). A behind peer reports [`ViewState::Behind`]: the guard counts none of its
//! (possibly stale) announcers and treats its table as still arriving, so it holds rather than
//! leaves. [`FleetView::resync`] replaces the peer's paths wholesale.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::paths::{PathAttrs, PathKey, RibInUpdate};
use super::table::{PeerTable, MAX_TABLE_PATHS_PER_PREFIX};
use crate::route::{Community, Family, LargeCommunity, Prefix};

/// Paths kept per VIP prefix per peer; a peer announcing more is counted, never stored.
pub const MAX_PATHS_PER_PREFIX: usize = 1024;

// A resync can only restore what the session's table kept.
const _: () = assert!(MAX_TABLE_PATHS_PER_PREFIX >= MAX_PATHS_PER_PREFIX);

/// Local-data-1 of the identity large community `local_as:IDENTITY_TAG:router_id`, which every
/// node attaches to its routes so that nodes sharing one ASN behind next-hop-self ToRs can be told
/// apart (ASCII "VW" = 0x5657 = 22103). It counts only with the fleet's AS in its first field, so
/// a community of another AS (or a user's own) can never pose as a node.
pub const IDENTITY_TAG: u32 = 0x5657;

/// Local-data-1 of the mark's large-community twin `local_as:MARK_TAG:episode` (0x5658 =
/// 22104), carried beside the standard unhealthy community: a ToR that strips standard
/// communities but keeps large ones (it must keep them for identities) still shows the mark, and
/// a ToR that reflects our own path shows *which* marking came back (a reflection of an earlier
/// episode's mark proves nothing about this one).
pub const MARK_TAG: u32 = 0x5658;

/// Whether a user's large community lies in the space vipwarden sets itself (identity or mark).
pub fn in_fleet_space(c: &LargeCommunity) -> bool {
    c.local1 == IDENTITY_TAG || c.local1 == MARK_TAG
}

/// The identity community a node with this router id attaches.
pub fn identity_community(local_as: u32, router_id: std::net::Ipv4Addr) -> LargeCommunity {
    LargeCommunity {
        global: local_as,
        local1: IDENTITY_TAG,
        local2: u32::from(router_id),
    }
}

/// Who an announcer is: its identity community, or (for nodes that do not attach one) the path
/// as one ToR shows it, which cannot be matched across ToRs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnnouncerId {
    /// Router id from the identity community.
    Node(std::net::Ipv4Addr),
    /// No identity: peer name and path id.
    Path(Arc<str>, u32),
}

impl std::fmt::Display for AnnouncerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnnouncerId::Node(id) => write!(f, "{id}"),
            AnnouncerId::Path(peer, id) => write!(f, "{peer}/path {id}"),
        }
    }
}

/// One other announcer of a VIP prefix, as one ToR shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcer {
    pub path_id: u32,
    pub next_hop: Option<IpAddr>,
    pub as_path: Vec<u32>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Router id from the identity community (fleet AS, one router id), if the route carries one.
    pub identity: Option<std::net::Ipv4Addr>,
    /// Carries the fleet's unhealthy community: it is leaving or held. GRACEFUL_SHUTDOWN alone
    /// does not mark: a ToR in RFC 8326 maintenance puts it on every path it sends.
    pub marked: bool,
}

/// How much a peer shows us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewState {
    /// Session not established: nothing known.
    Down,
    /// Established without ADD-PATH for this family: the router's best path only. It can prove
    /// that a healthy announcer exists, never that none does.
    Partial,
    /// ADD-PATH negotiated, but the table may still be arriving (no End-of-RIB yet and the
    /// settle time since Established has not passed).
    Loading,
    /// ADD-PATH negotiated and the table is in: every announcer the router has.
    Full,
    /// ADD-PATH negotiated, but a malformed UPDATE made us drop this family until the session
    /// restarts (RFC 7606 AFI/SAFI disable).
    Disabled(String),
    /// The daemon fell behind this peer's UPDATEs: what we hold may be stale until the session
    /// resyncs its table. Its announcers are not counted; the guard holds as if loading.
    Behind,
}

impl ViewState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ViewState::Down => "down",
            ViewState::Partial => "partial",
            ViewState::Loading => "loading",
            ViewState::Full => "full",
            ViewState::Disabled(_) => "disabled",
            ViewState::Behind => "behind",
        }
    }
}

#[derive(Clone, Debug, Default)]
struct FamilyState {
    add_path: bool,
    end_of_rib: bool,
    disabled: Option<String>,
}

/// Default: a peer whose session is down (nothing shown).
#[derive(Clone, Debug, Default)]
struct PeerView {
    up_since: Option<Instant>,
    v4: FamilyState,
    v6: FamilyState,
    paths: BTreeMap<Prefix, BTreeMap<u32, Announcer>>,
    /// Our own paths as this ToR reflects them back (FRR does, BIRD does not): unmarked (None),
    /// or marked with the episode its large twin carries (0 when only the standard community
    /// came back). Shows whether and when our marks reach the ToR.
    own: BTreeMap<PathKey, Option<u32>>,
    /// This session has reflected one of our own paths back at least once: it is a ToR that
    /// reflects, so a missing reflection means one still in flight.
    reflects: bool,
    /// Prefixes for which this ToR sent more paths than we store: its count is incomplete.
    overflow: BTreeSet<Prefix>,
    /// Deltas were lost after this point: stale until a resync (or down/up).
    behind: bool,
}

impl PeerView {
    fn fam(&mut self, f: Family) -> &mut FamilyState {
        match f {
            Family::Ipv4Unicast => &mut self.v4,
            Family::Ipv6Unicast => &mut self.v6,
        }
    }

    fn fam_ref(&self, f: Family) -> &FamilyState {
        match f {
            Family::Ipv4Unicast => &self.v4,
            Family::Ipv6Unicast => &self.v6,
        }
    }
}

/// Counters for status and metrics; they only grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewCounters {
    /// Received prefixes that are not VIP prefixes (dropped).
    pub filtered: u64,
    /// Paths beyond [`MAX_PATHS_PER_PREFIX`] (dropped).
    pub excess: u64,
    /// Our own routes reflected back (dropped).
    pub own: u64,
    /// UPDATEs treated as withdraw (RFC 7606).
    pub treat_as_withdraw: u64,
    /// Families disabled after a malformed UPDATE.
    pub disabled: u64,
    /// Times a peer was marked behind, and resyncs applied.
    pub behind: u64,
    pub resyncs: u64,
}

/// What one peer shows for one prefix, for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub peer: Arc<str>,
    pub state: ViewState,
    pub announcers: Vec<Announcer>,
}

/// Every peer's view of the VIP prefixes.
#[derive(Clone, Debug)]
pub struct FleetView {
    me: std::net::Ipv4Addr,
    /// The fleet's AS: the first field of every identity community that counts.
    fleet_as: u32,
    unhealthy: Community,
    /// A peer's table counts as complete this long after Established even without End-of-RIB.
    settle: Duration,
    vip_prefixes: BTreeSet<Prefix>,
    peers: BTreeMap<Arc<str>, PeerView>,
    pub counters: ViewCounters,
    /// Grows on every change that can alter a count (the guard re-evaluates on it).
    pub generation: u64,
}

impl FleetView {
    pub fn new(
        me: std::net::Ipv4Addr,
        fleet_as: u32,
        unhealthy: Community,
        settle: Duration,
        vip_prefixes: impl IntoIterator<Item = Prefix>,
    ) -> FleetView {
        FleetView {
            me,
            fleet_as,
            unhealthy,
            settle,
            vip_prefixes: vip_prefixes.into_iter().collect(),
            peers: BTreeMap::new(),
            counters: ViewCounters::default(),
            generation: 0,
        }
    }

    /// Whether a received prefix is worth keeping (the parser's filter).
    pub fn wants(&self, p: &Prefix) -> bool {
        self.vip_prefixes.contains(p)
    }

    /// The community that marks a route kept only so the VIP stays reachable.
    pub fn unhealthy(&self) -> Community {
        self.unhealthy
    }

    /// The mark's large-community twin for this node's marking `episode`.
    pub fn mark_large(&self, episode: u32) -> LargeCommunity {
        LargeCommunity {
            global: self.fleet_as,
            local1: MARK_TAG,
            local2: episode,
        }
    }

    /// After a reload: takes over what `old` learned from the peers (sessions stay up across a
    /// reload), keeping only this view's VIP prefixes.
    pub fn take_peers(&mut self, old: &FleetView) {
        self.peers = old.peers.clone();
        self.counters = old.counters.clone();
        for pv in self.peers.values_mut() {
            pv.paths.retain(|p, _| self.vip_prefixes.contains(p));
        }
        self.generation = old.generation + 1;
    }

    pub fn vip_prefixes(&self) -> &BTreeSet<Prefix> {
        &self.vip_prefixes
    }

    /// New VIP set (reload): paths of prefixes no longer configured are dropped.
    pub fn set_vip_prefixes(&mut self, ps: impl IntoIterator<Item = Prefix>) {
        self.vip_prefixes = ps.into_iter().collect();
        for pv in self.peers.values_mut() {
            pv.paths.retain(|p, _| self.vip_prefixes.contains(p));
        }
        self.generation += 1;
    }

    /// A session reached Established; `add_path_*` say whether the peer sends path ids.
    pub fn peer_up(&mut self, peer: &str, add_path_v4: bool, add_path_v6: bool, now: Instant) {
        let pv = PeerView {
            up_since: Some(now),
            v4: FamilyState {
                add_path: add_path_v4,
                ..FamilyState::default()
            },
            v6: FamilyState {
                add_path: add_path_v6,
                ..FamilyState::default()
            },
            ..PeerView::default()
        };
        self.peers.insert(peer.into(), pv);
        self.generation += 1;
    }

    /// The session closed: everything it showed is gone.
    pub fn peer_down(&mut self, peer: &str) {
        if let Some(pv) = self.peers.get_mut(peer) {
            *pv = PeerView::default();
            self.generation += 1;
        }
    }

    /// The session could not pass on a delta: everything held for `peer` may be stale until
    /// [`FleetView::resync`]. Its session may even be up without our having seen it.
    pub fn behind(&mut self, peer: &str) {
        let pv = self.peers.entry(peer.into()).or_default();
        if !std::mem::replace(&mut pv.behind, true) {
            self.counters.behind += 1;
            self.generation += 1;
        }
    }

    /// Whether `peer` is behind (waiting for a resync).
    pub fn is_behind(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|pv| pv.behind)
    }

    /// Replaces everything held for `peer` with its session's whole table, as if the peer had
    /// come up and sent it (own routes, marks, VIP filter and per-prefix cap applied as in
    /// [`FleetView::apply`]). A peer whose `Up` was not passed on counts as up from `now`.
    pub fn resync(&mut self, peer: &str, t: &PeerTable, now: Instant) {
        let fam = |f: Family| FamilyState {
            add_path: t.add_path(f),
            end_of_rib: t.end_of_rib(f),
            disabled: t.disabled(f).map(str::to_string),
        };
        let up_since = self
            .peers
            .get(peer)
            .and_then(|pv| pv.up_since)
            .unwrap_or(now);
        let mut pv = PeerView {
            up_since: Some(up_since),
            v4: fam(Family::Ipv4Unicast),
            v6: fam(Family::Ipv6Unicast),
            ..PeerView::default()
        };
        let filter = self.filter();
        // Not counted again: these paths were counted when first announced, or the resync
        // replaced deltas that would have been.
        let mut ignored = ViewCounters::default();
        for (k, f, attrs) in t.paths() {
            filter.store(&mut pv, &k, f, attrs, &mut ignored);
        }
        self.peers.insert(peer.into(), pv);
        self.counters.resyncs += 1;
        self.generation += 1;
    }

    /// Forgets a peer removed from the configuration.
    pub fn remove_peer(&mut self, peer: &str) {
        if self.peers.remove(peer).is_some() {
            self.generation += 1;
        }
    }

    /// Applies one parsed UPDATE from `peer`. Returns whether the view changed.
    pub fn apply(&mut self, peer: &str, u: &RibInUpdate) -> bool {
        self.counters.filtered += u.filtered_out as u64;
        if u.treat_as_withdraw.is_some() {
            self.counters.treat_as_withdraw += 1;
        }
        let Some(pv) = self.peers.get_mut(peer) else {
            return false;
        };
        let mut changed = false;
        for (fam, why) in &u.disable {
            let fs = pv.fam(*fam);
            if fs.disabled.is_none() {
                fs.disabled = Some(why.clone());
                self.counters.disabled += 1;
                changed = true;
            }
            let before = pv.paths.len();
            pv.paths.retain(|p, _| p.family() != *fam);
            pv.own.retain(|k, _| k.prefix.family() != *fam);
            changed |= before != pv.paths.len();
        }
        if let Some(f) = u.end_of_rib {
            let fs = pv.fam(f);
            changed |= !std::mem::replace(&mut fs.end_of_rib, true);
        }
        for k in &u.withdrawn {
            changed |= remove(pv, k);
            changed |= pv.own.remove(k).is_some();
        }
        // Field by field: `pv` borrows `peers` mutably and `store` counts into `counters`.
        let f = Filter {
            me: self.me,
            fleet_as: self.fleet_as,
            unhealthy: self.unhealthy,
            vips: &self.vip_prefixes,
        };
        for (k, fam) in &u.announced {
            changed |= f.store(pv, k, *fam, &u.attrs, &mut self.counters);
        }
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// What a peer shows for a family now.
    pub fn state(&self, peer: &str, fam: Family, now: Instant) -> ViewState {
        let Some(pv) = self.peers.get(peer) else {
            return ViewState::Down;
        };
        if pv.behind {
            return ViewState::Behind;
        }
        let Some(since) = pv.up_since else {
            return ViewState::Down;
        };
        let fs = pv.fam_ref(fam);
        if let Some(why) = &fs.disabled {
            return ViewState::Disabled(why.clone());
        }
        if !fs.add_path {
            return ViewState::Partial;
        }
        if fs.end_of_rib || now.saturating_duration_since(since) >= self.settle {
            ViewState::Full
        } else {
            ViewState::Loading
        }
    }

    /// How `peer` reflects our own path of `prefix` back: None when it does not (BIRD never
    /// does); Some(None) unmarked; Some(Some(episode)) marked. With several of our paths the
    /// least advanced counts (unmarked before any mark, then the lowest episode).
    pub fn own_reflected(&self, peer: &str, prefix: &Prefix) -> Option<Option<u32>> {
        let pv = self.peers.get(peer)?;
        let lo = PathKey {
            prefix: *prefix,
            path_id: 0,
        };
        pv.own
            .range(lo..)
            .take_while(|(k, _)| k.prefix == *prefix)
            .map(|(_, m)| *m)
            .min()
    }

    /// How many stored paths from `peer` carry no usable node identity (the ToR strips large
    /// communities, or the paths are not from this fleet).
    pub fn anonymous_paths(&self, peer: &str) -> usize {
        self.peers.get(peer).map_or(0, |pv| {
            pv.paths
                .values()
                .flat_map(|m| m.values())
                .filter(|a| a.identity.is_none())
                .count()
        })
    }

    /// The other announcers of `prefix` that `peer` shows (none when it shows nothing).
    pub fn announcers(&self, peer: &str, prefix: &Prefix) -> impl Iterator<Item = &Announcer> {
        self.peers
            .get(peer)
            .and_then(|pv| pv.paths.get(prefix))
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// Whether the view has `peer` (configured and seen at least once).
    pub fn knows(&self, peer: &str) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether `peer`'s session has reflected our own path back (FRR with ADD-PATH does).
    pub fn reflects(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|pv| pv.reflects)
    }

    /// Whether `peer` sent more paths of `prefix` than the view stores (its count is a lower
    /// bound only).
    pub fn overflowed(&self, peer: &str, prefix: &Prefix) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|pv| pv.overflow.contains(prefix))
    }

    /// Whether `peer`'s session is established (its view may still be loading).
    pub fn is_up(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|pv| pv.up_since.is_some())
    }

    fn filter(&self) -> Filter<'_> {
        Filter {
            me: self.me,
            fleet_as: self.fleet_as,
            unhealthy: self.unhealthy,
            vips: &self.vip_prefixes,
        }
    }

    /// Peers known to the view (configured and seen at least once).
    pub fn peers(&self) -> impl Iterator<Item = &Arc<str>> {
        self.peers.keys()
    }

    /// Every peer's announcers of `prefix`.
    pub fn snapshot(&self, prefix: &Prefix, now: Instant) -> Vec<PeerSnapshot> {
        self.peers
            .iter()
            .map(|(name, pv)| PeerSnapshot {
                peer: name.clone(),
                state: self.state(name, prefix.family(), now),
                announcers: pv
                    .paths
                    .get(prefix)
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Paths stored in total (memory bound check for tests and status).
    pub fn stored_paths(&self) -> usize {
        self.peers
            .values()
            .map(|p| p.paths.values().map(BTreeMap::len).sum::<usize>())
            .sum()
    }
}

/// What decides whether and how an announced path is stored.
struct Filter<'a> {
    me: std::net::Ipv4Addr,
    fleet_as: u32,
    unhealthy: Community,
    vips: &'a BTreeSet<Prefix>,
}

impl Filter<'_> {
    /// Stores one announced path in `pv` (unless ours, not a VIP prefix, disabled or beyond the
    /// cap). Returns whether `pv` changed.
    fn store(
        &self,
        pv: &mut PeerView,
        k: &PathKey,
        fam: Family,
        attrs: &PathAttrs,
        counters: &mut ViewCounters,
    ) -> bool {
        if pv.fam_ref(fam).disabled.is_some() || !self.vips.contains(&k.prefix) {
            return false;
        }
        let episode = attrs
            .large_communities
            .iter()
            .filter(|c| c.global == self.fleet_as && c.local1 == MARK_TAG)
            .map(|c| c.local2)
            .max();
        let std_mark = attrs.communities.contains(&self.unhealthy);
        let marked = std_mark || episode.is_some();
        let mut ids: Vec<std::net::Ipv4Addr> = attrs
            .large_communities
            .iter()
            .filter(|c| c.global == self.fleet_as && c.local1 == IDENTITY_TAG)
            .map(|c| std::net::Ipv4Addr::from(c.local2))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.contains(&self.me) {
            counters.own += 1;
            let mark = marked.then_some(episode.unwrap_or(0));
            let changed = pv.own.insert(*k, mark) != Some(mark);
            pv.reflects = true;
            // A path id we stored for someone else may now carry our route.
            return remove(pv, k) || changed;
        }
        // A path naming two different nodes is nobody's: it counts as a path without identity
        // (which makes the guard hold).
        let identity = match ids[..] {
            [one] => Some(one),
            _ => None,
        };
        let own_gone = pv.own.remove(k).is_some();
        let a = Announcer {
            path_id: k.path_id,
            next_hop: attrs.next_hop,
            as_path: attrs.as_path.clone(),
            communities: attrs.communities.clone(),
            large_communities: attrs.large_communities.clone(),
            identity,
            marked,
        };
        let paths = pv.paths.entry(k.prefix).or_default();
        if !paths.contains_key(&k.path_id) && paths.len() >= MAX_PATHS_PER_PREFIX {
            counters.excess += 1;
            return pv.overflow.insert(k.prefix) || own_gone;
        }
        if paths.get(&k.path_id) != Some(&a) {
            paths.insert(k.path_id, a);
            return true;
        }
        own_gone
    }
}

fn remove(pv: &mut PeerView, k: &PathKey) -> bool {
    let Some(m) = pv.paths.get_mut(&k.prefix) else {
        return false;
    };
    let gone = m.remove(&k.path_id).is_some();
    if m.is_empty() {
        pv.paths.remove(&k.prefix);
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    fn vip() -> Prefix {
        "203.0.113.10/32".parse().unwrap()
    }

    fn view() -> FleetView {
        FleetView::new(
            "10.0.0.1".parse().unwrap(),
            65101,
            "65101:666".parse().unwrap(),
            Duration::from_secs(3),
            [vip()],
        )
    }

    fn announce(id: u32, node: &str, marked: bool) -> RibInUpdate {
        let mut communities = vec![];
        if marked {
            communities.push("65101:666".parse().unwrap());
        }
        RibInUpdate {
            announced: vec![(
                PathKey {
                    prefix: vip(),
                    path_id: id,
                },
                Family::Ipv4Unicast,
            )],
            attrs: PathAttrs {
                communities,
                large_communities: vec![identity_community(65101, node.parse().unwrap())],
                ..PathAttrs::default()
            },
            ..RibInUpdate::default()
        }
    }

    #[test]
    fn stores_others_skips_own_and_tracks_marks() {
        let now = t0();
        let mut v = view();
        v.peer_up("tor1", true, true, now);
        assert_eq!(
            v.state("tor1", Family::Ipv4Unicast, now),
            ViewState::Loading
        );
        assert!(v.apply("tor1", &announce(1, "10.0.0.2", false)));
        assert!(!v.apply("tor1", &announce(1, "10.0.0.2", false)));
        v.apply("tor1", &announce(2, "10.0.0.1", false));
        assert_eq!(v.counters.own, 1);
        assert_eq!(v.stored_paths(), 1);
        assert!(v.apply("tor1", &announce(1, "10.0.0.2", true)));
        let s = v.snapshot(&vip(), now);
        assert!(s[0].announcers[0].marked);
        assert_eq!(
            v.state("tor1", Family::Ipv4Unicast, now + Duration::from_secs(3)),
            ViewState::Full
        );
        v.peer_down("tor1");
        assert_eq!(v.stored_paths(), 0);
        assert_eq!(v.state("tor1", Family::Ipv4Unicast, now), ViewState::Down);
    }

    #[test]
    fn end_of_rib_completes_and_no_add_path_is_partial() {
        let now = t0();
        let mut v = view();
        v.peer_up("tor1", true, false, now);
        v.apply(
            "tor1",
            &RibInUpdate {
                end_of_rib: Some(Family::Ipv4Unicast),
                ..RibInUpdate::default()
            },
        );
        assert_eq!(v.state("tor1", Family::Ipv4Unicast, now), ViewState::Full);
        assert_eq!(
            v.state("tor1", Family::Ipv6Unicast, now),
            ViewState::Partial
        );
    }

    #[test]
    fn bounded_per_prefix_and_filtered() {
        let now = t0();
        let mut v = view();
        v.peer_up("tor1", true, true, now);
        for id in 0..(MAX_PATHS_PER_PREFIX as u32 + 500) {
            v.apply("tor1", &announce(id, "10.0.0.9", false));
        }
        assert_eq!(v.stored_paths(), MAX_PATHS_PER_PREFIX);
        assert_eq!(v.counters.excess, 500);
        let mut other = announce(1, "10.0.0.9", false);
        other.announced[0].0.prefix = "198.51.100.0/24".parse().unwrap();
        other.filtered_out = 3;
        v.apply("tor1", &other);
        assert_eq!(v.stored_paths(), MAX_PATHS_PER_PREFIX);
        assert_eq!(v.counters.filtered, 3);
    }

    #[test]
    fn disable_drops_the_family_until_the_session_restarts() {
        let now = t0();
        let mut v = view();
        v.peer_up("tor1", true, true, now);
        v.apply("tor1", &announce(1, "10.0.0.2", false));
        let bad = RibInUpdate {
            disable: vec![(Family::Ipv4Unicast, "prefix length 33".into())],
            ..RibInUpdate::default()
        };
        assert!(v.apply("tor1", &bad));
        assert_eq!(v.stored_paths(), 0);
        v.apply("tor1", &announce(1, "10.0.0.2", false));
        assert_eq!(v.stored_paths(), 0);
        assert!(matches!(
            v.state("tor1", Family::Ipv4Unicast, now),
            ViewState::Disabled(_)
        ));
        v.peer_up("tor1", true, true, now);
        v.apply("tor1", &announce(1, "10.0.0.2", false));
        assert_eq!(v.stored_paths(), 1);
    }
}
