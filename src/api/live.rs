//! The API's lifecycle in the daemon: loads the token, binds the listener, and on every config
//! reload (SIGHUP) re-reads the token file and moves the listener when `api.listen` changed, so
//! the drain lever never needs a restart. Logs and `/v1/status` errors say what is in force.
//!
//! Owns only the API's own state; it learns of reloads through a watch channel the daemon feeds.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::auth::{load_token, Credentials};
use super::server::ApiServer;
use crate::config::ApiConfig;
use crate::control::ControlHandle;

/// One running listener.
struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

/// The API as the daemon runs it. `updates` carries the `api:` section of every successfully
/// reloaded config (sent even when unchanged: the token file's contents may have changed).
pub async fn supervise(
    initial: ApiConfig,
    mut updates: watch::Receiver<ApiConfig>,
    handle: ControlHandle,
    stop: CancellationToken,
) {
    let (creds_tx, creds_rx) = watch::channel(Arc::new(Credentials::default()));
    let mut sup = Supervisor {
        config: initial.clone(),
        creds: Credentials::default(),
        creds_tx,
        creds_rx,
        handle,
        running: None,
        listen_problem: None,
        tls_problem: None,
    };
    sup.apply_token(&initial, false).await;
    sup.apply_tls(&initial, false).await;
    sup.creds.for_reads = initial.read_token;
    sup.publish();
    sup.apply_listen(initial.listen, false).await;
    sup.publish();
    updates.mark_unchanged();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            r = updates.changed() => {
                if r.is_err() {
                    // The daemon is gone; keep serving until told to stop.
                    stop.cancelled().await;
                    break;
                }
                let cfg = updates.borrow_and_update().clone();
                sup.reload(cfg).await;
            }
        }
    }
    if let Some(r) = sup.running.take() {
        r.stop().await;
    }
}

struct Supervisor {
    config: ApiConfig,
    creds: Credentials,
    creds_tx: watch::Sender<Arc<Credentials>>,
    creds_rx: watch::Receiver<Arc<Credentials>>,
    handle: ControlHandle,
    running: Option<Running>,
    listen_problem: Option<String>,
    tls_problem: Option<String>,
}

impl Supervisor {
    async fn reload(&mut self, cfg: ApiConfig) {
        self.apply_token(&cfg, true).await;
        self.apply_tls(&cfg, true).await;
        if cfg.read_token != self.creds.for_reads {
            info!(
                "SIGHUP: API reads (status, events, metrics) {} the token",
                if cfg.read_token {
                    "now need"
                } else {
                    "no longer need"
                }
            );
        }
        self.creds.for_reads = cfg.read_token;
        // New rules are in force before the listener moves.
        self.publish();
        let moved = cfg.listen != self.config.listen;
        if moved || self.running.is_none() {
            self.apply_listen(cfg.listen, true).await;
        }
        self.config = cfg;
        self.publish();
    }

    /// Re-reads the token file. A refused file never replaces a working token: a planted or
    /// half-written file must not lock the operator out, and the log says the old one stays.
    async fn apply_token(&mut self, cfg: &ApiConfig, reload: bool) {
        let when = if reload { "SIGHUP: " } else { "" };
        let Some(path) = cfg.token_file.clone() else {
            if self.creds.token.is_some() {
                warn!("{when}api.token_file removed: drain/undrain over the API are now refused");
            }
            self.creds.token = None;
            self.creds.refused = None;
            return;
        };
        let shown = path.display().to_string();
        let loaded = read_blocking(&path).await;
        match loaded {
            Ok(token) => {
                let changed = self.creds.token.as_ref().map(|t| t.as_str()) != Some(token.as_str());
                match (reload, changed, self.creds.token.is_some()) {
                    (false, _, _) => info!("API token loaded from {shown}"),
                    (true, false, _) => info!("SIGHUP: API token in {shown} unchanged"),
                    (true, true, true) => info!(
                        "SIGHUP: API token replaced from {shown}; the previous token no longer works"
                    ),
                    (true, true, false) => info!(
                        "SIGHUP: API token loaded from {shown}; drain/undrain over the API are enabled"
                    ),
                }
                self.creds.token = Some(token);
                self.creds.refused = None;
            }
            Err(e) => {
                if self.creds.token.is_some() {
                    warn!(
                        "{when}API token file refused: {e}; the previous token stays in force \
                         until the file is fixed and the daemon reloaded"
                    );
                    self.creds.refused = Some(format!("{e} (the previous token stays in force)"));
                } else {
                    warn!(
                        "{when}API token not loaded: {e}; drain/undrain over the API are refused \
                         until the file is fixed and the daemon reloaded (SIGHUP)"
                    );
                    self.creds.refused = Some(e.to_string());
                }
            }
        }
    }

