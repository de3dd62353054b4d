//! The daemon's control surface: what it shows (status, events) and what it accepts (drain,
//! undrain). The HTTP API serves these as JSON; the CLI reads them back over HTTP. The daemon is
//! the only writer; the API only reads snapshots and sends commands.
//!
//! Owns only these types (no logic, no I/O): both the daemon and the API import it, it imports
//! only `engine::VipState` and `route::Prefix`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::engine::VipState;
use crate::route::Prefix;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusView {
    pub version: String,
    pub router_id: String,
    pub local_as: u32,
    /// Unix seconds when the daemon started.
    pub started_at: u64,
    pub config: ConfigView,
    pub peers: Vec<PeerView>,
    pub vips: Vec<VipView>,
    /// Problems the operator must see (e.g. state file not writable).
    pub errors: Vec<String>,
    /// Transitions since start per (VIP, new state), for `vipwarden_route_changes_total`. Kept by
    /// the daemon because the bounded event list undercounts (and would shrink) once it wraps.
    #[serde(default)]
    pub route_changes: Vec<RouteChangeCount>,
    /// Per access-log signal: how much of its window is in its format.
    #[serde(default)]
    pub signals: Vec<LogSignalView>,
    /// BFD packets that matched no peer's session (wrong source, ...), by reason, since start.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bfd_unmatched: std::collections::BTreeMap<String, u64>,
    /// The daemon's PID (`vipwarden upgrade` signals it); 0 from a daemon that does not say.
    #[serde(default)]
    pub pid: u32,
    /// What this process took over from the one it replaced (in-place upgrade), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgraded: Option<UpgradeView>,
    /// The last in-place upgrade this process refused or that failed, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_failed: Option<UpgradeFailure>,
}

/// An in-place upgrade this process came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeView {
    pub from_pid: u32,
    pub from_version: String,
    /// The BGP sessions taken over, by peer name.
    pub sessions: Vec<String>,
    pub checks: usize,
    pub vips: usize,
    /// From the signal in the old process to `go` here (both clocks are the host's).
    pub handover_ms: u64,
    /// Unix milliseconds when this process took over.
    pub at_ms: u64,
}

/// An in-place upgrade that did not take place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeFailure {
    pub at_ms: u64,
    pub reason: String,
}

/// An access-log signal's window: lines, malformed lines and a sample of one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSignalView {
    pub name: String,
    pub format: String,
    pub lines: u64,
    pub malformed: u64,
    pub malformed_ratio: Option<f64>,
    pub malformed_sample: Option<String>,
    /// More than half the window's lines are not in the format.
    pub not_understood: bool,
}

