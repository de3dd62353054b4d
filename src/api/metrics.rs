//! `GET /metrics`: OpenMetrics text built at scrape time from the daemon's latest snapshot.
//!
//! A fresh `Registry` per scrape: every value (counters included) is a total the daemon already
//! keeps, so there is no state here to keep in sync, and a VIP or peer removed by a reload simply
//! stops appearing. A scrape of a typical node is a few hundred samples; building them is cheap.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::control::{StatusView, VipState};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// Encodes every metric for `status`.
pub fn render(status: &StatusView) -> String {
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

    register_vips(&mut reg, status);
    register_fleet(&mut reg, status);
    register_peers(&mut reg, status);
    register_checks(&mut reg, status);

    let mut out = String::new();
    // Writing into a String cannot fail; a metric's own encode error would be a library bug.
    if let Err(e) = encode(&mut out, &reg) {
        tracing::error!("encoding metrics failed: {e}");
        return "# EOF\n".to_string();
    }
    out
}

fn register_vips(reg: &mut Registry, status: &StatusView) {
    let state = IntFamily::default();
    let value = FloatFamily::default();
    let active = IntFamily::default();
    for vip in &status.vips {
        for s in VIP_STATES {
            let labels = vec![("vip", vip.name.clone()), ("state", s.to_string())];
            state.get_or_create(&labels).set(i64::from(vip.state == s));
        }
        for c in &vip.conditions {
            let labels = vec![("vip", vip.name.clone()), ("signal", c.signal.clone())];
            // No reading yet: no sample, rather than a 0 that looks like a real value.
            if let Some(v) = c.value {
                value.get_or_create(&labels).set(v);
            }
            active
                .get_or_create(&labels)
                .set(i64::from(condition_in_effect(&c.phase)));
        }
    }
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
        let labels = vec![("vip", rc.vip.clone()), ("to", rc.to.to_string())];
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
    let mut any = false;
    for vip in &status.vips {
        let Some(f) = &vip.fleet else { continue };
        any = true;
        for peer in &f.peers {
            for prefix in &vip.prefixes {
                for health in ["healthy", "marked"] {
                    let n = peer
                        .announcers
                        .iter()
                        .filter(|a| &a.prefix == prefix && a.health == health)
                        .count();
                    let labels = vec![
                        ("vip", vip.name.clone()),
                        ("prefix", prefix.clone()),
                        ("peer", peer.peer.clone()),
                        ("health", health.to_string()),
                    ];
                    announcers.get_or_create(&labels).set(to_i64(n));
                }
            }
        }
        for p in &f.prefixes {
            let labels = vec![("vip", vip.name.clone()), ("prefix", p.prefix.clone())];
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
}

fn register_peers(reg: &mut Registry, status: &StatusView) {
    let up = IntFamily::default();
    let state = IntFamily::default();
    let sent = CounterFamily::default();
    let received = CounterFamily::default();
    let prefixes = IntFamily::default();
    let ends = CounterFamily::default();
    let refresh = CounterFamily::default();
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
    }
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
}

fn register_checks(reg: &mut Registry, status: &StatusView) {
    let up = IntFamily::default();
    let results = CounterFamily::default();
    let duration = FloatFamily::default();
    // A check gating several VIPs appears under each; it is one check, so one series.
    let mut seen = std::collections::BTreeSet::new();
    for c in status.vips.iter().flat_map(|v| &v.checks) {
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
    }
    reg.register("check_up", "1 while the check is up (after rise/fall)", up);
    reg.register(
        "check_results",
        "Check probes since start, by result",
        results,
    );
    reg.register_with_unit(
        "check_duration",
        "Duration of the last probe",
        Unit::Seconds,
        duration,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::testutil::sample_status;

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
        has(r#"vipwarden_route_changes_total{vip="web",to="withdrawn"} 3"#);
        has(r#"vipwarden_peer_up{peer="tor1"} 1"#);
        has(r#"vipwarden_peer_up{peer="tor2"} 0"#);
        has(r#"vipwarden_peer_state{peer="tor2",state="connect"} 1"#);
        has(r#"vipwarden_peer_state{peer="tor2",state="established"} 0"#);
        has(r#"vipwarden_peer_updates_sent_total{peer="tor1"} 7"#);
        has(r#"vipwarden_peer_updates_received_total{peer="tor1"} 2"#);
        has(r#"vipwarden_peer_prefixes_announced{peer="tor1"} 2"#);
        has(r#"vipwarden_peer_session_ends_total{peer="tor2",reason="connect_refused"} 13"#);
        has(r#"vipwarden_check_up{check="web_tcp"} 1"#);
        has(r#"vipwarden_check_results_total{check="web_tcp",result="pass"} 120"#);
        has(r#"vipwarden_check_results_total{check="web_tcp",result="fail"} 4"#);
        has(r#"vipwarden_check_duration_seconds{check="web_tcp"} 0.0003"#);
        has(r#"vipwarden_condition_value{vip="web",signal="errors.5xx_ratio"} 0.012"#);
        has(r#"vipwarden_condition_active{vip="web",signal="errors.5xx_ratio"} 0"#);
        has("vipwarden_config_generation 3");
        has("vipwarden_config_last_reload_success 1");
        has(r#"vipwarden_build_info{version="0.1.0"} 1"#);
        has("vipwarden_errors 1");
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
