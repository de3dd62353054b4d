//! An Established session's state as plain data, for the in-place upgrade: exported by the old
//! process at a message boundary, resumed by the new one on the same TCP socket. Pure: the
//! driver (`conn`) adds the socket, the timers and the bytes read but not yet parsed.
//!
//! Resuming validates everything against the new process's own config (same peer, same AS and
//! router id, same hold time offered): a session is taken whole or refused with the reason.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Fsm, FsmTiming, Refresh, SessionSetup};
use crate::bgp::rib_in::RxParams;
use crate::bgp::rib_out::Entry;
use crate::bgp::status::PeerState;
use crate::bgp::sync::NextHops;
use crate::route::{Community, Family, LargeCommunity, Prefix, RouteAttrs};

/// One route of the Adj-RIB-Out, as the peer holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedRoute {
    /// "203.0.113.10/32"
    pub prefix: String,
    pub vip: String,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// Wire values (RFC 1997).
    pub communities: Vec<u32>,
    /// (global, local1, local2)
    pub large_communities: Vec<(u32, u32, u32)>,
    pub as_path_prepend: u8,
    pub link_bandwidth: Option<u64>,
}

/// The FSM part of one Established session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedSession {
    pub peer: String,
    pub remote_as: u32,
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Hold time we offered (from config); the new config must offer the same.
    pub our_hold: u16,
    /// Negotiated hold time in seconds.
    pub hold: u16,
    pub peer_router_id: Option<Ipv4Addr>,
    /// The peer offered ROUTE-REFRESH (absent in a blob from before it was carried: false).
    #[serde(default)]
    pub peer_route_refresh: bool,
    pub local: SocketAddr,
    /// Negotiated families, "ipv4-unicast" / "ipv6-unicast".
    pub families: Vec<String>,
    /// The peer negotiated 4-octet AS (how we encode AS_PATH).
    pub four_octet_as: bool,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub add_path_v4: bool,
    pub add_path_v6: bool,
    /// Families already explained as not sendable (logged once per peer).
    pub explained: Vec<String>,
    pub route_refresh_received: u64,
    pub route_refresh_resends: u64,
    /// The Adj-RIB-Out: what the peer holds from us. The new process diffs against it, so nothing
    /// the peer already has is sent again.
    pub rib_out: Vec<ExportedRoute>,
}

fn family_name(f: Family) -> String {
    f.to_string()
}

fn family_of(s: &str) -> Result<Family, String> {
    match s {
        "ipv4-unicast" => Ok(Family::Ipv4Unicast),
        "ipv6-unicast" => Ok(Family::Ipv6Unicast),
        other => Err(format!("unknown address family {other:?}")),
    }
}

impl Fsm {
    /// The session's state, if it is Established (nothing else can be handed over at a message
    /// boundary: the OPEN exchange would be cut in half).
    pub fn export(&self) -> Option<ExportedSession> {
        if self.state != PeerState::Established || self.closed {
            return None;
        }
        let local = self.local?;
        let rib_out = self
            .sync
            .rib
            .iter()
            .map(|(p, e)| ExportedRoute {
                prefix: p.to_string(),
                vip: e.vip.to_string(),
                med: e.attrs.med,
                local_pref: e.attrs.local_pref,
                communities: e.attrs.communities.iter().map(|c| c.0).collect(),
                large_communities: e
                    .attrs
                    .large_communities
                    .iter()
                    .map(|l| (l.global, l.local1, l.local2))
                    .collect(),
                as_path_prepend: e.attrs.as_path_prepend,
                link_bandwidth: e.attrs.link_bandwidth,
            })
            .collect();
        let mut explained: Vec<String> = self.explained.iter().map(|f| family_name(*f)).collect();
        explained.sort();
        Some(ExportedSession {
            peer: self.name.to_string(),
            remote_as: self.setup.peer.remote_as,
            local_as: self.setup.local_as,
            router_id: self.setup.router_id,
            our_hold: self.our_hold,
            hold: self.hold,
            peer_router_id: self.peer_router_id,
            peer_route_refresh: self.peer_route_refresh,
            local,
            families: self.sync.families.iter().map(|f| family_name(*f)).collect(),
            four_octet_as: self.sync.path.four_octet_as,
            next_hop_v4: self.sync.next_hops.v4,
            next_hop_v6: self.sync.next_hops.v6,
            add_path_v4: self.rx.add_path_v4,
            add_path_v6: self.rx.add_path_v6,
            explained,
            route_refresh_received: self.refresh.received,
            route_refresh_resends: self.refresh.resends,
            rib_out,
        })
    }

