//! How long a new session waits before its first UPDATE: drives the pure BGP state machine (no
//! sockets) to Established with N prefixes desired and times the peer's KEEPALIVE (the moment the
//! session is up) to the first UPDATE action and to the last message of the table (End-of-RIB).
//! The driver writes each message as soon as it is handed one, so this is the wait on the wire
//! minus the writes. For `testbed/bench-table.sh`-style comparisons without a lab.
//!
//! cargo run --release --example table_send -- --prefixes 100000 --vips 1 --runs 5

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Parser;
use tokio_util::codec::Decoder;

use vipwarden::bgp::fsm::{Action, Fsm, FsmTiming, Input};
use vipwarden::bgp::wire::{self, BgpCodec};
use vipwarden::bgp::{PeerSpec, SessionSetup};
use vipwarden::route::{DesiredRoute, DesiredRoutes, Prefix, RouteAttrs};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    prefixes: u32,
    /// The prefixes are spread over this many VIPs (each with its own MED, so its own UPDATEs).
    #[arg(long, default_value_t = 1)]
    vips: u32,
    #[arg(long, default_value_t = 5)]
    runs: u32,
}

fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(t);
    m.extend_from_slice(body);
    m
}

fn frame(bytes: &[u8]) -> wire::Frame {
    let mut buf = BytesMut::from(bytes);
    BgpCodec
        .decode(&mut buf)
        .expect("a valid frame")
        .expect("a whole frame")
}

/// The ToR's OPEN: AS 65000, hold 90 s, IPv4 and IPv6 unicast, 4-octet AS.
fn peer_open() -> Vec<u8> {
    let caps: [&[u8]; 3] = [
        &[1, 4, 0, 1, 0, 1],
        &[1, 4, 0, 2, 0, 1],
        &[65, 4, 0, 0, 0xFD, 0xE8],
    ];
    let mut params = Vec::new();
    for c in caps {
        params.push(2);
        params.push(c.len() as u8);
        params.extend_from_slice(c);
    }
    let mut body = vec![4];
    body.extend_from_slice(&65000u16.to_be_bytes());
    body.extend_from_slice(&90u16.to_be_bytes());
    body.extend_from_slice(&[198, 51, 100, 1]);
    body.push(params.len() as u8);
    body.extend_from_slice(&params);
    msg(wire::MSG_OPEN, &body)
}

fn desired(n: u32, vips: u32) -> DesiredRoutes {
    let mut d = DesiredRoutes::default();
    let names: Vec<Arc<str>> = (0..vips.max(1))
        .map(|i| Arc::from(format!("vip{i}")))
        .collect();
    let mut by_vip: BTreeMap<Arc<str>, Vec<Prefix>> = BTreeMap::new();
    for i in 0..n {
        // Host routes in the IPv6 documentation range (nothing is sent anywhere anyway).
        let a =
            std::net::Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i));
        let p: Prefix = format!("{a}/128").parse().expect("a prefix");
        let vip = names[(i % vips.max(1)) as usize].clone();
        let attrs = RouteAttrs {
            med: Some(i % vips.max(1)),
            ..RouteAttrs::default()
        };
        by_vip.entry(vip.clone()).or_default().push(p);
        d.routes.insert(
            p,
            DesiredRoute {
                vip,
                attrs: Arc::new(attrs),
            },
        );
    }
    for (v, ps) in by_vip {
        d.reasons.insert(v.clone(), "check web passed 2/2".into());
        Arc::make_mut(&mut d.vip_prefixes).insert(v, ps.into());
    }
    d
}

fn main() {
    let a = Args::parse();
    let table = Arc::new(desired(a.prefixes, a.vips));
    let mut firsts = Vec::new();
    let mut alls = Vec::new();
    for _ in 0..a.runs {
        let setup = SessionSetup {
            local_as: 65101,
            router_id: Ipv4Addr::new(192, 0, 2, 10),
            peer: PeerSpec {
                name: Arc::from("tor1"),
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                remote_as: 65000,
                local_address: None,
                port: 179,
                hold_time: Duration::from_secs(90),
                next_hop_v4: None,
                next_hop_v6: Some("2001:db8::10".parse().expect("an address")),
                auth: Default::default(),
                ttl_security: false,
            },
        };
        let mut fsm = Fsm::new(setup, FsmTiming::default(), HashSet::new());
        fsm.handle(Input::Desired(table.clone()));
        fsm.handle(Input::Connected {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 40000),
        });
        fsm.handle(Input::Frame(frame(&peer_open())));
        let keepalive = frame(&msg(wire::MSG_KEEPALIVE, &[]));
        let t0 = Instant::now();
        let mut first = None;
        let mut last = Duration::ZERO;
        let mut updates = 0usize;
        let mut bytes = 0usize;
        let mut actions = fsm.handle(Input::Frame(keepalive));
        loop {
            for act in &actions {
                if let Action::Send(m) = act {
                    if m.get(18) == Some(&wire::MSG_UPDATE) {
                        first.get_or_insert_with(|| t0.elapsed());
                        updates += 1;
                        bytes += m.len();
                        last = t0.elapsed();
                    }
                }
            }
            // The driver asks for the rest of the table once the first slice is written.
            match fsm.continue_table() {
                Some(more) => actions = more,
                None => break,
            }
        }
        let first = first.unwrap_or(last);
        println!(
            "{} prefixes in {} VIPs: first UPDATE after {:.2} ms, whole table ({updates} UPDATEs, {:.1} MB) after {:.2} ms",
            a.prefixes,
            a.vips,
            first.as_secs_f64() * 1e3,
            bytes as f64 / 1e6,
            last.as_secs_f64() * 1e3
        );
        firsts.push(first);
        alls.push(last);
    }
    firsts.sort();
    alls.sort();
    let mid = firsts.len() / 2;
    println!(
        "median of {} runs: first UPDATE {:.2} ms, whole table {:.2} ms",
        a.runs,
        firsts[mid].as_secs_f64() * 1e3,
        alls[mid].as_secs_f64() * 1e3
    );
}
