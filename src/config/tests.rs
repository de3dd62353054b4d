use super::*;
use std::path::Path;

const GOOD: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers:
  - name: tor1
    address: 198.51.100.1
    remote_as: 65000
    next_hop_v6: 2001:db8:1::2
checks:
  - name: web
    type: tcp
    target: 203.0.113.10:80
    interval: 1s
    timeout: 500ms
vips:
  - name: web
    prefixes: [203.0.113.10/32, 2001:db8:10::10/128]
    checks: [web]
"#;

fn errs(text: &str) -> Vec<String> {
    match parse(Path::new("vw.yaml"), text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn one_err(text: &str) -> String {
    let e = errs(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn good_config_loads_with_defaults() {
    let c = parse(Path::new("vw.yaml"), GOOD).unwrap();
    assert_eq!(c.local_as, 65101);
    assert_eq!(c.peers[0].spec.port, 179);
    assert_eq!(c.peers[0].spec.hold_time, std::time::Duration::from_secs(9));
    assert_eq!(c.checks[0].rise, 2);
    assert_eq!(c.checks[0].fall, 2);
    assert_eq!(c.vips[0].spec.policy.require, crate::engine::Require::All);
    assert_eq!(&c.vips[0].spec.checks[..], &[0]);
    assert!(summary(&c).contains("203.0.113.10/32, 2001:db8:10::10/128"));
}

#[test]
fn example_configs_are_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            if let Err(e) = load(&path) {
                panic!("{e}");
            }
        }
    }
}

#[test]
fn unknown_check_reference_points_at_the_line() {
    let text = GOOD.replace("checks: [web]", "checks: [web_tcp]");
    assert_eq!(
        one_err(&text),
        "vw.yaml:17:14: vips[0].checks names unknown check \"web_tcp\" (known: web)"
    );
}

#[test]
fn unknown_key_is_an_error_with_its_name_and_line() {
    let text = GOOD.replace("    interval: 1s", "    intervall: 1s");
    let e = one_err(&text);
    assert!(e.starts_with("vw.yaml:12:"), "{e}");
    assert!(e.contains("unknown field `intervall`"), "{e}");
}

#[test]
fn yaml_syntax_error_has_position() {
    let e = one_err("router_id: [1\n");
    assert!(e.starts_with("vw.yaml:"), "{e}");
    assert!(e.split(':').nth(1).unwrap().parse::<usize>().is_ok(), "{e}");
}

#[test]
fn timeout_must_be_below_interval() {
    let e = one_err(&GOOD.replace("timeout: 500ms", "timeout: 1s"));
    assert!(
        e.starts_with("vw.yaml:13:14: checks[0].timeout 1s must be shorter than interval 1s"),
        "{e}"
    );
}

#[test]
fn rise_and_fall_of_zero_are_rejected() {
    let text = GOOD.replace(
        "    timeout: 500ms\n",
        "    timeout: 500ms\n    rise: 0\n    fall: 0\n",
    );
    let e = errs(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("checks[0].rise must be at least 1"));
    assert!(e[1].contains("checks[0].fall must be at least 1"));
}

#[test]
fn host_bits_are_rejected_with_a_suggestion() {
    let e = one_err(&GOOD.replace("203.0.113.10/32, ", "203.0.113.10/24, "));
    assert!(
        e.contains("vips[0].prefixes[0]") && e.contains("did you mean 203.0.113.0/24"),
        "{e}"
    );
    assert!(e.starts_with("vw.yaml:16:16:"), "{e}");
}

#[test]
fn duplicate_names_are_rejected() {
    let text = GOOD.replace(
        "vips:\n",
        "  - name: web\n    type: tcp\n    target: 203.0.113.10:81\nvips:\n",
    );
    let e = one_err(&text);
    assert!(
        e.contains("checks[1].name \"web\" is already used by checks[0]"),
        "{e}"
    );
}

#[test]
fn prefix_in_two_vips_is_rejected() {
    let text =
        format!("{GOOD}  - name: web2\n    prefixes: [203.0.113.10/32]\n    checks: [web]\n");
    let e = one_err(&text);
    assert!(e.starts_with("vw.yaml:19:"), "{e}");
    assert!(
        e.contains("already announced by vips[0].prefixes[0]"),
        "{e}"
    );
}

#[test]
fn ipv6_prefix_needs_a_formable_next_hop() {
    let e = one_err(&GOOD.replace("    next_hop_v6: 2001:db8:1::2\n", ""));
    assert!(e.contains("set next_hop_v6"), "{e}");
}

#[test]
fn router_id_must_be_ipv4() {
    let e = one_err(&GOOD.replace("router_id: 198.51.100.2", "router_id: 2001:db8::1"));
    assert!(
        e.starts_with("vw.yaml:1:12: router_id \"2001:db8::1\" is not an IPv4 address"),
        "{e}"
    );
}

#[test]
fn durations_need_units_and_hold_time_rules() {
    let e = one_err(&GOOD.replace("interval: 1s", "interval: 1"));
    assert!(e.contains("checks[0].interval 1 has no unit"), "{e}");
    let e = one_err(&GOOD.replace("remote_as: 65000", "remote_as: 65000\n    hold_time: 2s"));
    assert!(e.contains("hold_time must be 0"), "{e}");
}

#[test]
fn check_type_keys_are_checked() {
    let e = errs(&GOOD.replace("type: tcp", "type: http"));
    assert_eq!(
        e[0],
        "vw.yaml:11:13: checks[0].target is not used by type http"
    );
    assert!(e[1].contains("checks[0].url is required"), "{e:?}");
    let text = GOOD.replace(
        "    target: 203.0.113.10:80\n",
        "    target: 203.0.113.10:80\n    url: http://x/\n",
    );
    let e = one_err(&text);
    assert!(e.contains("checks[0].url is not used by type tcp"), "{e}");
    let e = one_err(&GOOD.replace("type: tcp", "type: icmp"));
    assert!(
        e.contains("\"icmp\" is unknown (known: tcp, http, https, exec, listener, process, unit)"),
        "{e}"
    );
}

#[test]
fn require_forms() {
    let c = parse(
        Path::new("x"),
        &format!("{GOOD}    require: {{at_least: 1}}\n"),
    )
    .unwrap();
    assert_eq!(
        c.vips[0].spec.policy.require,
        crate::engine::Require::AtLeast(1)
    );
    let c = parse(Path::new("x"), &format!("{GOOD}    require: any\n")).unwrap();
    assert_eq!(c.vips[0].spec.policy.require, crate::engine::Require::Any);
    let e = one_err(&format!("{GOOD}    require: {{at_least: 2}}\n"));
    assert!(
        e.contains("at_least 2 must be between 1 and the number of checks (1)"),
        "{e}"
    );
    let e = one_err(&format!("{GOOD}    require: most\n"));
    assert!(e.contains("must be all, any or {at_least: N}"), "{e}");
}

#[test]
fn asn_rules() {
    let e = one_err(&GOOD.replace("local_as: 65101", "local_as: 4294967296"));
    assert!(e.contains("larger than 4294967295"), "{e}");
    let e = one_err(&GOOD.replace("local_as: 65101", "local_as: 23456"));
    assert!(e.contains("AS_TRANS"), "{e}");
    let c = parse(
        Path::new("x"),
        &GOOD.replace("local_as: 65101", "local_as: 4200000000"),
    )
    .unwrap();
    assert_eq!(c.local_as, 4_200_000_000);
}

#[test]
fn communities_are_validated() {
    let text = format!(
        "{GOOD}    communities: [\"65101:100\", \"70000:1\"]\n    large_communities: [\"1:2\"]\n"
    );
    let e = errs(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("communities[1]") && e[0].contains("70000:1"));
    assert!(e[1].contains("large_communities[0]"));
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = GOOD
        .replace("router_id: 198.51.100.2", "router_id: nope")
        .replace("checks: [web]", "checks: [nope]")
        .replace("timeout: 500ms", "timeout: 2s");
    assert_eq!(errs(&text).len(), 3);
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "\0",
        "- a\n- b",
        "peers: 5",
        "vips: [[[[",
        "router_id: {a: b}",
        ":::",
        "peers:\n  - {}\n",
    ] {
        let _ = parse(Path::new("x"), text);
    }
}

