//! The one-screen summary `check-config` prints.

use std::fmt::Write;
use std::net::IpAddr;

use super::model::*;
use super::validate::fmt_d;
use crate::bgp::transport::Auth;
use crate::checks::{check_target, on_this_host};
use crate::engine::{ConditionSpec, Threshold};

pub fn summary(c: &Config) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "router_id {}  local_as {}", c.router_id, c.local_as);
    let _ = writeln!(s, "peers ({}):", c.peers.len());
    for p in &c.peers {
        let ibgp = if p.spec.remote_as == c.local_as {
            "iBGP"
        } else {
            "eBGP"
        };
        let _ = write!(
            s,
            "  {:<12} {} port {} AS {} ({ibgp}) hold {}",
            p.spec.name,
            p.spec.address,
            p.spec.port,
            p.spec.remote_as,
            fmt_d(p.spec.hold_time)
        );
        if let Some(l) = p.spec.local_address {
            let _ = write!(s, " from {l}");
        }
        if let Some(n) = p.spec.next_hop_v4 {
            let _ = write!(s, " next_hop_v4 {n}");
        }
        if let Some(n) = p.spec.next_hop_v6 {
            let _ = write!(s, " next_hop_v6 {n}");
        }
        // What protects the session, never the key.
        match &p.spec.auth {
            Auth::None => {}
            Auth::Md5(_) => s.push_str(" tcp-md5"),
            Auth::Ao(k) => {
                let _ = write!(s, " tcp-ao (send_id {} recv_id {})", k.send_id, k.recv_id);
            }
        }
        if p.spec.ttl_security {
            s.push_str(" ttl-security");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "checks ({}):", c.checks.len());
    for ch in &c.checks {
        let what = match &ch.kind {
            CheckKind::Tcp { target } => format!("tcp {target}"),
            CheckKind::Http(h) => format!(
                "{} {} expect {}",
                if h.tls { "https" } else { "http" },
                h.url,
                list(&h.expect_status)
            ),
            CheckKind::Exec { command } => format!("exec {}", command.join(" ")),
            CheckKind::Listener { address, port } => match address {
                Some(a) => format!("listener {}", std::net::SocketAddr::new(*a, *port)),
                None => format!("listener *:{port}"),
            },
            CheckKind::Process { pid_file } => format!("process {}", pid_file.display()),
            CheckKind::Unit { unit } => format!("unit {unit}"),
        };
        let _ = write!(
            s,
            "  {:<12} {what}  every {} (fast {}) timeout {} rise {} fall {}",
            ch.name,
            fmt_d(ch.interval),
            fmt_d(ch.fast_interval),
            fmt_d(ch.timeout),
            ch.rise,
            ch.fall
        );
        if let Some(src) = ch.source {
            let _ = write!(s, " source {src}");
        }
        if let Some(i) = &ch.interface {
            let _ = write!(s, " interface {i}");
        }
        if let Some((ip, _)) = check_target(ch) {
            let _ = write!(s, "{}", local_tag(c, ip, on_this_host(ip)));
        }
        s.push('\n');
    }
    if !c.signals.is_empty() {
        let _ = writeln!(s, "signals ({}):", c.signals.len());
    }
    for sig in &c.signals {
        let what = match &sig.kind {
            SignalKind::AccessLog(a) => format!(
                "access_log {} (format {}) window {}",
                a.path.display(),
                a.format.name(),
                fmt_d(a.window)
            ),
            SignalKind::TcpStats(t) => format!(
                "tcp_stats every {} window {} ports {}",
                fmt_d(t.interval),
                fmt_d(t.window),
                list(&t.ports)
            ),
            SignalKind::Conntrack(c) => format!("conntrack every {}", fmt_d(c.interval)),
            SignalKind::Handshakes(h) => {
                let addrs: Vec<String> = h
                    .addresses
                    .iter()
                    .map(|a| format!("{}/{}", a.addr, a.len))
                    .collect();
                format!(
                    "handshakes every {} window {} ports {} addresses [{}]",
                    fmt_d(h.interval),
                    fmt_d(h.window),
                    list(&h.ports),
                    addrs.join(", ")
                )
            }
            SignalKind::Prometheus(pr) => {
                let names: Vec<&str> = pr.values.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "prometheus {} every {} values [{}]",
                    pr.url,
                    fmt_d(pr.interval),
                    names.join(", ")
                )
            }
        };
        let _ = writeln!(s, "  {:<12} {what}", sig.name);
    }
    let _ = writeln!(s, "vips ({}):", c.vips.len());
    for v in &c.vips {
        let prefixes: Vec<String> = v.spec.prefixes.iter().map(|p| p.to_string()).collect();
        let checks: Vec<&str> = v.spec.checks.iter().map(|&i| &*c.checks[i].name).collect();
        let _ = write!(
            s,
            "  {:<12} {}  checks [{}] require {}",
            v.spec.name,
            prefixes.join(", "),
            checks.join(", "),
            v.spec.policy.require
        );
        let a = &v.spec.policy.attrs;
        if let Some(m) = a.med {
            let _ = write!(s, " med {m}");
        }
        if let Some(lp) = a.local_pref {
            let _ = write!(s, " local_pref {lp}");
        }
        if !a.communities.is_empty() {
            let cs: Vec<String> = a.communities.iter().map(|c| c.to_string()).collect();
            let _ = write!(s, " communities [{}]", cs.join(" "));
        }
        if !a.large_communities.is_empty() {
            let cs: Vec<String> = a.large_communities.iter().map(|c| c.to_string()).collect();
            let _ = write!(s, " large [{}]", cs.join(" "));
        }
        if a.as_path_prepend > 0 {
            let _ = write!(s, " prepend {}", a.as_path_prepend);
        }
        s.push('\n');
        let _ = writeln!(s, "    {}", describe_leave(&v.spec.policy.lifecycle));
        if let Some(d) = describe_depreference(&v.spec.policy.depreference) {
            let _ = writeln!(s, "    depreference {d}");
        }
        if let (Some(g), Some(f)) = (&v.spec.policy.guard, &c.fleet) {
            let _ = writeln!(
                s,
                "    fleet guard: leaves a ToR only while it keeps {} healthy others; marked {} \
                 before counting, back (marked) after {} of too few; when_blind {}; a stop waits \
                 at most {} for a hold",
                g.min_healthy_others,
                fmt_d(g.settle),
                fmt_d(g.dwell),
                g.when_blind.as_str(),
                fmt_d(f.stop_hold_limit)
            );
        }
        for cond in &v.spec.policy.withdraw_when {
            let _ = writeln!(s, "    withdraw when {}", describe_condition(cond));
        }
        if let Some(w) = &v.spec.policy.weight {
            let _ = writeln!(
                s,
                "    weight {} (RFC 10005 link bandwidth), min {:.0}%, slow_start {}, step {}",
                crate::engine::format_bandwidth(w.capacity.round() as u64),
                w.min * 100.0,
                fmt_d(w.slow_start),
                fmt_d(w.step)
            );
            for sc in &w.scale_when {
                let _ = writeln!(
                    s,
                    "    scale weight x{:.0}% when {}",
                    sc.scale * 100.0,
                    describe_condition(&sc.condition)
                );
            }
        }
        if !v.spec.policy.withdraw_when.is_empty() || !v.spec.policy.hold_down.is_zero() {
            let _ = write!(
                s,
                "    hold_down {} on_missing {}",
                fmt_d(v.spec.policy.hold_down),
                match v.spec.policy.on_missing {
                    crate::engine::OnMissing::Hold => "hold",
                    crate::engine::OnMissing::Withdraw => "withdraw",
                    crate::engine::OnMissing::Ignore => "ignore",
                }
            );
            if let Some(d) = &v.spec.policy.dampening {
                let _ = write!(
                    s,
                    " dampening half_life {} suppress {} reuse {} penalty {}",
                    fmt_d(d.half_life),
                    d.suppress,
                    d.reuse,
                    d.penalty
                );
            }
            s.push('\n');
        }
    }
    if let Some(f) = &c.fleet {
        let guarded: Vec<&str> = c
            .vips
            .iter()
            .filter(|v| v.spec.policy.guard.is_some())
            .map(|v| &*v.spec.name)
            .collect();
        let _ = writeln!(
            s,
            "fleet: guard on [{}]; unhealthy_community {} settle {} fail_open_dwell {} \
             stop_hold_limit {}",
            guarded.join(", "),
            f.unhealthy_community,
            fmt_d(f.settle),
            fmt_d(f.fail_open_dwell),
            fmt_d(f.stop_hold_limit)
        );
    }
    let _ = writeln!(s, "{}", describe_api(&c.api));
    s
}

