//! The fleet across ToRs, for status: every other announcer of a prefix counted once, however
//! many ToRs show it. The gate decides per ToR (`gate`); this is the operator's summary.
//!
//! Pure: inputs are the view and an injected `Instant`.

use std::time::Instant;

use super::view::{AnnouncerId, FleetView, ViewState};
use crate::route::Prefix;

/// The other announcers of one prefix across all peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    pub prefix: Prefix,
    /// Distinct announcers that no peer shows marked.
    pub healthy: Vec<AnnouncerId>,
    /// Distinct announcers that some peer shows marked.
    pub marked: Vec<AnnouncerId>,
    /// Some peer shows every path of this prefix's family (ADD-PATH, table in).
    pub full_view: bool,
    /// Some peer's ADD-PATH table is still arriving, or some peer is behind (waiting for a
    /// resync: its announcers are not counted).
    pub loading: bool,
}

impl Count {
    pub fn blind(&self) -> bool {
        !self.full_view && !self.loading
    }
}

/// Counts the other announcers of `prefix`. An identified node counts once however many ToRs
/// show it, and as marked if any ToR shows it marked (the safer reading of a route in flight).
/// Paths without identity cannot be matched across ToRs: the largest per-peer number counts.
/// A peer that is behind (`ViewState::Behind`) may show announcers that are gone or unmarked
/// ones that are marked: none of them count, and it counts as loading, so a short count holds
/// (never blind, which `when_blind: leave` would turn into a leave) until its resync.
pub fn count_others(view: &FleetView, prefix: &Prefix, now: Instant) -> Count {
    use std::collections::BTreeMap;
    let mut nodes: BTreeMap<AnnouncerId, bool> = BTreeMap::new();
    let (mut anon_healthy, mut anon_marked): (Vec<AnnouncerId>, Vec<AnnouncerId>) =
        (vec![], vec![]);
    let mut full_view = false;
    let mut loading = false;
    for snap in view.snapshot(prefix, now) {
        match snap.state {
            ViewState::Full => full_view = true,
            ViewState::Loading => loading = true,
            ViewState::Behind => {
                loading = true;
                continue;
            }
            _ => {}
        }
        let (mut h, mut m) = (vec![], vec![]);
        for a in &snap.announcers {
            match a.identity {
                Some(id) => {
                    let marked = nodes.entry(AnnouncerId::Node(id)).or_insert(false);
                    *marked |= a.marked;
                }
                None => {
                    let id = AnnouncerId::Path(snap.peer.clone(), a.path_id);
                    if a.marked {
                        m.push(id)
                    } else {
                        h.push(id)
                    }
                }
            }
        }
        if h.len() > anon_healthy.len() {
            anon_healthy = h;
        }
        if m.len() > anon_marked.len() {
            anon_marked = m;
        }
    }
    let mut healthy: Vec<AnnouncerId> = nodes
        .iter()
        .filter(|(_, m)| !**m)
        .map(|(id, _)| id.clone())
        .collect();
    let mut marked: Vec<AnnouncerId> = nodes
        .iter()
        .filter(|(_, m)| **m)
        .map(|(id, _)| id.clone())
        .collect();
    healthy.extend(anon_healthy);
    marked.extend(anon_marked);
    Count {
        prefix: *prefix,
        healthy,
        marked,
        full_view,
        loading,
    }
}
