//! Findings from fabricated facts: the two-uplink node of the lab, broken and fixed.

use std::net::IpAddr;
use std::path::Path;

use super::*;
use crate::doctor::facts::PeerPath;
use crate::doctor::rtnl::{Addr, Link, Rule};
use crate::doctor::x509::CertInfo;
use crate::doctor::Report;
use crate::signals::sockdiag::DiagSocket;

const CFG: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor-a, address: 198.51.100.1, remote_as: 65000, local_address: 198.51.100.2}]
checks:
  - {name: web_tcp, type: tcp, target: "203.0.113.10:80"}
  - {name: web_https, type: https, url: "https://203.0.113.10/healthz", insecure: true}
signals: [{name: hs, type: handshakes, ports: [80]}]
vips: [{name: web, prefixes: [203.0.113.10/32], checks: [web_tcp, web_https]}]
"#;

const LO: u32 = 1;
const A: u32 = 2;
const B: u32 = 3;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn route(oif: u32, gw: Option<&str>, table: u32) -> Route {
    Route {
        family: libc::AF_INET as u8,
        dst: None,
        table,
        kind: 1,
        oifs: vec![oif],
        gateway: gw.map(ip),
        prefsrc: None,
    }
}

fn listener(local: &str, port: u16, backlog: u32) -> DiagSocket {
    DiagSocket {
        family: 2,
        state: TCP_LISTEN,
        retrans: 0,
        local: ip(local),
        local_port: port,
        remote: ip("0.0.0.0"),
        remote_port: 0,
        expires_ms: 0,
        rqueue: 0,
        wqueue: backlog,
        last_recv_ms: None,
    }
}

/// The lab's node with the return path broken: sessions on A, default route on B, no rule.
fn broken() -> (Config, Facts) {
    let cfg = crate::config::parse(Path::new("vw.yaml"), CFG).unwrap();
    let link = |index, name: &str, loopback| Link {
        index,
        name: name.into(),
        up: true,
        loopback,
        kind: None,
    };
    let addr = |ifindex, a: &str, prefix_len| Addr {
        ifindex,
        addr: ip(a),
        prefix_len,
    };
    let mut f = Facts {
        links: vec![
            link(LO, "lo", true),
            link(A, "up-a", false),
            link(B, "up-b", false),
        ],
        addrs: Ok(vec![
            addr(LO, "127.0.0.1", 8),
            addr(LO, "203.0.113.10", 32),
            addr(A, "198.51.100.2", 30),
            addr(B, "198.51.100.10", 30),
        ]),
        rules: Ok(vec![Rule {
            family: 2,
            priority: 32766,
            src: None,
            table: 254,
        }]),
        routes: Ok(vec![route(B, Some("198.51.100.9"), 254)]),
        listeners: Ok(vec![
            listener("203.0.113.10", 80, 511),
            listener("0.0.0.0", 443, 4096),
        ]),
        peers: vec![PeerPath {
            name: "tor-a".into(),
            session: Lookup {
                dst: ip("198.51.100.1"),
                src: Some(ip("198.51.100.2")),
                route: Ok(route(A, None, 254)),
            },
            from_vips: vec![Lookup {
                dst: ip("198.51.100.1"),
                src: Some(ip("203.0.113.10")),
                route: Ok(route(A, None, 254)),
            }],
        }],
        replies: vec![Lookup {
            dst: ip("192.0.2.1"),
            src: Some(ip("203.0.113.10")),
            route: Ok(route(B, Some("198.51.100.9"), 254)),
        }],
        rpf_counter: Ok((10, 14, 1.0)),
        conntrack: Err(crate::signals::conntrack::NOT_LOADED.into()),
        certs: vec![(
            "web_https".into(),
            Ok(CertInfo {
                subject: "vip.example".into(),
                not_after: 1_000_000 + 5 * 86_400,
            }),
        )],
        sessions: Ok(vec![("tor-a".into(), "established".into())]),
        now_unix: 1_000_000,
        ..Facts::default()
    };
    for (k, v) in [
        ("net.core.somaxconn", 4096),
        ("net.ipv4.conf.all.rp_filter", 0),
        ("net.ipv4.conf.up-a.rp_filter", 0),
        ("net.ipv4.conf.up-b.rp_filter", 1),
    ] {
        f.sysctl.insert(k.into(), Ok(v));
    }
    (cfg, f)
}

