//! Deterministic nginx access-log generator for the ingest benchmark: `combined` + ` $request_time`,
//! a realistic status mix, long-tailed latencies, increasing timestamps (2000 requests per second
//! of log time from 2026-11-22T00:00:00Z).
//!
//! Usage: cargo run --release --example genlog -- LINES OUTPUT [nginx|envoy|haproxy]
//! (envoy: its default format; haproxy: `option httplog` behind a syslog prefix.)

use std::fs::File;
use std::io::{BufWriter, Write};

use vipwarden::civil_time::civil_from_days;

const START_S: i64 = 1_795_305_600; // 2026-11-22T00:00:00Z
const PER_SECOND: u64 = 2000;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const PATHS: [&str; 6] = [
    "/",
    "/api/v1/items?page=2",
    "/static/app.3f9a1c.js",
    "/api/v1/cart",
    "/img/logo.png",
    "/search?q=anycast+bgp",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
    "curl/7.88.1",
    "Go-http-client/1.1",
];

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Nginx,
    Envoy,
    Haproxy,
}

fn date(t: i64, f: Format) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    let (hh, mm, ss) = (s / 3600, s / 60 % 60, s % 60);
    let mon = MONTHS[m as usize - 1];
    match f {
        Format::Nginx => format!("{d:02}/{mon}/{y}:{hh:02}:{mm:02}:{ss:02} +0000"),
        Format::Haproxy => format!("{d:02}/{mon}/{y}:{hh:02}:{mm:02}:{ss:02}.000"),
        Format::Envoy => format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.000Z"),
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|n| n.parse::<u64>().ok()), args.get(2))
    else {
        eprintln!("usage: genlog LINES OUTPUT [nginx|envoy|haproxy]");
        std::process::exit(2);
    };
    let format = match args.get(3).map(String::as_str) {
        None | Some("nginx") => Format::Nginx,
        Some("envoy") => Format::Envoy,
        Some("haproxy") => Format::Haproxy,
        Some(other) => {
            eprintln!("unknown format {other}");
            std::process::exit(2);
        }
    };
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let date_of = date;
    let mut date = String::new();
    for i in 0..n {
        if i % PER_SECOND == 0 {
            date = date_of(START_S + (i / PER_SECOND) as i64, format);
        }
        let r = rnd();
        let status = match r % 1000 {
            0..=849 => 200,
            850..=879 => 304,
            880..=929 => 404,
            930..=949 => 301,
            950..=959 => 500,
            960..=974 => 502,
            975..=989 => 503,
            _ => 504,
        };
        // Long tail: mostly a few ms, 1 in 20 slow, 1 in 500 very slow.
        let r2 = rnd();
        let ms = match r2 % 500 {
            0 => 1000 + r2 % 9000,
            1..=25 => 100 + r2 % 900,
            _ => 1 + r2 % 60,
        };
        let bytes = if status == 304 { 0 } else { 200 + r % 50_000 };
        let (a, b, c) = (r % 256, (r >> 8) % 256, (r >> 16) % 256);
        let path = PATHS[(r >> 24) as usize % PATHS.len()];
        let agent = AGENTS[(r >> 32) as usize % AGENTS.len()];
        match format {
            Format::Nginx => writeln!(
                w,
                "10.{a}.{b}.{c} - - [{date}] \"GET {path} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\" {}.{:03}",
                ms / 1000,
                ms % 1000,
            )?,
            Format::Envoy => writeln!(
                w,
                "[{date}] \"GET {path} HTTP/1.1\" {status} - 0 {bytes} {ms} {} \"10.{a}.{b}.{c}\" \"{agent}\" \"{r:016x}\" \"www.example.com\" \"10.1.0.{c}:8080\"",
                ms.saturating_sub(1),
            )?,
            Format::Haproxy => writeln!(
                w,
                "Nov 22 00:00:00 lb1 haproxy[4242]: 10.{a}.{b}.{c}:{} [{date}] www~ app/srv{} 0/0/1/{}/{ms} {status} {bytes} - - ---- 10/10/2/1/0 0/0 \"GET {path} HTTP/1.1\"",
                1024 + r % 60000,
                c % 4,
                ms.saturating_sub(1),
            )?,
        }
    }
    w.flush()
}
