//! Pure evaluation: config + gathered facts -> findings (ok / warn / fail, each with evidence and
//! the command that fixes it). No I/O here.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use super::facts::{Facts, Lookup};
use super::rtnl::Route;
use crate::checks::check_target;
use crate::config::{is_local_by_config, CheckKind, Config, SignalKind};
use crate::signals::sockdiag::TCP_LISTEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Which question: vip-address, listener, session-path, return-path, policy-rule, rp-filter,
    /// rp-filter-drops, arp, hairpin, backlog, conntrack, certificate, session, fleet-guard, weight,
    /// service (a failing process or unit check), check (one run of an exec, tcp, http(s),
    /// process or unit check).
    pub topic: &'static str,
    pub subject: String,
    pub message: String,
    pub evidence: Vec<String>,
    pub fix: Option<String>,
}

fn finding(
    level: Level,
    topic: &'static str,
    subject: impl Into<String>,
    message: String,
) -> Finding {
    Finding {
        level,
        topic,
        subject: subject.into(),
        message,
        evidence: Vec::new(),
        fix: None,
    }
}

impl Finding {
    fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }
    fn fix(mut self, f: impl Into<String>) -> Self {
        self.fix = Some(f.into());
        self
    }
}

/// The VIP addresses doctor reasons about: host prefixes, plus check targets inside wider ones.
pub fn vip_addresses(cfg: &Config) -> Vec<IpAddr> {
    let mut out = BTreeSet::new();
    for v in &cfg.vips {
        for p in v.spec.prefixes.iter() {
            if p.len() == if p.is_ipv4() { 32 } else { 128 } {
                out.insert(p.addr());
            }
        }
    }
    for ch in &cfg.checks {
        if let Some((ip, _)) = check_target(ch) {
            if !ip.is_loopback() && !ip.is_unspecified() && is_local_by_config(cfg, ip) {
                let in_vip = cfg
                    .vips
                    .iter()
                    .flat_map(|v| v.spec.prefixes.iter())
                    .any(|p| {
                        crate::signals::handshakes::AddrMatch {
                            addr: p.addr(),
                            len: p.len(),
                        }
                        .contains(ip)
                    });
                if in_vip {
                    out.insert(ip);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Ports the service must listen on: those the checks probe on VIP addresses and those the
/// handshakes signals watch.
pub fn service_ports(cfg: &Config, vips: &[IpAddr]) -> Vec<u16> {
    let mut out = BTreeSet::new();
    for ch in &cfg.checks {
        if let Some((ip, port)) = check_target(ch) {
            if vips.contains(&ip) {
                out.insert(port);
            }
        }
    }
    for s in &cfg.signals {
        if let SignalKind::Handshakes(h) = &s.kind {
            out.extend(h.ports.iter().copied());
        }
    }
    out.into_iter().collect()
}

fn ip_cmd(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "ip"
    } else {
        "ip -6"
    }
}

fn host_len(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn describe(f: &Facts, r: &Route) -> String {
    let dev: Vec<String> = r.oifs.iter().map(|&i| f.link_name(i)).collect();
    let mut s = format!("dev {}", dev.join(","));
    if let Some(g) = r.gateway {
        s += &format!(" via {g}");
    }
    if let Some(p) = r.prefsrc {
        s += &format!(" src {p}");
    }
    s + &format!(" table {}", table_name(r.table))
}

fn table_name(t: u32) -> String {
    match t {
        254 => "main".into(),
        255 => "local".into(),
        253 => "default".into(),
        t => t.to_string(),
    }
}

fn lookup_text(l: &Lookup) -> String {
    match l.src {
        Some(s) => format!("ip route get {} from {s}", l.dst),
        None => format!("ip route get {}", l.dst),
    }
}

fn oif(l: &Lookup) -> Option<u32> {
    l.route.as_ref().ok().and_then(|r| r.oifs.first().copied())
}

pub fn evaluate(cfg: &Config, f: &Facts) -> Vec<Finding> {
    let vips = vip_addresses(cfg);
    // One root cause, one FAIL: a VIP the host lacks makes every lookup from it fail, and those
    // findings (with fixes that cannot help yet) would bury the one fix that does.
    let missing: BTreeSet<IpAddr> = match &f.addrs {
        Ok(_) => vips
            .iter()
            .copied()
            .filter(|&v| f.holders(v).is_empty())
            .collect(),
        Err(_) => BTreeSet::new(),
    };
    let mut out = Vec::new();
    vip_placement(f, &vips, &mut out);
    let silent = checks::silent_ports(cfg, f, &vips);
    listeners(cfg, f, &vips, &silent, &mut out);
    check_listeners(cfg, f, &vips, &silent, &mut out);
    checks::checks(cfg, f, &vips, &missing, &mut out);
    let sessions = session_paths(cfg, f, &missing, &mut out);
    let uplinks = uplinks(f, &sessions);
    return_paths(f, &vips, &missing, &sessions, &uplinks, &mut out);
    rp_filter(f, &uplinks, &mut out);
    arp(f, &vips, &mut out);
    hairpin(cfg, f, &mut out);
    conntrack(f, &mut out);
    certificates(cfg, f, &mut out);
    daemon_sessions(f, &mut out);
    fleet_guard(cfg, f, &mut out);
    weights(cfg, &mut out);
    out
}

/// What limits the fleet guard at each ToR, from the running daemon's view, with the
/// router-side fix: a ToR that strips communities, gives no view, or whose measured route
/// propagation is slower than `fleet.settle`.
fn fleet_guard(cfg: &Config, f: &Facts, out: &mut Vec<Finding>) {
    let settle = cfg.fleet.as_ref().map(|fl| fl.settle);
    for (vip, fl) in &f.fleet {
        let mut clean = true;
        for p in &fl.peers {
            let r = &p.guard_reason;
            let slow = p
                .mark_propagation_ms
                .zip(settle)
                .filter(|(ms, settle)| u128::from(*ms) > settle.as_millis());
            // (applies, level, what is wrong, the router-side fix)
            let problems = [
                (
                    r.contains("without a node identity"),
                    Level::Fail,
                    format!("{} sends VIP paths without the nodes' identity community: the guard cannot count there and holds", p.peer),
                    "send large communities to the nodes: FRR `neighbor <node> send-community large` (or `all`); BIRD: do not strip bgp_large_community in the export filter".to_string(),
                ),
                (
                    r.contains("our mark has not come back from"),
                    Level::Warn,
                    format!("{} reflects this node's path without its mark: marks may not reach the other nodes", p.peer),
                    "send communities to the nodes: FRR `neighbor <node> send-community` (standard and large); BIRD: keep bgp_community and bgp_large_community in the export filter".to_string(),
                ),
                (
                    p.view == "partial",
                    Level::Warn,
                    format!("{} sends only its best path (no ADD-PATH): the guard has no view there and follows when_blind ({})", p.peer, fl.when_blind),
                    "BIRD `add paths tx;` in the channel; FRR `neighbor <node> addpath-tx-all-paths`; GoBGP add-paths send-max".to_string(),
                ),
                (
                    slow.is_some(),
                    Level::Warn,
                    slow.map(|(ms, settle)| format!("our mark took {ms} ms to come back from {}, more than fleet.settle ({} ms): the guard waits for it there, but a ToR that does not reflect our path (BIRD) may be as slow", p.peer, settle.as_millis())).unwrap_or_default(),
                    slow.map(|(ms, _)| format!("set fleet.settle to at least {}s (and lower the router's advertisement interval for the nodes, e.g. FRR `neighbor <node> advertisement-interval 0`)", ms.div_ceil(1000) + 1)).unwrap_or_default(),
                ),
            ];
            for (applies, level, message, fix) in problems {
                if !applies {
                    continue;
                }
                clean = false;
                let mut finding = finding(
                    level,
                    "fleet-guard",
                    format!("{vip} at {}", p.peer),
                    message,
                )
                .fix(fix);
                if !r.is_empty() {
                    finding = finding.evidence(r.clone());
                }
                out.push(finding);
            }
        }
        if clean && !fl.peers.is_empty() {
            out.push(finding(
                Level::Ok,
                "fleet-guard",
                vip.clone(),
                format!(
                    "{vip}: every ToR gives the guard a usable view ({})",
                    fl.peers
                        .iter()
                        .map(|p| format!("{} {}", p.peer, p.view))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
}

/// A weighted VIP's link bandwidth is used only by routers doing weighted ECMP on it; doctor
/// cannot see the router's software, so it says which do.
fn weights(cfg: &Config, out: &mut Vec<Finding>) {
    for v in &cfg.vips {
        let Some(w) = &v.spec.policy.weight else {
            continue;
        };
        out.push(
            finding(
                Level::Ok,
                "weight",
                v.spec.name.to_string(),
                format!(
                    "vip {} announces RFC 10005 link bandwidth up to {}: FRR (zebra, maximum-paths) turns it into next-hop weights; BIRD 2 and GoBGP ignore it and do plain ECMP",
                    v.spec.name,
                    crate::engine::format_bandwidth(w.capacity.round() as u64)
                ),
            )
            .evidence("FRR: `show bgp ipv4 unicast PREFIX` shows `Extended Community: LB:AS:BYTES` per path; `ip route show PREFIX` shows `weight N` per next hop"),
        );
    }
}

fn vip_placement(f: &Facts, vips: &[IpAddr], out: &mut Vec<Finding>) {
    if let Err(e) = &f.addrs {
        out.push(finding(
            Level::Warn,
            "vip-address",
            "addresses",
            format!("could not list addresses: {e}"),
        ));
        return;
    }
    for &v in vips {
        let holders = f.holders(v);
        let names: Vec<String> = holders.iter().map(|&i| f.link_name(i)).collect();
        let on_uplink: Vec<&String> = holders
            .iter()
            .zip(&names)
            .filter(|(&i, _)| {
                f.link(i)
                    .is_some_and(|l| !l.loopback && l.kind.as_deref() != Some("dummy"))
            })
            .map(|(_, n)| n)
            .collect();
        let ev = format!("ip addr: {v} on [{}]", names.join(", "));
        let add_lo = format!("{} addr add {v}/{} dev lo", ip_cmd(v), host_len(v));
        if holders.is_empty() {
            out.push(
                finding(Level::Fail, "vip-address", v.to_string(), format!("{v} is not an address of this host: traffic for it is not delivered to the service; add the VIP (its session, reply and rule paths are checked once it is there)"))
                    .evidence(ev)
                    .fix(add_lo),
            );
        } else if let Some(up) = on_uplink.first() {
            out.push(
                finding(Level::Fail, "vip-address", v.to_string(), format!("{v} is on uplink {up}: the node answers ARP/ND for it there and every node of the anycast group claims it"))
                    .evidence(ev)
                    .fix(format!("{} addr del {v}/{} dev {up} && {add_lo}", ip_cmd(v), host_len(v))),
            );
        } else {
            out.push(
                finding(
                    Level::Ok,
                    "vip-address",
                    v.to_string(),
                    format!("{v} is on {} (not on an uplink)", names.join(", ")),
                )
                .evidence(ev),
            );
        }
    }
}

/// Per VIP address and service port; a port nothing listens on at all is one cause, reported
/// once by `checks` (in `silent`).
fn listeners(
    cfg: &Config,
    f: &Facts,
    vips: &[IpAddr],
    silent: &BTreeSet<u16>,
    out: &mut Vec<Finding>,
) {
    let mut ports = service_ports(cfg, vips);
    ports.retain(|p| !silent.contains(p));
    let ls = match &f.listeners {
        Ok(l) => l,
        Err(e) => {
            out.push(finding(
                Level::Warn,
                "listener",
                "sock_diag",
                format!("could not list listening sockets: {e}"),
            ));
            return;
        }
    };
    let somaxconn = f.sysctl("net.core.somaxconn");
    for &v in vips {
        for &p in &ports {
            let found = ls.iter().find(|s| {
                s.state == TCP_LISTEN
                    && s.local_port == p
                    && (s.local == v
                        || (s.local.is_unspecified() && (s.local.is_ipv6() || v.is_ipv4())))
            });
            let subject = if v.is_ipv4() {
                format!("{v}:{p}")
            } else {
                format!("[{v}]:{p}")
            };
            let on_port: Vec<String> = ls
                .iter()
                .filter(|s| s.state == TCP_LISTEN && s.local_port == p)
                .map(|s| s.local.to_string())
                .collect();
            let ev = if on_port.is_empty() {
                format!("sock_diag: no listener on port {p}")
            } else {
                format!("sock_diag: port {p} listens on [{}]", on_port.join(", "))
            };
            let Some(l) = found else {
                out.push(
                    finding(Level::Fail, "listener", subject.clone(), format!("nothing listens on {subject}: checks and clients connecting to the VIP are refused"))
                        .evidence(ev)
                        .fix(format!("make the service listen on {subject} or the wildcard (nginx: `listen {subject};`)")),
                );
                continue;
            };
            out.push(
                finding(
                    Level::Ok,
                    "listener",
                    subject.clone(),
                    format!("{subject} is served by a listener on {}", l.local),
                )
                .evidence(ev),
            );
            let backlog = l.wqueue;
            match somaxconn {
                Some(max) if i64::from(backlog) >= max => out.push(
                    finding(Level::Warn, "backlog", subject.clone(), format!("listen backlog of {subject} is {backlog} = net.core.somaxconn: the kernel capped what the service asked for"))
                        .evidence(format!("sock_diag backlog {backlog}, accept queue now {}; net.core.somaxconn = {max}", l.rqueue))
                        .fix("sysctl -w net.core.somaxconn=4096 (and raise the service's backlog, e.g. nginx `listen ... backlog=4096`)"),
                ),
                Some(max) => out.push(finding(Level::Ok, "backlog", subject.clone(), format!("backlog {backlog} (net.core.somaxconn {max}), accept queue now {}", l.rqueue))),
                None => out.push(finding(Level::Warn, "backlog", subject.clone(), format!("backlog {backlog}; net.core.somaxconn unreadable"))),
            }
        }
    }
}

/// Every check that needs a local listener (a `listener` check, a tcp or http(s) check on a
/// local address other than a VIP, which `listeners` covers): a FAIL naming address and port
/// when nothing listens there (a port nothing listens on at all is `checks`' to report). exec,
/// process and unit checks need no socket.
fn check_listeners(
    cfg: &Config,
    f: &Facts,
    vips: &[IpAddr],
    silent: &BTreeSet<u16>,
    out: &mut Vec<Finding>,
) {
    let Ok(ls) = &f.listeners else { return };
    let local = |ip: IpAddr| ip.is_loopback() || !f.holders(ip).is_empty();
    let mut seen = BTreeSet::new();
    for ch in &cfg.checks {
        let (addr, port) = match (&ch.kind, crate::checks::check_target(ch)) {
            (CheckKind::Listener { address, port }, _) => (*address, *port),
            (_, Some((ip, port))) if local(ip) && !vips.contains(&ip) => (Some(ip), port),
            _ => continue,
        };
        if silent.contains(&port) || !seen.insert((addr, port)) {
            continue;
        }
        let subject = checks::socket_text(addr, port);
        let found = ls.iter().find(|s| {
            s.state == TCP_LISTEN
                && s.local_port == port
                && addr.is_none_or(|a| {
                    s.local == a || (s.local.is_unspecified() && (s.local.is_ipv6() || a.is_ipv4()))
                })
        });
        let on_port: Vec<String> = ls
            .iter()
            .filter(|s| s.state == TCP_LISTEN && s.local_port == port)
            .map(|s| s.local.to_string())
            .collect();
        let ev = if on_port.is_empty() {
            format!("sock_diag: no listener on port {port}")
        } else {
            format!("sock_diag: port {port} listens on [{}]", on_port.join(", "))
        };
        let what = format!("check {} ({})", ch.name, ch.kind.type_name());
        match found {
            Some(l) => out.push(
                finding(
                    Level::Ok,
                    "listener",
                    subject.clone(),
                    format!("{what}: {subject} is served by a listener on {}", l.local),
                )
                .evidence(ev),
            ),
            None => out.push(
                finding(
                    Level::Fail,
                    "listener",
                    subject.clone(),
                    format!("{what}: nothing listens on {subject}, so the check fails and the VIPs that need it stay withdrawn"),
                )
                .evidence(ev)
                .fix(format!("start the service, or make it listen on {subject}")),
            ),
        }
    }
}

/// Per peer: the interface the session leaves by (None when unknown).
fn session_paths(
    cfg: &Config,
    f: &Facts,
    missing: &BTreeSet<IpAddr>,
    out: &mut Vec<Finding>,
) -> Vec<(String, IpAddr, Option<u32>)> {
    let mut res = Vec::new();
    for p in &f.peers {
        let peer_addr = cfg
            .peers
            .iter()
            .find(|c| *c.spec.name == *p.name)
            .map_or(p.session.dst, |c| c.spec.address);
        let sess_if = oif(&p.session);
        match &p.session.route {
            Ok(r) => out.push(
                finding(
                    Level::Ok,
                    "session-path",
                    p.name.clone(),
                    format!(
                        "session to {peer_addr} leaves by {}",
                        f.link_name(sess_if.unwrap_or(0))
                    ),
                )
                .evidence(format!(
                    "{} = {}",
                    lookup_text(&p.session),
                    describe(f, r)
                )),
            ),
            Err(e) => out.push(
                finding(
                    Level::Fail,
                    "session-path",
                    p.name.clone(),
                    format!("no route to peer {peer_addr}: {e}"),
                )
                .evidence(lookup_text(&p.session))
                .fix(format!(
                    "{} route add {peer_addr} dev <uplink>",
                    ip_cmd(peer_addr)
                )),
            ),
        }
        for l in &p.from_vips {
            let Some(src) = l.src.filter(|s| !missing.contains(s)) else {
                continue;
            };
            match (&l.route, sess_if) {
                (Ok(r), Some(s)) if r.oifs.first() == Some(&s) => out.push(
                    finding(Level::Ok, "session-path", p.name.clone(), format!("packets from {src} to {peer_addr} leave by {}, like the session", f.link_name(s)))
                        .evidence(format!("{} = {}", lookup_text(l), describe(f, r))),
                ),
                (Ok(r), Some(s)) => out.push(
                    finding(Level::Fail, "session-path", p.name.clone(), format!("packets from {src} to {peer_addr} leave by {}, but the session uses {}", f.link_name(r.oifs.first().copied().unwrap_or(0)), f.link_name(s)))
                        .evidence(format!("{} = {}", lookup_text(l), describe(f, r)))
                        .fix(rule_fix(src, peer_addr, &f.link_name(s), 100)),
                ),
                (Err(e), _) => out.push(
                    finding(Level::Fail, "session-path", p.name.clone(), format!("no route from {src} to {peer_addr}: {e}"))
                        .evidence(lookup_text(l)),
                ),
                (Ok(_), None) => {}
            }
        }
        res.push((p.name.clone(), peer_addr, sess_if));
    }
    res
}

fn rule_fix(vip: IpAddr, gateway: IpAddr, dev: &str, table: u32) -> String {
    let ip = ip_cmd(vip);
    format!(
        "{ip} route add default via {gateway} dev {dev} table {table} && {ip} rule add from {vip}/{} table {table} priority {table}",
        host_len(vip)
    )
}

/// Uplinks: interfaces that carry a session or a default route of the main table.
fn uplinks(f: &Facts, sessions: &[(String, IpAddr, Option<u32>)]) -> Vec<(u32, String)> {
    let mut set: Vec<(u32, String)> = Vec::new();
    let mut add = |i: u32, why: String| match set.iter_mut().find(|(x, _)| *x == i) {
        Some((_, w)) => {
            w.push_str("; ");
            w.push_str(&why);
        }
        None => set.push((i, why)),
    };
    for (name, _, oif) in sessions {
        if let Some(i) = oif {
            add(*i, format!("session {name}"));
        }
    }
    if let Ok(routes) = &f.routes {
        for r in routes
            .iter()
            .filter(|r| r.table == 254 && r.is_default_unicast())
        {
            for &i in &r.oifs {
                let fam = if i32::from(r.family) == libc::AF_INET {
                    ""
                } else {
                    " (IPv6)"
                };
                add(i, format!("default route{fam}"));
            }
        }
    }
    set.retain(|(i, _)| !f.link(*i).is_some_and(|l| l.loopback));
    set
}

fn return_paths(
    f: &Facts,
    vips: &[IpAddr],
    missing: &BTreeSet<IpAddr>,
    sessions: &[(String, IpAddr, Option<u32>)],
    uplinks: &[(u32, String)],
    out: &mut Vec<Finding>,
) {
    let session_ifs: BTreeSet<u32> = sessions.iter().filter_map(|s| s.2).collect();
    // A gateway for the fix: the first peer (the ToR is the next hop on its link).
    let gateway = |fam_v4: bool| {
        sessions
            .iter()
            .find(|s| s.1.is_ipv4() == fam_v4 && s.2.is_some())
            .map(|s| (s.1, f.link_name(s.2.unwrap_or(0))))
    };
    let mut broken = BTreeSet::new();
    for l in &f.replies {
        let Some(src) = l.src.filter(|s| !missing.contains(s)) else {
            continue;
        };
        let fix = gateway(src.is_ipv4()).map(|(g, dev)| rule_fix(src, g, &dev, 100));
        match &l.route {
            Ok(r) => {
                let o = r.oifs.first().copied().unwrap_or(0);
                if session_ifs.is_empty() {
                    out.push(
                        finding(Level::Warn, "return-path", src.to_string(), format!("replies from {src} to clients ({}) leave by {}; no session interface is known to compare with", l.dst, f.link_name(o)))
                            .evidence(format!("{} = {}", lookup_text(l), describe(f, r))),
                    );
                } else if session_ifs.contains(&o) {
                    out.push(
                        finding(Level::Ok, "return-path", src.to_string(), format!("replies from {src} to clients ({}) leave by {}, where the sessions run", l.dst, f.link_name(o)))
                            .evidence(format!("{} = {}", lookup_text(l), describe(f, r))),
                    );
                } else {
                    broken.insert(src);
                    let sess: Vec<String> = session_ifs.iter().map(|&i| f.link_name(i)).collect();
                    let mut fi = finding(Level::Fail, "return-path", src.to_string(), format!(
                        "replies from {src} to clients ({}) leave by {}, but clients arrive where the BGP sessions run ({}): SYN-ACKs take the wrong uplink",
                        l.dst, f.link_name(o), sess.join(", ")))
                        .evidence(format!("{} = {}", lookup_text(l), describe(f, r)));
                    if let Some(fx) = fix {
                        fi = fi.fix(fx);
                    }
                    out.push(fi);
                }
            }
            Err(e) => {
                broken.insert(src);
                let mut fi = finding(
                    Level::Fail,
                    "return-path",
                    src.to_string(),
                    format!(
                        "no route for replies from {src} to clients ({}): {e}",
                        l.dst
                    ),
                )
                .evidence(lookup_text(l));
                if let Some(fx) = fix {
                    fi = fi.fix(fx);
                }
                out.push(fi);
            }
        }
    }
    if uplinks.len() < 2 {
        let names: Vec<String> = uplinks.iter().map(|(i, _)| f.link_name(*i)).collect();
        out.push(finding(
            Level::Ok,
            "policy-rule",
            "uplinks",
            format!(
                "one uplink ({}): no `from <VIP>` rule needed",
                names.join(", ")
            ),
        ));
        return;
    }
    let desc: Vec<String> = uplinks
        .iter()
        .map(|(i, w)| format!("{}: {w}", f.link_name(*i)))
        .collect();
    let rules = match &f.rules {
        Ok(r) => r,
        Err(e) => {
            out.push(finding(
                Level::Warn,
                "policy-rule",
                "rules",
                format!("could not list policy rules: {e}"),
            ));
            return;
        }
    };
    for &v in vips.iter().filter(|v| !missing.contains(v)) {
        let rule = rules.iter().find(|r| {
            r.src.is_some_and(|(a, len)| {
                len > 0 && crate::signals::handshakes::AddrMatch { addr: a, len }.contains(v)
            })
        });
        match rule {
            Some(r) => out.push(finding(Level::Ok, "policy-rule", v.to_string(), format!(
                "{} uplinks and rule `from {}/{} lookup {}` (priority {}) steers replies from {v}",
                uplinks.len(), r.src.map_or(v, |s| s.0), r.src.map_or(0, |s| s.1), table_name(r.table), r.priority))
                .evidence(format!("uplinks: {}", desc.join("; ")))),
            None => {
                let level = if broken.contains(&v) { Level::Fail } else { Level::Warn };
                let mut fi = finding(level, "policy-rule", v.to_string(), format!(
                    "{} uplinks and no `from {v}` rule: replies from the VIP follow the main table, whatever uplink the request came in on",
                    uplinks.len()))
                    .evidence(format!("uplinks: {}", desc.join("; ")))
                    .evidence(format!("ip rule: no rule selects from {v}"));
                if let Some((g, dev)) = gateway(v.is_ipv4()) {
                    fi = fi.fix(rule_fix(v, g, &dev, 100));
                }
                out.push(fi);
            }
        }
    }
}

fn effective(f: &Facts, name: &str, dev: &str, max: bool) -> Option<i64> {
    let all = f.sysctl(&format!("net.ipv4.conf.all.{name}"));
    let d = f.sysctl(&format!("net.ipv4.conf.{dev}.{name}"));
    match (all, d) {
        (Some(a), Some(b)) => Some(if max { a.max(b) } else { b }),
        (a, b) => a.or(b),
    }
}

fn rp_filter(f: &Facts, uplinks: &[(u32, String)], out: &mut Vec<Finding>) {
    for (i, _) in uplinks {
        let dev = f.link_name(*i);
        // The kernel uses max(all, dev) for rp_filter.
        match effective(f, "rp_filter", &dev, true) {
            Some(1) if uplinks.len() > 1 => out.push(
                finding(Level::Warn, "rp-filter", dev.clone(), format!("strict rp_filter on {dev} with {} uplinks: a packet arriving where the reverse route points elsewhere is dropped", uplinks.len()))
                    .evidence(format!("net.ipv4.conf.{{all,{dev}}}.rp_filter = {:?}, {:?}", f.sysctl("net.ipv4.conf.all.rp_filter"), f.sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"))))
                    .fix(format!("sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{dev}.rp_filter=2")),
            ),
            Some(v) => out.push(finding(Level::Ok, "rp-filter", dev.clone(), format!("rp_filter {v} on {dev} ({})", match v { 0 => "off", 1 => "strict", _ => "loose" }))),
            None => out.push(finding(Level::Warn, "rp-filter", dev.clone(), format!("rp_filter of {dev} unreadable"))),
        }
    }
    match &f.rpf_counter {
        &Ok(super::facts::RpfSample {
            before: a,
            after: b,
            secs,
        }) if b > a => out.push(
            finding(Level::Warn, "rp-filter-drops", "IPReversePathFilter", format!("IPReversePathFilter grew by {} in {secs:.1} s: the kernel is dropping packets that arrive on an interface it would not reply by", b - a))
                .evidence(format!("/proc/net/netstat TcpExt IPReversePathFilter {a} -> {b}"))
                .fix("find the asymmetric path (this report's return-path findings), or loosen rp_filter to 2"),
        ),
        Ok(r) => out.push(finding(Level::Ok, "rp-filter-drops", "IPReversePathFilter", format!("IPReversePathFilter unchanged ({}) over {:.1} s", r.before, r.secs))),
        Err(e) => out.push(finding(Level::Warn, "rp-filter-drops", "IPReversePathFilter", format!("unreadable: {e}"))),
    }
}

fn arp(f: &Facts, vips: &[IpAddr], out: &mut Vec<Finding>) {
    let Ok(addrs) = &f.addrs else { return };
    let mut shared = false;
    for &v in vips.iter().filter(|v| v.is_ipv4()) {
        for a in addrs.iter().filter(|a| {
            a.addr != v
                && a.prefix_len < 32
                && a.subnet_contains(v)
                && !f.link(a.ifindex).is_some_and(|l| l.loopback)
        }) {
            shared = true;
            let dev = f.link_name(a.ifindex);
            let ignore = effective(f, "arp_ignore", &dev, true).unwrap_or(0);
            let announce = effective(f, "arp_announce", &dev, true).unwrap_or(0);
            let ev = format!(
                "{v} lies in {}/{} on {dev}; arp_ignore {ignore}, arp_announce {announce}",
                a.addr, a.prefix_len
            );
            if ignore >= 1 && announce >= 2 {
                out.push(
                    finding(
                        Level::Ok,
                        "arp",
                        dev.clone(),
                        format!("{dev} shares a subnet with {v} and will not answer ARP for it"),
                    )
                    .evidence(ev),
                );
            } else {
                out.push(
                    finding(Level::Warn, "arp", dev.clone(), format!("{v} shares a subnet with uplink {dev} (L2/DSR): {dev} may answer ARP for the VIP and pull traffic meant for other nodes"))
                        .evidence(ev)
                        .fix(format!("sysctl -w net.ipv4.conf.{dev}.arp_ignore=1 net.ipv4.conf.{dev}.arp_announce=2")),
                );
            }
        }
    }
    if !shared {
        out.push(finding(
            Level::Ok,
            "arp",
            "uplinks",
            "no VIP shares a subnet with an uplink: arp_ignore/arp_announce do not matter".into(),
        ));
    }
}

fn hairpin(cfg: &Config, f: &Facts, out: &mut Vec<Finding>) {
    let host: Vec<IpAddr> = f
        .addrs
        .as_ref()
        .map(|a| a.iter().map(|a| a.addr).collect())
        .unwrap_or_default();
    let hs: Vec<&str> = cfg
        .signals
        .iter()
        .filter(|s| matches!(s.kind, SignalKind::Handshakes(_)))
        .map(|s| &*s.name)
        .collect();
    for ch in &cfg.checks {
        let Some((ip, port)) = check_target(ch) else {
            continue;
        };
        let local = host.contains(&ip) || is_local_by_config(cfg, ip);
        if !local {
            out.push(finding(
                Level::Ok,
                "hairpin",
                ch.name.to_string(),
                format!(
                    "check {} targets {ip}:{port}, not an address of this host",
                    ch.name
                ),
            ));
            continue;
        }
        let on: Vec<String> = f.holders(ip).iter().map(|&i| f.link_name(i)).collect();
        let covered = if hs.is_empty() {
            "no handshakes signal watches the clients' side".to_string()
        } else {
            format!(
                "the handshakes signal {} watches the clients' side",
                hs.join(", ")
            )
        };
        let mut fi = finding(Level::Warn, "hairpin", ch.name.to_string(), format!(
            "local: check {} targets {ip}:{port}, an address of this host{}: the probe never leaves the host, so it cannot see the return path or the fabric ({covered})",
            ch.name, if on.is_empty() { String::new() } else { format!(" ({})", on.join(", ")) }))
            .evidence(format!("{ip} is local (ip addr / config)"));
        if hs.is_empty() {
            fi = fi.fix("add `signals: [{name: hs, type: handshakes, ports: [80, 443]}]` and `withdraw_when: [{signal: hs.stalled_ratio, above: 0.5, for: 5s}]`");
        }
        out.push(fi);
    }
}

fn conntrack(f: &Facts, out: &mut Vec<Finding>) {
    use crate::signals::conntrack::ReadError;
    match &f.conntrack {
        &Ok(super::facts::Conntrack { count, max }) if max > 0 => {
            let r = count as f64 / max as f64;
            let ev = format!(
                "nf_conntrack_count {count}, nf_conntrack_max {max} ({:.0}%)",
                r * 100.0
            );
            let level = if r >= 0.9 {
                Level::Fail
            } else if r >= 0.75 {
                Level::Warn
            } else {
                Level::Ok
            };
            let mut fi = finding(
                level,
                "conntrack",
                "nf_conntrack",
                format!("conntrack table {:.0}% full", r * 100.0),
            )
            .evidence(ev);
            if level != Level::Ok {
                fi = fi.fix(format!("sysctl -w net.netfilter.nf_conntrack_max={} (or exempt the VIP with `notrack`)", max * 2));
            }
            out.push(fi);
        }
        Ok(_) => out.push(finding(
            Level::Warn,
            "conntrack",
            "nf_conntrack",
            "nf_conntrack_max is 0".into(),
        )),
        Err(ReadError::NotLoaded) => out.push(finding(
            Level::Ok,
            "conntrack",
            "nf_conntrack",
            "not loaded: no table to fill".into(),
        )),
        Err(ReadError::Other(e)) => out.push(finding(
            Level::Warn,
            "conntrack",
            "nf_conntrack",
            format!("unreadable: {e}"),
        )),
    }
}

fn certificates(cfg: &Config, f: &Facts, out: &mut Vec<Finding>) {
    for ch in &cfg.checks {
        let CheckKind::Http(h) = &ch.kind else {
            continue;
        };
        if !h.tls {
            continue;
        }
        let Some(fact) = f.certs.iter().find(|c| *c.check == *ch.name) else {
            continue;
        };
        match &fact.cert {
            Ok(c) => {
                let days = (c.not_after - f.now_unix).div_euclid(86_400);
                let ev = format!(
                    "{}: subject {:?}, notAfter {} ({days} days)",
                    h.url,
                    c.subject,
                    super::x509::utc(c.not_after)
                );
                let (level, msg) = if c.not_after <= f.now_unix {
                    (Level::Fail, format!("certificate of {} expired", ch.name))
                } else if days < 14 {
                    (
                        Level::Warn,
                        format!("certificate of {} expires in {days} days", ch.name),
                    )
                } else {
                    (
                        Level::Ok,
                        format!("certificate of {} valid for {days} more days", ch.name),
                    )
                };
                let mut fi = finding(level, "certificate", ch.name.to_string(), msg).evidence(ev);
                if level != Level::Ok {
                    fi = fi.fix(format!("renew the certificate served at {}", h.url));
                }
                out.push(fi);
            }
            Err(e) => out.push(finding(
                Level::Warn,
                "certificate",
                ch.name.to_string(),
                format!("could not read the certificate at {}: {e}", h.url),
            )),
        }
    }
}

fn daemon_sessions(f: &Facts, out: &mut Vec<Finding>) {
    match &f.sessions {
        Ok(s) => {
            for sess in s {
                let (name, state) = (&sess.peer, &sess.state);
                if sess.established() {
                    out.push(finding(
                        Level::Ok,
                        "session",
                        name.clone(),
                        format!("session {name} established"),
                    ));
                } else {
                    out.push(
                        finding(Level::Warn, "session", name.clone(), format!("session {name} is {state}"))
                            .fix("vipwarden status (last error), and the router's view of the node: BIRD `show protocols all`, FRR `show bgp neighbor`"),
                    );
                }
            }
        }
        Err(e) => out.push(finding(
            Level::Warn,
            "session",
            "daemon",
            format!("session states not checked: {e}"),
        )),
    }
}

mod checks;
#[cfg(test)]
mod tests;
