//! The CLI's side of the API: `vipwarden status|events|drain|undrain` over a plain HTTP/1
//! connection to the local daemon. Each function returns the text to print; an API refusal
//! (401, 404...) comes back as an error carrying the daemon's message.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio_rustls::TlsConnector;

use super::auth::{load_token_for_client, TokenError, TokenErrorKind};
use super::render;
use crate::control::{EventView, StatusView, VipState};

/// Where the daemon's API listens and the token for changes (from the config's `api:` section).
#[derive(Clone)]
pub struct ApiTarget {
    pub addr: SocketAddr,
    pub token: Option<zeroize::Zeroizing<String>>,
    /// Why `token` is None although a token file is configured (shown when the daemon refuses).
    pub token_error: Option<TokenError>,
    /// `api.tls`: connect with TLS, trusting exactly `api.tls.cert_file`; Err: why not possible.
    /// (Arc: the target is cloned; io errors are not.)
    pub tls: Option<Result<TlsConnector, std::sync::Arc<super::tls::TlsError>>>,
}

impl ApiTarget {
    /// The target for `api.listen`, with the token read from `token_file` (if any) by the same
    /// rules as the daemon's, except the owner (the CLI does not know the daemon's user).
    pub fn from_config(addr: SocketAddr, token_file: Option<&Path>) -> ApiTarget {
        let (token, token_error) = match token_file.map(load_token_for_client) {
            None => (None, None),
            Some(Ok(t)) => (Some(t), None),
            Some(Err(e)) => (None, Some(e)),
        };
        ApiTarget {
            addr,
            token,
            token_error,
            tls: None,
        }
    }