    /// Loads (or re-loads: certificate rotation) `api.tls`. A certificate that fails to load
    /// never downgrades the API to clear text: the previous one stays, or no connection is served.
    async fn apply_tls(&mut self, cfg: &ApiConfig, reload: bool) {
        let when = if reload { "SIGHUP: " } else { "" };
        self.tls_problem = None;
        let Some(files) = cfg.tls.clone() else {
            if self.creds.tls_required {
                info!("{when}api.tls removed: the API now serves plain HTTP (loopback only)");
            }
            self.creds.tls_required = false;
            self.creds.tls = None;
            return;
        };
        self.creds.tls_required = true;
        let (c, k) = (files.cert_file.clone(), files.key_file.clone());
        // Only logged and shown in status: the Display text is all that is needed here.
        let loaded = match tokio::task::spawn_blocking(move || super::tls::acceptor(&c, &k)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("loading api.tls failed: {e}")),
        };
        match loaded {
            Ok(acceptor) => {
                info!(
                    "{when}API TLS certificate loaded from {}",
                    files.cert_file.display()
                );
                self.creds.tls = Some(acceptor);
            }
            Err(e) if self.creds.tls.is_some() => {
                let msg = format!("{e}; the previous certificate stays in use");
                warn!("{when}{msg}");
                self.tls_problem = Some(msg);
            }
            Err(e) => {
                let msg = format!(
                    "{e}; the API refuses every connection (never clear text) until api.tls is fixed and the daemon reloaded"
                );
                warn!("{when}{msg}");
                self.tls_problem = Some(msg);
            }
        }
    }

    /// Binds `listen`; on success the old listener (if any) stops after its in-flight requests.
    /// On failure the old listener keeps serving.
    async fn apply_listen(&mut self, listen: SocketAddr, reload: bool) {
        let when = if reload { "SIGHUP: " } else { "" };
        let mut bound = ApiServer::bind(listen).await;
        // At start, the process this one replaced (in-place upgrade) may hold the port for a few
        // more milliseconds: try again for a while before running without the API.
        let until = tokio::time::Instant::now() + Duration::from_secs(3);
        while !reload && bound.is_err() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(25)).await;
            bound = ApiServer::bind(listen).await;
        }
        if bound.is_err() {
            // Same port on a wider address (127.0.0.1:9180 -> 0.0.0.0:9180) collides with our own
            // listener: free it, try again, and go back to it if the new address still fails.
            if let Some(old) = self.running.take() {
                let old_addr = old.addr;
                old.stop().await;
                bound = ApiServer::bind(listen).await;
                if bound.is_err() {
                    match ApiServer::bind(old_addr).await {
                        Ok(server) => self.start(server),
                        Err(e) => warn!("{when}API cannot listen on {old_addr} again: {e:#}"),
                    }
                }
            }
        }
        match bound {
            Ok(server) => {
                let new_addr = server.local_addr();
                if let Some(old) = self.running.take() {
                    info!("{when}API moved from {} to {new_addr}", old.addr);
                    old.stop().await;
                }
                self.start(server);
                self.listen_problem = None;
            }
            Err(e) => {
                let msg = match &self.running {
                    Some(r) => format!(
                        "{e:#}; the API keeps listening on {} (fix api.listen and reload)",
                        r.addr
                    ),
                    None => format!(
                        "{e:#}; running without the API until api.listen is fixed and the daemon reloaded (SIGHUP)"
                    ),
                };
                warn!("{when}{msg}");
                self.listen_problem = Some(msg);
            }
        }
    }

    fn start(&mut self, server: ApiServer) {
        let addr = server.local_addr();
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(server.run(self.creds_rx.clone(), self.handle.clone(), stop.clone()));
        self.running = Some(Running { addr, stop, task });
    }

    fn publish(&mut self) {
        let mut problems = Vec::new();
        if let Some(r) = &self.creds.refused {
            problems.push(format!("API: {r}"));
        }
        if let Some(p) = &self.listen_problem {
            problems.push(format!("API: {p}"));
        }
        if let Some(p) = &self.tls_problem {
            problems.push(format!("API: {p}"));
        }
        self.creds.problems = problems;
        self.creds_tx.send_replace(Arc::new(self.creds.clone()));
    }
}

/// The token file is read off the runtime thread (the file system may be slow).
async fn read_blocking(path: &Path) -> Result<zeroize::Zeroizing<String>, super::auth::TokenError> {
    let p = path.to_path_buf();
    match tokio::task::spawn_blocking(move || load_token(&p)).await {
        Ok(r) => r,
        Err(e) => Err(super::auth::TokenError {
            kind: super::auth::TokenErrorKind::Invalid,
            message: format!("api token file {}: reading it failed: {e}", path.display()),
        }),
    }
}
