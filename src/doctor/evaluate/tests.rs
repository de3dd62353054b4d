//! Findings from fabricated facts: the two-uplink node of the lab, broken and fixed.

use std::net::IpAddr;
use std::path::Path;

use super::*;
use crate::doctor::facts::{
    CertFact, CheckRun, Conntrack, Outcome, PeerPath, RpfSample, Session, Unread,
};
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

fn rpf(before: i64, after: i64) -> RpfSample {
    RpfSample {
        before,
        after,
        secs: 1.0,
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
        rpf_counter: Ok(rpf(10, 14)),
        conntrack: Err(crate::signals::conntrack::ReadError::NotLoaded),
        certs: vec![CertFact {
            check: "web_https".into(),
            cert: Ok(CertInfo {
                subject: "vip.example".into(),
                not_after: 1_000_000 + 5 * 86_400,
            }),
        }],
        sessions: Ok(vec![Session {
            peer: "tor-a".into(),
            state: "established".into(),
        }]),
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
    f.rpf_counter = Ok(rpf(14, 14));
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
        listeners: Err(Unread::SockDiag(
            "Operation not permitted (os error 1)".into(),
        )),
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
    f.conntrack = Ok(Conntrack {
        count: 95,
        max: 100,
    });
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
    f.peers[0].from_vips[0].route = Err(Unread::Rtnetlink("Invalid argument (os error 22)".into()));
    f.replies[0].route = Err(Unread::Rtnetlink("Invalid argument (os error 22)".into()));
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
    assert!(
        l[0].message.contains("nothing listens on 127.0.0.1:8080")
            && l[0].message.contains("check web_listen (listener)"),
        "{}",
        l[0].message
    );
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

/// The lab's node with more checks: a process check on the service, a listener check, an exec
/// check; two VIPs that share them.
const MORE: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor-a, address: 198.51.100.1, remote_as: 65000, local_address: 198.51.100.2}]
checks:
  - {name: web_tcp, type: tcp, target: "203.0.113.10:80"}
  - {name: web_https, type: https, url: "https://203.0.113.10/healthz", insecure: true}
  - {name: nginx, type: process, pid_file: /run/nginx.pid}
  - {name: web_listen, type: listener, port: 80}
  - {name: disk, type: exec, command: [/usr/local/bin/disk-ok, --quiet], interval: 10s, timeout: 2s}
  - {name: api_tcp, type: tcp, target: "203.0.113.11:8443"}
signals: [{name: hs, type: handshakes, ports: [80]}]
vips:
  - {name: web, prefixes: [203.0.113.10/32], checks: [web_tcp, web_https, nginx, web_listen, disk]}
  - {name: web2, prefixes: [203.0.113.12/32], checks: [nginx, web_listen]}
  - {name: api, prefixes: [203.0.113.11/32], checks: [api_tcp]}
"#;

fn more() -> (Config, Facts) {
    let cfg = crate::config::parse(Path::new("vw.yaml"), MORE).unwrap();
    let (_, mut f) = broken();
    // The return path fixed, as in `with_the_rule_and_table_nothing_fails`.
    f.rules.as_mut().unwrap().push(Rule {
        family: 2,
        priority: 100,
        src: Some((ip("203.0.113.0"), 24)),
        table: 100,
    });
    f.replies[0].route = Ok(route(A, Some("198.51.100.1"), 100));
    f.rpf_counter = Ok(rpf(14, 14));
    f.listeners = Ok(vec![
        listener("0.0.0.0", 80, 511),
        listener("0.0.0.0", 443, 511),
    ]);
    for a in ["203.0.113.11", "203.0.113.12"] {
        f.addrs.as_mut().unwrap().push(Addr {
            ifindex: LO,
            addr: ip(a),
            prefix_len: 32,
        });
    }
    f.listeners
        .as_mut()
        .unwrap()
        .push(listener("0.0.0.0", 8443, 511));
    // Every check but the listener passes.
    f.checks = [
        (0, "connected in 0.2 ms"),
        (1, "HTTP 200 in 3.1 ms"),
        (2, "process 4242 running"),
        (4, "exit 0 in 12 ms"),
        (5, "connected in 0.2 ms"),
    ]
    .into_iter()
    .map(|(check, detail)| CheckRun {
        check,
        outcome: Outcome::Pass,
        detail: detail.into(),
        took: std::time::Duration::from_millis(3),
    })
    .collect();
    (cfg, f)
}

