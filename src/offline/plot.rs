//! `vipwarden replay --plot FILE.svg|FILE.html`: one self-contained picture (no scripts, fonts or
//! files from elsewhere) per VIP and condition: the value over log time in its unit (ms, %,
//! req/s) against its labelled trip and restore thresholds, the simulated route state shaded, every
//! decision and weight change a labelled vertical line, the peak (or near miss) annotated.
//!
//! Charts are drawn by `plotters` (SVG backend); this module picks ranges, ticks and labels and
//! stacks the panels into one SVG that scales to the page's width. Pure: report in, markup out.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{format_time, ConditionPeak, ReplayEvent, ReplayReport, SeriesPoint};

/// The drawing's own size; the SVG scales to the page (`width="100%"`, `viewBox`).
const WIDTH: u32 = 1200;
const PANEL_H: u32 = 400;
const HEAD_H: u32 = 36;
const FOOT_H: u32 = 30;

const VALUE: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const TRIP: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const RESTORE: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const OUT: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const DRAINING: RGBColor = RGBColor(0xff, 0x9f, 0x1c);
const WEIGHT: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a series unit is shown: values are scaled into the axis unit (ratio 0-1 as %, latency
/// microseconds as ms).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Axis {
    Percent,
    Millis,
    PerSecond,
}

impl Axis {
    fn of(unit: &str) -> Axis {
        match unit {
            "ratio" => Axis::Percent,
            "us" => Axis::Millis,
            _ => Axis::PerSecond,
        }
    }
    fn scale(self, v: f64) -> f64 {
        match self {
            Axis::Percent => v * 100.0,
            Axis::Millis => v / 1000.0,
            Axis::PerSecond => v,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Axis::Percent => "%",
            Axis::Millis => " ms",
            Axis::PerSecond => " req/s",
        }
    }
    fn desc(self, signal: &str) -> String {
        let quantity = signal.rsplit('.').next().unwrap_or(signal);
        match self {
            Axis::Percent => format!("{quantity} (%)"),
            Axis::Millis => format!("{quantity} (ms)"),
            Axis::PerSecond => format!("{quantity} (req/s)"),
        }
    }
    /// A value already in axis units, with its unit.
    fn label(self, v: f64) -> String {
        format!("{}{}", number(v), self.suffix())
    }
}

