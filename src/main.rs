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
            match rt.block_on(vipwarden::daemon::run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