fn find<'a>(fs: &'a [Finding], topic: &str, level: Level) -> Vec<&'a Finding> {
    fs.iter()
        .filter(|f| f.topic == topic && f.level == level)
        .collect()
}

#[test]
fn broken_return_path_fails_and_names_the_rule() {
    let (cfg, f) = broken();
    let fs = evaluate(&cfg, &f);
    let rp = find(&fs, "return-path", Level::Fail);
    assert_eq!(rp.len(), 1, "{fs:#?}");
    assert!(rp[0].message.contains("leave by up-b"));
    let rule = find(&fs, "policy-rule", Level::Fail);
    assert_eq!(rule.len(), 1);
    assert!(rule[0].message.contains("no `from 203.0.113.10` rule"));
    assert_eq!(
        rule[0].fix.as_deref(),
        Some("ip route add default via 198.51.100.1 dev up-a table 100 && ip rule add from 203.0.113.10/32 table 100 priority 100")
    );
    assert_eq!(find(&fs, "rp-filter", Level::Warn)[0].subject, "up-b");
    assert!(find(&fs, "rp-filter-drops", Level::Warn)[0]
        .message
        .contains("grew by 4"));
    // Both checks target the VIP on lo: local.
    assert_eq!(find(&fs, "hairpin", Level::Warn).len(), 2);
    assert!(find(&fs, "certificate", Level::Warn)[0]
        .message
        .contains("5 days"));
    assert_eq!(find(&fs, "vip-address", Level::Ok).len(), 1);
    assert_eq!(find(&fs, "listener", Level::Ok).len(), 2, "{fs:#?}");
    assert_eq!(Report::new(fs).exit_code(), 1);
}

