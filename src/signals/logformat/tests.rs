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

/// The nginx scan and decimal parser as they were before the ingest fast paths (general memchr
/// searches, two-pass decimal): the reference the fast paths must agree with on every line.
mod reference {
    use super::super::*;

    pub fn decimal_us(b: &[u8], unit: LatencyUnit) -> Option<u64> {
        let (int, frac) = match memchr(b'.', b) {
            Some(i) => (&b[..i], &b[i + 1..]),
            None => (b, &b""[..]),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.iter().all(u8::is_ascii_digit)
            || !frac.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let mut v: u64 = 0;
        for &c in int {
            v = v.saturating_mul(10).saturating_add((c - b'0') as u64);
        }
        for i in 0..unit.frac_digits() as usize {
            let d = frac.get(i).map_or(0, |c| (c - b'0') as u64);
            v = v.saturating_mul(10).saturating_add(d);
        }
        Some(v)
    }

    fn nginx_latency(b: &[u8]) -> Result<Option<u64>, Malformed> {
        if b.is_empty() {
            return Ok(None);
        }
        let mut total: Option<u64> = None;
        for part in b.split(|&c| c == b',' || c == b':') {
            let part = trim(part);
            if part == b"-" {
                continue;
            }
            let us = decimal_us(part, LatencyUnit::Seconds).ok_or(Malformed("bad request_time"))?;
            total = Some(total.unwrap_or(0).saturating_add(us));
        }
        Ok(total)
    }

    pub fn parse_nginx(line: &[u8]) -> Result<LogRecord, Malformed> {
        let (date, after_date) = find_clf_date(line).ok_or(Malformed("no [time_local]"))?;
        let time_ms = timeparse::parse_clf(date).ok_or(Malformed("bad time_local"))?;
        let rest = &line[after_date..];
        let open = memchr(b'"', rest).ok_or(Malformed("no request"))?;
        let close = request_end(rest, open + 1).ok_or(Malformed("no status after request"))?;
        let (status, tail) = token(&rest[close + 1..]).ok_or(Malformed("no status"))?;
        if status.len() != 3 {
            return Err(Malformed("bad status"));
        }
        let status = status_code(status).ok_or(Malformed("bad status"))?;
        let last_quote = memrchr(b'"', tail).ok_or(Malformed("no user agent"))?;
        let latency_us = nginx_latency(trim(&tail[last_quote + 1..]))?;
        Ok(LogRecord {
            status,
            latency_us,
            time_ms: Some(time_ms),
        })
    }
}

/// Pieces nginx lines are made of, and near misses of them, for the differential test.
fn nginx_piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "10.0.0.1",
        " ",
        "  ",
        "-",
        "[",
        "]",
        "\"",
        "[22/Nov/2026:13:45:01 +0000]",
        "[22/Nov/2026:13:45:02 +0000]",
        "[22/Nov/2026:13:45:01 +0100]",
        "[22/Nov/2026:13:45:01]",
        "[22/Nov/2026:13:45:01.5 +0000]",
        "[22/Nov/2026:13:45:01 +0000",
        "[22/Nov/2026:13:4]5:01 +0000]",
        "[22/Nov/2026:13:45:01 +00]0]",
        "[xx/Nov/2026:13:45:01 +0000]",
        "\"GET / HTTP/1.1\"",
        "\"GET /a\" b HTTP/1.1\"",
        "\"-\"",
        "200",
        "503",
        "20",
        "2000",
        "2x0",
        "612",
        "\"Mozilla/5.0 (X11)\"",
        "0.003",
        "12",
        "1.",
        ".5",
        ".",
        "0.002, 0.004",
        "0.1 : 0.2",
        "-, 0.004",
        "0.1.2",
        "99999999999999999999999.9",
        "abc",
        "\r",
        "\t",
    ])
}

proptest::proptest! {
    /// The fast nginx scan gives exactly what the general scan gives (record or reason), on
    /// lines built from nginx pieces and near misses, on well-formed lines, and on any bytes.
    #[test]
    fn nginx_fast_paths_agree_with_the_general_scan(
        pieces in proptest::collection::vec(nginx_piece(), 0..16),
        status in 0u16..1000,
        latency in proptest::prop_oneof![
            proptest::strategy::Just(String::new()),
            "[0-9]{0,3}(\\.[0-9]{0,8})?",
            "[0-9 .,:-]{0,12}",
        ],
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
    ) {
        let built = pieces.concat();
        let well = format!(
            "10.0.0.1 - - [22/Nov/2026:13:45:01 +0000] \"GET / HTTP/1.1\" {status:03} 5 \"-\" \"ua\" {latency}"
        );
        for line in [built.as_bytes(), well.as_bytes(), &junk[..]] {
            // Twice: cold and with the date cache holding this line's date.
            for _ in 0..2 {
                proptest::prop_assert_eq!(parse_nginx(line), reference::parse_nginx(line));
            }
        }
        for unit in [LatencyUnit::Seconds, LatencyUnit::Millis, LatencyUnit::Micros] {
            proptest::prop_assert_eq!(
                decimal_us(latency.as_bytes(), unit),
                reference::decimal_us(latency.as_bytes(), unit)
            );
            proptest::prop_assert_eq!(
                decimal_us(&junk, unit),
                reference::decimal_us(&junk, unit)
            );
        }
    }
}
