//! Command-line shell over the vipwarden library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "vipwarden",
    version,
    about = "Announce anycast VIPs over BGP while the local service is healthy; withdraw them when it is not",
    long_about = "vipwarden runs on each backend server of an anycast service. It keeps a BGP session to each \
top-of-rack router (connecting out; configure the routers passive), runs active checks against the \
local service and announces the configured VIP prefixes only while the checks pass. A planned stop \
withdraws every route before closing the sessions."
)]
struct Cli {
    /// Log format: text for people, json for log shippers
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// More logging (-v: debug, -vv: trace)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less logging (-q: warnings and errors only)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (SIGTERM/SIGINT: withdraw all routes, close sessions, exit 0)
    Run {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
    },
    /// Validate a configuration and print a one-screen summary; exit 1 and print file:line:column
    /// for every problem when it is invalid
    CheckConfig {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
    },
    /// Show sessions and VIPs with their reasons, like a router's `show protocols`
    Status {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Put a VIP (or all) in maintenance: drained per its `drain` strategy, kept across restarts
    Drain {
        /// The VIP to drain
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        vip: Option<String>,
        /// Drain every VIP (also VIPs added to the config later)
        #[arg(long)]
        all: bool,
        /// Why, for the logs, status and hooks
        #[arg(long)]
        reason: Option<String>,
        /// Drain even if the fleet guard refuses (it would leave too few healthy announcers)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Take a VIP (or all) out of maintenance; it is announced again once its checks pass
    Undrain {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        vip: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Recent route decisions with their reasons
    Events {
        /// How many (newest last)
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a recorded access log through the configured signals and policy on the log's own
    /// timestamps, and print when each VIP would have been withdrawn and restored, and why
    Replay {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
        /// The recorded log, in the signal's format ("-" for standard input)
        #[arg(long)]
        log: PathBuf,
        /// Which access_log signal the log belongs to (needed when there are several)
        #[arg(long)]
        signal: Option<String>,
    },
    /// Host preflight: VIP placement, listeners, session and return paths, policy rules,
    /// rp_filter, ARP, hairpin checks, backlog, conntrack, certificates, sessions. Each finding
    /// ok/warn/fail with evidence and the fixing command; exit 1 when anything fails
    Doctor {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
        /// An address standing for clients (replies to it are looked up from each VIP);
        /// repeatable. Default: 192.0.2.1 and 2001:db8::1, i.e. "beyond the default route"
        #[arg(long)]
        client: Vec<std::net::IpAddr>,
    },
    /// Walk one VIP's path: SYNs arriving and completing, TCP connect, TLS, the application's
    /// answer; stop at the first failing step and say whose side the evidence points to
    Probe {
        /// VIP, VIP:PORT or [IPv6]:PORT
        target: String,
        /// Configuration to take the port, TLS, path and Host from (an http(s) check on the VIP)
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// How long step 1 watches the half-open sockets
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        watch: std::time::Duration,
        /// Timeout of each later step
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Print the steps as JSON
        #[arg(long)]
        json: bool,
    },
}

/// How the CLI finds the daemon: the `api:` section of the config (and its token file).
#[derive(clap::Args)]
struct ApiArgs {
    /// Path to the YAML configuration (for api.listen and api.token_file)
    #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
    config: PathBuf,
    /// Print the API's JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    // RUST_LOG, when set, refines the level (e.g. RUST_LOG=vipwarden::bgp=trace).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("vipwarden={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for people at a terminal, never in files or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::CheckConfig { config } => match vipwarden::config::load(config) {
            Ok(c) => {
                print!("{}", vipwarden::config::summary(&c));
                println!("{}: configuration is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!(
                    "{}: configuration is invalid ({} problem(s))",
                    config.display(),
                    e.0.len()
                );
                ExitCode::FAILURE
            }
        },
        Command::Replay {
            config,
            log,
            signal,
        } => replay(config, log, signal.as_deref()),
        Command::Status { api } => client(api, |t, json| async move {
            vipwarden::api::client::status(&t, json).await
        }),
        Command::Events { limit, api } => {
            let limit = *limit;
            client(api, move |t, json| async move {
                vipwarden::api::client::events(&t, limit, json).await
            })
        }
        Command::Drain {
            vip,
            reason,
            force,
            api,
            ..
        } => {
            let (vip, reason, force) = (vip.clone(), reason.clone(), *force);
            client(api, move |t, json| async move {
                vipwarden::api::client::drain_with(
                    &t,
                    vip.as_deref(),
                    reason.as_deref(),
                    force,
                    json,
                )
                .await
            })
        }
        Command::Undrain {
            vip, reason, api, ..
        } => {
            let (vip, reason) = (vip.clone(), reason.clone());
            client(api, move |t, json| async move {
                vipwarden::api::client::undrain(&t, vip.as_deref(), reason.as_deref(), json).await
            })
        }
        Command::Doctor {
            config,
            json,
            client,
        } => doctor(config, *json, client),
        Command::Probe {
            target,
            config,
            watch,
            timeout,
            json,
        } => probe(target, config.as_deref(), *watch, *timeout, *json),
        Command::Run { config } => {
            init_logging(&cli);
            let cfg = match vipwarden::config::load(config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!(
                        "{}: configuration is invalid; nothing started",
                        config.display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            // One thread is plenty for a handful of sessions and probes, and keeps RSS small.
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let opts = vipwarden::daemon::Options {
                config: cfg,
                config_path: config.clone(),
            };
            match rt.block_on(vipwarden::daemon::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("cannot start the async runtime: {e}"))
        .ok()
}

fn doctor(config: &std::path::Path, json: bool, clients: &[std::net::IpAddr]) -> ExitCode {
    let cfg = match vipwarden::config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut opts = vipwarden::doctor::Options::default();
    if !clients.is_empty() {
        opts.clients = clients.to_vec();
    }
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = rt.block_on(vipwarden::doctor::run(&cfg, &opts));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.text());
    }
    ExitCode::from(report.exit_code())
}

fn probe(
    target: &str,
    config: Option<&std::path::Path>,
    watch: std::time::Duration,
    timeout: std::time::Duration,
    json: bool,
) -> ExitCode {
    let cfg = match config.map(vipwarden::config::load).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = match vipwarden::doctor::probe::options_for(target, cfg.as_ref(), watch, timeout) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = rt.block_on(vipwarden::doctor::probe::run(&opts));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.text());
    }
    ExitCode::from(u8::from(report.failed()))
}

fn replay(config: &std::path::Path, log: &std::path::Path, signal: Option<&str>) -> ExitCode {
    use std::io::BufReader;
    let fail = |msg: String| {
        eprintln!("{msg}");
        ExitCode::FAILURE
    };
    let cfg = match vipwarden::config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(format!("{e}")),
    };
    let sig = match vipwarden::offline::pick_signal(&cfg, signal) {
        Ok(s) => s.clone(),
        Err(e) => return fail(format!("{}: {e}", config.display())),
    };
    let reader: Box<dyn std::io::BufRead> = if log.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        match std::fs::File::open(log) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 20, f)),
            Err(e) => return fail(format!("{}: cannot open: {e}", log.display())),
        }
    };
    let started = std::time::Instant::now();
    let report = match vipwarden::offline::run(&cfg, &sig, reader) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e:#}", log.display())),
    };
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if let Err(e) = vipwarden::offline::print(&report, &mut out) {
        return fail(format!("writing the report: {e}"));
    }
    eprintln!(
        "ingest: {} lines in {secs:.2} s ({:.0} lines/s)",
        report.summary.lines,
        report.summary.lines as f64 / secs.max(1e-9)
    );
    ExitCode::SUCCESS
}

/// Runs one API call described by `f` against the daemon named by `--config`.
fn client<F, Fut>(args: &ApiArgs, f: F) -> ExitCode
where
    F: FnOnce(vipwarden::api::client::ApiTarget, bool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    // Only the api: section: the rest of the file may be mid-edit (a refused reload must show).
    let (api, note) = vipwarden::config::api_section(&args.config);
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    // Reads work without the token; mutating calls say so if it is missing.
    let token = api
        .token_file
        .as_deref()
        .and_then(|p| vipwarden::api::load_token(p).ok());
    let target = vipwarden::api::client::ApiTarget {
        addr: api.listen,
        token,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f(target, args.json)) {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
