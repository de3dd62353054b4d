//! Announce prefixes to one BGP peer for a while, optionally withdraw them before the end, then
//! shut the session down cleanly. A driver for checking the session against real routers.
//!
//! cargo run --example announce -- --peer 127.0.0.2 --remote-as 65000 \
//!     --prefix 203.0.113.10/32 --prefix 2001:db8:10::10/128 --next-hop-v6 2001:db8::10 \
//!     --prepend 1 --community 65101:100 --large-community 65101:1:2 --withdraw-after 20 --seconds 30

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::{mpsc, watch};

use vipwarden::bgp::PeerSpec;
use vipwarden::bgp::{run_peer, Command, PeerIo, PeerStatus, SessionSetup, StopReason};
use vipwarden::route::{
    Community, DesiredRoute, DesiredRoutes, LargeCommunity, Prefix, RouteAttrs,
};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    peer: IpAddr,
    #[arg(long, default_value_t = 179)]
    port: u16,
    #[arg(long)]
    remote_as: u32,
    #[arg(long, default_value_t = 65101)]
    local_as: u32,
    #[arg(long, default_value = "192.0.2.10")]
    router_id: Ipv4Addr,
    #[arg(long)]
    local_address: Option<IpAddr>,
    /// Hold time offered, seconds.
    #[arg(long, default_value_t = 9)]
    hold: u64,
    #[arg(long = "prefix", required = true)]
    prefixes: Vec<Prefix>,
    #[arg(long)]
    next_hop_v4: Option<Ipv4Addr>,
    #[arg(long)]
    next_hop_v6: Option<Ipv6Addr>,
    #[arg(long, default_value_t = 0)]
    prepend: u8,
    #[arg(long)]
    med: Option<u32>,
    #[arg(long = "community")]
    communities: Vec<Community>,
    #[arg(long = "large-community")]
    large_communities: Vec<LargeCommunity>,
    /// Withdraw everything (session stays up) after this many seconds.
    #[arg(long)]
    withdraw_after: Option<u64>,
    /// Stop (withdraw, Cease 6/2) after this many seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

fn snapshot(generation: u64, args: &Args, announce: bool, reason: &str) -> DesiredRoutes {
    let vip: Arc<str> = Arc::from("example");
    let attrs = RouteAttrs {
        med: args.med,
        local_pref: None,
        communities: args.communities.clone(),
        large_communities: args.large_communities.clone(),
        as_path_prepend: args.prepend,
        link_bandwidth: None,
    };
    let routes: BTreeMap<Prefix, DesiredRoute> = if announce {
        args.prefixes
            .iter()
            .map(|p| {
                (
                    *p,
                    DesiredRoute {
                        vip: vip.clone(),
                        attrs: std::sync::Arc::new(attrs.clone()),
                    },
                )
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let mut d = DesiredRoutes::default();
    d.generation = generation;
    d.routes = routes;
    d.reasons = [(vip.clone(), reason.into())].into_iter().collect();
    d.vip_prefixes = std::sync::Arc::new(
        [(vip, args.prefixes.as_slice().into())]
            .into_iter()
            .collect(),
    );
    d
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let setup = SessionSetup {
        local_as: args.local_as,
        router_id: args.router_id,
        peer: PeerSpec {
            name: Arc::from(format!("peer {}", args.peer)),
            address: args.peer,
            remote_as: args.remote_as,
            local_address: args.local_address,
            port: args.port,
            hold_time: Duration::from_secs(args.hold),
            next_hop_v4: args.next_hop_v4,
            next_hop_v6: args.next_hop_v6,
            auth: Default::default(),
            ttl_security: false,
        },
    };
    let (dtx, drx) = watch::channel(Arc::new(snapshot(1, &args, true, "example announces")));
    let (stx, mut srx) = watch::channel(PeerStatus::default());
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let io = PeerIo {
        desired: drx,
        status: stx,
        commands: commands_rx,
        received: None,
    };
    let task = tokio::spawn(run_peer(setup, io));

    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let withdraw_at = args
        .withdraw_after
        .map(|s| started + Duration::from_secs(s));
    let mut withdrawn = false;
    loop {
        let next = match withdraw_at {
            Some(w) if !withdrawn => w.min(deadline),
            _ => deadline,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep_until(next) => {
                if next == deadline {
                    break;
                }
                withdrawn = true;
                let _ = dtx.send(Arc::new(snapshot(2, &args, false, "example withdraws")));
            }
            r = srx.changed() => {
                if r.is_err() {
                    break;
                }
                let s = srx.borrow_and_update().clone();
                tracing::debug!("status: {s:?}");
            }
        }
    }
    let _ = commands.send(Command::Stop(StopReason::Shutdown(
        "announce example finished".to_string(),
    )));
    let _ = task.await;
    println!("final status: {:?}", *srx.borrow());
}