/// `[200, 204]`, as written in the config (not Rust's `[200, 204]` by accident of Debug).
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", v.join(", "))
}

/// What a drained or ill VIP is sent while it stays announced; None when nothing changes.
fn describe_depreference(d: &crate::engine::Depreference) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(m) = d.med {
        parts.push(format!("med {m}"));
    }
    if let Some(lp) = d.local_pref {
        parts.push(format!("local_pref {lp}"));
    }
    if d.as_path_prepend > 0 {
        parts.push(format!("prepend +{}", d.as_path_prepend));
    }
    (!parts.is_empty()).then(|| format!("while draining: {}", parts.join(", ")))
}

/// `api: 127.0.0.1:9179 http, token /etc/vipwarden/token (reads open)`.
fn describe_api(a: &ApiConfig) -> String {
    let scheme = if a.tls.is_some() { "https" } else { "http" };
    let token = match &a.token_file {
        Some(t) => format!("token {}", t.display()),
        None => "no token (drain/undrain refused)".to_string(),
    };
    let reads = if a.read_token {
        "reads need the token"
    } else {
        "reads open"
    };
    format!("api: {} {scheme}, {token}, {reads}", a.listen)
}

/// The summary's mark for a check target: local when it is an address of this host now, or
/// when the config puts it here (a VIP, a session address) but the host does not have it yet;
/// the second says so, as the listener warning in the same output does.
fn local_tag(c: &Config, ip: IpAddr, on_host: bool) -> String {
    if on_host || ip.is_loopback() || ip.is_unspecified() {
        format!("  [local: does not cross the fabric ({ip} is on this host)]")
    } else if is_local_by_config(c, ip) {
        format!(
            "  [local: does not cross the fabric once {ip} is on this host as configured; it is \
             not an address of this host now, so a probe to it leaves the host]"
        )
    } else {
        String::new()
    }
}

