//! Raw YAML shape -> validated `Config`. Collects every problem (not just the first) with the path
//! of the offending value, so one `check-config` run shows everything to fix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;

use super::keys;
use super::model::*;
pub(super) use super::problems::{duration, name, required, Problem, Problems};
use super::raw::*;
use crate::bgp::PeerSpec;
use crate::engine::{
    Depreference, DrainStrategy, LifecycleSpec, OnUnhealthy, PolicyInterner, Require, VipPolicy,
    VipSpec,
};
use crate::fleet::{GuardSpec, WhenBlind};
use crate::route::{Community, LargeCommunity, Prefix, RouteAttrs};

/// AS_TRANS (RFC 6793) may not be configured as a real ASN.
const AS_TRANS: u64 = 23456;
/// More prepends than this is a typo, not traffic engineering.
const MAX_PREPEND: u8 = 16;

/// The config, with warnings (located by the caller), or every problem found.
pub fn validate(raw: RawConfig) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let mut p = Problems::default();

    let router_id = match raw.router_id.as_deref() {
        None => {
            p.add(
                "router_id",
                "router_id is required (an IPv4 address, e.g. the node's loopback)",
            );
            Ipv4Addr::UNSPECIFIED
        }
        Some(s) => match s.trim().parse::<Ipv4Addr>() {
            Ok(a) if a.is_unspecified() => {
                p.add(
                    "router_id",
                    "router_id 0.0.0.0 is not a valid BGP identifier",
                );
                a
            }
            Ok(a) => a,
            Err(_) => {
                p.add("router_id", format!("router_id \"{s}\" is not an IPv4 address (BGP identifiers are 32-bit, RFC 6286)"));
                Ipv4Addr::UNSPECIFIED
            }
        },
    };
    let local_as = asn(&mut p, "local_as", raw.local_as);

    let peers: Vec<PeerConfig> = raw
        .peers
        .iter()
        .enumerate()
        .filter_map(|(i, r)| peer(&mut p, &format!("peers[{i}]"), r))
        .collect();
    if raw.peers.is_empty() {
        p.add("peers", "at least one peer is required");
    }
    unique(&mut p, "peers", raw.peers.iter().map(|r| r.name.as_deref()));
    let mut seen_addr = HashMap::new();
    for (i, peer) in peers.iter().enumerate() {
        if let Some(first) = seen_addr.insert((peer.spec.address, peer.spec.port), i) {
            p.add(
                format!("peers[{i}].address"),
                format!("peers[{i}] has the same address and port as peers[{first}]"),
            );
        }
    }

    let checks: Vec<CheckConfig> = raw
        .checks
        .iter()
        .enumerate()
        .filter_map(|(i, r)| check(&mut p, &format!("checks[{i}]"), r))
        .collect();
    unique(
        &mut p,
        "checks",
        raw.checks.iter().map(|r| r.name.as_deref()),
    );

    let check_index: HashMap<&str, usize> = raw
        .checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.name.as_deref().map(|n| (n, i)))
        .collect();
    let known_checks = raw
        .checks
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect::<Vec<_>>()
        .join(", ");

    let mut signals: Vec<SignalConfig> = raw
        .signals
        .iter()
        .enumerate()
        .filter_map(|(i, r)| super::signals::signal(&mut p, &format!("signals[{i}]"), r))
        .collect();
    unique(
        &mut p,
        "signals",
        raw.signals.iter().map(|r| r.name.as_deref()),
    );
    let signal_table = super::signals::table(&raw.signals, &signals);

    let mut interner = PolicyInterner::default();
    let mut vips: Vec<VipConfig> = Vec::with_capacity(raw.vips.len());
    for (i, r) in raw.vips.iter().enumerate() {
        let path = format!("vips[{i}]");
        let v = vip(
            &mut p,
            &path,
            r,
            &check_index,
            &known_checks,
            &signal_table,
            &mut interner,
        );
        vips.extend(v);
    }
    if raw.vips.is_empty() {
        p.add("vips", "at least one VIP is required");
    }
    unique(&mut p, "vips", raw.vips.iter().map(|r| r.name.as_deref()));
    prefixes_once(&mut p, &raw.vips);
    super::signals::default_vip_addresses(&mut signals, &vips);
    next_hops_formable(&mut p, &peers, &vips);
    local_pref_needs_ibgp(&mut p, local_as, &peers, &vips);

    let fleet = fleet_and_guards(&mut p, &raw, &mut vips, local_as, router_id);

    let api = api(&mut p, raw.api.as_ref());
    let state_dir = abs_path(&mut p, "state_dir", raw.state_dir.as_deref())
        .unwrap_or_else(|| PathBuf::from("/var/lib/vipwarden"));
    let disable_file = abs_path(&mut p, "disable_file", raw.disable_file.as_deref());
    let on_change = argv(&mut p, "on_change", raw.on_change.as_ref());
    let on_change_timeout = duration(
        &mut p,
        "on_change_timeout",
        raw.on_change_timeout.as_ref(),
        Duration::from_secs(10),
    );
    if on_change_timeout.is_zero() {
        p.add("on_change_timeout", "on_change_timeout must be above 0");
    }

    if !p.0.is_empty() {
        return Err(p.0);
    }
    let mut warnings = super::fieldcheck::warnings(&raw, &signals);
    warnings.extend(unused_checks(&raw));
    let config = Config {
        router_id,
        local_as,
        peers,
        checks,
        vips,
        signals,
        api,
        state_dir,
        disable_file,
        on_change,
        on_change_timeout,
        fleet,
        warnings: Vec::new(),
    };
    Ok((config, warnings))
}

