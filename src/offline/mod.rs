//! `vipwarden replay`: runs a recorded access log through the same window and policy as the
//! daemon, on the log's own clock, and reports when each VIP would have been withdrawn and
//! restored, and why. Operators tune thresholds with it before production.
//!
//! Active checks cannot be replayed, so they count as passing. A recording also cannot know that
//! a withdrawn node would have lost its traffic: traffic goes on after a simulated withdrawal, so
//! restores follow the recorded traffic's recovery (and hold-down/probation) rather than a drain.

pub mod plot;

use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::config::{Config, SignalKind};
use crate::engine::{Observation, Reading};
use crate::signals::{
    logcheck, replay, AccessLogConfig, ReplayOptions, ReplaySummary, WindowSnapshot,
};

/// One route change the replay found.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayEvent {
    pub at_ms: i64,
    pub vip: String,
    pub announce: bool,
    /// What happened: restored, draining (marked or de-preferred, still in), held, withdrew, or
    /// weight (a weight change, not a route change).
    pub verb: &'static str,
    pub reason: String,
    /// A weight change (the new weight, bytes per second) rather than a route change.
    pub weight: Option<u64>,
}

/// A VIP's `withdraw_when` conditions, then its `weight.scale_when` ones.
fn conditions(v: &crate::engine::Vip) -> impl Iterator<Item = &crate::engine::Condition> {
    v.conditions
        .iter()
        .chain(v.weight.iter().flat_map(|w| w.conditions.iter()))
}

/// The word for a decision: a route that stays in but is marked or drained is not "restored".
pub fn decision_verb(d: &crate::engine::Decision) -> &'static str {
    use crate::engine::VipState;
    match d.to {
        VipState::Announced => "restored",
        VipState::Draining => "draining",
        VipState::Held => "held",
        VipState::Withdrawn | VipState::Maintenance => "withdrew",
    }
}

#[derive(Debug)]
pub struct ReplayReport {
    pub signal: String,
    pub summary: ReplaySummary,
    pub events: Vec<ReplayEvent>,
    /// VIPs whose conditions name signals other than the replayed one (those read as no data).
    pub unreplayed: Vec<String>,
    /// What the operator must know about the result (a condition that could never trip).
    pub warnings: Vec<String>,
    /// Per VIP and condition: its peak against its trip threshold.
    pub peaks: Vec<ConditionPeak>,
    /// Every tick's value per condition, when asked for (`--csv`, `--json`).
    pub series: Vec<SeriesPoint>,
}

/// How close a condition came to tripping.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionPeak {
    pub vip: String,
    pub signal: String,
    /// The highest value seen, when, and the trip threshold in force then.
    pub peak: Option<(f64, i64, Option<f64>)>,
    /// Whether the condition tripped at least once.
    pub tripped: bool,
    pub unit: crate::engine::Unit,
}

/// One condition's value at one tick.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SeriesPoint {
    pub at_ms: i64,
    pub vip: String,
    pub signal: String,
    pub value: Option<f64>,
    /// What `value` and the thresholds are in: `ratio` (0-1), `us` (latency, microseconds) or
    /// `per_s` (the access-log rates).
    pub unit: &'static str,
    pub trip_above: Option<f64>,
    pub restore_below: Option<f64>,
    /// The simulated route: announced, draining, withdrawn, maintenance.
    pub route: String,
}

/// The unit of an access-log value, as the CSV and JSON series name it.
fn unit_name(u: crate::engine::Unit) -> &'static str {
    match u {
        crate::engine::Unit::Ratio => "ratio",
        crate::engine::Unit::Latency => "us",
        crate::engine::Unit::Plain => "per_s",
    }
}

/// Picks the access-log signal to replay: the named one, or the only one.
pub fn pick_signal<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> anyhow::Result<&'a AccessLogConfig> {
    let logs: Vec<&AccessLogConfig> = config
        .signals
        .iter()
        .filter_map(|s| match &s.kind {
            SignalKind::AccessLog(a) => Some(a),
            _ => None,
        })
        .collect();
    let names = || {
        logs.iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => match logs.iter().find(|a| a.name == n) {
            Some(a) => Ok(a),
            None => bail!(
                "no access_log signal named \"{n}\" (access_log signals: {})",
                names()
            ),
        },
        None => match logs.as_slice() {
            [one] => Ok(one),
            [] => bail!("the configuration has no access_log signal to replay"),
            _ => bail!(
                "several access_log signals ({}); choose one with --signal",
                names()
            ),
        },
    }
}

