//! One request in, one response out: routing, auth, body limits and the mapping of daemon
//! answers to HTTP statuses. Nothing here panics on what a client sends.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

use super::auth::{check_bearer, AuthFailure, Credentials};
use super::auth_log::AuthFailures;
use crate::control::{Command, CommandError, CommandOutcome, ControlHandle, StatusView, VipState};

/// Per-request bounds; the server sets them, tests shorten them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestLimits {
    pub max_body_bytes: usize,
    /// Time to receive the whole body once the headers are in.
    pub body_timeout: Duration,
    /// Time for the daemon to take and answer a command.
    pub command_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_body_bytes: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
        }
    }
}

/// Longest accepted drain/undrain reason; it ends up in logs and in `vipwarden status`.
const MAX_REASON_CHARS: usize = 512;

pub(crate) struct Api {
    /// Swapped by the supervisor on SIGHUP; read per request, so a new token works at once.
    pub auth: watch::Receiver<Arc<Credentials>>,
    pub handle: ControlHandle,
    pub limits: RequestLimits,
    /// Failed authentications, for one log line a minute per client address.
    failures: Mutex<AuthFailures>,
}

/// A refusal: status, machine-readable code, human message, optional extra JSON fields/headers.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Vec<(&'static str, Value)>,
    header: Option<(hyper::header::HeaderName, &'static str)>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
            header: None,
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    fn header(mut self, name: hyper::header::HeaderName, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.into());
        for (k, v) in self.extra {
            body.insert(k.into(), v);
        }
        body.insert("message".into(), self.message.into());
        let mut resp = json_response(self.status, &Value::Object(body));
        if let Some((name, value)) = self.header {
            resp.headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        resp
    }
}

fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    // Our own view types always serialize; fall back to a plain 500 rather than panic.
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => {
            tracing::error!("API response did not serialize: {e}");
            let mut resp =
                Response::new(Full::new(Bytes::from_static(b"{\"error\":\"internal\"}\n")));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Status,
    Events,
    Metrics,
    /// `vip` None: every VIP.
    Drain {
        vip: Option<String>,
    },
    Undrain {
        vip: Option<String>,
    },
}

impl Route {
    fn method(&self) -> (Method, &'static str) {
        match self {
            Route::Status | Route::Events | Route::Metrics => (Method::GET, "GET"),
            Route::Drain { .. } | Route::Undrain { .. } => (Method::POST, "POST"),
        }
    }
}

fn route(path: &str) -> Result<Option<Route>, ApiError> {
    let segments: Vec<&str> = path.split('/').collect();
    Ok(Some(match segments.as_slice() {
        ["", "v1", "status"] => Route::Status,
        ["", "v1", "events"] => Route::Events,
        ["", "metrics"] => Route::Metrics,
        ["", "v1", "vips", "drain"] => Route::Drain { vip: None },
        ["", "v1", "vips", "undrain"] => Route::Undrain { vip: None },
        ["", "v1", "vips", name, "drain"] => Route::Drain {
            vip: Some(vip_name(name)?),
        },
        ["", "v1", "vips", name, "undrain"] => Route::Undrain {
            vip: Some(vip_name(name)?),
        },
        _ => return Ok(None),
    }))
}

/// Decodes a percent-encoded path segment into a VIP name.
fn vip_name(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_vip_name",
            format!("VIP name in the path {why}"),
        )
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| bad("has a malformed %-escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).map_err(|_| bad("is not UTF-8"))?;
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if !crate::control::is_valid_name(&name) {
        // No config can hold it, so no VIP has it; and it is never echoed into a log line.
        return Err(bad(
            "is not a valid name (1-64 characters of letters, digits, '-', '_' or '.')",
        ));
    }
    Ok(name)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    reason: Option<String>,
    /// Drain even where the fleet guard refuses.
    force: Option<bool>,
}

#[derive(Serialize)]
struct Changed<'a> {
    vip: &'a str,
    state: VipState,
}

#[derive(Serialize)]
struct CommandResponse<'a> {
    changed: Vec<Changed<'a>>,
}

impl Api {
    pub(crate) fn new(
        auth: watch::Receiver<Arc<Credentials>>,
        handle: ControlHandle,
        limits: RequestLimits,
    ) -> Api {
        Api {
            auth,
            handle,
            limits,
            failures: Mutex::new(AuthFailures::default()),
        }
    }

