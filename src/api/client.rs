//! The CLI's side of the API: `vipwarden status|events|drain|undrain` over a plain HTTP/1
//! connection to the local daemon. Each function returns the text to print; an API refusal
//! (401, 404...) comes back as an error carrying the daemon's message.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::render;
use crate::control::{EventView, StatusView, VipState};

/// Where the daemon's API listens and the token for changes (from the config's `api:` section).
#[derive(Clone, Debug)]
pub struct ApiTarget {
    pub addr: SocketAddr,
    pub token: Option<String>,
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
    let what = format!("{method} http://{}{path}", api.addr);
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
        msg.push_str(" (this command found no token: it reads api.token_file from the config; run it as a user who can read that file)");
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
        req = req.header(AUTHORIZATION, format!("Bearer {token}"));
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
