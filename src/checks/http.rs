//! `http` / `https` check: GET the URL over a connection we open ourselves (so source and
//! interface binding apply), pass on an expected status and, if set, a body substring.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::detail::{self, chain, io_reason};
use super::net::{self, Bind};
use super::tls;
use super::url::{self, Target};
use crate::config::{CheckConfig, HttpCheck};

/// Only this much of the body is searched for `expect_body`: health pages are small, and a
/// misbehaving endpoint must not make us buffer without bound.
const BODY_LIMIT: usize = 64 * 1024;

const UA: &str = concat!("vipwarden/", env!("CARGO_PKG_VERSION"));

pub(crate) struct HttpProbe {
    target: Target,
    host_header: HeaderValue,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    expect_status: Vec<u16>,
    expect_body: Option<String>,
    bind: Bind,
}

impl HttpProbe {
    pub(crate) fn new(h: &HttpCheck, check: &CheckConfig) -> Result<HttpProbe, String> {
        let target = url::parse(&h.url)?;
        if target.tls != h.tls {
            return Err(format!(
                "URL {:?} disagrees with tls: {} in the check config",
                h.url, h.tls
            ));
        }
        if h.expect_status.is_empty() {
            return Err("expect_status is empty: no response could pass".to_string());
        }
        let host = h.host.as_deref().unwrap_or(&target.authority);
        let host_header = HeaderValue::from_str(host)
            .map_err(|_| format!("host {host:?} is not a valid Host header"))?;
        let tls = if target.tls {
            // SNI and certificate name follow the Host header, as a browser's would.
            let sni_host = match &h.host {
                Some(v) => url::host_of_header(v)
                    .ok_or_else(|| format!("host {v:?} is not a valid host[:port]"))?,
                None => target.host.clone(),
            };
            let name = tls::server_name(&sni_host)?;
            let config = tls::client_config(h.ca_file.as_deref(), h.insecure)?;
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(HttpProbe {
            target,
            host_header,
            tls,
            expect_status: h.expect_status.clone(),
            expect_body: h.expect_body.clone(),
            bind: Bind {
                source: check.source,
                interface: check.interface.clone(),
            },
        })
    }

    pub(crate) async fn run(&self, start: Instant) -> Result<String, String> {
        let addr = self.resolve().await?;
        let stream = net::connect(addr, &self.bind).await?;
        match &self.tls {
            None => self.exchange(stream, start).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| format!("TLS: {}", io_reason(&e)))?;
                self.exchange(stream, start).await
            }
        }
    }

    async fn resolve(&self) -> Result<SocketAddr, String> {
        let Target { host, port, .. } = &self.target;
        if let Some(ip) = url::literal_ip(host) {
            return Ok(SocketAddr::new(ip, *port));
        }
        let addrs = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {}", io_reason(&e)))?;
        // With a source address bound, only the same family can work.
        let want_v4 = self.bind.source.map(|s| s.is_ipv4());
        addrs
            .into_iter()
            .find(|a| want_v4.map_or(true, |v4| a.is_ipv4() == v4))
            .ok_or_else(|| match want_v4 {
                Some(true) => format!("{host} has no IPv4 address (source is IPv4)"),
                Some(false) => format!("{host} has no IPv6 address (source is IPv6)"),
                None => format!("{host} resolves to no address"),
            })
    }

    async fn exchange<S>(&self, stream: S, start: Instant) -> Result<String, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP: {}", chain(&e)))?;
        let req = Request::get(self.target.path.as_str())
            .header(HOST, self.host_header.clone())
            .header(USER_AGENT, UA)
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("cannot build request: {e}"))?;
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("HTTP: {}", chain(&e)))?;
            self.judge(resp, start).await
        };
        // The connection is driven here rather than in a spawned task, so the probe's timeout
        // (which drops this future) tears everything down.
        tokio::pin!(conn, exchange);
        let mut conn_done = false;
        loop {
            tokio::select! {
                r = &mut exchange => return r,
                r = &mut conn, if !conn_done => {
                    conn_done = true;
                    if let Err(e) = r {
                        return Err(format!("HTTP: {}", chain(&e)));
                    }
                }
            }
        }
    }

    async fn judge(&self, resp: Response<Incoming>, start: Instant) -> Result<String, String> {
        let status = resp.status().as_u16();
        if !self.expect_status.contains(&status) {
            let expected: Vec<String> = self.expect_status.iter().map(u16::to_string).collect();
            return Err(format!("HTTP {status} (expected {})", expected.join(", ")));
        }
        if let Some(want) = &self.expect_body {
            let (body, truncated) = read_limited(resp.into_body(), BODY_LIMIT)
                .await
                .map_err(|e| format!("HTTP {status}, reading body: {e}"))?;
            if !contains(&body, want.as_bytes()) {
                let scope = if truncated {
                    " in its first 64 KiB"
                } else {
                    ""
                };
                return Err(format!("body lacks {want:?}{scope}"));
            }
        }
        Ok(format!("HTTP {status} in {}", detail::ms(start.elapsed())))
    }
}

/// Reads at most `limit` bytes of `body`; the flag says whether there was more.
async fn read_limited(mut body: Incoming, limit: usize) -> Result<(Vec<u8>, bool), String> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| chain(&e))?;
        if let Ok(data) = frame.into_data() {
            let room = limit - buf.len();
            if data.len() >= room {
                buf.extend_from_slice(&data[..room]);
                return Ok((buf, data.len() > room || !body.is_end_stream()));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf, false))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
