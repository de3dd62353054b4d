//! The session's feed (`bgp::feed`) into the view when the daemon falls behind: no change is lost,
//! and while a peer is behind the guard never counts its possibly stale announcers.
//!
//! The channel is a real bounded tokio channel used without a runtime (`try_*` only): a capacity
//! of 2 is the peer's reserved slot plus one.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tokio::sync::mpsc;

use crate::bgp::feed::Feed;
use crate::bgp::rib_in::{PathAttrs, PathKey, PeerTable, RibInEvent, RibInUpdate};
use crate::fleet::*;
use crate::route::{Family, Prefix};

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn v4() -> Prefix {
    "203.0.113.10/32".parse().unwrap()
}

fn v6() -> Prefix {
    "2001:db8::10/128".parse().unwrap()
}

fn view() -> FleetView {
    FleetView::new(
        ME,
        65101,
        "65101:666".parse().unwrap(),
        Duration::from_secs(3),
        [v4(), v6()],
    )
}

fn announce(prefix: Prefix, path_id: u32, node: Ipv4Addr, marked: bool) -> RibInUpdate {
    RibInUpdate {
        announced: vec![(PathKey { prefix, path_id }, prefix.family())],
        attrs: PathAttrs {
            communities: if marked {
                vec!["65101:666".parse().unwrap()]
            } else {
                vec![]
            },
            large_communities: vec![identity_community(65101, node)],
            ..PathAttrs::default()
        },
        ..RibInUpdate::default()
    }
}

fn withdraw(prefix: Prefix, path_id: u32) -> RibInUpdate {
    RibInUpdate {
        withdrawn: vec![PathKey { prefix, path_id }],
        ..RibInUpdate::default()
    }
}

/// What the daemon does with one event.
fn deliver(v: &mut FleetView, ev: RibInEvent, now: Instant) {
    match ev {
        RibInEvent::Up {
            peer,
            add_path_v4,
            add_path_v6,
        } => v.peer_up(&peer, add_path_v4, add_path_v6, now),
        RibInEvent::Update { peer, update } => {
            v.apply(&peer, &update);
        }
        RibInEvent::Down { peer } => v.peer_down(&peer),
        RibInEvent::Behind { peer } => v.behind(&peer),
        RibInEvent::Resync { peer, table } => v.resync(&peer, &table, now),
    }
}

/// The daemon reads up to `n` events; true if the channel is now empty.
fn consume(rx: &mut mpsc::Receiver<RibInEvent>, v: &mut FleetView, n: usize, now: Instant) -> bool {
    for _ in 0..n {
        match rx.try_recv() {
            Ok(ev) => deliver(v, ev, now),
            Err(_) => return true,
        }
    }
    rx.is_empty()
}

/// Everything one peer shows, comparable.
fn shown(v: &FleetView, now: Instant) -> Vec<(Prefix, ViewState, Vec<Announcer>)> {
    [v4(), v6()]
        .into_iter()
        .flat_map(|p| {
            v.snapshot(&p, now)
                .into_iter()
                .map(move |s| (p, s.state, s.announcers))
        })
        .collect()
}

fn spec(when_blind: WhenBlind) -> GuardSpec {
    GuardSpec {
        min_healthy_others: 1,
        when_blind,
        settle: Duration::ZERO,
        dwell: Duration::from_secs(1),
    }
}

