//! Validation of `signals:` and of per-VIP traffic policy (`withdraw_when`, `hold_down`,
//! `dampening`, `on_missing`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::model::*;
use super::problems::{duration, name, required, Problems};
use super::raw::*;
use crate::engine::{BaselineSpec, ConditionSpec, DampeningSpec, OnMissing, Threshold, Unit};
use crate::signals::handshakes::{AddrMatch, HandshakesConfig};
use crate::signals::{
    AccessLogConfig, ConntrackConfig, Derive, FollowOptions, JsonFields, LatencyUnit, LogFormat,
    PrometheusConfig, RegexFormat, Selector, StatusSet, TcpStatsConfig,
};

/// Access-log values: (name, unit, backed by a request count).
const ACCESS_LOG_VALUES: &[(&str, Unit, bool)] = &[
    ("request_rate", Unit::Plain, false),
    ("error_ratio", Unit::Ratio, true),
    ("error_rate", Unit::Plain, false),
    ("latency_p50", Unit::Latency, false),
    ("latency_p95", Unit::Latency, false),
    ("latency_p99", Unit::Latency, false),
    ("malformed_rate", Unit::Plain, false),
];

const TCP_STATS_VALUES: &[(&str, Unit, bool)] = &[
    ("ListenOverflows", Unit::Plain, false),
    ("ListenDrops", Unit::Plain, false),
    ("TCPReqQFullDrop", Unit::Plain, false),
    ("TCPAbortOnData", Unit::Plain, false),
    ("TCPTimeouts", Unit::Plain, false),
    ("IPReversePathFilter", Unit::Plain, false),
    ("AttemptFails", Unit::Plain, false),
    ("EstabResets", Unit::Plain, false),
    ("OutRsts", Unit::Plain, false),
    ("RetransSegs", Unit::Plain, false),
    ("CurrEstab", Unit::Plain, false),
    ("accept_queue_fill", Unit::Ratio, false),
    ("accept_queue_fill_max", Unit::Ratio, false),
];

const HANDSHAKES_VALUES: &[(&str, Unit, bool)] = &[
    ("half_open", Unit::Plain, false),
    ("synack_retrans", Unit::Plain, false),
    ("oldest_half_open", Unit::Plain, false),
    ("completed_rate", Unit::Plain, false),
    ("stalled_ratio", Unit::Ratio, false),
];

const CONNTRACK_VALUES: &[(&str, Unit, bool)] = &[
    ("fill_ratio", Unit::Ratio, false),
    ("count", Unit::Plain, false),
    ("max", Unit::Plain, false),
];

/// The values a signal offers, for checking `SIGNAL.VALUE` references.
pub fn values_of(kind: &SignalKind) -> Vec<(String, Unit, bool)> {
    let fixed =
        |t: &[(&str, Unit, bool)]| t.iter().map(|(n, u, r)| (n.to_string(), *u, *r)).collect();
    match kind {
        SignalKind::AccessLog(_) => fixed(ACCESS_LOG_VALUES),
        SignalKind::TcpStats(_) => fixed(TCP_STATS_VALUES),
        SignalKind::Conntrack(_) => fixed(CONNTRACK_VALUES),
        SignalKind::Handshakes(_) => fixed(HANDSHAKES_VALUES),
        SignalKind::Prometheus(prom) => prom
            .values
            .iter()
            .map(|(n, d)| {
                let (unit, req) = match d {
                    Derive::Ratio { .. } => (Unit::Ratio, true),
                    _ => (Unit::Plain, false),
                };
                (n.clone(), unit, req)
            })
            .collect(),
    }
}

