//! `vipwarden replay --plot FILE.svg|FILE.html`: one self-contained picture (no scripts, fonts or
//! files from elsewhere) of each condition's value over log time against its trip and restore
//! thresholds, with the simulated route state shaded and every decision marked.
//!
//! Pure: report in, markup out.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{format_time, ReplayReport, SeriesPoint};

const WIDTH: f64 = 960.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 26.0;

/// Colours: value, trip, restore, withdrawn/maintenance shading, draining shading, decisions.
const VALUE: &str = "#1f5fbf";
const TRIP: &str = "#d62728";
const RESTORE: &str = "#2ca02c";
const OUT: &str = "#d62728";
const DRAINING: &str = "#ff9f1c";
const WEIGHT: &str = "#9467bd";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The standalone SVG document.
pub fn svg(report: &ReplayReport) -> String {
    let mut panels: BTreeMap<(&str, &str), Vec<&SeriesPoint>> = BTreeMap::new();
    for p in &report.series {
        panels
            .entry((p.vip.as_str(), p.signal.as_str()))
            .or_default()
            .push(p);
    }
    let (t0, t1) = match (report.series.first(), report.series.last()) {
        (Some(a), Some(b)) => (a.at_ms, b.at_ms.max(a.at_ms + 1)),
        _ => (0, 1),
    };
    let height = TOP + panels.len().max(1) as f64 * (PANEL_H + BOTTOM + TOP) + 24.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">vipwarden replay of signal {}: {} to {}</text>"#,
        esc(&report.signal),
        format_time(t0),
        format_time(t1)
    );
    if panels.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}">no condition values in this log</text>"#,
            TOP + 20.0
        );
    }
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: i64| LEFT + plot_w * (t - t0) as f64 / (t1 - t0) as f64;
    for (i, ((vip, signal), points)) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_H + BOTTOM + TOP) + TOP;
        let max = points
            .iter()
            .flat_map(|p| [p.value, p.trip_above, p.restore_below])
            .flatten()
            .fold(0.0f64, f64::max);
        let ymax = if max > 0.0 { max * 1.15 } else { 1.0 };
        let y = |v: f64| top + PANEL_H - PANEL_H * (v / ymax).clamp(0.0, 1.0);
        let _ = writeln!(
            out,
            r#"<g class="panel" data-vip="{}" data-signal="{}">"#,
            esc(vip),
            esc(signal)
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{} — {}</text>"#,
            top - 8.0,
            esc(vip),
            esc(signal)
        );
        // Route state shading: runs of the same non-announced state.
        let mut run: Option<(i64, &str)> = None;
        let shade = |out: &mut String, from: i64, to: i64, state: &str| {
            let colour = if state == "draining" { DRAINING } else { OUT };
            let _ = writeln!(
                out,
                r#"<rect class="route-{state}" x="{:.1}" y="{top}" width="{:.1}" height="{PANEL_H}" fill="{colour}" fill-opacity="0.15"><title>{state}</title></rect>"#,
                x(from),
                (x(to) - x(from)).max(1.0)
            );
        };
        for p in points {
            match run {
                Some((_, s)) if s == p.route => {}
                Some((from, s)) => {
                    if s != "announced" {
                        shade(&mut out, from, p.at_ms, s);
                    }
                    run = Some((p.at_ms, &p.route));
                }
                None => run = Some((p.at_ms, &p.route)),
            }
        }
        if let Some((from, s)) = run {
            if s != "announced" {
                shade(&mut out, from, t1, s);
            }
        }
        // Frame and y labels.
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
            LEFT - 4.0,
            top + 10.0,
            number(ymax),
            LEFT - 4.0,
            top + PANEL_H
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            top + PANEL_H + 16.0,
            format_time(t0),
            WIDTH - RIGHT,
            top + PANEL_H + 16.0,
            format_time(t1)
        );
        for (class, colour, dash, pick) in [
            ("trip", TRIP, "6 4", 0usize),
            ("restore", RESTORE, "2 4", 1),
            ("value", VALUE, "", 2),
        ] {
            let line = polyline(points.iter().map(|p| {
                let v = match pick {
                    0 => p.trip_above,
                    1 => p.restore_below,
                    _ => p.value,
                };
                v.map(|v| (x(p.at_ms), y(v)))
            }));
            for pts in line {
                let dash = if dash.is_empty() {
                    String::new()
                } else {
                    format!(r#" stroke-dasharray="{dash}""#)
                };
                let width = if class == "value" { 2 } else { 1 };
                let _ = writeln!(
                    out,
                    r#"<polyline class="{class}" points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}/>"#
                );
            }
        }
        // Decisions of this VIP.
        for e in report.events.iter().filter(|e| e.vip == *vip) {
            let colour = match e.verb {
                "weight" => WEIGHT,
                "restored" => RESTORE,
                "withdrew" => OUT,
                _ => DRAINING,
            };
            let _ = writeln!(
                out,
                r#"<line class="decision" x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="{colour}" stroke-width="2"><title>{2} {3}: {4}</title></line>"#,
                x(e.at_ms),
                top + PANEL_H,
                format_time(e.at_ms),
                e.verb,
                esc(&e.reason)
            );
        }
        out.push_str("</g>\n");
    }
    // Legend.
    let ly = height - 8.0;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{ly}"><tspan fill="{VALUE}">— value</tspan>   <tspan fill="{TRIP}">- - trip above</tspan>   <tspan fill="{RESTORE}">··· restore below</tspan>   <tspan fill="{OUT}">▮ withdrawn / maintenance, | decision</tspan>   <tspan fill="{DRAINING}">▮ draining</tspan>   <tspan fill="{WEIGHT}">| weight change</tspan></text>"#
    );
    out.push_str("</svg>\n");
    out
}

/// The SVG in a minimal HTML page, with the decisions listed under it.
pub fn html(report: &ReplayReport) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vipwarden replay</title>\n\
         <style>body{font-family:sans-serif;margin:1em}li{font-family:monospace}</style></head><body>\n",
    );
    let _ = writeln!(out, "<h1>vipwarden replay: {}</h1>", esc(&report.signal));
    for w in &report.warnings {
        let _ = writeln!(out, "<p class=\"warning\"><b>Warning:</b> {}</p>", esc(w));
    }
    out.push_str(&svg(report));
    out.push_str("<h2>Decisions</h2>\n<ul id=\"decisions\">\n");
    if report.events.is_empty() {
        out.push_str("<li>no route changes: every VIP would have stayed announced</li>\n");
    }
    for e in &report.events {
        let _ = writeln!(
            out,
            "<li>{} {} {}: {}</li>",
            format_time(e.at_ms),
            e.verb,
            esc(&e.vip),
            esc(&e.reason)
        );
    }
    out.push_str("</ul>\n</body></html>\n");
    out
}

/// Points as `x,y` pairs, split where a value is missing (no data is a gap, not a zero).
fn polyline(points: impl Iterator<Item = Option<(f64, f64)>>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for p in points {
        match p {
            Some((x, y)) => {
                if !cur.is_empty() {
                    cur.push(' ');
                }
                let _ = write!(cur, "{x:.1},{y:.1}");
            }
            None if !cur.is_empty() => lines.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn number(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyline_splits_at_gaps() {
        let pts = [Some((1.0, 2.0)), Some((3.0, 4.0)), None, Some((5.0, 6.0))];
        assert_eq!(polyline(pts.into_iter()), ["1.0,2.0 3.0,4.0", "5.0,6.0"]);
        assert!(polyline([None, None].into_iter()).is_empty());
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
