//! Runs one health check from the command line and prints each result, through the same
//! scheduler the daemon uses (so the first probe comes after a random jitter < interval).
//!
//! ```text
//! cargo run --example check -- http http://127.0.0.1:8080/healthz --interval 1s --count 5
//! cargo run --example check -- https https://127.0.0.1:8443/ --ca-file ca.pem --host svc.example
//! cargo run --example check -- tcp 127.0.0.1:22 --source 127.0.0.2
//! cargo run --example check -- exec --timeout 3s -- /usr/local/bin/health --quick
//! ```
//! Exits 0 if every probe passed, 1 if any failed, 2 on bad arguments.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tokio_util::sync::CancellationToken;
use vipwarden::checks::spawn_checks;
use vipwarden::config::{CheckConfig, CheckKind, HttpCheck};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Tcp,
    Http,
    Https,
    Exec,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Https => "https",
            Kind::Exec => "exec",
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Run one vipwarden health check and print each result")]
struct Args {
    kind: Kind,
    /// tcp: host:port address; http(s): URL; exec: the command and its arguments (after `--`).
    #[arg(required = true, num_args = 1..)]
    target: Vec<String>,
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Number of probes; 0 runs until Ctrl-C.
    #[arg(long, default_value_t = 1)]
    count: u64,
    #[arg(long)]
    source: Option<IpAddr>,
    #[arg(long)]
    interface: Option<String>,
    /// Accepted HTTP statuses, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "200")]
    expect_status: Vec<u16>,
    #[arg(long)]
    expect_body: Option<String>,
    /// Host header (and TLS name) override.
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[arg(long)]
    insecure: bool,
}

fn check_from(args: &Args) -> Result<CheckConfig, String> {
    let one_target = || match args.target.as_slice() {
        [t] => Ok(t.clone()),
        _ => Err(format!("{} takes exactly one target", args.kind.name())),
    };
    let kind = match args.kind {
        Kind::Tcp => {
            let t = one_target()?;
            let target: SocketAddr = t
                .parse()
                .map_err(|_| format!("tcp target {t:?} is not an ip:port address"))?;
            CheckKind::Tcp { target }
        }
        Kind::Http | Kind::Https => {
            let url = one_target()?;
            CheckKind::Http(HttpCheck {
                tls: url.starts_with("https://"),
                url,
                expect_status: args.expect_status.clone(),
                expect_body: args.expect_body.clone(),
                host: args.host.clone(),
                ca_file: args.ca_file.clone(),
                insecure: args.insecure,
            })
        }
        Kind::Exec => CheckKind::Exec {
            command: args.target.clone(),
        },
    };
    Ok(CheckConfig {
        name: "cli".into(),
        kind,
        source: args.source,
        interface: args.interface.clone(),
        interval: args.interval,
        fast_interval: args.interval / 5,
        timeout: args.timeout,
        rise: 1,
        fall: 1,
        // tcp/http/exec failures are a probe's view, never definitive.
        definitive_fall: false,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let check = match check_from(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("check: {e}");
            return ExitCode::from(2);
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let stop = CancellationToken::new();
    let handles = spawn_checks(std::slice::from_ref(&check), tx, stop.clone());
    let start = Instant::now();
    let (mut seen, mut failed) = (0u64, 0u64);
    while args.count == 0 || seen < args.count {
        let sample = tokio::select! {
            s = rx.recv() => match s {
                Some(s) => s,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        seen += 1;
        failed += u64::from(!sample.result.ok);
        println!(
            "{:>8.3}s  {}  {}",
            sample.at.duration_since(start).as_secs_f64(),
            if sample.result.ok { "PASS" } else { "FAIL" },
            sample.result.detail
        );
    }
    stop.cancel();
    for h in handles {
        let _ = h.await;
    }
    if failed == 0 && seen > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
