//! The engine's inputs: what to decide about, in the engine's own terms. `config` builds these
//! from the YAML (config -> engine is the only direction); tests build them directly.

use std::sync::Arc;
use std::time::Duration;

use super::condition::ConditionSpec;
use super::dampening::DampeningSpec;
use super::lifecycle::LifecycleSpec;
use crate::route::{Prefix, RouteAttrs};

/// One active check, as far as the decision core cares: how it is named and how many results in a
/// row flip it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    pub name: Arc<str>,
    /// "tcp", "http", "https", "exec", ... (shown in status).
    pub kind: &'static str,
    /// Consecutive passes before the check is up.
    pub rise: u32,
    /// Consecutive failures before the check is down.
    pub fall: u32,
}

/// One VIP: its name, prefixes and checks, and its policy. Shared (`Arc`) by the loaded
/// configuration and the engine, so a VIP's spec exists once however many hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct VipSpec {
    pub name: Arc<str>,
    /// Shared with the route tables and the status view, which name a VIP's prefixes.
    pub prefixes: Arc<[Prefix]>,
    /// Indexes into the engine's check list; VIPs listing the same checks share one list.
    pub checks: Arc<[usize]>,
    /// Everything else. VIPs written alike share one (`VipPolicy::intern`): 100k VIPs of one
    /// shape hold one policy, not 100k copies of ~400 bytes.
    pub policy: Arc<VipPolicy>,
}

/// A VIP's route policy: what it requires of its checks, its attributes, and how it leaves and
/// comes back.
#[derive(Clone, Debug, PartialEq)]
pub struct VipPolicy {
    pub require: Require,
    pub attrs: RouteAttrs,
    /// Traffic conditions that withdraw the VIP while active.
    pub withdraw_when: Vec<ConditionSpec>,
    pub on_missing: OnMissing,
    /// Minimum time withdrawn before any restore.
    pub hold_down: Duration,
    pub dampening: Option<DampeningSpec>,
    /// How drains, ill health and stops move the route (announced/draining/withdrawn).
    pub lifecycle: LifecycleSpec,
    pub depreference: Depreference,
    /// Fleet guard (never withdraw the last healthy announcer); None = off.
    pub guard: Option<crate::fleet::GuardSpec>,
    /// Weighted anycast (RFC 10005 link bandwidth); None = no weight sent.
    pub weight: Option<super::weight::WeightSpec>,
}

impl Default for VipPolicy {
    fn default() -> VipPolicy {
        VipPolicy {
            require: Require::All,
            attrs: RouteAttrs::default(),
            withdraw_when: Vec::new(),
            on_missing: OnMissing::default(),
            hold_down: Duration::ZERO,
            dampening: None,
            lifecycle: LifecycleSpec::default(),
            depreference: Depreference::default(),
            guard: None,
            weight: None,
        }
    }
}

impl VipSpec {
    /// A VIP with the default policy.
    pub fn new(name: &str, prefixes: Vec<Prefix>, checks: Vec<usize>) -> VipSpec {
        VipSpec {
            name: name.into(),
            prefixes: prefixes.into(),
            checks: checks.into(),
            policy: Arc::default(),
        }
    }

    /// The policy to change (a copy of it first if another VIP shares it).
    pub fn policy_mut(&mut self) -> &mut VipPolicy {
        Arc::make_mut(&mut self.policy)
    }
}

/// Hands out one `Arc` per distinct policy. Configurations list VIPs of a few shapes, usually
/// one after another, so a short list of the recent distinct ones finds nearly every match; a
/// miss only costs sharing, never correctness.
#[derive(Default)]
pub struct PolicyInterner {
    recent: Vec<Arc<VipPolicy>>,
    check_lists: std::collections::HashMap<Vec<usize>, Arc<[usize]>>,
}

impl PolicyInterner {
    const RECENT: usize = 16;

    pub fn intern(&mut self, policy: VipPolicy) -> Arc<VipPolicy> {
        if let Some(i) = self.recent.iter().position(|p| **p == policy) {
            let hit = self.recent.remove(i);
            self.recent.push(Arc::clone(&hit));
            return hit;
        }
        let new = Arc::new(policy);
        if self.recent.len() == Self::RECENT {
            self.recent.remove(0);
        }
        self.recent.push(Arc::clone(&new));
        new
    }

    /// One shared list per distinct `checks:` (a handful of them, even at 100k VIPs).
    pub fn check_list(&mut self, checks: Vec<usize>) -> Arc<[usize]> {
        let list = self
            .check_lists
            .entry(checks)
            .or_insert_with_key(|c| c[..].into());
        Arc::clone(list)
    }
}

/// How many of a VIP's checks must be up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Require {
    All,
    Any,
    AtLeast(u32),
}

impl std::fmt::Display for Require {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Require::All => f.write_str("all"),
            Require::Any => f.write_str("any"),
            Require::AtLeast(n) => write!(f, "at_least {n}"),
        }
    }
}

/// What de-preference changes while a VIP drains (beyond GRACEFUL_SHUTDOWN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Depreference {
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// Extra prepends on top of the VIP's own.
    pub as_path_prepend: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnMissing {
    /// Keep the condition's state (default).
    #[default]
    Hold,
    /// No data counts as a tripped condition.
    Withdraw,
    /// No data counts as a clear condition.
    Ignore,
}
