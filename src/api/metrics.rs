//! `GET /metrics`: built at scrape time from the daemon's latest snapshot, as OpenMetrics when the
//! client asks for it (`Accept: application/openmetrics-text`, as Prometheus does) and as the
//! Prometheus text format 0.0.4 otherwise (curl, `promtool check metrics`, older tooling).
//!
//! A fresh `Registry` per scrape: every value (counters included) is a total the daemon already
//! keeps, so there is no state here to keep in sync, and a VIP or peer removed by a reload simply
//! stops appearing. A scrape of a typical node is a few hundred samples; building them is cheap.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

pub use super::procstat::ProcessStats;
use crate::control::{DurationHistogram, StatusView, VipState, CHECK_DURATION_BUCKETS};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text004,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => CONTENT_TYPE,
            Format::Text004 => TEXT_CONTENT_TYPE,
        }
    }
}

/// Picks the format from an `Accept` header: OpenMetrics when it is listed with a q-value at
/// least as high as plain text's, text 0.0.4 otherwise (also with no header).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text004;
    };
    let mut om = None::<f64>;
    let mut text = None::<f64>;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f64>().ok())
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "application/openmetrics-text" => &mut om,
            "text/plain" | "text/*" | "*/*" => &mut text,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f64| old.max(q)));
    }
    match (om, text) {
        (Some(o), t) if o > 0.0 && o >= t.unwrap_or(0.0) => Format::OpenMetrics,
        _ => Format::Text004,
    }
}

/// Rewrites our OpenMetrics output as text 0.0.4: no `# EOF` or `# UNIT`, counters' HELP/TYPE
/// under the `_total` sample name, `info` as a gauge named `_info`. Only for what [`render`]
/// produces (no exemplars, no `_created`).
pub fn to_text_004(om: &str) -> String {
    let mut types = std::collections::HashMap::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, ty)) = rest.split_once(' ') {
                types.insert(name, ty);
            }
        }
    }
    let rename = |name: &str| -> (String, Option<&'static str>) {
        match types.get(name).copied() {
            Some("counter") => (format!("{name}_total"), Some("counter")),
            Some("info") => (format!("{name}_info"), Some("gauge")),
            Some("unknown") => (name.to_string(), Some("untyped")),
            _ => (name.to_string(), None),
        }
    };
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", rename(name).0));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (new, new_ty) = rename(name);
            out.push_str(&format!("# TYPE {new} {}\n", new_ty.unwrap_or(ty)));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

type Labels = Vec<(&'static str, String)>;
type IntFamily = Family<Labels, Gauge>;
type FloatFamily = Family<Labels, Gauge<f64, AtomicU64>>;
type CounterFamily = Family<Labels, Counter>;

const VIP_STATES: [VipState; 5] = [
    VipState::Announced,
    VipState::Draining,
    VipState::Withdrawn,
    VipState::Maintenance,
    VipState::Held,
];
const PEER_STATES: [&str; 5] = ["idle", "connect", "opensent", "openconfirm", "established"];

/// Condition phases in which the condition holds the VIP out (`clearing` still does until it
/// has cleared).
fn condition_in_effect(phase: &str) -> bool {
    matches!(phase, "active" | "clearing")
}

fn int(v: i64) -> Gauge {
    let g = Gauge::default();
    g.set(v);
    g
}

/// Clamps daemon totals into the i64 a gauge holds (never reached in practice).
fn to_i64<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

const PROBLEM_KINDS: [&str; 5] = [
    "state_not_saved",
    "state_ignored",
    "reload_refused",
    "api",
    "other",
];

/// Sorts a status error into a kind an alert can name, by the daemon's message prefixes.
fn problem_kind(msg: &str) -> &'static str {
    if msg.starts_with("maintenance state not saved") {
        "state_not_saved"
    } else if msg.starts_with("maintenance state ignored") {
        "state_ignored"
    } else if msg.starts_with("last reload refused") {
        "reload_refused"
    } else if msg.starts_with("API: ") {
        "api"
    } else {
        "other"
    }
}

/// Encodes every metric for `status` as OpenMetrics, without process metrics (tests, tools).
pub fn render(status: &StatusView) -> String {
    render_at(status, None, unix_now())
}

