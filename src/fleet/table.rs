//! One session's received VIP paths as the session driver keeps them, so that the fleet view can
//! be resynced wholesale when the daemon fell behind and some per-UPDATE deltas were not passed on.
//!
//! Owns: applying [`RibInUpdate`]s to a per-peer table with exactly the view's semantics (family
//! disable drops and ignores the family until the session restarts; withdrawals, treat-as-withdraw
//! already turned into withdrawals by the parser; End-of-RIB). May not touch: the fleet view's own
//! filtering (our reflected routes, marks, its per-prefix cap), the session, I/O. Pure.
//!
//! Bounded: only prefixes the parser kept (VIP prefixes) arrive here, and at most
//! [`MAX_TABLE_PATHS_PER_PREFIX`] paths per prefix are stored (twice the view's cap, so our own
//! reflected paths, which the view skips, cannot crowd out the others).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::paths::{PathAttrs, PathKey, RibInUpdate};
use crate::route::{Family, Prefix};

/// Paths kept per prefix; beyond it announcements are counted, never stored.
pub const MAX_TABLE_PATHS_PER_PREFIX: usize = 2048;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FamilyTable {
    add_path: bool,
    end_of_rib: bool,
    disabled: Option<String>,
}

/// What one Established session has shown us for the VIP prefixes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerTable {
    v4: FamilyTable,
    v6: FamilyTable,
    /// Attributes are shared by the paths of one UPDATE.
    paths: BTreeMap<Prefix, BTreeMap<u32, Arc<PathAttrs>>>,
    /// Announcements beyond [`MAX_TABLE_PATHS_PER_PREFIX`].
    pub excess: u64,
}

impl PeerTable {
    /// A fresh session; `add_path_*`: the peer sends path ids for that family.
    pub fn new(add_path_v4: bool, add_path_v6: bool) -> PeerTable {
        let fam = |add_path| FamilyTable {
            add_path,
            ..FamilyTable::default()
        };
        PeerTable {
            v4: fam(add_path_v4),
            v6: fam(add_path_v6),
            ..PeerTable::default()
        }
    }

    fn fam(&self, f: Family) -> &FamilyTable {
        match f {
            Family::Ipv4Unicast => &self.v4,
            Family::Ipv6Unicast => &self.v6,
        }
    }

    fn fam_mut(&mut self, f: Family) -> &mut FamilyTable {
        match f {
            Family::Ipv4Unicast => &mut self.v4,
            Family::Ipv6Unicast => &mut self.v6,
        }
    }

    pub fn add_path(&self, f: Family) -> bool {
        self.fam(f).add_path
    }

    pub fn end_of_rib(&self, f: Family) -> bool {
        self.fam(f).end_of_rib
    }

    /// Why the family was disabled (RFC 7606), if it was.
    pub fn disabled(&self, f: Family) -> Option<&str> {
        self.fam(f).disabled.as_deref()
    }

    /// Applies one parsed UPDATE, in the order the view does: disable, End-of-RIB, withdrawals,
    /// announcements.
    pub fn apply(&mut self, u: &RibInUpdate) {
        for (fam, why) in &u.disable {
            let fs = self.fam_mut(*fam);
            if fs.disabled.is_none() {
                fs.disabled = Some(why.clone());
            }
            self.paths.retain(|p, _| p.family() != *fam);
        }
        if let Some(f) = u.end_of_rib {
            self.fam_mut(f).end_of_rib = true;
        }
        for k in &u.withdrawn {
            if let Some(m) = self.paths.get_mut(&k.prefix) {
                m.remove(&k.path_id);
                if m.is_empty() {
                    self.paths.remove(&k.prefix);
                }
            }
        }
        if u.announced.is_empty() {
            return;
        }
        let attrs = Arc::new(u.attrs.clone());
        for (k, fam) in &u.announced {
            if self.fam(*fam).disabled.is_some() {
                continue;
            }
            let m = self.paths.entry(k.prefix).or_default();
            if !m.contains_key(&k.path_id) && m.len() >= MAX_TABLE_PATHS_PER_PREFIX {
                self.excess += 1;
                continue;
            }
            m.insert(k.path_id, attrs.clone());
        }
    }

    /// Every stored path with its family and attributes, in key order.
    pub fn paths(&self) -> impl Iterator<Item = (PathKey, Family, &PathAttrs)> {
        self.paths.iter().flat_map(|(prefix, m)| {
            m.iter().map(|(&path_id, a)| {
                (
                    PathKey {
                        prefix: *prefix,
                        path_id,
                    },
                    prefix.family(),
                    &**a,
                )
            })
        })
    }

    /// Paths stored.
    pub fn len(&self) -> usize {
        self.paths.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(prefix: &str, path_id: u32) -> PathKey {
        PathKey {
            prefix: prefix.parse().unwrap(),
            path_id,
        }
    }

    fn announce(keys: &[PathKey], med_tag: u32) -> RibInUpdate {
        RibInUpdate {
            announced: keys.iter().map(|k| (*k, k.prefix.family())).collect(),
            attrs: PathAttrs {
                as_path: vec![med_tag],
                as_path_len: 1,
                ..PathAttrs::default()
            },
            ..RibInUpdate::default()
        }
    }

    #[test]
    fn announce_replace_withdraw() {
        let mut t = PeerTable::new(true, false);
        let (a, b) = (key("203.0.113.10/32", 1), key("203.0.113.10/32", 2));
        t.apply(&announce(&[a, b], 1));
        assert_eq!(t.len(), 2);
        t.apply(&announce(&[a], 7));
        let got: Vec<_> = t.paths().map(|(k, _, at)| (k, at.as_path[0])).collect();
        assert_eq!(got, vec![(a, 7), (b, 1)]);
        t.apply(&RibInUpdate {
            withdrawn: vec![a, b, key("203.0.113.11/32", 9)],
            ..RibInUpdate::default()
        });
        assert!(t.is_empty());
        assert!(t.add_path(Family::Ipv4Unicast) && !t.add_path(Family::Ipv6Unicast));
    }

    #[test]
    fn disable_drops_and_ignores_the_family_only() {
        let mut t = PeerTable::new(true, true);
        let (v4, v6) = (key("203.0.113.10/32", 1), key("2001:db8::10/128", 1));
        t.apply(&announce(&[v4, v6], 1));
        t.apply(&RibInUpdate {
            disable: vec![(Family::Ipv4Unicast, "bad".into())],
            end_of_rib: Some(Family::Ipv6Unicast),
            ..RibInUpdate::default()
        });
        t.apply(&announce(&[v4], 2));
        let keys: Vec<_> = t.paths().map(|(k, _, _)| k).collect();
        assert_eq!(keys, vec![v6]);
        assert_eq!(t.disabled(Family::Ipv4Unicast), Some("bad"));
        assert!(t.end_of_rib(Family::Ipv6Unicast) && !t.end_of_rib(Family::Ipv4Unicast));
    }

    #[test]
    fn bounded_per_prefix() {
        let mut t = PeerTable::new(true, true);
        let keys: Vec<_> = (0..MAX_TABLE_PATHS_PER_PREFIX as u32 + 10)
            .map(|i| key("203.0.113.10/32", i))
            .collect();
        t.apply(&announce(&keys, 1));
        assert_eq!(t.len(), MAX_TABLE_PATHS_PER_PREFIX);
        assert_eq!(t.excess, 10);
    }
}