const PASSIVE: &str = r#"router_id: 198.51.100.2
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
    withdraw_when:
      - signal: web_log.error_ratio
        above: 5%
        for: 10s
        restore_below: 0.01
      - signal: web_log.latency_p99
        above: 1500ms
        for: 20s
"#;

#[test]
fn passive_policy_parses_with_defaults() {
    use crate::engine::{OnMissing, Threshold};
    let c = parse(Path::new("p.yaml"), PASSIVE).unwrap();
    let v = &c.vips[0];
    assert_eq!(v.spec.policy.withdraw_when.len(), 2);
    let er = &v.spec.policy.withdraw_when[0];
    assert_eq!(
        er.threshold,
        Threshold::Fixed {
            above: 0.05,
            restore_below: 0.01
        }
    );
    assert_eq!(
        er.min_requests,
        Some(20),
        "ratio conditions default to 20 requests"
    );
    assert_eq!(er.clear_after, er.trip_after, "restore_for defaults to for");
    let lat = &v.spec.policy.withdraw_when[1];
    assert_eq!(
        lat.threshold,
        Threshold::Fixed {
            above: 1_500_000.0,
            restore_below: 1_500_000.0
        }
    );
    assert_eq!(lat.min_requests, None);
    assert_eq!(v.spec.policy.hold_down, std::time::Duration::from_secs(30));
    assert_eq!(v.spec.policy.on_missing, OnMissing::Hold);
    match &c.signals[0].kind {
        SignalKind::AccessLog(a) => {
            assert!(matches!(a.format, crate::signals::LogFormat::Nginx));
            assert!(a.errors.contains(500) && a.errors.contains(599) && !a.errors.contains(499));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn passive_policy_errors_are_located_and_specific() {
    let e = one_err(&PASSIVE.replace("signal: web_log.error_ratio", "signal: weblog.error_ratio"));
    assert_eq!(e, "vw.yaml:17:17: vips[0].withdraw_when[0].signal names unknown signal \"weblog\" (known: web_log)");
    let e = one_err(&PASSIVE.replace("web_log.latency_p99", "web_log.latency_p999"));
    assert!(
        e.contains("has no value \"latency_p999\" (known: request_rate, error_ratio"),
        "{e}"
    );
    let e = one_err(&PASSIVE.replace("above: 1500ms", "above: 1500"));
    assert!(
        e.contains("withdraw_when[1].above 1500 needs a unit for a latency"),
        "{e}"
    );
    let e = one_err(&PASSIVE.replace("restore_below: 0.01", "restore_below: 0.1"));
    assert!(e.contains("restore_below must not be above"), "{e}");
    let e = one_err(&PASSIVE.replace(
        "        for: 20s\n",
        "        for: 20s\n        min_requests: 5\n",
    ));
    assert!(e.contains("min_requests only applies"), "{e}");
    let e = one_err(&PASSIVE.replace("    window: 30s\n", "    window: 30s\n    format: apache\n"));
    assert!(e.contains("format \"apache\" is unknown"), "{e}");
    let e = one_err(&PASSIVE.replace(
        "    window: 30s\n",
        "    window: 30s\n    errors: [5xx, 4271]\n",
    ));
    assert!(e.contains("\"4271\" is not a status"), "{e}");
    let e = one_err(&PASSIVE.replace("    window: 30s\n", "    window: 30s\n    ports: [80]\n"));
    assert!(
        e.contains("signals[0].ports is not used by type access_log"),
        "{e}"
    );
}

#[test]
fn status_sets_and_baselines() {
    use crate::engine::Threshold;
    let text = PASSIVE
        .replace(
            "    window: 30s\n",
            "    window: 30s\n    errors: [5xx, 429, 400-404]\n",
        )
        .replace(
            "        above: 1500ms\n",
            "        above_baseline: 3x\n        baseline: 10m\n",
        );
    let c = parse(Path::new("p.yaml"), &text).unwrap();
    let SignalKind::AccessLog(a) = &c.signals[0].kind else {
        panic!()
    };
    for (status, is_error) in [
        (500, true),
        (599, true),
        (429, true),
        (400, true),
        (404, true),
        (405, false),
        (428, false),
        (200, false),
    ] {
        assert_eq!(a.errors.contains(status), is_error, "{status}");
    }
    match &c.vips[0].spec.policy.withdraw_when[1].threshold {
        Threshold::Baseline(b) => {
            assert_eq!(b.above_factor, 3.0);
            assert_eq!(b.restore_factor, 2.0);
            assert_eq!(b.span, std::time::Duration::from_secs(600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn prometheus_values_parse_selectors_at_load_time() {
    let prom = "  - name: envoy\n    type: prometheus\n    url: http://127.0.0.1:9901/stats/prometheus\n    values:\n      error_ratio: {ratio: ['envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\"}', envoy_cluster_upstream_rq_total]}\n      p99: {quantile: 0.99, histogram: envoy_cluster_upstream_rq_time}\n";
    let text = PASSIVE
        .replace("vips:\n", &format!("{prom}vips:\n"))
        .replace(
            "      - signal: web_log.latency_p99\n        above: 1500ms\n",
            "      - signal: envoy.error_ratio\n        above: 0.05\n",
        );
    let c = parse(Path::new("p.yaml"), &text).unwrap();
    assert_eq!(
        c.vips[0].spec.policy.withdraw_when[1].min_requests,
        Some(20)
    );
    let e = one_err(&text.replace("rq_xx{envoy", "rq_xx{{envoy"));
    assert!(
        e.starts_with("vw.yaml:16:20: signals[1].values.error_ratio: selector"),
        "{e}"
    );
}

#[test]
fn operations_keys() {
    let c = parse(Path::new("x"), GOOD).unwrap();
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:9180");
    assert_eq!(c.state_dir, std::path::PathBuf::from("/var/lib/vipwarden"));
    let e = one_err(&format!("{GOOD}api: {{listen: '0.0.0.0:9180'}}\n"));
    assert!(
        e.contains("not a loopback address: set api.token_file"),
        "{e}"
    );
    // Off loopback: TLS is required, and reads need the token by default.
    let e = one_err(&format!(
        "{GOOD}api: {{listen: '0.0.0.0:9180', token_file: /etc/vipwarden/token}}\n"
    ));
    assert!(e.contains("set api.tls {cert_file, key_file}"), "{e}");
    let c = parse(
        Path::new("x"),
        &format!("{GOOD}api: {{listen: '0.0.0.0:9180', token_file: /etc/vipwarden/token, tls: {{cert_file: /etc/vipwarden/api.crt, key_file: /etc/vipwarden/api.key}}}}\n"),
    )
    .unwrap();
    assert!(c.api.read_token);
    assert_eq!(
        c.api.tls.unwrap().key_file,
        std::path::PathBuf::from("/etc/vipwarden/api.key")
    );
    assert!(!parse(Path::new("x"), GOOD).unwrap().api.read_token);
    let e = one_err(&format!("{GOOD}api: {{read_token: true}}\n"));
    assert!(e.contains("read_token: true needs api.token_file"), "{e}");
    let e = one_err(&format!(
        "{GOOD}api: {{token_file: /t, tls: {{cert_file: /c}}}}\n"
    ));
    assert!(e.contains("api.tls needs key_file"), "{e}");
    let e = one_err(&format!("{GOOD}disable_file: disable\n"));
    assert!(
        e.contains("disable_file \"disable\" must be an absolute path"),
        "{e}"
    );
    let e = one_err(&format!("{GOOD}on_change: []\n"));
    assert!(e.contains("on_change must name a program"), "{e}");
    let text = format!("{GOOD}    drain: graceful\n    drain_period: 10s\n    depreference: {{med: 1000, as_path_prepend: 2}}\n");
    let c = parse(Path::new("x"), &text).unwrap();
    let v = &c.vips[0];
    assert_eq!(
        v.spec.policy.lifecycle.drain,
        crate::engine::DrainStrategy::Graceful
    );
    assert_eq!(
        v.spec.policy.lifecycle.shutdown,
        crate::engine::DrainStrategy::Graceful,
        "shutdown follows drain"
    );
    assert_eq!(v.spec.policy.depreference.med, Some(1000));
    assert_eq!(
        v.spec.policy.lifecycle.drain_until_connections,
        Some(0),
        "connection-aware (all gone) by default"
    );
    let c = parse(
        Path::new("x"),
        &format!("{GOOD}    drain: graceful\n    drain_until_connections: 3\n    drain_min: 2s\n"),
    )
    .unwrap();
    let l = &c.vips[0].spec.policy.lifecycle;
    assert_eq!(l.drain_until_connections, Some(3));
    assert_eq!(l.drain_min, std::time::Duration::from_secs(2));
    let c = parse(
        Path::new("x"),
        &format!("{GOOD}    drain: graceful\n    drain_until_connections: off\n"),
    )
    .unwrap();
    assert_eq!(
        c.vips[0].spec.policy.lifecycle.drain_until_connections, None,
        "off: timed drain"
    );
    assert_eq!(
        c.vips[0].spec.policy.lifecycle.drain_idle, None,
        "off by default"
    );
    let c = parse(
        Path::new("x"),
        &format!("{GOOD}    drain: graceful\n    drain_idle: 3s\n"),
    )
    .unwrap();
    assert_eq!(
        c.vips[0].spec.policy.lifecycle.drain_idle,
        Some(std::time::Duration::from_secs(3))
    );
    let e = one_err(&format!("{GOOD}    drain_idle: 50ms\n"));
    assert!(
        e.contains("drain_idle must be at least 200ms (or off)"),
        "{e}"
    );
    let e = one_err(&format!("{GOOD}    drain_idle: 3\n"));
    assert!(e.contains("drain_idle 3 has no unit"), "{e}");
    for bad in ["-1", "lots", "1.5", "5000000000"] {
        let e = one_err(&format!("{GOOD}    drain_until_connections: {bad}\n"));
        assert!(
            e.contains(
                "drain_until_connections must be a number of connections (0: all gone) or off"
            ),
            "{bad}: {e}"
        );
    }
    let e = one_err(&format!("{GOOD}    drain_period: 5s\n    drain_min: 10s\n"));
    assert!(e.contains("drain_min is longer than drain_period"), "{e}");
    let e = one_err(&format!("{GOOD}    drain: slowly\n"));
    assert!(
        e.contains("drain \"slowly\" must be graceful or withdraw"),
        "{e}"
    );
}

#[test]
fn the_cli_finds_the_api_even_in_an_invalid_file() {
    let dir = std::env::temp_dir().join(format!("vw-api-section-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("vw.yaml");
    std::fs::write(
        &f,
        format!("{GOOD}api: {{listen: '127.0.0.1:9999', token_file: /etc/t}}\nno_such_key: 1\n"),
    )
    .unwrap();
    assert!(load(&f).is_err());
    let (api, note) = api_section(&f);
    assert_eq!((api.listen.port(), note), (9999, None));
    assert_eq!(api.token_file.as_deref(), Some(Path::new("/etc/t")));
    std::fs::write(&f, "[[[").unwrap();
    let (api, note) = api_section(&f);
    assert_eq!(api.listen.port(), 9180);
    assert!(note.unwrap().contains("not YAML"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn local_state_checks_parse_with_their_defaults() {
    let text = GOOD.replace(
        "checks:\n",
        "checks:
  - {name: lis, type: listener, address: 203.0.113.10, port: 80}
  - {name: any, type: listener, port: 443, fall: 1}
  - {name: star, type: listener, address: '*', port: 8080, interval: 20ms, fast_interval: 10ms, timeout: 5ms}
  - {name: proc, type: process, pid_file: /run/nginx.pid}
  - {name: unit, type: unit, unit: nginx.service}
",
    );
    let c = parse(Path::new("vw.yaml"), &text).unwrap();
    let ms = std::time::Duration::from_millis;
    assert_eq!(
        c.checks[0].kind,
        CheckKind::Listener {
            address: Some("203.0.113.10".parse().unwrap()),
            port: 80
        }
    );
    assert_eq!(
        (
            c.checks[0].interval,
            c.checks[0].fast_interval,
            c.checks[0].timeout
        ),
        (ms(50), ms(10), ms(25))
    );
    assert_eq!(
        c.checks[1].kind,
        CheckKind::Listener {
            address: None,
            port: 443
        }
    );
    assert_eq!(
        c.checks[2].kind,
        CheckKind::Listener {
            address: None,
            port: 8080
        }
    );
    assert_eq!(c.checks[2].interval, ms(20));
    assert_eq!(
        c.checks[3].kind,
        CheckKind::Process {
            pid_file: "/run/nginx.pid".into()
        }
    );
    assert_eq!(
        (c.checks[3].interval, c.checks[3].fast_interval),
        (ms(250), ms(50))
    );
    assert_eq!(
        c.checks[4].kind,
        CheckKind::Unit {
            unit: "nginx.service".into()
        }
    );
    // tcp keeps today's defaults; fast_interval is interval/5.
    assert_eq!(
        (
            c.checks[5].interval,
            c.checks[5].fast_interval,
            c.checks[5].timeout
        ),
        (ms(1000), ms(200), ms(500))
    );
    let s = summary(&c);
    assert!(
        s.contains("listener 203.0.113.10:80  every 50ms (fast 10ms)"),
        "{s}"
    );
    assert!(s.contains("listener *:443"), "{s}");
    assert!(s.contains("process /run/nginx.pid"), "{s}");
    assert!(s.contains("unit nginx.service"), "{s}");
}

#[test]
fn definitive_fall_is_on_for_fact_reporting_checks_and_refused_elsewhere() {
    let text = GOOD.replace(
        "checks:\n",
        "checks:
  - {name: lis, type: listener, port: 80}
  - {name: proc, type: process, pid_file: /run/nginx.pid, definitive_fall: false}
  - {name: unit, type: unit, unit: nginx.service, definitive_fall: true}
",
    );
    let c = parse(Path::new("vw.yaml"), &text).unwrap();
    let got: Vec<bool> = c.checks.iter().map(|ch| ch.definitive_fall).collect();
    // The GOOD config's own tcp check comes last: a probe's failure is never definitive.
    assert_eq!(got[..3], [true, false, true]);
    assert!(!got[3]);
    let with = |check: &str| GOOD.replace("checks:\n", &format!("checks:\n  - {check}\n"));
    let e = one_err(&with(
        "{name: t, type: tcp, target: '203.0.113.10:80', definitive_fall: true}",
    ));
    assert!(
        e.contains("checks[0].definitive_fall is not used by type tcp"),
        "{e}"
    );
}

#[test]
fn local_state_check_errors() {
    let with = |check: &str| GOOD.replace("checks:\n", &format!("checks:\n  - {check}\n"));
    let e = one_err(&with("{name: l, type: listener, address: 203.0.113.10}"));
    assert!(e.contains("checks[0].port is required"), "{e}");
    let e = one_err(&with(
        "{name: l, type: listener, address: nowhere, port: 80}",
    ));
    assert!(
        e.contains("checks[0].address \"nowhere\" is not an IP address"),
        "{e}"
    );
    let e = one_err(&with("{name: l, type: listener, port: 0}"));
    assert!(e.contains("port must be 1-65535"), "{e}");
    let e = one_err(&with("{name: l, type: listener, port: 80, interval: 5ms}"));
    assert!(
        e.contains("interval 5ms is below the 10ms minimum for type listener"),
        "{e}"
    );
    let e = one_err(&with(
        "{name: l, type: tcp, target: '203.0.113.10:80', interval: 50ms, timeout: 20ms}",
    ));
    assert!(e.contains("below the 100ms minimum for type tcp"), "{e}");
    let e = one_err(&with(
        "{name: l, type: listener, port: 80, target: '203.0.113.10:80'}",
    ));
    assert!(
        e.contains("checks[0].target is not used by type listener"),
        "{e}"
    );
    let e = one_err(&with("{name: p, type: process, pid_file: run/nginx.pid}"));
    assert!(e.contains("must be an absolute path"), "{e}");
    let e = one_err(&with("{name: p, type: process}"));
    assert!(e.contains("checks[0].pid_file is required"), "{e}");
    let e = one_err(&with("{name: u, type: unit, unit: 'nginx service'}"));
    assert!(e.contains("is not a systemd unit name"), "{e}");
    let e = one_err(&with(
        "{name: t, type: tcp, target: '203.0.113.10:80', fast_interval: 2s}",
    ));
    assert!(
        e.contains("fast_interval 2s must be between 10ms and interval 1s"),
        "{e}"
    );
}

mod peer_auth {
    use super::*;
    use crate::bgp::transport::{self, Auth};
    use std::os::unix::fs::PermissionsExt;

    fn key_file(dir: &tempfile::TempDir, name: &str, body: &str, mode: u32) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    }

    /// GOOD with extra keys under peers[0] (line 8 is the first of them).
    fn with_peer_keys(extra: &str) -> String {
        GOOD.replace(
            "    next_hop_v6: 2001:db8:1::2\n",
            &format!("    next_hop_v6: 2001:db8:1::2\n{extra}"),
        )
    }

    #[test]
    fn password_file_loads_the_key_without_its_newline_and_never_prints_it() {
        let d = tempfile::tempdir().unwrap();
        let f = key_file(&d, "tor1.key", "Sw0rdf1sh-md5\n", 0o640);
        let text = with_peer_keys(&format!("    password_file: {f}\n    ttl_security: true\n"));
        let c = parse(Path::new("vw.yaml"), &text).unwrap();
        match &c.peers[0].spec.auth {
            Auth::Md5(k) => assert_eq!(k.expose(), b"Sw0rdf1sh-md5"),
            other => panic!("{other:?}"),
        }
        assert!(c.peers[0].spec.ttl_security);
        let shown = format!("{c:?}\n{}", summary(&c));
        assert!(!shown.contains("Sw0rdf1sh"), "{shown}");
        assert!(
            summary(&c).contains("tcp-md5 ttl-security"),
            "{}",
            summary(&c)
        );
    }

    #[test]
    fn missing_world_readable_or_relative_password_file_is_an_error_at_its_line() {
        let d = tempfile::tempdir().unwrap();
        let open = key_file(&d, "open.key", "secret\n", 0o644);
        let e = one_err(&with_peer_keys(&format!("    password_file: {open}\n")));
        assert!(e.starts_with("vw.yaml:8:"), "{e}");
        assert!(
            e.contains("world-readable")
                && e.contains("(mode 0644, owner uid")
                && e.contains("chmod o-rwx"),
            "{e}"
        );
        assert!(e.contains(crate::config::secret_file::RULE), "{e}");
        assert!(!e.contains("secret\n"));
        // Group-writable is refused too (it used to pass: one rule for every secret file).
        let gw = key_file(&d, "gw.key", "secret\n", 0o660);
        let e = one_err(&with_peer_keys(&format!("    password_file: {gw}\n")));
        assert!(
            e.contains("group-writable") && e.contains("(mode 0660"),
            "{e}"
        );

        let missing = d.path().join("nope.key").display().to_string();
        let e = one_err(&with_peer_keys(&format!("    password_file: {missing}\n")));
        assert!(
            e.starts_with("vw.yaml:8:") && e.contains("cannot open"),
            "{e}"
        );

        let e = one_err(&with_peer_keys("    password_file: tor1.key\n"));
        assert!(
            e.starts_with("vw.yaml:8:") && e.contains("absolute path"),
            "{e}"
        );

        let long = key_file(&d, "long.key", &"x".repeat(81), 0o600);
        let e = one_err(&with_peer_keys(&format!("    password_file: {long}\n")));
        assert!(e.contains("81 bytes; the kernel takes 1-80"), "{e}");
    }

    /// What SIGHUP runs (`config::load` on the new file): a key file made world-readable after
    /// a good load makes the next load fail, naming the file, its mode and the rule, so the
    /// daemon keeps the running config (`finish_reload` applies only an `Ok`).
    #[test]
    fn a_key_file_turned_unsafe_fails_the_reload_with_the_same_words_as_check_config() {
        let d = tempfile::tempdir().unwrap();
        let f = key_file(&d, "tor1.key", "Sw0rdf1sh\n", 0o600);
        let cfg = d.path().join("vw.yaml");
        std::fs::write(&cfg, with_peer_keys(&format!("    password_file: {f}\n"))).unwrap();
        assert!(crate::config::load(&cfg).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o604)).unwrap();
        let first = crate::config::load(&cfg).unwrap_err().to_string();
        assert!(
            first.contains(&format!("TCP-MD5 password file {f} (mode 0604")),
            "{first}"
        );
        assert!(first.contains(crate::config::secret_file::RULE), "{first}");
        // Same input, same words: check-config and the daemon call this same function.
        assert_eq!(crate::config::load(&cfg).unwrap_err().to_string(), first);
    }

    #[test]
    fn tcp_ao_is_refused_on_a_kernel_without_it_and_checked_otherwise() {
        let d = tempfile::tempdir().unwrap();
        let f = key_file(&d, "ao.key", "ao-secret\n", 0o600);
        let text = with_peer_keys(&format!(
            "    tcp_ao: {{key_file: {f}, send_id: 1, recv_id: 2, algorithm: hmac-sha-256}}\n"
        ));
        match transport::tcp_ao_supported() {
            Err(_) => {
                let e = one_err(&text);
                assert!(e.starts_with("vw.yaml:8:"), "{e}");
                assert!(e.contains("this kernel has no TCP-AO"), "{e}");
            }
            Ok(()) => {
                let c = parse(Path::new("vw.yaml"), &text).unwrap();
                assert!(
                    matches!(&c.peers[0].spec.auth, Auth::Ao(k) if k.send_id == 1 && k.recv_id == 2)
                );
            }
        }
        let e = errs(&with_peer_keys(&format!(
            "    tcp_ao: {{key_file: {f}, send_id: 300, algorithm: hmac-md5}}\n"
        )))
        .join("\n");
        assert!(e.contains("send_id 300 is out of range"), "{e}");
        assert!(e.contains("recv_id is required"), "{e}");
        assert!(e.contains("\"hmac-md5\" is not supported"), "{e}");
    }

    #[test]
    fn md5_and_ao_together_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = key_file(&d, "k", "k\n", 0o600);
        let e = errs(&with_peer_keys(&format!(
            "    password_file: {f}\n    tcp_ao: {{key_file: {f}, send_id: 1, recv_id: 1}}\n"
        )))
        .join("\n");
        assert!(
            e.contains("sets both password_file (TCP-MD5) and tcp_ao"),
            "{e}"
        );
    }
}

#[test]
fn local_pref_on_an_ebgp_only_node_and_a_missing_ca_file_are_errors() {
    // GOOD's peers are eBGP.
    let e = one_err(&format!("{GOOD}    local_pref: 200\n"));
    assert!(e.contains("local_pref 200: every peer is eBGP"), "{e}");
    let text = GOOD.replace("checks:\n", "checks:\n  - {name: tls, type: https, url: \"https://127.0.0.1/\", ca_file: /nonexistent/ca.pem}\n");
    if text != GOOD {
        let e = parse(Path::new("x"), &text).unwrap_err().to_string();
        assert!(
            e.contains("ca_file /nonexistent/ca.pem: cannot read it"),
            "{e}"
        );
    }
}

#[test]
fn a_semantic_error_does_not_hide_another() {
    // A bad target and `rise: 0` in the same file: both are reported, each with its line.
    let text = GOOD
        .replace("target: 203.0.113.10:80", "target: 203.0.113.10")
        .replace("    timeout: 500ms\n", "    timeout: 500ms\n    rise: 0\n");
    let e = errs(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e.iter().any(|e| e.contains("checks[0].target")), "{e:#?}");
    assert!(
        e.iter()
            .any(|e| e.contains("checks[0].rise must be at least 1")),
        "{e:#?}"
    );
}

#[test]
fn a_yaml_syntax_error_says_that_it_stops_parsing() {
    let e = one_err(&format!("{GOOD}  - name: [unclosed\n"));
    assert!(e.contains("this stops parsing"), "{e}");
    assert!(e.starts_with("vw.yaml:"), "{e}");
}

#[test]
fn depreference_local_pref_on_an_ebgp_only_node_is_an_error() {
    let e = one_err(&format!("{GOOD}    depreference: {{local_pref: 50}}\n"));
    assert!(
        e.contains("vips[0].depreference.local_pref 50: every peer is eBGP"),
        "{e}"
    );
    // With an iBGP peer it is sent, so it is fine.
    let ibgp = GOOD.replace("remote_as: 65000", "remote_as: 65101");
    let text = format!("{ibgp}    depreference: {{local_pref: 50}}\n");
    assert!(parse(Path::new("vw.yaml"), &text).is_ok());
}

/// Issue 22: a check no VIP lists is probed but decides nothing: a warning at its name.
#[test]
fn an_unused_check_is_a_warning_at_its_name() {
    let text = GOOD.replace(
        "vips:\n",
        "  - name: spare\n    type: tcp\n    target: 203.0.113.10:81\nvips:\n",
    );
    let c = parse(Path::new("vw.yaml"), &text).unwrap();
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("vw.yaml:14:11: checks[1] (spare) is not listed in any VIP's checks"),
        "{w:?}"
    );
    assert!(parse(Path::new("vw.yaml"), GOOD)
        .unwrap()
        .warnings
        .is_empty());
}

/// Issue 22: unknown keys, wrong types and semantic problems in one run, each at its place;
/// a dropped value is not also reported as missing.
#[test]
fn schema_and_semantic_problems_in_one_run() {
    let text = GOOD
        .replace("    interval: 1s", "    intervall: 1s")
        .replace("remote_as: 65000", "remote_as: many")
        .replace(
            "    timeout: 500ms\n",
            "    timeout: 500ms\n    rise: 0\n    port: x\n",
        )
        .replace("203.0.113.10/32,", "203.0.113.10/40,");
    let e = errs(&text);
    assert_eq!(e.len(), 5, "{e:#?}");
    for want in [
        "vw.yaml:6:16: peers[0].remote_as must be a whole number of 0 or more, not the string \"many\"",
        "vw.yaml:12:5: checks[0]: unknown field `intervall`",
        "vw.yaml:14:11: checks[0].rise must be at least 1",
        "vw.yaml:15:11: checks[0].port must be a whole number from 0 to 65535, not the string \"x\"",
        "vw.yaml:18:16: vips[0].prefixes[0]",
    ] {
        assert!(e.iter().any(|l| l.starts_with(want)), "{want} not in {e:#?}");
    }
    assert!(
        !e.iter().any(|l| l.contains("remote_as is required")),
        "{e:#?}"
    );
}

/// The direct path (a VIP at a time, `direct::parse`) and the full path (the whole YAML tree, one
/// problem per node) give the same result on every file the repository ships or documents, on anchors and
/// aliases, and on files with errors (those take the full path either way).
#[test]
fn direct_and_full_parse_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts: Vec<(String, String)> = vec![
        ("GOOD".into(), GOOD.into()),
        (
            "anchors".into(),
            GOOD.replace(
                "  - name: web\n    type: tcp",
                "  - &w\n    name: web\n    type: tcp",
            )
            .replace(
                "    checks: [web]",
                "    checks: [web]\n    description: *w",
            ),
        ),
        ("alias".into(), format!("{GOOD}fleet: &f {{}}\n")),
    ];
    // Edits of GOOD: errors (these take the full path either way), and plain scalars that YAML
    // resolves to numbers, booleans or null where a string is expected.
    const NAME: &str = "  - name: web\n    prefixes";
    let edits = [
        ("unknown key", "interval: 1s", "intervall: 1s"),
        ("wrong type", "local_as: 65101", "local_as: [1]"),
        ("syntax", "checks: [web]", "checks: [web"),
        ("number as name", NAME, "  - name: 123\n    prefixes"),
        ("bool as name", NAME, "  - name: true\n    prefixes"),
        ("null as name", NAME, "  - name: ~\n    prefixes"),
        ("number in a list", "checks: [web]", "checks: [web, 7]"),
        ("number as target", "target: 203.0.113.10:80", "target: 80"),
    ];
    for (name, from, to) in edits {
        assert!(GOOD.contains(from), "{name}: GOOD has no {from:?}");
        texts.push((name.into(), GOOD.replace(from, to)));
    }
    let mut files = vec![root.join("README.md")];
    for dir in ["config", "docs", "testbed", "testbed/tests"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        match f.extension().and_then(|e| e.to_str()) {
            Some("yaml") => texts.push((f.display().to_string(), text)),
            Some("md") => {
                for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
                    let body = block.split("```").next().unwrap_or("");
                    if body.contains("router_id") {
                        texts.push((format!("{} block {i}", f.display()), body.to_string()));
                    }
                }
            }
            // The lab's configs: heredoc bodies that are whole configs (shell variables are
            // left as they are: both paths see the same text).
            Some("sh") => {
                let mut body: Option<(String, String)> = None;
                for line in text.lines() {
                    if let Some((end, acc)) = body.as_mut() {
                        if line.trim() == end.as_str() {
                            let (_, acc) = body.take().unwrap();
                            if acc.starts_with("router_id:") {
                                texts.push((f.display().to_string(), acc));
                            }
                        } else {
                            acc.push_str(line);
                            acc.push('\n');
                        }
                    } else if let Some(i) = line.find("<<") {
                        let delim: String = line[i + 2..]
                            .trim_start_matches('-')
                            .trim()
                            .trim_matches(|c| c == '\'' || c == '"')
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !delim.is_empty() {
                            body = Some((delim, String::new()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // The direct path's cuts (see config/vip_split.rs): every shape must read as the full path
    // reads it; `true` where the direct path must take it rather than fall back.
    let head = GOOD.split("vips:\n").next().unwrap_or_default();
    let two = "vips:\n  - name: web\n    prefixes: [203.0.113.10/32]\n    checks: [web]\n  \
        - name: api\n    prefixes: [203.0.113.11/32]\n    checks: [web]\n";
    let checks_at = head.find("checks:").unwrap_or_default();
    let shapes: Vec<(&str, String, bool)> = vec![
        ("two VIPs", format!("{head}{two}"), true),
        (
            "comments between items",
            format!(
                "{head}vips: # the list\n  # web first\n\n  - name: web # here\n    \
                 prefixes: [203.0.113.10/32]\n# at the margin\n    checks: [web]\n\n  \
                 # then api\n  - name: api\n    prefixes: [203.0.113.11/32]\n  # last\n    \
                 checks: [web]\n"
            ),
            true,
        ),
        (
            "block scalars and a multi-line flow mapping",
            format!(
                "{head}vips:\n  - name: web\n    prefixes: [203.0.113.10/32]\n    \
                 on_change:\n      - /bin/sh\n      - -c\n      - |\n        echo web\n\n        \
                 echo - name: x\n    disable_file: >-\n      /run/vw/\n      web\n    \
                 depreference: {{med: 100,\n      as_path_prepend: 2}}\n    checks: [web]\n  \
                 - name: api\n    prefixes: [203.0.113.11/32]\n    checks: [web]\n"
            ),
            true,
        ),
        (
            "a nested block list",
            format!(
                "{head}vips:\n  - name: web\n    prefixes:\n      - 203.0.113.10/32\n      \
                 - 2001:db8:10::10/128\n    checks:\n    - web\n  - name: api\n    \
                 prefixes:\n    - 203.0.113.11/32\n    checks: [web]\n"
            ),
            true,
        ),
        (
            "vips: not last",
            format!("{}{two}{}", &head[..checks_at], &head[checks_at..]),
            true,
        ),
        ("vips: first", format!("{two}{head}"), true),
        (
            "dashes in the key's column",
            format!("{head}{}", two.replace("\n  ", "\n")),
            true,
        ),
        (
            "odd indentation",
            format!(
                "{head}{}",
                two.replace("\n    ", "\n         ")
                    .replace("\n  - ", "\n     -   ")
            ),
            true,
        ),
        ("CRLF", format!("{head}{two}").replace('\n', "\r\n"), true),
        (
            "not ASCII",
            format!(
                "# café\n{head}vips:\n  - name: web\n    on_change:\n      - |\n        \
                 échec → ok\n    disable_file: /run/vw/é\n    prefixes: [203.0.113.10/32]\n    \
                 checks: [web]\n  - name: api # ünïcode\n    prefixes: [203.0.113.11/32]\n    \
                 checks: [web]\n"
            ),
            true,
        ),
        (
            "a tab in a comment",
            format!(
                "{head}{}",
                two.replace("  - name: api", "\t# c\n  - name: api")
            ),
            false,
        ),
        (
            "a tab after the dash",
            format!("{head}{}", two.replace("- name: api", "-\tname: api")),
            false,
        ),
        (
            "a tab in a value",
            format!("{head}{}", two.replace("[web]\n  -", "[web]\t\n  -")),
            true,
        ),
        (
            "an error in the second VIP",
            format!(
                "{head}{}",
                two.replace("name: api", "name: api\n    colour: red")
            ),
            false,
        ),
        (
            "an anchor in checks, its alias in a VIP",
            format!(
                "{}{}",
                head.replace("- name: web", "- name: &w web"),
                two.replace("[web]", "[*w]")
            ),
            false,
        ),
        (
            "an anchor and alias within vips",
            format!(
                "{head}{}",
                two.replace("checks: [web]\n  -", "checks: &c [web]\n  -")
                    .replace("checks: [web]\n", "checks: *c\n")
            ),
            false,
        ),
        (
            "more VIPs than one document holds",
            (0..150).fold(format!("{head}vips:\n"), |acc, i| {
                format!(
                    "{acc}  # {i}\n  - name: v{i}\n    prefixes: [203.0.113.{i}/32]\n    \
                     checks: [web]\n"
                )
            }),
            true,
        ),
        ("a repeated vips:", format!("{head}{two}{two}"), false),
        (
            "a flow list",
            format!("{head}vips: [{{name: web, prefixes: [203.0.113.10/32], checks: [web]}}]\n"),
            false,
        ),
    ];
    for (name, text, direct) in &shapes {
        assert_eq!(
            direct::parse(text).is_some(),
            *direct,
            "{name}: direct path taken?\n{text}"
        );
    }
    texts.extend(
        shapes
            .into_iter()
            .map(|(name, text, _)| (name.to_string(), text)),
    );
    assert!(texts.len() >= 12, "found only {} texts", texts.len());
    let mut direct_ok = 0;
    for (name, text) in &texts {
        let file = Path::new("vw.yaml");
        let direct = format!("{:?}", parse_with(file, text, true));
        let full = format!("{:?}", parse_with(file, text, false));
        assert_eq!(direct, full, "{name}: the two paths differ");
        direct_ok += usize::from(direct::parse(text).is_some());
    }
    assert!(
        direct_ok >= 6,
        "only {direct_ok} of {} texts took the direct path",
        texts.len()
    );
}
