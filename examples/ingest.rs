//! Drives `signals::replay` over a recorded log, as `vipwarden replay` will: parse every line,
//! slide a 30 s window on the lines' own timestamps, evaluate it every second of log time.
//! Prints throughput and the final state; the ingest benchmark runs this.
//!
//! Usage: cargo run --release --example ingest -- FILE [nginx|envoy|haproxy]

use std::fs::File;
use std::io::BufReader;
use std::time::{Duration, Instant};

use vipwarden::signals::{replay, LogFormat, ReplayOptions, StatusSet};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: ingest FILE [nginx|envoy|haproxy]");
        std::process::exit(2);
    };
    let format = match args.get(2).map(String::as_str) {
        None | Some("nginx") => LogFormat::Nginx,
        Some("envoy") => LogFormat::Envoy,
        Some("haproxy") => LogFormat::Haproxy,
        Some(other) => {
            eprintln!("unknown format {other}");
            std::process::exit(2);
        }
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let opts = ReplayOptions::new(Duration::from_secs(30), StatusSet::default());
    let mut ticks = 0u64;
    let mut worst_ratio = 0f64;
    let started = Instant::now();
    let sum = replay(
        BufReader::with_capacity(1 << 20, file),
        &format,
        &opts,
        |_, s| {
            ticks += 1;
            worst_ratio = worst_ratio.max(s.error_ratio.unwrap_or(0.0));
        },
    );
    let elapsed = started.elapsed().as_secs_f64();
    let sum = match sum {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    println!("lines {}", sum.lines);
    println!("requests_total {}", sum.records);
    println!("errors_5xx_total {}", sum.errors);
    println!("malformed_total {}", sum.malformed);
    println!("ticks {ticks}");
    println!("worst_window_error_ratio {worst_ratio:.4}");
    if let Some(s) = &sum.last {
        println!(
            "final_window requests={} rate={:.1}/s errors={} p50_us={:?} p95_us={:?} p99_us={:?}",
            s.requests,
            s.request_rate,
            s.errors,
            s.latency_p50_us,
            s.latency_p95_us,
            s.latency_p99_us
        );
    }
    println!("elapsed_s {elapsed:.3}");
    println!("lines_per_s {:.0}", sum.lines as f64 / elapsed.max(1e-9));
}