pub fn signal(p: &mut Problems, path: &str, r: &RawSignal) -> Option<SignalConfig> {
    let name = name(p, path, &r.name);
    let kind_path = format!("{path}.type");
    let kind_name = required(
        p,
        &kind_path,
        &r.kind,
        "access_log, tcp_stats, prometheus, conntrack or handshakes",
    )?
    .as_str();
    let allowed: &[&str] = match kind_name {
        "access_log" => &[
            "path",
            "format",
            "window",
            "errors",
            "json",
            "regex",
            "latency_unit",
            "log_format",
        ],
        "tcp_stats" => &["interval", "window", "ports"],
        "conntrack" => &["interval"],
        "handshakes" => &["interval", "window", "ports", "addresses"],
        "prometheus" => &["url", "interval", "timeout", "window", "values"],
        other => {
            p.add(kind_path.as_str(), format!("{kind_path} \"{other}\" is unknown (known: access_log, tcp_stats, prometheus, conntrack, handshakes)"));
            return None;
        }
    };
    let present = [
        ("interval", r.interval.is_some()),
        ("window", r.window.is_some()),
        ("path", r.path.is_some()),
        ("format", r.format.is_some()),
        ("errors", r.errors.is_some()),
        ("json", r.json.is_some()),
        ("regex", r.regex.is_some()),
        ("latency_unit", r.latency_unit.is_some()),
        ("log_format", r.log_format.is_some()),
        ("ports", r.ports.is_some()),
        ("url", r.url.is_some()),
        ("timeout", r.timeout.is_some()),
        ("values", r.values.is_some()),
        ("addresses", r.addresses.is_some()),
    ];
    for (key, set) in present {
        if set && !allowed.contains(&key) {
            p.add(
                format!("{path}.{key}"),
                format!("{path}.{key} is not used by type {kind_name}"),
            );
        }
    }
    let window = duration(
        p,
        &format!("{path}.window"),
        r.window.as_ref(),
        Duration::from_secs(30),
    );
    let interval = duration(
        p,
        &format!("{path}.interval"),
        r.interval.as_ref(),
        Duration::from_secs(1),
    );
    if window < Duration::from_secs(1) {
        p.add(
            format!("{path}.window"),
            format!("{path}.window must be at least 1s"),
        );
    }
    if interval < Duration::from_millis(100) {
        p.add(
            format!("{path}.interval"),
            format!("{path}.interval must be at least 100ms"),
        );
    }
    let kind = match kind_name {
        "access_log" => SignalKind::AccessLog(access_log(
            p,
            path,
            r.name.as_deref().unwrap_or(""),
            r,
            window,
        )?),
        "tcp_stats" => SignalKind::TcpStats(TcpStatsConfig {
            interval,
            window,
            ports: r.ports.clone().unwrap_or_default(),
        }),
        "handshakes" => SignalKind::Handshakes(handshakes(p, path, r, interval, window)?),
        "conntrack" => SignalKind::Conntrack(ConntrackConfig {
            interval,
            ..Default::default()
        }),
        _ => {
            let url = required(
                p,
                &format!("{path}.url"),
                &r.url,
                "e.g. http://127.0.0.1:9901/stats/prometheus",
            )?;
            if !url.starts_with("http://") {
                p.add(
                    format!("{path}.url"),
                    format!("{path}.url \"{url}\" must be an http:// URL of a local endpoint"),
                );
            }
            let timeout = duration(
                p,
                &format!("{path}.timeout"),
                r.timeout.as_ref(),
                Duration::from_secs(2),
            );
            let interval = duration(
                p,
                &format!("{path}.interval"),
                r.interval.as_ref(),
                Duration::from_secs(5),
            );
            if timeout >= interval {
                p.add(
                    format!("{path}.timeout"),
                    format!("{path}.timeout must be shorter than interval"),
                );
            }
            let values = prom_values(p, path, r.values.as_ref());
            if values.len() != r.values.as_ref().map_or(0, |m| m.len()) {
                // Already reported; an incomplete signal would make references to it cascade.
                return None;
            }
            SignalKind::Prometheus(PrometheusConfig {
                url: url.clone(),
                interval,
                timeout,
                window,
                values,
            })
        }
    };
    Some(SignalConfig { name: name?, kind })
}