/// How many times a VIP entered a state since the daemon started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteChangeCount {
    pub vip: Arc<str>,
    pub to: VipState,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfigView {
    pub path: String,
    /// Grows by one for every config applied (start = 1).
    pub generation: u64,
    /// Unix seconds of the last successful load.
    pub loaded_at: u64,
    /// Why the last reload was refused (the running config stayed), if it was.
    pub last_reload_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeerView {
    pub name: String,
    pub address: String,
    pub remote_as: u32,
    /// idle | connect | opensent | openconfirm | established
    pub state: String,
    /// Unix seconds since the session is Established.
    pub established_since: Option<u64>,
    pub uptime_secs: Option<u64>,
    pub prefixes_announced: usize,
    pub updates_sent: u64,
    pub updates_received: u64,
    pub connect_attempts: u64,
    pub last_error: Option<String>,
    /// Established sessions that ended since the daemon started.
    #[serde(default)]
    pub flaps: u64,
    /// Why the last session or attempt ended, as a stable label (`hold_timer_expired`,
    /// `connect_refused`, `peer_cease`, ...; see `bgp::EndReason::kind`).
    #[serde(default)]
    pub last_end: Option<String>,
    /// Session ends since start, by the same labels.
    #[serde(default)]
    pub session_ends: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub route_refresh_received: u64,
    /// Times the daemon fell behind this peer's UPDATEs and the session resent its whole table
    /// of VIP paths to the fleet view (`fleet_deltas_replaced`: the deltas those resyncs covered).
    #[serde(default)]
    pub fleet_resyncs: u64,
    #[serde(default)]
    pub fleet_deltas_replaced: u64,
    /// BFD with this peer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdView>,
}

/// One peer's BFD session (RFC 5880 terms).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BfdView {
    /// admindown | down | init | up
    pub state: String,
    pub remote_state: String,
    /// Our address and source port.
    pub local: Option<String>,
    /// Interface index the session runs on: packets from any other are discarded.
    #[serde(default)]
    pub ifindex: Option<u32>,
    /// keyed-sha1 | meticulous-keyed-sha1 (RFC 5880 6.7.4); None: no authentication.
    #[serde(default)]
    pub authentication: Option<String>,
    /// Sequence number of the last authenticated packet accepted from the router.
    #[serde(default)]
    pub auth_sequence_received: Option<u32>,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// Negotiated transmit interval (before jitter).
    pub tx_interval_ms: Option<f64>,
    /// Silence after which we declare the session Down.
    pub detect_time_ms: f64,
    pub remote_multiplier: u8,
    /// Why the session last left Up.
    pub last_diagnostic: Option<String>,
    pub remote_diagnostic: String,
    pub state_changes: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Discarded packets by reason (RFC 5880 6.8.6 checks, authentication, TTL below 255,
    /// wrong interface, receive queue full).
    pub discarded: std::collections::BTreeMap<String, u64>,
    pub send_errors: u64,
    /// Why the session has no sockets yet.
    pub setup_error: Option<String>,
}

/// At 100k VIPs the status view is rebuilt for every change, so a VIP's view shares what the
/// engine already holds (name, prefixes, reason) and boxes what few VIPs have.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VipView {
    pub name: Arc<str>,
    pub prefixes: PrefixList,
    pub state: VipState,
    pub reason: Arc<str>,
    /// Unix seconds when the state began.
    pub since: u64,
    /// Shared by every VIP that uses the check (one copy per check, not per VIP: 100k VIPs over
    /// 100 checks held 100k copies, ~70 MB).
    pub checks: Arc<[Arc<CheckView>]>,
    pub conditions: Box<[ConditionView]>,
    /// Drains, fleet guard, weight: set on few VIPs, so one box (None) for the rest. Its fields
    /// sit in the VIP's JSON object like the others.
    #[serde(flatten)]
    pub extra: Option<Box<VipExtra>>,
}

impl VipView {
    pub fn drain_connections(&self) -> Option<u32> {
        self.extra.as_ref()?.drain_connections
    }

    pub fn drain_connections_silent(&self) -> Option<u32> {
        self.extra.as_ref()?.drain_connections_silent
    }

    pub fn fleet(&self) -> Option<&FleetVipView> {
        self.extra.as_ref()?.fleet.as_ref()
    }

    pub fn weight(&self) -> Option<&WeightView> {
        self.extra.as_ref()?.weight.as_ref()
    }
}

/// The parts of a VIP's view that only drains, guards and weights have.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VipExtra {
    /// Connection-aware drain in progress: established connections left (None: not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_connections: Option<u32>,
    /// Connections left out of that count as silent (`drain_idle`): received nothing for that long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_connections_silent: Option<u32>,
    /// Why connections are not counted during a connection-aware drain (falls back to the period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_note: Option<Box<str>>,
    /// Seconds the running drain has lasted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining_for_s: Option<f64>,
    /// The fleet guard's view and verdict, when the VIP has a guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetVipView>,
    /// The announced weight (RFC 10005 link bandwidth), when the VIP has `weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<WeightView>,
}

impl VipExtra {
    /// None when nothing is set, so a plain VIP carries no box.
    pub fn boxed(self) -> Option<Box<VipExtra>> {
        let empty = self.drain_connections.is_none()
            && self.drain_connections_silent.is_none()
            && self.drain_note.is_none()
            && self.draining_for_s.is_none()
            && self.fleet.is_none()
            && self.weight.is_none();
        (!empty).then(|| Box::new(self))
    }
}

/// A VIP's prefixes, shown as text ("203.0.113.10/32"); in the daemon, the engine's own list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixList(pub Arc<[Prefix]>);

impl std::ops::Deref for PrefixList {
    type Target = [Prefix];
    fn deref(&self) -> &[Prefix] {
        &self.0
    }
}

