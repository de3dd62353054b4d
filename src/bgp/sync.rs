//! Turns Adj-RIB-Out changes into UPDATE messages: a desired snapshot into the minimal diff,
//! everything we announced into withdrawals (on stop), one family into a re-send (ROUTE-REFRESH).
//!
//! Pure: returns the messages and log lines; the FSM sends them. The Adj-RIB-Out is updated as
//! the messages are produced, because a message that fails to go out ends the session (and the
//! Adj-RIB-Out with it). Owns no timers and no socket; knows nothing of the FSM.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::encode::{self, NextHop, PathParams};
use super::rib_out::{self, ChangeKind, Entry, RibOut};
use crate::route::{DesiredRoutes, Family, Prefix};

const FAMILIES: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Messages to send, in order, and what to log once they are out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub messages: Vec<Vec<u8>>,
    pub logs: Vec<(Level, String)>,
    /// Per-VIP route lines (info), with the VIP for the log's `vip` field.
    pub route_logs: Vec<(Arc<str>, String)>,
}

impl Batch {
    fn warn(&mut self, s: String) {
        self.logs.push((Level::Warn, s));
    }

    fn change_logs(
        &mut self,
        peer: &str,
        kind: ChangeKind,
        items: &[(Prefix, Arc<str>)],
        d: &DesiredRoutes,
    ) {
        self.route_logs
            .extend(rib_out::change_log(peer, kind, items, d));
    }
}

/// Next hops we can put on our announcements, per family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextHops {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl NextHops {
    pub fn get(&self, f: Family) -> Option<NextHop> {
        match f {
            Family::Ipv4Unicast => self.v4.map(NextHop::V4),
            Family::Ipv6Unicast => self.v6.map(NextHop::V6),
        }
    }
}

/// One session's sending parameters.
#[derive(Clone, Debug)]
pub struct Sync {
    pub peer: Arc<str>,
    pub path: PathParams,
    pub next_hops: NextHops,
    /// Families negotiated on the session.
    pub families: Vec<Family>,
    pub rib: RibOut,
}

impl Sync {
    pub fn sendable(&self, f: Family) -> bool {
        self.families.contains(&f) && self.next_hops.get(f).is_some()
    }

    /// Brings the peer's Adj-RIB-Out to `desired`, sending only what differs; withdrawals first,
    /// so the peer never holds more than the union of old and new.
    pub fn sync(&mut self, desired: &DesiredRoutes) -> Batch {
        let target = rib_out::target(desired, &self.peer, |f| self.sendable(f));
        let diff = self.rib.diff(&target);
        let mut b = Batch::default();
        if diff.is_empty() {
            return b;
        }
        let withdrawn = self.withdraw(&mut b, &diff.withdraw, desired);
        let added = self.announce(&mut b, &diff.add);
        let changed = self.announce(&mut b, &diff.change);
        b.change_logs(&self.peer, ChangeKind::Withdrew, &withdrawn, desired);
        b.change_logs(&self.peer, ChangeKind::Announced, &added, desired);
        b.change_logs(&self.peer, ChangeKind::Changed, &changed, desired);
        b
    }

    /// Announces the first `max` routes of `desired` (in prefix order) that the Adj-RIB-Out
    /// lacks or carries with other attributes; withdraws nothing. A new session's first slice,
    /// so its first UPDATEs need not wait for the whole table to be computed; a later
    /// [`Sync::sync`] brings the rest.
    pub fn sync_first(&mut self, desired: &DesiredRoutes, max: usize) -> Batch {
        let add: Vec<(Prefix, Entry)> =
            rib_out::target_iter(desired, &self.peer, |f| self.sendable(f))
                .filter(|(p, e)| self.rib.get(p).is_none_or(|old| old.attrs != e.attrs))
                .take(max)
                .collect();
        let mut b = Batch::default();
        let added = self.announce(&mut b, &add);
        b.change_logs(&self.peer, ChangeKind::Announced, &added, desired);
        b
    }

    /// Withdraws everything announced; `why` is the reason logged for every VIP.
    pub fn withdraw_everything(&mut self, last: &DesiredRoutes, why: &str) -> Batch {
        let mut b = Batch::default();
        let all: Vec<Prefix> = FAMILIES
            .iter()
            .flat_map(|&f| self.rib.prefixes(f))
            .collect();
        let withdrawn = self.withdraw(&mut b, &all, last);
        let mut reason = DesiredRoutes::default();
        let why: Arc<str> = why.into();
        for (_, vip) in &withdrawn {
            reason.reasons.insert(vip.clone(), Arc::clone(&why));
        }
        b.change_logs(&self.peer, ChangeKind::Withdrew, &withdrawn, &reason);
        b
    }

    /// Re-sends one family as it is in the Adj-RIB-Out; also returns how many prefixes.
    pub fn resend(&self, f: Family) -> (Batch, usize) {
        let mut b = Batch::default();
        let mut n = 0;
        let Some(nh) = self.next_hops.get(f) else {
            return (b, 0);
        };
        for (attrs, prefixes) in self.rib.groups(f) {
            match encode::announce(&self.path, &attrs, nh, &prefixes) {
                Ok(ms) => {
                    b.messages.extend(ms);
                    n += prefixes.len();
                }
                Err(e) => b.warn(format!("cannot re-send {f} routes to {}: {e}", self.peer)),
            }
        }
        (b, n)
    }