/// Replays `reader` (lines in the signal's format) through the policy of `config`.
pub fn run(
    config: &Config,
    signal: &AccessLogConfig,
    reader: impl BufRead,
) -> anyhow::Result<ReplayReport> {
    run_with(config, signal, reader, false)
}

/// [`run`], keeping every tick's values in `series` when `series` is true.
pub fn run_with(
    config: &Config,
    signal: &AccessLogConfig,
    reader: impl BufRead,
    series: bool,
) -> anyhow::Result<ReplayReport> {
    let base = Instant::now();
    let mut engine = config.engine(base);
    // Checks are taken as passing: feed each one `rise` passes at the start of log time.
    for (i, c) in config.checks.iter().enumerate() {
        for _ in 0..c.rise {
            let obs = Observation {
                check: i,
                ok: true,
                detail: "assumed passing in replay".into(),
                definitive: false,
            };
            engine.observe(&obs, base);
        }
    }
    let prefix = format!("{}.", signal.name);
    let unreplayed = config
        .vips
        .iter()
        .filter(|v| {
            let scales = v.spec.policy.weight.iter().flat_map(|w| &w.scale_when);
            v.spec
                .policy
                .withdraw_when
                .iter()
                .chain(scales.map(|s| &s.condition))
                .any(|c| !c.signal.starts_with(&prefix))
        })
        .map(|v| v.spec.name.to_string())
        .collect();

    let mut first_ms: Option<i64> = None;
    let mut events = Vec::new();
    let mut points = Vec::new();
    let mut peaks: Vec<ConditionPeak> = engine
        .vips()
        .iter()
        .flat_map(|v| {
            conditions(v).map(|c| ConditionPeak {
                vip: v.spec.name.to_string(),
                signal: c.spec.signal.clone(),
                peak: None,
                tripped: false,
                unit: c.spec.unit,
            })
        })
        .collect();
    let opts = ReplayOptions::new(signal.window, signal.errors.clone());
    let summary = replay(
        reader,
        &signal.format,
        &opts,
        |now_ms, snap: &WindowSnapshot| {
            let t0 = *first_ms.get_or_insert(now_ms);
            let now = base + Duration::from_millis(now_ms.saturating_sub(t0).max(0) as u64);
            let read = |reference: &str| match reference.strip_prefix(&prefix) {
                Some(value) => Reading {
                    value: snap.value(value),
                    requests: Some(snap.requests),
                },
                None => Reading {
                    value: None,
                    requests: None,
                },
            };
            for d in engine.tick(&read, now) {
                events.push(ReplayEvent {
                    at_ms: now_ms,
                    vip: d.vip.to_string(),
                    announce: d.announce(),
                    verb: decision_verb(&d),
                    reason: d.reason,
                    weight: None,
                });
            }
            for (vip, w) in engine.take_weight_changes() {
                events.push(ReplayEvent {
                    at_ms: now_ms,
                    vip: vip.to_string(),
                    announce: true,
                    verb: "weight",
                    reason: w.to_string(),
                    weight: Some(w.to),
                });
            }
            let conds = engine
                .vips()
                .iter()
                .flat_map(|v| conditions(v).map(move |c| (v, c)));
            for ((v, c), peak) in conds.zip(peaks.iter_mut()) {
                let value = c.last.and_then(|r| r.value);
                let limits = c.thresholds();
                peak.tripped |= c.is_active();
                if let Some(x) = value {
                    if peak.peak.is_none_or(|(p, _, _)| x > p) {
                        peak.peak = Some((x, now_ms, limits.map(|l| l.0)));
                    }
                }
                if series {
                    points.push(SeriesPoint {
                        at_ms: now_ms,
                        vip: v.spec.name.to_string(),
                        signal: c.spec.signal.clone(),
                        value,
                        unit: unit_name(c.spec.unit),
                        trip_above: limits.map(|l| l.0),
                        restore_below: limits.map(|l| l.1),
                        route: v.life.state.to_string(),
                    });
                }
            }
        },
    )
    .context("reading the log")?;
    let s = &summary;
    // Nothing read is nothing replayed: "every VIP stayed announced" would be a claim about
    // traffic that was never seen.
    if s.records == 0 && s.malformed == 0 {
        bail!(
            "the log has no records ({} lines, none of them a request): nothing was replayed, so \
             nothing can be said about signal {}; give the access log that signal reads",
            s.lines,
            signal.name
        );
    }
    let counts = logcheck::LogCounts {
        lines: s.lines,
        malformed: s.malformed,
        records: s.records,
        with_latency: s.with_latency,
    };
    if counts.mostly_malformed(1) {
        bail!(
            "{}, so this replay would say nothing (or wrong --signal?)",
            logcheck::malformed_message(
                &signal.name,
                signal.format.name(),
                &counts,
                s.first_malformed.as_deref()
            )
        );
    }
    let mut warnings = Vec::new();
    if counts.lacks_latency() {
        for p in peaks
            .iter()
            .filter(|p| p.unit == crate::engine::Unit::Latency && p.signal.starts_with(&prefix))
        {
            warnings.push(logcheck::latency_missing_message(
                &p.vip, &p.signal, s.records,
            ));
        }
    }
    if s.malformed > 0 {
        warnings.push(format!(
            "{} of {} lines did not parse and were skipped; first: {}",
            s.malformed,
            s.lines,
            s.first_malformed.as_deref().unwrap_or("-")
        ));
    }
    Ok(ReplayReport {
        signal: signal.name.clone(),
        summary,
        events,
        unreplayed,
        warnings,
        peaks,
        series: points,
    })
}