/// What `/metrics` serves: the daemon's metrics, the process's own (`process_*`), in `format`.
pub fn render_as(status: &StatusView, process: Option<&ProcessStats>, format: Format) -> String {
    let om = render_at(status, process, unix_now());
    match format {
        Format::OpenMetrics => om,
        Format::Text004 => to_text_004(&om),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// OpenMetrics for `status` at wall-clock `now` (unix seconds).
pub fn render_at(status: &StatusView, process: Option<&ProcessStats>, now: u64) -> String {
    let mut reg = Registry::with_prefix("vipwarden");

    let build = Info::new(vec![("version", status.version.clone())]);
    reg.register("build", "vipwarden build; the value is always 1", build);

    let generation = int(to_i64(status.config.generation));
    reg.register(
        "config_generation",
        "Configs applied since start (start = 1)",
        generation,
    );
    let reload_ok = int(i64::from(status.config.last_reload_error.is_none()));
    reg.register(
        "config_last_reload_success",
        "1 if the last config reload was applied, 0 if it was refused",
        reload_ok,
    );
    let errors = int(to_i64(status.errors.len()));
    reg.register(
        "errors",
        "Problems the daemon reports for an operator (see `vipwarden status`)",
        errors,
    );

    let problems = IntFamily::default();
    for kind in PROBLEM_KINDS {
        let n = status
            .errors
            .iter()
            .filter(|e| problem_kind(e) == kind)
            .count();
        problems
            .get_or_create(&vec![("kind", kind.to_string())])
            .set(to_i64(n));
    }
    reg.register(
        "problems",
        "The problems of vipwarden_errors by kind (state_not_saved: drains cannot be recorded)",
        problems,
    );

    register_vips(&mut reg, status, now);
    register_fleet(&mut reg, status);
    register_peers(&mut reg, status);
    register_bfd(&mut reg, status);
    register_checks(&mut reg, status);

    // The process's own metrics keep their conventional unprefixed `process_` names.
    let mut proc_reg = Registry::default();
    if let Some(p) = process {
        register_process(&mut proc_reg, p);
    }

    let mut out = String::new();
    // Writing into a String cannot fail; a metric's own encode error would be a library bug.
    let encoded = encode_registry(&mut out, &reg)
        .and_then(|()| encode_registry(&mut out, &proc_reg))
        .and_then(|()| encode_eof(&mut out));
    if let Err(e) = encoded {
        tracing::error!("encoding metrics failed: {e}");
        return "# EOF\n".to_string();
    }
    out
}

fn register_process(reg: &mut Registry, p: &ProcessStats) {
    let float = |v: f64| {
        let g = Gauge::<f64, AtomicU64>::default();
        g.set(v);
        g
    };
    let cpu = Counter::<f64, AtomicU64>::default();
    cpu.inc_by(p.cpu_seconds);
    reg.register_with_unit(
        "process_cpu",
        "Total user and system CPU time spent",
        Unit::Seconds,
        cpu,
    );
    reg.register_with_unit(
        "process_resident_memory",
        "Resident memory size",
        Unit::Bytes,
        float(p.resident_bytes as f64),
    );
    reg.register_with_unit(
        "process_virtual_memory",
        "Virtual memory size",
        Unit::Bytes,
        float(p.virtual_bytes as f64),
    );
    reg.register(
        "process_open_fds",
        "Open file descriptors",
        int(to_i64(p.open_fds)),
    );
    if let Some(max) = p.max_fds {
        reg.register(
            "process_max_fds",
            "Limit on open file descriptors (RLIMIT_NOFILE)",
            int(to_i64(max)),
        );
    }
    if let Some(start) = p.start_time_seconds {
        reg.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            float(start),
        );
    }
}

/// A histogram whose buckets the daemon already counted (prometheus-client's own `Histogram`
/// can only be fed observations one at a time).
struct CountedHistograms(Vec<(Labels, DurationHistogram)>);

impl TypedMetric for CountedHistograms {
    const TYPE: MetricType = MetricType::Histogram;
}

impl std::fmt::Debug for CountedHistograms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CountedHistograms({})", self.0.len())
    }
}

