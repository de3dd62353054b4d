//! Text the CLI prints: `vipwarden status` in the style of a router's `show protocols`, the
//! event list, and command outcomes. Pure functions of the JSON views (and "now"), so tests can
//! pin the exact output.

use std::fmt::Write;

use crate::civil_time::civil_from_days;
use crate::control::{EventView, StatusView, VipState, VipView};

/// Free-text fields (details, errors) are cut here to keep one line per row. A VIP's reason is
/// never cut (it may be an operator's drain reason): a long one goes on wrapped lines below.
const MAX_FIELD_CHARS: usize = 72;
/// Width of the wrapped reason lines under a VIP (after their indent).
const WRAP_CHARS: usize = 96;

/// Splits `text` into lines of at most `width` characters at spaces; a longer word is split.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let sep = usize::from(used > 0);
            if used + sep + word.len() <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line: hard split.
            let rest = word.split_off(width);
            lines.push(word.iter().collect());
            word = rest;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `45s`, `5m07s`, `1h02m`, `3d04h`: two units, like router uptimes.
pub(crate) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn since(now: u64, at: Option<u64>) -> String {
    match at {
        Some(at) if at > 0 => duration(now.saturating_sub(at)),
        _ => "-".into(),
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_FIELD_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_FIELD_CHARS - 1).collect();
    out.push('…');
    out
}

