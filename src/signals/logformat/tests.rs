use super::*;

// 2026-11-22T13:45:01Z (`date -u -d 2026-11-22T13:45:01Z +%s`).
const T0: i64 = 1_795_355_101_000;

fn rec(status: u16, latency_us: Option<u64>, time_ms: Option<i64>) -> LogRecord {
    LogRecord {
        status,
        latency_us,
        time_ms,
    }
}

#[test]
fn nginx_request_time_and_upstream_times() {
    let f = LogFormat::Nginx;
    let base =
        r#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.88""#;
    let cases: &[(&str, Option<u64>)] = &[
        (" 0.003", Some(3_000)),
        (" 12.5", Some(12_500_000)),
        (" 0.002, 0.004", Some(6_000)),
        (" 0.100 : 0.200", Some(300_000)),
        (" -, 0.004", Some(4_000)),
        (" -", None),
        ("", None),
        (" 0.003\r", Some(3_000)),
    ];
    for (suffix, want) in cases {
        let line = format!("{base}{suffix}");
        assert_eq!(
            f.parse(line.as_bytes()),
            Ok(rec(200, *want, Some(T0))),
            "{line:?}"
        );
    }
}

#[test]
fn nginx_tolerates_spaces_quotes_and_ipv6() {
    let f = LogFormat::Nginx;
    let line = br#"::1 - alice [22/Nov/2026:13:45:01 +0000] "GET /a"b HTTP/1.1" 503 0 "http://x/ y" "Mozilla/5.0 (X11; Linux) "quoted"" 1.250"#;
    assert_eq!(f.parse(line), Ok(rec(503, Some(1_250_000), Some(T0))));
    // Request line nginx could not parse is logged as "-"; status still follows.
    let line = br#"10.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "-" 400 0 "-" "-" 0.000"#;
    assert_eq!(f.parse(line), Ok(rec(400, Some(0), Some(T0))));
}

