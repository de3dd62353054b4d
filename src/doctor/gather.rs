//! The gatherer: asks the host (rtnetlink, sock_diag, /proc, the https checks' servers, the
//! daemon's API) and fills `Facts`. Decides nothing; every failure becomes a reason string in the
//! facts so the evaluator can say what it could not check.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::evaluate::vip_addresses;
use super::facts::{
    ApiError, CertError, CertFact, CheckRun, Conntrack, Facts, Lookup, Outcome, PeerPath,
    RpfSample, Session, Unread,
};
use super::rtnl::Rtnl;
use super::x509::{self, CertInfo};
use crate::checks::check_target;
use crate::config::{CheckKind, Config};
use crate::signals::sockdiag::{SockDiag, TCP_LISTEN};

#[derive(Clone, Debug)]
pub struct Options {
    /// Addresses standing for clients beyond the fabric (replies to them are looked up); empty:
    /// chosen from the route table (`clients::default_clients`).
    pub clients: Vec<IpAddr>,
    /// How long to watch IPReversePathFilter.
    pub rpf_wait: Duration,
    pub proc_root: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // Chosen at gather time: an address only the default route covers. A lookup sends
            // nothing.
            clients: Vec::new(),
            rpf_wait: Duration::from_secs(1),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

fn rtnl_err(e: std::io::Error) -> Unread {
    Unread::Rtnetlink(e.to_string())
}

fn proc_err(e: impl std::fmt::Display) -> Unread {
    Unread::Proc(e.to_string())
}

/// `rt` is the open socket, or why it could not be opened.
fn lookup(rt: &mut Result<Rtnl, String>, dst: IpAddr, src: Option<IpAddr>) -> Lookup {
    let route = match rt {
        Ok(r) => r.route_get(dst, src).map_err(rtnl_err),
        Err(e) => Err(Unread::NoRtnetlink(e.clone())),
    };
    Lookup { dst, src, route }
}

fn read_sysctl(proc_root: &Path, key: &str) -> Result<i64, Unread> {
    let path = proc_root.join("sys").join(key.replace('.', "/"));
    let text = crate::signals::tcp_stats::read_proc(&path).map_err(proc_err)?;
    text.trim()
        .parse()
        .map_err(|_| Unread::Proc(format!("{}: not a number", path.display())))
}

fn rpf_counter(proc_root: &Path) -> Result<i64, Unread> {
    let text =
        crate::signals::tcp_stats::read_proc(&proc_root.join("net/netstat")).map_err(proc_err)?;
    crate::signals::tcp_stats::section(&text, "TcpExt")
        .map_err(proc_err)?
        .into_iter()
        .find(|(n, _)| *n == "IPReversePathFilter")
        .map(|(_, v)| v)
        .ok_or_else(|| Unread::Proc("TcpExt has no IPReversePathFilter".into()))
}

/// Everything that is a blocking syscall or file read.
pub fn gather_host(cfg: &Config, opts: &Options) -> Facts {
    let mut f = Facts::default();
    let vips = vip_addresses(cfg);
    let mut rt = Rtnl::open().map_err(|e| e.to_string());
    match rt.as_mut() {
        Ok(r) => {
            f.links = r.links().unwrap_or_default();
            f.addrs = r.addrs().map_err(rtnl_err);
            f.rules = r.rules().map_err(rtnl_err);
            f.routes = r.routes().map_err(rtnl_err);
        }
        Err(e) => {
            f.addrs = Err(Unread::NoRtnetlink(e.clone()));
            f.rules = Err(Unread::NoRtnetlink(e.clone()));
            f.routes = Err(Unread::NoRtnetlink(e.clone()));
        }
    }
    f.listeners = SockDiag::open()
        .and_then(|mut d| d.sockets(1 << TCP_LISTEN))
        .map_err(|e| Unread::SockDiag(e.to_string()));
    for p in &cfg.peers {
        let session = lookup(&mut rt, p.spec.address, p.spec.local_address);
        let from_vips = vips
            .iter()
            .filter(|v| v.is_ipv4() == p.spec.address.is_ipv4())
            .map(|&v| lookup(&mut rt, p.spec.address, Some(v)))
            .collect();
        f.peers.push(PeerPath {
            name: p.spec.name.to_string(),
            session,
            from_vips,
        });
    }
    let clients = if opts.clients.is_empty() {
        let local: Vec<IpAddr> = f
            .addrs
            .as_ref()
            .map(|a| a.iter().map(|a| a.addr).collect())
            .unwrap_or_default();
        super::clients::default_clients(f.routes.as_deref().ok(), |c| local.contains(&c))
    } else {
        opts.clients.clone()
    };
    for &v in &vips {
        for &c in clients.iter().filter(|c| c.is_ipv4() == v.is_ipv4()) {
            let l = lookup(&mut rt, c, Some(v));
            f.replies.push(l);
        }
    }
    let mut keys = vec!["net.core.somaxconn".to_string()];
    for dev in std::iter::once("all".to_string()).chain(f.links.iter().map(|l| l.name.clone())) {
        for k in ["rp_filter", "arp_ignore", "arp_announce"] {
            keys.push(format!("net.ipv4.conf.{dev}.{k}"));
        }
    }
    f.sysctl = keys
        .into_iter()
        .map(|k| {
            let v = read_sysctl(&opts.proc_root, &k);
            (k, v)
        })
        .collect::<BTreeMap<_, _>>();
    f.rpf_counter = rpf_counter(&opts.proc_root).and_then(|a| {
        let t = std::time::Instant::now();
        std::thread::sleep(opts.rpf_wait);
        let b = rpf_counter(&opts.proc_root)?;
        Ok(RpfSample {
            before: a,
            after: b,
            secs: t.elapsed().as_secs_f64(),
        })
    });
    f.conntrack = crate::signals::conntrack::read(&opts.proc_root)
        .map(|(count, max)| Conntrack { count, max });
    f.now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    f
}

/// The certificate `addr` serves for `sni`, without verifying it (doctor reports on it).
pub async fn fetch_cert(
    addr: SocketAddr,
    sni: &str,
    timeout: Duration,
) -> Result<(CertInfo, String), CertError> {
    let setup = |e: &dyn std::fmt::Display| CertError::Setup(e.to_string());
    let cfg = crate::checks::tls_client_config(None, true).map_err(|e| setup(&e))?;
    let name = crate::checks::tls_server_name(sni).map_err(|e| setup(&e))?;
    let work = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| CertError::Connect {
                addr,
                reason: e.to_string(),
            })?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| CertError::Handshake {
                addr,
                reason: e.to_string(),
            })?;
        let (_, conn) = tls.get_ref();
        let proto = conn
            .protocol_version()
            .map_or_else(|| "?".to_string(), |v| format!("{v:?}"));
        let der = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or(CertError::NoCertificate)?;
        let info = x509::parse(der).ok_or(CertError::NotDer)?;
        Ok((info, proto))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CertError::Timeout {
            addr,
            after: timeout,
        })?
}

