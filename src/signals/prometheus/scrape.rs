//! One HTTP/1.1 GET of the metrics endpoint, bounded in time and size.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header::{ACCEPT, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest body accepted: Envoy with many clusters exports a few MiB; more is not a metrics page.
pub const MAX_BODY: usize = 8 << 20;

/// Where to scrape, parsed once from the configured URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("invalid url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("url {url:?}: only http:// is supported"));
        }
        let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
            return Err(format!("url {url:?} has no host"));
        };
        Ok(Self {
            // Uri keeps IPv6 brackets; connecting needs the bare address.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    /// The body of a 200 response, or why there is none.
    pub async fn fetch(&self, timeout: Duration) -> Result<Bytes, String> {
        tokio::time::timeout(timeout, self.fetch_capped(MAX_BODY))
            .await
            .map_err(|_| format!("scrape of {} timed out after {timeout:?}", self.authority))?
    }

    pub(crate) async fn fetch_capped(&self, max: usize) -> Result<Bytes, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("http: {e}"))?;
        let req = Request::get(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(ACCEPT, "text/plain;version=0.0.4")
            .header(USER_AGENT, concat!("vipwarden/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let exchange = async move {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("http: {e}"))?;
            if resp.status() != StatusCode::OK {
                return Err(format!("HTTP {}", resp.status()));
            }
            let declared = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(format!("body larger than {max} bytes"));
            }
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        format!("body larger than {max} bytes")
                    } else {
                        format!("reading body: {e}")
                    }
                })?;
            Ok(body.to_bytes())
        };
        // The connection is driven here rather than in a spawned task, so a server that never
        // answers cannot leave a task behind once the timeout drops this future.
        tokio::pin!(exchange);
        tokio::pin!(conn);
        tokio::select! {
            biased;
            r = &mut exchange => r,
            c = &mut conn => match c {
                Err(e) => Err(format!("http: {e}")),
                Ok(()) => exchange.await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:9901/stats/prometheus?usedonly").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.path.as_str()
            ),
            (
                "127.0.0.1",
                9901,
                "127.0.0.1:9901",
                "/stats/prometheus?usedonly"
            )
        );
        let t = Target::parse("http://[::1]/metrics").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(Target::parse("http://localhost:8404").unwrap().path, "/");
        for bad in [
            "https://127.0.0.1/",
            "127.0.0.1:80/metrics",
            "/metrics",
            "http://",
            "ht tp://x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