#[test]
fn nginx_malformed_lines() {
    let f = LogFormat::Nginx;
    for bad in [
        "",
        "garbage",
        r#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 2000 612 "-" "c" 0.1"#,
        r#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 612 "-" "c" abc"#,
        r#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 612 "-" "c" 0.1.2"#,
        r#"127.0.0.1 - - [22/Xyz/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 612 "-" "c" 0.1"#,
        r#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1"#,
        r#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200"#,
    ] {
        assert!(f.parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

#[test]
fn envoy_default_format() {
    let f = LogFormat::Envoy;
    let line = br#"[2026-11-22T13:45:01.123Z] "GET /api?q=1 HTTP/1.1" 503 UF,URX 0 91 27 - "-" "curl/7.88" "9a2b" "svc.local" "10.0.0.1:80""#;
    assert_eq!(f.parse(line), Ok(rec(503, Some(27_000), Some(T0 + 123))));
    let line = br#"[2026-11-22T13:45:01.000Z] "POST / HTTP/2" 0 DC 10 0 - - "-" "-" "-" "h" "-""#;
    assert_eq!(f.parse(line), Ok(rec(0, None, Some(T0))));
    for bad in [
        &br#"[2026-11-22T13:45:01.123Z] "GET / HTTP/1.1" 200 - 0 612"#[..],
        br#"[2026-11-22T13:45:01.123Z] "GET / HTTP/1.1" 200 - 0 612 x3 2"#,
        br#"2026-11-22T13:45:01.123Z "GET / HTTP/1.1" 200 - 0 612 3 2"#,
        br#"[yesterday] "GET / HTTP/1.1" 200 - 0 612 3 2"#,
    ] {
        assert!(f.parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn haproxy_httplog_with_and_without_syslog() {
    let f = LogFormat::Haproxy;
    let tail = r#"[22/Nov/2026:13:45:01.123] http-in~ static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#;
    let want = Ok(rec(200, Some(109_000), Some(T0 + 123)));
    assert_eq!(f.parse(format!("10.0.1.2:33317 {tail}").as_bytes()), want);
    assert_eq!(
        f.parse(format!("Nov 22 13:45:01 lb1 haproxy[14389]: 10.0.1.2:33317 {tail}").as_bytes()),
        want
    );
    let aborted = r#"haproxy[1]: 1.2.3.4:5 [22/Nov/2026:13:45:01.000] fe be/<NOSRV> -1/-1/-1/-1/+5 -1 0 - - CR-- 0/0/0/0/0 0/0 "<BADREQ>""#;
    assert_eq!(
        f.parse(aborted.as_bytes()),
        Ok(rec(0, Some(5_000), Some(T0)))
    );
    let never = r#"1.2.3.4:5 [22/Nov/2026:13:45:01.000] fe be/s 0/0/0/-1/-1 502 0 - - SH-- 0/0/0/0/0 0/0 "GET / HTTP/1.1""#;
    assert_eq!(f.parse(never.as_bytes()), Ok(rec(502, None, Some(T0))));
    // tcplog lines (3 timers) are not HTTP requests.
    let tcp = "1.2.3.4:5 [22/Nov/2026:13:45:01.000] fe be/s 0/0/5 212 -- 0/0/0/0/0 0/0";
    assert!(f.parse(tcp.as_bytes()).is_err());
}

#[test]
fn json_fields_units_and_nesting() {
    let f = LogFormat::Json(JsonFields {
        status_field: "status".into(),
        latency_field: "timing.total".into(),
        latency_unit: LatencyUnit::Millis,
        time_field: Some("ts".into()),
    });
    let line = br#"{"status":502,"timing":{"total":12.5},"ts":"2026-11-22T13:45:01Z"}"#;
    assert_eq!(f.parse(line), Ok(rec(502, Some(12_500), Some(T0))));
    let line = br#"{"status":"200","timing.total":"7","ts":1795355101.5}"#;
    assert_eq!(f.parse(line), Ok(rec(200, Some(7_000), Some(T0 + 500))));
    let line = br#"{"status":200,"ts":"whenever"}"#;
    assert_eq!(f.parse(line), Ok(rec(200, None, None)));
    for bad in [
        &br#"{"status":2000}"#[..],
        br#"{"timing":{"total":1}}"#,
        br#"{"status":200,"timing":{"total":-1}}"#,
        br#"{"status":200,"timing":{"total":[1]}}"#,
        br#"[1,2]"#,
        br#"{"status":200"#,
    ] {
        assert!(f.parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn regex_format_groups_and_errors() {
    let re = RegexFormat::new(
        r"^(?P<time>\S+) (?P<status>\d+) (?P<latency>\S+)$",
        LatencyUnit::Micros,
    )
    .unwrap();
    let f = LogFormat::Regex(re);
    assert_eq!(
        f.parse(b"2026-11-22T13:45:01Z 404 1500"),
        Ok(rec(404, Some(1_500), Some(T0)))
    );
    assert_eq!(f.parse(b"x 404 -"), Ok(rec(404, None, None)));
    assert!(f.parse(b"x 404").is_err());
    assert!(f.parse(b"x 404 fast").is_err());
    let e = RegexFormat::new(r"(?P<latency>\d+)", LatencyUnit::Seconds).unwrap_err();
    assert!(matches!(e, RegexFormatError::NoGroup("status")), "{e}");
    assert_eq!(e.to_string(), "regex has no named group `status`");
    assert!(RegexFormat::new(r"(?P<status>\d+)", LatencyUnit::Seconds).is_err());
    assert!(RegexFormat::new(r"(", LatencyUnit::Seconds).is_err());
}

#[test]
fn latency_units() {
    assert_eq!(LatencyUnit::parse("s"), Some(LatencyUnit::Seconds));
    assert_eq!(LatencyUnit::parse("ms"), Some(LatencyUnit::Millis));
    assert_eq!(LatencyUnit::parse("us"), Some(LatencyUnit::Micros));
    assert_eq!(LatencyUnit::parse("min"), None);
    assert_eq!(decimal_us(b"1.5", LatencyUnit::Seconds), Some(1_500_000));
    assert_eq!(decimal_us(b"1.5", LatencyUnit::Millis), Some(1_500));
    assert_eq!(decimal_us(b"1.5", LatencyUnit::Micros), Some(1));
    assert_eq!(decimal_us(b".5", LatencyUnit::Seconds), Some(500_000));
    assert_eq!(
        decimal_us(b"99999999999999999999999", LatencyUnit::Seconds),
        Some(u64::MAX)
    );
    assert_eq!(decimal_us(b".", LatencyUnit::Seconds), None);
}

/// Every prefix, every single-byte corruption and random bytes: outside input must never panic.
#[test]
fn no_panic_on_mangled_lines() {
    let json = LogFormat::Json(JsonFields {
        status_field: "s".into(),
        latency_field: "l".into(),
        latency_unit: LatencyUnit::Seconds,
        time_field: Some("t".into()),
    });
    let formats = [LogFormat::Nginx, LogFormat::Envoy, LogFormat::Haproxy, json];
    let samples: [&[u8]; 4] = [
        br#"127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 612 "-" "c" 0.003, 0.1"#,
        br#"[2026-11-22T13:45:01.123Z] "GET / HTTP/1.1" 200 - 0 612 3 2 "-" "c" "i" "h" "u""#,
        br#"h[1]: 1.2.3.4:5 [22/Nov/2026:13:45:01.123] fe be/s 0/0/1/2/3 200 612 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1""#,
        br#"{"s":200,"l":0.1,"t":"2026-11-22T13:45:01Z"}"#,
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let specials = [
        b'"', b'[', b']', b' ', b'/', b':', b'.', b'-', b'+', b'0', 0xff,
    ];
    for s in samples {
        for f in &formats {
            for i in 0..=s.len() {
                let _ = f.parse(&s[..i]);
                let _ = f.parse(&s[i..]);
            }
            let mut m = s.to_vec();
            for i in 0..m.len() {
                for &c in &specials {
                    let old = m[i];
                    m[i] = c;
                    let _ = f.parse(&m);
                    m[i] = old;
                }
            }
            for _ in 0..2000 {
                let len = (next() % 120) as usize;
                let junk: Vec<u8> = (0..len)
                    .map(|_| specials[(next() % specials.len() as u64) as usize])
                    .collect();
                let _ = f.parse(&junk);
            }
        }
    }
}

proptest::proptest! {
    /// Arbitrary bytes, and arbitrary bytes spliced into a valid line, never panic any parser.
    #[test]
    fn arbitrary_bytes_never_panic(
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        at in 0usize..120,
    ) {
        let valid: &[u8] = br#"1.2.3.4 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" 0.1"#;
        let mut spliced = valid[..at.min(valid.len())].to_vec();
        spliced.extend_from_slice(&junk);
        for f in [LogFormat::Nginx, LogFormat::Envoy, LogFormat::Haproxy] {
            let _ = f.parse(&junk);
            let _ = f.parse(&spliced);
        }
    }
}