fn handshakes(
    p: &mut Problems,
    path: &str,
    r: &RawSignal,
    interval: Duration,
    window: Duration,
) -> Option<HandshakesConfig> {
    let mut addresses = Vec::new();
    for (i, a) in r.addresses.iter().flatten().enumerate() {
        match a.parse::<IpAddr>() {
            Ok(ip) => addresses.push(AddrMatch::host(ip)),
            Err(_) => p.add(
                format!("{path}.addresses[{i}]"),
                format!("{path}.addresses[{i}] \"{a}\" is not an IP address"),
            ),
        }
    }
    let ports = r.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        p.add(
            format!("{path}.ports"),
            format!("{path}.ports is required: the service's listening ports, e.g. [80, 443]"),
        );
        return None;
    }
    // The ratio compares what is pending now with what completed recently: a short window.
    let window = if r.window.is_none() {
        Duration::from_secs(10)
    } else {
        window
    };
    Some(HandshakesConfig {
        interval,
        window,
        ports,
        addresses,
    })
}

/// `handshakes` signals without `addresses:` watch every VIP prefix.
pub fn default_vip_addresses(signals: &mut [SignalConfig], vips: &[VipConfig]) {
    for s in signals {
        if let SignalKind::Handshakes(h) = &mut s.kind {
            if h.addresses.is_empty() {
                h.addresses = vips
                    .iter()
                    .flat_map(|v| v.spec.prefixes.iter())
                    .map(|pfx| AddrMatch {
                        addr: pfx.addr(),
                        len: pfx.len(),
                    })
                    .collect();
            }
        }
    }
}

fn latency_unit(p: &mut Problems, path: &str, v: Option<&str>) -> LatencyUnit {
    match v {
        None => LatencyUnit::Seconds,
        Some(s) => LatencyUnit::parse(s).unwrap_or_else(|| {
            p.add(path, format!("{path} \"{s}\" must be s, ms or us"));
            LatencyUnit::Seconds
        }),
    }
}

fn access_log(
    p: &mut Problems,
    path: &str,
    name: &str,
    r: &RawSignal,
    window: Duration,
) -> Option<AccessLogConfig> {
    let file = required(p, &format!("{path}.path"), &r.path, "the access log file")?;
    let fmt_path = format!("{path}.format");
    let format_name = r.format.as_deref().unwrap_or("nginx");
    let format = match format_name {
        "json" => {
            let j = r.json.as_ref();
            let unit = latency_unit(
                p,
                &format!("{path}.json.latency_unit"),
                j.and_then(|j| j.latency_unit.as_deref()),
            );
            LogFormat::Json(JsonFields {
                status_field: j
                    .and_then(|j| j.status.clone())
                    .unwrap_or_else(|| "status".into()),
                latency_field: j
                    .and_then(|j| j.latency.clone())
                    .unwrap_or_else(|| "request_time".into()),
                latency_unit: unit,
                time_field: j.and_then(|j| j.time.clone()),
            })
        }
        "regex" => {
            let pattern = required(
                p,
                &format!("{path}.regex"),
                &r.regex,
                "a regex with named groups status and latency",
            )?;
            let unit = latency_unit(
                p,
                &format!("{path}.latency_unit"),
                r.latency_unit.as_deref(),
            );
            match RegexFormat::new(pattern, unit) {
                Ok(f) => LogFormat::Regex(f),
                Err(e) => {
                    p.add(format!("{path}.regex"), format!("{path}.regex: {e}"));
                    return None;
                }
            }
        }
        other => match LogFormat::builtin(other) {
            Some(f) => f,
            None => {
                p.add(fmt_path.as_str(), format!("{fmt_path} \"{other}\" is unknown (known: nginx, envoy, haproxy, json, regex)"));
                return None;
            }
        },
    };
    if r.json.is_some() && format_name != "json" {
        p.add(
            format!("{path}.json"),
            format!("{path}.json is only used with format: json"),
        );
    }
    if r.regex.is_some() && format_name != "regex" {
        p.add(
            format!("{path}.regex"),
            format!("{path}.regex is only used with format: regex"),
        );
    }
    if r.latency_unit.is_some() && format_name != "regex" {
        p.add(
            format!("{path}.latency_unit"),
            format!(
                "{path}.latency_unit is only used with format: regex (json has json.latency_unit)"
            ),
        );
    }
    if r.log_format.is_some() && format_name != "nginx" {
        p.add(
            format!("{path}.log_format"),
            format!(
                "{path}.log_format (the nginx log_format string) is only used with format: nginx"
            ),
        );
    }
    let errors = match &r.errors {
        None => vec![(500, 599)],
        Some(v) => status_set(p, &format!("{path}.errors"), v),
    };
    Some(AccessLogConfig {
        name: name.to_string(),
        path: PathBuf::from(file),
        format,
        window,
        errors: StatusSet::from_ranges(&errors),
        follow: FollowOptions::default(),
    })
}

