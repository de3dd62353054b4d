//! Adj-RIB-Out bookkeeping: what a peer currently holds from us, and the minimal change that
//! brings it to a desired set. Pure (no I/O), so the diffing rules are tested on their own.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::route::{DesiredRoutes, Family, Prefix, RouteAttrs};

/// One route as the peer holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub vip: Arc<str>,
    /// Shared with the desired table (see `DesiredRoute::attrs`).
    pub attrs: Arc<RouteAttrs>,
}

/// What must be sent to move the peer from the current to the target set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub withdraw: Vec<Prefix>,
    /// New prefixes (not held by the peer).
    pub add: Vec<(Prefix, Entry)>,
    /// Held prefixes whose attributes changed: re-announced, which implicitly replaces them.
    pub change: Vec<(Prefix, Entry)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.withdraw.is_empty() && self.add.is_empty() && self.change.is_empty()
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct RibOut {
    routes: BTreeMap<Prefix, Entry>,
}

impl RibOut {
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn diff(&self, target: &BTreeMap<Prefix, Entry>) -> Diff {
        let mut d = Diff::default();
        for p in self.routes.keys() {
            if !target.contains_key(p) {
                d.withdraw.push(*p);
            }
        }
        for (p, e) in target {
            match self.routes.get(p) {
                None => d.add.push((*p, e.clone())),
                Some(old) if old.attrs != e.attrs => d.change.push((*p, e.clone())),
                Some(_) => {}
            }
        }
        d
    }

    pub fn get(&self, p: &Prefix) -> Option<&Entry> {
        self.routes.get(p)
    }

    pub fn remove(&mut self, p: &Prefix) -> Option<Entry> {
        self.routes.remove(p)
    }

    pub fn insert(&mut self, p: Prefix, e: Entry) {
        self.routes.insert(p, e);
    }

    /// Every route the peer holds from us (for the in-place upgrade's state export).
    pub fn iter(&self) -> impl Iterator<Item = (&Prefix, &Entry)> {
        self.routes.iter()
    }

    pub fn prefixes(&self, family: Family) -> Vec<Prefix> {
        self.routes
            .keys()
            .filter(|p| p.family() == family)
            .copied()
            .collect()
    }

    /// Everything of one family, grouped by attribute set (one UPDATE stream per group).
    pub fn groups(&self, family: Family) -> Vec<(RouteAttrs, Vec<Prefix>)> {
        group(
            self.routes
                .iter()
                .filter(|(p, _)| p.family() == family)
                .map(|(p, e)| (*p, &*e.attrs)),
        )
    }
}

/// Groups prefixes by identical attributes, in first-seen order. Indexed by attributes: 100k
/// VIPs with 100k distinct attribute sets (a MED each) must not cost 100k x 100k comparisons
/// (a linear search here took a new session 54-61 s to its first UPDATE).
pub(crate) fn group<'a>(
    items: impl Iterator<Item = (Prefix, &'a RouteAttrs)>,
) -> Vec<(RouteAttrs, Vec<Prefix>)> {
    let mut out: Vec<(RouteAttrs, Vec<Prefix>)> = Vec::new();
    let mut index: std::collections::HashMap<&'a RouteAttrs, usize> =
        std::collections::HashMap::new();
    for (p, a) in items {
        match index.get(a).and_then(|&i| out.get_mut(i)) {
            Some((_, ps)) => ps.push(p),
            None => {
                index.insert(a, out.len());
                out.push((a.clone(), vec![p]));
            }
        }
    }
    out
}

/// The routes of a snapshot this peer can carry.
pub(crate) fn target(
    desired: &DesiredRoutes,
    peer: &str,
    sendable: impl Fn(Family) -> bool,
) -> BTreeMap<Prefix, Entry> {
    target_iter(desired, peer, sendable).collect()
}

/// [`target`]'s entries in prefix order, lazily (a first slice takes only what it needs).
pub(crate) fn target_iter<'a>(
    desired: &'a DesiredRoutes,
    peer: &str,
    sendable: impl Fn(Family) -> bool + 'a,
) -> impl Iterator<Item = (Prefix, Entry)> + 'a {
    let withheld = desired.withheld.get(peer).map(|w| &w.prefixes);
    desired
        .routes
        .iter()
        .filter(move |(p, _)| sendable(p.family()))
        .filter(move |(p, _)| !withheld.is_some_and(|w| w.contains(p)))
        .map(|(p, r)| {
            (
                *p,
                Entry {
                    vip: r.vip.clone(),
                    attrs: r.attrs.clone(),
                },
            )
        })
}

