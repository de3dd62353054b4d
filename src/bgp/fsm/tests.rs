//! The state machine without sockets: inputs in, actions out, time simulated by firing armed
//! timers in deadline order.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::super::encode;
use super::super::fsm::{Action, Fsm, FsmTiming, Input, Level, SessionSetup, Timer};
use super::super::spec::PeerSpec;
use super::super::status::{EndReason, PeerState, StopReason};
use super::super::wire::{self, BgpCodec, Frame, Message};
use crate::route::{DesiredRoute, DesiredRoutes, Prefix, RouteAttrs};

const REMOTE_AS: u32 = 65000;

fn setup(local_as: u32, hold: u64) -> SessionSetup {
    SessionSetup {
        local_as,
        router_id: Ipv4Addr::new(192, 0, 2, 10),
        peer: PeerSpec {
            name: Arc::from("tor1"),
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            remote_as: REMOTE_AS,
            local_address: None,
            port: 179,
            hold_time: Duration::from_secs(hold),
            next_hop_v4: None,
            next_hop_v6: None,
            auth: Default::default(),
            ttl_security: false,
        },
    }
}

fn frame(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    BgpCodec.decode(&mut buf).unwrap().unwrap()
}

fn cap(code: u8, v: &[u8]) -> Vec<u8> {
    let mut c = vec![code, v.len() as u8];
    c.extend_from_slice(v);
    c
}

/// A peer OPEN: `four_octet` adds capability 65; always MP IPv4 unicast.
fn open(version: u8, asn: u32, hold: u16, four_octet: bool) -> Vec<u8> {
    let mut caps = vec![cap(1, &[0, 1, 0, 1]), cap(2, &[])];
    if four_octet {
        caps.push(cap(65, &asn.to_be_bytes()));
    }
    let mut params = Vec::new();
    for c in caps {
        params.push(2);
        params.push(c.len() as u8);
        params.extend_from_slice(&c);
    }
    let mut body = vec![version];
    body.extend_from_slice(&u16::try_from(asn).unwrap_or(wire::AS_TRANS).to_be_bytes());
    body.extend_from_slice(&hold.to_be_bytes());
    body.extend_from_slice(&[198, 51, 100, 1]);
    body.push(params.len() as u8);
    body.extend_from_slice(&params);
    msg(wire::MSG_OPEN, &body)
}

fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(t);
    m.extend_from_slice(body);
    m
}

fn route_refresh_v4() -> Vec<u8> {
    msg(wire::MSG_ROUTE_REFRESH, &[0, 1, 0, 1])
}

fn desired(prefixes: &[&str]) -> Arc<DesiredRoutes> {
    let mut d = DesiredRoutes::default();
    let vip: Arc<str> = Arc::from("web");
    for p in prefixes {
        let p: Prefix = p.parse().unwrap();
        d.routes.insert(
            p,
            DesiredRoute {
                vip: vip.clone(),
                attrs: RouteAttrs::default().into(),
            },
        );
        {
            let e = Arc::make_mut(&mut d.vip_prefixes)
                .entry(vip.clone())
                .or_default();
            *e = e.iter().copied().chain([p]).collect();
        }
    }
    Arc::new(d)
}

/// The FSM plus what a driver would do with its actions, on a simulated clock.
struct Sim {
    fsm: Fsm,
    now: Duration,
    timers: BTreeMap<Timer, Duration>,
    /// (time, bytes) of everything sent.
    sent: Vec<(Duration, Vec<u8>)>,
    logs: Vec<(Level, String)>,
    received: usize,
    end: Option<(Option<Vec<u8>>, bool, EndReason)>,
}

impl Sim {
    fn new(s: SessionSetup) -> Sim {
        Sim::with_timing(s, FsmTiming::default())
    }