/// `5xx`, `429`, `502-504`, or a list of those.
fn status_set(p: &mut Problems, path: &str, v: &Value) -> Vec<(u16, u16)> {
    let one = |p: &mut Problems, s: &str| -> Option<(u16, u16)> {
        let s = s.trim();
        let bad = |p: &mut Problems| {
            p.add(
                path,
                format!("{path} \"{s}\" is not a status, range (502-504) or class (5xx)"),
            )
        };
        if let Some(c) = s.strip_suffix("xx") {
            match c.parse::<u16>() {
                Ok(c @ 1..=5) => return Some((c * 100, c * 100 + 99)),
                _ => {
                    bad(p);
                    return None;
                }
            }
        }
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) if (100..=599).contains(&a) && (a..=599).contains(&b) => Some((a, b)),
            _ => {
                bad(p);
                None
            }
        }
    };
    let items: Vec<String> = match v {
        Value::Sequence(seq) => seq
            .iter()
            .map(|x| match x {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => String::from("?"),
            })
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        Value::String(s) => vec![s.clone()],
        _ => vec![String::from("?")],
    };
    items.iter().filter_map(|s| one(p, s)).collect()
}

fn prom_values(
    p: &mut Problems,
    path: &str,
    m: Option<&serde_yaml::Mapping>,
) -> Vec<(String, Derive)> {
    let vpath = format!("{path}.values");
    let Some(m) = m else {
        p.add(vpath.as_str(), format!("{vpath} is required: name the values to derive, e.g. error_ratio: {{ratio: [NUMERATOR, DENOMINATOR]}}"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let Some(name) = k.as_str() else {
            p.add(vpath.as_str(), format!("{vpath} keys must be value names"));
            continue;
        };
        let here = format!("{vpath}.{name}");
        match prom_derive(v) {
            Ok(d) => out.push((name.to_string(), d)),
            Err(e) => p.add(here.as_str(), format!("{here}: {e}")),
        }
    }
    out
}

fn prom_derive(v: &Value) -> Result<Derive, String> {
    const FORMS: &str = "must be one of {rate: SELECTOR}, {gauge: SELECTOR}, {ratio: [NUMERATOR, DENOMINATOR]}, {quantile: Q, histogram: NAME}";
    let map = v.as_mapping().ok_or(FORMS)?;
    let sel = |v: Option<&Value>| -> Result<Selector, String> {
        let s = v.and_then(Value::as_str).ok_or(FORMS)?;
        Selector::parse(s).map_err(|e| e.to_string())
    };
    let get = |k: &str| map.get(k);
    match map.len() {
        1 if get("rate").is_some() => Ok(Derive::Rate(sel(get("rate"))?)),
        1 if get("gauge").is_some() => Ok(Derive::Gauge(sel(get("gauge"))?)),
        1 if get("ratio").is_some() => {
            match get("ratio").and_then(Value::as_sequence).map(Vec::as_slice) {
                Some([n, d]) => Ok(Derive::Ratio {
                    numerator: sel(Some(n))?,
                    denominator: sel(Some(d))?,
                }),
                _ => Err(FORMS.into()),
            }
        }
        2 if get("quantile").is_some() && get("histogram").is_some() => {
            let q = get("quantile").and_then(Value::as_f64).ok_or(FORMS)?;
            if !(0.0..=1.0).contains(&q) {
                return Err(format!("quantile {q} must be between 0 and 1"));
            }
            Ok(Derive::Quantile {
                histogram: sel(get("histogram"))?,
                q,
            })
        }
        _ => Err(FORMS.into()),
    }
}

/// Per-VIP traffic policy.
pub struct Policy {
    pub withdraw_when: Vec<ConditionSpec>,
    pub on_missing: OnMissing,
    pub hold_down: Duration,
    pub dampening: Option<DampeningSpec>,
}

/// Ratio conditions need at least this many requests in the window unless told otherwise: one
/// failed request out of one is not an outage.
const DEFAULT_MIN_REQUESTS: u64 = 20;

/// Signal name -> kind; None for a signal that is declared but invalid (its own error is
/// reported already, so references to it stay quiet instead of cascading).
pub type SignalTable<'a> = HashMap<&'a str, Option<&'a SignalKind>>;

pub fn policy(p: &mut Problems, path: &str, r: &RawVip, signals: &SignalTable) -> Policy {
    let withdraw_when: Vec<ConditionSpec> = r
        .withdraw_when
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let cpath = format!("{path}.withdraw_when[{i}]");
            if c.scale.is_some() {
                p.add(
                    format!("{cpath}.scale"),
                    format!("{cpath}.scale: a scale goes with weight.scale_when; withdraw_when withdraws"),
                );
            }
            condition(p, &cpath, c, signals)
        })
        .collect();
    let on_missing = match r.on_missing.as_deref() {
        None | Some("hold") => OnMissing::Hold,
        Some("withdraw") => OnMissing::Withdraw,
        Some("ignore") => OnMissing::Ignore,
        Some(o) => {
            p.add(
                format!("{path}.on_missing"),
                format!("{path}.on_missing \"{o}\" must be hold, withdraw or ignore"),
            );
            OnMissing::Hold
        }
    };
    // With traffic conditions a withdrawn VIP loses the traffic that could clear them, so it needs
    // a hold-down before probation; check-only VIPs already have `rise`.
    let default_hold = if withdraw_when.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_secs(30)
    };
    let hold_down = duration(
        p,
        &format!("{path}.hold_down"),
        r.hold_down.as_deref(),
        default_hold,
    );
    let dampening = r.dampening.as_ref().map(|d| {
        let dp = format!("{path}.dampening");
        let spec = DampeningSpec {
            half_life: duration(
                p,
                &format!("{dp}.half_life"),
                d.half_life.as_ref(),
                Duration::from_secs(300),
            ),
            suppress: d.suppress.unwrap_or(3000.0),
            reuse: d.reuse.unwrap_or(750.0),
            penalty: d.penalty.unwrap_or(1000.0),
            max_suppress: duration(
                p,
                &format!("{dp}.max_suppress"),
                d.max_suppress.as_ref(),
                Duration::from_secs(3600),
            ),
        };
        if !(spec.reuse > 0.0 && spec.reuse < spec.suppress) {
            p.add(
                dp.as_str(),
                format!(
                    "{dp}: reuse ({}) must be above 0 and below suppress ({})",
                    spec.reuse, spec.suppress
                ),
            );
        }
        if spec.penalty <= 0.0 || spec.half_life.is_zero() {
            p.add(
                dp.as_str(),
                format!("{dp}: penalty and half_life must be above 0"),
            );
        }
        spec
    });
    Policy {
        withdraw_when,
        on_missing,
        hold_down,
        dampening,
    }
}

