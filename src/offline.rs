//! `vipwarden replay`: runs a recorded access log through the same window and policy as the
//! daemon, on the log's own clock, and reports when each VIP would have been withdrawn and
//! restored, and why. Operators tune thresholds with it before production.
//!
//! Active checks cannot be replayed, so they count as passing. A recording also cannot know that
//! a withdrawn node would have lost its traffic: traffic goes on after a simulated withdrawal, so
//! restores follow the recorded traffic's recovery (and hold-down/probation) rather than a drain.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::config::{Config, SignalKind};
use crate::engine::{Observation, Reading};
use crate::signals::{replay, AccessLogConfig, ReplayOptions, ReplaySummary, WindowSnapshot};

/// One route change the replay found.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayEvent {
    pub at_ms: i64,
    pub vip: String,
    pub announce: bool,
    pub reason: String,
}

pub struct ReplayReport {
    pub signal: String,
    pub summary: ReplaySummary,
    pub events: Vec<ReplayEvent>,
    /// VIPs whose conditions name signals other than the replayed one (those read as no data).
    pub unreplayed: Vec<String>,
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
    let base = Instant::now();
    let mut engine = config.engine(base);
    // Checks are taken as passing: feed each one `rise` passes at the start of log time.
    for (i, c) in config.checks.iter().enumerate() {
        for _ in 0..c.rise {
            let obs = Observation {
                check: i,
                ok: true,
                detail: "assumed passing in replay".into(),
            };
            engine.observe(&obs, base);
        }
    }
    let prefix = format!("{}.", signal.name);
    let unreplayed = config
        .vips
        .iter()
        .filter(|v| {
            v.spec
                .withdraw_when
                .iter()
                .any(|c| !c.signal.starts_with(&prefix))
        })
        .map(|v| v.spec.name.to_string())
        .collect();

    let mut first_ms: Option<i64> = None;
    let mut events = Vec::new();
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
                    reason: d.reason,
                });
            }
        },
    )
    .context("reading the log")?;
    Ok(ReplayReport {
        signal: signal.name.clone(),
        summary,
        events,
        unreplayed,
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
    if report.events.is_empty() {
        writeln!(
            out,
            "no route changes: every VIP would have stayed announced"
        )?;
    }
    for e in &report.events {
        let verb = if e.announce { "restored" } else { "withdrew" };
        writeln!(
            out,
            "{}  {verb} {}: {}",
            format_time(e.at_ms),
            e.vip,
            e.reason
        )?;
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
    fn log() -> String {
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

    #[test]
    fn signal_choice_is_explained() {
        let config = crate::config::parse(Path::new("r.yaml"), CONFIG).unwrap();
        let e = pick_signal(&config, Some("nope")).unwrap_err().to_string();
        assert!(e.contains("access_log signals: web_log"), "{e}");
    }
}
