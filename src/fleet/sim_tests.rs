//! Simulated fabric: N nodes, each with its own view and guard, behind two ToRs that send every
//! path (or only their best path) back to every node after a propagation delay.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::bgp::rib_in::{PathAttrs, PathKey, RibInUpdate};
use crate::route::{Community, Family, Prefix};

const TICK: Duration = Duration::from_millis(50);
const TORS: [&str; 2] = ["bird", "frr"];

fn vip() -> Prefix {
    "203.0.113.10/32".parse().unwrap()
}

fn unhealthy() -> Community {
    "65101:666".parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Node {
    id: Ipv4Addr,
    healthy: bool,
    guard: Guard,
    view: FleetView,
    /// What this node announces: None = withdrawn, Some(marked).
    route: Option<bool>,
    last: GuardOutput,
}

/// One ToR's table: per node, None or Some(marked).
type Rib = Vec<Option<bool>>;

struct Sim {
    spec: GuardSpec,
    delay: Duration,
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// links[t][n]: node n's session with ToR t is up.
    links: Vec<Vec<bool>>,
    /// add_path[t]: ToR t sends all paths (else its best path only).
    add_path: [bool; 2],
    history: VecDeque<(Instant, Vec<Rib>)>,
    /// delivered[n][t]: what node n has been told ToR t holds (path id = index + 1).
    delivered: Vec<Vec<Rib>>,
    /// Ticks at which no ToR held the VIP.
    dark_ticks: usize,
}

impl Sim {
    fn new(n: usize, spec: GuardSpec, delay: Duration) -> Sim {
        let start = Instant::now();
        let nodes = (0..n)
            .map(|i| Node {
                id: Ipv4Addr::new(10, 0, 0, i as u8 + 1),
                healthy: true,
                guard: Guard::default(),
                view: FleetView::new(
                    Ipv4Addr::new(10, 0, 0, i as u8 + 1),
                    unhealthy(),
                    ms(3000),
                    [vip()],
                ),
                route: Some(false),
                last: GuardOutput::Pass,
            })
            .collect();
        let mut s = Sim {
            spec,
            delay,
            start,
            now: start,
            nodes,
            links: vec![vec![true; n]; 2],
            add_path: [true, true],
            history: VecDeque::new(),
            delivered: vec![vec![vec![None; n]; 2]; n],
            dark_ticks: 0,
        };
        for i in 0..n {
            for t in TORS {
                s.nodes[i].view.peer_up(t, true, true, start);
            }
        }
        s
    }

    fn at(&self, secs_ms: u64) -> Instant {
        self.start + ms(secs_ms)
    }

    fn rib_now(&self) -> Vec<Rib> {
        (0..2)
            .map(|t| {
                self.nodes
                    .iter()
                    .enumerate()
                    .map(|(n, node)| if self.links[t][n] { node.route } else { None })
                    .collect()
            })
            .collect()
    }

    fn step(&mut self) {
        self.now += TICK;
        let now = self.now;
        for node in &mut self.nodes {
            let out = node
                .guard
                .step(&self.spec, !node.healthy, &node.view, &[vip()], now);
            node.route = match &out {
                GuardOutput::Pass => node.healthy.then_some(false),
                GuardOutput::Marked { .. } => Some(true),
                GuardOutput::Leave(_) => None,
            };
            node.last = out;
        }
        let rib = self.rib_now();
        if rib.iter().all(|r| r.iter().all(Option::is_none)) {
            self.dark_ticks += 1;
        }
        self.history.push_back((now, rib));
        // What each node sees is the ToRs' table as it was `delay` ago.
        while self.history.len() > 1 && self.history[1].0 + self.delay <= now {
            self.history.pop_front();
        }
        let seen = self.history[0].1.clone();
        if self.history[0].0 + self.delay > now {
            return;
        }
        for n in 0..self.nodes.len() {
            for t in 0..2 {
                if !self.links[t][n] {
                    continue;
                }
                let shown = self.shown(&seen[t], t);
                let old = std::mem::replace(&mut self.delivered[n][t], shown.clone());
                for (m, (o, s)) in old.iter().zip(&shown).enumerate() {
                    if o != s {
                        let u = update(self.nodes[m].id, m as u32 + 1, *s);
                        self.nodes[n].view.apply(TORS[t], &u);
                    }
                }
            }
        }
    }

    /// What ToR t sends: every path, or its best one (unmarked first, then lowest index).
    fn shown(&self, rib: &Rib, t: usize) -> Rib {
        if self.add_path[t] {
            return rib.clone();
        }
        let best = rib
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|m| (m, i)))
            .min();
        (0..rib.len())
            .map(|i| match best {
                Some((m, b)) if b == i => Some(m),
                _ => None,
            })
            .collect()
    }

    fn run_until(&mut self, t: Instant) {
        while self.now < t {
            self.step();
        }
    }

    fn set_link(&mut self, t: usize, n: usize, up: bool, add_path: bool) {
        self.links[t][n] = up;
        if up {
            self.nodes[n]
                .view
                .peer_up(TORS[t], add_path, add_path, self.now);
        } else {
            self.nodes[n].view.peer_down(TORS[t]);
        }
        self.delivered[n][t] = vec![None; self.nodes.len()];
    }

    fn routes(&self) -> Vec<Option<bool>> {
        self.nodes.iter().map(|n| n.route).collect()
    }
}

