//! What one active check is (target, timing, rise/fall), built by `config` (config -> checks is
//! the allowed direction). Owns these input types only; imports nothing else of the crate but `url`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct CheckConfig {
    pub name: Arc<str>,
    pub kind: CheckKind,
    /// Bind the probe's source address (return-path testing).
    pub source: Option<IpAddr>,
    /// Bind the probe to an interface (SO_BINDTODEVICE, Linux).
    pub interface: Option<String>,
    pub interval: Duration,
    /// Probe spacing between the first failure and `fall`, and between the first pass and
    /// `rise`, so a real change is confirmed quickly (default interval/5).
    pub fast_interval: Duration,
    pub timeout: Duration,
    /// Consecutive passes before the check is up.
    pub rise: u32,
    /// Consecutive failures before the check is down.
    pub fall: u32,
    /// A definitive failure (process exit, listener gone, unit failed/inactive: facts the kernel
    /// or systemd report, not a probe's noise) takes the check down at once instead of counting
    /// toward `fall`. Only listener, process and unit checks have such failures.
    pub definitive_fall: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    Tcp {
        target: SocketAddr,
    },
    Http(HttpCheck),
    Exec {
        command: Vec<String>,
    },
    /// A LISTEN socket on `port` (and `address`, or a wildcard covering it) exists.
    Listener {
        address: Option<IpAddr>,
        port: u16,
    },
    /// The process named by `pid_file` runs; its exit is an event (pidfd).
    Process {
        pid_file: PathBuf,
    },
    /// A systemd unit's ActiveState is `active` (D-Bus).
    Unit {
        unit: String,
    },
}

impl CheckKind {
    /// The `type:` this kind was configured as.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http(h) if h.tls => "https",
            CheckKind::Http(_) => "http",
            CheckKind::Exec { .. } => "exec",
            CheckKind::Listener { .. } => "listener",
            CheckKind::Process { .. } => "process",
            CheckKind::Unit { .. } => "unit",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpCheck {
    /// Full URL; its scheme says http or https.
    pub url: String,
    pub tls: bool,
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
    /// Host header override (default: the URL's authority).
    pub host: Option<String>,
    /// Extra CA bundle (PEM) for https.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (https).
    pub insecure: bool,
}

/// The address and port a tcp or http(s) check connects to, when its target is an IP literal.
pub fn check_target(ch: &CheckConfig) -> Option<(IpAddr, u16)> {
    match &ch.kind {
        CheckKind::Tcp { target } => Some((target.ip(), target.port())),
        CheckKind::Http(h) => {
            let t = super::url::parse(&h.url).ok()?;
            Some((t.host.parse().ok()?, t.port))
        }
        // These connect nowhere: listener/process/unit read local kernel or systemd state.
        CheckKind::Exec { .. }
        | CheckKind::Listener { .. }
        | CheckKind::Process { .. }
        | CheckKind::Unit { .. } => None,
    }
}
