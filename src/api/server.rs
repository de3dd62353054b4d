//! The API's HTTP/1 server: accept loop, connection slots (`admission`), timeouts and a clean
//! stop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admission::{Admission, Ticket};
use super::auth::Credentials;
use super::routes::{Api, RequestLimits};
use crate::control::ControlHandle;

/// Connection-level bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Operators and one Prometheus scraper need a handful. When all are taken, a new client
    /// takes the slot of the oldest connection that has not shown the token (`admission`);
    /// when token holders hold them all, it waits in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection without the token may be closed for a newcomer once it is this old and
    /// between requests (a real client's head arrives within milliseconds).
    pub evict_after: Duration,
    /// Time for a request's headers to arrive, also the idle keep-alive limit: a client that
    /// sends half a header and stalls is dropped after this.
    pub header_timeout: Duration,
    /// How long in-flight requests may finish once a stop is requested.
    pub shutdown_grace: Duration,
    pub request: RequestLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 32,
            evict_after: Duration::from_millis(250),
            header_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(2),
            request: RequestLimits::default(),
        }
    }
}

/// Headers larger than this are refused (hyper's minimum is 8 KiB).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A bound, not yet serving API listener. Binding first lets the daemon report a busy or
/// forbidden address at start-up, before anything else runs.
pub struct ApiServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    pub(crate) limits: Limits,
}

impl ApiServer {
    pub async fn bind(listen: SocketAddr) -> anyhow::Result<ApiServer> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("API: cannot listen on {listen}"))?;
        let local_addr = listener
            .local_addr()
            .with_context(|| format!("API: local address of {listen}"))?;
        Ok(ApiServer {
            listener,
            local_addr,
            limits: Limits::default(),
        })
    }

    /// The bound address (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `stop` is cancelled, then lets in-flight requests finish for a moment.
    /// `auth`: the token and rules, read per request (the supervisor swaps them on SIGHUP).
    pub(crate) async fn run(
        self,
        auth: watch::Receiver<Arc<Credentials>>,
        handle: ControlHandle,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let limits = self.limits;
        let api = Arc::new(Api::new(auth.clone(), handle, limits.request));
        let admission = Admission::new(limits.max_connections, limits.evict_after);
        let tasks = TaskTracker::new();
        let scheme = if auth.borrow().tls_required {
            "https"
        } else {
            "http"
        };
        tracing::info!("API listening on {scheme}://{}", self.local_addr);
        loop {
            // Room before accepting (a free slot, or one held without the token to take back),
            // so while every slot is held by token holders the kernel queues the client.
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = admission.room() => {}
            }
            let (stream, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning on the error.
                        tracing::warn!("API accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (ticket, evicted) = admission.admit();
            if evicted {
                tracing::debug!(client = %peer, "API: every slot taken; closed the oldest connection without the token to admit this one");
            }
            let (api, stop) = (api.clone(), stop.clone());
            let (tls_required, tls) = {
                let c = auth.borrow();
                (c.tls_required, c.tls.clone())
            };
            match tls {
                None if tls_required => {
                    // The certificate could not be loaded: never fall back to clear text.
                    drop(stream);
                    continue;
                }
                None => tasks.spawn(serve_connection(stream, peer, api, limits, stop, ticket)),
                Some(tls) => tasks.spawn(async move {
                    // The handshake counts against the header timeout: a stalled client
                    // holds its slot no longer than one sending half a header.
                    let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(stream));
                    let done = tokio::select! {
                        r = handshake => r,
                        _ = ticket.evicted().cancelled() => return,
                    };
                    match done {
                        Ok(Ok(s)) => serve_connection(s, peer, api, limits, stop, ticket).await,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, "API TLS handshake failed: {e}")
                        }
                        Err(_) => tracing::debug!(client = %peer, "API TLS handshake timed out"),
                    }
                }),
            };
        }
        drop(self.listener);
        tasks.close();
        if tokio::time::timeout(limits.shutdown_grace, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("API stopped with {} connection(s) still open", tasks.len());
        }
        Ok(())
    }
}

/// Binds `listen` and serves the API with a fixed token until `stop` is cancelled (no reload;
/// the daemon uses [`super::supervise`]). Bind errors return at once.
pub async fn serve(
    listen: SocketAddr,
    token: Option<String>,
    handle: ControlHandle,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let creds = Credentials {
        token: token.map(zeroize::Zeroizing::new),
        ..Credentials::default()
    };
    let (_keep, auth) = watch::channel(Arc::new(creds));
    ApiServer::bind(listen).await?.run(auth, handle, stop).await
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    api: Arc<Api>,
    limits: Limits,
    stop: CancellationToken,
    ticket: Ticket,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ticket = Arc::new(ticket);
    let evicted = ticket.evicted().clone();
    let service = service_fn(move |req| {
        let (api, ticket) = (api.clone(), ticket.clone());
        async move {
            if api.has_valid_token(&req) {
                ticket.proven();
            }
            ticket.busy();
            let resp = api.handle(req, peer).await;
            ticket.idle();
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = evicted.cancelled() => {
            tracing::debug!(client = %peer, "API connection without the token closed to make room");
            return;
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.shutdown_grace, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's problem, worth a debug line.
        tracing::debug!(client = %peer, "API connection ended: {e}");
    }
}
