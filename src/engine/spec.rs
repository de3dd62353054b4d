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

/// One VIP's route policy.
#[derive(Clone, Debug, PartialEq)]
pub struct VipSpec {
    pub name: Arc<str>,
    pub prefixes: Vec<Prefix>,
    /// Indexes into the engine's check list.
    pub checks: Vec<usize>,
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

impl VipSpec {
    /// A VIP with the defaults for everything but its name, prefixes and checks.
    pub fn new(name: &str, prefixes: Vec<Prefix>, checks: Vec<usize>) -> VipSpec {
        VipSpec {
            name: name.into(),
            prefixes,
            checks,
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