/// A threshold: a number, a percentage ("5%"), or for latency values a duration ("1500ms").
fn threshold_value(p: &mut Problems, path: &str, v: &Value, unit: Unit) -> Option<f64> {
    match (v, unit) {
        (Value::Number(n), Unit::Latency) => {
            p.add(
                path,
                format!("{path} {n} needs a unit for a latency, e.g. {n}ms"),
            );
            None
        }
        (Value::Number(n), _) => n.as_f64(),
        (Value::String(s), Unit::Latency) => match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d.as_micros() as f64),
            Err(_) => {
                p.add(
                    path,
                    format!("{path} \"{s}\" is not a duration such as 1500ms"),
                );
                None
            }
        },
        (Value::String(s), _) if s.trim().ends_with('%') => {
            match s.trim().trim_end_matches('%').parse::<f64>() {
                Ok(x) => Some(x / 100.0),
                Err(_) => {
                    p.add(path, format!("{path} \"{s}\" is not a percentage"));
                    None
                }
            }
        }
        _ => {
            p.add(
                path,
                format!(
                    "{path} must be a number{}",
                    if unit == Unit::Latency {
                        " or a duration"
                    } else {
                        ""
                    }
                ),
            );
            None
        }
    }
}

/// `3x` or 3.
fn factor(p: &mut Problems, path: &str, v: &Value) -> Option<f64> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('x').parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f > 1.0 && f.is_finite() => Some(f),
        _ => {
            p.add(path, format!("{path} must be a factor above 1, e.g. 3x"));
            None
        }
    }
}