    fn with_timing(s: SessionSetup, timing: FsmTiming) -> Sim {
        Sim {
            fsm: Fsm::new(s, timing, HashSet::new()),
            now: Duration::ZERO,
            timers: BTreeMap::new(),
            sent: Vec::new(),
            logs: Vec::new(),
            received: 0,
            end: None,
        }
    }

    /// Like the driver: the actions of `input`, then (written) the rest of a new session's
    /// table.
    fn feed(&mut self, input: Input) {
        let mut actions = self.fsm.handle(input);
        loop {
            self.take(actions);
            match self.fsm.continue_table() {
                Some(more) => actions = more,
                None => break,
            }
        }
    }

    fn take(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(m) => self.sent.push((self.now, m)),
                Action::Arm(t, d) => {
                    self.timers.insert(t, self.now + d);
                }
                Action::Cancel(t) => {
                    self.timers.remove(&t);
                }
                Action::State(_) => {}
                Action::Received(_) => self.received += 1,
                Action::Log(l, s) => self.logs.push((l, s)),
                Action::RouteLog(_, s) => self.logs.push((Level::Info, s)),
                Action::Close {
                    notification,
                    drain,
                    reason,
                } => {
                    assert!(self.end.is_none(), "closed twice");
                    self.end = Some((notification, drain, reason));
                }
            }
        }
    }

    fn peer(&mut self, bytes: &[u8]) {
        self.feed(Input::Frame(frame(bytes)));
    }

    /// Fires due timers in deadline order until `t`.
    fn advance_to(&mut self, t: Duration) {
        loop {
            let next = self
                .timers
                .iter()
                .map(|(k, d)| (*d, *k))
                .min()
                .filter(|(d, _)| *d <= t);
            let Some((d, timer)) = next else { break };
            self.timers.remove(&timer);
            self.now = d;
            self.feed(Input::Timer(timer));
        }
        self.now = t;
    }

    fn connect(&mut self) {
        self.feed(Input::Connected {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 40000),
        });
    }

    /// Connects, takes the peer's OPEN and KEEPALIVE.
    fn establish(&mut self, peer_open: &[u8]) {
        self.connect();
        self.peer(peer_open);
        self.peer(&encode::keepalive());
        assert_eq!(self.fsm.state(), PeerState::Established, "{:?}", self.end);
    }

    fn sent_of(&self, t: u8) -> Vec<Duration> {
        self.sent
            .iter()
            .filter(|(_, m)| m[18] == t)
            .map(|(at, _)| *at)
            .collect()
    }

    fn end_code(&self) -> Option<(u8, u8)> {
        let (n, _, _) = self.end.as_ref()?;
        let n = n.as_ref()?;
        match wire::parse(
            &frame(n),
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap()
        {
            Message::Notification(n) => Some(n.code.wire()),
            _ => None,
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn hold_time_0_means_no_hold_timer_and_no_keepalives_and_the_session_stays_up() {
    let mut s = Sim::new(setup(65101, 90));
    s.connect();
    // The OpenSent timer (240 s) is armed while waiting for the OPEN...
    assert_eq!(s.timers.get(&Timer::Hold), Some(&secs(240)));
    s.advance_to(secs(10));
    s.peer(&open(4, REMOTE_AS, 0, true));
    // ... and must be gone once hold time 0 is negotiated.
    assert_eq!(s.fsm.hold(), 0);
    assert!(s.timers.is_empty(), "{:?}", s.timers);
    s.peer(&encode::keepalive());
    s.advance_to(secs(1000));
    assert!(s.end.is_none(), "{:?}", s.end);
    assert_eq!(s.fsm.state(), PeerState::Established);
    // Only the KEEPALIVE that answers the OPEN.
    assert_eq!(s.sent_of(wire::MSG_KEEPALIVE), vec![secs(10)]);
}

#[test]
fn peer_hold_time_1_or_2_gets_2_6() {
    for hold in [1, 2] {
        let mut s = Sim::new(setup(65101, 90));
        s.connect();
        s.peer(&open(4, REMOTE_AS, hold, true));
        assert_eq!(s.end_code(), Some((2, 6)), "hold {hold}");
        assert!(matches!(
            s.end.as_ref().unwrap().2,
            EndReason::ProtocolError(_)
        ));
    }
    // Our own configured 1 or 2 goes out as 3.
    let mut s = Sim::new(setup(65101, 2));
    s.connect();
    let Message::Open(o) = wire::parse(
        &frame(&s.sent[0].1),
        &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(o.hold_time, 3);
}

#[test]
fn keepalive_every_third_of_the_hold_time_and_hold_expiry_sends_4_0() {
    let mut s = Sim::new(setup(65101, 90));
    s.establish(&open(4, REMOTE_AS, 9, true));
    assert_eq!(s.fsm.hold(), 9);
    // The peer keeps talking for 20 s, then goes silent.
    for t in (2..=20).step_by(2) {
        s.advance_to(secs(t));
        s.peer(&encode::keepalive());
    }
    s.advance_to(secs(28));
    assert!(s.end.is_none());
    let ka = s.sent_of(wire::MSG_KEEPALIVE);
    // The OpenSent answer at 0, then every 3 s (UPDATEs at 0 restart the timer too).
    assert_eq!(ka, (0..=9).map(|i| secs(3 * i)).collect::<Vec<_>>());
    s.advance_to(secs(29));
    assert_eq!(s.now, secs(29));
    assert_eq!(s.end_code(), Some((4, 0)));
    let (_, drain, reason) = s.end.clone().unwrap();
    assert!(!drain);
    assert_eq!(
        reason,
        EndReason::HoldTimerExpired {
            state: PeerState::Established,
            after: secs(9)
        }
    );
}

#[test]
fn no_open_within_240_s_gets_4_0_at_240_s() {
    let mut s = Sim::new(setup(65101, 90));
    s.connect();
    s.advance_to(secs(239));
    assert!(s.end.is_none());
    s.advance_to(secs(241));
    assert_eq!(s.end_code(), Some((4, 0)));
    assert!(matches!(
        s.end.as_ref().unwrap().2,
        EndReason::HoldTimerExpired {
            state: PeerState::OpenSent,
            ..
        }
    ));
}

#[test]
fn open_hold_timer_is_replaced_by_the_negotiated_one() {
    let mut s = Sim::new(setup(65101, 90));
    s.connect();
    s.advance_to(secs(200));
    s.peer(&open(4, REMOTE_AS, 90, true));
    s.peer(&encode::keepalive());
    // The peer sends a KEEPALIVE every 30 s: far past the 240 s OpenSent deadline, still up.
    for t in (230..=600).step_by(30) {
        s.advance_to(secs(t));
        s.peer(&encode::keepalive());
    }
    assert!(s.end.is_none(), "{:?}", s.end);
}

#[test]
fn open_on_an_established_session_is_5_3_even_with_a_bad_version() {
    let mut s = Sim::new(setup(65101, 90));
    s.establish(&open(4, REMOTE_AS, 90, true));
    s.peer(&open(3, REMOTE_AS, 90, true));
    assert_eq!(s.end_code(), Some((5, 3)));
    // In OpenConfirm: 5/2, and in OpenSent an UPDATE is 5/1.
    let mut s = Sim::new(setup(65101, 90));
    s.connect();
    s.peer(&open(4, REMOTE_AS, 90, true));
    s.peer(&open(9, REMOTE_AS, 90, true));
    assert_eq!(s.end_code(), Some((5, 2)));
    let mut s = Sim::new(setup(65101, 90));
    s.connect();
    s.peer(&encode::end_of_rib(crate::route::Family::Ipv4Unicast));
    assert_eq!(s.end_code(), Some((5, 1)));
}

#[test]
fn route_refresh_flood_is_coalesced_and_logged_as_first_plus_count() {
    let mut s = Sim::new(setup(65101, 90));
    s.feed(Input::Desired(desired(&[
        "203.0.113.10/32",
        "203.0.113.11/32",
    ])));
    s.establish(&open(4, REMOTE_AS, 90, true));
    let updates_before = s.sent_of(wire::MSG_UPDATE).len();
    let logs_before = s.logs.len();
    // 10,000 requests within 100 ms, the refresh delay being 200 ms: one re-send.
    for _ in 0..10_000 {
        s.peer(&route_refresh_v4());
    }
    s.advance_to(secs(1));
    let resent = s.sent_of(wire::MSG_UPDATE).len() - updates_before;
    assert_eq!(resent, 1, "one UPDATE holds both prefixes");
    // Another burst later: one more re-send.
    for _ in 0..5_000 {
        s.peer(&route_refresh_v4());
    }
    s.advance_to(secs(11));
    assert_eq!(s.sent_of(wire::MSG_UPDATE).len() - updates_before, 2);
    let info: Vec<&String> = s.logs[logs_before..]
        .iter()
        .filter(|(l, _)| *l != Level::Debug)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(info.len(), 2, "{info:?}");
    assert!(info[0].contains("re-sending 2 prefixes"), "{}", info[0]);
    assert!(
        info[1].starts_with("14999 more route refresh requests from tor1 in the last 10 s, coalesced into 2 re-sends"),
        "{}",
        info[1]
    );
    assert_eq!(s.fsm.route_refresh_counts(), (15_000, 2));
    // A quiet window ends the muting: the next request is logged again.
    s.advance_to(secs(40));
    let n = s.logs.len();
    s.peer(&route_refresh_v4());
    assert!(s.logs[n..]
        .iter()
        .any(|(l, m)| *l == Level::Info && m.contains("route refresh from tor1")));
    assert!(s.end.is_none());
}

#[test]
fn two_octet_peer_with_a_4_octet_local_as_gets_as_trans_and_as4_path() {
    let local_as = 4_200_000_001;
    let mut s = Sim::new(setup(local_as, 90));
    s.feed(Input::Desired(desired(&["203.0.113.10/32"])));
    s.connect();
    let Message::Open(ours) = wire::parse(
        &frame(&s.sent[0].1),
        &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (ours.my_as, ours.four_octet_as),
        (wire::AS_TRANS, Some(local_as))
    );
    s.peer(&open(4, REMOTE_AS, 90, false));
    s.peer(&encode::keepalive());
    assert_eq!(s.fsm.state(), PeerState::Established, "{:?}", s.end);
    let update = s
        .sent
        .iter()
        .map(|(_, m)| m)
        .find(|m| m[18] == wire::MSG_UPDATE && m.len() > 23)
        .unwrap();
    // AS_PATH [AS_TRANS], then AS4_PATH [4200000001].
    assert!(update
        .windows(7)
        .any(|w| w == [0x40, 2, 4, 2, 1, 0x5B, 0xA0]));
    let mut as4 = vec![0xC0, 17, 6, 2, 1];
    as4.extend_from_slice(&local_as.to_be_bytes());
    assert!(update.windows(as4.len()).any(|w| w == as4.as_slice()));
}

#[test]
fn stop_reasons_choose_withdraw_drain_and_cease_subcode() {
    let cases = [
        (StopReason::Shutdown("bye".into()), (6, 2), true),
        (StopReason::ConfigChanged, (6, 6), true),
        (StopReason::Deconfigured, (6, 3), true),
        (StopReason::BfdDown, (6, 10), false),
    ];
    for (reason, code, withdraws) in cases {
        let mut s = Sim::new(setup(65101, 90));
        s.feed(Input::Desired(desired(&["203.0.113.10/32"])));
        s.establish(&open(4, REMOTE_AS, 90, true));
        assert_eq!(s.fsm.announced(), 1);
        let n = s.sent.len();
        s.feed(Input::Stop(reason.clone()));
        assert_eq!(s.end_code(), Some(code), "{reason}");
        let (_, drain, end) = s.end.clone().unwrap();
        assert_eq!(drain, withdraws, "{reason}");
        assert_eq!(end, EndReason::Stopped(reason.clone()));
        assert_eq!(s.sent.len() - n, usize::from(withdraws), "{reason}");
        assert!(s.timers.is_empty());
        // Nothing happens after the close.
        s.peer(&encode::keepalive());
        s.advance_to(secs(1000));
        assert_eq!(s.sent.len() - n, usize::from(withdraws));
    }
    // Before Established: Cease only, no drain.
    let mut s = Sim::new(setup(65101, 90));
    s.connect();
    s.feed(Input::Stop(StopReason::Shutdown("bye".into())));
    assert_eq!(s.end_code(), Some((6, 2)));
    assert!(!s.end.as_ref().unwrap().1);
}

#[test]
fn desired_before_established_is_announced_at_established_then_diffs_follow() {
    let mut s = Sim::new(setup(65101, 90));
    s.feed(Input::Desired(desired(&["203.0.113.10/32"])));
    s.connect();
    assert!(s.sent_of(wire::MSG_UPDATE).is_empty());
    s.peer(&open(4, REMOTE_AS, 90, true));
    s.peer(&encode::keepalive());
    // Table, then End-of-RIB for IPv4 (the only family negotiated).
    assert_eq!(s.sent_of(wire::MSG_UPDATE).len(), 2);
    assert_eq!(
        s.sent.last().unwrap().1,
        encode::end_of_rib(crate::route::Family::Ipv4Unicast)
    );
    s.feed(Input::Desired(desired(&[])));
    assert_eq!(s.fsm.announced(), 0);
    assert!(s
        .logs
        .iter()
        .any(|(_, m)| m.contains("withdrew web (203.0.113.10/32) from tor1")));
}

#[test]
fn a_new_session_sends_a_first_slice_at_once_then_the_rest_and_end_of_rib() {
    // 5000 host routes: more than the first slice.
    let names: Vec<String> = (0..5000u32)
        .map(|i| format!("2001:db8::{:x}:{:x}/128", i >> 16, i & 0xffff))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut st = setup(65101, 90);
    st.peer.next_hop_v6 = Some("2001:db8::10".parse().unwrap());
    let mut fsm = Fsm::new(st, FsmTiming::default(), HashSet::new());
    fsm.handle(Input::Desired(desired(&refs)));
    fsm.handle(Input::Connected {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 40000),
    });
    let mut open_v6 = open(4, REMOTE_AS, 90, true);
    // Add MP IPv6 unicast to the OPEN: one more capability parameter.
    let extra = [2u8, 6, 1, 4, 0, 2, 0, 1];
    open_v6.extend_from_slice(&extra);
    let plen = open_v6[28] as usize + extra.len();
    open_v6[28] = plen as u8;
    let len = open_v6.len() as u16;
    open_v6[16..18].copy_from_slice(&len.to_be_bytes());
    fsm.handle(Input::Frame(frame(&open_v6)));
    let sends = |acts: &[Action]| -> Vec<Vec<u8>> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Send(m) if m[18] == wire::MSG_UPDATE => Some(m.clone()),
                _ => None,
            })
            .collect()
    };
    let first = fsm.handle(Input::Frame(frame(&encode::keepalive())));
    assert_eq!(fsm.state(), PeerState::Established);
    let first = sends(&first);
    assert!(
        !first.is_empty(),
        "the first slice goes out with Established"
    );
    assert_eq!(fsm.announced(), 1024, "only the first slice so far");
    assert!(!first.contains(&encode::end_of_rib(crate::route::Family::Ipv6Unicast)));
    let rest = sends(&fsm.continue_table().expect("the rest of the table is due"));
    assert_eq!(fsm.announced(), 5000);
    assert_eq!(
        rest.last().unwrap(),
        &encode::end_of_rib(crate::route::Family::Ipv6Unicast),
        "End-of-RIB after the whole table"
    );
    assert!(fsm.continue_table().is_none(), "nothing more pending");
}