impl EncodeMetric for CountedHistograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            let mut buckets: Vec<(f64, u64)> = CHECK_DURATION_BUCKETS
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(h.buckets.iter().copied().chain(std::iter::repeat(0)))
                .collect();
            // A histogram from an older daemon (no buckets) still adds up: all in +Inf.
            if h.buckets.is_empty() {
                if let Some(last) = buckets.last_mut() {
                    last.1 = h.count;
                }
            }
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum_secs, h.count, &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn register_vips(reg: &mut Registry, status: &StatusView, now: u64) {
    let state = IntFamily::default();
    let value = FloatFamily::default();
    let active = IntFamily::default();
    let threshold = FloatFamily::default();
    let changed_at = IntFamily::default();
    let in_state = IntFamily::default();
    let drain_conns = IntFamily::default();
    let drain_silent = IntFamily::default();
    let weight = FloatFamily::default();
    for vip in &status.vips {
        if let Some(w) = vip.weight() {
            weight
                .get_or_create(&vec![("vip", vip.name.to_string())])
                .set(w.bytes_per_sec as f64);
        }
        if let Some(n) = vip.drain_connections() {
            drain_conns
                .get_or_create(&vec![("vip", vip.name.to_string())])
                .set(i64::from(n));
        }
        if let Some(n) = vip.drain_connections_silent() {
            drain_silent
                .get_or_create(&vec![("vip", vip.name.to_string())])
                .set(i64::from(n));
        }
        for s in VIP_STATES {
            let labels = vec![("vip", vip.name.to_string()), ("state", s.to_string())];
            state.get_or_create(&labels).set(i64::from(vip.state == s));
        }
        let name = vec![("vip", vip.name.to_string())];
        changed_at.get_or_create(&name).set(to_i64(vip.since));
        in_state
            .get_or_create(&name)
            .set(to_i64(now.saturating_sub(vip.since)));
        for c in &vip.conditions {
            let labels = vec![("vip", vip.name.to_string()), ("signal", c.signal.clone())];
            // No reading yet: no sample, rather than a 0 that looks like a real value.
            if let Some(v) = c.value {
                value.get_or_create(&labels).set(v);
            }
            active
                .get_or_create(&labels)
                .set(i64::from(condition_in_effect(&c.phase)));
            for (kind, t) in [("trip", c.trip_above), ("restore", c.restore_below)] {
                if let Some(t) = t {
                    let mut l = labels.clone();
                    l.push(("threshold", kind.to_string()));
                    threshold.get_or_create(&l).set(t);
                }
            }
        }
    }
    reg.register_with_unit(
        "vip_last_change_timestamp",
        "When the VIP entered its current state (Unix time)",
        Unit::Seconds,
        changed_at,
    );
    reg.register_with_unit(
        "vip_state_age",
        "Time since the VIP's last state change",
        Unit::Seconds,
        in_state,
    );
    reg.register(
        "vip_weight",
        "The VIP's announced weight: RFC 10005 link bandwidth in bytes per second (0 while not announced; only VIPs with a weight)",
        weight,
    );
    reg.register(
        "vip_drain_connections",
        "Established connections left on a VIP in a connection-aware drain (only while one runs)",
        drain_conns,
    );
    reg.register(
        "vip_drain_connections_silent",
        "Established connections of a draining VIP left out of the count: nothing received for drain_idle",
        drain_silent,
    );
    reg.register(
        "condition_threshold",
        "Thresholds in force next to condition_value: trip (above it the condition trips) and restore (below it it clears)",
        threshold,
    );
    reg.register(
        "vip_state",
        "1 for the VIP's current state, 0 for the others",
        state,
    );
    reg.register(
        "condition_value",
        "Latest value of a traffic signal gating the VIP",
        value,
    );
    reg.register(
        "condition_active",
        "1 while the condition holds the VIP out (phase active or clearing)",
        active,
    );

    let changes = CounterFamily::default();
    for rc in &status.route_changes {
        let labels = vec![("vip", rc.vip.to_string()), ("to", rc.to.to_string())];
        changes.get_or_create(&labels).inc_by(rc.count);
    }
    reg.register(
        "route_changes",
        "VIP state changes since start, by new state",
        changes,
    );
}

