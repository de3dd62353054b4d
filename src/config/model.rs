//! Validated configuration. Everything here has passed `config::load`: names are unique, references
//! resolve, prefixes are clean. Code downstream never re-validates.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bgp::PeerSpec;
pub use crate::checks::{CheckConfig, CheckKind, HttpCheck};
use crate::engine::{CheckSpec, VipSpec};
use crate::signals::{AccessLogConfig, ConntrackConfig, PrometheusConfig, TcpStatsConfig};

#[derive(Clone, Debug)]
pub struct Config {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    pub peers: Vec<PeerConfig>,
    pub checks: Vec<CheckConfig>,
    pub vips: Vec<VipConfig>,
    pub signals: Vec<SignalConfig>,
    pub api: ApiConfig,
    /// Where maintenance state survives restarts.
    pub state_dir: PathBuf,
    /// While it exists, every VIP is in maintenance.
    pub disable_file: Option<PathBuf>,
    /// Run on every VIP state change (argv, no shell).
    pub on_change: Option<Vec<String>>,
    pub on_change_timeout: Duration,
    /// Fleet view and guard settings; Some when a `fleet:` section or any VIP guard exists.
    pub fleet: Option<FleetConfig>,
    /// What loads but cannot work as written (e.g. a condition that can never trip), located
    /// like errors. `check-config` prints them; the daemon logs them at start and on reload.
    pub warnings: Vec<super::ConfigError>,
}

/// `fleet:`: how this node marks routes it keeps only for reachability, and how long a leaving
/// VIP stays marked before it counts the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    pub unhealthy_community: crate::route::Community,
    pub settle: Duration,
    /// How long a ToR's count must say so before a guarded VIP comes back there (fail open) or
    /// leaves again.
    pub fail_open_dwell: Duration,
    /// How long a planned stop waits for held VIPs before it withdraws them anyway.
    pub stop_hold_limit: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Bearer token for mutating requests; without it they are refused.
    pub token_file: Option<PathBuf>,
    /// Reads (status, events, metrics) need the token too. Default: true off loopback.
    pub read_token: bool,
    /// HTTPS for the API; required off loopback, so the token never crosses a network in clear.
    pub tls: Option<ApiTls>,
}

impl ApiConfig {
    /// The defaults: loopback, no token, plain HTTP.
    pub fn loopback_default() -> ApiConfig {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9180)),
            token_file: None,
            read_token: false,
            tls: None,
        }
    }

    /// Whether `listen` only accepts connections from this host (::ffff:127.0.0.1 included).
    pub fn listen_is_loopback(&self) -> bool {
        match self.listen.ip() {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Everything the BGP session needs (name, addresses, ASN, hold time, auth, GTSM).
    pub spec: PeerSpec,
    /// BFD with the router (RFC 5880/5881); None: off.
    pub bfd: Option<BfdConfig>,
}

/// `peers[].bfd`: our Desired Min TX, Required Min RX and Detect Mult; authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdConfig {
    pub min_tx: Duration,
    pub min_rx: Duration,
    pub multiplier: u8,
    /// `peers[].bfd.auth`; None: no authentication.
    pub auth: Option<BfdAuth>,
}

/// `peers[].bfd.auth`: RFC 5880 6.7.4 Keyed SHA1 (meticulous or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdAuth {
    pub algorithm: crate::bfd::AuthType,
    pub key_id: u8,
    /// 1-20 bytes (the Auth Key/Digest field).
    pub key: crate::bgp::transport::Secret,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VipConfig {
    /// What the engine decides with (name, prefixes, checks, policy); the engine holds the same.
    pub spec: Arc<VipSpec>,
    /// Boxed: set on few VIPs, and 100k VIPs would carry 48 empty bytes each.
    pub hooks: Option<Box<VipHooks>>,
}

/// A VIP's own disable file and change hook.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VipHooks {
    /// While it exists, this VIP is in maintenance.
    pub disable_file: Option<PathBuf>,
    /// Run when this VIP changes state, after the global hook.
    pub on_change: Option<Vec<String>>,
}

impl VipConfig {
    pub fn disable_file(&self) -> Option<&PathBuf> {
        self.hooks.as_ref()?.disable_file.as_ref()
    }

    pub fn on_change(&self) -> Option<&Vec<String>> {
        self.hooks.as_ref()?.on_change.as_ref()
    }
}

impl CheckConfig {
    /// The engine's view of this check.
    pub fn spec(&self) -> CheckSpec {
        CheckSpec {
            name: self.name.clone(),
            kind: self.kind.type_name(),
            rise: self.rise,
            fall: self.fall,
        }
    }
}

impl Config {
    /// The engine's inputs for this configuration.
    pub fn check_specs(&self) -> Vec<CheckSpec> {
        self.checks.iter().map(CheckConfig::spec).collect()
    }

    pub fn vip_specs(&self) -> impl Iterator<Item = &Arc<VipSpec>> {
        self.vips.iter().map(|v| &v.spec)
    }

    /// An empty fleet view for the engine when `fleet:` or a guard is configured.
    pub fn fleet_view(&self) -> Option<crate::fleet::FleetView> {
        let f = self.fleet.as_ref()?;
        Some(crate::fleet::FleetView::new(
            self.router_id,
            self.local_as,
            f.unhealthy_community,
            f.settle,
            self.vips
                .iter()
                .flat_map(|v| v.spec.prefixes.iter().copied()),
        ))
    }

    /// The engine for this configuration, with its fleet view.
    pub fn engine(&self, now: std::time::Instant) -> crate::engine::Engine {
        let mut e = crate::engine::Engine::new(&self.check_specs(), self.vip_specs(), now);
        if let Some(v) = self.fleet_view() {
            e.set_fleet(v);
        }
        e
    }
}

/// A passive signal source (`signals:`); its values are named `NAME.VALUE` in conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalConfig {
    pub name: Arc<str>,
    pub kind: SignalKind,
}

/// Built once at load and never moved in a hot path, so variant size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum SignalKind {
    AccessLog(AccessLogConfig),
    TcpStats(TcpStatsConfig),
    Conntrack(ConntrackConfig),
    Prometheus(PrometheusConfig),
    Handshakes(crate::signals::handshakes::HandshakesConfig),
}

impl SignalKind {
    /// How long a freshly started source takes to have a full window of data again.
    pub fn warm_up(&self) -> Duration {
        match self {
            SignalKind::AccessLog(c) => c.window,
            SignalKind::TcpStats(c) => c.window + c.interval,
            // A rate needs two samples.
            SignalKind::Conntrack(c) => c.interval * 2,
            SignalKind::Prometheus(c) => c.window + c.interval + c.timeout,
            SignalKind::Handshakes(c) => c.window,
        }
    }
}

impl Config {
    /// The longest `warm_up` of the configured signals (zero without signals).
    pub fn signals_warm_up(&self) -> Duration {
        (self.signals.iter().map(|s| s.kind.warm_up()))
            .max()
            .unwrap_or_default()
    }
}