/// Up to 3 significant decimals, no trailing zeros: 0.5, 12.25, 1500.
fn number(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `13:45:01` of a log time (UTC, from the log's own timestamps); with the date (`11-22 13:45`)
/// when the replay spans more than a day.
fn clock(ms: i64, with_date: bool) -> String {
    let t = format_time(ms);
    match (with_date, t.get(5..10), t.get(11..16), t.get(11..19)) {
        (true, Some(d), Some(hm), _) => format!("{d} {hm}"),
        (false, _, _, Some(hms)) => hms.to_string(),
        _ => t,
    }
}

/// Time ticks on whole seconds, minutes or hours: at most about 10 over the span.
fn time_ticks(t0: i64, t1: i64) -> Vec<i64> {
    const STEPS_S: [i64; 19] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
        172800,
    ];
    let span = (t1 - t0).max(1);
    let step = STEPS_S
        .iter()
        .map(|s| s * 1000)
        .find(|s| span / s <= 10)
        .unwrap_or_else(|| (span / 10 / 86_400_000 + 1) * 86_400_000);
    let mut t = t0.div_euclid(step) * step;
    if t < t0 {
        t += step;
    }
    let mut ticks = Vec::new();
    while t <= t1 && ticks.len() < 64 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// The y range's top, in axis units: thresholds and data both readable. Data far above the
/// thresholds is cut at 4x the highest threshold (the peak label gives its value) so that a
/// threshold near zero is not squashed against the axis.
fn y_top(data_max: f64, thr_max: f64) -> f64 {
    let top = if thr_max > 0.0 {
        (thr_max * 1.25).max(data_max.min(thr_max * 4.0))
    } else {
        data_max
    };
    if top > 0.0 && top.is_finite() {
        top * 1.1
    } else {
        1.0
    }
}

/// Runs of consecutive `Some` values: a missing value is a gap, not a zero.
fn runs<T: Copy>(points: impl Iterator<Item = (i64, Option<T>)>) -> Vec<Vec<(i64, T)>> {
    let mut out: Vec<Vec<(i64, T)>> = Vec::new();
    let mut cur = Vec::new();
    for (t, v) in points {
        match v {
            Some(v) => cur.push((t, v)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Runs of a constant threshold: (from, to, value).
fn threshold_runs(
    points: &[&SeriesPoint],
    pick: fn(&SeriesPoint) -> Option<f64>,
) -> Vec<(i64, i64, f64)> {
    let mut out: Vec<(i64, i64, f64)> = Vec::new();
    let mut open = false;
    for p in points {
        match (pick(p), out.last_mut()) {
            (Some(v), Some(last)) if open && last.2 == v => last.1 = p.at_ms,
            (Some(v), _) => {
                out.push((p.at_ms, p.at_ms, v));
                open = true;
            }
            (None, _) => open = false,
        }
    }
    out
}

/// Rises that came close to the trip without reaching it: runs of values above the restore
/// threshold (half the trip where there is none) whose maximum stayed below the trip and reached
/// at least 60% of it, as (time of the maximum, maximum, trip); the 3 closest, in time order.
fn near_misses(points: &[&SeriesPoint]) -> Vec<(i64, f64, f64)> {
    let mut found: Vec<(i64, f64, f64)> = Vec::new();
    // The current rise: its highest point, and whether it tripped.
    let mut rise: Option<((i64, f64, f64), bool)> = None;
    let close = |rise: Option<((i64, f64, f64), bool)>, found: &mut Vec<(i64, f64, f64)>| {
        if let Some(((at, v, trip), false)) = rise {
            if v >= trip * 0.6 {
                found.push((at, v, trip));
            }
        }
    };
    for p in points {
        let (Some(v), Some(trip)) = (p.value, p.trip_above) else {
            close(rise.take(), &mut found);
            continue;
        };
        let floor = p.restore_below.unwrap_or(trip * 0.5).min(trip);
        if v <= floor {
            close(rise.take(), &mut found);
            continue;
        }
        let tripped = v > trip;
        rise = Some(match rise {
            Some((top, t)) if top.1 >= v => (top, t || tripped),
            Some((_, t)) => ((p.at_ms, v, trip), t || tripped),
            None => ((p.at_ms, v, trip), tripped),
        });
    }
    close(rise, &mut found);
    found.sort_by(|a, b| (b.1 / b.2).total_cmp(&(a.1 / a.2)));
    found.truncate(3);
    found.sort_by_key(|f| f.0);
    found
}

fn decision_colour(verb: &str) -> RGBColor {
    match verb {
        "weight" => WEIGHT,
        "restored" => RESTORE,
        "withdrew" => OUT,
        _ => DRAINING,
    }
}

/// The label on a decision's line: what and when (a weight change: the new weight).
fn decision_label(e: &ReplayEvent, with_date: bool) -> String {
    let at = clock(e.at_ms, with_date);
    match e.weight {
        Some(bytes) => {
            let bits = bytes as f64 * 8.0;
            let w = if bits >= 1e9 {
                format!("{} Gbit/s", number(bits / 1e9))
            } else {
                format!("{} Mbit/s", number(bits / 1e6))
            };
            format!("weight {w} {at}")
        }
        None => format!("{} {at}", e.verb),
    }
}

/// The annotation at a condition's peak: how close it came to its trip threshold.
fn peak_label(
    peak: &ConditionPeak,
    axis: Axis,
    with_date: bool,
    off_scale: bool,
) -> Option<String> {
    let (v, at, trip) = peak.peak?;
    let (v, at) = (axis.scale(v), clock(at, with_date));
    let off = if off_scale { ", off scale" } else { "" };
    Some(match trip.map(|t| axis.scale(t)) {
        Some(t) if peak.tripped => format!(
            "peak {} at {at}{off}: tripped (above {})",
            axis.label(v),
            axis.label(t)
        ),
        Some(t) if t > 0.0 => format!(
            "near miss: peak {} at {at}, {:.0}% of trip {} ({} below)",
            axis.label(v),
            v / t * 100.0,
            axis.label(t),
            axis.label(t - v)
        ),
        _ => format!("peak {} at {at}{off}", axis.label(v)),
    })
}

struct Panel<'a> {
    vip: &'a str,
    signal: &'a str,
    points: Vec<&'a SeriesPoint>,
}

/// One panel as SVG elements (no `<svg>` wrapper), `PANEL_H` high.
fn panel_svg(
    report: &ReplayReport,
    panel: &Panel,
    (t0, t1): (i64, i64),
    with_date: bool,
) -> Result<String, String> {
    let axis = Axis::of(panel.points.first().map(|p| p.unit).unwrap_or(""));
    let data_max = panel
        .points
        .iter()
        .filter_map(|p| p.value)
        .map(|v| axis.scale(v))
        .fold(0.0f64, f64::max);
    let thr_max = panel
        .points
        .iter()
        .flat_map(|p| [p.trip_above, p.restore_below])
        .flatten()
        .map(|v| axis.scale(v))
        .fold(0.0f64, f64::max);
    let ymax = y_top(data_max, thr_max);
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut buf = String::new();
    let mut overlays = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, PANEL_H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let ticks = time_ticks(t0, t1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} — {}", panel.vip, panel.signal),
                ("sans-serif", 20).into_font().style(FontStyle::Bold),
            )
            .margin(12)
            .margin_right(28)
            .x_label_area_size(44)
            .y_label_area_size(90)
            .build_cartesian_2d((t0..t1).with_key_points(ticks), 0.0..ymax)
            .map_err(|e| err(&e))?;
        let x_fmt = |t: &i64| clock(*t, with_date);
        let y_fmt = |v: &f64| axis.label(*v);
        let x_desc = if with_date {
            "log time (UTC, MM-DD HH:MM)"
        } else {
            "log time (UTC, HH:MM:SS)"
        };
        chart
            .configure_mesh()
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .y_labels(8)
            .x_desc(x_desc)
            .y_desc(axis.desc(panel.signal))
            .label_style(("sans-serif", 15).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 16).into_font().color(&INK))
            .bold_line_style(RGBColor(0xcc, 0xcc, 0xcc))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .max_light_lines(1)
            .draw()
            .map_err(|e| err(&e))?;

        // Route state: runs of a state other than announced, shaded.
        let mut states: Vec<(i64, i64, &str)> = Vec::new();
        for p in &panel.points {
            match states.last_mut() {
                Some(last) if last.2 == p.route => last.1 = p.at_ms,
                Some(last) => {
                    last.1 = p.at_ms;
                    states.push((p.at_ms, p.at_ms, &p.route));
                }
                None => states.push((p.at_ms, p.at_ms, &p.route)),
            }
        }
        if let Some(last) = states.last_mut() {
            last.1 = t1;
        }
        chart
            .draw_series(
                states
                    .iter()
                    .filter(|s| s.2 != "announced")
                    .map(|&(a, b, s)| {
                        let c = if s == "draining" { DRAINING } else { OUT };
                        Rectangle::new([(a, 0.0), (b, ymax)], c.mix(0.15).filled())
                    }),
            )
            .map_err(|e| err(&e))?;

        // Thresholds: dashed lines, each run labelled with its value at its right end.
        let label_font = |c: RGBColor| ("sans-serif", 15).into_font().color(&c);
        for (name, colour, pick, above) in [
            (
                "trip above",
                TRIP,
                (|p: &SeriesPoint| p.trip_above) as fn(&SeriesPoint) -> Option<f64>,
                true,
            ),
            (
                "restore below",
                RESTORE,
                |p: &SeriesPoint| p.restore_below,
                false,
            ),
        ] {
            let runs_of = threshold_runs(&panel.points, pick);
            let pos = Pos::new(HPos::Right, if above { VPos::Bottom } else { VPos::Top });
            let dy = if above { -3 } else { 3 };
            let label = |at: (i64, f64), text: String| {
                EmptyElement::at(at) + Text::new(text, (-4, dy), label_font(colour).pos(pos))
            };
            if runs_of.len() > 3 {
                // A moving threshold (above_baseline): one thin line, its last value labelled.
                for run in runs(panel.points.iter().map(|p| (p.at_ms, pick(p)))) {
                    chart
                        .draw_series(LineSeries::new(
                            run.into_iter().map(|(t, v)| (t, axis.scale(v).min(ymax))),
                            colour.stroke_width(1),
                        ))
                        .map_err(|e| err(&e))?;
                }
                if let Some(&(_, b, v)) = runs_of.last() {
                    let y = axis.scale(v).min(ymax);
                    let text = format!("{name} {} (moving; last)", axis.label(axis.scale(v)));
                    chart
                        .plotting_area()
                        .draw(&label((b, y), text))
                        .map_err(|e| err(&e))?;
                }
                continue;
            }
            for (a, b, v) in runs_of {
                let y = axis.scale(v).min(ymax);
                chart
                    .draw_series(DashedLineSeries::new(
                        [(a, y), (b.max(a + 1), y)],
                        8,
                        5,
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| err(&e))?;
                let text = format!("{name} {}", axis.label(axis.scale(v)));
                chart
                    .plotting_area()
                    .draw(&label((b, y), text))
                    .map_err(|e| err(&e))?;
            }
        }

        if panel.points.iter().all(|p| p.value.is_none()) {
            chart
                .plotting_area()
                .draw(&Text::new(
                    "no data in this log",
                    ((t0 + t1) / 2, ymax / 2.0),
                    ("sans-serif", 18)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))
                .map_err(|e| err(&e))?;
        }

        // Near misses: each rise above the restore threshold (half the trip without one) that
        // fell back without reaching the trip, its highest point labelled with how close it came.
        let misses = near_misses(&panel.points);
        for &(at, v, trip) in &misses {
            let y = axis.scale(v);
            let t = axis.scale(trip);
            let text = format!(
                "near miss: {} at {}, {:.0}% of trip {}",
                axis.label(y),
                clock(at, with_date),
                y / t * 100.0,
                axis.label(t)
            );
            // Anchored so that a label near either end stays inside the chart.
            let h = match (at - t0) * 3 / (t1 - t0).max(1) {
                0 => HPos::Left,
                1 => HPos::Center,
                _ => HPos::Right,
            };
            chart
                .plotting_area()
                .draw(
                    &(EmptyElement::at((at, y.min(ymax)))
                        + Circle::new((0, 0), 4, INK.stroke_width(1))
                        + Text::new(
                            text,
                            (0, -8),
                            ("sans-serif", 15)
                                .into_font()
                                .color(&INK)
                                .pos(Pos::new(h, VPos::Bottom)),
                        )),
                )
                .map_err(|e| err(&e))?;
        }

        // The value, cut at the top of the range (the peak label says by how much).
        for run in runs(panel.points.iter().map(|p| (p.at_ms, p.value))) {
            chart
                .draw_series(LineSeries::new(
                    run.into_iter().map(|(t, v)| (t, axis.scale(v).min(ymax))),
                    VALUE.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
        }

        // Decisions and weight changes of this VIP: labelled vertical lines.
        let events: Vec<&ReplayEvent> = report
            .events
            .iter()
            .filter(|e| e.vip == panel.vip)
            .collect();
        let mut last_x: Option<(i32, usize)> = None;
        for e in &events {
            let c = decision_colour(e.verb);
            // Labels read downwards left of their line; one within a label's width of the previous
            // goes one row lower so that they do not collide.
            let (px, _) = chart.backend_coord(&(e.at_ms, ymax));
            let row = match last_x {
                Some((x, row)) if px - x < 18 => (row + 1) % 2,
                _ => 0,
            };
            last_x = Some((px, row));
            chart
                .draw_series(LineSeries::new(
                    [(e.at_ms, 0.0), (e.at_ms, ymax)],
                    c.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
            let y = ymax * (0.98 - 0.5 * row as f64);
            chart
                .plotting_area()
                .draw(
                    &(EmptyElement::at((e.at_ms, y))
                        + Text::new(
                            decision_label(e, with_date),
                            (-4, 0),
                            ("sans-serif", 15)
                                .into_font()
                                .transform(FontTransform::Rotate90)
                                .color(&c),
                        )),
                )
                .map_err(|e| err(&e))?;
            let (x, y0) = chart.backend_coord(&(e.at_ms, ymax));
            let (_, y1) = chart.backend_coord(&(e.at_ms, 0.0));
            let _ = writeln!(
                overlays,
                r#"<rect class="decision" data-verb="{}" x="{}" y="{y0}" width="8" height="{}" fill="transparent"><title>{} {}: {}</title></rect>"#,
                e.verb,
                x - 4,
                y1 - y0,
                format_time(e.at_ms),
                e.verb,
                esc(&e.reason)
            );
        }

        // The peak: a near miss says how close it came to the trip threshold.
        let peak = report
            .peaks
            .iter()
            .find(|p| p.vip == panel.vip && p.signal == panel.signal);
        // (A condition that never tripped: its peak is one of the near misses when it rose enough.)
        let peak = peak.filter(|p| p.tripped || misses.is_empty());
        if let Some((peak, (v, at, _))) = peak.and_then(|p| Some((p, p.peak?))) {
            let y = axis.scale(v);
            if let Some(label) = peak_label(peak, axis, with_date, y > ymax) {
                let right_half = (at - t0) * 2 > (t1 - t0);
                let (h, dx) = if right_half {
                    (HPos::Right, -8)
                } else {
                    (HPos::Left, 8)
                };
                let (v, dy) = if y > ymax * 0.8 {
                    (VPos::Top, 6)
                } else {
                    (VPos::Bottom, -6)
                };
                chart
                    .plotting_area()
                    .draw(
                        &(EmptyElement::at((at, y.min(ymax)))
                            + Circle::new((0, 0), 5, INK.stroke_width(2))
                            + Text::new(
                                label,
                                (dx, dy),
                                ("sans-serif", 15)
                                    .into_font()
                                    .color(&INK)
                                    .pos(Pos::new(h, v)),
                            )),
                    )
                    .map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    // Drop plotters' own <svg> wrapper: the panel goes into a <g> of the whole picture.
    let body = buf
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .trim_end()
        .trim_end_matches("</svg>");
    Ok(format!("{body}{overlays}"))
}

/// The standalone SVG document: as wide as the page it is in, any number of panels.
pub fn svg(report: &ReplayReport) -> String {
    let mut grouped: BTreeMap<(&str, &str), Vec<&SeriesPoint>> = BTreeMap::new();
    for p in &report.series {
        grouped
            .entry((p.vip.as_str(), p.signal.as_str()))
            .or_default()
            .push(p);
    }
    let panels: Vec<Panel> = grouped
        .into_iter()
        .map(|((vip, signal), points)| Panel {
            vip,
            signal,
            points,
        })
        .collect();
    let (t0, t1) = match (report.series.first(), report.series.last()) {
        (Some(a), Some(b)) => (a.at_ms, b.at_ms.max(a.at_ms + 1)),
        _ => (0, 1),
    };
    let with_date = t1 - t0 > 86_400_000;
    let height = HEAD_H + panels.len().max(1) as u32 * PANEL_H + FOOT_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {WIDTH} {height}" style="height:auto" font-family="sans-serif">"#
    );
    let title = format!(
        "vipwarden replay of signal {}: {} to {}",
        report.signal,
        format_time(t0),
        format_time(t1)
    );
    let _ = writeln!(
        out,
        r#"<title>{0}</title><rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/><text x="12" y="24" font-size="18" font-weight="bold">{0}</text>"#,
        esc(&title)
    );
    if panels.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="12" y="{}" font-size="15">no condition values in this log</text>"#,
            HEAD_H + 20
        );
    }
    for (i, panel) in panels.iter().enumerate() {
        let y = HEAD_H + i as u32 * PANEL_H;
        let _ = writeln!(
            out,
            r#"<g class="panel" data-vip="{}" data-signal="{}" transform="translate(0,{y})">"#,
            esc(panel.vip),
            esc(panel.signal)
        );
        match panel_svg(report, panel, (t0, t1), with_date) {
            Ok(body) => out.push_str(&body),
            Err(e) => {
                let _ = writeln!(
                    out,
                    r#"<text x="12" y="40" font-size="15">cannot draw {} — {}: {}</text>"#,
                    esc(panel.vip),
                    esc(panel.signal),
                    esc(&e)
                );
            }
        }
        out.push_str("</g>\n");
    }
    let ly = height - 10;
    let hex = |c: RGBColor| format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2);
    let _ = writeln!(
        out,
        r#"<text x="12" y="{ly}" font-size="15"><tspan fill="{}">— value</tspan>   <tspan fill="{}">- - trip above</tspan>   <tspan fill="{}">- - restore below</tspan>   <tspan fill="{}">▮ withdrawn / maintenance, | withdrew</tspan>   <tspan fill="{}">| restored</tspan>   <tspan fill="{}">▮ draining</tspan>   <tspan fill="{}">| weight change</tspan>   <tspan fill="{}">○ peak / near miss</tspan></text>"#,
        hex(VALUE),
        hex(TRIP),
        hex(RESTORE),
        hex(OUT),
        hex(RESTORE),
        hex(DRAINING),
        hex(WEIGHT),
        hex(INK)
    );
    out.push_str("</svg>\n");
    out
}

/// The SVG in a minimal HTML page, with the decisions listed under it.
pub fn html(report: &ReplayReport) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vipwarden replay</title>\n\
         <style>body{font-family:sans-serif;margin:1em}svg{display:block;width:100%;height:auto}li{font-family:monospace}</style></head><body>\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole minute of log time.
    const T0: i64 = 1_795_000_020_000;

    fn point(
        at_s: i64,
        signal: &str,
        unit: &'static str,
        value: f64,
        (trip, restore): (f64, f64),
        route: &str,
    ) -> SeriesPoint {
        SeriesPoint {
            at_ms: T0 + at_s * 1000,
            vip: "web".into(),
            signal: signal.into(),
            value: Some(value),
            unit,
            trip_above: Some(trip),
            restore_below: Some(restore),
            route: route.into(),
        }
    }

    /// Ten minutes of a latency p95 (microseconds) that trips 500 ms, an error ratio that comes
    /// close to 6% but never trips, and a rate; one withdrawal, one restore, one weight change.
    fn synthetic() -> ReplayReport {
        let mut series = Vec::new();
        for s in 0..600 {
            let bad = (200..320).contains(&s);
            let route = if (230..350).contains(&s) {
                "withdrawn"
            } else {
                "announced"
            };
            let lat = if bad { 5_000_000.0 } else { 80_000.0 };
            series.push(point(
                s,
                "web_log.latency_p95",
                "us",
                lat,
                (500_000.0, 200_000.0),
                route,
            ));
            let ratio = if s == 400 { 0.051 } else { 0.004 };
            series.push(point(
                s,
                "web_log.error_ratio",
                "ratio",
                ratio,
                (0.06, 0.01),
                route,
            ));
            series.push(point(
                s,
                "web_log.request_rate",
                "per_s",
                20.0 + (s % 7) as f64,
                (100.0, 50.0),
                route,
            ));
        }
        let ev =
            |at_s: i64, verb: &'static str, announce: bool, weight: Option<u64>, reason: &str| {
                ReplayEvent {
                    at_ms: T0 + at_s * 1000,
                    vip: "web".into(),
                    announce,
                    verb,
                    reason: reason.into(),
                    weight,
                }
            };
        let peak =
            |signal: &str, v: f64, at_s: i64, trip: f64, tripped: bool, unit| ConditionPeak {
                vip: "web".into(),
                signal: signal.into(),
                peak: Some((v, T0 + at_s * 1000, Some(trip))),
                tripped,
                unit,
            };
        use crate::engine::Unit;
        ReplayReport {
            signal: "web_log".into(),
            summary: Default::default(),
            events: vec![
                ev(
                    230,
                    "withdrew",
                    false,
                    None,
                    "web_log.latency_p95 5000ms above 500ms for 30s",
                ),
                ev(
                    350,
                    "restored",
                    true,
                    None,
                    "web_log.latency_p95 80ms below 200ms for 30s",
                ),
                ev(
                    500,
                    "weight",
                    true,
                    Some(62_500_000),
                    "weight 1 Gbit/s -> 500 Mbit/s",
                ),
            ],
            unreplayed: vec![],
            warnings: vec![],
            peaks: vec![
                peak(
                    "web_log.latency_p95",
                    5_000_000.0,
                    200,
                    500_000.0,
                    true,
                    Unit::Latency,
                ),
                peak("web_log.error_ratio", 0.051, 400, 0.06, false, Unit::Ratio),
            ],
            series,
        }
    }

    #[test]
    fn axes_have_units_and_readable_time_ticks() {
        let svg = svg(&synthetic());
        let _ = std::fs::write("/tmp/plot-synth.svg", &svg);
        for part in [
            "latency_p95 (ms)",
            "error_ratio (%)",
            "request_rate (req/s)",
            "log time (UTC, HH:MM:SS)",
        ] {
            assert!(svg.contains(part), "no {part} in\n{svg}");
        }
        // Ten minutes: a tick each minute, on the minute, as wall-clock time.
        let first = clock(T0, false);
        assert!(first.ends_with(":00") && first.len() == 8, "{first}");
        assert!(svg.contains(&format!("\n{first}\n")), "no tick {first}");
        assert_eq!(time_ticks(T0, T0 + 600_000).len(), 11);
        assert!(time_ticks(T0, T0 + 600_000).iter().all(|t| t % 60_000 == 0));
        // Half an hour: every 5 minutes, on the 5 minutes.
        let half_hour = time_ticks(T0 + 1, T0 + 1_800_000);
        assert_eq!(half_hour.len(), 6, "{half_hour:?}");
        assert!(half_hour.iter().all(|t| t % 300_000 == 0));
        for tick in ["\n4%\n", "\n500 ms\n", "\n40 req/s\n"] {
            assert!(svg.contains(tick), "no y tick {tick:?}");
        }
    }

    #[test]
    fn thresholds_are_labelled_with_their_values() {
        let svg = svg(&synthetic());
        for part in [
            "trip above 500 ms",
            "restore below 200 ms",
            "trip above 6%",
            "restore below 1%",
            "trip above 100 req/s",
            "restore below 50 req/s",
        ] {
            assert!(svg.contains(part), "no {part} in\n{svg}");
        }
    }

    #[test]
    fn decisions_weights_and_near_misses_are_marked() {
        let svg = svg(&synthetic());
        let at = |s: i64| clock(T0 + s * 1000, false);
        for part in [
            format!("withdrew {}", at(230)),
            format!("restored {}", at(350)),
            format!("weight 500 Mbit/s {}", at(500)),
            format!("near miss: 5.1% at {}, 85% of trip 6%", at(400)),
            format!(
                "peak 5000 ms at {}, off scale: tripped (above 500 ms)",
                at(200)
            ),
        ] {
            assert!(svg.contains(&part), "no {part} in\n{svg}");
        }
        // Each of the 3 panels has the VIP's 3 decisions, with their reasons on hover.
        assert_eq!(svg.matches("class=\"decision\"").count(), 9);
        assert!(svg.contains("withdrew: web_log.latency_p95 5000ms above 500ms"));
        assert_eq!(svg.matches("class=\"panel\"").count(), 3);
        assert!(svg.starts_with(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 1200 "
        ));
        assert!(
            !svg.contains("<script") && !svg.contains("href="),
            "self-contained"
        );
    }

    #[test]
    fn small_thresholds_are_not_squashed_by_big_values() {
        // Latency peaks at 5000 ms against a 500 ms trip: the range stops at 4x the threshold.
        assert_eq!(y_top(5000.0, 500.0), 2200.0);
        // Data under the thresholds: the range still shows them.
        assert_eq!(y_top(1.0, 6.0), 6.0 * 1.25 * 1.1);
        assert_eq!(y_top(0.0, 0.0), 1.0);
        assert_eq!(y_top(30.0, 0.0), 33.0);
    }

    #[test]
    fn gaps_split_lines_and_thresholds_label_each_value() {
        let pts = [(1, Some(2.0)), (3, Some(4.0)), (4, None), (5, Some(6.0))];
        assert_eq!(
            runs(pts.into_iter()),
            vec![vec![(1, 2.0), (3, 4.0)], vec![(5, 6.0)]]
        );
        let mut a = point(0, "s", "ratio", 0.1, (0.2, 0.05), "announced");
        let b = SeriesPoint {
            at_ms: a.at_ms + 1000,
            ..a.clone()
        };
        let c = SeriesPoint {
            at_ms: a.at_ms + 2000,
            trip_above: Some(0.3),
            ..a.clone()
        };
        let runs = threshold_runs(&[&a, &b, &c], |p| p.trip_above);
        assert_eq!(runs, vec![(a.at_ms, b.at_ms, 0.2), (c.at_ms, c.at_ms, 0.3)]);
        a.trip_above = None;
        assert!(threshold_runs(&[&a], |p| p.trip_above).is_empty());
    }

    #[test]
    fn near_misses_are_rises_that_did_not_trip() {
        let at = |s: i64, v: f64| SeriesPoint {
            value: Some(v),
            ..point(s, "s", "ratio", 0.0, (0.05, 0.01), "announced")
        };
        // A rise to 4% (near miss), one that trips, one to 2% (under 60% of the trip: noise).
        let vals = [0.0, 0.03, 0.04, 0.02, 0.0, 0.03, 0.08, 0.03, 0.0, 0.02, 0.0];
        let pts: Vec<SeriesPoint> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| at(i as i64, *v))
            .collect();
        let refs: Vec<&SeriesPoint> = pts.iter().collect();
        assert_eq!(near_misses(&refs), vec![(T0 + 2000, 0.04, 0.05)]);
        // The label in the picture.
        let mut report = synthetic();
        report.series = pts;
        report.peaks.clear();
        report.events.clear();
        let svg = svg(&report);
        assert!(svg.contains("near miss: 4% at "), "{svg}");
        assert!(svg.contains("80% of trip 5%"), "{svg}");
    }

    /// No panic and still a picture on odd input: one point, no points, values that are not finite.
    #[test]
    fn odd_reports_still_draw() {
        let mut report = synthetic();
        report.series.truncate(1);
        assert!(svg(&report).contains("class=\"panel\""));
        report.series[0].value = Some(f64::INFINITY);
        report.series[0].trip_above = Some(f64::NAN);
        assert!(svg(&report).ends_with("</svg>\n"));
        report.series.clear();
        let s = svg(&report);
        assert!(s.contains("no condition values in this log"), "{s}");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