/// An address that the configuration itself says is on this host: loopback, a VIP (announced
/// from here, so on this host's loopback) or a session's local address. A connection to it never
/// leaves the host, so it says nothing about the path clients take.
pub fn is_local_by_config(c: &Config, ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || c.vips.iter().flat_map(|v| v.spec.prefixes.iter()).any(|p| {
            crate::signals::handshakes::AddrMatch {
                addr: p.addr(),
                len: p.len(),
            }
            .contains(ip)
        })
        || c.peers.iter().any(|p| p.spec.local_address == Some(ip))
}

/// How the VIP leaves: "drain graceful 30s until 0 connections (min 2s, silent after 2s);
/// shutdown graceful".
fn describe_leave(l: &crate::engine::LifecycleSpec) -> String {
    use crate::engine::DrainStrategy;
    let strategy = |d: DrainStrategy| match d {
        DrainStrategy::Withdraw => "withdraw".to_string(),
        DrainStrategy::Graceful => {
            let end = match l.drain_until_connections {
                None => " (timed)".to_string(),
                Some(n) => {
                    let mut e = format!(" until {n} connections (min {}", fmt_d(l.drain_min));
                    if let Some(idle) = l.drain_idle {
                        let _ = write!(e, ", silent after {}", fmt_d(idle));
                    }
                    e.push(')');
                    e
                }
            };
            format!("graceful {}{end}", fmt_d(l.drain_period))
        }
    };
    let mut s = format!("drain {}", strategy(l.drain));
    if l.shutdown != l.drain {
        let _ = write!(s, "; shutdown {}", strategy(l.shutdown));
    } else {
        s.push_str("; shutdown the same");
    }
    s
}