/// The fleet guard: announcers of each VIP prefix per ToR by health, held VIPs, blind views.
fn register_fleet(reg: &mut Registry, status: &StatusView) {
    let announcers = IntFamily::default();
    let held = int(to_i64(
        status
            .vips
            .iter()
            .filter(|v| v.state == VipState::Held)
            .count(),
    ));
    let blind = IntFamily::default();
    let gate = IntFamily::default();
    let propagation = FloatFamily::default();
    let mut any = false;
    for vip in &status.vips {
        let Some(f) = vip.fleet() else { continue };
        any = true;
        for peer in &f.peers {
            for state in ["in", "held", "out"] {
                let here = match peer.guard.as_str() {
                    "" => "in",
                    s => s,
                };
                let labels = vec![
                    ("vip", vip.name.to_string()),
                    ("peer", peer.peer.clone()),
                    ("state", state.to_string()),
                ];
                gate.get_or_create(&labels).set(i64::from(here == state));
            }
            if let Some(ms) = peer.mark_propagation_ms {
                let labels = vec![("vip", vip.name.to_string()), ("peer", peer.peer.clone())];
                propagation.get_or_create(&labels).set(ms as f64 / 1000.0);
            }
            for prefix in vip.prefixes.iter().map(ToString::to_string) {
                for health in ["healthy", "marked"] {
                    let n = peer
                        .announcers
                        .iter()
                        .filter(|a| a.prefix == prefix && a.health == health)
                        .count();
                    let labels = vec![
                        ("vip", vip.name.to_string()),
                        ("prefix", prefix.clone()),
                        ("peer", peer.peer.clone()),
                        ("health", health.to_string()),
                    ];
                    announcers.get_or_create(&labels).set(to_i64(n));
                }
            }
        }
        for p in &f.prefixes {
            let labels = vec![("vip", vip.name.to_string()), ("prefix", p.prefix.clone())];
            blind.get_or_create(&labels).set(i64::from(p.blind));
        }
    }
    if !any {
        return;
    }
    reg.register(
        "fleet_announcers",
        "Other announcers of a VIP prefix that a peer shows (ADD-PATH), by health",
        announcers,
    );
    reg.register(
        "fleet_held",
        "VIPs the fleet guard keeps announced (marked) because too few healthy announcers remain",
        held,
    );
    reg.register(
        "fleet_blind",
        "1 while no peer shows every announcer of the prefix (no ADD-PATH, sessions down)",
        blind,
    );
    reg.register(
        "fleet_gate",
        "The fleet guard's gate per VIP and ToR: in (announced normally), held (announced marked) or out (withdrawn there); 1 for the current state",
        gate,
    );
    reg.register_with_unit(
        "fleet_mark_propagation",
        "How long the VIP's last mark took to come back reflected from this ToR (ToRs that reflect our path); fleet.settle should exceed it",
        Unit::Seconds,
        propagation,
    );
}

fn register_peers(reg: &mut Registry, status: &StatusView) {
    let up = IntFamily::default();
    let state = IntFamily::default();
    let sent = CounterFamily::default();
    let received = CounterFamily::default();
    let prefixes = IntFamily::default();
    let flaps = CounterFamily::default();
    let ends = CounterFamily::default();
    let refresh = CounterFamily::default();
    let resyncs = CounterFamily::default();
    let replaced = CounterFamily::default();
    for p in &status.peers {
        for (reason, n) in &p.session_ends {
            let labels = vec![("peer", p.name.clone()), ("reason", reason.clone())];
            ends.get_or_create(&labels).inc_by(*n);
        }
        refresh
            .get_or_create(&vec![("peer", p.name.clone())])
            .inc_by(p.route_refresh_received);
        let peer = vec![("peer", p.name.clone())];
        up.get_or_create(&peer)
            .set(i64::from(p.state == "established"));
        let known = PEER_STATES.contains(&p.state.as_str());
        let extra = (!known).then_some(p.state.as_str());
        for s in PEER_STATES.into_iter().chain(extra) {
            let labels = vec![("peer", p.name.clone()), ("state", s.to_string())];
            state.get_or_create(&labels).set(i64::from(p.state == s));
        }
        sent.get_or_create(&peer).inc_by(p.updates_sent);
        received.get_or_create(&peer).inc_by(p.updates_received);
        prefixes
            .get_or_create(&peer)
            .set(to_i64(p.prefixes_announced));
        flaps.get_or_create(&peer).inc_by(p.flaps);
        resyncs.get_or_create(&peer).inc_by(p.fleet_resyncs);
        replaced
            .get_or_create(&peer)
            .inc_by(p.fleet_deltas_replaced);
    }
    reg.register(
        "peer_flaps",
        "Established BGP sessions that ended since start",
        flaps,
    );
    reg.register("peer_up", "1 while the BGP session is Established", up);
    reg.register(
        "peer_state",
        "1 for the session's current FSM state, 0 for the others",
        state,
    );
    reg.register(
        "peer_updates_sent",
        "BGP UPDATE messages sent to the peer",
        sent,
    );
    reg.register(
        "peer_updates_received",
        "BGP UPDATE messages received from the peer",
        received,
    );
    reg.register(
        "peer_prefixes_announced",
        "Prefixes currently announced to the peer",
        prefixes,
    );
    reg.register(
        "peer_session_ends",
        "BGP sessions or connection attempts ended, by reason (hold_timer_expired, connect_refused, peer_cease, ...)",
        ends,
    );
    reg.register(
        "peer_route_refresh_received",
        "ROUTE-REFRESH requests received from the peer",
        refresh,
    );
    reg.register(
        "fleet_resyncs",
        "Times the daemon fell behind the peer's UPDATEs and the session resent its whole table of VIP paths to the fleet view",
        resyncs,
    );
    reg.register(
        "fleet_deltas_replaced",
        "Received UPDATEs for VIP prefixes not passed to the fleet view one by one because the daemon was behind (a resync carried them)",
        replaced,
    );
}

