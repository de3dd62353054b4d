//! Active checks: tcp, http(s), exec, and local-state checks: listener (sock_diag), process
//! (pidfd), unit (systemd over D-Bus).
//!
//! A [`Prober`] is built once per configured check (it holds the parsed URL and the TLS client
//! config, the netlink socket, the pidfd) and probes on demand; [`spawn_checks`] runs one task per
//! check on a fixed schedule, re-probes at once when the check reports an event (a process exit),
//! and sends each result as a [`CheckSample`]. Probes never panic on what the network, the kernel
//! or a child process does, and never outlive `timeout`: every failure becomes `ok: false` with a
//! reason.

mod detail;
mod exec;
mod http;
mod listener;
mod net;
mod process;
mod schedule;
mod setup;
mod spec;
mod tcp;
mod tls;
mod unit;
pub(crate) mod url;

#[cfg(test)]
mod testutil;

use std::time::{Duration, Instant};

pub use schedule::spawn_checks;
pub use spec::{check_target, CheckConfig, CheckKind, HttpCheck};
// For doctor and probe: fetch a server's certificate the way https checks connect.
pub use setup::SetupError;
pub use tls::TlsSetupError;
pub(crate) use tls::{client_config as tls_client_config, server_name as tls_server_name};
pub use url::UrlError;

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub ok: bool,
    /// Human-readable reason, e.g. `HTTP 200 in 3.1 ms` or `connect refused`.
    pub detail: String,
    /// Wall time the probe took (at most about the check's timeout).
    pub elapsed: Duration,
    /// The failure is a fact the kernel or systemd reported (process exited, listener gone,
    /// unit failed or inactive) and the check trusts such facts (`definitive_fall`): it takes
    /// the check down without `fall` confirmations. Always false on a pass.
    pub definitive: bool,
}

/// Why a probe failed, and whether that is a fact rather than a probe's noise.
#[derive(Debug)]
pub(crate) struct Failure {
    detail: String,
    definitive: bool,
}

impl Failure {
    /// A failure the checked thing's own state reports (not a timeout, not a query error).
    fn definitive(detail: String) -> Failure {
        Failure {
            detail,
            definitive: true,
        }
    }
}

impl From<String> for Failure {
    fn from(detail: String) -> Failure {
        Failure {
            detail,
            definitive: false,
        }
    }
}

/// One probe result of one check, as sent by [`spawn_checks`].
#[derive(Clone, Debug)]
pub struct CheckSample {
    /// Index into the configured checks.
    pub check: usize,
    pub result: ProbeResult,
    /// When the probe finished.
    pub at: Instant,
}

/// A check ready to probe: everything that can be prepared once (URL, TLS roots) is.
pub struct Prober {
    timeout: Duration,
    /// Trust definitive failures (`definitive_fall`).
    definitive_fall: bool,
    kind: Kind,
}

enum Kind {
    Tcp(tcp::TcpProbe),
    Http(Box<http::HttpProbe>),
    Exec(exec::ExecProbe),
    Listener(listener::ListenerProbe),
    Process(process::ProcessProbe),
    Unit(unit::UnitProbe),
}

impl Prober {
    /// Prepares `check`. Fails on what would make every probe fail (bad URL, unreadable
    /// `ca_file`, no netlink), with the reason to report. Must be called inside a tokio runtime.
    pub fn new(check: &CheckConfig) -> Result<Prober, SetupError> {
        let kind = match &check.kind {
            CheckKind::Tcp { target } => Kind::Tcp(tcp::TcpProbe::new(*target, check)),
            CheckKind::Http(h) => Kind::Http(Box::new(http::HttpProbe::new(h, check)?)),
            CheckKind::Exec { command } => {
                if check.source.is_some() || check.interface.is_some() {
                    // A command opens its own sockets; we cannot bind them for it.
                    tracing::warn!(check = %check.name, "source/interface do not apply to exec checks; ignored");
                }
                Kind::Exec(exec::ExecProbe::new(command)?)
            }
            CheckKind::Listener { address, port } => {
                if let Some(w) = listener::not_local_warning(check) {
                    tracing::warn!(check = %check.name, "{w}");
                }
                Kind::Listener(listener::ListenerProbe::new(*address, *port)?)
            }
            CheckKind::Process { pid_file } => {
                Kind::Process(process::ProcessProbe::new(pid_file.clone()))
            }
            CheckKind::Unit { unit } => {
                Kind::Unit(unit::UnitProbe::new(unit.clone(), unit::Bus::System))
            }
        };
        Ok(Prober {
            timeout: check.timeout,
            definitive_fall: check.definitive_fall,
            kind,
        })
    }

    /// Runs one probe, bounded by the check's timeout.
    pub async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let outcome = match &self.kind {
            // exec enforces the timeout itself: it must kill the process group, not just stop
            // waiting.
            Kind::Exec(p) => p.run(self.timeout).await.map_err(Failure::from),
            Kind::Tcp(p) => self.bounded(p.run(start)).await,
            Kind::Http(p) => self.bounded(p.run(start)).await,
            Kind::Listener(p) => self.bounded(p.run()).await,
            Kind::Process(p) => self.bounded(p.run()).await,
            Kind::Unit(p) => self.bounded(p.run()).await,
        };
        let elapsed = start.elapsed();
        match outcome {
            Ok(detail) => ProbeResult {
                ok: true,
                detail,
                elapsed,
                definitive: false,
            },
            Err(f) => ProbeResult {
                ok: false,
                detail: f.detail,
                elapsed,
                definitive: f.definitive && self.definitive_fall,
            },
        }
    }

    /// Resolves when the checked thing changed on its own (a watched process exited, a listener
    /// closed, a unit changed state), so the scheduler probes at once instead of at the next
    /// interval. Pending forever for checks that only learn by probing. Cancel-safe.
    pub async fn event(&self) {
        match &self.kind {
            Kind::Process(p) => p.event().await,
            Kind::Unit(p) => p.event().await,
            Kind::Listener(p) => p.event().await,
            _ => std::future::pending().await,
        }
    }

    /// A timeout is never definitive: it says nothing certain about the checked thing.
    async fn bounded<E: Into<Failure>>(
        &self,
        fut: impl std::future::Future<Output = Result<String, E>>,
    ) -> Result<String, Failure> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(detail::timed_out(self.timeout).into()),
        }
    }
}

/// Whether `ip` is an address of this host now (binding to it works; loopback and wildcard
/// are). The one test `check-config`, `probe` and the listener warning share, so they agree on
/// what is local.
pub fn on_this_host(ip: std::net::IpAddr) -> bool {
    listener::is_local(ip)
}

/// Warnings about checks that are valid but cannot pass on this node (a listener address that is
/// not local), for `check-config`.
pub fn config_warnings(checks: &[CheckConfig]) -> Vec<String> {
    checks
        .iter()
        .filter_map(listener::not_local_warning)
        .collect()
}

/// Runs one probe of `check`, enforcing `check.timeout`; never panics, never hangs past the
/// timeout. Builds a fresh [`Prober`] each call: the daemon keeps one per check instead.
pub async fn probe_once(check: &CheckConfig) -> ProbeResult {
    let start = Instant::now();
    match Prober::new(check) {
        Ok(p) => p.probe().await,
        Err(e) => ProbeResult {
            ok: false,
            detail: e.to_string(),
            elapsed: start.elapsed(),
            definitive: false,
        },
    }
}