/// A check no VIP lists still probes on every interval but decides nothing: almost always a
/// VIP's `checks:` that forgot it.
fn unused_checks(raw: &RawConfig) -> Vec<Problem> {
    raw.checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let name = c.name.as_deref()?;
            let used = raw.vips.iter().any(|v| v.checks.iter().any(|n| n == name));
            (!used).then(|| Problem {
                path: format!("checks[{i}].name"),
                message: format!(
                    "checks[{i}] ({name}) is not listed in any VIP's checks: it is probed but \
                     decides nothing; add it to a VIP's checks or remove it"
                ),
            })
        })
        .collect()
}

/// Default `fleet.settle`: long enough for a route change to reach every node through the ToRs.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(3);
/// Default `fleet.fail_open_dwell`: a short count must last this long before a VIP comes back.
pub const DEFAULT_FAIL_OPEN_DWELL: Duration = Duration::from_secs(1);
/// Default `fleet.stop_hold_limit`: below the shipped unit's `TimeoutStopSec=90s`.
pub const DEFAULT_STOP_HOLD_LIMIT: Duration = Duration::from_secs(60);

/// `fleet:` and every `vips[].guard`. A guard without `fleet:` uses the defaults (unhealthy
/// community `local_as:666`, settle 3s). With a fleet, every VIP carries this node's identity
/// community so that the other nodes can count it.
fn fleet_and_guards(
    p: &mut Problems,
    raw: &RawConfig,
    vips: &mut [VipConfig],
    local_as: u32,
    router_id: Ipv4Addr,
) -> Option<FleetConfig> {
    let mut guards = Vec::new();
    for (i, r) in raw.vips.iter().enumerate() {
        let Some(g) = &r.guard else { continue };
        let path = format!("vips[{i}].guard");
        // Doubt holds: a peer without ADD-PATH leaves only when the operator says so.
        let when_blind = match g.when_blind.as_deref() {
            None | Some("hold") => WhenBlind::Hold,
            Some("leave") => WhenBlind::Leave,
            Some(o) => {
                p.add(
                    format!("{path}.when_blind"),
                    format!("{path}.when_blind \"{o}\" must be leave or hold"),
                );
                WhenBlind::Hold
            }
        };
        guards.push((
            r.name.clone(),
            g.min_healthy_others.unwrap_or(1),
            when_blind,
        ));
    }
    let any_guard = guards.iter().any(|(_, min, _)| *min > 0);
    if raw.fleet.is_none() && !any_guard {
        return None;
    }
    let rf = raw.fleet.as_ref();
    let settle = duration(
        p,
        "fleet.settle",
        rf.and_then(|f| f.settle.as_ref()),
        DEFAULT_SETTLE,
    );
    if settle > Duration::from_secs(600) {
        p.add("fleet.settle", "fleet.settle is more than 10m");
    }
    if any_guard && settle.is_zero() {
        p.add(
            "fleet.settle",
            "fleet.settle is 0 with a guard: nodes leaving at the same instant would count each \
             other healthy before their marks arrive (use at least the time a route takes to \
             reach every node through the ToRs; default 3s)",
        );
    }
    let fail_open_dwell = duration(
        p,
        "fleet.fail_open_dwell",
        rf.and_then(|f| f.fail_open_dwell.as_ref()),
        DEFAULT_FAIL_OPEN_DWELL,
    );
    if fail_open_dwell > Duration::from_secs(60) {
        p.add(
            "fleet.fail_open_dwell",
            "fleet.fail_open_dwell is more than 1m: a ToR would lose the prefix that long",
        );
    }
    let stop_hold_limit = duration(
        p,
        "fleet.stop_hold_limit",
        rf.and_then(|f| f.stop_hold_limit.as_ref()),
        DEFAULT_STOP_HOLD_LIMIT,
    );
    let unhealthy_community = match rf.and_then(|f| f.unhealthy_community.as_deref()) {
        Some(s) => s.parse::<Community>().unwrap_or_else(|e| {
            p.add(
                "fleet.unhealthy_community",
                format!("fleet.unhealthy_community: {e}"),
            );
            Community(0)
        }),
        None if local_as <= 65535 => Community((local_as << 16) | 666),
        None => {
            p.add(
                "fleet.unhealthy_community",
                format!("fleet.unhealthy_community is required when local_as {local_as} does not fit a 16-bit community"),
            );
            Community(0)
        }
    };
    let identity = crate::fleet::identity_community(local_as, router_id);
    // By name, the first of a repeated name (reported elsewhere) winning: a scan per VIP was
    // quadratic with a guard on every one of 100k VIPs.
    let mut guard_of: HashMap<&str, (u32, WhenBlind)> = HashMap::new();
    for (name, min, when_blind) in &guards {
        if let Some(n) = name {
            guard_of.entry(n.as_str()).or_insert((*min, *when_blind));
        }
    }
    let with_identity = |p: &VipPolicy| {
        let mut p = p.clone();
        if !p.attrs.large_communities.contains(&identity) {
            p.attrs.large_communities.push(identity);
        }
        p
    };
    let mut interner = PolicyInterner::default();
    // A shared policy without a guard of its own becomes the same new one for every VIP that has
    // it: built once. The old `Arc` is kept with it, so its address is not reused by another.
    let mut unguarded: HashMap<*const VipPolicy, (Arc<VipPolicy>, Arc<VipPolicy>)> = HashMap::new();
    for v in vips.iter_mut() {
        let old = &v.spec.policy;
        let policy = match guard_of.get(&*v.spec.name) {
            None => {
                let (_, new) = unguarded
                    .entry(Arc::as_ptr(old))
                    .or_insert_with(|| (Arc::clone(old), interner.intern(with_identity(old))));
                Arc::clone(new)
            }
            Some(&(min, when_blind)) => {
                let mut p = with_identity(old);
                // A graceful drain runs inside the marked phase (the gate counts once both
                // `settle` and the drain, timed or connection-aware, are over).
                p.guard = Some(GuardSpec {
                    min_healthy_others: min,
                    when_blind,
                    settle,
                    dwell: fail_open_dwell,
                });
                interner.intern(p)
            }
        };
        Arc::make_mut(&mut v.spec).policy = policy;
    }
    Some(FleetConfig {
        unhealthy_community,
        settle,
        fail_open_dwell,
        stop_hold_limit,
    })
}