#[test]
fn received_updates_are_handed_out_and_peer_cease_is_an_orderly_close() {
    let mut s = Sim::new(setup(65101, 90));
    s.establish(&open(4, REMOTE_AS, 90, true));
    s.peer(&encode::end_of_rib(crate::route::Family::Ipv4Unicast));
    assert_eq!(s.received, 1);
    s.peer(&encode::admin_shutdown("reboot"));
    let (n, _, reason) = s.end.clone().unwrap();
    assert!(n.is_none());
    assert!(reason.closed_by_peer(), "{reason}");
    assert_eq!(reason.kind(), "peer_cease");
    let mut s = Sim::new(setup(65101, 90));
    s.establish(&open(4, REMOTE_AS, 90, true));
    s.feed(Input::Closed);
    assert!(s.end.as_ref().unwrap().2.closed_by_peer());
}

proptest! {
    /// Any sequence of peer bytes, timers and stops: no panic, at most one close, nothing
    /// after it.
    #[test]
    fn arbitrary_inputs_never_panic(
        steps in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64).prop_map(Ok),
                (0u8..6).prop_map(Err),
            ],
            0..40,
        ),
        hold in prop_oneof![Just(0u16), Just(3u16), Just(90u16)],
    ) {
        let mut s = Sim::new(setup(70000, 90));
        s.connect();
        s.peer(&open(4, REMOTE_AS, hold, hold != 3));
        for step in steps {
            match step {
                Ok(mut body) => {
                    let t = body.first().copied().unwrap_or(2) % 6;
                    if t == 4 { body.clear(); }
                    let mut buf = BytesMut::from(&msg(t, &body)[..]);
                    match BgpCodec.decode(&mut buf) {
                        Ok(Some(f)) => s.feed(Input::Frame(f)),
                        Err(wire::ReadError::Protocol(e)) => s.feed(Input::BadFrame(e)),
                        _ => {}
                    }
                }
                Err(0) => s.feed(Input::Stop(StopReason::BfdDown)),
                Err(1) => s.feed(Input::Desired(desired(&["203.0.113.10/32"]))),
                Err(k) => {
                    let t = s.now + secs(u64::from(k) * 50);
                    s.advance_to(t);
                }
            }
        }
        if s.end.is_some() {
            let n = s.sent.len();
            s.advance_to(s.now + secs(1000));
            prop_assert_eq!(s.sent.len(), n);
        }
    }
}