const BFD_STATES: [&str; 4] = ["admindown", "down", "init", "up"];

/// BFD per peer (only peers with `bfd:` configured appear).
fn register_bfd(reg: &mut Registry, status: &StatusView) {
    let up = IntFamily::default();
    let state = IntFamily::default();
    let tx = FloatFamily::default();
    let detect = FloatFamily::default();
    let changes = CounterFamily::default();
    let discarded = CounterFamily::default();
    for p in &status.peers {
        let Some(b) = &p.bfd else { continue };
        let peer = vec![("peer", p.name.clone())];
        up.get_or_create(&peer).set(i64::from(b.state == "up"));
        for s in BFD_STATES {
            let labels = vec![("peer", p.name.clone()), ("state", s.to_string())];
            state.get_or_create(&labels).set(i64::from(b.state == s));
        }
        if let Some(t) = b.tx_interval_ms {
            tx.get_or_create(&peer).set(t / 1000.0);
        }
        detect.get_or_create(&peer).set(b.detect_time_ms / 1000.0);
        changes.get_or_create(&peer).inc_by(b.state_changes);
        for (reason, n) in &b.discarded {
            let labels = vec![("peer", p.name.clone()), ("reason", reason.clone())];
            discarded.get_or_create(&labels).inc_by(*n);
        }
    }
    reg.register("bfd_up", "1 while the peer's BFD session is Up", up);
    reg.register(
        "bfd_state",
        "1 for the BFD session's current state, 0 for the others",
        state,
    );
    reg.register(
        "bfd_tx_interval_seconds",
        "Negotiated BFD transmit interval (before jitter)",
        tx,
    );
    reg.register(
        "bfd_detect_time_seconds",
        "BFD detection time for the router's packets",
        detect,
    );
    reg.register(
        "bfd_state_changes",
        "BFD session state changes since start",
        changes,
    );
    reg.register(
        "bfd_discarded_packets",
        "BFD packets from the peer's address discarded, by reason (RFC 5880 6.8.6 check, authentication, TTL, wrong interface, queue full)",
        discarded,
    );
    let unmatched = CounterFamily::default();
    for (reason, n) in &status.bfd_unmatched {
        let labels = vec![("reason", reason.clone())];
        unmatched.get_or_create(&labels).inc_by(*n);
    }
    reg.register(
        "bfd_unmatched_packets",
        "BFD packets that matched no peer's session (source not a BFD peer on the receiving address), by reason",
        unmatched,
    );
}