pub(super) fn condition(
    p: &mut Problems,
    path: &str,
    r: &RawCondition,
    signals: &SignalTable,
) -> Option<ConditionSpec> {
    let sig_path = format!("{path}.signal");
    let signal = required(
        p,
        &sig_path,
        &r.signal,
        "SIGNAL.VALUE, e.g. web_log.error_ratio",
    )?;
    let Some((sname, vname)) = signal.split_once('.') else {
        p.add(
            sig_path.as_str(),
            format!("{sig_path} \"{signal}\" must be SIGNAL.VALUE, e.g. web_log.error_ratio"),
        );
        return None;
    };
    let Some(entry) = signals.get(sname) else {
        let mut known: Vec<&str> = signals.keys().copied().collect();
        known.sort_unstable();
        p.add(
            sig_path.as_str(),
            format!(
                "{sig_path} names unknown signal \"{sname}\" (known: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        );
        return None;
    };
    let kind = (*entry)?;
    let values = values_of(kind);
    let Some((_, unit, has_requests)) = values.iter().find(|(n, ..)| n == vname) else {
        let known: Vec<&str> = values.iter().map(|(n, ..)| n.as_str()).collect();
        p.add(
            sig_path.as_str(),
            format!(
                "{sig_path}: signal \"{sname}\" has no value \"{vname}\" (known: {})",
                known.join(", ")
            ),
        );
        return None;
    };
    let (unit, has_requests) = (*unit, *has_requests);

    let trip_after = duration(p, &format!("{path}.for"), r.for_.as_ref(), Duration::ZERO);
    let clear_after = duration(
        p,
        &format!("{path}.restore_for"),
        r.restore_for.as_ref(),
        trip_after,
    );
    let min_requests = match (r.min_requests, has_requests) {
        (Some(_), false) => {
            p.add(format!("{path}.min_requests"), format!("{path}.min_requests only applies to values backed by a request count (error_ratio, prometheus ratio values)"));
            None
        }
        (Some(n), true) => Some(n),
        (None, true) => Some(DEFAULT_MIN_REQUESTS),
        (None, false) => None,
    };

    let threshold = match (&r.above, &r.above_baseline) {
        (Some(a), None) => {
            if r.baseline.is_some() || r.restore_below_baseline.is_some() {
                p.add(
                    format!("{path}.baseline"),
                    format!("{path}: baseline keys go with above_baseline, not above"),
                );
            }
            let above = threshold_value(p, &format!("{path}.above"), a, unit)?;
            let restore_below = match &r.restore_below {
                Some(v) => threshold_value(p, &format!("{path}.restore_below"), v, unit)?,
                None => above,
            };
            if restore_below > above {
                p.add(format!("{path}.restore_below"), format!("{path}.restore_below must not be above `above` (the band between them is the hysteresis)"));
            }
            Threshold::Fixed {
                above,
                restore_below,
            }
        }
        (None, Some(f)) => {
            if r.restore_below.is_some() {
                p.add(
                    format!("{path}.restore_below"),
                    format!("{path}: use restore_below_baseline with above_baseline"),
                );
            }
            let above_factor = factor(p, &format!("{path}.above_baseline"), f)?;
            // Default restore halfway between normal (1x) and the trip factor.
            let restore_factor = match &r.restore_below_baseline {
                Some(v) => factor(p, &format!("{path}.restore_below_baseline"), v)?,
                None => (1.0 + above_factor) / 2.0,
            };
            if restore_factor > above_factor {
                p.add(
                    format!("{path}.restore_below_baseline"),
                    format!("{path}.restore_below_baseline must not be above above_baseline"),
                );
            }
            let span = duration(
                p,
                &format!("{path}.baseline"),
                r.baseline.as_ref(),
                Duration::from_secs(600),
            );
            Threshold::Baseline(BaselineSpec {
                above_factor,
                restore_factor,
                span,
            })
        }
        (Some(_), Some(_)) => {
            p.add(
                path,
                format!("{path}: give either above or above_baseline, not both"),
            );
            return None;
        }
        (None, None) => {
            p.add(path, format!("{path}: needs above (a fixed threshold) or above_baseline (a factor over the trailing baseline)"));
            return None;
        }
    };
    Some(ConditionSpec {
        signal: signal.clone(),
        threshold,
        trip_after,
        clear_after,
        min_requests,
        unit,
    })
}

/// Resolves references: every declared name, with its kind where it validated.
pub fn table<'a>(raw: &'a [RawSignal], valid: &'a [SignalConfig]) -> SignalTable<'a> {
    let mut t: SignalTable = raw
        .iter()
        .filter_map(|r| r.name.as_deref())
        .map(|n| (n, None))
        .collect();
    for s in valid {
        t.insert(&s.name, Some(&s.kind));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::WindowSnapshot;

    const HS: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor1, address: 198.51.100.1, remote_as: 65000, next_hop_v6: "2001:db8:1::2"}]
checks: [{name: web, type: tcp, target: "203.0.113.10:80"}]
signals:
  - {name: hs, type: handshakes, ports: [80, 443], interval: 1s}
  - {name: hs2, type: handshakes, ports: [80], addresses: [203.0.113.10], window: 5s}
vips:
  - name: web
    prefixes: [203.0.113.10/32, 2001:db8:10::10/128]
    checks: [web]
    withdraw_when:
      - {signal: hs.stalled_ratio, above: 0.5, for: 5s}
      - {signal: hs2.half_open, above: 20, for: 5s}
"#;

    #[test]
    fn handshakes_default_to_the_vip_prefixes() {
        let c = crate::config::parse(std::path::Path::new("vw.yaml"), HS).unwrap();
        let SignalKind::Handshakes(h) = &c.signals[0].kind else {
            panic!("not handshakes")
        };
        assert_eq!(h.ports, [80, 443]);
        assert_eq!(h.window, Duration::from_secs(10));
        let a: Vec<String> = h
            .addresses
            .iter()
            .map(|a| format!("{}/{}", a.addr, a.len))
            .collect();
        assert_eq!(a, ["203.0.113.10/32", "2001:db8:10::10/128"]);
        let SignalKind::Handshakes(h2) = &c.signals[1].kind else {
            panic!("not handshakes")
        };
        assert_eq!(h2.addresses.len(), 1);
        assert_eq!(h2.window, Duration::from_secs(5));
        let bad = HS.replace(
            "ports: [80], addresses: [203.0.113.10]",
            "addresses: [nope]",
        );
        let e = crate::config::parse(std::path::Path::new("vw.yaml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signals[1].ports is required"), "{e}");
        assert!(e.contains("\"nope\" is not an IP address"), "{e}");
    }

    /// Config must offer exactly the values the access-log window can produce.
    #[test]
    fn access_log_value_names_match_the_window() {
        let names: Vec<&str> = ACCESS_LOG_VALUES.iter().map(|(n, ..)| *n).collect();
        assert_eq!(names, WindowSnapshot::VALUES.to_vec());
        let snap = WindowSnapshot {
            requests: 10,
            request_rate: 1.0,
            errors: 1,
            error_ratio: Some(0.1),
            latency_p50_us: Some(1),
            latency_p95_us: Some(2),
            latency_p99_us: Some(3),
            latency_samples: 10,
            latency_clamped: 0,
            malformed: 0,
            window_covered: Duration::from_secs(10),
        };
        for n in names {
            assert!(snap.value(n).is_some(), "{n}");
        }
    }
}