fn asn(p: &mut Problems, path: &str, v: Option<u64>) -> u32 {
    match v {
        None => {
            p.add(path, format!("{path} is required"));
            0
        }
        Some(0) => {
            p.add(
                path,
                format!("{path} 0 is reserved (RFC 7607); use 1..4294967295"),
            );
            0
        }
        Some(AS_TRANS) => {
            p.add(
                path,
                format!("{path} 23456 is AS_TRANS (RFC 6793) and cannot be a real ASN"),
            );
            0
        }
        Some(n) => match u32::try_from(n) {
            Ok(n) => n,
            Err(_) => {
                p.add(path, format!("{path} {n} is larger than 4294967295"));
                0
            }
        },
    }
}

fn ip(p: &mut Problems, path: &str, s: &str) -> Option<IpAddr> {
    match s.trim().parse() {
        Ok(a) => Some(a),
        Err(_) => {
            p.add(path, format!("{path} \"{s}\" is not an IP address"));
            None
        }
    }
}

fn unique<'a>(p: &mut Problems, list: &str, names: impl Iterator<Item = Option<&'a str>>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.enumerate() {
        let Some(name) = name else { continue };
        if let Some(first) = seen.insert(name, i) {
            p.add(
                format!("{list}[{i}].name"),
                format!("{list}[{i}].name \"{name}\" is already used by {list}[{first}]"),
            );
        }
    }
}

fn peer(p: &mut Problems, path: &str, r: &RawPeer) -> Option<PeerConfig> {
    let name = name(p, path, &r.name);
    let address = required(
        p,
        &format!("{path}.address"),
        &r.address,
        "the router's IP address",
    )
    .and_then(|s| ip(p, &format!("{path}.address"), s));
    let remote_as = asn(p, &format!("{path}.remote_as"), r.remote_as);
    let local_address = r
        .local_address
        .as_deref()
        .and_then(|s| ip(p, &format!("{path}.local_address"), s));
    if let (Some(a), Some(l)) = (address, local_address) {
        if a.is_ipv4() != l.is_ipv4() {
            p.add(
                format!("{path}.local_address"),
                format!("{path}.local_address {l} and address {a} are of different IP families"),
            );
        }
    }
    let port = r.port.unwrap_or(179);
    if port == 0 {
        p.add(
            format!("{path}.port"),
            format!("{path}.port 0 is not a usable port"),
        );
    }
    let hold_path = format!("{path}.hold_time");
    let hold_time = duration(p, &hold_path, r.hold_time.as_ref(), Duration::from_secs(9));
    let hold_ok = hold_time.subsec_nanos() == 0
        && (hold_time.is_zero() || (3..=65535).contains(&hold_time.as_secs()));
    if !hold_ok {
        p.add(
            hold_path.as_str(),
            format!("{hold_path} must be 0 (no keepalives) or 3s..65535s in whole seconds (RFC 4271 4.2)"),
        );
    }
    let next_hop_v4 = r.next_hop_v4.as_deref().and_then(|s| {
        let path = format!("{path}.next_hop_v4");
        match s.trim().parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.add(
                    path.as_str(),
                    format!("{path} \"{s}\" is not an IPv4 address"),
                );
                None
            }
        }
    });
    let next_hop_v6 = r.next_hop_v6.as_deref().and_then(|s| {
        let path = format!("{path}.next_hop_v6");
        match s.trim().parse::<Ipv6Addr>() {
            Ok(a) if a.is_unspecified() || a.is_multicast() => {
                p.add(path.as_str(), format!("{path} {a} cannot be a next hop"));
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                p.add(
                    path.as_str(),
                    format!("{path} \"{s}\" is not an IPv6 address"),
                );
                None
            }
        }
    });
    let auth = keys::peer_auth(p, path, r);
    // As before the split: a peer without a name or address stops here, before its BFD block.
    let (name, address) = (name?, address?);
    let bfd = r.bfd.as_ref().map(|b| super::bfd::validate(p, path, b));
    Some(PeerConfig {
        spec: PeerSpec {
            name,
            address,
            remote_as,
            local_address,
            port,
            hold_time,
            next_hop_v4,
            next_hop_v6,
            auth,
            ttl_security: r.ttl_security.unwrap_or(false),
        },
        bfd,
    })
}

