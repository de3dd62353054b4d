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
use super::{CheckConfig, HttpCheck, SetupError};

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
    pub(crate) fn new(h: &HttpCheck, check: &CheckConfig) -> Result<HttpProbe, SetupError> {
        let target = url::parse(&h.url)?;
        if target.tls != h.tls {
            return Err(SetupError::TlsMismatch {
                url: h.url.clone(),
                tls: h.tls,
            });
        }
        if h.expect_status.is_empty() {
            return Err(SetupError::NoExpectedStatus);
        }
        let host = h.host.as_deref().unwrap_or(&target.authority);
        let host_header = HeaderValue::from_str(host).map_err(|_| SetupError::HostHeader {
            host: host.to_owned(),
        })?;
        let tls = if target.tls {
            // SNI and certificate name follow the Host header, as a browser's would.
            let sni_host = match &h.host {
                Some(v) => url::host_of_header(v)
                    .ok_or_else(|| SetupError::SniHost { host: v.to_owned() })?,
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
            .find(|a| want_v4.is_none_or(|v4| a.is_ipv4() == v4))
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::TlsAcceptor;

    use super::super::testutil::http_check;
    use super::super::{probe_once, Prober};
    use super::*;

    /// What the test server saw of one request.
    #[derive(Debug)]
    struct Seen {
        head: String,
        peer: SocketAddr,
        sni: Option<String>,
    }

    /// Serves `response` (raw bytes) to every connection after `delay`, reporting each request.
    async fn serve(
        response: &'static str,
        delay: Duration,
        tls: Option<Arc<ServerConfig>>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
        serve_on(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            response,
            delay,
            tls,
        )
    }

    fn serve_on(
        listener: TcpListener,
        response: &'static str,
        delay: Duration,
        tls: Option<Arc<ServerConfig>>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let tx = tx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(tcp, peer, None, response, delay, tx).await,
                        Some(cfg) => {
                            // A failed handshake is what some tests expect; nothing to answer.
                            if let Ok(s) = TlsAcceptor::from(cfg).accept(tcp).await {
                                let sni = s.get_ref().1.server_name().map(str::to_string);
                                answer(s, peer, sni, response, delay, tx).await;
                            }
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        peer: SocketAddr,
        sni: Option<String>,
        response: &str,
        delay: Duration,
        tx: mpsc::UnboundedSender<Seen>,
    ) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(Seen {
            head: String::from_utf8_lossy(&head).into_owned(),
            peer,
            sni,
        });
        tokio::time::sleep(delay).await;
        let _ = s.write_all(response.as_bytes()).await;
        let _ = s.shutdown().await;
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nstatus=ok";
    const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn status_200_passes_with_expected_request() {
        let (addr, mut seen) = serve(OK, Duration::ZERO, None).await;
        let r = probe_once(&http_check(&format!("http://{addr}/healthz?x=1"), |_| {})).await;
        assert!(r.ok, "{r:?}");
        assert!(r.detail.starts_with("HTTP 200 in "), "{r:?}");
        let head = seen.recv().await.unwrap().head;
        assert!(head.starts_with("GET /healthz?x=1 HTTP/1.1\r\n"), "{head}");
        assert_eq!(header(&head, "host"), Some(addr.to_string().as_str()));
        assert_eq!(header(&head, "connection"), Some("close"));
        assert_eq!(header(&head, "user-agent"), Some(UA));
    }

    #[tokio::test]
    async fn unexpected_status_fails_with_detail() {
        let (addr, _seen) = serve(UNAVAILABLE, Duration::ZERO, None).await;
        let r = probe_once(&http_check(&format!("http://{addr}/"), |_| {})).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "HTTP 503 (expected 200)");
        let r = probe_once(&http_check(&format!("http://{addr}/"), |h| {
            h.expect_status = vec![200, 204]
        }))
        .await;
        assert_eq!(r.detail, "HTTP 503 (expected 200, 204)");
        let r = probe_once(&http_check(&format!("http://{addr}/"), |h| {
            h.expect_status = vec![503]
        }))
        .await;
        assert!(r.ok, "{r:?}");
    }

    #[tokio::test]
    async fn expect_body_present_and_absent() {
        let (addr, _seen) = serve(OK, Duration::ZERO, None).await;
        let url = format!("http://{addr}/");
        let r = probe_once(&http_check(&url, |h| h.expect_body = Some("=ok".into()))).await;
        assert!(r.ok, "{r:?}");
        let r = probe_once(&http_check(&url, |h| {
            h.expect_body = Some("healthy".into())
        }))
        .await;
        assert!(!r.ok);
        assert_eq!(r.detail, "body lacks \"healthy\"");
    }

    #[tokio::test]
    async fn body_search_is_bounded() {
        // 100 KiB of filler, then the marker: beyond the 64 KiB we read.
        static BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let big = BIG.get_or_init(|| {
            let body = format!("{}MARKER", "x".repeat(100 * 1024));
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        let (addr, _seen) = serve(big, Duration::ZERO, None).await;
        let url = format!("http://{addr}/");
        let r = probe_once(&http_check(&url, |h| h.expect_body = Some("MARKER".into()))).await;
        assert_eq!(r.detail, "body lacks \"MARKER\" in its first 64 KiB");
        let r = probe_once(&http_check(&url, |h| h.expect_body = Some("xxx".into()))).await;
        assert!(r.ok, "{r:?}");
    }

    #[tokio::test]
    async fn host_override_is_sent() {
        let (addr, mut seen) = serve(OK, Duration::ZERO, None).await;
        let c = http_check(&format!("http://{addr}/"), |h| {
            h.host = Some("svc.example:8080".into())
        });
        let r = probe_once(&c).await;
        assert!(r.ok, "{r:?}");
        let head = seen.recv().await.unwrap().head;
        assert_eq!(header(&head, "host"), Some("svc.example:8080"));
    }

    #[tokio::test]
    async fn ipv6_literal_url() {
        let Ok(l) = TcpListener::bind("[::1]:0").await else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let (addr, mut seen) = serve_on(l, OK, Duration::ZERO, None);
        let url = format!("http://[::1]:{}/", addr.port());
        let r = probe_once(&http_check(&url, |_| {})).await;
        assert!(r.ok, "{r:?}");
        let head = seen.recv().await.unwrap().head;
        assert_eq!(
            header(&head, "host"),
            Some(format!("[::1]:{}", addr.port()).as_str())
        );
    }

    #[tokio::test]
    async fn slow_server_times_out_at_timeout() {
        let (addr, _seen) = serve(OK, Duration::from_secs(5), None).await;
        let mut c = http_check(&format!("http://{addr}/"), |_| {});
        c.timeout = Duration::from_millis(300);
        let r = probe_once(&c).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "timed out after 300 ms");
        assert!(r.elapsed >= Duration::from_millis(300), "{r:?}");
        assert!(r.elapsed < Duration::from_millis(600), "{r:?}");
    }

    #[tokio::test]
    async fn garbage_response_is_an_http_error() {
        let (addr, _seen) = serve("SSH-2.0-OpenSSH_9.6\r\n\r\n", Duration::ZERO, None).await;
        let r = probe_once(&http_check(&format!("http://{addr}/"), |_| {})).await;
        assert!(!r.ok);
        assert!(r.detail.starts_with("HTTP: "), "{r:?}");
    }

    #[tokio::test]
    async fn refused_connection() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let r = probe_once(&http_check(&format!("http://{addr}/"), |_| {})).await;
        assert_eq!(r.detail, "connect refused");
    }

    #[tokio::test]
    async fn source_address_is_bound() {
        let (addr, mut seen) = serve(OK, Duration::ZERO, None).await;
        let mut c = http_check(&format!("http://{addr}/"), |_| {});
        c.source = Some("127.0.0.2".parse().unwrap());
        let r = probe_once(&c).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(
            seen.recv().await.unwrap().peer.ip().to_string(),
            "127.0.0.2"
        );
    }

    #[tokio::test]
    async fn hostname_is_resolved() {
        let (addr, _seen) = serve(OK, Duration::ZERO, None).await;
        let mut c = http_check(&format!("http://localhost:{}/", addr.port()), |_| {});
        // Our server is IPv4-only; the source pins the family whatever localhost resolves to.
        c.source = Some("127.0.0.1".parse().unwrap());
        let r = probe_once(&c).await;
        assert!(r.ok, "{r:?}");
    }

    /// A self-signed certificate for localhost and 127.0.0.1, and its PEM in a temp file.
    struct SelfSigned {
        server: Arc<ServerConfig>,
        pem: PathBuf,
    }

    impl SelfSigned {
        fn new(tag: &str) -> SelfSigned {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])
            .unwrap();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
            let cert = CertificateDer::from(ck.cert.der().to_vec());
            let server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
            let pem = std::env::temp_dir().join(format!("vw-ca-{tag}-{}.pem", std::process::id()));
            std::fs::write(&pem, ck.cert.pem()).unwrap();
            SelfSigned {
                server: Arc::new(server),
                pem,
            }
        }
    }

    impl Drop for SelfSigned {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.pem);
        }
    }

    #[tokio::test]
    async fn https_rejects_unknown_issuer_by_default() {
        let cert = SelfSigned::new("default");
        let (addr, _seen) = serve(OK, Duration::ZERO, Some(cert.server.clone())).await;
        let r = probe_once(&http_check(&format!("https://{addr}/"), |_| {})).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "TLS: invalid peer certificate: UnknownIssuer");
    }

    #[tokio::test]
    async fn https_passes_with_ca_file() {
        let cert = SelfSigned::new("ca");
        let (addr, mut seen) = serve(OK, Duration::ZERO, Some(cert.server.clone())).await;
        let url = format!("https://{addr}/");
        let r = probe_once(&http_check(&url, |h| h.ca_file = Some(cert.pem.clone()))).await;
        assert!(r.ok, "{r:?}");
        assert!(r.detail.starts_with("HTTP 200 in "), "{r:?}");
        // An IP in the URL: no SNI is sent, the certificate's IP SAN is what matched.
        assert_eq!(seen.recv().await.unwrap().sni, None);
    }

    #[tokio::test]
    async fn https_sni_and_name_check_follow_host_override() {
        let cert = SelfSigned::new("sni");
        let (addr, mut seen) = serve(OK, Duration::ZERO, Some(cert.server.clone())).await;
        let url = format!("https://{addr}/");
        let r = probe_once(&http_check(&url, |h| {
            h.ca_file = Some(cert.pem.clone());
            h.host = Some(format!("localhost:{}", addr.port()));
        }))
        .await;
        assert!(r.ok, "{r:?}");
        let s = seen.recv().await.unwrap();
        assert_eq!(s.sni.as_deref(), Some("localhost"));
        assert_eq!(
            header(&s.head, "host"),
            Some(format!("localhost:{}", addr.port()).as_str())
        );

        let r = probe_once(&http_check(&url, |h| {
            h.ca_file = Some(cert.pem.clone());
            h.host = Some("other.example".into());
        }))
        .await;
        assert!(!r.ok);
        assert!(
            r.detail.starts_with(
                "TLS: invalid peer certificate: certificate not valid for name \"other.example\""
            ),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn https_insecure_accepts_any_certificate() {
        let cert = SelfSigned::new("insecure");
        let (addr, _seen) = serve(OK, Duration::ZERO, Some(cert.server.clone())).await;
        let url = format!("https://{addr}/");
        let r = probe_once(&http_check(&url, |h| {
            h.insecure = true;
            h.host = Some("not-in-the-cert.example".into());
        }))
        .await;
        assert!(r.ok, "{r:?}");
    }

    #[tokio::test]
    async fn unreadable_ca_file_fails_every_probe() {
        let c = http_check("https://127.0.0.1:1/", |h| {
            h.ca_file = Some("/nonexistent/vw-ca.pem".into())
        });
        assert!(Prober::new(&c).is_err());
        let r = probe_once(&c).await;
        assert!(!r.ok);
        assert_eq!(
            r.detail,
            "cannot read ca_file /nonexistent/vw-ca.pem: No such file or directory"
        );
    }

    #[test]
    fn url_and_tls_flag_must_agree() {
        let mut c = http_check("http://127.0.0.1/", |h| h.tls = true);
        let e = Prober::new(&c).err().unwrap();
        assert!(
            matches!(e, SetupError::TlsMismatch { tls: true, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("disagrees with tls: true"), "{e}");
        c = http_check("http://127.0.0.1/", |h| h.host = Some("bad\nhost".into()));
        let e = Prober::new(&c).err().unwrap();
        assert!(matches!(e, SetupError::HostHeader { .. }), "{e}");
        assert!(e.to_string().contains("not a valid Host header"), "{e}");
    }
}