#[test]
fn resync_replaces_the_peers_paths_and_keeps_others() {
    let now = Instant::now();
    let mut v = view();
    v.peer_up("tor1", true, true, now);
    v.peer_up("tor2", true, true, now);
    v.apply(
        "tor1",
        &announce(v4(), 1, Ipv4Addr::new(10, 0, 0, 2), false),
    );
    v.apply(
        "tor1",
        &announce(v4(), 2, Ipv4Addr::new(10, 0, 0, 3), false),
    );
    v.apply(
        "tor2",
        &announce(v4(), 7, Ipv4Addr::new(10, 0, 0, 2), false),
    );
    let mut t = PeerTable::new(true, false);
    t.apply(&announce(v4(), 2, Ipv4Addr::new(10, 0, 0, 3), true));
    t.apply(&announce(v4(), 3, ME, false));
    t.apply(&RibInUpdate {
        end_of_rib: Some(Family::Ipv4Unicast),
        ..RibInUpdate::default()
    });
    v.behind("tor1");
    assert_eq!(v.state("tor1", Family::Ipv4Unicast, now), ViewState::Behind);
    v.resync("tor1", &t, now);
    let s = v.snapshot(&v4(), now);
    assert_eq!(s[0].state, ViewState::Full);
    // Path 1 is gone, path 2 now marked, our own path 3 never stored; tor2 untouched.
    assert_eq!(s[0].announcers.len(), 1);
    assert!(s[0].announcers[0].marked && s[0].announcers[0].path_id == 2);
    assert_eq!(s[1].announcers.len(), 1);
    assert_eq!(
        v.state("tor1", Family::Ipv6Unicast, now),
        ViewState::Partial
    );
    assert_eq!((v.counters.behind, v.counters.resyncs), (1, 1));
}

#[test]
fn behind_peer_counts_nothing_and_holds_even_when_blind_would_leave() {
    let now = Instant::now();
    let mut v = view();
    v.peer_up("tor1", true, true, now + Duration::from_secs(10));
    v.apply(
        "tor1",
        &announce(v4(), 1, Ipv4Addr::new(10, 0, 0, 2), false),
    );
    let later = now + Duration::from_secs(60);
    let c = count_others(&v, &v4(), later);
    assert_eq!(c.healthy.len(), 1);
    v.behind("tor1");
    let c = count_others(&v, &v4(), later);
    assert!(c.healthy.is_empty() && c.loading && !c.blind());
    let mut g = Gate::default();
    let sp = spec(WhenBlind::Leave);
    let wish = Wish {
        leave: true,
        forced: false,
        drained: true,
    };
    g.step(&sp, wish, &v, &[v4()], later);
    let o = g.step(&sp, wish, &v, &[v4()], later);
    assert_eq!(o.phase, GatePhase::Held, "a behind peer must hold");
    let why = g.held_reason().unwrap();
    assert!(why.contains("resync"), "{why}");
}

/// The defect: channel full, then the withdrawal of the only other announcer. It used to be
/// dropped (the view kept showing that announcer as healthy until the session restarted).
#[test]
fn a_withdrawal_behind_a_full_channel_is_not_lost() {
    let now = Instant::now();
    let other = Ipv4Addr::new(10, 0, 0, 2);
    let (tx, mut rx) = mpsc::channel(2);
    let mut v = view();
    let mut feed = Feed::new(tx, Arc::from("tor1"));
    assert!(feed.try_ready());
    feed.up(true, true);
    assert!(consume(&mut rx, &mut v, 1, now));
    // The announcement fills the channel; the withdrawal finds it full.
    feed.update(Box::new(announce(v4(), 1, other, false)));
    assert!(!feed.is_behind());
    feed.update(Box::new(withdraw(v4(), 1)));
    assert!(feed.is_behind());
    // The daemon catches up with what is queued: the announcement, then the marker.
    assert!(consume(&mut rx, &mut v, 10, now));
    assert_eq!(v.state("tor1", Family::Ipv4Unicast, now), ViewState::Behind);
    let c = count_others(&v, &v4(), now + Duration::from_secs(60));
    assert!(c.healthy.is_empty(), "a stale announcer counted: {c:?}");
    // Room again: the reserved slot comes back first, then the resync.
    assert!(feed.try_catch_up());
    assert!(consume(&mut rx, &mut v, 10, now));
    assert_eq!(
        v.state("tor1", Family::Ipv4Unicast, now),
        ViewState::Loading
    );
    assert_eq!(v.stored_paths(), 0);
    assert_eq!((feed.resyncs, feed.deltas_replaced), (1, 1));
    // The reserved slot is held again: the next episode can be announced too.
    feed.update(Box::new(announce(v4(), 2, other, false)));
    feed.update(Box::new(announce(v4(), 3, other, false)));
    assert!(feed.is_behind());
    assert!(!consume(&mut rx, &mut v, 1, now));
    assert!(consume(&mut rx, &mut v, 1, now));
    assert!(v.is_behind("tor1"));
}