    /// The request carries the configured bearer token (its connection then keeps its slot).
    pub(crate) fn has_valid_token<B>(&self, req: &Request<B>) -> bool {
        let creds = self.auth.borrow();
        let header = req.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
        check_bearer(creds.token.as_ref().map(|t| t.as_str()), header).is_ok()
    }

    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        match self.dispatch(req, peer).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(client = %peer, status = %e.status, "API request refused: {}", e.message);
                e.into_response()
            }
        }
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let Some(route) = route(req.uri().path())? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such endpoint: {}", req.uri().path()),
            ));
        };
        let (method, allow) = route.method();
        if req.method() != method {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} {} is not allowed; use {allow}",
                    req.method(),
                    req.uri().path()
                ),
            )
            .header(ALLOW, allow));
        }
        let creds = self.auth.borrow().clone();
        if creds.for_reads && route.method().0 == Method::GET {
            self.authorize(&creds, req.headers().get(AUTHORIZATION), peer)?;
        }
        match route {
            Route::Status => {
                let mut status = self.full_status().await?;
                // The API's own problems (token file, listener) belong with the daemon's.
                status.errors.extend(creds.problems.iter().cloned());
                Ok(json_response(StatusCode::OK, &status))
            }
            Route::Events => {
                let limit = events_limit(req.uri().query())?;
                let events = self.handle.events.borrow().clone();
                let skip = limit.map_or(0, |n| events.len().saturating_sub(n));
                Ok(json_response(StatusCode::OK, &events[skip..]))
            }
            Route::Metrics => {
                let format = super::metrics::negotiate(
                    req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()),
                );
                // Without the daemon (stopping), the process and session series still render.
                let status = match self.full_status().await {
                    Ok(s) => s,
                    Err(_) => StatusView::clone(&self.handle.status.borrow()),
                };
                // /proc reads off the runtime thread.
                let process = tokio::task::spawn_blocking(super::procstat::read)
                    .await
                    .ok()
                    .flatten();
                let text = super::metrics::render_as(&status, process.as_ref(), format);
                let mut resp = Response::new(Full::new(Bytes::from(text)));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                );
                Ok(resp)
            }
            Route::Drain { vip } => self.command(&creds, req, peer, true, vip).await,
            Route::Undrain { vip } => self.command(&creds, req, peer, false, vip).await,
        }
    }

    async fn command(
        &self,
        creds: &Credentials,
        req: Request<Incoming>,
        peer: SocketAddr,
        drain: bool,
        vip: Option<String>,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        // Auth before reading the body: an unauthenticated client gets nothing buffered.
        self.authorize(creds, req.headers().get(AUTHORIZATION), peer)?;
        let body = self.read_body(req).await?;
        let reason = parse_reason(&body)?;
        let force = parse_force(&body);
        // An unknown VIP name is the daemon's to refuse (UnknownVip, with a few known names):
        // asking it for the whole status first would build every VIP's view for one name.
        let verb = if drain { "drain" } else { "undrain" };
        let reason = reason.unwrap_or_else(|| format!("{verb}ed via API"));
        tracing::info!(client = %peer, vip = vip.as_deref().unwrap_or("*"), "API {verb}: {reason}");
        if force {
            tracing::warn!(client = %peer, vip = vip.as_deref().unwrap_or("*"), "API {verb} with force: the fleet guard is overridden");
        }
        let cmd = if drain {
            Command::Drain { vip, reason, force }
        } else {
            Command::Undrain { vip, reason }
        };
        let outcome = self.send(cmd).await?;
        let changed = outcome
            .changed
            .iter()
            .map(|(vip, state)| Changed { vip, state: *state })
            .collect();
        Ok(json_response(StatusCode::OK, &CommandResponse { changed }))
    }

    fn authorize(
        &self,
        creds: &Credentials,
        header: Option<&HeaderValue>,
        peer: SocketAddr,
    ) -> Result<(), ApiError> {
        let failure = match check_bearer(
            creds.token.as_ref().map(|t| t.as_str()),
            header.map(|h| h.as_bytes()),
        ) {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        if failure != AuthFailure::NotConfigured {
            let now = std::time::Instant::now();
            let line = self
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .failed(peer.ip(), now);
            if let Some(n) = line {
                tracing::warn!(client = %peer, failures = n,
                    "API request refused: {} bearer token ({n} failed authentication(s) from {} since its last such line; at most one line a minute per address)",
                    failure.as_str(), peer.ip());
            }
        }
        Err(match failure {
            AuthFailure::NotConfigured => match &creds.refused {
                Some(why) => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "token_file_refused",
                    format!(
                        "the API has no usable token: {why}; fix the file, then reload \
                         (SIGHUP, no restart needed)"
                    ),
                ),
                None => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no_token_configured",
                    "the API has no token: set api.token_file in the config to a file (mode 0600 \
                     or 0640, owned by root or the daemon's user) holding a bearer token, then \
                     reload (SIGHUP, no restart needed)",
                ),
            },
            AuthFailure::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing 'Authorization: Bearer <token>' header (the token is in api.token_file)",
            )
            .header(WWW_AUTHENTICATE, "Bearer"),
            AuthFailure::Malformed => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the Authorization header must be 'Bearer <token>'",
            )
            .header(WWW_AUTHENTICATE, "Bearer error=\"invalid_request\""),
            AuthFailure::Wrong => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong bearer token (compare with api.token_file)",
            )
            .header(WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""),
        })
    }

    async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, ApiError> {
        let max = self.limits.max_body_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {max} bytes"),
            )
        };
        // Refuse a declared oversize body before reading any of it.
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let limited = Limited::new(req.into_body(), max);
        match tokio::time::timeout(self.limits.body_timeout, limited.collect()).await {
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "request body not received within {:?}",
                    self.limits.body_timeout
                ),
            )),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read the request body: {e}"),
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }

    /// The published status with the VIPs' part, which the daemon builds for this request.
    async fn full_status(&self) -> Result<StatusView, ApiError> {
        let wait = self.limits.command_timeout;
        let (tx, rx) = oneshot::channel();
        let asked = async {
            self.handle.vips.send(tx).await.ok()?;
            rx.await.ok()
        };
        let vips = tokio::time::timeout(wait, asked)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                daemon_unavailable(format!(
                    "the daemon did not answer within {wait:?} (shutting down?)"
                ))
            })?;
        let mut status = StatusView::clone(&self.handle.status.borrow());
        status.vips = vips.vips;
        status.route_changes = vips.route_changes;
        Ok(status)
    }

    async fn send(&self, cmd: Command) -> Result<CommandOutcome, ApiError> {
        let wait = self.limits.command_timeout;
        let unavailable = daemon_unavailable;
        let (tx, rx) = oneshot::channel();
        match tokio::time::timeout(wait, self.handle.commands.send((cmd, tx))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                return Err(unavailable(
                    "the daemon is not taking commands (shutting down?)".into(),
                ))
            }
            Err(_) => {
                return Err(unavailable(format!(
                    "the daemon did not take the command within {wait:?}; nothing was changed"
                )))
            }
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(CommandError::UnknownVip {
                vip,
                known,
                known_total,
            }))) => Err(unknown_vip(&vip, &known, known_total)),
            Ok(Ok(Err(CommandError::GuardRefused {
                vip,
                prefix,
                healthy,
                min_healthy_others,
                announcers,
                reason,
            }))) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "guard_refused",
                format!(
                    "drain of {vip} refused by the fleet guard: {reason}; announcers of {prefix}: {}; \
                     add --force (API: {{\"force\": true}}) to drain anyway",
                    if announcers.is_empty() { "none other".to_string() } else { announcers.join(", ") }
                ),
            )
            .with("vip", vip)
            .with("prefix", prefix)
            .with("healthy", healthy as u64)
            .with("min_healthy_others", min_healthy_others as u64)
            .with("announcers", announcers)),
            Ok(Ok(Err(CommandError::Stopping { reason }))) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopping",
                format!("{reason}: routes are being withdrawn, nothing was changed"),
            )
            .with("reason", reason)),
            Ok(Ok(Err(CommandError::StateNotSaved { detail }))) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "state_not_saved",
                format!("the drain state could not be saved, nothing changed: {detail}"),
            )
            .with("detail", detail)),
            Ok(Err(_)) => Err(unavailable("the daemon dropped the command without answering".into())),
            Err(_) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "daemon_timeout",
                format!("the daemon did not answer within {wait:?}; the command may still take effect, check `vipwarden status`"),
            )),
        }
    }
}