/// Keys that belong to one check type only, for "not used by type X" errors.
const TYPE_KEYS: &[(&str, &[&str])] = &[
    ("tcp", &["target"]),
    ("http", &["url", "expect_status", "expect_body", "host"]),
    (
        "https",
        &[
            "url",
            "expect_status",
            "expect_body",
            "host",
            "ca_file",
            "insecure",
        ],
    ),
    ("exec", &["command"]),
    ("listener", &["address", "port", "definitive_fall"]),
    ("process", &["pid_file", "definitive_fall"]),
    ("unit", &["unit", "definitive_fall"]),
];

const KNOWN_TYPES: &str = "tcp, http, https, exec, listener, process, unit";

fn check(p: &mut Problems, path: &str, r: &RawCheck) -> Option<CheckConfig> {
    let name = name(p, path, &r.name);
    let kind_path = format!("{path}.type");
    let kind_name = required(p, &kind_path, &r.kind, KNOWN_TYPES)?.as_str();
    let Some((_, own_keys)) = TYPE_KEYS.iter().find(|(t, _)| *t == kind_name) else {
        p.add(
            kind_path.as_str(),
            format!("{kind_path} \"{kind_name}\" is unknown (known: {KNOWN_TYPES})"),
        );
        return None;
    };
    let present: [(&str, bool); 13] = [
        ("target", r.target.is_some()),
        ("url", r.url.is_some()),
        ("expect_status", r.expect_status.is_some()),
        ("expect_body", r.expect_body.is_some()),
        ("host", r.host.is_some()),
        ("ca_file", r.ca_file.is_some()),
        ("insecure", r.insecure.is_some()),
        ("command", r.command.is_some()),
        ("address", r.address.is_some()),
        ("port", r.port.is_some()),
        ("pid_file", r.pid_file.is_some()),
        ("unit", r.unit.is_some()),
        ("definitive_fall", r.definitive_fall.is_some()),
    ];
    for (key, is_set) in present {
        if is_set && !own_keys.contains(&key) {
            p.add(
                format!("{path}.{key}"),
                format!("{path}.{key} is not used by type {kind_name}"),
            );
        }
    }

    let source = r
        .source
        .as_deref()
        .and_then(|s| ip(p, &format!("{path}.source"), s));
    // A bad kind-specific key must not hide the common keys' problems (rise, interval...):
    // the kind is settled in a closure so its early returns end only that part.
    let kind = (|| -> Option<CheckKind> {
        Some(match kind_name {
            "tcp" => {
                let t = required(
                    p,
                    &format!("{path}.target"),
                    &r.target,
                    "ADDRESS:PORT, e.g. 203.0.113.10:80",
                )?;
                match t.trim().parse::<SocketAddr>() {
                    Ok(target) => {
                        if let Some(s) = source {
                            if s.is_ipv4() != target.is_ipv4() {
                                p.add(format!("{path}.source"), format!("{path}.source {s} and target {target} are of different IP families"));
                            }
                        }
                        CheckKind::Tcp { target }
                    }
                    Err(_) => {
                        p.add(
                            format!("{path}.target"),
                            format!(
                            "{path}.target \"{t}\" is not ADDRESS:PORT (IPv6 as [2001:db8::1]:80)"
                        ),
                        );
                        return None;
                    }
                }
            }
            "http" | "https" => {
                let url = required(
                    p,
                    &format!("{path}.url"),
                    &r.url,
                    "e.g. http://203.0.113.10/healthz",
                )?;
                let tls = kind_name == "https";
                let want = if tls { "https://" } else { "http://" };
                if !url.starts_with(want) {
                    p.add(
                        format!("{path}.url"),
                        format!("{path}.url \"{url}\" must start with {want} for type {kind_name}"),
                    );
                } else if url
                    .parse::<hyper::Uri>()
                    .map(|u| u.host().is_none())
                    .unwrap_or(true)
                {
                    p.add(
                        format!("{path}.url"),
                        format!("{path}.url \"{url}\" is not a valid URL"),
                    );
                }
                let expect_status = r.expect_status.clone().unwrap_or_else(|| vec![200]);
                for (i, s) in expect_status.iter().enumerate() {
                    if !(100..=599).contains(s) {
                        p.add(
                            format!("{path}.expect_status[{i}]"),
                            format!("{path}.expect_status {s} is not an HTTP status (100-599)"),
                        );
                    }
                }
                if expect_status.is_empty() {
                    p.add(
                        format!("{path}.expect_status"),
                        format!("{path}.expect_status must list at least one status"),
                    );
                }
                CheckKind::Http(HttpCheck {
                    url: url.clone(),
                    tls,
                    expect_status,
                    expect_body: r.expect_body.clone(),
                    host: r.host.clone(),
                    ca_file: r.ca_file.as_ref().map(PathBuf::from).inspect(|f| {
                        // A missing CA bundle would fail every probe later; say so now, with file:line.
                        if let Err(e) = std::fs::metadata(f) {
                            p.add(
                                format!("{path}.ca_file"),
                                format!("{path}.ca_file {}: cannot read it: {e}", f.display()),
                            );
                        }
                    }),
                    insecure: r.insecure.unwrap_or(false),
                })
            }
            "listener" => {
                let port = *required(
                    p,
                    &format!("{path}.port"),
                    &r.port,
                    "the listening port, e.g. 80",
                )?;
                if port == 0 {
                    p.add(
                        format!("{path}.port"),
                        format!("{path}.port must be 1-65535"),
                    );
                }
                // No address, or "*": any listener on the port.
                let address = match r.address.as_deref().map(str::trim) {
                    None | Some("*") => None,
                    Some(a) => Some(ip(p, &format!("{path}.address"), a)?),
                };
                if source.is_some() || r.interface.is_some() {
                    p.add(format!("{path}.source"), format!("{path}: source and interface do not apply to listener checks (nothing is sent)"));
                }
                CheckKind::Listener { address, port }
            }
            "process" => {
                let f = required(
                    p,
                    &format!("{path}.pid_file"),
                    &r.pid_file,
                    "absolute path, e.g. /run/nginx.pid",
                )?;
                let pid_file = abs_path(p, &format!("{path}.pid_file"), Some(f.as_str()))?;
                if source.is_some() || r.interface.is_some() {
                    p.add(
                        format!("{path}.source"),
                        format!("{path}: source and interface do not apply to process checks"),
                    );
                }
                CheckKind::Process { pid_file }
            }
            "unit" => {
                let unit = required(
                    p,
                    &format!("{path}.unit"),
                    &r.unit,
                    "a systemd unit name, e.g. nginx.service",
                )?;
                if unit.is_empty()
                    || unit.len() > 255
                    || !unit.contains('.')
                    || unit.contains('/')
                    || unit.contains(char::is_whitespace)
                {
                    p.add(
                        format!("{path}.unit"),
                        format!(
                        "{path}.unit \"{unit}\" is not a systemd unit name (e.g. nginx.service)"
                    ),
                    );
                }
                if source.is_some() || r.interface.is_some() {
                    p.add(
                        format!("{path}.source"),
                        format!("{path}: source and interface do not apply to unit checks"),
                    );
                }
                CheckKind::Unit { unit: unit.clone() }
            }
            _ => {
                let command = required(
                    p,
                    &format!("{path}.command"),
                    &r.command,
                    "argv list, e.g. [/usr/local/bin/check, --fast]",
                )?;
                if command.is_empty() || command[0].is_empty() {
                    p.add(
                        format!("{path}.command"),
                        format!("{path}.command must name a program"),
                    );
                }
                if source.is_some() || r.interface.is_some() {
                    p.add(format!("{path}.source"), format!("{path}: source and interface do not apply to exec checks (the program opens its own sockets)"));
                }
                CheckKind::Exec {
                    command: command.clone(),
                }
            }
        })
    })();

    // A listener check is one netlink round trip and process/unit checks mostly wait for events,
    // so they can afford short intervals; probes that open connections or run programs cannot.
    let (default_interval, min_interval) = match &kind {
        Some(CheckKind::Listener { .. }) => (Duration::from_millis(50), Duration::from_millis(10)),
        Some(CheckKind::Process { .. }) => (Duration::from_millis(250), Duration::from_millis(10)),
        Some(CheckKind::Unit { .. }) => (Duration::from_secs(1), Duration::from_millis(10)),
        _ => (Duration::from_secs(1), Duration::from_millis(100)),
    };
    let interval = duration(
        p,
        &format!("{path}.interval"),
        r.interval.as_ref(),
        default_interval,
    );
    // Default: 500ms, but always shorter than the interval.
    let timeout = duration(
        p,
        &format!("{path}.timeout"),
        r.timeout.as_ref(),
        Duration::from_millis(500).min(interval / 2),
    );
    if interval < min_interval {
        p.add(
            format!("{path}.interval"),
            format!(
                "{path}.interval {} is below the {} minimum for type {kind_name}",
                fmt_d(interval),
                fmt_d(min_interval)
            ),
        );
    }
    let fast_interval = duration(
        p,
        &format!("{path}.fast_interval"),
        r.fast_interval.as_ref(),
        (interval / 5).max(Duration::from_millis(10)).min(interval),
    );
    // The default is clamped into range; only a configured value can be out of it. A probe
    // slower than fast_interval just delays the next one (the scheduler never overlaps them).
    if r.fast_interval.is_some()
        && (fast_interval < Duration::from_millis(10) || fast_interval > interval)
    {
        p.add(
            format!("{path}.fast_interval"),
            format!(
                "{path}.fast_interval {} must be between 10ms and interval {}",
                fmt_d(fast_interval),
                fmt_d(interval)
            ),
        );
    }
    if timeout.is_zero() {
        p.add(
            format!("{path}.timeout"),
            format!("{path}.timeout must be above 0"),
        );
    } else if timeout >= interval {
        p.add(
            format!("{path}.timeout"),
            format!("{path}.timeout {} must be shorter than interval {} (a probe may not overlap the next)", fmt_d(timeout), fmt_d(interval)),
        );
    }
    let rise = r.rise.unwrap_or(2);
    let fall = r.fall.unwrap_or(2);
    for (key, v) in [("rise", rise), ("fall", fall)] {
        if v == 0 {
            p.add(
                format!("{path}.{key}"),
                format!("{path}.{key} must be at least 1"),
            );
        }
    }
    // Only these kinds report facts (an exit, a closed listener, a failed unit): by default such
    // a failure falls at once. A tcp, http or exec failure is a probe's view and waits for `fall`
    // (TYPE_KEYS refuses the key there).
    let reports_facts = matches!(
        kind,
        Some(CheckKind::Listener { .. } | CheckKind::Process { .. } | CheckKind::Unit { .. })
    );
    let definitive_fall = reports_facts && r.definitive_fall.unwrap_or(true);
    if let Some(ifname) = &r.interface {
        // IFNAMSIZ is 16 including the NUL.
        if ifname.is_empty()
            || ifname.len() > 15
            || ifname.contains('/')
            || ifname.contains(char::is_whitespace)
        {
            p.add(
                format!("{path}.interface"),
                format!("{path}.interface \"{ifname}\" is not a Linux interface name"),
            );
        }
    }
    Some(CheckConfig {
        name: name?,
        kind: kind?,
        source,
        interface: r.interface.clone(),
        interval,
        fast_interval,
        timeout,
        rise,
        fall,
        definitive_fall,
    })
}

