//! Pure decision core: check results plus an injected clock in, route decisions out. No I/O, no
//! tokio, no wall clock, so hours of input can be replayed deterministically in tests.

mod risefall;

pub use risefall::{RiseFall, Step};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{CheckKind, Config, Require};
use crate::route::{DesiredRoute, DesiredRoutes, Prefix, RouteAttrs};

/// One active-check result, as the engine sees it.
#[derive(Clone, Debug)]
pub struct Observation {
    /// Index into `Config::checks`.
    pub check: usize,
    pub ok: bool,
    /// What happened, e.g. "connect refused" or "HTTP 200 in 3.1 ms".
    pub detail: String,
}

/// A change of a VIP's announcement, with the reason and figures that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub vip: Arc<str>,
    pub announce: bool,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct CheckState {
    pub name: Arc<str>,
    pub kind: &'static str,
    pub rise_fall: RiseFall,
    pub last_ok: Option<bool>,
    pub last_detail: String,
    pub last_at: Option<Instant>,
}

#[derive(Clone, Debug)]
pub struct VipState {
    pub name: Arc<str>,
    pub prefixes: Vec<Prefix>,
    pub checks: Vec<usize>,
    pub require: Require,
    pub attrs: RouteAttrs,
    pub announced: bool,
    pub reason: String,
    pub since: Instant,
}

pub struct Engine {
    checks: Vec<CheckState>,
    vips: Vec<VipState>,
}

impl Engine {
    /// Everything starts down: no VIP is announced until its checks have passed `rise` times.
    pub fn new(config: &Config, now: Instant) -> Engine {
        let checks: Vec<CheckState> = config
            .checks
            .iter()
            .map(|c| CheckState {
                name: c.name.clone(),
                kind: match &c.kind {
                    CheckKind::Tcp { .. } => "tcp",
                    CheckKind::Http(h) if h.tls => "https",
                    CheckKind::Http(_) => "http",
                    CheckKind::Exec { .. } => "exec",
                },
                rise_fall: RiseFall::new(c.rise, c.fall),
                last_ok: None,
                last_detail: String::new(),
                last_at: None,
            })
            .collect();
        let vips = config
            .vips
            .iter()
            .map(|v| VipState {
                name: v.name.clone(),
                prefixes: v.prefixes.clone(),
                checks: v.checks.clone(),
                require: v.require,
                attrs: v.attrs.clone(),
                announced: false,
                reason: waiting_reason(v.checks.iter().map(|&i| &checks[i])),
                since: now,
            })
            .collect();
        Engine { checks, vips }
    }

    pub fn checks(&self) -> &[CheckState] {
        &self.checks
    }

    pub fn vips(&self) -> &[VipState] {
        &self.vips
    }

    /// Feeds one check result; returns the VIPs whose announcement changed because of it.
    pub fn observe(&mut self, obs: &Observation, now: Instant) -> Vec<Decision> {
        let Some(check) = self.checks.get_mut(obs.check) else {
            return Vec::new();
        };
        check.rise_fall.observe(obs.ok);
        check.last_ok = Some(obs.ok);
        check.last_detail.clone_from(&obs.detail);
        check.last_at = Some(now);
        let trigger = describe_step(check, obs);

        let mut decisions = Vec::new();
        for vip in self.vips.iter_mut().filter(|v| v.checks.contains(&obs.check)) {
            let (up, total) = count_up(&self.checks, &vip.checks);
            let healthy = satisfied(vip.require, up, total);
            let reason = if total > 1 {
                format!("{trigger} (require {}: {up}/{total} checks up)", vip.require)
            } else {
                trigger.clone()
            };
            if healthy == vip.announced {
                if !healthy && !obs.ok {
                    // Still down: keep the reason current with the latest failure.
                    vip.reason = reason;
                }
                continue;
            }
            vip.announced = healthy;
            vip.since = now;
            vip.reason = reason;
            decisions.push(Decision {
                vip: vip.name.clone(),
                announce: healthy,
                reason: vip.reason.clone(),
            });
        }
        decisions
    }

    /// The routes every peer should carry now. `generation` is left for the publisher to set.
    pub fn desired(&self) -> DesiredRoutes {
        let mut routes = BTreeMap::new();
        let mut reasons = BTreeMap::new();
        let mut vip_prefixes = BTreeMap::new();
        for vip in &self.vips {
            reasons.insert(vip.name.clone(), vip.reason.clone());
            vip_prefixes.insert(vip.name.clone(), vip.prefixes.clone());
            if vip.announced {
                for p in &vip.prefixes {
                    routes.insert(
                        *p,
                        DesiredRoute {
                            vip: vip.name.clone(),
                            attrs: vip.attrs.clone(),
                        },
                    );
                }
            }
        }
        DesiredRoutes {
            generation: 0,
            routes,
            reasons,
            vip_prefixes,
        }
    }
}

fn count_up(checks: &[CheckState], idx: &[usize]) -> (usize, usize) {
    let up = idx
        .iter()
        .filter(|&&i| checks.get(i).is_some_and(|c| c.rise_fall.is_up()))
        .count();
    (up, idx.len())
}

fn satisfied(require: Require, up: usize, total: usize) -> bool {
    match require {
        Require::All => total > 0 && up == total,
        Require::Any => up > 0,
        Require::AtLeast(n) => up >= n as usize,
    }
}

/// "check web failed 2/2: connect refused" / "check web passed 2/2".
fn describe_step(check: &CheckState, obs: &Observation) -> String {
    let rf = &check.rise_fall;
    let (verb, need) = if obs.ok {
        ("passed", rf.rise())
    } else {
        ("failed", rf.fall())
    };
    let streak = rf.streak().min(need);
    if obs.ok {
        format!("check {} {verb} {streak}/{need}", check.name)
    } else {
        format!("check {} {verb} {streak}/{need}: {}", check.name, obs.detail)
    }
}

fn waiting_reason<'a>(checks: impl Iterator<Item = &'a CheckState>) -> String {
    let names: Vec<String> = checks
        .map(|c| format!("{} (rise {})", c.name, c.rise_fall.rise()))
        .collect();
    format!("starting: waiting for checks {}", names.join(", "))
}

#[cfg(test)]
mod tests;
