//! One HTTP/1.1 GET of the metrics endpoint, bounded in time and size.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header::{ACCEPT, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest body accepted: Envoy with many clusters exports a few MiB; more is not a metrics page.
pub const MAX_BODY: usize = 8 << 20;

/// Why the configured URL cannot be scraped.
#[derive(Debug)]
pub enum UrlError {
    Invalid {
        url: String,
        source: hyper::http::uri::InvalidUri,
    },
    NotHttp {
        url: String,
    },
    NoHost {
        url: String,
    },
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Invalid { url, source } => write!(f, "invalid url {url:?}: {source}"),
            UrlError::NotHttp { url } => write!(f, "url {url:?}: only http:// is supported"),
            UrlError::NoHost { url } => write!(f, "url {url:?} has no host"),
        }
    }
}

impl std::error::Error for UrlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UrlError::Invalid { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a scrape brought no body.
#[derive(Debug)]
pub enum FetchError {
    TimedOut {
        authority: String,
        after: Duration,
    },
    Connect {
        authority: String,
        source: std::io::Error,
    },
    Http(hyper::Error),
    Request(hyper::http::Error),
    Status(StatusCode),
    TooLarge {
        max: usize,
    },
    Body(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::TimedOut { authority, after } => {
                write!(f, "scrape of {authority} timed out after {after:?}")
            }
            FetchError::Connect { authority, source } => write!(f, "connect {authority}: {source}"),
            FetchError::Http(e) => write!(f, "http: {e}"),
            FetchError::Request(e) => write!(f, "request: {e}"),
            FetchError::Status(s) => write!(f, "HTTP {s}"),
            FetchError::TooLarge { max } => write!(f, "body larger than {max} bytes"),
            FetchError::Body(e) => write!(f, "reading body: {e}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Connect { source, .. } => Some(source),
            FetchError::Http(e) => Some(e),
            FetchError::Request(e) => Some(e),
            FetchError::Body(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// Where to scrape, parsed once from the configured URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let uri: hyper::Uri = url.parse().map_err(|source| UrlError::Invalid {
            url: url.to_owned(),
            source,
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(UrlError::NotHttp {
                url: url.to_owned(),
            });
        }
        let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
            return Err(UrlError::NoHost {
                url: url.to_owned(),
            });
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
    pub async fn fetch(&self, timeout: Duration) -> Result<Bytes, FetchError> {
        tokio::time::timeout(timeout, self.fetch_capped(MAX_BODY))
            .await
            .map_err(|_| FetchError::TimedOut {
                authority: self.authority.clone(),
                after: timeout,
            })?
    }

    pub(crate) async fn fetch_capped(&self, max: usize) -> Result<Bytes, FetchError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| FetchError::Connect {
                authority: self.authority.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(FetchError::Http)?;
        let req = Request::get(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(ACCEPT, "text/plain;version=0.0.4")
            .header(USER_AGENT, concat!("vipwarden/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(FetchError::Request)?;
        let exchange = async move {
            let resp = sender.send_request(req).await.map_err(FetchError::Http)?;
            if resp.status() != StatusCode::OK {
                return Err(FetchError::Status(resp.status()));
            }
            let declared = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(FetchError::TooLarge { max });
            }
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        FetchError::TooLarge { max }
                    } else {
                        FetchError::Body(e)
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
                Err(e) => Err(FetchError::Http(e)),
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
