//! The configured checks, grouped by root cause so that one cause gives one FAIL: a service
//! check (process, unit) that fails, then a port nothing listens on at all, then each check's own
//! run (exec, tcp, http(s); process and unit when they pass). A check that fails only because of
//! a cause already reported (its service is down, its port silent, its VIP missing) becomes
//! evidence on that cause's FAIL instead of a FAIL of its own.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use super::{finding, Finding, Level};
use crate::checks::check_target;
use crate::config::{CheckKind, Config, SignalKind};
use crate::doctor::facts::{CheckRun, Facts, Outcome};
use crate::signals::sockdiag::TCP_LISTEN;

/// A listening socket something needs: where (None: any address), and who.
struct Need {
    addr: Option<IpAddr>,
    port: u16,
    by: By,
}

#[derive(Clone, PartialEq)]
enum By {
    /// Index into the configured checks.
    Check(usize),
    /// A handshakes signal watching the port.
    Signal(String),
}

fn by_text(cfg: &Config, by: &By) -> String {
    match by {
        By::Check(i) => check_text(cfg, *i),
        By::Signal(s) => format!("signal {s} (handshakes)"),
    }
}

fn check_text(cfg: &Config, i: usize) -> String {
    let ch = &cfg.checks[i];
    format!("check {} ({})", ch.name, ch.kind.type_name())
}

/// `203.0.113.10:80`, `[2001:db8::10]:80`, `*:80`.
pub(super) fn socket_text(addr: Option<IpAddr>, port: u16) -> String {
    match addr {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        Some(a) => format!("{a}:{port}"),
        None => format!("*:{port}"),
    }
}