fn update(node: Ipv4Addr, path_id: u32, r: Option<bool>) -> RibInUpdate {
    let key = PathKey {
        prefix: vip(),
        path_id,
    };
    match r {
        None => RibInUpdate {
            withdrawn: vec![key],
            ..RibInUpdate::default()
        },
        Some(marked) => RibInUpdate {
            announced: vec![(key, Family::Ipv4Unicast)],
            attrs: PathAttrs {
                next_hop: Some("192.0.2.254".parse().unwrap()),
                as_path: vec![65001, 65101],
                as_path_len: 2,
                communities: if marked {
                    vec![unhealthy(), Community::GRACEFUL_SHUTDOWN]
                } else {
                    vec![]
                },
                large_communities: vec![identity_community(65101, node)],
            },
            ..RibInUpdate::default()
        },
    }
}

fn spec(when_blind: WhenBlind) -> GuardSpec {
    GuardSpec {
        min_healthy_others: 1,
        when_blind,
        settle: ms(3000),
    }
}

#[test]
fn one_node_fails_alone_and_leaves() {
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    s.run_until(s.at(5000));
    s.nodes[2].healthy = false;
    s.run_until(s.at(5000 + 3000 + 100));
    assert_eq!(s.routes(), vec![Some(false), Some(false), None]);
    match &s.nodes[2].last {
        GuardOutput::Leave(r) => assert!(r.contains("2 healthy announcers"), "{r}"),
        o => panic!("{o:?}"),
    }
    assert_eq!(s.dark_ticks, 0);
}

#[test]
fn all_fail_within_100ms_stay_marked_then_one_recovers_and_the_others_leave() {
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    s.run_until(s.at(5000));
    s.nodes[0].healthy = false;
    s.run_until(s.at(5050));
    s.nodes[1].healthy = false;
    s.run_until(s.at(5100));
    s.nodes[2].healthy = false;
    s.run_until(s.at(35_000));
    assert_eq!(
        s.routes(),
        vec![Some(true); 3],
        "fail open: all stay, marked"
    );
    for n in &s.nodes {
        let r = n.guard.held_reason().expect("held");
        assert!(
            r.starts_with("held: withdrawing would leave 0 healthy announcers of 203.0.113.10/32 (2 others marked unhealthy"),
            "{r}"
        );
    }
    // Node 0 recovers: it goes unmarked, the other two see it and leave within settle + 2 s.
    s.nodes[0].healthy = true;
    let t = s.now;
    while s.routes() != vec![Some(false), None, None] {
        s.step();
        assert!(s.now - t < ms(5000), "{:?}", s.routes());
    }
    assert!(s.now - t <= ms(3000 + 2000));
    assert_eq!(s.dark_ticks, 0);
}

#[test]
fn staggered_failures_keep_the_last_one() {
    // Failures further apart than settle: the first two leave, each counting a healthy later
    // one; the last finds nobody and holds.
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    for (i, at) in [(0, 5000), (1, 9000), (2, 13_000)] {
        s.run_until(s.at(at));
        s.nodes[i].healthy = false;
    }
    s.run_until(s.at(30_000));
    assert_eq!(s.routes(), vec![None, None, Some(true)]);
    assert_eq!(s.dark_ticks, 0);
    // Failures closer than settle: every node has marked before the first counts; all hold.
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    for (i, at) in [(0, 5000), (1, 6000), (2, 7000)] {
        s.run_until(s.at(at));
        s.nodes[i].healthy = false;
    }
    s.run_until(s.at(30_000));
    assert_eq!(s.routes(), vec![Some(true); 3]);
}

#[test]
fn guard_off_withdraws_at_once_as_before() {
    let mut sp = spec(WhenBlind::Hold);
    sp.min_healthy_others = 0;
    let mut s = Sim::new(3, sp, ms(200));
    s.run_until(s.at(1000));
    for n in &mut s.nodes {
        n.healthy = false;
    }
    s.step();
    assert_eq!(s.routes(), vec![None; 3]);
}

#[test]
fn late_view_holds_instead_of_acting_blind() {
    // Node 0 is unhealthy from the start and its sessions come up late; the others are marked
    // too. With when_blind: leave, a loading table must not count as blind.
    let mut s = Sim::new(3, spec(WhenBlind::Leave), ms(200));
    for t in 0..2 {
        s.set_link(t, 0, false, true);
    }
    for n in &mut s.nodes {
        n.healthy = false;
    }
    s.run_until(s.at(1000));
    for t in 0..2 {
        s.set_link(t, 0, true, true);
    }
    s.run_until(s.at(3100));
    assert_eq!(s.nodes[0].route, Some(true));
    s.run_until(s.at(15_000));
    assert_eq!(s.routes(), vec![Some(true); 3]);
    assert_eq!(s.dark_ticks, 0);
}