pub use crate::engine::format_duration as fmt_d;

fn vip(
    p: &mut Problems,
    path: &str,
    r: &RawVip,
    check_index: &HashMap<&str, usize>,
    known_checks: &str,
    signals: &super::signals::SignalTable,
    interner: &mut PolicyInterner,
) -> Option<VipConfig> {
    let name = name(p, path, &r.name);
    if r.prefixes.is_empty() {
        p.add(
            format!("{path}.prefixes"),
            format!("{path}.prefixes must list at least one prefix"),
        );
    }
    let mut prefixes = Vec::new();
    for (i, s) in r.prefixes.iter().enumerate() {
        match s.parse::<Prefix>() {
            Ok(pfx) => prefixes.push(pfx),
            Err(e) => p.add(
                format!("{path}.prefixes[{i}]"),
                format!("{path}.prefixes[{i}]: {e}"),
            ),
        }
    }
    if r.checks.is_empty() {
        p.add(
            format!("{path}.checks"),
            format!("{path}.checks must name at least one check (a VIP without checks would be announced even when the service is down)"),
        );
    }
    let mut checks = Vec::new();
    for (i, c) in r.checks.iter().enumerate() {
        match check_index.get(c.as_str()) {
            Some(&idx) if checks.contains(&idx) => p.add(
                format!("{path}.checks[{i}]"),
                format!("{path}.checks names check \"{c}\" twice"),
            ),
            Some(&idx) => checks.push(idx),
            None => p.add(
                format!("{path}.checks[{i}]"),
                format!(
                    "{path}.checks names unknown check \"{c}\" (known: {})",
                    if known_checks.is_empty() {
                        "none"
                    } else {
                        known_checks
                    }
                ),
            ),
        }
    }
    let require = require(
        p,
        &format!("{path}.require"),
        r.require.as_deref(),
        r.checks.len(),
    );

    let mut communities = Vec::new();
    for (i, s) in r.communities.iter().enumerate() {
        match s.parse::<Community>() {
            Ok(c) => communities.push(c),
            Err(e) => p.add(
                format!("{path}.communities[{i}]"),
                format!("{path}.communities[{i}]: {e}"),
            ),
        }
    }
    let mut large_communities = Vec::new();
    for (i, s) in r.large_communities.iter().enumerate() {
        match s.parse::<LargeCommunity>() {
            // The identity space is the fleet's: a user community there could pose as a node.
            Ok(c) if crate::fleet::in_fleet_space(&c) => p.add(
                format!("{path}.large_communities[{i}]"),
                format!(
                    "{path}.large_communities[{i}]: {s} is in the fleet's identity space \
                     (*:{}:* and *:{}:*), which vipwarden sets itself; use another local data 1",
                    crate::fleet::IDENTITY_TAG,
                    crate::fleet::MARK_TAG
                ),
            ),
            Ok(c) => large_communities.push(c),
            Err(e) => p.add(
                format!("{path}.large_communities[{i}]"),
                format!("{path}.large_communities[{i}]: {e}"),
            ),
        }
    }
    let as_path_prepend = r.as_path_prepend.unwrap_or(0);
    if as_path_prepend > MAX_PREPEND {
        p.add(
            format!("{path}.as_path_prepend"),
            format!("{path}.as_path_prepend {as_path_prepend} is more than {MAX_PREPEND}"),
        );
    }
    let conditions = super::signals::policy(p, path, r, signals);
    let policy = VipPolicy {
        require,
        attrs: RouteAttrs {
            med: r.med,
            local_pref: r.local_pref,
            communities,
            large_communities,
            as_path_prepend,
            link_bandwidth: None,
        },
        withdraw_when: conditions.withdraw_when,
        on_missing: conditions.on_missing,
        hold_down: conditions.hold_down,
        dampening: conditions.dampening,
        lifecycle: lifecycle(p, path, r),
        depreference: depreference(p, path, r, as_path_prepend),
        guard: None,
        weight: r
            .weight
            .as_ref()
            .and_then(|w| super::weight::weight(p, &format!("{path}.weight"), w, signals)),
    };
    let hooks = VipHooks {
        disable_file: abs_path(
            p,
            &format!("{path}.disable_file"),
            r.disable_file.as_deref(),
        ),
        on_change: argv(p, &format!("{path}.on_change"), r.on_change.as_ref()),
    };
    Some(VipConfig {
        spec: Arc::new(VipSpec {
            name: name?,
            prefixes: prefixes.into(),
            checks: interner.check_list(checks),
            policy: interner.intern(policy),
        }),
        hooks: (hooks != VipHooks::default()).then(|| Box::new(hooks)),
    })
}

