//! Validation of `vips[].weight` (RFC 10005 link bandwidth): capacity, slow start, floor and
//! `scale_when` conditions (the `withdraw_when` language plus a `scale`).

use std::time::Duration;

use serde_yaml::Value;

use super::problems::{duration, required, Problems};
use super::raw::RawWeight;
use super::signals::{condition, SignalTable};
use crate::engine::{ScaleSpec, WeightSpec};

/// `vips[i].weight`; None when it has a problem (each is added to `p`).
pub(super) fn weight(
    p: &mut Problems,
    path: &str,
    r: &RawWeight,
    signals: &SignalTable,
) -> Option<WeightSpec> {
    let cpath = format!("{path}.capacity");
    let capacity = required(p, &cpath, &r.capacity, "a bandwidth such as 10Gbps")
        .and_then(|v| bandwidth(p, &cpath, v));
    let slow_start = duration(
        p,
        &format!("{path}.slow_start"),
        r.slow_start.as_ref(),
        Duration::ZERO,
    );
    let spath = format!("{path}.step");
    let step = duration(p, &spath, r.step.as_ref(), Duration::from_secs(1));
    if step < Duration::from_millis(100) {
        p.add(
            spath.as_str(),
            format!("{spath} must be at least 100ms (one UPDATE per step per peer)"),
        );
    }
    let min = match &r.min {
        None => Some(0.1),
        Some(v) => share(p, &format!("{path}.min"), v),
    };
    let mut scale_when = Vec::new();
    let mut ok = true;
    for (i, c) in r.scale_when.iter().enumerate() {
        let cp = format!("{path}.scale_when[{i}]");
        let scale = match &c.scale {
            None => {
                p.add(
                    format!("{cp}.scale"),
                    format!("{cp}.scale is required (the multiplier while it holds, e.g. 50%)"),
                );
                None
            }
            Some(v) => share(p, &format!("{cp}.scale"), v),
        };
        match (condition(p, &cp, c, signals), scale) {
            (Some(condition), Some(scale)) => scale_when.push(ScaleSpec { condition, scale }),
            _ => ok = false,
        }
    }
    let spec = WeightSpec {
        capacity: capacity?,
        slow_start,
        step,
        min: min?,
        scale_when,
    };
    ok.then_some(spec)
}

/// A bandwidth in bit/s units (`10Gbps`, `300Mbps`, `2.5 Gbit/s`), returned in bytes per second.
fn bandwidth(p: &mut Problems, path: &str, v: &Value) -> Option<f64> {
    let bad = |p: &mut Problems, why: &str| {
        p.add(
            path,
            format!("{path} {why}; write a bandwidth such as 10Gbps or 300Mbps"),
        );
        None
    };
    let s = match v {
        Value::String(s) => s.trim(),
        Value::Number(n) => return bad(p, &format!("{n} has no unit")),
        _ => return bad(p, "is not a bandwidth"),
    };
    const UNITS: [(&str, f64); 10] = [
        ("Tbit/s", 1e12),
        ("Gbit/s", 1e9),
        ("Mbit/s", 1e6),
        ("kbit/s", 1e3),
        ("bit/s", 1.0),
        ("Tbps", 1e12),
        ("Gbps", 1e9),
        ("Mbps", 1e6),
        ("kbps", 1e3),
        ("bps", 1.0),
    ];
    let Some((num, mult)) = UNITS
        .iter()
        .find_map(|(u, m)| s.strip_suffix(u).map(|n| (n, *m)))
    else {
        return bad(
            p,
            &format!("\"{s}\" has no unit of bps, kbps, Mbps, Gbps or Tbps"),
        );
    };
    // Rust reads "nan" and "inf" too: refused below with a clear word.
    let Ok(n) = num.trim().parse::<f64>() else {
        return bad(p, &format!("\"{s}\" has no number"));
    };
    if n.is_nan() || n.is_infinite() {
        return bad(p, &format!("\"{s}\" is not a number"));
    }
    if n <= 0.0 {
        p.add(
            path,
            format!("{path} \"{s}\" must be above 0 (a capacity of 0 would take every share)"),
        );
        return None;
    }
    let bytes = n * mult / 8.0;
    if bytes < 1.0 {
        return bad(p, &format!("\"{s}\" is below 8bps (one byte per second)"));
    }
    // RFC 10005 carries an IEEE single-precision float.
    if bytes > f32::MAX as f64 {
        return bad(p, &format!("\"{s}\" is too large"));
    }
    Some(bytes)
}

