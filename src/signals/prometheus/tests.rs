use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::exposition::parse_body;
use super::*;

const ENVOY_BUCKETS: [&str; 8] = ["0.5", "1", "5", "10", "25", "50", "100", "+Inf"];

/// Envoy `/stats/prometheus`, trimmed: counters per response class, a gauge written with `{}`,
/// and the upstream request-time histogram (milliseconds). `buckets` are per-bucket (not
/// cumulative) counts for cluster "web"; "admin" traffic must never leak into "web" values.
fn envoy(ok: u64, errors: u64, buckets: [u64; 8]) -> String {
    let mut b = format!(
        "# TYPE envoy_cluster_upstream_rq_xx counter\n\
         envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"2\",envoy_cluster_name=\"web\"}} {ok}\n\
         envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"5\",envoy_cluster_name=\"web\"}} {errors}\n\
         envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"5\",envoy_cluster_name=\"admin\"}} 999\n\
         # TYPE envoy_cluster_upstream_rq_total counter\n\
         envoy_cluster_upstream_rq_total{{envoy_cluster_name=\"web\"}} {}\n\
         # TYPE envoy_server_live gauge\n\
         envoy_server_live{{}} 1\n\
         # TYPE envoy_cluster_upstream_rq_time histogram\n",
        ok + errors
    );
    let mut cumulative = 0;
    for (le, n) in ENVOY_BUCKETS.iter().zip(buckets) {
        cumulative += n;
        b += &format!(
            "envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"web\",le=\"{le}\"}} {cumulative}\n\
             envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name=\"admin\",le=\"{le}\"}} 5000\n"
        );
    }
    b += &format!(
        "envoy_cluster_upstream_rq_time_sum{{envoy_cluster_name=\"web\"}} 1234.5\n\
         envoy_cluster_upstream_rq_time_count{{envoy_cluster_name=\"web\"}} {cumulative}\n"
    );
    b
}