#[test]
fn with_the_rule_and_table_nothing_fails() {
    let (cfg, mut f) = broken();
    f.rules.as_mut().unwrap().push(Rule {
        family: 2,
        priority: 100,
        src: Some((ip("203.0.113.10"), 32)),
        table: 100,
    });
    f.replies[0].route = Ok(route(A, Some("198.51.100.1"), 100));
    f.rpf_counter = Ok((14, 14, 1.0));
    let fs = evaluate(&cfg, &f);
    assert!(find(&fs, "policy-rule", Level::Ok)[0]
        .message
        .contains("lookup 100"));
    assert_eq!(find(&fs, "return-path", Level::Ok).len(), 1);
    let r = Report::new(fs);
    assert_eq!(r.fail, 0, "{}", r.text());
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn vip_on_an_uplink_or_missing_and_no_listener_fail() {
    let (cfg, mut f) = broken();
    f.addrs
        .as_mut()
        .unwrap()
        .retain(|a| a.addr != ip("203.0.113.10"));
    f.listeners = Ok(vec![listener("127.0.0.1", 80, 128)]);
    let fs = evaluate(&cfg, &f);
    let v = find(&fs, "vip-address", Level::Fail);
    assert_eq!(
        v[0].fix.as_deref(),
        Some("ip addr add 203.0.113.10/32 dev lo")
    );
    let l = find(&fs, "listener", Level::Fail);
    assert_eq!(l.len(), 2);
    assert!(l[0].evidence[0].contains("127.0.0.1"));
    f.addrs.as_mut().unwrap().push(Addr {
        ifindex: A,
        addr: ip("203.0.113.10"),
        prefix_len: 32,
    });
    let fs = evaluate(&cfg, &f);
    assert!(find(&fs, "vip-address", Level::Fail)[0]
        .message
        .contains("on uplink up-a"));
}

#[test]
fn unreadable_facts_are_warnings_with_reasons() {
    let (cfg, _) = broken();
    let f = Facts {
        listeners: Err("sock_diag: Operation not permitted (os error 1)".into()),
        ..Facts::default()
    };
    let fs = evaluate(&cfg, &f);
    assert!(
        fs.iter()
            .all(|x| x.level != Level::Fail || x.topic == "hairpin"),
        "{fs:#?}"
    );
    assert!(find(&fs, "listener", Level::Warn)[0]
        .message
        .contains("not permitted"));
    assert!(!find(&fs, "session", Level::Warn).is_empty());
}

#[test]
fn arp_and_backlog_and_conntrack() {
    let (cfg, mut f) = broken();
    // VIP inside uplink A's subnet (L2 DSR), ARP defaults.
    f.addrs.as_mut().unwrap().push(Addr {
        ifindex: A,
        addr: ip("203.0.113.1"),
        prefix_len: 24,
    });
    f.listeners = Ok(vec![listener("0.0.0.0", 80, 4096), listener("::", 443, 10)]);
    f.conntrack = Ok((95, 100));
    let fs = evaluate(&cfg, &f);
    assert!(find(&fs, "arp", Level::Warn)[0]
        .fix
        .as_deref()
        .unwrap()
        .contains("arp_ignore=1"));
    assert!(find(&fs, "backlog", Level::Warn)[0]
        .message
        .contains("4096 = net.core.somaxconn"));
    assert_eq!(find(&fs, "conntrack", Level::Fail).len(), 1);
    f.sysctl
        .insert("net.ipv4.conf.up-a.arp_ignore".into(), Ok(1));
    f.sysctl
        .insert("net.ipv4.conf.all.arp_announce".into(), Ok(2));
    let fs = evaluate(&cfg, &f);
    assert!(find(&fs, "arp", Level::Warn).is_empty());
}

#[test]
fn fleet_guard_names_the_router_side_fix() {
    use crate::control::{FleetPeerView, FleetVipView};
    let (mut cfg, mut f) = broken();
    cfg.fleet = Some(crate::config::FleetConfig {
        unhealthy_community: crate::route::Community(0),
        settle: std::time::Duration::from_secs(3),
        fail_open_dwell: std::time::Duration::from_secs(1),
        stop_hold_limit: std::time::Duration::from_secs(60),
    });
    let peer = |name: &str, view: &str, reason: &str, ms: Option<u64>| FleetPeerView {
        peer: name.into(),
        view: view.into(),
        announcers: Vec::new(),
        guard: "held".into(),
        guard_reason: reason.into(),
        mark_propagation_ms: ms,
    };
    f.fleet = vec![(
        "web".into(),
        FleetVipView {
            guard: "held".into(),
            min_healthy_others: 1,
            when_blind: "hold".into(),
            peers: vec![
                peer("tor-a", "full", "203.0.113.10/32: doubt: 2 paths without a node identity (the ToR strips large communities? configure send-community large)", None),
                peer("tor-b", "full", "", Some(4200)),
                peer("tor-c", "partial", "", None),
            ],
            ..FleetVipView::default()
        },
    )];
    let out = evaluate(&cfg, &f);
    let fails = find(&out, "fleet-guard", Level::Fail);
    assert_eq!(fails.len(), 1, "{out:#?}");
    assert!(fails[0]
        .fix
        .as_deref()
        .unwrap()
        .contains("send-community large"));
    let warns = find(&out, "fleet-guard", Level::Warn);
    assert_eq!(warns.len(), 2, "{warns:#?}");
    assert!(warns[0].message.contains("4200 ms"), "{}", warns[0].message);
    assert!(warns[0].fix.as_deref().unwrap().contains("at least 6s"));
    assert!(warns[1].fix.as_deref().unwrap().contains("add paths tx"));
    // A clean view is one ok line.
    f.fleet[0].1.peers = vec![peer("tor-a", "full", "", Some(200))];
    let out = evaluate(&cfg, &f);
    assert_eq!(find(&out, "fleet-guard", Level::Ok).len(), 1);
    assert!(find(&out, "fleet-guard", Level::Warn).is_empty());
}

#[test]
fn a_weighted_vip_gets_a_note_on_which_routers_use_it() {
    let (cfg, facts) = broken();
    assert!(evaluate(&cfg, &facts).iter().all(|f| f.topic != "weight"));
    let text = CFG.replace(
        "checks: [web_tcp, web_https]}",
        "checks: [web_tcp, web_https], weight: {capacity: 10Gbps}}",
    );
    let cfg = crate::config::parse(Path::new("d.yaml"), &text).unwrap();
    let notes: Vec<Finding> = evaluate(&cfg, &facts)
        .into_iter()
        .filter(|f| f.topic == "weight")
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].level, Level::Ok);
    assert!(
        notes[0].message.contains("up to 10 Gbit/s"),
        "{}",
        notes[0].message
    );
    assert!(notes[0].message.contains("BIRD 2 and GoBGP ignore it"));
}