fn register_checks(reg: &mut Registry, status: &StatusView) {
    let up = IntFamily::default();
    let results = CounterFamily::default();
    let duration = FloatFamily::default();
    let mut histograms = Vec::new();
    // A check gating several VIPs appears under each; it is one check, so one series.
    let mut seen = std::collections::BTreeSet::new();
    for c in status.vips.iter().flat_map(|v| v.checks.iter()) {
        if !seen.insert(c.name.as_str()) {
            continue;
        }
        let check = vec![("check", c.name.clone())];
        up.get_or_create(&check).set(i64::from(c.up));
        for (result, n) in [("pass", c.passes), ("fail", c.failures)] {
            let labels = vec![("check", c.name.clone()), ("result", result.to_string())];
            results.get_or_create(&labels).inc_by(n);
        }
        if let Some(ms) = c.last_duration_ms {
            duration.get_or_create(&check).set(ms / 1000.0);
        }
        histograms.push((check, c.durations.clone()));
    }
    reg.register("check_up", "1 while the check is up (after rise/fall)", up);
    reg.register(
        "check_results",
        "Check probes since start, by result",
        results,
    );
    reg.register_with_unit(
        "check_last_duration",
        "Duration of the last probe",
        Unit::Seconds,
        duration,
    );
    reg.register_with_unit(
        "check_duration",
        "Duration of every probe since start",
        Unit::Seconds,
        CountedHistograms(histograms),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::testutil::sample_status;

    #[test]
    fn bfd_metrics_only_for_peers_with_bfd() {
        let mut s = sample_status();
        s.peers[0].bfd = Some(crate::control::BfdView {
            state: "up".into(),
            remote_state: "up".into(),
            tx_interval_ms: Some(300.0),
            detect_time_ms: 900.0,
            state_changes: 3,
            discarded: [("ttl_not_255".to_string(), 2)].into(),
            ..Default::default()
        });
        s.bfd_unmatched = [("unknown_source".to_string(), 4)].into();
        let text = render(&s);
        for line in [
            r#"vipwarden_bfd_up{peer="tor1"} 1"#,
            r#"vipwarden_bfd_state{peer="tor1",state="down"} 0"#,
            r#"vipwarden_bfd_tx_interval_seconds{peer="tor1"} 0.3"#,
            r#"vipwarden_bfd_detect_time_seconds{peer="tor1"} 0.9"#,
            r#"vipwarden_bfd_state_changes_total{peer="tor1"} 3"#,
            r#"vipwarden_bfd_discarded_packets_total{peer="tor1",reason="ttl_not_255"} 2"#,
            r#"vipwarden_bfd_unmatched_packets_total{reason="unknown_source"} 4"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(!text.contains(r#"vipwarden_bfd_up{peer="tor2"}"#));
        let r = crate::api::render::status(&s, crate::api::testutil::NOW);
        assert!(r.contains("BFD PEER") && r.contains("900ms"), "{r}");
    }

    #[test]
    fn metrics_have_the_documented_lines() {
        let text = render(&sample_status());
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        };
        has(r#"vipwarden_vip_state{vip="web",state="announced"} 1"#);
        has(r#"vipwarden_vip_state{vip="web",state="withdrawn"} 0"#);
        has(r#"vipwarden_vip_state{vip="api",state="maintenance"} 1"#);
        has(r#"vipwarden_vip_weight{vip="web"} 625000000.0"#);
        assert!(!text.contains(r#"vipwarden_vip_weight{vip="api"}"#));
        has(r#"vipwarden_route_changes_total{vip="web",to="withdrawn"} 3"#);
        has(r#"vipwarden_peer_up{peer="tor1"} 1"#);
        has(r#"vipwarden_peer_up{peer="tor2"} 0"#);
        has(r#"vipwarden_peer_state{peer="tor2",state="connect"} 1"#);
        has(r#"vipwarden_peer_state{peer="tor2",state="established"} 0"#);
        has(r#"vipwarden_peer_updates_sent_total{peer="tor1"} 7"#);
        has(r#"vipwarden_peer_updates_received_total{peer="tor1"} 2"#);
        has(r#"vipwarden_fleet_resyncs_total{peer="tor1"} 1"#);
        has(r#"vipwarden_fleet_deltas_replaced_total{peer="tor1"} 40"#);
        has(r#"vipwarden_peer_prefixes_announced{peer="tor1"} 2"#);
        has(r#"vipwarden_peer_session_ends_total{peer="tor2",reason="connect_refused"} 13"#);
        has(r#"vipwarden_check_up{check="web_tcp"} 1"#);
        has(r#"vipwarden_check_results_total{check="web_tcp",result="pass"} 120"#);
        has(r#"vipwarden_check_results_total{check="web_tcp",result="fail"} 4"#);
        has(r#"vipwarden_check_last_duration_seconds{check="web_tcp"} 0.0003"#);
        has("# TYPE vipwarden_check_duration_seconds histogram");
        has(r#"vipwarden_check_duration_seconds_bucket{le="0.0005",check="web_tcp"} 2"#);
        has(r#"vipwarden_check_duration_seconds_bucket{le="0.0025",check="web_tcp"} 3"#);
        has(r#"vipwarden_check_duration_seconds_bucket{le="0.5",check="web_tcp"} 3"#);
        has(r#"vipwarden_check_duration_seconds_bucket{le="1.0",check="web_tcp"} 4"#);
        has(r#"vipwarden_check_duration_seconds_bucket{le="+Inf",check="web_tcp"} 4"#);
        has(r#"vipwarden_check_duration_seconds_count{check="web_tcp"} 4"#);
        has(
            r#"vipwarden_condition_threshold{vip="web",signal="errors.5xx_ratio",threshold="trip"} 0.05"#,
        );
        has(
            r#"vipwarden_condition_threshold{vip="web",signal="errors.5xx_ratio",threshold="restore"} 0.01"#,
        );
        has(r#"vipwarden_peer_flaps_total{peer="tor2"} 2"#);
        has(r#"vipwarden_condition_value{vip="web",signal="errors.5xx_ratio"} 0.012"#);
        has(r#"vipwarden_condition_active{vip="web",signal="errors.5xx_ratio"} 0"#);
        has("vipwarden_config_generation 3");
        has("vipwarden_config_last_reload_success 1");
        has(r#"vipwarden_build_info{version="0.1.0"} 1"#);
        has("vipwarden_errors 1");
        has(r#"vipwarden_problems{kind="other"} 1"#);
        has(r#"vipwarden_problems{kind="state_not_saved"} 0"#);
        has("# TYPE vipwarden_route_changes counter");
        has("# UNIT vipwarden_check_duration_seconds seconds");
        assert_eq!(text.lines().last(), Some("# EOF"));
        // The shared check appears under two VIPs but is one series.
        let n = text
            .lines()
            .filter(|l| l.starts_with(r#"vipwarden_check_up{check="web_tcp"}"#))
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn vip_age_and_process_metrics_at_a_fixed_time() {
        let st = sample_status();
        let p = ProcessStats {
            cpu_seconds: 1.5,
            resident_bytes: 8 << 20,
            virtual_bytes: 64 << 20,
            open_fds: 12,
            max_fds: Some(1024),
            start_time_seconds: Some(1.7e9),
        };
        let now = crate::api::testutil::NOW;
        let text = render_at(&st, Some(&p), now);
        for line in [
            r#"vipwarden_vip_state_age_seconds{vip="web"} 3660"#,
            r#"vipwarden_vip_state_age_seconds{vip="api"} 185"#,
            &format!(
                r#"vipwarden_vip_last_change_timestamp_seconds{{vip="web"}} {}"#,
                now - 3660
            ),
            "process_cpu_seconds_total 1.5",
            "process_resident_memory_bytes 8388608.0",
            "process_open_fds 12",
            "process_max_fds 1024",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn accept_header_negotiation() {
        assert_eq!(negotiate(None), Format::Text004);
        assert_eq!(negotiate(Some("*/*")), Format::Text004);
        assert_eq!(negotiate(Some("text/plain")), Format::Text004);
        // What Prometheus 2.x sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(
            negotiate(Some("application/OpenMetrics-Text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Format::Text004
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text004
        );
    }

    #[test]
    fn text_004_has_no_openmetrics_only_lines() {
        let text = to_text_004(&render(&sample_status()));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(!text.contains(" info\n"), "{text}");
        for want in [
            "# TYPE vipwarden_build_info gauge",
            "# HELP vipwarden_route_changes_total VIP state changes since start, by new state.",
            "# TYPE vipwarden_route_changes_total counter",
            "# TYPE vipwarden_check_duration_seconds histogram",
            r#"vipwarden_build_info{version="0.1.0"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in\n{text}"
            );
        }
        // Every TYPE names the samples that follow it.
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&current), "{line} under TYPE {current}");
            }
        }
    }

    #[test]
    fn every_sample_line_is_name_labels_value() {
        let text = render(&sample_status());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            assert!(series.starts_with("vipwarden_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "value of {line}");
            if let Some(open) = series.find('{') {
                assert!(series.ends_with('}'), "{line}");
                assert!(series[open..].contains("=\""), "{line}");
            }
        }
    }

    #[test]
    fn unknown_peer_state_and_failed_reload_are_visible() {
        let mut s = sample_status();
        s.peers[1].state = "active".into();
        s.config.last_reload_error = Some("bad yaml".into());
        let text = render(&s);
        assert!(
            text.contains(r#"vipwarden_peer_state{peer="tor2",state="active"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("vipwarden_config_last_reload_success 0"),
            "{text}"
        );
    }
}

/// `promtool check metrics` (Prometheus's own linter) on what a plain scrape gets. Skipped with a
/// message where promtool is not installed, except in CI (testbed/setup.sh installs it there).
#[cfg(test)]
mod promtool {
    use super::*;
    use crate::api::testutil::sample_status;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn promtool_accepts_the_text_format() {
        let found = Command::new("promtool").arg("--version").output().is_ok();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool missing in CI: testbed/setup.sh installs Debian's prometheus"
            );
            eprintln!("SKIP: promtool not installed (apt-get install prometheus)");
            return;
        }
        let p = crate::api::procstat::read();
        let text = render_as(&sample_status(), p.as_ref(), Format::Text004);
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics failed:\n{}{}\n--- input:\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The ready-made Grafana dashboard and Prometheus alerts in `deploy/` must only use series that
/// `/metrics` serves, and the dashboard must be a well-formed Grafana model.
#[cfg(test)]
mod deploy_files {
    use super::*;
    use crate::api::testutil::sample_status;
    use std::collections::BTreeSet;

    const DASHBOARD: &str = include_str!("../../deploy/grafana/vipwarden-dashboard.json");
    const ALERTS: &str = include_str!("../../deploy/prometheus/vipwarden-alerts.yml");

    /// Every sample name a scrape can carry (text 0.0.4, as Prometheus stores them).
    fn served_names() -> BTreeSet<String> {
        let p = ProcessStats {
            max_fds: Some(1024),
            start_time_seconds: Some(1.0),
            ..ProcessStats::default()
        };
        let text = to_text_004(&render_at(&sample_status(), Some(&p), 0));
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(String::from)
            .collect()
    }

    /// `vipwarden_*` and `process_*` names in a PromQL expression.
    fn names_in(expr: &str) -> Vec<String> {
        let re = regex::Regex::new(r"\b(?:vipwarden|process)_[a-z0-9_]+").unwrap();
        re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
    }

    #[test]
    fn dashboard_is_a_sane_grafana_model_over_served_series() {
        let d: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
        assert_eq!(d["uid"], "vipwarden-overview");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(d["schemaVersion"].as_u64().unwrap() >= 30);
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(vars, ["datasource", "instance"]);
        let served = served_names();
        let panels = d["panels"].as_array().unwrap();
        assert!(panels.len() >= 10);
        let mut ids = BTreeSet::new();
        let mut used = BTreeSet::new();
        for p in panels {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "panel without a title: {p}");
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "duplicate id: {title}"
            );
            let g = &p["gridPos"];
            let (x, w, h) = (
                g["x"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24 && h > 0, "{title}: gridPos {g}");
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{title}: no query");
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                assert!(
                    expr.contains("$instance"),
                    "{title}: {expr} ignores $instance"
                );
                let names = names_in(expr);
                assert!(!names.is_empty(), "{title}: {expr}");
                for n in names {
                    assert!(
                        served.contains(&n),
                        "{title}: {n} is not served by /metrics"
                    );
                    used.insert(n);
                }
            }
        }
        // The headline series all have a panel.
        for must in [
            "vipwarden_vip_state",
            "vipwarden_condition_threshold",
            "vipwarden_peer_flaps_total",
            "vipwarden_check_duration_seconds_bucket",
            "process_resident_memory_bytes",
        ] {
            assert!(used.contains(must), "no panel shows {must}");
        }
    }

    #[test]
    fn alert_rules_use_served_series_and_cover_the_cases() {
        let doc: serde_yaml::Value = serde_yaml::from_str(ALERTS).unwrap();
        let served = served_names();
        let mut alerts = BTreeSet::new();
        for rule in doc["groups"][0]["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            alerts.insert(name.to_string());
            assert!(rule["annotations"]["summary"].as_str().is_some(), "{name}");
            assert!(rule["labels"]["severity"].as_str().is_some(), "{name}");
            for n in names_in(rule["expr"].as_str().unwrap()) {
                assert!(served.contains(&n), "{name}: {n} is not served by /metrics");
            }
        }
        for must in [
            "VipwardenVipWithdrawn",
            "VipwardenVipHeldInMaintenance",
            "VipwardenBgpSessionDown",
            "VipwardenCheckFlapping",
            "VipwardenConditionNearThreshold",
            "VipwardenConfigReloadFailed",
            "VipwardenStateFileUnwritable",
        ] {
            assert!(alerts.contains(must), "no alert {must}");
        }
    }
}