#[test]
fn a_lost_up_is_marked_behind_and_the_resync_brings_the_peer_up() {
    let now = Instant::now();
    let (tx, mut rx) = mpsc::channel(2);
    let filler = tx.clone();
    let mut v = view();
    let mut feed = Feed::new(tx, Arc::from("tor1"));
    assert!(feed.try_ready());
    filler
        .try_send(RibInEvent::Down { peer: "x".into() })
        .unwrap();
    feed.up(true, false);
    feed.update(Box::new(announce(
        v4(),
        1,
        Ipv4Addr::new(10, 0, 0, 2),
        false,
    )));
    assert!(consume(&mut rx, &mut v, 10, now));
    assert_eq!(v.state("tor1", Family::Ipv4Unicast, now), ViewState::Behind);
    assert!(feed.try_catch_up());
    assert!(consume(&mut rx, &mut v, 10, now));
    assert_eq!(
        v.state("tor1", Family::Ipv4Unicast, now),
        ViewState::Loading
    );
    assert_eq!(
        v.state("tor1", Family::Ipv6Unicast, now),
        ViewState::Partial
    );
    assert_eq!(v.stored_paths(), 1);
}

#[test]
fn down_reaches_the_view_even_when_behind() {
    use futures_util::FutureExt;
    let now = Instant::now();
    let (tx, mut rx) = mpsc::channel(2);
    let mut v = view();
    let mut feed = Feed::new(tx, Arc::from("tor1"));
    assert!(feed.try_ready());
    feed.up(true, true);
    feed.update(Box::new(announce(
        v4(),
        1,
        Ipv4Addr::new(10, 0, 0, 2),
        false,
    )));
    assert!(feed.is_behind());
    assert!(consume(&mut rx, &mut v, 10, now));
    // Room for the Down (the reserved slot was spent on the marker).
    assert!(feed.down().now_or_never().is_some());
    assert!(consume(&mut rx, &mut v, 10, now));
    assert_eq!(v.state("tor1", Family::Ipv4Unicast, now), ViewState::Down);
    assert!(!v.is_behind("tor1"));
}

#[derive(Clone, Debug)]
enum Op {
    /// The peer sends an UPDATE.
    Announce {
        v6: bool,
        path_id: u32,
        node: u8,
        marked: bool,
    },
    Withdraw {
        v6: bool,
        path_id: u32,
    },
    EndOfRib(bool),
    Disable(bool),
    /// The daemon reads up to this many events.
    Consume(usize),
    /// The driver sees room (it waits for it beside its other events).
    CatchUp,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<bool>(), 0u32..4, 1u8..4, any::<bool>()).prop_map(|(v6, path_id, node, marked)| {
            Op::Announce { v6, path_id, node, marked }
        }),
        8 => (any::<bool>(), 0u32..4).prop_map(|(v6, path_id)| Op::Withdraw { v6, path_id }),
        1 => any::<bool>().prop_map(Op::EndOfRib),
        1 => any::<bool>().prop_map(Op::Disable),
        8 => (0usize..4).prop_map(Op::Consume),
        3 => Just(Op::CatchUp),
    ]
}