fn took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Every listening socket the config needs: each VIP address on each service port (as
/// `listeners` asks: the ports the checks on VIPs and the handshakes signals use), `listener`
/// checks, tcp and http(s) checks on other local addresses.
fn needs(cfg: &Config, f: &Facts, vips: &[IpAddr]) -> Vec<Need> {
    let local = |ip: IpAddr| ip.is_loopback() || !f.holders(ip).is_empty();
    // Why each service port is one: the checks on VIPs and the signals that use it.
    let mut reasons: Vec<(u16, By)> = Vec::new();
    let mut out = Vec::new();
    for (i, ch) in cfg.checks.iter().enumerate() {
        match (&ch.kind, check_target(ch)) {
            (CheckKind::Listener { address, port }, _) => out.push(Need {
                addr: *address,
                port: *port,
                by: By::Check(i),
            }),
            (_, Some((ip, port))) if vips.contains(&ip) => reasons.push((port, By::Check(i))),
            (_, Some((ip, port))) if local(ip) => out.push(Need {
                addr: Some(ip),
                port,
                by: By::Check(i),
            }),
            _ => {}
        }
    }
    for s in &cfg.signals {
        if let SignalKind::Handshakes(h) = &s.kind {
            for &port in &h.ports {
                reasons.push((port, By::Signal(s.name.to_string())));
            }
        }
    }
    let mut vip_needs = Vec::new();
    for &v in vips {
        for (port, by) in &reasons {
            vip_needs.push(Need {
                addr: Some(v),
                port: *port,
                by: by.clone(),
            });
        }
    }
    vip_needs.extend(out);
    vip_needs
}

/// Ports the config needs on which nothing listens on any address: one cause (the service is
/// not running, or not on this port), however many VIPs and checks need the port. Empty when
/// the listening sockets could not be read.
pub(super) fn silent_ports(cfg: &Config, f: &Facts, vips: &[IpAddr]) -> BTreeSet<u16> {
    let Ok(ls) = &f.listeners else {
        return BTreeSet::new();
    };
    needs(cfg, f, vips)
        .iter()
        .map(|n| n.port)
        .filter(|&p| {
            !ls.iter()
                .any(|s| s.state == TCP_LISTEN && s.local_port == p)
        })
        .collect()
}

/// Where port `p` is wanted and by whom: ([`a:p`, `b:p`], [`check x (tcp)`, `signal hs
/// (handshakes)`]), each without repeats.
fn wanted(cfg: &Config, needs: &[Need], p: u16) -> (Vec<String>, Vec<String>) {
    let mut at = Vec::new();
    let mut by = Vec::new();
    for n in needs.iter().filter(|n| n.port == p) {
        let s = socket_text(n.addr, p);
        if !at.contains(&s) {
            at.push(s);
        }
        let b = by_text(cfg, &n.by);
        if !by.contains(&b) {
            by.push(b);
        }
    }
    (at, by)
}

/// Names of the VIPs that use check `i`.
fn users(cfg: &Config, i: usize) -> Vec<String> {
    cfg.vips
        .iter()
        .filter(|v| v.spec.checks.contains(&i))
        .map(|v| v.spec.name.to_string())
        .collect()
}

fn withdrawn(vips: &[String]) -> String {
    match vips {
        [] => "no VIP uses it".to_string(),
        [v] => format!("VIP {v} stays withdrawn"),
        vs => format!("VIPs {} stay withdrawn", vs.join(", ")),
    }
}

fn run_evidence(cfg: &Config, r: &CheckRun) -> String {
    format!(
        "{} now: {} ({})",
        check_text(cfg, r.check),
        r.detail,
        took(r.took)
    )
}

/// The root causes among the checks, then one line per check run. `missing`: VIP addresses the
/// host lacks (their FAIL is already in `out`).
pub(super) fn checks(
    cfg: &Config,
    f: &Facts,
    vips: &[IpAddr],
    missing: &BTreeSet<IpAddr>,
    out: &mut Vec<Finding>,
) {
    let needs = needs(cfg, f, vips);
    let silent = silent_ports(cfg, f, vips);
    let failed = |i: usize| {
        f.checks
            .iter()
            .find(|r| r.check == i && r.outcome != Outcome::Pass)
    };
    // Ports reported (as a cause or as evidence of one) and checks whose failure is evidence.
    let mut told = BTreeSet::new();
    let mut explained = BTreeSet::new();

    // 1. A service check that fails: the service is down. The silent ports of the checks that
    //    share a VIP with it are its consequences, not causes of their own.
    for r in &f.checks {
        let ch = &cfg.checks[r.check];
        let fix = match &ch.kind {
            _ if r.outcome == Outcome::Pass => continue,
            CheckKind::Unit { unit } if r.detail.starts_with("missing:") => format!(
                "this host has no systemd or no D-Bus system bus: use a process or listener check instead of the unit {unit}"
            ),
            CheckKind::Unit { unit } => format!(
                "systemctl start {unit} (`systemctl status {unit}` and `journalctl -u {unit}` say why it stopped)"
            ),
            CheckKind::Process { pid_file } => format!(
                "start the service; it must write its pid to {} (its log says why it stopped)",
                pid_file.display()
            ),
            _ => continue,
        };
        explained.insert(r.check);
        let mut fi = finding(
            Level::Fail,
            "service",
            ch.name.to_string(),
            format!(
                "{}: {}: {}",
                check_text(cfg, r.check),
                r.detail,
                withdrawn(&users(cfg, r.check))
            ),
        )
        .evidence(run_evidence(cfg, r))
        .fix(fix);
        let siblings: BTreeSet<usize> = cfg
            .vips
            .iter()
            .filter(|v| v.spec.checks.contains(&r.check))
            .flat_map(|v| v.spec.checks.iter().copied())
            .collect();
        for &p in &silent {
            let linked = needs
                .iter()
                .any(|n| n.port == p && matches!(n.by, By::Check(c) if siblings.contains(&c)));
            if !linked || !told.insert(p) {
                continue;
            }
            let (at, by) = wanted(cfg, &needs, p);
            fi = fi.evidence(format!(
                "sock_diag: nothing listens on port {p} (wanted on {} by {})",
                at.join(", "),
                by.join(", ")
            ));
            for n in needs.iter().filter(|n| n.port == p) {
                if let By::Check(c) = n.by {
                    if explained.insert(c) {
                        if let Some(fr) = failed(c) {
                            fi = fi.evidence(run_evidence(cfg, fr));
                        }
                    }
                }
            }
        }
        out.push(fi);
    }

    // 2. Ports nothing listens on at all, not explained by a service check: one FAIL for them
    //    (the service is not running, or not on these ports), however many VIPs and checks
    //    want them, with one evidence line per port.
    let rest: Vec<u16> = silent.difference(&told).copied().collect();
    if !rest.is_empty() {
        let mut all_at = Vec::new();
        let mut all_by = Vec::new();
        let mut evidence = Vec::new();
        for &p in &rest {
            let (at, by) = wanted(cfg, &needs, p);
            evidence.push(format!(
                "sock_diag: no listener on port {p} (wanted on {} by {})",
                at.join(", "),
                by.join(", ")
            ));
            all_at.extend(at);
            for b in by {
                if !all_by.contains(&b) {
                    all_by.push(b);
                }
            }
            for n in needs.iter().filter(|n| n.port == p) {
                if let By::Check(c) = n.by {
                    if explained.insert(c) {
                        if let Some(fr) = failed(c) {
                            evidence.push(run_evidence(cfg, fr));
                        }
                    }
                }
            }
        }
        let at = all_at.join(", ");
        let ports: Vec<String> = rest.iter().map(u16::to_string).collect();
        let mut fi = finding(
            Level::Fail,
            "listener",
            at.clone(),
            format!(
                "nothing listens on {at} (no socket on port{} {} at all): {} fail and the VIPs that need them stay withdrawn",
                if rest.len() > 1 { "s" } else { "" },
                ports.join(", "),
                all_by.join(", ")
            ),
        )
        .fix(format!("start the service, or make it listen on {at}"));
        fi.evidence = evidence;
        out.push(fi);
    }

    // 3. Each check's own run.
    for r in f.checks.iter().filter(|r| !explained.contains(&r.check)) {
        let ch = &cfg.checks[r.check];
        let what = check_text(cfg, r.check);
        if r.outcome == Outcome::Pass {
            out.push(finding(
                Level::Ok,
                "check",
                ch.name.to_string(),
                // tcp, http and exec details say how long they took; process and unit do not.
                if r.detail.ends_with(" ms") {
                    format!("{what} passes now: {}", r.detail)
                } else {
                    format!("{what} passes now: {} ({})", r.detail, took(r.took))
                },
            ));
            continue;
        }
        if let Some((ip, port)) = check_target(ch) {
            // Its VIP is missing, or its address has a listener FAIL: evidence there.
            let subject = socket_text(Some(ip), port);
            let cause = out.iter_mut().find(|x| {
                x.level == Level::Fail
                    && ((x.topic == "vip-address"
                        && missing.contains(&ip)
                        && x.subject == ip.to_string())
                        || (x.topic == "listener" && x.subject == subject))
            });
            if let Some(cause) = cause {
                cause.evidence.push(run_evidence(cfg, r));
                continue;
            }
        }
        let vips_text = withdrawn(&users(cfg, r.check));
        let fi = match &ch.kind {
            CheckKind::Exec { command } => {
                let cmd = command.join(" ");
                match r.outcome {
                    Outcome::TimedOut => finding(
                        Level::Fail,
                        "check",
                        ch.name.to_string(),
                        format!("{what}: `{cmd}` did not finish within its timeout of {} and was killed: {vips_text}", took(ch.timeout)),
                    )
                    .fix(format!("find out why `{cmd}` hangs, or raise the check's timeout ({})", took(ch.timeout))),
                    _ => finding(
                        Level::Fail,
                        "check",
                        ch.name.to_string(),
                        format!("{what}: `{cmd}` failed: {} after {}: {vips_text}", r.detail, took(r.took)),
                    )
                    .fix(format!("run `{cmd}` by hand, as the daemon's user, to see why it fails")),
                }
            }
            kind => {
                let fix = match kind {
                    CheckKind::Http(h) => {
                        format!("`curl -v {}` from this host, and the service's log", h.url)
                    }
                    _ => "the service's log; `ss -tln` shows what listens".to_string(),
                };
                finding(
                    Level::Fail,
                    "check",
                    ch.name.to_string(),
                    format!(
                        "{what} fails now: {} ({}): {vips_text}",
                        r.detail,
                        took(r.took)
                    ),
                )
                .fix(fix)
            }
        };
        out.push(fi);
    }
}