    /// An Established FSM continuing an exported session under `setup` (this process's config).
    /// Refuses, with the reason, a session whose peer or local parameters differ from `setup`.
    pub fn resume(
        setup: SessionSetup,
        timing: FsmTiming,
        s: &ExportedSession,
    ) -> Result<Fsm, String> {
        let name = setup.peer.name.clone();
        if *s.peer != *name {
            return Err(format!("session is for peer {}, not {name}", s.peer));
        }
        let mismatch = |what: &str, old: String, new: String| {
            Err(format!(
                "peer {name}: {what} was {old} in the running process and is {new} in this config"
            ))
        };
        if s.remote_as != setup.peer.remote_as {
            return mismatch(
                "remote_as",
                s.remote_as.to_string(),
                setup.peer.remote_as.to_string(),
            );
        }
        if s.local_as != setup.local_as {
            return mismatch(
                "local_as",
                s.local_as.to_string(),
                setup.local_as.to_string(),
            );
        }
        if s.router_id != setup.router_id {
            return mismatch(
                "router_id",
                s.router_id.to_string(),
                setup.router_id.to_string(),
            );
        }
        let mut fsm = Fsm::new(setup, timing, HashSet::new());
        if s.our_hold != fsm.our_hold {
            return mismatch(
                "hold_time",
                s.our_hold.to_string(),
                fsm.our_hold.to_string(),
            );
        }
        if s.hold > s.our_hold || s.hold == 1 || s.hold == 2 {
            return Err(format!(
                "peer {name}: negotiated hold time {} is not possible with {} offered",
                s.hold, s.our_hold
            ));
        }
        let families = s
            .families
            .iter()
            .map(|f| family_of(f))
            .collect::<Result<Vec<_>, _>>()?;
        if families.is_empty() {
            return Err(format!("peer {name}: no negotiated address family"));
        }
        let mut explained = HashSet::new();
        for f in &s.explained {
            explained.insert(family_of(f)?);
        }
        for r in &s.rib_out {
            let p: Prefix = r
                .prefix
                .parse()
                .map_err(|e| format!("peer {name}: Adj-RIB-Out prefix {:?}: {e}", r.prefix))?;
            let attrs = RouteAttrs {
                med: r.med,
                local_pref: r.local_pref,
                communities: r.communities.iter().map(|c| Community(*c)).collect(),
                large_communities: r
                    .large_communities
                    .iter()
                    .map(|&(global, local1, local2)| LargeCommunity {
                        global,
                        local1,
                        local2,
                    })
                    .collect(),
                as_path_prepend: r.as_path_prepend,
                link_bandwidth: r.link_bandwidth,
            };
            let vip: Arc<str> = r.vip.as_str().into();
            fsm.sync.rib.insert(
                p,
                Entry {
                    vip,
                    attrs: Arc::new(attrs),
                },
            );
        }
        fsm.state = PeerState::Established;
        fsm.hold = s.hold;
        fsm.peer_router_id = s.peer_router_id;
        fsm.peer_route_refresh = s.peer_route_refresh;
        fsm.local = Some(s.local);
        fsm.sync.families = families;
        fsm.sync.path.four_octet_as = s.four_octet_as;
        fsm.sync.next_hops = NextHops {
            v4: s.next_hop_v4,
            v6: s.next_hop_v6,
        };
        fsm.rx = RxParams {
            add_path_v4: s.add_path_v4,
            add_path_v6: s.add_path_v6,
            four_octet_as: s.four_octet_as,
        };
        fsm.explained = explained;
        fsm.refresh = Refresh {
            received: s.route_refresh_received,
            resends: s.route_refresh_resends,
            ..Refresh::default()
        };
        Ok(fsm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::fsm::{Action, Input};
    use crate::bgp::{encode, wire};
    use crate::route::{DesiredRoute, DesiredRoutes};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn setup() -> SessionSetup {
        SessionSetup {
            local_as: 65101,
            router_id: Ipv4Addr::new(192, 0, 2, 10),
            peer: crate::bgp::PeerSpec {
                name: "tor1".into(),
                address: "192.0.2.1".parse().unwrap(),
                remote_as: 65000,
                local_address: None,
                port: 179,
                hold_time: Duration::from_secs(90),
                next_hop_v4: None,
                next_hop_v6: None,
                auth: Default::default(),
                ttl_security: false,
            },
        }
    }

    fn desired() -> Arc<DesiredRoutes> {
        let p: Prefix = "203.0.113.10/32".parse().unwrap();
        let mut routes = BTreeMap::new();
        routes.insert(
            p,
            DesiredRoute {
                vip: "web".into(),
                attrs: Arc::new(RouteAttrs {
                    med: Some(10),
                    communities: vec![Community(0xFDE8_0001)],
                    ..Default::default()
                }),
            },
        );
        let mut vp = BTreeMap::new();
        vp.insert(Arc::from("web"), Arc::from([p]));
        Arc::new(DesiredRoutes {
            routes,
            vip_prefixes: Arc::new(vp),
            ..Default::default()
        })
    }

    fn frame(bytes: Vec<u8>) -> wire::Frame {
        use tokio_util::codec::Decoder;
        let mut b = bytes::BytesMut::from(&bytes[..]);
        wire::BgpCodec.decode(&mut b).unwrap().unwrap()
    }

    /// An FSM brought to Established with `desired` announced.
    fn established() -> Fsm {
        let mut f = Fsm::new(setup(), FsmTiming::default(), HashSet::new());
        f.handle(Input::Desired(desired()));
        f.handle(Input::Connected {
            local: "192.0.2.10:40000".parse().unwrap(),
        });
        let open = encode::open(65000, 90, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        f.handle(Input::Frame(frame(open)));
        f.handle(Input::Frame(frame(encode::keepalive())));
        assert_eq!(f.state(), PeerState::Established);
        f
    }

    #[test]
    fn only_established_sessions_export() {
        let f = Fsm::new(setup(), FsmTiming::default(), HashSet::new());
        assert!(f.export().is_none());
    }

    #[test]
    fn a_resumed_session_sends_nothing_the_peer_already_has() {
        let f = established();
        let ex = f.export().unwrap();
        assert_eq!(ex.rib_out.len(), 1);
        let json = serde_json::to_string(&ex).unwrap();
        let back: ExportedSession = serde_json::from_str(&json).unwrap();
        let mut g = Fsm::resume(setup(), FsmTiming::default(), &back).unwrap();
        assert_eq!(g.state(), PeerState::Established);
        assert_eq!(g.hold(), 90);
        assert_eq!(g.announced(), 1);
        let actions = g.handle(Input::Desired(desired()));
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Send(_))),
            "re-sent: {actions:?}"
        );
        // A change still goes out as one UPDATE (the session is live).
        let actions = g.handle(Input::Desired(Arc::new(DesiredRoutes::default())));
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Send(m) if m[18] == wire::MSG_UPDATE)));
        // KEEPALIVEs continue.
        let actions = g.handle(Input::Timer(crate::bgp::fsm::Timer::Keepalive));
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Send(m) if m[18] == wire::MSG_KEEPALIVE)));
    }

    #[test]
    fn resume_refuses_a_changed_peer() {
        let ex = established().export().unwrap();
        let mut s = setup();
        s.peer.remote_as = 65001;
        let e = Fsm::resume(s, FsmTiming::default(), &ex).err().unwrap();
        assert!(e.contains("remote_as"), "{e}");
        let mut s = setup();
        s.peer.hold_time = Duration::from_secs(30);
        assert!(Fsm::resume(s, FsmTiming::default(), &ex).is_err());
        let mut bad = ex.clone();
        bad.rib_out[0].prefix = "203.0.113.10/33".into();
        assert!(Fsm::resume(setup(), FsmTiming::default(), &bad).is_err());
        let mut bad = ex;
        bad.families = vec!["l2vpn".into()];
        assert!(Fsm::resume(setup(), FsmTiming::default(), &bad).is_err());
    }
}