fn abs_path(p: &mut Problems, path: &str, v: Option<&str>) -> Option<PathBuf> {
    let s = v?;
    if !s.starts_with('/') {
        p.add(path, format!("{path} \"{s}\" must be an absolute path"));
        return None;
    }
    Some(PathBuf::from(s))
}

fn argv(p: &mut Problems, path: &str, v: Option<&Vec<String>>) -> Option<Vec<String>> {
    let a = v?;
    if a.first().is_none_or(|a0| a0.is_empty()) {
        p.add(
            path,
            format!("{path} must name a program (argv list, no shell)"),
        );
        return None;
    }
    Some(a.clone())
}

fn api(p: &mut Problems, raw: Option<&RawApi>) -> ApiConfig {
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 9180));
    let listen = match raw.and_then(|a| a.listen.as_deref()) {
        None => default_listen,
        Some(s) => s.trim().parse().unwrap_or_else(|_| {
            p.add(
                "api.listen",
                format!("api.listen \"{s}\" is not ADDRESS:PORT"),
            );
            default_listen
        }),
    };
    let token_file = abs_path(
        p,
        "api.token_file",
        raw.and_then(|a| a.token_file.as_deref()),
    );
    let loopback = ApiConfig {
        listen,
        ..ApiConfig::loopback_default()
    }
    .listen_is_loopback();
    let read_token = raw.and_then(|a| a.read_token).unwrap_or(!loopback);
    if read_token && token_file.is_none() && loopback {
        p.add(
            "api.read_token",
            "api.read_token: true needs api.token_file (the token reads must carry)".to_string(),
        );
    }
    let tls = raw.and_then(|a| a.tls.as_ref()).and_then(|t| {
        let cert = abs_path(p, "api.tls.cert_file", t.cert_file.as_deref());
        let key = abs_path(p, "api.tls.key_file", t.key_file.as_deref());
        for (k, v) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
            if v.is_none() {
                p.add(format!("api.tls.{k}"), format!("api.tls needs {k} (PEM)"));
            }
        }
        Some(ApiTls {
            cert_file: cert?,
            key_file: key?,
        })
    });
    let tls_missing = raw.and_then(|a| a.tls.as_ref()).is_none();
    if !loopback && (token_file.is_none() || tls_missing) {
        let mut need = Vec::new();
        if token_file.is_none() {
            need.push("api.token_file, or anyone who reaches it could drain this node");
        }
        if tls_missing {
            need.push("api.tls {cert_file, key_file}, so the bearer token never crosses the network in clear text");
        }
        p.add(
            "api.listen",
            format!(
                "api.listen {listen} is not a loopback address: set {}",
                need.join("; and ")
            ),
        );
    }
    ApiConfig {
        listen,
        token_file,
        read_token,
        tls,
    }
}