/// 503: the daemon's loop did not take or answer a request in time (stopping, or gone).
fn daemon_unavailable(why: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "daemon_unavailable", why)
}

fn unknown_vip(name: &str, known: &[String], total: usize) -> ApiError {
    let more = total.saturating_sub(known.len());
    let message = match (known.is_empty(), more) {
        (true, _) => format!("no VIP named {name:?}"),
        (false, 0) => format!("no VIP named {name:?} (known: {})", known.join(", ")),
        (false, more) => format!(
            "no VIP named {name:?} (known: {} and {more} more; `vipwarden status` lists them)",
            known.join(", ")
        ),
    };
    ApiError::new(StatusCode::NOT_FOUND, "unknown_vip", message).with("vip", name)
}

/// `?limit=N`; anything else in the query is refused so a typo does not silently do nothing.
fn events_limit(query: Option<&str>) -> Result<Option<usize>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", m);
    let mut limit = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("limit", v)) => {
                limit = Some(v.parse::<usize>().map_err(|_| {
                    bad(format!("limit must be a non-negative integer, got {v:?}"))
                })?);
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {pair:?}; only limit=N is accepted"
                )))
            }
        }
    }
    Ok(limit)
}

/// The optional `{"reason": "..."}` body. Empty (or blank) body: no reason.
/// `"force": true` in a (valid) command body.
fn parse_force(body: &[u8]) -> bool {
    serde_json::from_slice::<CommandBody>(body)
        .ok()
        .and_then(|b| b.force)
        .unwrap_or(false)
}