/// A share of 0..=100%: `50%` or a fraction (0.5).
fn share(p: &mut Problems, path: &str, v: &Value) -> Option<f64> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().ends_with('%') => s
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .ok()
            .map(|x| x / 100.0),
        _ => None,
    };
    match f {
        Some(f) if f.is_nan() => {
            p.add(
                path,
                format!("{path} is not a number; write a share such as 50%"),
            );
            None
        }
        Some(f) if !(0.0..=1.0).contains(&f) => {
            p.add(
                path,
                format!(
                    "{path} {:.0}% is outside 0%..100% (a share of the capacity)",
                    f * 100.0
                ),
            );
            None
        }
        Some(f) => Some(f),
        None => {
            p.add(path, format!("{path} must be a share such as 50% (or 0.5)"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers:
  - {name: tor1, address: 198.51.100.1, remote_as: 65000}
checks:
  - {name: web, type: tcp, target: "203.0.113.10:80"}
signals:
  - name: web_log
    type: access_log
    path: /tmp/access.log
    window: 30s
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    weight:
      capacity: 10Gbps
      slow_start: 30s
      min: 20%
      scale_when:
        - signal: web_log.latency_p99
          above: 200ms
          restore_below: 150ms
          for: 5s
          scale: 50%
"#;

    fn one_err(text: &str) -> String {
        match parse(Path::new("vw.yaml"), text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => {
                assert_eq!(e.0.len(), 1, "{:#?}", e.0);
                e.0[0].to_string()
            }
        }
    }

    #[test]
    fn weight_parses_with_defaults() {
        let c = parse(Path::new("vw.yaml"), BASE).unwrap();
        let w = c.vips[0].spec.policy.weight.as_ref().unwrap();
        assert_eq!(w.capacity, 1.25e9, "10 Gbit/s in bytes per second");
        assert_eq!(w.slow_start, Duration::from_secs(30));
        assert_eq!(w.step, Duration::from_secs(1), "default step");
        assert_eq!(w.min, 0.2);
        assert_eq!(w.scale_when.len(), 1);
        assert_eq!(w.scale_when[0].scale, 0.5);
        assert_eq!(w.scale_when[0].condition.trip_after, Duration::from_secs(5));
        let c = parse(
            Path::new("vw.yaml"),
            &BASE
                .replace("      min: 20%\n", "")
                .replace("10Gbps", "2.5 Gbit/s"),
        )
        .unwrap();
        let w = c.vips[0].spec.policy.weight.as_ref().unwrap();
        assert_eq!((w.min, w.capacity), (0.1, 312_500_000.0));
    }

    #[test]
    fn bad_values_are_located_errors() {
        for (from, to, want) in [
            (
                "10Gbps",
                "0Gbps",
                "vw.yaml:17:17: vips[0].weight.capacity \"0Gbps\" must be above 0",
            ),
            (
                "10Gbps",
                "-1Gbps",
                "vips[0].weight.capacity \"-1Gbps\" must be above 0",
            ),
            (
                "10Gbps",
                "NaNGbps",
                "vips[0].weight.capacity \"NaNGbps\" is not a number",
            ),
            ("10Gbps", "10", "vips[0].weight.capacity 10 has no unit"),
            ("10Gbps", "10GB", "\"10GB\" has no unit of bps"),
            (
                "min: 20%",
                "min: 120%",
                "vw.yaml:19:12: vips[0].weight.min 120% is outside 0%..100%",
            ),
            (
                "scale: 50%",
                "scale: 150%",
                "vips[0].weight.scale_when[0].scale 150% is outside 0%..100%",
            ),
            (
                "scale: 50%",
                "scale: -10%",
                "vips[0].weight.scale_when[0].scale -10% is outside 0%..100%",
            ),
            (
                "scale: 50%",
                "scale: .nan",
                "vips[0].weight.scale_when[0].scale is not a number",
            ),
            (
                "scale: 50%",
                "scale: half",
                "scale must be a share such as 50%",
            ),
            (
                "slow_start: 30s",
                "slow_start: 30",
                "vips[0].weight.slow_start 30 has no unit",
            ),
            (
                "web_log.latency_p99",
                "web_log.latency_p98",
                "has no value \"latency_p98\"",
            ),
        ] {
            let text = BASE.replace(from, to);
            let e = one_err(&text);
            assert!(e.contains(want), "{to}: {e}");
        }
        let e = one_err(&BASE.replace("          scale: 50%\n", ""));
        assert!(e.contains("scale_when[0].scale is required"), "{e}");
        let e = one_err(&BASE.replace("      capacity: 10Gbps\n", ""));
        assert!(e.contains("vips[0].weight.capacity is required"), "{e}");
    }

    #[test]
    fn scale_in_withdraw_when_is_an_error() {
        let text = BASE.replace(
            "    weight:\n",
            "    withdraw_when:\n      - {signal: web_log.error_ratio, above: 5%, scale: 50%}\n    weight:\n",
        );
        let e = one_err(&text);
        assert!(
            e.contains("withdraw_when[0].scale: a scale goes with weight.scale_when"),
            "{e}"
        );
    }
}