#[test]
fn request_tables_sends_route_refresh_per_family_only_to_a_peer_that_offered_it() {
    let refreshes = |actions: &[Action]| -> Vec<Vec<u8>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(m) if m.get(18) == Some(&wire::MSG_ROUTE_REFRESH) => Some(m.clone()),
                _ => None,
            })
            .collect()
    };
    let mut s = Sim::new(setup(65101, 90));
    s.establish(&open(4, REMOTE_AS, 90, true));
    let sent = refreshes(&s.fsm.request_tables());
    assert_eq!(sent.len(), 1, "{sent:?}");
    // Length 23, type 5, AFI 1, reserved, SAFI 1.
    assert_eq!(&sent[0][16..], &[0, 23, 5, 0, 1, 0, 1]);

    // The same OPEN without the Route Refresh capability (code 2): nothing is asked.
    let mut plain = open(4, REMOTE_AS, 90, true);
    let at = plain
        .windows(4)
        .position(|w| w == [2, 2, 2, 0])
        .expect("capability 2 in the OPEN");
    plain.drain(at..at + 4);
    plain[28] -= 4;
    let len = plain.len() as u16;
    plain[16..18].copy_from_slice(&len.to_be_bytes());
    let mut s = Sim::new(setup(65101, 90));
    s.establish(&plain);
    assert!(refreshes(&s.fsm.request_tables()).is_empty());
}