/// `2026-11-22T13:45:01Z` for a unix-ms log time.
pub fn format_time(ms: i64) -> String {
    let t = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH
    };
    humantime::format_rfc3339_seconds(
        t.min(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
    )
    .to_string()
}

/// The human report: one line per route change, then totals per VIP.
pub fn print(report: &ReplayReport, out: &mut impl Write) -> std::io::Result<()> {
    let s = &report.summary;
    writeln!(
        out,
        "replayed signal {}: {} lines, {} requests, {} errors, {} malformed, {} to {}",
        report.signal,
        s.lines,
        s.records,
        s.errors,
        s.malformed,
        s.first_ms.map(format_time).unwrap_or_else(|| "-".into()),
        s.last_ms.map(format_time).unwrap_or_else(|| "-".into()),
    )?;
    for v in &report.unreplayed {
        writeln!(
            out,
            "note: vip {v} has conditions on other signals; they read as no data here"
        )?;
    }
    for w in &report.warnings {
        writeln!(out, "WARNING: {w}")?;
    }
    if report.events.is_empty() {
        writeln!(
            out,
            "no route changes: every VIP would have stayed announced"
        )?;
    }
    for e in &report.events {
        let verb = e.verb;
        writeln!(
            out,
            "{}  {verb} {}: {}",
            format_time(e.at_ms),
            e.vip,
            e.reason
        )?;
    }
    // How close each condition came (tuning): its peak against the trip threshold then.
    for p in &report.peaks {
        let fmt = |v: f64| p.unit.fmt(v);
        let line = match p.peak {
            None => format!("{}: no data in this log", p.signal),
            Some((v, at, Some(trip))) if !p.tripped => {
                let share = if trip > 0.0 { 100.0 * v / trip } else { 0.0 };
                format!(
                    "{}{} peaked at {} vs above {} at {} ({share:.0}% of the threshold)",
                    if share >= 50.0 { "near miss: " } else { "" },
                    p.signal,
                    fmt(v),
                    fmt(trip),
                    format_time(at),
                )
            }
            Some((v, at, Some(trip))) => format!(
                "{} tripped; peaked at {} vs above {} at {}",
                p.signal,
                fmt(v),
                fmt(trip),
                format_time(at)
            ),
            Some((v, at, None)) => format!(
                "{} peaked at {} at {} (no threshold yet: baseline still learning)",
                p.signal,
                fmt(v),
                format_time(at)
            ),
        };
        writeln!(out, "vip {}: {line}", p.vip)?;
    }
    // Time withdrawn per VIP, up to the end of the log.
    let end = s.last_ms.unwrap_or(0);
    let mut vips: Vec<&str> = report.events.iter().map(|e| e.vip.as_str()).collect();
    vips.sort_unstable();
    vips.dedup();
    for vip in vips {
        let mut withdrawn_ms = 0i64;
        let mut since = None;
        let mut withdrawals = 0;
        for e in report.events.iter().filter(|e| e.vip == vip) {
            match (e.announce, since) {
                (false, None) => {
                    since = Some(e.at_ms);
                    withdrawals += 1;
                }
                (true, Some(t)) => {
                    withdrawn_ms += e.at_ms - t;
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(t) = since {
            withdrawn_ms += end - t;
        }
        writeln!(
            out,
            "vip {vip}: {withdrawals} withdrawal(s), withdrawn for {} in total",
            crate::engine::format_duration(Duration::from_secs(
                (withdrawn_ms.max(0) / 1000) as u64
            ))
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::path::Path;

    const CONFIG: &str = r#"router_id: 192.0.2.1
local_as: 65101
peers: [{name: t, address: 192.0.2.2, remote_as: 65000}]
checks: [{name: web, type: tcp, target: "127.0.0.1:80"}]
signals: [{name: web_log, type: access_log, path: /dev/null, window: 10s}]
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    withdraw_when:
      - {signal: web_log.error_ratio, above: 0.2, for: 5s, restore_below: 0.05, restore_for: 10s}
    hold_down: 0s
"#;

    /// nginx lines at 20 req/s: healthy, then 10 minutes... compressed: 60 s healthy, 60 s with
    /// half of the requests failing, 120 s healthy.
    pub(super) fn log() -> String {
        let mut s = String::new();
        for sec in 0..240u32 {
            for i in 0..20u32 {
                let bad = (60..120).contains(&sec) && i % 2 == 0;
                let status = if bad { 503 } else { 200 };
                let (m, ss) = (sec / 60, sec % 60);
                let _ = writeln!(
                    s,
                    "192.0.2.9 - - [22/Nov/2026:13:{:02}:{:02} +0000] \"GET / HTTP/1.1\" {status} 12 \"-\" \"wrk\" 0.002",
                    m, ss
                );
            }
        }
        s
    }

    #[test]
    fn replay_finds_the_outage_and_the_recovery_on_log_time() {
        let config = crate::config::parse(Path::new("r.yaml"), CONFIG).unwrap();
        let sig = pick_signal(&config, None).unwrap();
        let report = run(&config, sig, log().as_bytes()).unwrap();
        assert_eq!(report.summary.records, 4800);
        assert_eq!(report.events.len(), 2, "{:?}", report.events);
        let (w, r) = (&report.events[0], &report.events[1]);
        assert!(!w.announce && r.announce);
        // Errors start 60 s in; the 10 s window's ratio ramps to 50% and passes 20% after ~4 s;
        // then the 5 s dwell; ticks lag the first line by up to 1 s.
        let start = report.summary.first_ms.unwrap();
        let trip_s = (w.at_ms - start) / 1000;
        assert!(
            (67..=70).contains(&trip_s),
            "tripped {trip_s}s into the log"
        );
        assert!(
            w.reason.starts_with("web_log.error_ratio 0."),
            "{}",
            w.reason
        );
        // Errors stop 120 s in; the ratio falls below 5% after ~9 s, then 10 s restore_for.
        let restore_s = (r.at_ms - start) / 1000;
        assert!(
            (138..=142).contains(&restore_s),
            "restored {restore_s}s into the log"
        );
        let mut out = Vec::new();
        print(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("withdrew web: web_log.error_ratio"), "{text}");
        assert!(text.contains("vip web: 1 withdrawal(s)"), "{text}");
        assert!(text.contains("2026-11-22T13:01:0"), "{text}");
    }

    /// Issue 22: an empty log is an error saying so, not "every VIP stayed announced".
    #[test]
    fn an_empty_log_is_refused() {
        let config = crate::config::parse(Path::new("r.yaml"), CONFIG).unwrap();
        let sig = pick_signal(&config, None).unwrap();
        let e = run(&config, sig, &b""[..]).unwrap_err().to_string();
        assert!(e.contains("the log has no records"), "{e}");
        assert!(e.contains("nothing was replayed"), "{e}");
    }

    #[test]
    fn signal_choice_is_explained() {
        let config = crate::config::parse(Path::new("r.yaml"), CONFIG).unwrap();
        let e = pick_signal(&config, Some("nope")).unwrap_err().to_string();
        assert!(e.contains("access_log signals: web_log"), "{e}");
    }
}

/// `--csv`: one row per tick and condition.
pub fn write_csv(report: &ReplayReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "time,vip,signal,value,unit,trip_above,restore_below,route"
    )?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for p in &report.series {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            format_time(p.at_ms),
            csv_field(&p.vip),
            csv_field(&p.signal),
            opt(p.value),
            p.unit,
            opt(p.trip_above),
            opt(p.restore_below),
            p.route
        )?;
    }
    Ok(())
}

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `--json`: the series and the decisions as one JSON document.
pub fn write_json(report: &ReplayReport, out: &mut impl Write) -> std::io::Result<()> {
    let events: Vec<serde_json::Value> = report
        .events
        .iter()
        .map(|e| {
            serde_json::json!({
                "time": format_time(e.at_ms), "at_ms": e.at_ms, "vip": e.vip,
                "announce": e.announce, "reason": e.reason, "weight": e.weight,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "signal": report.signal,
        "warnings": report.warnings,
        "events": events,
        "series": report.series,
    });
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tuning_tests {
    use super::*;
    use std::path::Path;

    fn config(cond: &str) -> Config {
        let text = format!(
            r#"router_id: 192.0.2.1
local_as: 65101
peers: [{{name: t, address: 192.0.2.2, remote_as: 65000}}]
checks: [{{name: web, type: tcp, target: "127.0.0.1:80"}}]
signals: [{{name: web_log, type: access_log, path: /dev/null, window: 10s}}]
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    withdraw_when:
      - {cond}
    hold_down: 0s
"#
        );
        crate::config::parse(Path::new("r.yaml"), &text).unwrap()
    }

    /// nginx `combined` lines (no request time), 20 req/s for 60 s, `bad_every`-th a 503.
    fn combined(bad_every: u32) -> String {
        let mut s = String::new();
        for sec in 0..60u32 {
            for i in 0..20u32 {
                let status = if bad_every > 0 && i % bad_every == 0 {
                    503
                } else {
                    200
                };
                s.push_str(&format!(
                    "192.0.2.9 - - [22/Nov/2026:13:00:{sec:02} +0000] \"GET / HTTP/1.1\" {status} 12 \"-\" \"wrk\"\n"
                ));
            }
        }
        s
    }

    const ERRORS: &str = "{signal: web_log.error_ratio, above: 0.06, for: 5s, restore_below: 0.01, restore_for: 10s}";

    #[test]
    fn replay_lists_weight_changes_with_their_reasons() {
        let text = r#"router_id: 192.0.2.1
local_as: 65101
peers: [{name: t, address: 192.0.2.2, remote_as: 65000}]
checks: [{name: web, type: tcp, target: "127.0.0.1:80"}]
signals: [{name: web_log, type: access_log, path: /dev/null, window: 10s}]
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    weight:
      capacity: 1Gbps
      scale_when:
        - {signal: web_log.error_ratio, above: 0.2, restore_below: 0.05, for: 5s, scale: 50%}
"#;
        let cfg = crate::config::parse(Path::new("r.yaml"), text).unwrap();
        let sig = pick_signal(&cfg, None).unwrap();
        // One in four requests fails: 25% errors, above 20% for the whole log.
        let report = run(&cfg, sig, combined(4).as_bytes()).unwrap();
        let weights: Vec<(Option<u64>, &str)> = report
            .events
            .iter()
            .map(|e| (e.weight, e.reason.as_str()))
            .collect();
        assert_eq!(weights.len(), 2, "{weights:?}");
        assert_eq!(
            weights[0].0,
            Some(125_000_000),
            "announced at full capacity"
        );
        assert_eq!(weights[1].0, Some(62_500_000), "halved");
        assert!(
            weights[1].1.contains(
                "1 Gbit/s -> 500 Mbit/s (50% of capacity: x50% while web_log.error_ratio"
            ),
            "{weights:?}"
        );
        let mut out = Vec::new();
        print(&report, &mut out).unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(
            printed.contains("  weight web: weight 1 Gbit/s -> 500 Mbit/s"),
            "{printed}"
        );
        assert!(plot::svg(&report).contains("weight change"));
    }

    #[test]
    fn a_log_in_another_format_fails_loudly() {
        let cfg = config(ERRORS);
        let sig = pick_signal(&cfg, None).unwrap();
        let haproxy_ish = "Nov 22 13:00:00 lb haproxy[1]: 192.0.2.9:1 [22/Nov/2026:13:00:00.000] fe be/s 0/0/0/1/1 200 12 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n".repeat(50);
        let text = combined(0) + &haproxy_ish.repeat(40);
        let e = run(&cfg, sig, text.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("2000 of 3200 lines (62.5%) are not in signal web_log's format"),
            "{e}"
        );
        assert!(e.contains("Such a line: Nov 22"), "{e}");
    }

    #[test]
    fn a_latency_condition_on_a_log_without_latency_is_a_warning() {
        let cfg = config("{signal: web_log.latency_p95, above: 500ms, for: 5s, restore_below: 200ms, restore_for: 10s}");
        let sig = pick_signal(&cfg, None).unwrap();
        let report = run(&cfg, sig, combined(0).as_bytes()).unwrap();
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            report.warnings[0].contains("needs a request time"),
            "{:?}",
            report.warnings
        );
        let mut out = Vec::new();
        print(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("WARNING: vip web: condition on web_log.latency_p95"),
            "{text}"
        );
        assert!(
            text.contains("web_log.latency_p95: no data in this log"),
            "{text}"
        );
    }

    #[test]
    fn near_miss_names_peak_threshold_and_time() {
        // 1 in 20 fails: 5%, under the 6% threshold.
        let cfg = config(ERRORS);
        let sig = pick_signal(&cfg, None).unwrap();
        let report = run_with(&cfg, sig, combined(20).as_bytes(), true).unwrap();
        assert!(report.events.is_empty());
        let mut out = Vec::new();
        print(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("vip web: near miss: web_log.error_ratio peaked at 0.050 vs above 0.060 at 2026-11-22T13:00:"),
            "{text}"
        );
        assert!(text.contains("(83% of the threshold)"), "{text}");
        // Series: one row per tick, thresholds next to the value.
        assert!(report.series.len() >= 55, "{}", report.series.len());
        let mut csv = Vec::new();
        write_csv(&report, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        // Issue 22: the unit of every row's value and thresholds is in the file.
        assert!(csv.starts_with("time,vip,signal,value,unit,trip_above,restore_below,route\n"));
        assert!(
            csv.contains(",web,web_log.error_ratio,0.05,ratio,0.06,0.01,announced\n"),
            "{csv}"
        );
        let mut js = Vec::new();
        write_json(&report, &mut js).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&js).unwrap();
        assert_eq!(v["series"][10]["trip_above"], 0.06);
        assert_eq!(v["series"][10]["route"], "announced");
        assert_eq!(v["series"][10]["unit"], "ratio");
    }

    /// The outage log of the main test, replayed with its series: one withdrawal and a restore.
    fn outage_report() -> ReplayReport {
        let cfg = config(
            "{signal: web_log.error_ratio, above: 0.2, for: 5s, restore_below: 0.05, restore_for: 10s}",
        );
        let sig = pick_signal(&cfg, None).unwrap();
        let report = run_with(&cfg, sig, super::tests::log().as_bytes(), true).unwrap();
        assert_eq!(report.events.len(), 2);
        report
    }

    #[test]
    fn plot_markup_has_every_part() {
        let report = outage_report();
        let svg = plot::svg(&report);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        // Issue 22: units on the axes, thresholds with their values, decisions labelled with
        // their time and their reason on hover, the withdrawn time shaded.
        for part in [
            "error_ratio (%)",
            "log time (UTC, HH:MM:SS)",
            "trip above 20%",
            "restore below 5%",
            "\nwithdrew 13:01:",
            "\nrestored 13:02:",
            "withdrew: web_log.error_ratio",
            "stroke=\"#1F5FBF\" stroke-width=\"2\"",
            "opacity=\"0.15\" fill=\"#D62728\"",
            "peak 50% at 13:01:",
        ] {
            assert!(svg.contains(part), "no {part} in\n{svg}");
        }
        assert_eq!(svg.matches("class=\"decision\"").count(), 2);
        assert!(
            !svg.contains("<script") && !svg.contains("href="),
            "self-contained"
        );
        let html = plot::html(&report);
        assert!(
            html.contains("<li>2026-11-22T13:01:") && html.contains(&svg),
            "{html}"
        );
    }

    /// Renders the plot in headless Chromium and checks the picture itself: the SVG, drawn onto
    /// a canvas, has the value line's blue, the trip line's and withdrawal's red, and the restore
    /// line's green pixels; the HTML page's DOM, after parsing, holds the panel and decisions.
    #[test]
    fn plot_renders_in_headless_chromium() {
        let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|b| {
                std::process::Command::new(b)
                    .arg("--version")
                    .output()
                    .is_ok()
            })
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium missing in CI: testbed/setup.sh installs Debian's chromium"
            );
            eprintln!("SKIP: chromium not installed (apt-get install chromium)");
            return;
        };
        let report = outage_report();
        let dir = tempfile::tempdir().unwrap();
        let svg = plot::svg(&report);
        let b64 = base64(svg.as_bytes());
        // The drawing's size, from its viewBox (the SVG itself is as wide as its page).
        let view: Vec<u32> = svg
            .split("viewBox=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(|v| v.split(' ').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default();
        let (w, h) = (view[2], view[3]);
        // A probe page: draws the SVG onto a canvas and counts pixels by colour.
        let probe = format!(
            r#"<!doctype html><html><body><pre id="result">pending</pre><div id="inline"></div><script>
const img = new Image({w}, {h});
img.onload = () => {{
  const c = document.createElement('canvas');
  c.width = {w}; c.height = {h};
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, {w}, {h});
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let blue = 0, red = 0, green = 0, ink = 0;
  for (let i = 0; i < d.length; i += 4) {{
    const [r, gg, b] = [d[i], d[i+1], d[i+2]];
    if (r < 250 || gg < 250 || b < 250) ink++;
    if (b > 150 && r < 80 && gg < 130) blue++;
    if (r > 180 && gg < 90 && b < 90) red++;
    if (gg > 130 && r < 90 && b < 90) green++;
  }}
  // The same SVG inline in the page: as wide as the page's content box.
  const box = document.getElementById('inline');
  box.innerHTML = atob('{b64}');
  const inline_w = box.querySelector('svg').getBoundingClientRect().width;
  document.getElementById('result').textContent = JSON.stringify(
    {{w: c.width, h: c.height, ink, blue, red, green, inline_w, page_w: box.clientWidth}});
}};
img.onerror = () => {{ document.getElementById('result').textContent = 'error'; }};
img.src = 'data:image/svg+xml;base64,{b64}';
</script></body></html>"#
        );
        let page = dir.path().join("probe.html");
        std::fs::write(&page, probe).unwrap();
        let run = |target: &std::path::Path| -> String {
            let profile = tempfile::tempdir().unwrap();
            let out = std::process::Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--virtual-time-budget=5000",
                    "--window-size=1400,1000",
                    "--dump-dom",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(format!("file://{}", target.display()))
                .output()
                .expect("chromium runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let dom = run(&page);
        let json = dom
            .split("<pre id=\"result\">")
            .nth(1)
            .and_then(|r| r.split("</pre>").next())
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("no result from the probe page ({e}): {dom}"));
        eprintln!("rendered: {v}");
        assert_eq!(v["w"], 1200, "{v}");
        let n = |k: &str| v[k].as_f64().unwrap_or(0.0) as u64;
        assert!(
            n("page_w") > 1000 && n("inline_w") == n("page_w"),
            "not the page's full width: {v}"
        );
        assert!(n("ink") > 5_000, "blank picture: {v}");
        assert!(n("blue") > 300, "no value line: {v}");
        assert!(n("red") > 300, "no trip line / withdrawal: {v}");
        assert!(n("green") > 100, "no restore line: {v}");
        // The HTML page as Chromium parsed it.
        let html = dir.path().join("plot.html");
        std::fs::write(&html, plot::html(&report)).unwrap();
        let dom = run(&html);
        assert!(
            dom.contains("<svg") && dom.contains("class=\"panel\""),
            "{dom}"
        );
        assert_eq!(dom.matches("<li>").count(), 2, "{dom}");
    }

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