fn strategy(
    p: &mut Problems,
    path: &str,
    v: Option<&str>,
    default: DrainStrategy,
) -> DrainStrategy {
    match v {
        None => default,
        Some("graceful") => DrainStrategy::Graceful,
        Some("withdraw") => DrainStrategy::Withdraw,
        Some(o) => {
            p.add(path, format!("{path} \"{o}\" must be graceful or withdraw"));
            default
        }
    }
}

/// `drain_until_connections`: a count (default 0: every connection gone), or `off` for a drain
/// timed by `drain_period` alone.
fn drain_until_connections(p: &mut Problems, path: &str, v: Option<&Value>) -> Option<u32> {
    match v {
        None => Some(0),
        Some(Value::String(s)) if s == "off" => None,
        Some(v) => match v.as_u64().map(u32::try_from) {
            Some(Ok(n)) => Some(n),
            _ => {
                p.add(
                    path,
                    format!("{path} must be a number of connections (0: all gone) or off (a drain timed by drain_period alone)"),
                );
                Some(0)
            }
        },
    }
}

fn lifecycle(p: &mut Problems, path: &str, r: &RawVip) -> LifecycleSpec {
    let drain = strategy(
        p,
        &format!("{path}.drain"),
        r.drain.as_deref(),
        DrainStrategy::Withdraw,
    );
    let period_path = format!("{path}.drain_period");
    let drain_period = duration(
        p,
        &period_path,
        r.drain_period.as_deref(),
        Duration::from_secs(30),
    );
    if drain_period > Duration::from_secs(3600) {
        p.add(
            period_path.as_str(),
            format!("{period_path} is more than 1h"),
        );
    }
    let on_unhealthy = match r.on_unhealthy.as_deref() {
        None | Some("withdraw") => OnUnhealthy::Withdraw,
        Some("depreference") => OnUnhealthy::Depreference,
        Some(o) => {
            p.add(
                format!("{path}.on_unhealthy"),
                format!("{path}.on_unhealthy \"{o}\" must be withdraw or depreference"),
            );
            OnUnhealthy::Withdraw
        }
    };
    // A stop drains like a manual drain unless told otherwise.
    let shutdown = strategy(p, &format!("{path}.shutdown"), r.shutdown.as_deref(), drain);
    let min_path = format!("{path}.drain_min");
    let drain_min = duration(p, &min_path, r.drain_min.as_deref(), Duration::ZERO);
    if drain_min > drain_period {
        p.add(
            min_path.as_str(),
            format!("{min_path} is longer than drain_period ({drain_period:?})"),
        );
    }
    let idle_path = format!("{path}.drain_idle");
    let drain_idle = match r.drain_idle.as_deref() {
        None => None,
        Some(Value::String(s)) if s == "off" => None,
        Some(v) => {
            // (A value that is no duration at all gets the floor, so only its own error shows.)
            let floor = Duration::from_millis(200);
            let d = duration(p, &idle_path, Some(v), floor);
            if d < floor {
                p.add(
                    idle_path.as_str(),
                    format!("{idle_path} must be at least 200ms (or off): a client between two requests is silent too"),
                );
            }
            Some(d)
        }
    };
    let until_path = format!("{path}.drain_until_connections");
    let drain_until_connections =
        drain_until_connections(p, &until_path, r.drain_until_connections.as_deref());
    LifecycleSpec {
        drain,
        drain_period,
        on_unhealthy,
        shutdown,
        drain_until_connections,
        drain_min: drain_min.min(drain_period),
        drain_idle,
    }
}