/// SNI for an https check: its `host:` override, else the URL's host.
pub fn sni_of(url: &str, host: Option<&str>) -> String {
    host.map(|h| h.split(':').next().unwrap_or(h).to_string())
        .or_else(|| crate::checks::url::parse(url).ok().map(|t| t.host))
        .unwrap_or_default()
}

async fn daemon_status(cfg: &Config) -> Result<crate::control::StatusView, ApiError> {
    // Token and TLS as the CLI uses them (reads may need the token: api.read_token).
    let target = crate::api::client::ApiTarget::from_api_config(&cfg.api);
    let body = tokio::time::timeout(
        Duration::from_secs(3),
        crate::api::client::status(&target, true),
    )
    .await
    .map_err(|_| ApiError::Timeout {
        listen: cfg.api.listen.to_string(),
    })?
    .map_err(|e| ApiError::Unreachable {
        listen: cfg.api.listen.to_string(),
        reason: format!("{e:#}"),
    })?;
    serde_json::from_str(&body).map_err(|e| ApiError::BadStatus(e.to_string()))
}

/// Runs every check but `listener` once, all at the same time, each through the daemon's own
/// prober and so bounded by its timeout (an exec command is killed with its process group):
/// doctor takes as long as the slowest check's timeout, and never hangs on one.
pub async fn run_checks(cfg: &Config) -> Vec<CheckRun> {
    let runs = cfg
        .checks
        .iter()
        .enumerate()
        .filter(|(_, ch)| !matches!(ch.kind, CheckKind::Listener { .. }))
        .map(|(i, ch)| async move {
            let r = crate::checks::probe_once(ch).await;
            let outcome = match (r.ok, r.elapsed >= ch.timeout) {
                (true, _) => Outcome::Pass,
                (false, true) => Outcome::TimedOut,
                (false, false) => Outcome::Fail,
            };
            CheckRun {
                check: i,
                outcome,
                detail: r.detail,
                took: r.elapsed,
            }
        });
    futures_util::future::join_all(runs).await
}

/// Gathers everything: the host part on a blocking thread while the checks run, then
/// certificates and the API.
pub async fn gather(cfg: &Config, opts: &Options) -> Facts {
    let (c, o) = (cfg.clone(), opts.clone());
    // The checks run while the host is asked (which watches IPReversePathFilter for a second).
    let (host, checks) = tokio::join!(
        tokio::task::spawn_blocking(move || gather_host(&c, &o)),
        run_checks(cfg)
    );
    let mut f = host.unwrap_or_default();
    f.checks = checks;
    for ch in &cfg.checks {
        let CheckKind::Http(h) = &ch.kind else {
            continue;
        };
        if !h.tls {
            continue;
        }
        let res = match check_target(ch) {
            Some((ip, port)) => {
                fetch_cert(
                    SocketAddr::new(ip, port),
                    &sni_of(&h.url, h.host.as_deref()),
                    Duration::from_secs(3),
                )
                .await
            }
            None => Err(CertError::NotAnAddress),
        };
        f.certs.push(CertFact {
            check: ch.name.to_string(),
            cert: res.map(|(c, _)| c),
        });
    }
    match daemon_status(cfg).await {
        Ok(view) => {
            f.sessions = Ok(view
                .peers
                .into_iter()
                .map(|p| Session {
                    peer: p.name,
                    state: p.state,
                })
                .collect());
            f.fleet = view
                .vips
                .into_iter()
                .filter_map(|v| Some((v.name.to_string(), v.extra?.fleet?)))
                .collect();
        }
        Err(e) => f.sessions = Err(e),
    }
    f
}
