//! Session tests against a scripted fake peer on 127.0.0.1. Hold-time seconds are scaled to
//! 100 ms (`Timing::second`) so timer tests run fast.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::super::command::Command;
use super::super::conn::Timing;
use super::super::encode::{self, NextHop, PathParams};
use super::super::fsm::{FsmTiming, SessionSetup};
use super::super::rib_in::{PathKey, RibInEvent};
use super::super::session::{run_peer_with, PeerIo};
use super::super::spec::PeerSpec;
use super::super::status::{EndReason, PeerState, PeerStatus, StopReason};
use super::super::wire::{self, BgpCodec, Frame, Message};
use crate::route::{
    Community, DesiredRoute, DesiredRoutes, Family, LargeCommunity, Prefix, RouteAttrs,
};

const LOCAL_AS: u32 = 65101;
const REMOTE_AS: u32 = 65000;
const WAIT: Duration = Duration::from_secs(3);

fn timing() -> Timing {
    Timing {
        fsm: FsmTiming {
            second: Duration::from_millis(100),
            open_hold: Duration::from_secs(2),
            refresh_delay: Duration::from_millis(20),
            refresh_log_window: Duration::from_secs(10),
        },
        connect_timeout: Duration::from_secs(1),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        stable_after: Duration::from_secs(60),
        fast_retry_window: Duration::from_secs(60),
        drain: Duration::from_millis(500),
        linger: Duration::from_millis(300),
    }
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn web_attrs() -> RouteAttrs {
    RouteAttrs {
        communities: vec![Community(0xFE4D_0064)],
        large_communities: vec![LargeCommunity {
            global: LOCAL_AS,
            local1: 1,
            local2: 2,
        }],
        as_path_prepend: 1,
        ..RouteAttrs::default()
    }
}

fn med(m: u32) -> RouteAttrs {
    RouteAttrs {
        med: Some(m),
        ..RouteAttrs::default()
    }
}

fn routes(gen: u64, list: &[(&str, &str, RouteAttrs)]) -> DesiredRoutes {
    let mut d = DesiredRoutes {
        generation: gen,
        ..DesiredRoutes::default()
    };
    for (vip, pfx, attrs) in list {
        let vip: Arc<str> = Arc::from(*vip);
        d.routes.insert(
            p(pfx),
            DesiredRoute {
                vip: vip.clone(),
                attrs: attrs.clone().into(),
            },
        );
        {
            let e = Arc::make_mut(&mut d.vip_prefixes)
                .entry(vip.clone())
                .or_default();
            *e = e.iter().copied().chain([p(pfx)]).collect();
        }
        d.reasons.insert(vip, "check passed 2/2".into());
    }
    d
}

fn initial() -> DesiredRoutes {
    routes(
        1,
        &[
            ("web", "203.0.113.10/32", web_attrs()),
            ("web", "2001:db8:10::10/128", web_attrs()),
            ("dns", "203.0.113.53/32", med(10)),
        ],
    )
}

const NH6: &str = "2001:db8::10";

fn ebgp() -> PathParams {
    PathParams {
        local_as: LOCAL_AS,
        ibgp: false,
        four_octet_as: true,
    }
}

fn v4_nh() -> NextHop {
    NextHop::V4(Ipv4Addr::LOCALHOST)
}

fn v6_nh() -> NextHop {
    NextHop::V6(NH6.parse().unwrap())
}

fn announce(attrs: &RouteAttrs, nh: NextHop, ps: &[&str]) -> Vec<Vec<u8>> {
    let ps: Vec<Prefix> = ps.iter().map(|s| p(s)).collect();
    encode::announce(&ebgp(), attrs, nh, &ps).unwrap()
}

struct Harness {
    listener: TcpListener,
    desired: watch::Sender<Arc<DesiredRoutes>>,
    status: watch::Receiver<PeerStatus>,
    commands: mpsc::UnboundedSender<Command>,
    received: mpsc::Receiver<RibInEvent>,
    task: JoinHandle<()>,
}

async fn start(d: DesiredRoutes, next_hop_v6: Option<Ipv6Addr>) -> Harness {
    start_at(IpAddr::V4(Ipv4Addr::LOCALHOST), d, next_hop_v6).await
}

async fn start_at(addr: IpAddr, d: DesiredRoutes, next_hop_v6: Option<Ipv6Addr>) -> Harness {
    start_timed(addr, d, next_hop_v6, timing()).await
}

async fn start_timed(
    addr: IpAddr,
    d: DesiredRoutes,
    next_hop_v6: Option<Ipv6Addr>,
    timing: Timing,
) -> Harness {
    start_fed(addr, d, next_hop_v6, timing, 16).await
}

/// `capacity`: of the channel to the fleet view (one slot is the peer's reserve).
async fn start_fed(
    addr: IpAddr,
    d: DesiredRoutes,
    next_hop_v6: Option<Ipv6Addr>,
    timing: Timing,
    capacity: usize,
) -> Harness {
    let listener = TcpListener::bind((addr, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let setup = SessionSetup {
        local_as: LOCAL_AS,
        router_id: Ipv4Addr::new(192, 0, 2, 10),
        peer: PeerSpec {
            name: Arc::from("tor1"),
            address: addr,
            remote_as: REMOTE_AS,
            local_address: None,
            port,
            hold_time: Duration::from_secs(3),
            next_hop_v4: None,
            next_hop_v6,
            auth: Default::default(),
            ttl_security: false,
        },
    };
    let (dtx, drx) = watch::channel(Arc::new(d));
    let (stx, srx) = watch::channel(PeerStatus::default());
    let (commands, crx) = mpsc::unbounded_channel();
    let (rtx, received) = mpsc::channel(capacity);
    let io = PeerIo {
        desired: drx,
        status: stx,
        commands: crx,
        received: Some(rtx),
    };
    let task = tokio::spawn(run_peer_with(setup, io, timing, None));
    Harness {
        listener,
        desired: dtx,
        status: srx,
        commands,
        received,
        task,
    }
}

impl Harness {
    fn stop(&self) {
        self.stop_with("");
    }

    fn stop_with(&self, text: &str) {
        let _ = self
            .commands
            .send(Command::Stop(StopReason::Shutdown(text.into())));
    }

    async fn accept(&self) -> FakePeer {
        let (s, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("no connection from the session")
            .unwrap();
        let (r, w) = s.into_split();
        FakePeer {
            r: FramedRead::new(r, BgpCodec),
            w,
        }
    }

    async fn wait_status(&mut self, what: &str, pred: impl Fn(&PeerStatus) -> bool) -> PeerStatus {
        let r = tokio::time::timeout(WAIT, self.status.wait_for(|s| pred(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match r {
            Ok(Ok(s)) => s,
            _ => panic!("status never became {what}: {:?}", *self.status.borrow()),
        }
    }
}

struct FakePeer {
    r: FramedRead<OwnedReadHalf, BgpCodec>,
    w: OwnedWriteHalf,
}

fn cap(code: u8, v: &[u8]) -> Vec<u8> {
    let mut c = vec![code, v.len() as u8];
    c.extend_from_slice(v);
    c
}

fn mp(afi: u16, safi: u8) -> Vec<u8> {
    let a = afi.to_be_bytes();
    cap(1, &[a[0], a[1], 0, safi])
}

/// What FRR sends by default, including the FQDN capability that trips zettabgp.
fn frr_caps(asn: u32) -> Vec<Vec<u8>> {
    let mut fqdn = vec![4];
    fqdn.extend_from_slice(b"tor1");
    fqdn.push(11);
    fqdn.extend_from_slice(b"example.net");
    vec![
        mp(1, 1),
        mp(2, 1),
        cap(2, &[]),
        cap(65, &asn.to_be_bytes()),
        cap(73, &fqdn),
        cap(64, &[0x40, 0x78]),
    ]
}

fn open_msg(asn: u32, hold: u16, caps: &[Vec<u8>]) -> Vec<u8> {
    let mut params = Vec::new();
    for c in caps {
        params.push(2);
        params.push(c.len() as u8);
        params.extend_from_slice(c);
    }
    let mut body = vec![4];
    body.extend_from_slice(&u16::try_from(asn).unwrap_or(wire::AS_TRANS).to_be_bytes());
    body.extend_from_slice(&hold.to_be_bytes());
    body.extend_from_slice(&[198, 51, 100, 1]);
    body.push(params.len() as u8);
    body.extend_from_slice(&params);
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(wire::MSG_OPEN);
    m.extend_from_slice(&body);
    m
}

fn raw(f: &Frame) -> Vec<u8> {
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&((19 + f.body.len()) as u16).to_be_bytes());
    m.push(f.msg_type);
    m.extend_from_slice(&f.body);
    m
}

impl FakePeer {
    async fn recv(&mut self) -> Frame {
        match tokio::time::timeout(WAIT, self.r.next()).await {
            Ok(Some(Ok(f))) => f,
            Ok(other) => panic!("expected a message, got {other:?}"),
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }

    /// Next message that is not a KEEPALIVE.
    async fn recv_non_keepalive(&mut self) -> Frame {
        loop {
            let f = self.recv().await;
            if f.msg_type != wire::MSG_KEEPALIVE {
                return f;
            }
        }
    }

    async fn recv_notification(&mut self) -> wire::Notification {
        let f = self.recv_non_keepalive().await;
        match wire::parse(
            &f,
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap()
        {
            Message::Notification(n) => n,
            m => panic!("expected NOTIFICATION, got {m:?}"),
        }
    }

    async fn send(&mut self, b: &[u8]) {
        self.w.write_all(b).await.unwrap();
    }

    /// Sends a KEEPALIVE every 100 ms for `d` and returns how many KEEPALIVEs came back; UPDATEs
    /// are allowed, anything else fails the test.
    async fn keepalives_exchanged(&mut self, d: Duration) -> u32 {
        let mut ours = 0;
        let end = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < end {
            self.send(&encode::keepalive()).await;
            if let Ok(Some(Ok(f))) =
                tokio::time::timeout(Duration::from_millis(100), self.r.next()).await
            {
                match f.msg_type {
                    wire::MSG_KEEPALIVE => ours += 1,
                    wire::MSG_UPDATE => {}
                    t => panic!("unexpected message type {t}: {f:?}"),
                }
            }
        }
        ours
    }

    async fn expect_silence(&mut self, d: Duration) {
        if let Ok(f) = tokio::time::timeout(d, self.r.next()).await {
            panic!("expected no message, got {f:?}");
        }
    }

    async fn expect_closed(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.r.next()).await {
                Ok(None) | Ok(Some(Err(_))) => return,
                Ok(Some(Ok(f))) if f.msg_type == wire::MSG_KEEPALIVE => {}
                Ok(Some(Ok(f))) => panic!("expected close, got {f:?}"),
                Err(_) => panic!("connection not closed"),
            }
        }
    }

    /// Reads our OPEN, answers with `open`, exchanges KEEPALIVEs. Returns our OPEN.
    async fn establish_with(&mut self, open: &[u8]) -> wire::Open {
        let f = self.recv().await;
        let Message::Open(ours) = wire::parse(
            &f,
            &crate::bgp::rib_in::DecodeCx::keep_all(crate::bgp::rib_in::RxParams::FOUR_OCTET_AS),
        )
        .unwrap() else {
            panic!("expected OPEN, got {f:?}")
        };
        self.send(open).await;
        let f = self.recv().await;
        assert_eq!(f.msg_type, wire::MSG_KEEPALIVE, "{f:?}");
        self.send(&encode::keepalive()).await;
        ours
    }

    async fn establish(&mut self) -> wire::Open {
        self.establish_with(&open_msg(REMOTE_AS, 0, &frr_caps(REMOTE_AS)))
            .await
    }

    /// Expects exactly these UPDATEs, in order (KEEPALIVEs in between are skipped).
    async fn expect_updates(&mut self, want: &[Vec<u8>]) {
        for (i, w) in want.iter().enumerate() {
            let f = self.recv_non_keepalive().await;
            assert_eq!(raw(&f), *w, "UPDATE #{i} differs");
        }
    }
}

fn initial_updates() -> Vec<Vec<u8>> {
    let mut v = announce(&web_attrs(), v4_nh(), &["203.0.113.10/32"]);
    v.extend(announce(&med(10), v4_nh(), &["203.0.113.53/32"]));
    v.extend(announce(&web_attrs(), v6_nh(), &["2001:db8:10::10/128"]));
    v.push(encode::end_of_rib(Family::Ipv4Unicast));
    v.push(encode::end_of_rib(Family::Ipv6Unicast));
    v
}

#[tokio::test]
async fn frr_like_open_with_fqdn_establishes_and_sends_routes_then_end_of_rib() {
    let mut h = start(initial(), Some(NH6.parse().unwrap())).await;
    let mut peer = h.accept().await;
    let ours = peer.establish().await;
    assert_eq!(ours.peer_as(), LOCAL_AS);
    assert_eq!(ours.hold_time, 3);
    assert_eq!(ours.router_id, Ipv4Addr::new(192, 0, 2, 10));
    assert!(ours.route_refresh && ours.other_capabilities.is_empty());
    peer.expect_updates(&initial_updates()).await;
    let s = h
        .wait_status("Established with 3 prefixes", |s| {
            s.state == PeerState::Established && s.prefixes_announced == 3
        })
        .await;
    assert_eq!(s.negotiated_hold_time, Some(0));
    assert_eq!(s.peer_router_id, Some(Ipv4Addr::new(198, 51, 100, 1)));
    assert_eq!(s.families, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert_eq!(s.updates_sent, 5);
    assert!(s.established_since.is_some());
    // Peer's own End-of-RIB is counted, nothing else happens.
    peer.send(&encode::end_of_rib(Family::Ipv4Unicast)).await;
    peer.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(h.status.borrow().updates_received, 1);
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn desired_change_sends_exactly_the_diff_and_unchanged_sends_nothing() {
    let mut h = start(initial(), Some(NH6.parse().unwrap())).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    peer.expect_updates(&initial_updates()).await;

    // Same routes, new generation: nothing on the wire.
    let mut same = initial();
    same.generation = 2;
    h.desired.send(Arc::new(same)).unwrap();
    peer.expect_silence(Duration::from_millis(300)).await;

    // web loses its IPv6 prefix, dns changes MED, api appears.
    let next = routes(
        3,
        &[
            ("web", "203.0.113.10/32", web_attrs()),
            ("dns", "203.0.113.53/32", med(20)),
            ("api", "198.51.100.1/32", RouteAttrs::default()),
        ],
    );
    h.desired.send(Arc::new(next)).unwrap();
    let mut want =
        encode::withdraw(LOCAL_AS, Family::Ipv6Unicast, &[p("2001:db8:10::10/128")]).unwrap();
    want.extend(announce(
        &RouteAttrs::default(),
        v4_nh(),
        &["198.51.100.1/32"],
    ));
    want.extend(announce(&med(20), v4_nh(), &["203.0.113.53/32"]));
    peer.expect_updates(&want).await;
    peer.expect_silence(Duration::from_millis(300)).await;
    h.wait_status("3 prefixes", |s| s.prefixes_announced == 3)
        .await;

    // Everything withdrawn.
    h.desired.send(Arc::new(routes(4, &[]))).unwrap();
    let want = encode::withdraw(
        LOCAL_AS,
        Family::Ipv4Unicast,
        &[
            p("198.51.100.1/32"),
            p("203.0.113.10/32"),
            p("203.0.113.53/32"),
        ],
    )
    .unwrap();
    peer.expect_updates(&want).await;
    h.wait_status("0 prefixes", |s| s.prefixes_announced == 0)
        .await;
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn stop_withdraws_before_cease_with_message() {
    let mut h = start(initial(), Some(NH6.parse().unwrap())).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    peer.expect_updates(&initial_updates()).await;
    h.wait_status("Established", |s| s.prefixes_announced == 3)
        .await;

    h.stop_with("node drained for maintenance");
    let mut want = encode::withdraw(
        LOCAL_AS,
        Family::Ipv4Unicast,
        &[p("203.0.113.10/32"), p("203.0.113.53/32")],
    )
    .unwrap();
    want.extend(
        encode::withdraw(LOCAL_AS, Family::Ipv6Unicast, &[p("2001:db8:10::10/128")]).unwrap(),
    );
    peer.expect_updates(&want).await;
    let n = peer.recv_notification().await;
    assert_eq!(n.code.wire(), (6, 2));
    assert_eq!(
        n.shutdown_message().as_deref(),
        Some("node drained for maintenance")
    );
    peer.expect_closed().await;
    tokio::time::timeout(WAIT, h.task).await.unwrap().unwrap();
    assert_eq!(h.status.borrow().state, PeerState::Idle);
}

#[tokio::test]
async fn garbage_gets_header_error_and_reconnect() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    let f = peer.recv().await;
    assert_eq!(f.msg_type, wire::MSG_OPEN);
    peer.send(&[0x42; 40]).await;
    let n = peer.recv_notification().await;
    assert_eq!(n.code.wire(), (1, 1));
    peer.expect_closed().await;
    // Reconnects after the backoff.
    let mut again = h.accept().await;
    assert_eq!(again.recv().await.msg_type, wire::MSG_OPEN);
    let s = h
        .wait_status("2 attempts", |s| s.connect_attempts >= 2)
        .await;
    assert!(s.last_error.unwrap().contains("not all ones"));

    // A bad length is reported with the length as data.
    let mut m = encode::keepalive();
    m[16..18].copy_from_slice(&5000u16.to_be_bytes());
    again.send(&m).await;
    let n = again.recv_notification().await;
    assert_eq!((n.code.wire(), n.data), ((1, 2), vec![0x13, 0x88]));
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn hold_timer_expiry_sends_4_0() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    // Offer hold 3 (300 ms in test time) and then go silent; our KEEPALIVEs keep coming.
    peer.establish_with(&open_msg(REMOTE_AS, 3, &frr_caps(REMOTE_AS)))
        .await;
    let started = tokio::time::Instant::now();
    let n = peer.recv_notification_after_updates().await;
    assert_eq!(n.code.wire(), (4, 0));
    assert!(started.elapsed() >= Duration::from_millis(250));
    let s = h.wait_status("failed", |s| s.last_error.is_some()).await;
    assert!(s.last_error.unwrap().contains("hold timer expired"));
    h.stop();
    h.task.await.unwrap();
}

impl FakePeer {
    /// Skips UPDATEs and KEEPALIVEs until a NOTIFICATION.
    async fn recv_notification_after_updates(&mut self) -> wire::Notification {
        loop {
            let f = self.recv().await;
            if let Message::Notification(n) = wire::parse(
                &f,
                &crate::bgp::rib_in::DecodeCx::keep_all(
                    crate::bgp::rib_in::RxParams::FOUR_OCTET_AS,
                ),
            )
            .unwrap()
            {
                return n;
            }
        }
    }
}

#[tokio::test]
async fn wrong_peer_as_gets_2_2() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.recv().await;
    peer.send(&open_msg(64999, 0, &frr_caps(64999))).await;
    let n = peer.recv_notification().await;
    assert_eq!((n.code.wire(), n.data), ((2, 2), vec![0xFD, 0xE7]));
    let s = h.wait_status("failed", |s| s.last_error.is_some()).await;
    assert!(s.last_error.unwrap().contains("64999"));
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn peer_without_mp_caps_gets_ipv4_only() {
    let mut h = start(initial(), Some(NH6.parse().unwrap())).await;
    let mut peer = h.accept().await;
    peer.establish_with(&open_msg(
        REMOTE_AS,
        0,
        &[cap(65, &REMOTE_AS.to_be_bytes())],
    ))
    .await;
    let mut want = announce(&web_attrs(), v4_nh(), &["203.0.113.10/32"]);
    want.extend(announce(&med(10), v4_nh(), &["203.0.113.53/32"]));
    want.push(encode::end_of_rib(Family::Ipv4Unicast));
    peer.expect_updates(&want).await;
    peer.expect_silence(Duration::from_millis(200)).await;
    let s = h
        .wait_status("2 prefixes", |s| s.prefixes_announced == 2)
        .await;
    assert_eq!(s.families, vec![Family::Ipv4Unicast]);
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn no_ipv6_next_hop_skips_ipv6_routes() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    let mut want = announce(&web_attrs(), v4_nh(), &["203.0.113.10/32"]);
    want.extend(announce(&med(10), v4_nh(), &["203.0.113.53/32"]));
    want.push(encode::end_of_rib(Family::Ipv4Unicast));
    want.push(encode::end_of_rib(Family::Ipv6Unicast));
    peer.expect_updates(&want).await;
    h.wait_status("2 prefixes", |s| s.prefixes_announced == 2)
        .await;
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn route_refresh_resends_that_family() {
    let h = start(initial(), Some(NH6.parse().unwrap())).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    peer.expect_updates(&initial_updates()).await;
    let mut rr = vec![0xFF; 16];
    rr.extend_from_slice(&[0, 23, wire::MSG_ROUTE_REFRESH, 0, 2, 0, 1]);
    peer.send(&rr).await;
    peer.expect_updates(&announce(&web_attrs(), v6_nh(), &["2001:db8:10::10/128"]))
        .await;
    peer.expect_silence(Duration::from_millis(200)).await;
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn peer_notification_and_unexpected_open_end_the_session() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    peer.send(&encode::admin_shutdown("tor reboot")).await;
    let s = h.wait_status("failed", |s| s.last_error.is_some()).await;
    let e = s.last_error.unwrap();
    assert!(
        e.contains("Administrative Shutdown") && e.contains("tor reboot"),
        "{e}"
    );

    // Second connection: an OPEN while Established is an FSM error 5/3.
    let mut peer = h.accept().await;
    peer.establish().await;
    peer.send(&open_msg(REMOTE_AS, 0, &frr_caps(REMOTE_AS)))
        .await;
    let n = peer.recv_notification_after_updates().await;
    assert_eq!(n.code.wire(), (5, 3));
    // OPEN instead of KEEPALIVE in OpenConfirm: 5/2.
    let mut peer = h.accept().await;
    peer.recv().await;
    peer.send(&open_msg(REMOTE_AS, 0, &frr_caps(REMOTE_AS)))
        .await;
    assert_eq!(peer.recv().await.msg_type, wire::MSG_KEEPALIVE);
    peer.send(&open_msg(REMOTE_AS, 0, &frr_caps(REMOTE_AS)))
        .await;
    let n = peer.recv_notification().await;
    assert_eq!(n.code.wire(), (5, 2));
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn stop_before_established_sends_cease() {
    let h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.recv().await;
    h.stop_with("bye");
    let n = peer.recv_notification().await;
    assert_eq!(n.code.wire(), (6, 2));
    assert_eq!(n.shutdown_message().as_deref(), Some("bye"));
    tokio::time::timeout(WAIT, h.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn connect_refused_is_retried_and_reported() {
    // Bind then drop a listener to get a port nobody listens on.
    let h = start(initial(), None).await;
    drop(h.listener);
    let mut status = h.status.clone();
    let ok = tokio::time::timeout(WAIT, status.wait_for(|s| s.connect_attempts >= 3))
        .await
        .is_ok();
    assert!(ok, "{:?}", *status.borrow());
    let e = status.borrow().last_error.clone().unwrap();
    assert!(
        e.contains("connect to 127.0.0.1:") && e.contains("refused"),
        "{e}"
    );
    let kind = status.borrow().last_end.as_ref().map(EndReason::kind);
    assert_eq!(kind, Some("connect_refused"));
    let _ = h
        .commands
        .send(Command::Stop(StopReason::Shutdown(String::new())));
    tokio::time::timeout(WAIT, h.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn keepalives_both_ways_keep_the_session_up() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish_with(&open_msg(REMOTE_AS, 3, &frr_caps(REMOTE_AS)))
        .await;
    h.wait_status("hold 3", |s| s.negotiated_hold_time == Some(3))
        .await;
    // Hold is 300 ms in test time: run for 1 s, answering with a KEEPALIVE every 100 ms.
    let ours = peer.keepalives_exchanged(Duration::from_secs(1)).await;
    // Keepalive interval is hold/3 = 100 ms, restarted by each UPDATE we send.
    assert!(ours >= 5, "only {ours} KEEPALIVEs in 1 s");
    assert_eq!(h.status.borrow().state, PeerState::Established);
    assert_eq!(h.status.borrow().connect_attempts, 1);
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn malformed_update_lengths_get_3_1() {
    let h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    // Withdrawn routes length 200 in a 4-byte body.
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&[0, 23, wire::MSG_UPDATE, 0, 200, 0, 0]);
    peer.send(&m).await;
    let n = peer.recv_notification_after_updates().await;
    assert_eq!(n.code.wire(), (3, 1));
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn ipv6_transport_uses_local_v6_next_hop_and_skips_ipv4_without_next_hop_v4() {
    let h = start_at(IpAddr::V6(Ipv6Addr::LOCALHOST), initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    let mut want = announce(
        &web_attrs(),
        NextHop::V6(Ipv6Addr::LOCALHOST),
        &["2001:db8:10::10/128"],
    );
    want.push(encode::end_of_rib(Family::Ipv4Unicast));
    want.push(encode::end_of_rib(Family::Ipv6Unicast));
    peer.expect_updates(&want).await;
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn hold_time_0_session_outlives_the_open_hold_timer() {
    // The OpenSent hold timer is 2 s in test timing (240 s in production).
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    h.wait_status("hold 0", |s| {
        s.state == PeerState::Established && s.negotiated_hold_time == Some(0)
    })
    .await;
    // Nothing at all may arrive: no KEEPALIVEs (hold 0), no 4/0 NOTIFICATION.
    while let Ok(Some(Ok(f))) =
        tokio::time::timeout(Duration::from_millis(300), peer.r.next()).await
    {
        assert_eq!(f.msg_type, wire::MSG_UPDATE, "{f:?}");
    }
    peer.expect_silence(Duration::from_millis(2500)).await;
    assert_eq!(h.status.borrow().state, PeerState::Established);
    assert_eq!(h.status.borrow().connect_attempts, 1);
    h.stop();
    h.task.await.unwrap();
}

async fn next_event(h: &mut Harness) -> RibInEvent {
    tokio::time::timeout(WAIT, h.received.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn received_updates_reach_the_consumer() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    // No ADD-PATH send from this peer: no path ids.
    assert!(matches!(
        next_event(&mut h).await,
        RibInEvent::Up {
            add_path_v4: false,
            add_path_v6: false,
            ..
        }
    ));
    let eor = encode::end_of_rib(Family::Ipv4Unicast);
    peer.send(&eor).await;
    let RibInEvent::Update { update, .. } = next_event(&mut h).await else {
        panic!("expected an update")
    };
    assert_eq!(update.end_of_rib, Some(Family::Ipv4Unicast));
    h.stop();
    assert!(matches!(next_event(&mut h).await, RibInEvent::Down { .. }));
    h.task.await.unwrap();
}

/// A peer that sends path ids (RFC 7911): the VIP's paths reach the fleet view with their ids,
/// other prefixes are filtered out, and a duplicate MP_UNREACH resets with 3/1.
#[tokio::test]
async fn add_path_routes_for_vip_prefixes_reach_the_fleet_view() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    let mut caps = frr_caps(REMOTE_AS);
    caps.push(cap(69, &[0, 1, 1, 2]));
    let ours = peer.establish_with(&open_msg(REMOTE_AS, 0, &caps)).await;
    assert_eq!(ours.add_path, vec![(1, 1, 1), (2, 1, 1)]);
    assert!(matches!(
        next_event(&mut h).await,
        RibInEvent::Up {
            add_path_v4: true,
            add_path_v6: false,
            ..
        }
    ));
    // ORIGIN, AS_PATH 65000, NEXT_HOP; NLRI: path 7 -> 198.51.100.0/24 (not a VIP),
    // path 9 -> 203.0.113.10/32.
    let mut body = vec![0, 0];
    let attrs = [
        vec![0x40, 1, 1, 0],
        vec![0x40, 2, 6, 2, 1, 0, 0, 0xFD, 0xE8],
        vec![0x40, 3, 4, 192, 0, 2, 1],
    ]
    .concat();
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[
        0, 0, 0, 7, 24, 198, 51, 100, 0, 0, 0, 9, 32, 203, 0, 113, 10,
    ]);
    let mut msg = vec![0xFF; 16];
    msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    msg.push(2);
    msg.extend_from_slice(&body);
    peer.send(&msg).await;
    let RibInEvent::Update { update, .. } = next_event(&mut h).await else {
        panic!("expected an update")
    };
    assert_eq!(
        update.announced,
        vec![(
            PathKey {
                prefix: p("203.0.113.10/32"),
                path_id: 9
            },
            Family::Ipv4Unicast
        )],
        "{update:?}"
    );
    assert_eq!(update.filtered_out, 1, "{update:?}");
    // Two MP_UNREACH_NLRI: RFC 7606 3j, session reset with 3/1.
    let mp = [0x80u8, 15, 3, 0, 2, 1];
    let mut body = vec![0, 0, 0, 12];
    body.extend_from_slice(&mp);
    body.extend_from_slice(&mp);
    let mut msg = vec![0xFF; 16];
    msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    msg.push(2);
    msg.extend_from_slice(&body);
    peer.send(&msg).await;
    let n = peer.recv_notification_after_updates().await;
    assert_eq!(n.code.wire(), (3, 1));
    assert!(matches!(next_event(&mut h).await, RibInEvent::Down { .. }));
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn reset_command_closes_with_cease_and_reconnects() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish().await;
    h.wait_status("Established", |s| s.state == PeerState::Established)
        .await;
    h.commands
        .send(Command::Reset(StopReason::BfdDown))
        .unwrap();
    let n = peer.recv_notification_after_updates().await;
    assert_eq!(n.code.wire(), (6, 10));
    let s = h.wait_status("reset", |s| s.last_end.is_some()).await;
    assert_eq!(s.last_end.as_ref().map(EndReason::kind), Some("admin_stop"));
    // The task goes on: a new connection comes.
    let mut peer = h.accept().await;
    peer.establish().await;
    h.stop();
    h.task.await.unwrap();
}

#[tokio::test]
async fn peer_cease_after_established_reconnects_at_the_minimum_backoff_every_time() {
    // Backoff 100 ms .. 5 s: growing, the third retry would wait >= 1.2 s; at the minimum it
    // waits <= 125 ms.
    let t = Timing {
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(5),
        ..timing()
    };
    let h = start_timed(IpAddr::V4(Ipv4Addr::LOCALHOST), initial(), None, t).await;
    for round in 0..5 {
        let mut peer = h.accept().await;
        peer.establish().await;
        peer.send(&encode::cease(
            super::super::error::Cease::AdministrativeReset,
            "restart",
        ))
        .await;
        // Read what we sent until we close, as a router does (dropping with unread data would
        // send a RST, and our write would fail before the Cease is read).
        let t = std::time::Instant::now();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, peer.r.next()).await {}
        drop(peer);
        let (s, _) = tokio::time::timeout(WAIT, h.listener.accept())
            .await
            .unwrap()
            .unwrap();
        let waited = t.elapsed();
        assert!(
            waited < Duration::from_millis(600),
            "round {round}: reconnect after {waited:?}: {:?}",
            h.status.borrow()
        );
        drop(s);
        // That connection is closed unanswered (an OPEN failure): the backoff may grow again,
        // but the next Cease resets it.
        let s2 = h.status.clone();
        let _ = tokio::time::timeout(WAIT, async {
            let mut s2 = s2;
            s2.wait_for(|s| s.last_end.as_ref().map(EndReason::kind) == Some("peer_closed"))
                .await
                .map(|_| ())
        })
        .await;
    }
    h.stop();
    h.task.await.unwrap();
}

/// Blocks the test's (current-thread) runtime: the session task cannot run, as under SIGSTOP.
fn stall_runtime(d: Duration) {
    std::thread::sleep(d);
}

/// Stopped for longer than the hold time while the peer's KEEPALIVEs wait in the socket: the
/// hold timer ran out during the stall, but the session reads them before judging and stays up.
#[tokio::test]
async fn a_stall_past_the_hold_time_with_the_peers_keepalives_buffered_keeps_the_session() {
    let mut h = start(initial(), None).await;
    let mut peer = h.accept().await;
    peer.establish_with(&open_msg(REMOTE_AS, 3, &frr_caps(REMOTE_AS)))
        .await;
    h.wait_status("established", |s| s.state == PeerState::Established)
        .await;
    peer.keepalives_exchanged(Duration::from_millis(300)).await;
    peer.send(&encode::keepalive()).await;
    // Hold 3 is 300 ms in test time.
    stall_runtime(Duration::from_millis(500));
    let ours = peer.keepalives_exchanged(Duration::from_millis(800)).await;
    assert!(ours >= 4, "only {ours} KEEPALIVEs after the stall");
    let st = h.status.borrow().clone();
    assert_eq!(st.state, PeerState::Established, "{st:?}");
    assert!(st.ends.is_empty(), "{:?}", st.ends);
    h.stop();
    h.task.await.unwrap();
}

/// The soak's mismatch: the backoff had grown through earlier failures, then this process was
/// stopped for more than the hold time and its hold timer expired on resume. The reconnect must
/// come at the minimum delay, not after the grown one.
#[tokio::test]
async fn hold_expiry_after_our_own_stall_reconnects_at_once_despite_a_grown_backoff() {
    let t = Timing {
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(5),
        ..timing()
    };
    let h = start_timed(IpAddr::V4(Ipv4Addr::LOCALHOST), initial(), None, t).await;
    // Three attempts closed unanswered: 200, 400, 800 ms; the next delay would be 1.6 s.
    for _ in 0..3 {
        drop(h.accept().await);
    }
    let mut peer = h.accept().await;
    peer.establish_with(&open_msg(REMOTE_AS, 3, &frr_caps(REMOTE_AS)))
        .await;
    let mut st = h.status.clone();
    tokio::time::timeout(WAIT, st.wait_for(|s| s.state == PeerState::Established))
        .await
        .unwrap()
        .unwrap();
    // The peer stays silent; we stall past the hold time (300 ms).
    stall_runtime(Duration::from_millis(500));
    let t0 = std::time::Instant::now();
    let (_s, _) = tokio::time::timeout(WAIT, h.listener.accept())
        .await
        .unwrap()
        .unwrap();
    let waited = t0.elapsed();
    let st = h.status.borrow().clone();
    assert_eq!(
        st.last_end.as_ref().map(EndReason::kind),
        Some("hold_timer_expired"),
        "{st:?}"
    );
    // Grace 100 ms + the minimum 200 ms (+25 % jitter); the grown delay would be >= 1.2 s.
    assert!(
        waited < Duration::from_millis(800),
        "reconnect after {waited:?}"
    );
    drop(peer);
    h.stop();
    h.task.await.unwrap();
}

/// The reconnect backoff (was an inline test module in session.rs).
mod backoff {
    use super::super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let ds: Vec<f64> = (0..8).map(|_| b.next_delay().as_secs_f64()).collect();
        for (d, nominal) in ds.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]) {
            assert!(*d >= nominal * 0.75 && *d <= nominal * 1.25, "{ds:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1250));
    }

    #[test]
    fn fast_retry_stays_at_the_minimum_within_the_window_then_grows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..5 {
            b.next_delay();
        }
        b.fast_retry(Duration::from_secs(60));
        for _ in 0..10 {
            assert!(b.next_delay() <= Duration::from_millis(1250));
        }
        b.fast_retry(Duration::ZERO);
        let ds: Vec<f64> = (0..3).map(|_| b.next_delay().as_secs_f64()).collect();
        assert!(ds[2] >= 3.0, "{ds:?}");
    }
}

/// The daemon does not read the fleet channel (2 slots: the reserve and one). The session keeps
/// its KEEPALIVEs going, the view is told at once that this peer is behind, and once the channel
/// has room it gets the whole table, in which the withdrawal is not lost.
#[tokio::test]
async fn a_full_fleet_channel_neither_blocks_the_session_nor_loses_a_withdrawal() {
    let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut h = start_fed(addr, initial(), None, timing(), 2).await;
    let mut peer = h.accept().await;
    peer.establish_with(&open_msg(REMOTE_AS, 3, &frr_caps(REMOTE_AS)))
        .await;
    h.wait_status("established", |s| s.state == PeerState::Established)
        .await;
    // The Up fills the channel. Announce the VIP (the marker takes the reserve), withdraw it
    // and announce the DNS VIP: all three only change the session's table.
    let vip: Prefix = p("203.0.113.10/32");
    let dns: Prefix = p("203.0.113.53/32");
    for m in announce(&med(5), v4_nh(), &["203.0.113.10/32"]) {
        peer.send(&m).await;
    }
    for m in encode::withdraw(REMOTE_AS, Family::Ipv4Unicast, &[vip]).unwrap() {
        peer.send(&m).await;
    }
    for m in announce(&med(5), v4_nh(), &["203.0.113.53/32"]) {
        peer.send(&m).await;
    }
    // Hold 3 is 300 ms in test time: a second of KEEPALIVEs both ways while nobody reads.
    let ours = peer.keepalives_exchanged(Duration::from_secs(1)).await;
    assert!(ours >= 5, "only {ours} KEEPALIVEs in 1 s");
    assert_eq!(h.status.borrow().state, PeerState::Established);
    assert!(matches!(next_event(&mut h).await, RibInEvent::Up { .. }));
    assert!(matches!(
        next_event(&mut h).await,
        RibInEvent::Behind { .. }
    ));
    let RibInEvent::Resync { table, .. } = next_event(&mut h).await else {
        panic!("expected a resync")
    };
    let keys: Vec<Prefix> = table.paths().map(|(k, _, _)| k.prefix).collect();
    assert_eq!(keys, vec![dns]);
    h.wait_status("counted", |s| {
        (s.fleet_resyncs, s.fleet_deltas_replaced) == (1, 3)
    })
    .await;
    h.stop();
    assert!(matches!(next_event(&mut h).await, RibInEvent::Down { .. }));
    h.task.await.unwrap();
}