    /// The target for an `api:` section: address, token, TLS.
    pub fn from_api_config(api: &crate::config::ApiConfig) -> ApiTarget {
        let mut t = ApiTarget::from_config(api.listen, api.token_file.as_deref());
        t.tls = api
            .tls
            .as_ref()
            .map(|tls| super::tls::pinned_connector(&tls.cert_file).map_err(std::sync::Arc::new));
        t
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Connect plus request plus response; the daemon answers from memory, so this is generous.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A status of a large node is tens of KiB; more than this is not our daemon.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// `vipwarden status`: peers, VIPs with their checks and conditions, errors.
pub async fn status(api: &ApiTarget, json: bool) -> anyhow::Result<String> {
    let body = get(api, "/v1/status").await?;
    if json {
        return raw(body);
    }
    let view: StatusView = decode(&body, "/v1/status")?;
    Ok(render::status(&view, unix_now()))
}

/// `vipwarden status --check`: (exit code, one line). 0: every VIP announced; 1: some VIP is
/// not (each named with its state and reason). Errors (daemon unreachable, refused) are the
/// caller's exit 2.
pub async fn check(api: &ApiTarget) -> anyhow::Result<(u8, String)> {
    let body = get(api, "/v1/status").await?;
    let view: StatusView = decode(&body, "/v1/status")?;
    Ok(render::check_line(&view))
}

/// `vipwarden upgrade`: SIGUSR2 to the daemon (its PID from the status), then waits until a new
/// process that came from it answers, or the old one reports the upgrade failed, or `timeout`.
pub async fn upgrade(api: &ApiTarget, timeout: Duration, json: bool) -> anyhow::Result<String> {
    let body = get(api, "/v1/status").await?;
    let before: StatusView = decode(&body, "/v1/status")?;
    if before.pid == 0 {
        bail!("the daemon does not report its PID: it is older than the in-place upgrade; restart it instead");
    }
    let old = before.pid;
    let t0 = std::time::Instant::now();
    let sent_ms = unix_now_ms();
    crate::sys::handover::signal_upgrade(old)
        .with_context(|| format!("cannot send SIGUSR2 to the daemon (PID {old})"))?;
    loop {
        if t0.elapsed() > timeout {
            bail!("no new process answered within {timeout:?}; PID {old} may still serve: see its log");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The API is down for a moment while the new process binds it.
        let Ok(body) = get(api, "/v1/status").await else {
            continue;
        };
        let Ok(v) = decode::<StatusView>(&body, "/v1/status") else {
            continue;
        };
        if v.pid == old {
            if let Some(f) = v
                .upgrade_failed
                .as_ref()
                .filter(|f| f.at_ms + 1000 >= sent_ms)
            {
                bail!(
                    "the upgrade did not take place; PID {old} serves on: {}",
                    f.reason
                );
            }
            continue;
        }
        let Some(u) = v.upgraded.filter(|u| u.from_pid == old) else {
            bail!(
                "PID {} answers now, but it did not take over from PID {old}",
                v.pid
            );
        };
        if json {
            return Ok(serde_json::to_string_pretty(&u)?);
        }
        return Ok(format!(
            "upgraded: PID {old} (vipwarden {}) -> PID {} (vipwarden {}): hand-over {} ms (signal to ready), API back after {} ms\n\
             handed over: {} BGP sessions ({}), the state of {} checks and {} VIPs\n",
            u.from_version,
            v.pid,
            v.version,
            u.handover_ms,
            t0.elapsed().as_millis(),
            u.sessions.len(),
            if u.sessions.is_empty() { "none".to_string() } else { u.sessions.join(", ") },
            u.checks,
            u.vips
        ));
    }
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `vipwarden events [--limit N]`: recent decisions, newest last.
pub async fn events(api: &ApiTarget, limit: Option<usize>, json: bool) -> anyhow::Result<String> {
    let path = match limit {
        Some(n) => format!("/v1/events?limit={n}"),
        None => "/v1/events".to_string(),
    };
    let body = get(api, &path).await?;
    if json {
        return raw(body);
    }
    let view: Vec<EventView> = decode(&body, "/v1/events")?;
    Ok(render::events(&view))
}

/// `vipwarden drain VIP|--all [--reason TEXT]`; `vip` None drains every VIP.
pub async fn drain(
    api: &ApiTarget,
    vip: Option<&str>,
    reason: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    drain_with(api, vip, reason, false, json).await
}

/// `vipwarden drain ... [--force]`: `force` drains even where the fleet guard refuses.
pub async fn drain_with(
    api: &ApiTarget,
    vip: Option<&str>,
    reason: Option<&str>,
    force: bool,
    json: bool,
) -> anyhow::Result<String> {
    command(api, "drain", vip, reason, force, json).await
}

/// `vipwarden drain --wait`: polls the status until the VIP (or every VIP) has left `draining`,
/// i.e. its route is out and, for a connection-aware drain, its connections are gone or
/// `drain_period` ran out; returns one line per VIP with the reason (which says which).
pub async fn wait_drained(api: &ApiTarget, vip: Option<&str>) -> anyhow::Result<String> {
    loop {
        let body = get(api, "/v1/status").await?;
        let view: StatusView = decode(&body, "/v1/status")?;
        let targets: Vec<_> = view
            .vips
            .iter()
            .filter(|v| vip.is_none_or(|n| *v.name == *n))
            .collect();
        if targets.is_empty() {
            anyhow::bail!("no VIP {} in the daemon's status", vip.unwrap_or("at all"));
        }
        if let Some(v) = targets.iter().find(|v| v.state == VipState::Draining) {
            if let Some(n) = v.drain_connections() {
                let silent = v.drain_connections_silent().unwrap_or(0);
                tracing::debug!(
                    "{}: draining, {n} connections left ({silent} silent)",
                    v.name
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return Ok(targets
            .iter()
            .map(|v| format!("{} {}: {}\n", v.name, v.state, v.reason))
            .collect());
    }
}

/// `vipwarden undrain VIP|--all [--reason TEXT]`; `vip` None undrains every VIP.
pub async fn undrain(
    api: &ApiTarget,
    vip: Option<&str>,
    reason: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    command(api, "undrain", vip, reason, false, json).await
}

#[derive(Deserialize)]
struct Changed {
    vip: String,
    state: VipState,
}

#[derive(Deserialize)]
struct CommandResponse {
    changed: Vec<Changed>,
}

async fn command(
    api: &ApiTarget,
    verb: &str,
    vip: Option<&str>,
    reason: Option<&str>,
    force: bool,
    json: bool,
) -> anyhow::Result<String> {
    let path = match vip {
        Some(v) => format!("/v1/vips/{}/{verb}", encode_segment(v)),
        None => format!("/v1/vips/{verb}"),
    };
    let body = match (reason, force) {
        (Some(r), false) => serde_json::to_vec(&serde_json::json!({ "reason": r }))?,
        (Some(r), true) => serde_json::to_vec(&serde_json::json!({ "reason": r, "force": true }))?,
        (None, true) => serde_json::to_vec(&serde_json::json!({ "force": true }))?,
        (None, false) => Vec::new(),
    };
    let resp = send(api, Method::POST, &path, body).await?;
    if json {
        return raw(resp);
    }
    let parsed: CommandResponse = decode(&resp, &path)?;
    let changed: Vec<(String, VipState)> = parsed
        .changed
        .into_iter()
        .map(|c| (c.vip, c.state))
        .collect();
    Ok(render::outcome(verb, &changed))
}

async fn get(api: &ApiTarget, path: &str) -> anyhow::Result<Bytes> {
    send(api, Method::GET, path, Vec::new()).await
}

async fn send(api: &ApiTarget, method: Method, path: &str, body: Vec<u8>) -> anyhow::Result<Bytes> {
    let what = format!("{method} {}://{}{path}", api.scheme(), api.addr);
    let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange(api, method.clone(), path, body))
        .await
        .map_err(|_| anyhow!("{what}: no answer within {TIMEOUT:?}"))?
        .with_context(|| {
            format!(
                "{what} (is the daemon running, and is api.listen {}?)",
                api.addr
            )
        })?;
    if status.is_success() {
        return Ok(bytes);
    }
    bail!("{}", refusal(api, status, &bytes))
}

/// The daemon's error message (`{"error":..,"message":..}`), plus a hint where one helps.
fn refusal(api: &ApiTarget, status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        message: Option<String>,
    }
    let detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.message.unwrap_or(e.error),
        Err(_) => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(300)
            .collect(),
    };
    let mut msg = format!("vipwarden API: {status}: {detail}");
    if status == StatusCode::UNAUTHORIZED && api.token.is_none() {
        msg.push_str(&match &api.token_error {
            None => " (this command sent no token: api.token_file is not set in the config it read)".to_string(),
            Some(e) if e.kind == TokenErrorKind::UnsafeMode => format!(
                " (this command sent no token because the file's mode or owner is unsafe, not because of who you are: {e}; the daemon refuses such a file too, so fix it and reload the daemon)"
            ),
            Some(e) if e.kind == TokenErrorKind::PermissionDenied => format!(
                " (this command sent no token: {e}; run it as root or as a member of the file's group)"
            ),
            Some(e) => format!(" (this command sent no token: {e})"),
        });
    }
    msg
}

async fn exchange(
    api: &ApiTarget,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(api.addr)
        .await
        .context("connect")?;
    match &api.tls {
        None => exchange_on(stream, api, method, path, body).await,
        Some(Err(e)) => bail!("api.tls: {e}"),
        Some(Ok(connector)) => {
            let tls = connector
                .connect(super::tls::sni(), stream)
                .await
                .context("TLS handshake")?;
            exchange_on(tls, api, method, path, body).await
        }
    }
}

async fn exchange_on<S>(
    stream: S,
    api: &ApiTarget,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<(StatusCode, Bytes)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    // The connection future does the I/O; it ends when the response is read and sender dropped.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, api.addr.to_string())
        .header(
            USER_AGENT,
            concat!("vipwarden-cli/", env!("CARGO_PKG_VERSION")),
        );
    if !body.is_empty() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    if let Some(token) = &api.token {
        req = req.header(AUTHORIZATION, format!("Bearer {}", token.as_str()));
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .context("building the request")?;
    let resp = sender
        .send_request(req)
        .await
        .context("sending the request")?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the response: {e}"))?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok((status, bytes))
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8], path: &str) -> anyhow::Result<T> {
    serde_json::from_slice(body)
        .with_context(|| format!("unexpected answer from {path} (daemon and CLI versions differ?)"))
}

fn raw(body: Bytes) -> anyhow::Result<String> {
    let mut s = String::from_utf8(body.to_vec()).context("API answered with non-UTF-8 JSON")?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