fn update_of(op: &Op) -> Option<RibInUpdate> {
    let prefix = |six: bool| if six { v6() } else { v4() };
    let fam = |v6: bool| {
        if v6 {
            Family::Ipv6Unicast
        } else {
            Family::Ipv4Unicast
        }
    };
    Some(match *op {
        Op::Announce {
            v6,
            path_id,
            node,
            marked,
        } => announce(prefix(v6), path_id, Ipv4Addr::new(10, 0, 0, node), marked),
        Op::Withdraw { v6, path_id } => withdraw(prefix(v6), path_id),
        Op::EndOfRib(v6) => RibInUpdate {
            end_of_rib: Some(fam(v6)),
            ..RibInUpdate::default()
        },
        Op::Disable(v6) => RibInUpdate {
            disable: vec![(fam(v6), "malformed".into())],
            ..RibInUpdate::default()
        },
        Op::Consume(_) | Op::CatchUp => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random UPDATEs, a daemon that reads at random moments from a small channel, the driver
    /// catching up at random moments. Whenever the daemon has read everything queued, the view
    /// either knows the peer is behind (and the guard counts none of its announcers) or equals a
    /// reference view fed every UPDATE directly; in the end it always equals it.
    #[test]
    fn the_view_is_exact_or_knows_it_is_behind(
        cap in 2usize..5,
        add_path in any::<(bool, bool)>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let now = Instant::now();
        let (tx, mut rx) = mpsc::channel(cap);
        let mut feed = Feed::new(tx, Arc::from("tor1"));
        prop_assert!(feed.try_ready());
        let (mut v, mut reference) = (view(), view());
        feed.up(add_path.0, add_path.1);
        reference.peer_up("tor1", add_path.0, add_path.1, now);
        let check = |v: &FleetView, reference: &FleetView| -> Result<(), TestCaseError> {
            if v.is_behind("tor1") {
                for p in [v4(), v6()] {
                    prop_assert!(count_others(v, &p, now).healthy.is_empty());
                }
            } else {
                prop_assert_eq!(shown(v, now), shown(reference, now));
            }
            Ok(())
        };
        for op in &ops {
            if let Some(u) = update_of(op) {
                reference.apply("tor1", &u);
                feed.update(Box::new(u));
                continue;
            }
            match op {
                Op::Consume(n) => {
                    if consume(&mut rx, &mut v, *n, now) {
                        check(&v, &reference)?;
                    }
                }
                _ => {
                    feed.try_catch_up();
                }
            }
        }
        // Drain and catch up until settled (at most a few rounds: each frees the channel).
        for _ in 0..4 {
            consume(&mut rx, &mut v, usize::MAX, now);
            feed.try_catch_up();
        }
        consume(&mut rx, &mut v, usize::MAX, now);
        prop_assert!(!feed.is_behind() && !v.is_behind("tor1"));
        prop_assert_eq!(shown(&v, now), shown(&reference, now));
        prop_assert_eq!(feed.table().map(PeerTable::len), Some(v.stored_paths() + own_paths(&feed)));
    }
}

/// Paths of ours in the session's table (the view skips them).
fn own_paths(feed: &Feed) -> usize {
    feed.table().map_or(0, |t| {
        t.paths()
            .filter(|(_, _, a)| {
                a.large_communities
                    .iter()
                    .any(|c| c.local1 == IDENTITY_TAG && Ipv4Addr::from(c.local2) == ME)
            })
            .count()
    })
}

#[test]
fn a_gone_daemon_ends_the_wait_for_room() {
    use futures_util::FutureExt;
    let (tx, rx) = mpsc::channel(2);
    let mut feed = Feed::new(tx, Arc::from("tor1"));
    assert!(feed.try_ready());
    feed.up(true, true);
    feed.update(Box::new(withdraw(v4(), 1)));
    assert!(feed.is_behind());
    drop(rx);
    // The driver's wait resolves at once with no slot, and the feed stops waiting.
    assert!(matches!(feed.room().now_or_never(), Some(None)));
    feed.closed();
    assert!(!feed.is_behind());
    feed.update(Box::new(withdraw(v4(), 2)));
    assert!(!feed.is_behind());
}