fn describe_condition(c: &ConditionSpec) -> String {
    let u = c.unit;
    let mut out = match &c.threshold {
        Threshold::Fixed {
            above,
            restore_below,
        } => format!(
            "{} > {} for {}, restore < {} for {}",
            c.signal,
            u.fmt(*above),
            fmt_d(c.trip_after),
            u.fmt(*restore_below),
            fmt_d(c.clear_after)
        ),
        Threshold::Baseline(b) => format!(
            "{} > {}x its {} baseline for {}, restore < {}x for {}",
            c.signal,
            b.above_factor,
            fmt_d(b.span),
            fmt_d(c.trip_after),
            b.restore_factor,
            fmt_d(c.clear_after)
        ),
    };
    if let Some(n) = c.min_requests {
        out += &format!(" (min {n} requests)");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::engine::{DrainStrategy, LifecycleSpec};

    #[test]
    fn the_summary_says_how_a_vip_leaves() {
        let l = LifecycleSpec {
            drain: DrainStrategy::Graceful,
            drain_until_connections: Some(0),
            drain_min: Duration::from_secs(2),
            drain_idle: Some(Duration::from_secs(2)),
            ..LifecycleSpec::default()
        };
        assert_eq!(
            super::describe_leave(&l),
            "drain graceful 30s until 0 connections (min 2s, silent after 2s); shutdown withdraw"
        );
        let timed = LifecycleSpec {
            drain_until_connections: None,
            shutdown: DrainStrategy::Graceful,
            ..l
        };
        assert_eq!(
            super::describe_leave(&timed),
            "drain graceful 30s (timed); shutdown the same"
        );
        assert_eq!(
            super::describe_leave(&LifecycleSpec::default()),
            "drain withdraw; shutdown the same"
        );
    }

    /// Issue 22: the summary names depreference, the fleet guard and the API, in the config's
    /// own words (no `Nginx`, `Hold` or other Rust spellings).
    #[test]
    fn names_depreference_guard_and_api_without_rust_spellings() {
        let text = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor1, address: 198.51.100.1, remote_as: 65000}]
checks: [{name: web, type: http, url: "http://127.0.0.1/healthz", expect_status: [200, 204]}]
signals: [{name: lg, type: access_log, path: /var/log/nginx/access.log, format: nginx}]
fleet: {unhealthy_community: "65101:666"}
api: {listen: "127.0.0.1:9180", token_file: /etc/vipwarden/token}
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    depreference: {med: 1000, as_path_prepend: 2}
    guard: {min_healthy_others: 1}
    withdraw_when: [{signal: lg.error_ratio, above: 0.05}]
"#;
        let c = crate::config::parse(Path::new("vw.yaml"), text).unwrap();
        let s = super::summary(&c);
        for want in [
            "expect [200, 204]",
            "(format nginx)",
            "on_missing hold",
            "depreference while draining: med 1000, prepend +2",
            "fleet: guard on [web]; unhealthy_community 65101:666",
            "api: 127.0.0.1:9180 http, token /etc/vipwarden/token",
        ] {
            assert!(s.contains(want), "{want} not in\n{s}");
        }
        for rust in ["Nginx", "Hold", "Some(", "None"] {
            assert!(!s.contains(rust), "{rust} in\n{s}");
        }
    }

    #[test]
    fn checks_on_this_host_are_marked_local() {
        let text = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor1, address: 198.51.100.1, remote_as: 65000, local_address: 198.51.100.2}]
checks:
  - {name: vip, type: tcp, target: "203.0.113.10:80"}
  - {name: lo, type: http, url: "http://127.0.0.1:8080/healthz"}
  - {name: far, type: tcp, target: "192.0.2.50:80"}
vips: [{name: web, prefixes: [203.0.113.10/32], checks: [vip, lo, far]}]
"#;
        let c = crate::config::parse(Path::new("vw.yaml"), text).unwrap();
        let s = super::summary(&c);
        let line = |name: &str| {
            s.lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap()
        };
        assert!(line("vip ").contains("local: does not cross the fabric"));
        assert!(line("lo ").contains("local: does not cross the fabric"));
        assert!(!line("far ").contains("local"));
        // Issue 22: never "on this host" for an address this host does not have; the same
        // output's listener warning says it is not an address of this node.
        let vip: std::net::IpAddr = "203.0.113.10".parse().unwrap();
        let tag = super::local_tag(&c, vip, false);
        assert!(tag.contains("not an address of this host now"), "{tag}");
        assert!(!tag.contains("is on this host)"), "{tag}");
        assert!(super::local_tag(&c, vip, true).contains("(203.0.113.10 is on this host)"));
        let far: std::net::IpAddr = "192.0.2.50".parse().unwrap();
        assert!(super::local_tag(&c, far, true).contains("is on this host"));
        assert_eq!(super::local_tag(&c, far, false), "");
    }
}