fn run_mut(f: &mut Facts, check: usize) -> &mut CheckRun {
    f.checks.iter_mut().find(|r| r.check == check).unwrap()
}

fn fails(fs: &[Finding]) -> Vec<&Finding> {
    fs.iter().filter(|x| x.level == Level::Fail).collect()
}

/// Issue 22: every check type gets a line: process, exec, tcp and https runs are ok lines.
#[test]
fn every_check_gets_a_line() {
    let (cfg, f) = more();
    let fs = evaluate(&cfg, &f);
    assert!(fails(&fs).is_empty(), "{:#?}", fails(&fs));
    let lines = find(&fs, "check", Level::Ok);
    let names: Vec<&str> = lines.iter().map(|x| x.subject.as_str()).collect();
    assert_eq!(
        names,
        ["web_tcp", "web_https", "nginx", "disk", "api_tcp"],
        "{fs:#?}"
    );
    assert!(lines[3]
        .message
        .starts_with("check disk (exec) passes now: exit 0 in 12 ms"));
    // The listener check is answered by sock_diag.
    assert!(fs
        .iter()
        .any(|x| x.topic == "listener" && x.subject == "*:80" && x.level == Level::Ok));
}

/// Issue 22: the service down (process check fails, nothing on ports 80 and 443, the tcp and
/// https checks refused) is one FAIL, with the fix that starts it, not one per VIP and port.
#[test]
fn a_stopped_service_is_one_fail_that_starts_it() {
    let (cfg, mut f) = more();
    f.listeners
        .as_mut()
        .unwrap()
        .retain(|s| s.local_port == 8443);
    for (i, detail) in [
        (0, "connect refused"),
        (1, "connect refused"),
        (2, "process 4242 (pid file /run/nginx.pid) is not running"),
    ] {
        let r = run_mut(&mut f, i);
        r.outcome = Outcome::Fail;
        r.detail = detail.into();
    }
    let fs = evaluate(&cfg, &f);
    let fl = fails(&fs);
    assert_eq!(fl.len(), 1, "{fl:#?}");
    assert_eq!(fl[0].topic, "service");
    assert_eq!(
        fl[0].message,
        "check nginx (process): process 4242 (pid file /run/nginx.pid) is not running: VIPs web, web2 stay withdrawn"
    );
    assert!(fl[0].fix.as_deref().unwrap().contains("/run/nginx.pid"));
    let ev = fl[0].evidence.join("\n");
    for want in [
        "nothing listens on port 80 (wanted on 203.0.113.10:80, 203.0.113.11:80, 203.0.113.12:80, *:80 by check web_tcp (tcp), signal hs (handshakes), check web_listen (listener))",
        "nothing listens on port 443",
        "check web_tcp (tcp) now: connect refused",
        "check web_https (https) now: connect refused",
    ] {
        assert!(ev.contains(want), "{want} not in\n{ev}");
    }
    // The other service (api on 8443) is fine and says so.
    assert!(find(&fs, "check", Level::Ok)
        .iter()
        .any(|x| x.subject == "api_tcp"));

    // Without the process check, the silent ports are the one cause.
    let text = MORE
        .replace(
            "  - {name: nginx, type: process, pid_file: /run/nginx.pid}\n",
            "",
        )
        .replace(", nginx, web_listen", ", web_listen")
        .replace("[nginx, web_listen]", "[web_listen]");
    let cfg = crate::config::parse(Path::new("vw.yaml"), &text).unwrap();
    f.checks.retain(|r| r.check != 2);
    for r in &mut f.checks {
        if r.check > 2 {
            r.check -= 1;
        }
    }
    let fs = evaluate(&cfg, &f);
    let fl = fails(&fs);
    assert_eq!(fl.len(), 1, "{fl:#?}");
    assert_eq!(fl[0].topic, "listener");
    assert!(
        fl[0].message.starts_with("nothing listens on 203.0.113.10:80, 203.0.113.11:80, 203.0.113.12:80, *:80, 203.0.113.10:443, 203.0.113.11:443, 203.0.113.12:443 (no socket on ports 80, 443 at all): check web_tcp (tcp), signal hs (handshakes), check web_listen (listener), check web_https (https) fail"),
        "{}",
        fl[0].message
    );
    assert_eq!(fl[0].evidence.len(), 4, "{:#?}", fl[0].evidence);
}