    /// The one withdraw loop: per family, chunked UPDATEs, then the Adj-RIB-Out entries go.
    /// Returns (prefix, VIP) for logs, the VIP as `desired` names it if it still does.
    fn withdraw(
        &mut self,
        b: &mut Batch,
        prefixes: &[Prefix],
        desired: &DesiredRoutes,
    ) -> Vec<(Prefix, Arc<str>)> {
        let mut withdrawn = Vec::new();
        for f in FAMILIES {
            let ps: Vec<Prefix> = prefixes
                .iter()
                .filter(|p| p.family() == f)
                .copied()
                .collect();
            if ps.is_empty() {
                continue;
            }
            match encode::withdraw(self.path.local_as, f, &ps) {
                Ok(ms) => {
                    b.messages.extend(ms);
                    for p in ps {
                        if let Some(e) = self.rib.remove(&p) {
                            let vip = desired.vip_of(&p).cloned().unwrap_or(e.vip);
                            withdrawn.push((p, vip));
                        }
                    }
                }
                Err(e) => b.warn(format!(
                    "cannot withdraw {f} routes from {}: {e}",
                    self.peer
                )),
            }
        }
        withdrawn
    }

    /// Announces routes grouped by family and attributes; returns what went out, for logs.
    fn announce(&mut self, b: &mut Batch, routes: &[(Prefix, Entry)]) -> Vec<(Prefix, Arc<str>)> {
        let mut sent = Vec::new();
        let by_prefix: BTreeMap<Prefix, &Entry> = routes.iter().map(|(p, e)| (*p, e)).collect();
        for f in FAMILIES {
            let Some(nh) = self.next_hops.get(f) else {
                continue;
            };
            let groups = rib_out::group(
                routes
                    .iter()
                    .filter(|(p, _)| p.family() == f)
                    .map(|(p, e)| (*p, &*e.attrs)),
            );
            for (attrs, prefixes) in groups {
                match encode::announce(&self.path, &attrs, nh, &prefixes) {
                    Ok(ms) => {
                        b.messages.extend(ms);
                        for p in prefixes {
                            if let Some(e) = by_prefix.get(&p) {
                                self.rib.insert(p, (*e).clone());
                                sent.push((p, e.vip.clone()));
                            }
                        }
                    }
                    // Only local limits (e.g. too many communities) get here; skip those routes.
                    Err(e) => b.warn(format!(
                        "cannot announce {} {f} prefixes to {}: {e}",
                        prefixes.len(),
                        self.peer
                    )),
                }
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{DesiredRoute, RouteAttrs};

    fn snapshot(list: &[(&str, &str, Option<u32>)]) -> DesiredRoutes {
        let mut d = DesiredRoutes::default();
        for (vip, p, med) in list {
            let vip: Arc<str> = Arc::from(*vip);
            let p: Prefix = p.parse().unwrap();
            d.routes.insert(
                p,
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
                *e = e.iter().copied().chain([p]).collect();
            }
        }
        d
    }

    fn sync(families: &[Family], v6: bool) -> Sync {
        Sync {
            peer: Arc::from("tor1"),
            path: PathParams {
                local_as: 65101,
                ibgp: false,
                four_octet_as: true,
            },
            next_hops: NextHops {
                v4: Some(Ipv4Addr::new(192, 0, 2, 10)),
                v6: v6.then(|| "2001:db8::10".parse().unwrap()),
            },
            families: families.to_vec(),
            rib: RibOut::default(),
        }
    }

    #[test]
    fn diff_then_withdraw_everything_then_nothing_left() {
        let mut s = sync(&[Family::Ipv4Unicast, Family::Ipv6Unicast], true);
        let d = snapshot(&[
            ("web", "203.0.113.10/32", None),
            ("web", "2001:db8:10::10/128", None),
            ("dns", "203.0.113.53/32", Some(10)),
        ]);
        let b = s.sync(&d);
        // Two IPv4 attribute groups and one IPv6 group.
        assert_eq!(b.messages.len(), 3);
        assert_eq!(s.rib.len(), 3);
        assert!(s.sync(&d).messages.is_empty());
        let d2 = snapshot(&[("web", "203.0.113.10/32", None)]);
        let b = s.sync(&d2);
        assert_eq!(b.messages.len(), 2, "one withdraw per family");
        assert!(b
            .route_logs
            .iter()
            .any(|(v, l)| &**v == "dns" && l.contains("withdrew dns")));
        let b = s.withdraw_everything(&d2, "shutting down: bye");
        assert_eq!(
            b.messages,
            encode::withdraw(
                65101,
                Family::Ipv4Unicast,
                &["203.0.113.10/32".parse().unwrap()]
            )
            .unwrap()
        );
        assert_eq!(
            b.route_logs,
            vec![(
                Arc::from("web"),
                "withdrew web (203.0.113.10/32) from tor1: shutting down: bye".to_string()
            )]
        );
        assert_eq!(s.rib.len(), 0);
        assert!(s.withdraw_everything(&d2, "x").messages.is_empty());
    }

    #[test]
    fn unsendable_families_are_skipped_and_resend_repeats_the_rib() {
        let mut s = sync(&[Family::Ipv4Unicast, Family::Ipv6Unicast], false);
        let d = snapshot(&[
            ("web", "203.0.113.10/32", None),
            ("web", "2001:db8:10::10/128", None),
        ]);
        s.sync(&d);
        assert_eq!(s.rib.prefixes(Family::Ipv6Unicast).len(), 0);
        let (b, n) = s.resend(Family::Ipv4Unicast);
        assert_eq!((b.messages.len(), n), (1, 1));
        assert_eq!(s.resend(Family::Ipv6Unicast).1, 0);
    }
}