impl Serialize for PrefixList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for PrefixList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PrefixList, D::Error> {
        let text = Vec::<String>::deserialize(d)?;
        let parsed: Result<Vec<Prefix>, _> = text.iter().map(|t| t.parse::<Prefix>()).collect();
        parsed
            .map(|p| PrefixList(p.into()))
            .map_err(|e| serde::de::Error::custom(format!("a VIP prefix: {e}")))
    }
}

/// A weighted VIP's announced link bandwidth and why.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WeightView {
    /// Bytes per second on the route now (0 while not announced).
    pub bytes_per_sec: u64,
    /// At full health.
    pub capacity_bytes_per_sec: u64,
    pub reason: String,
    /// The `scale_when` conditions.
    pub conditions: Vec<ConditionView>,
}

/// A guarded VIP's fleet view: the other announcers each ToR shows, and the guard's verdict.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetVipView {
    /// idle | marked | held | left
    pub guard: String,
    pub min_healthy_others: u32,
    /// leave | hold
    pub when_blind: String,
    /// Per prefix: distinct healthy / marked other announcers over all ToRs.
    pub prefixes: Vec<FleetPrefixView>,
    pub peers: Vec<FleetPeerView>,
    /// What limits the view (no ADD-PATH, sessions down), with the router-side line to add.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetPrefixView {
    pub prefix: String,
    pub healthy: Vec<String>,
    pub marked: Vec<String>,
    /// No peer shows every path of this prefix.
    pub blind: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetPeerView {
    pub peer: String,
    /// down | partial | loading | full | disabled | behind
    pub view: String,
    pub announcers: Vec<FleetAnnouncerView>,
    /// The gate towards this ToR while the VIP is not announced normally: `out` (withdrawn
    /// there) or `held` (announced marked there); empty otherwise.
    #[serde(default)]
    pub guard: String,
    /// The gate's last verdict at this ToR, with its figures.
    #[serde(default)]
    pub guard_reason: String,
    /// How long our mark took to come back reflected from this ToR (ToRs that reflect our
    /// path), in ms: `fleet.settle` should exceed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_propagation_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetAnnouncerView {
    pub prefix: String,
    /// Router id from the identity community, or "path N" without one.
    pub node: String,
    pub path_id: u32,
    pub next_hop: Option<String>,
    /// healthy | marked
    pub health: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckView {
    pub name: String,
    pub kind: String,
    pub up: bool,
    pub last_ok: Option<bool>,
    pub last_detail: String,
    pub last_duration_ms: Option<f64>,
    /// Totals since start, for metrics.
    pub passes: u64,
    pub failures: u64,
    /// Every probe's duration since start, for `vipwarden_check_duration_seconds`.
    #[serde(default)]
    pub durations: DurationHistogram,
}

/// Upper bounds (seconds) of the check-duration histogram; a last `+Inf` bucket is implied.
pub const CHECK_DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counts per bucket of [`CHECK_DURATION_BUCKETS`] (not cumulative; one more for `+Inf`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationHistogram {
    pub buckets: Vec<u64>,
    pub sum_secs: f64,
    pub count: u64,
}

impl DurationHistogram {
    pub fn observe(&mut self, secs: f64) {
        if self.buckets.len() != CHECK_DURATION_BUCKETS.len() + 1 {
            self.buckets = vec![0; CHECK_DURATION_BUCKETS.len() + 1];
        }
        let i = CHECK_DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(CHECK_DURATION_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum_secs += secs;
        self.count += 1;
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConditionView {
    /// `SIGNAL.VALUE`
    pub signal: String,
    pub value: Option<f64>,
    /// clear | tripping | active | clearing
    pub phase: String,
    pub description: String,
    /// The thresholds in force: trips above `trip_above`, restores below `restore_below`
    /// (for a baseline condition, the factors times the current baseline; None while learning).
    #[serde(default)]
    pub trip_above: Option<f64>,
    #[serde(default)]
    pub restore_below: Option<f64>,
}

/// One decision, as `GET /v1/events` lists them (newest last); `from` and `to` both `draining`
/// is a connection-aware drain's progress (its count changed); with `weight`, a weight change
/// (`from` and `to` the VIP's state).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventView {
    /// Unix milliseconds.
    pub at_ms: u64,
    pub vip: String,
    pub from: VipState,
    pub to: VipState,
    pub reason: String,
    /// The new weight in bytes per second, for a weight change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
}

/// What the API asks the daemon to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Put one VIP (or all, when `vip` is None) in maintenance.
    Drain {
        vip: Option<String>,
        reason: String,
        /// Drain even where the fleet guard refuses (logged as forced).
        force: bool,
    },
    Undrain {
        vip: Option<String>,
        reason: String,
    },
}

/// The rule for every configured name (peers, checks, signals, VIPs): 1-64 characters of ASCII
/// letters, digits, '-', '_' and '.'. Here, in the shared vocabulary, because the API applies it
/// to names in request paths too: a name no config can hold is refused before it reaches a log.
pub fn is_valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// How many configured names an unknown-VIP answer lists.
pub const UNKNOWN_VIP_NAMES: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CommandError {
    /// No VIP has that name. `known` is the first few configured names (at most
    /// [`UNKNOWN_VIP_NAMES`], in config order), `known_total` how many there are: a hint, not a
    /// listing of 100k names.
    UnknownVip {
        vip: String,
        #[serde(default)]
        known: Vec<String>,
        #[serde(default)]
        known_total: usize,
    },
    /// The state could not be persisted; nothing changed.
    StateNotSaved { detail: String },
    /// The fleet guard refuses the drain: it would leave fewer than `min_healthy_others` other
    /// healthy announcers of `prefix`. Nothing changed; `force` overrides.
    GuardRefused {
        vip: String,
        prefix: String,
        healthy: usize,
        min_healthy_others: u32,
        announcers: Vec<String>,
        reason: String,
    },
    /// A planned stop is under way: routes are being withdrawn, commands can no longer take
    /// effect. `reason` says which stop ("vipwarden stopping (SIGTERM)").
    Stopping { reason: String },
}

impl CommandError {
    /// UnknownVip naming the first [`UNKNOWN_VIP_NAMES`] of `names` (config order) and the count.
    pub fn unknown_vip<'a>(
        vip: &str,
        names: impl ExactSizeIterator<Item = &'a str>,
    ) -> CommandError {
        let known_total = names.len();
        CommandError::UnknownVip {
            vip: vip.to_string(),
            known: names.take(UNKNOWN_VIP_NAMES).map(String::from).collect(),
            known_total,
        }
    }
}

/// What the command changed: the VIPs whose state it set, with the resulting state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub changed: Vec<(String, VipState)>,
}

pub type CommandReply = Result<CommandOutcome, CommandError>;

/// The VIPs' part of the status (`StatusView::vips` and `route_changes`), which the daemon builds
/// per request instead of publishing it.
#[derive(Clone, Debug, Default)]
pub struct VipsView {
    pub vips: Vec<VipView>,
    pub route_changes: Vec<RouteChangeCount>,
}

pub type VipsRequest = oneshot::Sender<VipsView>;

/// The API's handle on the daemon.
#[derive(Clone)]
pub struct ControlHandle {
    /// Everything but the VIPs: ask `vips` for those.
    pub status: watch::Receiver<std::sync::Arc<StatusView>>,
    pub vips: mpsc::Sender<VipsRequest>,
    pub events: watch::Receiver<std::sync::Arc<Vec<EventView>>>,
    pub commands: mpsc::Sender<(Command, oneshot::Sender<CommandReply>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_config_rule() {
        for ok in ["web", "a", "web-1_v6.prod", &"x".repeat(64)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "a b", "web\nforged", "wé", "a/b", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_vip_lists_a_few_names_and_counts_all() {
        let names: Vec<String> = (0..100_000).map(|i| format!("vip{i}")).collect();
        let CommandError::UnknownVip {
            vip,
            known,
            known_total,
        } = CommandError::unknown_vip("nope", names.iter().map(String::as_str))
        else {
            panic!("not UnknownVip");
        };
        assert_eq!((vip.as_str(), known_total), ("nope", 100_000));
        assert_eq!(known, names[..UNKNOWN_VIP_NAMES]);
    }
}
