//! Command-line shell over the vipwarden library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// `vipwarden --version`: the release, the git commit and the build date (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VIPWARDEN_GIT_COMMIT"),
    ", built ",
    env!("VIPWARDEN_BUILD_DATE"),
    ")"
);

const EXIT_AND_ENV: &str = "\
Exit status:
  0  success
  1  failure: invalid configuration, the daemon refused the request, or it could not be reached
     (`status --check` has its own codes: see `vipwarden status --help`)
  2  command-line usage error

Environment:
  RUST_LOG   refines `run`'s log level per module, e.g. RUST_LOG=vipwarden::bgp=trace
  NOTIFY_SOCKET, WATCHDOG_USEC   set by systemd for `run` (Type=notify, watchdog)
  SOURCE_DATE_EPOCH   (build time) the build date shown by --version

Files:
  /etc/vipwarden/vipwarden.yaml   default configuration (--config)
  api.token_file                  bearer token the CLI sends for drain/undrain

Examples:
  vipwarden check-config -c /etc/vipwarden/vipwarden.yaml
  vipwarden status
  vipwarden drain web --reason 'kernel upgrade, OPS-1234'
  vipwarden completions bash > /usr/share/bash-completion/completions/vipwarden";

#[derive(Parser)]
#[command(
    name = "vipwarden",
    version = VERSION,
    about = "Announce anycast VIPs over BGP while the local service is healthy; withdraw them when it is not",
    long_about = "vipwarden runs on each backend server of an anycast service. It keeps a BGP session to each \
top-of-rack router (connecting out; configure the routers passive), runs active checks against the \
local service and announces the configured VIP prefixes only while the checks pass. A planned stop \
withdraws every route before closing the sessions.",
    after_long_help = EXIT_AND_ENV
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Logging options: only `run` logs, so only `run` takes them.
#[derive(clap::Args)]
struct LogArgs {
    /// Log format: text for people, json for log shippers (one object per line)
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More logging (-v: debug, -vv: trace)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less logging (-q: warnings and errors only)
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (SIGTERM/SIGINT: withdraw all routes, close sessions, exit 0)
    #[command(after_long_help = "\
Signals:
  SIGHUP           re-read and validate the config, apply it as a diff (an invalid file changes
                   nothing); re-reads api.token_file and api.tls, moves api.listen
  SIGTERM, SIGINT  drain per `shutdown`, withdraw every route, close sessions with Cease, exit 0;
                   a second one withdraws at once

Exit status: 0 after a planned stop; 1 when the config is invalid or the runtime cannot start.

Example:
  vipwarden run -c /etc/vipwarden/vipwarden.yaml --log-format json")]
    Run {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Validate a configuration and print a one-screen summary; exit 1 and print file:line:column
    /// for every problem when it is invalid
    #[command(after_long_help = "\
Checks what the daemon checks, including the api.token_file rules (mode, owner, contents).

Warnings (\"warning: file:line:column: what\") are about a config that loads but cannot work as
written, e.g. a latency condition on an nginx signal whose log_format has no $request_time; they
do not change the exit status. The daemon logs the same warnings at start and on reload.

Exit status: 0 valid (warnings or not); 1 invalid (every problem printed as file:line:column: what).

Example:
  vipwarden check-config -c /etc/vipwarden/vipwarden.yaml && systemctl reload vipwarden")]
    CheckConfig {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
    },
    /// Show sessions and VIPs with their reasons, like a router's `show protocols`
    #[command(after_long_help = "\
Exit status:
  without --check: 0 the daemon answered; 1 it could not be reached or refused
  with --check (for monitoring, e.g. a Nagios/Icinga check or a pre-reboot script):
    0  OK: every VIP announced and every BGP session established
    1  WARNING, degraded: still in service through some session, but a session is down or a VIP
       is withdrawn, draining or in maintenance (the line names each, with its reason)
    2  CRITICAL: no BGP session established (nothing reaches the fabric), or the daemon could
       not be reached (or refused the request)

Examples:
  vipwarden status
  vipwarden status --json | jq '.vips[] | {name, state, reason}'
  vipwarden status --check || echo \"not fully in service\"")]
    Status {
        /// Print one line and exit 0 (OK), 1 (degraded: a session down or a VIP not announced) or
        /// 2 (no session established, or daemon unreachable)
        #[arg(long, conflicts_with = "json")]
        check: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Put a VIP (or all) in maintenance: drained per its `drain` strategy, kept across restarts
    #[command(after_long_help = "\
Sends the token from api.token_file. Exit status: 0 done; 1 refused or daemon unreachable.

Examples:
  vipwarden drain web --reason 'kernel upgrade, OPS-1234'
  vipwarden drain --all --reason 'rack maintenance'
  vipwarden drain web --wait && systemctl stop nginx   # returns once out and connections gone")]
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
        /// Return only once the route is out and (connection-aware drain) the connections are
        /// gone or drain_period ran out
        #[arg(long)]
        wait: bool,
        /// Drain even if the fleet guard refuses (it would leave too few healthy announcers)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Take a VIP (or all) out of maintenance; it is announced again once its checks pass
    #[command(after_long_help = "\
Exit status: 0 done; 1 refused or daemon unreachable.

Example:
  vipwarden undrain web")]
    Undrain {
        /// The VIP to undrain
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        vip: Option<String>,
        /// Undrain every VIP
        #[arg(long)]
        all: bool,
        /// Why, for the logs
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Upgrade the running daemon in place: the binary now at its path takes over every BGP
    /// session and the decision state; no route changes
    #[command(after_long_help = "\
Sends SIGUSR2 to the daemon (its PID from the API's status) and waits until the new process
answers. On any failure (the new binary does not start, refuses the state or the config) the
running daemon serves on and says why. Under systemd it is refused (the new process would not
be systemd's child, and systemd would SIGKILL it at the next stop): there `systemctl restart`
hands the sessions over through systemd's fd store. See docs/upgrades.md.

Exit status: 0 upgraded; 1 the upgrade did not take place, or the daemon could not be reached.

Example:
  vipwarden upgrade")]
    Upgrade {
        /// Give up waiting for the new process after this many seconds
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The unit's ExecStop= hook (run by systemd as root before SIGTERM): tells the daemon
    /// whether systemd is restarting it (the sessions go through systemd's fd store) or stopping
    /// it (a planned stop); always exits 0
    #[command(hide = true)]
    StopHook {
        /// The unit's name (`%n` in the unit)
        #[arg(long, default_value = "vipwarden.service")]
        unit: String,
        /// The config the next process will read: one that does not load makes it a planned
        /// stop (the next process could not take the sessions)
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
    },
    /// Recent route decisions with their reasons
    #[command(after_long_help = "\
Exit status: 0 the daemon answered; 1 it could not be reached or refused.

Example:
  vipwarden events --limit 20")]
    Events {
        /// How many (newest last)
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a recorded access log through the configured signals and policy on the log's own
    /// timestamps, and print when each VIP would have been withdrawn and restored, and why
    #[command(after_long_help = "\
Prints each simulated route change with its reason, then per condition how close it came to its
trip threshold (\"near miss: web_log.error_ratio peaked at 0.043 vs above 0.050 at ...\"), and
warns when a condition needs a field the log lacks (latency from nginx `combined`).

Exit status: 0 replayed; 1 invalid config, unreadable log, or a log most of whose lines are not in
the signal's format (the replay would otherwise say \"fine\" having understood nothing).

Examples:
  vipwarden replay -c /etc/vipwarden/vipwarden.yaml --log /var/log/nginx/access.log.1
  zcat access.log.2.gz | vipwarden replay --log - --csv > series.csv")]
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
        /// Print every tick's condition values, thresholds and route state as CSV instead
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print the series and decisions as one JSON document instead
        #[arg(long)]
        json: bool,
        /// Also write a self-contained picture (values vs thresholds, route state, decisions):
        /// FILE.svg or FILE.html
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_long_help = "\
Examples:
  vipwarden completions bash > /usr/share/bash-completion/completions/vipwarden
  vipwarden completions zsh > /usr/share/zsh/vendor-completions/_vipwarden
  vipwarden completions fish > /usr/share/fish/vendor_completions.d/vipwarden.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output, or write one page per command into --dir
    #[command(after_long_help = "\
Examples:
  vipwarden man | man -l -
  vipwarden man --dir /usr/share/man/man1   # vipwarden.1, vipwarden-status.1, ...")]
    Man {
        /// Write vipwarden.1 and vipwarden-COMMAND.1 into this directory
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Host preflight: VIP placement, listeners, session and return paths, policy rules,
    /// rp_filter, ARP, hairpin checks, backlog, conntrack, certificates, sessions. Each finding
    /// ok/warn/fail with evidence and the fixing command; exit 1 when anything fails
    #[command(after_long_help = "\
Run it inside the node's network namespace, as the daemon would run; it reads rtnetlink,
sock_diag, /proc and the https checks' certificates, and asks the daemon's API for session states.
What it cannot read is a WARN with the reason.

Exit status: 0 no finding failed; 1 some finding failed (or the configuration is invalid).

Examples:
  vipwarden doctor -c /etc/vipwarden/vipwarden.yaml
  vipwarden doctor --client 198.51.100.77 --json | jq '.findings[] | select(.level == \"fail\")'")]
    Doctor {
        /// Path to the YAML configuration
        #[arg(short, long, default_value = "/etc/vipwarden/vipwarden.yaml")]
        config: PathBuf,
        /// Print the findings as JSON
        #[arg(long)]
        json: bool,
        /// An address standing for clients (replies to it are looked up from each VIP);
        /// repeatable. Default: per family a documentation address that only the default route
        /// covers (e.g. 203.0.113.254), so the lookup takes the path of clients beyond the fabric
        #[arg(long)]
        client: Vec<std::net::IpAddr>,
    },
    /// Walk one VIP's path: SYNs arriving and completing, TCP connect, TLS, the application's
    /// answer; stop at the first failing step and say whose side the evidence points to
    #[command(after_long_help = "\
Step 1 watches the VIP's half-open connections for --watch: connections that appear and stay
half-open for a second mean SYNs arrive but SYN-ACKs never reach the clients (the return path).
Steps 2-4 run from the node itself (local: they do not cross the fabric).

Exit status: 0 every step passed; 1 a step failed (or bad arguments/configuration).

Examples:
  vipwarden probe 203.0.113.10:443 -c /etc/vipwarden/vipwarden.yaml
  vipwarden probe '[2001:db8:10::10]:80' --watch 5s --json")]
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
    /// Path to the YAML configuration (for api.listen, api.token_file and api.tls)
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

fn init_logging(cli: &LogArgs) {
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
        Command::CheckConfig { config } => match vipwarden::preflight::load(config) {
            Ok(c) => {
                print!("{}", vipwarden::config::summary(&c));
                // Loads, but cannot work as written (a listener address that is not local, a
                // condition on a field the log lacks, a check no VIP uses).
                for w in &c.warnings {
                    println!("warning: {w}");
                }
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
            csv,
            json,
            plot,
        } => replay(config, log, signal.as_deref(), *csv, *json, plot.as_deref()),
        Command::Status { api, check: true } => status_check(api),
        Command::Status { api, check: false } => client(api, |t, json| async move {
            vipwarden::api::client::status(&t, json).await
        }),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "vipwarden", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::StopHook { unit, config } => {
            let loads = vipwarden::preflight::load(config)
                .map(drop)
                .map_err(|e| format!("{} does not load: {e}", config.display()));
            eprintln!("{}", vipwarden::handover::fdstore::stop_hook(unit, loads));
            ExitCode::SUCCESS
        }
        Command::Upgrade { timeout, api } => {
            let timeout = std::time::Duration::from_secs(*timeout);
            client(api, move |t, json| async move {
                vipwarden::api::client::upgrade(&t, timeout, json).await
            })
        }
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
            wait,
            api,
            ..
        } => {
            let (vip, reason, force, wait) = (vip.clone(), reason.clone(), *force, *wait);
            client(api, move |t, json| async move {
                let out = vipwarden::api::client::drain_with(
                    &t,
                    vip.as_deref(),
                    reason.as_deref(),
                    force,
                    json,
                )
                .await?;
                if !wait {
                    return Ok(out);
                }
                let done = vipwarden::api::client::wait_drained(&t, vip.as_deref()).await?;
                Ok(format!("{out}{done}"))
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
        Command::Run { config, log } => {
            init_logging(log);
            // The same list check-config refuses: a file it calls invalid starts nothing.
            let cfg = match vipwarden::preflight::load(config) {
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
            let Some(rt) = runtime() else {
                return ExitCode::FAILURE;
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

/// The one runtime builder, for the daemon and every CLI command. One thread: it carries a
/// handful of sessions, probes and the API; blocking file work goes to tokio's blocking pool.
/// A multi-threaded runtime measured +576 kB RSS idle with only 2 workers (8748 vs 8172 kB on a
/// 2-core machine; one worker per core on bigger ones) and buys nothing here.
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

fn replay(
    config: &std::path::Path,
    log: &std::path::Path,
    signal: Option<&str>,
    csv: bool,
    json: bool,
    plot: Option<&std::path::Path>,
) -> ExitCode {
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
    let html = match plot.map(|p| p.extension().and_then(|e| e.to_str())) {
        None => false,
        Some(Some("svg")) => false,
        Some(Some("html" | "htm")) => true,
        Some(_) => return fail("--plot needs a FILE.svg or FILE.html".to_string()),
    };
    let series = csv || json || plot.is_some();
    let report = match vipwarden::offline::run_with(&cfg, &sig, reader, series) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e:#}", log.display())),
    };
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if let Some(path) = plot {
        let markup = if html {
            vipwarden::offline::plot::html(&report)
        } else {
            vipwarden::offline::plot::svg(&report)
        };
        if let Err(e) = std::fs::write(path, markup) {
            return fail(format!("{}: cannot write the plot: {e}", path.display()));
        }
        eprintln!("plot written to {}", path.display());
    }
    let written = if csv || json {
        for w in &report.warnings {
            eprintln!("WARNING: {w}");
        }
        if csv {
            vipwarden::offline::write_csv(&report, &mut out)
        } else {
            vipwarden::offline::write_json(&report, &mut out)
        }
    } else {
        vipwarden::offline::print(&report, &mut out)
    };
    if let Err(e) = written {
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
    // Reads work without the token; mutating calls say why if it is missing.
    let target =
        vipwarden::api::client::ApiTarget::from_config(api.listen, api.token_file.as_deref());
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
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

/// `vipwarden status --check`: one line, exit 0 OK / 1 degraded / 2 critical or unreachable.
fn status_check(args: &ApiArgs) -> ExitCode {
    let (api, note) = vipwarden::config::api_section(&args.config);
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    let target = vipwarden::api::client::ApiTarget::from_api_config(&api);
    let Some(rt) = runtime() else {
        println!("UNKNOWN: cannot start the async runtime");
        return ExitCode::from(2);
    };
    match rt.block_on(vipwarden::api::client::check(&target)) {
        Ok((code, line)) => {
            println!("{line}");
            ExitCode::from(code)
        }
        Err(e) => {
            println!("CRITICAL: vipwarden unreachable: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `vipwarden man [--dir DIR]`.
fn man(dir: Option<&std::path::Path>) -> ExitCode {
    let cmd = Cli::command();
    let result = match dir {
        None => vipwarden::manpage::render(&cmd, &mut std::io::stdout()),
        Some(d) => vipwarden::manpage::generate_to(cmd, d),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writing the man page: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn log_options_belong_to_run_only() {
        assert!(Cli::try_parse_from(["vipwarden", "run", "-v", "--log-format", "json"]).is_ok());
        assert!(Cli::try_parse_from(["vipwarden", "status", "-v"]).is_err());
        assert!(Cli::try_parse_from(["vipwarden", "-q", "status"]).is_err());
        assert!(Cli::try_parse_from(["vipwarden", "status", "--check", "--json"]).is_err());
    }

    #[test]
    fn version_names_commit_and_date() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{VERSION}");
        assert!(
            VERSION.contains("commit ") && VERSION.contains(", built 20"),
            "{VERSION}"
        );
    }

    #[test]
    fn man_page_and_completions_render() {
        let mut out = Vec::new();
        vipwarden::manpage::render(&Cli::command(), &mut out).unwrap();
        let man = String::from_utf8(out).unwrap();
        assert!(man.contains(".TH vipwarden"), "{man}");
        // Issue 22: real sections, not everything under EXTRA.
        assert!(man.contains(".SH \"EXIT STATUS\""), "{man}");
        assert!(man.contains(".SH \"EXAMPLES\""), "{man}");
        assert!(!man.contains("EXTRA"), "{man}");
        let dir = tempfile::tempdir().unwrap();
        vipwarden::manpage::generate_to(Cli::command(), dir.path()).unwrap();
        let status = std::fs::read_to_string(dir.path().join("vipwarden-status.1")).unwrap();
        assert!(status.contains(".SH \"EXIT STATUS\"") && status.contains("degraded"));
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "vipwarden",
            &mut out,
        );
        let bash = String::from_utf8(out).unwrap();
        assert!(
            bash.contains("check-config") && bash.contains("--reason"),
            "{bash}"
        );
    }
}