/// Issue 22: an exec check that fails or hangs is a FAIL with its exit status and time.
#[test]
fn exec_failures_and_timeouts_are_fails_with_status_and_time() {
    let (cfg, mut f) = more();
    let r = run_mut(&mut f, 4);
    r.outcome = Outcome::Fail;
    r.detail = "exit status 3: /var is 97% full".into();
    r.took = std::time::Duration::from_millis(40);
    let fs = evaluate(&cfg, &f);
    let fl = fails(&fs);
    assert_eq!(fl.len(), 1, "{fl:#?}");
    assert_eq!(
        fl[0].message,
        "check disk (exec): `/usr/local/bin/disk-ok --quiet` failed: exit status 3: /var is 97% full after 40.0 ms: VIP web stays withdrawn"
    );
    let r = run_mut(&mut f, 4);
    r.outcome = Outcome::TimedOut;
    r.detail = "timed out after 2000 ms".into();
    r.took = std::time::Duration::from_millis(2001);
    let fs = evaluate(&cfg, &f);
    let fl = fails(&fs);
    assert_eq!(fl.len(), 1, "{fl:#?}");
    assert!(fl[0]
        .message
        .contains("did not finish within its timeout of 2.0 s and was killed"));
    assert!(fl[0]
        .fix
        .as_deref()
        .unwrap()
        .contains("raise the check's timeout"));
}

/// A unit check: inactive is the service down (`systemctl start`); without systemd the fix says
/// to use another check type.
#[test]
fn unit_checks_name_systemctl_or_say_there_is_no_systemd() {
    let text = MORE.replace(
        "{name: nginx, type: process, pid_file: /run/nginx.pid}",
        "{name: nginx, type: unit, unit: nginx.service}",
    );
    let cfg = crate::config::parse(Path::new("vw.yaml"), &text).unwrap();
    let (_, mut f) = more();
    let r = run_mut(&mut f, 2);
    r.outcome = Outcome::Fail;
    r.detail = "unit nginx.service is inactive".into();
    let fs = evaluate(&cfg, &f);
    let fl = fails(&fs);
    assert_eq!(fl.len(), 1, "{fl:#?}");
    assert!(fl[0]
        .fix
        .as_deref()
        .unwrap()
        .starts_with("systemctl start nginx.service"));
    run_mut(&mut f, 2).detail =
        "missing: systemd is not running on this host (no /run/systemd/system)".into();
    let fs = evaluate(&cfg, &f);
    assert!(fails(&fs)[0]
        .fix
        .as_deref()
        .unwrap()
        .contains("use a process or listener check"));
}

/// An http check that fails while its port listens is its own FAIL; one whose VIP is missing is
/// evidence on the missing VIP's FAIL.
#[test]
fn a_failing_http_check_is_a_fail_unless_its_vip_is_missing() {
    let (cfg, mut f) = more();
    let r = run_mut(&mut f, 1);
    r.outcome = Outcome::Fail;
    r.detail = "HTTP 503 in 2.0 ms".into();
    let fs = evaluate(&cfg, &f);
    let fl = fails(&fs);
    assert_eq!(fl.len(), 1, "{fl:#?}");
    assert_eq!(fl[0].topic, "check");
    assert!(fl[0].message.contains("HTTP 503"));
    assert!(fl[0]
        .fix
        .as_deref()
        .unwrap()
        .starts_with("`curl -v https://203.0.113.10/healthz`"));

    f.addrs
        .as_mut()
        .unwrap()
        .retain(|a| a.addr != ip("203.0.113.11"));
    let r = run_mut(&mut f, 5);
    r.outcome = Outcome::TimedOut;
    r.detail = "timed out after 500 ms".into();
    let fs = evaluate(&cfg, &f);
    let vip = fails(&fs)
        .into_iter()
        .find(|x| x.topic == "vip-address")
        .unwrap()
        .clone();
    assert_eq!(vip.subject, "203.0.113.11");
    assert!(vip
        .evidence
        .iter()
        .any(|e| e.contains("check api_tcp (tcp) now: timed out")));
    assert_eq!(fails(&fs).len(), 2, "{:#?}", fails(&fs));
}