fn depreference(p: &mut Problems, path: &str, r: &RawVip, base_prepend: u8) -> Depreference {
    let Some(d) = &r.depreference else {
        return Depreference::default();
    };
    let extra = d.as_path_prepend.unwrap_or(0);
    if base_prepend.saturating_add(extra) > MAX_PREPEND {
        p.add(
            format!("{path}.depreference.as_path_prepend"),
            format!("{path}.depreference.as_path_prepend {extra} plus as_path_prepend {base_prepend} is more than {MAX_PREPEND}"),
        );
    }
    Depreference {
        med: d.med,
        local_pref: d.local_pref,
        as_path_prepend: extra,
    }
}

fn require(p: &mut Problems, path: &str, v: Option<&Value>, n_checks: usize) -> Require {
    let bad = format!("{path} must be all, any or {{at_least: N}}");
    let r = match v {
        None => Require::All,
        Some(Value::String(s)) if s == "all" => Require::All,
        Some(Value::String(s)) if s == "any" => Require::Any,
        Some(Value::Mapping(m)) if m.len() == 1 => {
            match m.get("at_least").and_then(Value::as_u64) {
                Some(n) => Require::AtLeast(u32::try_from(n).unwrap_or(u32::MAX)),
                None => {
                    p.add(path, bad);
                    return Require::All;
                }
            }
        }
        Some(_) => {
            p.add(path, bad);
            return Require::All;
        }
    };
    if let Require::AtLeast(n) = r {
        if n == 0 || n as usize > n_checks {
            p.add(
                path,
                format!(
                    "{path} at_least {n} must be between 1 and the number of checks ({n_checks})"
                ),
            );
        }
    }
    r
}

fn prefixes_once(p: &mut Problems, vips: &[RawVip]) {
    let mut owner: BTreeMap<Prefix, (usize, usize)> = BTreeMap::new();
    for (v, vip) in vips.iter().enumerate() {
        for (i, s) in vip.prefixes.iter().enumerate() {
            let Ok(pfx) = s.parse::<Prefix>() else {
                continue;
            };
            if let Some((fv, fi)) = owner.insert(pfx, (v, i)) {
                p.add(
                    format!("vips[{v}].prefixes[{i}]"),
                    format!("vips[{v}].prefixes[{i}] {pfx} is already announced by vips[{fv}].prefixes[{fi}]; a prefix can belong to one VIP only"),
                );
            }
        }
    }
}

/// IPv6 NLRI over an IPv4 session needs an explicit IPv6 next hop, and the reverse for IPv4 NLRI
/// over an IPv6 session (we do not do RFC 8950 extended next hop).
/// LOCAL_PREF is only sent to iBGP peers: on a node whose every session is eBGP it would be
/// silently dropped, so it is an error rather than a no-op.
fn local_pref_needs_ibgp(
    p: &mut Problems,
    local_as: u32,
    peers: &[PeerConfig],
    vips: &[VipConfig],
) {
    if peers.is_empty() || peers.iter().any(|peer| peer.spec.remote_as == local_as) {
        return;
    }
    for (i, v) in vips.iter().enumerate() {
        if let Some(lp) = v.spec.policy.attrs.local_pref {
            p.add(
                format!("vips[{i}].local_pref"),
                format!("vips[{i}].local_pref {lp}: every peer is eBGP (remote_as differs from local_as {local_as}) and LOCAL_PREF is only sent over iBGP; remove it, or steer with med or as_path_prepend"),
            );
        }
        if let Some(lp) = v.spec.policy.depreference.local_pref {
            p.add(
                format!("vips[{i}].depreference.local_pref"),
                format!("vips[{i}].depreference.local_pref {lp}: every peer is eBGP (remote_as differs from local_as {local_as}) and LOCAL_PREF is only sent over iBGP, so draining would not de-prefer; use depreference.med or depreference.as_path_prepend"),
            );
        }
    }
}

fn next_hops_formable(p: &mut Problems, peers: &[PeerConfig], vips: &[VipConfig]) {
    let has_v4 = vips
        .iter()
        .any(|v| v.spec.prefixes.iter().any(Prefix::is_ipv4));
    let has_v6 = vips
        .iter()
        .any(|v| v.spec.prefixes.iter().any(|x| !x.is_ipv4()));
    let mut reported = HashSet::new();
    for (i, peer) in peers.iter().enumerate() {
        if has_v6
            && peer.spec.address.is_ipv4()
            && peer.spec.next_hop_v6.is_none()
            && reported.insert((i, 6))
        {
            p.add(
                format!("peers[{i}]"),
                format!("peers[{i}] ({}) is an IPv4 session but VIPs have IPv6 prefixes: set next_hop_v6 (an IPv6 address of this node on the link to the router)", peer.spec.name),
            );
        }
        if has_v4
            && peer.spec.address.is_ipv6()
            && peer.spec.next_hop_v4.is_none()
            && reported.insert((i, 4))
        {
            p.add(
                format!("peers[{i}]"),
                format!("peers[{i}] ({}) is an IPv6 session but VIPs have IPv4 prefixes: set next_hop_v4 (an IPv4 address of this node on the link to the router)", peer.spec.name),
            );
        }
    }
}
