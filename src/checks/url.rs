//! Strict parsing of an http(s) check URL into what the probe needs.

use std::net::IpAddr;

use hyper::http::uri::{Authority, Uri};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub tls: bool,
    /// Host without brackets: `example.com`, `127.0.0.1`, `::1`.
    pub host: String,
    pub port: u16,
    /// As written in the URL (default Host header): `example.com:8080`, `[::1]`.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

/// A check URL that cannot be probed; `url` is the configured text.
#[derive(Debug)]
pub enum UrlError {
    Invalid {
        url: String,
        source: hyper::http::uri::InvalidUri,
    },
    Scheme {
        url: String,
        scheme: String,
    },
    NoScheme {
        url: String,
    },
    NoHost {
        url: String,
    },
    UserInfo {
        url: String,
    },
    BadPort {
        url: String,
        port: String,
    },
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlError::Invalid { url, source } => write!(f, "invalid URL {url:?}: {source}"),
            UrlError::Scheme { url, scheme } => {
                write!(
                    f,
                    "invalid URL {url:?}: scheme {scheme:?} is not http or https"
                )
            }
            UrlError::NoScheme { url } => {
                write!(f, "invalid URL {url:?}: no scheme (http:// or https://)")
            }
            UrlError::NoHost { url } => write!(f, "invalid URL {url:?}: no host"),
            UrlError::UserInfo { url } => {
                write!(f, "invalid URL {url:?}: user info is not supported")
            }
            UrlError::BadPort { url, port } => write!(f, "invalid URL {url:?}: bad port {port:?}"),
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

pub(crate) fn parse(url: &str) -> Result<Target, UrlError> {
    let owned = || url.to_owned();
    let uri: Uri = url.parse().map_err(|source| UrlError::Invalid {
        url: owned(),
        source,
    })?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => {
            return Err(UrlError::Scheme {
                url: owned(),
                scheme: other.to_owned(),
            })
        }
        None => return Err(UrlError::NoScheme { url: owned() }),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| UrlError::NoHost { url: owned() })?;
    if authority.as_str().contains('@') {
        return Err(UrlError::UserInfo { url: owned() });
    }
    let host = host_of(authority);
    if host.is_empty() {
        return Err(UrlError::NoHost { url: owned() });
    }
    // Not `port_u16()`: it maps an out-of-range port to "none", i.e. silently to 80.
    let port = match authority.as_str()[authority.host().len()..].strip_prefix(':') {
        None if tls => 443,
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::BadPort {
                url: owned(),
                port: p.to_owned(),
            })?,
    };
    let path = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    Ok(Target {
        tls,
        host,
        port,
        authority: authority.as_str().to_string(),
        path: if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        },
    })
}

/// Host part of a `host[:port]` Host-header value, for SNI. `None` if it is not one.
pub(crate) fn host_of_header(value: &str) -> Option<String> {
    let a: Authority = value.parse().ok()?;
    if a.as_str().contains('@') {
        return None;
    }
    Some(host_of(&a)).filter(|h| !h.is_empty())
}

fn host_of(a: &Authority) -> String {
    let h = a.host();
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
        .to_string()
}

/// The host as an address, if it is one (no DNS needed).
pub(crate) fn literal_ip(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let t = parse("http://127.0.0.1:8080/healthz?full=1").unwrap();
        assert_eq!(
            t,
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                authority: "127.0.0.1:8080".into(),
                path: "/healthz?full=1".into(),
            }
        );
        let t = parse("https://[::1]").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 443, "/")
        );
        assert_eq!(t.authority, "[::1]");
        let t = parse("http://svc.example").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("svc.example", 80));
    }

    #[test]
    fn rejects_what_it_cannot_probe() {
        for (url, why) in [
            ("ftp://h/", "scheme \"ftp\""),
            ("/healthz", "no scheme"),
            ("http://user:pw@h/", "user info"),
            ("http://h:99999/", "bad port \"99999\""),
            ("http://h:0/", "bad port \"0\""),
            ("http://h:/", "bad port \"\""),
            ("not a url", "invalid URL"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn header_host_drops_port_and_brackets() {
        assert_eq!(
            host_of_header("a.example:8443").as_deref(),
            Some("a.example")
        );
        assert_eq!(
            host_of_header("[2001:db8::1]:443").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(host_of_header("a b"), None);
    }
}