/// One log line per VIP and kind of change, with the core's reason; with the VIP, for the log's
/// `vip` field.
pub(crate) fn change_log(
    peer: &str,
    kind: ChangeKind,
    items: &[(Prefix, Arc<str>)],
    desired: &DesiredRoutes,
) -> Vec<(Arc<str>, String)> {
    let mut by_vip: BTreeMap<&Arc<str>, Vec<Prefix>> = BTreeMap::new();
    for (p, vip) in items {
        by_vip.entry(vip).or_default().push(*p);
    }
    by_vip
        .into_iter()
        .map(|(vip, ps)| {
            let list = crate::route::prefix_list(&ps);
            let reason = desired.reason_at(peer, vip);
            let sep = if reason.is_empty() { "" } else { ": " };
            let line = match kind {
                ChangeKind::Announced => format!("announced {vip} ({list}) to {peer}{sep}{reason}"),
                ChangeKind::Changed => {
                    format!("updated {vip} ({list}) on {peer}, attributes changed{sep}{reason}")
                }
                ChangeKind::Withdrew => format!("withdrew {vip} ({list}) from {peer}{sep}{reason}"),
            };
            (vip.clone(), line)
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Announced,
    Changed,
    Withdrew,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::DesiredRoute;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn snapshot(routes: &[(&str, &str, Option<u32>)]) -> DesiredRoutes {
        let mut d = DesiredRoutes::default();
        for (vip, pfx, med) in routes {
            let vip: Arc<str> = Arc::from(*vip);
            d.routes.insert(
                p(pfx),
                DesiredRoute {
                    vip: vip.clone(),
                    attrs: Arc::new(RouteAttrs {
                        med: *med,
                        ..RouteAttrs::default()
                    }),
                },
            );
            {
                let e = Arc::make_mut(&mut d.vip_prefixes).entry(vip).or_default();
                *e = e.iter().copied().chain([p(pfx)]).collect();
            }
        }
        d
    }

    #[test]
    fn diff_is_minimal() {
        let old = snapshot(&[
            ("web", "203.0.113.10/32", None),
            ("web", "2001:db8:10::10/128", None),
            ("dns", "203.0.113.53/32", Some(10)),
        ]);
        let mut rib = RibOut::default();
        for (p, e) in target(&old, "tor1", |_| true) {
            rib.insert(p, e);
        }
        assert!(rib.diff(&target(&old, "tor1", |_| true)).is_empty());

        let new = snapshot(&[
            ("web", "203.0.113.10/32", None),
            ("dns", "203.0.113.53/32", Some(20)),
            ("api", "198.51.100.1/32", None),
        ]);
        let d = rib.diff(&target(&new, "tor1", |_| true));
        assert_eq!(d.withdraw, vec![p("2001:db8:10::10/128")]);
        assert_eq!(d.add.len(), 1);
        assert_eq!(d.add[0].0, p("198.51.100.1/32"));
        assert_eq!(d.change.len(), 1);
        assert_eq!(d.change[0].1.attrs.med, Some(20));
    }

    #[test]
    fn group_keeps_first_seen_order_over_many_distinct_attribute_sets() {
        let attrs: Vec<RouteAttrs> = (0..20_000u32)
            .map(|i| RouteAttrs {
                med: Some(i % 10_000),
                ..RouteAttrs::default()
            })
            .collect();
        let items = attrs.iter().enumerate().map(|(i, a)| {
            let p: Prefix = format!("2001:db8::{:x}:{:x}/128", i >> 16, i & 0xffff)
                .parse()
                .unwrap();
            (p, a)
        });
        let g = group(items);
        assert_eq!(g.len(), 10_000);
        for (i, (a, ps)) in g.iter().enumerate() {
            assert_eq!(a.med, Some(i as u32), "first-seen order");
            assert_eq!(ps.len(), 2);
        }
    }

    #[test]
    fn target_filters_families_and_groups_by_attrs() {
        let d = snapshot(&[
            ("web", "203.0.113.10/32", None),
            ("web", "2001:db8:10::10/128", None),
            ("dns", "203.0.113.53/32", Some(10)),
            ("ntp", "203.0.113.123/32", None),
        ]);
        let t = target(&d, "tor1", |f| f == Family::Ipv4Unicast);
        assert_eq!(t.len(), 3);
        let mut rib = RibOut::default();
        for (p, e) in t {
            rib.insert(p, e);
        }
        let g = rib.groups(Family::Ipv4Unicast);
        assert_eq!(g.len(), 2);
        assert_eq!(g.iter().map(|(_, ps)| ps.len()).sum::<usize>(), 3);
        assert!(rib.groups(Family::Ipv6Unicast).is_empty());
    }

    #[test]
    fn log_lines_name_vip_prefixes_peer_and_reason() {
        let mut d = snapshot(&[("web", "203.0.113.10/32", None)]);
        d.reasons
            .insert(Arc::from("web"), "check web passed 2/2".into());
        let items = vec![
            (p("203.0.113.10/32"), Arc::from("web")),
            (p("2001:db8:10::10/128"), Arc::from("web")),
        ];
        assert_eq!(
            change_log("tor1", ChangeKind::Announced, &items, &d),
            vec![(Arc::from("web"), "announced web (203.0.113.10/32, 2001:db8:10::10/128) to tor1: check web passed 2/2".to_string())]
        );
        let items = vec![(p("203.0.113.53/32"), Arc::from("dns"))];
        assert_eq!(
            change_log("tor1", ChangeKind::Withdrew, &items, &d),
            vec![(
                Arc::from("dns"),
                "withdrew dns (203.0.113.53/32) from tor1".to_string()
            )]
        );
    }
}