/// HAProxy's built-in exporter, trimmed.
fn haproxy(requests: u64, e5xx: u64, sessions: u64) -> String {
    format!(
        "# HELP haproxy_backend_http_requests_total Total number of HTTP requests received.\n\
         # TYPE haproxy_backend_http_requests_total counter\n\
         haproxy_backend_http_requests_total{{proxy=\"web\"}} {requests}\n\
         haproxy_backend_http_requests_total{{proxy=\"stats\"}} 77\n\
         # HELP haproxy_backend_http_responses_total Total number of HTTP responses.\n\
         # TYPE haproxy_backend_http_responses_total counter\n\
         haproxy_backend_http_responses_total{{proxy=\"web\",code=\"1xx\"}} 0\n\
         haproxy_backend_http_responses_total{{proxy=\"web\",code=\"2xx\"}} {}\n\
         haproxy_backend_http_responses_total{{proxy=\"web\",code=\"5xx\"}} {e5xx}\n\
         haproxy_backend_http_responses_total{{proxy=\"web\",code=\"other\"}} 0\n\
         # TYPE haproxy_backend_current_sessions gauge\n\
         haproxy_backend_current_sessions{{proxy=\"web\"}} {sessions}\n\
         haproxy_backend_current_sessions{{proxy=\"api\"}} 3\n",
        requests - e5xx
    )
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn haproxy_values() -> Vec<(String, Derive)> {
    vec![
        (
            "error_ratio".into(),
            Derive::Ratio {
                numerator: sel(r#"haproxy_backend_http_responses_total{proxy="web",code="5xx"}"#),
                denominator: sel(r#"haproxy_backend_http_requests_total{proxy="web"}"#),
            },
        ),
        (
            "rps".into(),
            Derive::Rate(sel(r#"haproxy_backend_http_requests_total{proxy="web"}"#)),
        ),
        (
            "sessions".into(),
            Derive::Gauge(sel("haproxy_backend_current_sessions")),
        ),
    ]
}

fn envoy_values() -> Vec<(String, Derive)> {
    vec![
        (
            "error_ratio".into(),
            Derive::Ratio {
                numerator: sel(
                    r#"envoy_cluster_upstream_rq_xx{envoy_cluster_name="web",envoy_response_code_class="5"}"#,
                ),
                denominator: sel(r#"envoy_cluster_upstream_rq_xx{envoy_cluster_name="web"}"#),
            },
        ),
        (
            "p99_ms".into(),
            Derive::Quantile {
                histogram: sel(r#"envoy_cluster_upstream_rq_time{envoy_cluster_name="web"}"#),
                q: 0.99,
            },
        ),
        (
            "p50_ms".into(),
            Derive::Quantile {
                histogram: sel(r#"envoy_cluster_upstream_rq_time{envoy_cluster_name="web"}"#),
                q: 0.5,
            },
        ),
        ("live".into(), Derive::Gauge(sel("envoy_server_live"))),
    ]
}

fn at(t: Instant, secs: u64) -> Instant {
    t + Duration::from_secs(secs)
}

const W: Duration = Duration::from_secs(30);

#[test]
fn fixtures_parse_without_malformed_lines() {
    let body = envoy(10, 1, [0, 1, 2, 3, 4, 5, 6, 7]);
    let mut web_buckets = 0;
    let s = sel(r#"envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web"}"#);
    let stats = parse_body(&body, |x| {
        if x.name == s.name && s.matches_labels(x) {
            web_buckets += 1;
        }
    });
    assert_eq!((stats.samples, stats.malformed), (23, 0));
    assert_eq!(web_buckets, 8);
    let stats = parse_body(&haproxy(1, 0, 0), |_| {});
    assert_eq!((stats.samples, stats.malformed), (8, 0));
}

#[test]
fn haproxy_ratio_rate_and_gauge() {
    let t = Instant::now();
    let mut d = Deriver::new(W, &haproxy_values());
    let first = d.ingest(at(t, 0), &haproxy(10_000, 100, 12)).unwrap();
    // One scrape: gauges only, no rate yet.
    assert_eq!(first.values.keys().collect::<Vec<_>>(), ["sessions"]);
    assert_eq!(first.values["sessions"], 15.0);
    assert_eq!(first.requests, None);
    let v = d.ingest(at(t, 10), &haproxy(12_000, 150, 9)).unwrap();
    assert_eq!(v.values["rps"], 200.0);
    assert_eq!(v.values["error_ratio"], 0.025);
    assert_eq!(v.requests, Some(2_000));
    assert_eq!(v.values["sessions"], 12.0);
    assert!(v.unmatched.is_empty());
}

#[test]
fn envoy_quantiles_come_from_the_window_not_from_process_start() {
    let t = Instant::now();
    let mut d = Deriver::new(W, &envoy_values());
    // Before the window: a million slow requests (50-100 ms).
    d.ingest(at(t, 0), &envoy(0, 0, [0, 0, 0, 0, 0, 0, 1_000_000, 0]))
        .unwrap();
    // In the window: 100 requests, 90 in (1, 5] ms and 10 in (5, 10] ms.
    let v = d
        .ingest(at(t, 5), &envoy(100, 0, [0, 0, 90, 10, 0, 0, 1_000_000, 0]))
        .unwrap();
    // p50: rank 50 of 90 in (1, 5]: 1 + 4 * 50/90.
    assert!((v.values["p50_ms"] - (1.0 + 4.0 * 50.0 / 90.0)).abs() < 1e-9);
    // p99: rank 99, 9 into the 10 in (5, 10]: 5 + 5 * 9/10.
    assert!((v.values["p99_ms"] - 9.5).abs() < 1e-9);
    assert_eq!(v.values["error_ratio"], 0.0);
    assert_eq!(v.values["live"], 1.0);
    assert_eq!(v.requests, Some(100), "the ratio's denominator");
}

#[test]
fn counter_reset_counts_like_prometheus_rate() {
    let t = Instant::now();
    let vals = vec![("rps".to_owned(), Derive::Rate(sel("c")))];
    let mut d = Deriver::new(W, &vals);
    let mut at_s = |s, v: u64| {
        d.ingest(at(t, s), &format!("c {v}\n"))
            .unwrap()
            .values
            .get("rps")
            .copied()
    };
    assert_eq!(at_s(0, 100), None);
    assert_eq!(at_s(10, 150), Some(5.0));
    // Proxy restarted: 150 -> 20 means 20 new since the restart, not -130 and not a wrap.
    assert_eq!(at_s(20, 20), Some(70.0 / 20.0));
    assert_eq!(at_s(30, 50), Some(100.0 / 30.0));
    // The first 10 s (50) leave the window.
    assert_eq!(at_s(40, 50), Some(50.0 / 30.0));
}

#[test]
fn histogram_reset_and_window_expiry() {
    let t = Instant::now();
    let vals = vec![(
        "p50".to_owned(),
        Derive::Quantile {
            histogram: sel(r#"envoy_cluster_upstream_rq_time{envoy_cluster_name="web"}"#),
            q: 0.5,
        },
    )];
    let mut d = Deriver::new(Duration::from_secs(10), &vals);
    d.ingest(at(t, 0), &envoy(0, 0, [0, 0, 0, 0, 0, 0, 500, 0]))
        .unwrap();
    // Restart: cumulative buckets fall; the new counts (all <= 0.5 ms) are the increase.
    let v = d
        .ingest(at(t, 5), &envoy(0, 0, [10, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    assert!((v.values["p50"] - 0.25).abs() < 1e-9);
    // The same histogram named with its `_bucket` suffix selects the same series.
    let suffixed = vec![(
        "p50".to_owned(),
        Derive::Quantile {
            histogram: sel(r#"envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web"}"#),
            q: 0.5,
        },
    )];
    let mut d2 = Deriver::new(Duration::from_secs(10), &suffixed);
    d2.ingest(at(t, 0), &envoy(0, 0, [0; 8])).unwrap();
    let v2 = d2
        .ingest(at(t, 5), &envoy(0, 0, [10, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    assert!((v2.values["p50"] - 0.25).abs() < 1e-9);
    // Nothing new for longer than the window: no observations, no quantile.
    d.ingest(at(t, 10), &envoy(0, 0, [10, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    let v = d
        .ingest(at(t, 16), &envoy(0, 0, [10, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    assert!(!v.values.contains_key("p50"), "{v:?}");
    assert_eq!(v.requests, Some(0));
}

#[test]
fn lazily_created_series_count_from_zero() {
    let t = Instant::now();
    let mut d = Deriver::new(W, &envoy_values());
    let no_5xx = "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"web\"} 100\n";
    let v = d.ingest(at(t, 0), no_5xx).unwrap();
    assert!(v.unmatched.iter().any(|s| s.contains("code_class=\"5\"")));
    let with_5xx = format!(
        "{}envoy_cluster_upstream_rq_xx{{envoy_response_code_class=\"5\",envoy_cluster_name=\"web\"}} 3\n",
        no_5xx.replace("100", "197")
    );
    let v = d.ingest(at(t, 1), &with_5xx).unwrap();
    assert_eq!(v.values["error_ratio"], 0.03);
}

#[test]
fn vanished_series_is_not_a_reset_of_the_sum() {
    let t = Instant::now();
    let vals = vec![("rps".to_owned(), Derive::Rate(sel("c")))];
    let mut d = Deriver::new(W, &vals);
    d.ingest(at(t, 0), "c{a=\"1\"} 1000\nc{a=\"2\"} 1000\n")
        .unwrap();
    // Series 2 disappears: the sum halves, but only series 1's growth counts.
    let v = d.ingest(at(t, 10), "c{a=\"1\"} 1010\n").unwrap();
    assert_eq!(v.values["rps"], 1.0);
    // Labels in another order are the same series.
    let v = d.ingest(at(t, 20), "c{b=\"x\",a=\"1\"} 1\nc{a=\"1\",b=\"x\"} 2\n");
    assert!(v.is_ok());
}

#[test]
fn garbage_keeps_the_window_and_long_gaps_restart_it() {
    let t = Instant::now();
    let mut d = Deriver::new(W, &haproxy_values());
    d.ingest(at(t, 0), &haproxy(1000, 0, 1)).unwrap();
    let err = d
        .ingest(at(t, 5), "<html><body>502 Bad Gateway</body></html>\n")
        .unwrap_err();
    assert_eq!(err, NoSamples { malformed: 1 });
    assert_eq!(err.to_string(), "no samples in body (1 malformed lines)");
    // The next good scrape spans back to the last good one.
    let v = d.ingest(at(t, 10), &haproxy(2000, 10, 1)).unwrap();
    assert_eq!(v.values["rps"], 100.0);
    // Down for longer than the window: the next scrape is a new baseline, not one huge delta.
    let v = d.ingest(at(t, 100), &haproxy(900_000, 9_000, 1)).unwrap();
    assert!(!v.values.contains_key("rps"), "{v:?}");
    let v = d.ingest(at(t, 101), &haproxy(900_100, 9_000, 1)).unwrap();
    assert_eq!(v.values["rps"], 100.0);
    assert_eq!(v.values["error_ratio"], 0.0);
    // Time that does not advance changes nothing.
    let again = d.ingest(at(t, 101), &haproxy(1, 1, 1)).unwrap();
    assert_eq!(again.values["rps"], 100.0);
}

#[test]
fn no_requests_means_no_ratio() {
    let t = Instant::now();
    let mut d = Deriver::new(W, &haproxy_values());
    d.ingest(at(t, 0), &haproxy(500, 5, 1)).unwrap();
    let v = d.ingest(at(t, 1), &haproxy(500, 5, 1)).unwrap();
    assert!(!v.values.contains_key("error_ratio"));
    assert_eq!(v.values["rps"], 0.0);
    assert_eq!(v.requests, Some(0));
}

#[test]
fn histogram_quantile_matches_promql() {
    let inf = f64::INFINITY;
    let b = [(0.1, 10.0), (0.5, 60.0), (1.0, 100.0), (inf, 100.0)];
    let q = |q| histogram_quantile(q, &b).unwrap();
    assert!((q(0.5) - 0.42).abs() < 1e-12);
    assert!((q(0.99) - 0.9875).abs() < 1e-12);
    assert!((q(0.05) - 0.05).abs() < 1e-12, "first bucket starts at 0");
    assert_eq!(q(1.0), 1.0);
    // Rank in +Inf: the highest finite bound.
    assert_eq!(
        histogram_quantile(0.5, &[(1.0, 0.0), (inf, 10.0)]),
        Some(1.0)
    );
    // Non-monotonic input is evened out, not a negative bucket.
    let odd = [(1.0, 10.0), (2.0, 8.0), (inf, 20.0)];
    assert_eq!(histogram_quantile(0.5, &odd), Some(1.0));
    // Where PromQL says NaN: no +Inf bucket, no observations, q outside [0, 1].
    assert_eq!(histogram_quantile(0.5, &[(1.0, 5.0), (2.0, 5.0)]), None);
    assert_eq!(histogram_quantile(0.5, &[(1.0, 0.0), (inf, 0.0)]), None);
    assert_eq!(histogram_quantile(1.5, &b), None);
    assert_eq!(histogram_quantile(f64::NAN, &b), None);
}

#[test]
fn validate_checks_url_and_quantiles() {
    let mut cfg = PrometheusConfig {
        url: "http://127.0.0.1:9901/stats/prometheus".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        window: W,
        values: envoy_values(),
    };
    assert!(cfg.validate().is_ok());
    cfg.values.push((
        "bad".into(),
        Derive::Quantile {
            histogram: sel("h"),
            q: 99.0,
        },
    ));
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("quantile 99"));
    cfg.url = "https://x".into();
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("only http://"));
}

// ---- live: a raw HTTP/1.1 server on 127.0.0.1 -------------------------------------------

#[derive(Clone)]
enum Serve {
    /// HAProxy counters moving on each request: +100 requests, +10 of them 5xx.
    Counters(Arc<AtomicU64>),
    Fixed(&'static str, String),
    /// Accept and read, never answer.
    Hang,
}

async fn server(mode: Serve) -> (String, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mode = mode.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = match mode {
                    Serve::Counters(n) => {
                        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
                        ("200 OK", haproxy(100 * i, 10 * i, 4))
                    }
                    Serve::Fixed(status, body) => (status, body),
                    Serve::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, task)
}

fn live_cfg(url: String) -> PrometheusConfig {
    PrometheusConfig {
        url,
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        window: Duration::from_secs(10),
        values: haproxy_values(),
    }
}

async fn wait_for(
    rx: &watch::Receiver<SourceSnapshot>,
    f: impl FnMut(&SourceSnapshot) -> bool,
) -> SourceSnapshot {
    let mut rx = rx.clone();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        rx.wait_for(f).await.map(|s| s.clone())
    })
    .await;
    match got {
        Ok(Ok(s)) => s,
        _ => panic!("timed out; last snapshot {:?}", *rx.borrow()),
    }
}

#[tokio::test]
async fn live_scrape_of_changing_counters() {
    let (url, server) = server(Serve::Counters(Arc::default())).await;
    let (tx, rx) = watch::channel(SourceSnapshot::default());
    let stop = CancellationToken::new();
    let task = spawn(live_cfg(url), tx, stop.clone());
    let snap = wait_for(&rx, |s| s.values.contains_key("error_ratio")).await;
    assert_eq!(snap.missing, None);
    assert!((snap.values["error_ratio"] - 0.1).abs() < 1e-12, "{snap:?}");
    assert!(snap.values["rps"] > 0.0);
    assert_eq!(snap.values["sessions"], 7.0);
    assert!(snap.requests.unwrap() >= 100);
    assert!(snap.updated.is_some());
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("stops on cancel")
        .unwrap();
    server.abort();
}

#[tokio::test]
async fn live_failures_become_missing_and_recover() {
    // Garbage with a 200.
    let (url, server_task) = server(Serve::Fixed("200 OK", "<html>hello</html>\n".into())).await;
    let (tx, rx) = watch::channel(SourceSnapshot::default());
    let stop = CancellationToken::new();
    let task = spawn(live_cfg(url.clone()), tx, stop.clone());
    let s = wait_for(&rx, |s| s.missing.is_some()).await;
    assert_eq!(
        s.missing.as_deref(),
        Some("no samples in body (1 malformed lines)")
    );
    assert!(s.values.is_empty());
    assert_eq!(s.updated, None, "never succeeded");
    stop.cancel();
    task.await.unwrap();
    server_task.abort();

    // Non-200, then down, then hanging: each is `missing` with its reason, never a crash.
    let (url, server_task) = server(Serve::Fixed("503 Service Unavailable", "busy".into())).await;
    let target = Target::parse(&url).unwrap();
    let e = target.fetch(Duration::from_secs(1)).await.unwrap_err();
    assert!(
        matches!(e, FetchError::Status(s) if s.as_u16() == 503),
        "{e}"
    );
    assert_eq!(e.to_string(), "HTTP 503 Service Unavailable");
    server_task.abort();
    let _ = server_task.await;
    let e = target.fetch(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(e, FetchError::Connect { .. }), "{e}");
    assert!(e.to_string().starts_with("connect 127.0.0.1:"), "{e}");
    let (url, server_task) = server(Serve::Hang).await;
    let e = Target::parse(&url)
        .unwrap()
        .fetch(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::TimedOut { .. }), "{e}");
    assert!(e.to_string().contains("timed out after 200ms"), "{e}");
    server_task.abort();

    // Over the size cap.
    let (url, server_task) = server(Serve::Fixed("200 OK", "m 1\n".repeat(100))).await;
    let t = Target::parse(&url).unwrap();
    let e = t.fetch_capped(64).await.unwrap_err();
    assert!(matches!(e, FetchError::TooLarge { max: 64 }), "{e}");
    assert_eq!(e.to_string(), "body larger than 64 bytes");
    assert_eq!(t.fetch_capped(400).await.unwrap().len(), 400);
    server_task.abort();
}

#[tokio::test]
async fn live_endpoint_down_then_up() {
    // Reserve a port, then free it: nothing listens there yet.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (tx, rx) = watch::channel(SourceSnapshot::default());
    let stop = CancellationToken::new();
    let task = spawn(live_cfg(url), tx, stop.clone());
    let s = wait_for(&rx, |s| s.missing.is_some()).await;
    assert!(s.missing.unwrap().contains("connect"));
    // The endpoint comes up on that port: retried on the next interval, values appear.
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let serve = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            let body = haproxy(100 * i, 0, 1);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let s = wait_for(&rx, |s| s.values.contains_key("rps")).await;
    assert_eq!(s.missing, None);
    assert_eq!(s.values["error_ratio"], 0.0);
    stop.cancel();
    task.await.unwrap();
    serve.abort();
}