#[test]
fn blind_follows_when_blind() {
    for (wb, want) in [(WhenBlind::Hold, Some(true)), (WhenBlind::Leave, None)] {
        let mut s = Sim::new(2, spec(wb), ms(200));
        s.run_until(s.at(1000));
        for t in 0..2 {
            s.set_link(t, 0, false, true);
        }
        s.nodes[0].healthy = false;
        s.run_until(s.at(6000));
        assert_eq!(s.nodes[0].route, want, "{wb:?}");
        if wb == WhenBlind::Hold {
            assert!(s.nodes[0].guard.held_reason().unwrap().contains("blind"));
        }
    }
}

#[test]
fn partial_view_proves_a_healthy_other_once_we_are_marked() {
    // No ADD-PATH anywhere: each ToR sends its best path, which is node 0's own route until
    // node 0 marks it; then the best path is node 1's, which proves a healthy other.
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    s.add_path = [false, false];
    for t in 0..2 {
        for n in 0..3 {
            s.set_link(t, n, true, false);
        }
    }
    s.run_until(s.at(2000));
    s.nodes[0].healthy = false;
    s.run_until(s.at(6000));
    assert_eq!(s.routes(), vec![None, Some(false), Some(false)]);
    // All unhealthy, no ADD-PATH: the best path is a marked node; blind -> hold.
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    s.add_path = [false, false];
    for t in 0..2 {
        for n in 0..3 {
            s.set_link(t, n, true, false);
        }
    }
    for n in &mut s.nodes {
        n.healthy = false;
    }
    s.run_until(s.at(10_000));
    assert_eq!(s.routes(), vec![Some(true); 3]);
}

#[test]
fn partition_one_tor_sees_others_the_other_does_not() {
    // FRR lost its sessions to nodes 1 and 2; BIRD still shows them healthy. Counting across any
    // ToR, node 0 leaves: FRR then has no route at all (the documented limit of "any ToR").
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    s.run_until(s.at(1000));
    s.links[1][1] = false;
    s.links[1][2] = false;
    s.run_until(s.at(2000));
    s.nodes[0].healthy = false;
    s.run_until(s.at(6000));
    assert_eq!(s.routes(), vec![None, Some(false), Some(false)]);
    let frr = s.rib_now()[1].clone();
    assert_eq!(frr, vec![None, None, None]);
    // The other way round: node 0 lost BIRD, and FRR sees nobody else: held.
    let mut s = Sim::new(3, spec(WhenBlind::Hold), ms(200));
    s.run_until(s.at(1000));
    s.set_link(0, 0, false, true);
    s.links[1][1] = false;
    s.links[1][2] = false;
    s.run_until(s.at(2000));
    s.nodes[0].healthy = false;
    s.run_until(s.at(6000));
    assert_eq!(s.nodes[0].route, Some(true));
}

#[test]
fn drain_check_refuses_the_last_healthy() {
    let mut s = Sim::new(2, spec(WhenBlind::Hold), ms(200));
    s.run_until(s.at(1000));
    let now = s.now;
    assert!(drain_check(&s.spec, &s.nodes[0].view, &[vip()], now).is_ok());
    s.nodes[1].healthy = false;
    s.run_until(s.at(2000));
    let e = drain_check(&s.spec, &s.nodes[0].view, &[vip()], s.now).unwrap_err();
    assert_eq!(e.healthy, 0);
    assert_eq!(e.announcers, vec!["10.0.0.2 marked".to_string()]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Random flapping (health changes every 0.1-5 s per node) with propagation under `settle`:
    /// the VIP is never absent from both ToRs, and once a node has been healthy long enough every
    /// unhealthy node has left.
    #[test]
    fn flapping_never_goes_dark(
        n in 2usize..5,
        flips in proptest::collection::vec((0usize..5, 100u64..5000), 1..30),
        delay in 0u64..1500,
    ) {
        let mut s = Sim::new(n, spec(WhenBlind::Hold), ms(delay));
        s.run_until(s.at(2000));
        let mut t = 2000;
        for (i, gap) in flips {
            t += gap;
            s.run_until(s.at(t));
            let i = i % n;
            s.nodes[i].healthy = !s.nodes[i].healthy;
        }
        s.nodes[0].healthy = true;
        s.run_until(s.at(t + 3000 + delay + 2 * 3000 + 500));
        prop_assert_eq!(s.dark_ticks, 0);
        for (i, node) in s.nodes.iter().enumerate() {
            if !node.healthy {
                prop_assert_eq!(node.route, None, "node {} still announced: {:?}", i, node.last);
            }
        }
    }
}