/// Issue 22: a host without the VIP gets one FAIL, "add the VIP", not one per consequence
/// (no route from it, replies, the policy rule) with an `ip rule` fix that cannot help yet.
#[test]
fn a_missing_vip_is_one_fail_with_the_fix_that_adds_it() {
    let (cfg, mut f) = broken();
    f.addrs
        .as_mut()
        .unwrap()
        .retain(|a| a.addr != ip("203.0.113.10"));
    f.listeners = Ok(vec![
        listener("0.0.0.0", 80, 511),
        listener("0.0.0.0", 443, 511),
    ]);
    // What the kernel answers for lookups from an address the host does not have.
    f.peers[0].from_vips[0].route = Err("Invalid argument (os error 22)".into());
    f.replies[0].route = Err("Invalid argument (os error 22)".into());
    let fs = evaluate(&cfg, &f);
    let fails: Vec<&Finding> = fs.iter().filter(|x| x.level == Level::Fail).collect();
    assert_eq!(fails.len(), 1, "{fails:#?}");
    assert_eq!(fails[0].topic, "vip-address");
    assert_eq!(
        fails[0].fix.as_deref(),
        Some("ip addr add 203.0.113.10/32 dev lo")
    );
    assert!(
        fails[0].message.contains("add the VIP"),
        "{}",
        fails[0].message
    );
}

/// Issue 22: a `listener` check counts: nothing listening on its address and port is a FAIL
/// naming both, not `0 fail`.
#[test]
fn a_silent_listener_check_fails_naming_address_and_port() {
    let text = CFG
        .replace(
            "checks:\n",
            "checks:\n  - {name: web_listen, type: listener, address: 127.0.0.1, port: 8080}\n",
        )
        .replace(
            "checks: [web_tcp, web_https]",
            "checks: [web_tcp, web_https, web_listen]",
        );
    let cfg = crate::config::parse(Path::new("vw.yaml"), &text).unwrap();
    let (_, mut f) = broken();
    let fs = evaluate(&cfg, &f);
    let l: Vec<&Finding> = find(&fs, "listener", Level::Fail)
        .into_iter()
        .filter(|x| x.subject == "127.0.0.1:8080")
        .collect();
    assert_eq!(l.len(), 1, "{fs:#?}");
    assert!(l[0]
        .message
        .contains("check web_listen (listener): nothing listens on 127.0.0.1:8080"));
    f.listeners
        .as_mut()
        .unwrap()
        .push(listener("0.0.0.0", 8080, 511));
    let fs = evaluate(&cfg, &f);
    assert!(find(&fs, "listener", Level::Fail).is_empty(), "{fs:#?}");
    assert!(find(&fs, "listener", Level::Ok)
        .iter()
        .any(|x| x.subject == "127.0.0.1:8080"));
}