/// Compact number: at most 4 decimals, no trailing zeros.
fn number(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` UTC from Unix milliseconds (no time-zone database on purpose: logs
/// and routers on the node are compared in UTC).
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let t = secs % 86400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        ms % 1000
    )
}

/// Aligns columns; the last column is not padded (no trailing spaces).
fn table(rows: &[Vec<String>], indent: &str) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = indent.to_string();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

pub(crate) fn status(s: &StatusView, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vipwarden {}  router-id {}  AS {}  up {}  config #{} {}",
        s.version,
        s.router_id,
        s.local_as,
        since(now, Some(s.started_at)),
        s.config.generation,
        s.config.path
    );

    out.push('\n');
    let mut peers = vec![[
        "PEER",
        "ADDRESS",
        "AS",
        "STATE",
        "UPTIME",
        "PFX",
        "LAST ERROR",
    ]
    .map(String::from)
    .to_vec()];
    for p in &s.peers {
        let up = match (p.uptime_secs, p.established_since) {
            (Some(u), _) => duration(u),
            (None, at) => since(now, at),
        };
        peers.push(vec![
            p.name.clone(),
            p.address.clone(),
            p.remote_as.to_string(),
            p.state.clone(),
            up,
            p.prefixes_announced.to_string(),
            p.last_error.as_deref().map_or("-".into(), cut),
        ]);
    }
    if s.peers.is_empty() {
        out.push_str("no BGP peers configured\n");
    } else {
        table(&peers, "").iter().for_each(|l| {
            out.push_str(l);
            out.push('\n');
        });
    }
    bfd_table(&mut out, s);

    out.push('\n');
    let mut vips = vec![["VIP", "STATE", "SINCE", "REASON"]
        .map(String::from)
        .to_vec()];
    for v in &s.vips {
        let fits = v.reason.chars().count() <= MAX_FIELD_CHARS;
        vips.push(vec![
            v.name.to_string(),
            v.state.to_string(),
            since(now, Some(v.since)),
            if fits {
                v.reason.to_string()
            } else {
                "(reason below)".to_string()
            },
        ]);
    }
    let vip_lines = table(&vips, "");
    if let Some(head) = vip_lines.first() {
        out.push_str(head);
        out.push('\n');
    }
    for (v, line) in s.vips.iter().zip(vip_lines.iter().skip(1)) {
        out.push_str(line);
        out.push('\n');
        if v.reason.chars().count() > MAX_FIELD_CHARS {
            for (i, l) in wrap(&v.reason, WRAP_CHARS).iter().enumerate() {
                let head = if i == 0 { "reason: " } else { "        " };
                let _ = writeln!(out, "    {head}{l}");
            }
        }
        if let Some(w) = v.weight() {
            let _ = writeln!(
                out,
                "    weight: {} of {} ({})",
                crate::engine::format_bandwidth(w.bytes_per_sec),
                crate::engine::format_bandwidth(w.capacity_bytes_per_sec),
                w.reason
            );
        }
        for l in table(&vip_details(v), "    ") {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if s.vips.is_empty() {
        out.push_str("no VIPs configured\n");
    }
    fleet_table(&mut out, s);

    let mut errors: Vec<String> = s.errors.clone();
    if let Some(e) = &s.config.last_reload_error {
        errors.push(format!(
            "config reload refused, still running config #{}: {e}",
            s.config.generation
        ));
    }
    if !errors.is_empty() {
        out.push_str("\nERRORS\n");
        for e in errors {
            let _ = writeln!(out, "  {e}");
        }
    }
    out
}

/// `status --check`: exit code and one line for monitoring (Nagios levels). 0 OK: every VIP
/// announced on every session. 1 WARNING, degraded: still in service through some session, but a
/// session is down or a VIP is not announced. 2 CRITICAL: no session is established, so nothing
/// reaches the fabric (the CLI also uses 2 for a daemon it cannot reach).
pub(crate) fn check_line(s: &StatusView) -> (u8, String) {
    let total = s.vips.len();
    let out: Vec<String> = s
        .vips
        .iter()
        .filter(|v| v.state != VipState::Announced)
        .map(|v| format!("{} {} ({})", v.name, v.state, v.reason))
        .collect();
    let down: Vec<String> = s
        .peers
        .iter()
        .filter(|p| p.state != "established")
        .map(
            |p| match p.last_error.as_deref().or(p.last_end.as_deref()) {
                Some(why) => format!("{} {} ({})", p.name, p.state, cut(why)),
                None => format!("{} {}", p.name, p.state),
            },
        )
        .collect();
    let up = s.peers.len() - down.len();
    let mut sessions = format!("{up}/{} sessions established", s.peers.len());
    if !down.is_empty() {
        sessions = format!("{sessions}, down: {}", down.join(", "));
    }
    let vips = if out.is_empty() {
        format!("{total}/{total} VIPs announced")
    } else {
        format!(
            "{}/{total} VIPs not announced: {}",
            out.len(),
            out.join("; ")
        )
    };
    if !s.peers.is_empty() && up == 0 {
        (2, format!("CRITICAL: no BGP session established, nothing reaches the fabric; {vips}; {sessions}"))
    } else if !out.is_empty() || !down.is_empty() {
        (1, format!("WARNING: degraded: {vips}; {sessions}"))
    } else {
        (0, format!("OK: {vips}; {sessions}"))
    }
}

/// Rows under a VIP: each check (name, up/down, last detail), then each traffic condition
/// (signal, phase, value and what trips it).
fn vip_details(v: &VipView) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for c in v.checks.iter() {
        let state = match (c.up, c.last_ok) {
            (true, Some(false)) => "up, failing",
            (false, Some(true)) => "down, passing",
            (true, _) => "up",
            (false, _) => "down",
        };
        let detail = match (c.last_ok, c.last_detail.is_empty(), c.last_duration_ms) {
            (None, _, _) => "no result yet".to_string(),
            (_, false, _) => cut(&c.last_detail),
            (_, true, Some(ms)) => format!("{} ms", number(ms)),
            (_, true, None) => "-".to_string(),
        };
        rows.push(vec![c.name.clone(), state.to_string(), detail]);
    }
    for c in &v.conditions {
        let value = c.value.map_or("no data".into(), number);
        rows.push(vec![
            c.signal.clone(),
            c.phase.clone(),
            cut(&format!("{value}  {}", c.description)),
        ]);
    }
    rows
}

pub(crate) fn events(events: &[EventView]) -> String {
    if events.is_empty() {
        return "no events yet\n".into();
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                utc(e.at_ms),
                e.vip.clone(),
                // from == to: a drain's progress, not a change of state.
                if e.from == e.to {
                    e.to.to_string()
                } else {
                    format!("{} -> {}", e.from, e.to)
                },
                e.reason.clone(),
            ]
        })
        .collect();
    table(&rows, "").into_iter().map(|l| l + "\n").collect()
}

/// What a drain/undrain did, one VIP a line.
pub(crate) fn outcome(verb: &str, changed: &[(String, VipState)]) -> String {
    if changed.is_empty() {
        return format!("{verb}: no VIP changed state (already {verb}ed?)\n");
    }
    let rows: Vec<Vec<String>> = changed
        .iter()
        .map(|(v, s)| vec![v.clone(), format!("-> {s}")])
        .collect();
    table(&rows, "").into_iter().map(|l| l + "\n").collect()
}

/// BFD sessions, when any peer has `bfd:`.
/// The fleet guard per VIP and ToR: what the ToR shows, and the gate's state there.
fn fleet_table(out: &mut String, s: &StatusView) {
    let guarded: Vec<_> = s
        .vips
        .iter()
        .filter_map(|v| v.fleet().map(|f| (v, f)))
        .collect();
    if guarded.is_empty() {
        return;
    }
    out.push_str("\nFLEET (guard: min_healthy_others per ToR)\n");
    let mut rows = vec![[
        "VIP", "GUARD", "TOR", "VIEW", "HEALTHY", "MARKED", "HERE", "MARK RTT",
    ]
    .map(String::from)
    .to_vec()];
    let mut reasons = Vec::new();
    for (v, f) in &guarded {
        for p in &f.peers {
            let count = |h: &str| p.announcers.iter().filter(|a| a.health == h).count();
            rows.push(vec![
                v.name.to_string(),
                format!("{} (min {})", f.guard, f.min_healthy_others),
                p.peer.clone(),
                p.view.clone(),
                count("healthy").to_string(),
                count("marked").to_string(),
                if p.guard.is_empty() {
                    "in".to_string()
                } else {
                    p.guard.clone()
                },
                p.mark_propagation_ms
                    .map_or("-".to_string(), |ms| format!("{ms} ms")),
            ]);
            if !p.guard_reason.is_empty() {
                reasons.push(format!("{} at {}: {}", v.name, p.peer, p.guard_reason));
            }
        }
        if f.peers.is_empty() {
            rows.push(vec![
                v.name.to_string(),
                format!("{} (min {})", f.guard, f.min_healthy_others),
                "-".into(),
                "no session".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
    }
    for l in table(&rows, "") {
        out.push_str(&l);
        out.push('\n');
    }
    for r in reasons
        .iter()
        .chain(guarded.iter().flat_map(|(_, f)| f.warnings.iter()))
    {
        for (i, l) in wrap(r, WRAP_CHARS).iter().enumerate() {
            let head = if i == 0 { "  " } else { "    " };
            let _ = writeln!(out, "{head}{l}");
        }
    }
}

fn bfd_table(out: &mut String, s: &StatusView) {
    let mut rows = vec![[
        "BFD PEER",
        "STATE",
        "REMOTE",
        "TX",
        "DETECT",
        "CHANGES",
        "LAST DIAG",
        "DISCARDED",
    ]
    .map(String::from)
    .to_vec()];
    for p in &s.peers {
        let Some(b) = &p.bfd else { continue };
        let discarded: u64 = b.discarded.values().sum();
        rows.push(vec![
            p.name.clone(),
            b.setup_error
                .as_ref()
                .map_or(b.state.clone(), |e| format!("no socket: {}", cut(e))),
            b.remote_state.clone(),
            b.tx_interval_ms.map_or("-".into(), |t| format!("{t:.0}ms")),
            format!("{:.0}ms", b.detect_time_ms),
            b.state_changes.to_string(),
            b.last_diagnostic.clone().unwrap_or_else(|| "-".into()),
            discarded.to_string(),
        ]);
    }
    if rows.len() > 1 {
        out.push('\n');
        table(&rows, "").iter().for_each(|l| {
            out.push_str(l);
            out.push('\n');
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::testutil::{sample_events, sample_status, NOW};

    #[test]
    fn a_weighted_vip_shows_its_weight_and_why() {
        let s = sample_status();
        let text = status(&s, NOW);
        assert!(
            text.contains("    weight: 5 Gbit/s of 10 Gbit/s (50% of capacity: x50% while lat.p99 = 240ms (ACTIVE))"),
            "{text}"
        );
        assert_eq!(text.matches("weight:").count(), 1, "{text}");
    }

    #[test]
    fn durations_use_two_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(307), "5m07s");
        assert_eq!(duration(3720), "1h02m");
        assert_eq!(duration(3 * 86400 + 4 * 3600 + 59), "3d04h");
    }

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(utc(1_790_000_000_000), "2026-09-21 14:13:20.000");
    }

    #[test]
    fn status_reads_like_show_protocols() {
        let text = status(&sample_status(), NOW);
        let expected = "\
vipwarden 0.1.0  router-id 192.0.2.11  AS 65011  up 3d04h  config #3 /etc/vipwarden/vipwarden.yaml

PEER  ADDRESS      AS     STATE        UPTIME  PFX  LAST ERROR
tor1  192.0.2.1    65000  established  1h02m   2    -
tor2  2001:db8::2  65000  connect      -       0    connect: connection refused

VIP  STATE        SINCE  REASON
web  announced    1h01m  checks passed
    weight: 5 Gbit/s of 10 Gbit/s (50% of capacity: x50% while lat.p99 = 240ms (ACTIVE))
    web_tcp           up     connected in 0.3 ms
    errors.5xx_ratio  clear  0.012  5xx ratio above 0.05
api  maintenance  3m05s  drained via API: kernel upgrade
    web_tcp  up  connected in 0.3 ms

FLEET (guard: min_healthy_others per ToR)
VIP  GUARD         TOR   VIEW  HEALTHY  MARKED  HERE  MARK RTT
web  idle (min 1)  tor1  full  1        0       in    180 ms

ERRORS
  state file /var/lib/vipwarden/state.json not writable: permission denied
";
        assert_eq!(text, expected, "got:\n{text}");
    }

    #[test]
    fn status_shows_refused_reload_and_long_fields_are_cut() {
        let mut s = sample_status();
        s.config.last_reload_error = Some("vipwarden.yaml:3:1: bad".into());
        s.vips[0].reason = "x".repeat(200).into();
        s.vips[1].reason = format!(
            "drained via API: {}",
            "kernel upgrade, ticket OPS-1234; ".repeat(6)
        )
        .into();
        s.peers[1].last_error = Some("y".repeat(200));
        let text = status(&s, NOW);
        // The reason is never cut: every word is there, on wrapped lines under the VIP.
        let shown: String = text
            .lines()
            .filter(|l| l.starts_with("    reason: ") || l.starts_with("            "))
            .map(|l| l.trim_start().trim_start_matches("reason: "))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(shown.contains(s.vips[1].reason.trim()), "{text}");
        assert_eq!(shown.matches('x').count(), 200, "{text}");
        assert!(
            text.contains("api  maintenance  3m05s  (reason below)"),
            "{text}"
        );
        assert!(
            text.contains(
                "config reload refused, still running config #3: vipwarden.yaml:3:1: bad"
            ),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() < 130), "{text}");
        assert!(text.contains('…'));
    }

    #[test]
    fn check_line_and_code() {
        let mut s = sample_status();
        s.peers[1].last_error = None;
        s.peers[1].last_end = None;
        assert_eq!(
            check_line(&s),
            (
                1,
                "WARNING: degraded: 1/2 VIPs not announced: api maintenance (drained via API: kernel upgrade); 1/2 sessions established, down: tor2 connect".into()
            )
        );
        // Issue 22: every VIP announced but one of two sessions down is degraded, not OK.
        s.vips[1].state = VipState::Announced;
        s.peers[1].last_error = Some("connect refused".into());
        assert_eq!(
            check_line(&s),
            (
                1,
                "WARNING: degraded: 2/2 VIPs announced; 1/2 sessions established, down: tor2 connect (connect refused)".into()
            )
        );
        s.peers[1].state = "established".into();
        assert_eq!(
            check_line(&s),
            (0, "OK: 2/2 VIPs announced; 2/2 sessions established".into())
        );
        for p in &mut s.peers {
            p.state = "idle".into();
        }
        let (code, line) = check_line(&s);
        assert_eq!(code, 2, "{line}");
        assert!(
            line.starts_with("CRITICAL: no BGP session established"),
            "{line}"
        );
    }

    #[test]
    fn wrap_keeps_every_character() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), Vec::<String>::new());
        let text = "one two three four five six seven eight nine ten";
        let lines = wrap(text, 9);
        assert!(lines.iter().all(|l| l.chars().count() <= 9));
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn events_and_outcomes() {
        let text = events(&sample_events()[..2]);
        assert_eq!(
            text,
            "2026-09-21 14:03:20.250  web  announced -> withdrawn  event 0\n\
             2026-09-21 14:04:20.250  web  withdrawn -> announced  event 1\n"
        );
        assert_eq!(events(&[]), "no events yet\n");
        assert_eq!(
            outcome("drain", &[("web".into(), VipState::Maintenance)]),
            "web  -> maintenance\n"
        );
        assert!(outcome("undrain", &[]).contains("no VIP changed state"));
    }
}