fn parse_reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(None);
    }
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", m);
    let parsed: CommandBody = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not {{\"reason\": \"...\"}}: {e}")))?;
    let Some(reason) = parsed
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
    else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(bad(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(bad(
            "reason must be one line without control characters".into()
        ));
    }
    Ok(Some(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_decode() {
        assert_eq!(route("/v1/status").unwrap(), Some(Route::Status));
        assert_eq!(
            route("/v1/vips/drain").unwrap(),
            Some(Route::Drain { vip: None })
        );
        assert_eq!(
            route("/v1/vips/we%62/undrain").unwrap(),
            Some(Route::Undrain {
                vip: Some("web".into())
            })
        );
        assert_eq!(route("/v1/status/").unwrap(), None);
        assert_eq!(route("/v1/vips/web").unwrap(), None);
        assert_eq!(route("").unwrap(), None);
        assert_eq!(
            route("/v1/vips/%zz/drain").unwrap_err().code,
            "bad_vip_name"
        );
        assert_eq!(
            route("/v1/vips/%ff/drain").unwrap_err().code,
            "bad_vip_name"
        );
        assert_eq!(route("/v1/vips/%4/drain").unwrap_err().code, "bad_vip_name");
        assert_eq!(route("/v1/vips//drain").unwrap_err().code, "bad_vip_name");
        // Names no config can hold (a forged log line, a very long name) never reach the daemon.
        for bad in ["/v1/vips/web%0Aforged/drain", "/v1/vips/a%20b/drain"] {
            assert_eq!(route(bad).unwrap_err().code, "bad_vip_name", "{bad}");
        }
        let long = format!("/v1/vips/{}/drain", "a".repeat(65));
        assert_eq!(route(&long).unwrap_err().code, "bad_vip_name");
        let longest = format!("/v1/vips/{}/drain", "a".repeat(64));
        assert!(route(&longest).is_ok());
    }

    #[test]
    fn reason_body_rules() {
        assert_eq!(parse_reason(b"").unwrap(), None);
        assert_eq!(parse_reason(b" \n").unwrap(), None);
        assert_eq!(parse_reason(b"{}").unwrap(), None);
        assert_eq!(
            parse_reason(br#"{"reason":" kernel "}"#)
                .unwrap()
                .as_deref(),
            Some("kernel")
        );
        assert!(parse_reason(br#"{"reason":"a\nb"}"#)
            .unwrap_err()
            .message
            .contains("one line"));
        assert!(parse_reason(br#"{"reasn":"x"}"#)
            .unwrap_err()
            .message
            .contains("unknown field"));
        assert!(parse_reason(br#"{"reason":"#)
            .unwrap_err()
            .message
            .contains("EOF"));
        let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(513));
        assert!(parse_reason(long.as_bytes())
            .unwrap_err()
            .message
            .contains("longer than 512"));
    }

    #[test]
    fn events_limit_rules() {
        assert_eq!(events_limit(None).unwrap(), None);
        assert_eq!(events_limit(Some("limit=3")).unwrap(), Some(3));
        assert!(events_limit(Some("limit=-1")).is_err());
        assert!(events_limit(Some("limt=3"))
            .unwrap_err()
            .message
            .contains("unknown query parameter"));
    }

    #[test]
    fn an_unknown_vip_names_a_few_known_ones_and_counts_the_rest() {
        let known = vec!["a".to_string(), "b".to_string()];
        assert!(unknown_vip("x", &known, 2)
            .message
            .ends_with("(known: a, b)"));
        let m = unknown_vip("x", &known, 100_000).message;
        assert!(m.contains("(known: a, b and 99998 more;"), "{m}");
        assert_eq!(unknown_vip("x", &[], 0).message, r#"no VIP named "x""#);
    }
}
