//! `tcp` check: the target accepts a connection.

use std::net::SocketAddr;
use std::time::Instant;

use super::detail;
use super::net::{self, Bind};
use super::CheckConfig;

pub(crate) struct TcpProbe {
    target: SocketAddr,
    bind: Bind,
}

impl TcpProbe {
    pub(crate) fn new(target: SocketAddr, check: &CheckConfig) -> TcpProbe {
        TcpProbe {
            target,
            bind: Bind {
                source: check.source,
                interface: check.interface.clone(),
            },
        }
    }

    pub(crate) async fn run(&self, start: Instant) -> Result<String, String> {
        let stream = net::connect(self.target, &self.bind).await?;
        let took = start.elapsed();
        drop(stream);
        Ok(format!("connected in {}", detail::ms(took)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testutil::tcp_check;
    use super::super::{probe_once, Prober};

    #[tokio::test]
    async fn passes_when_listening() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = probe_once(&tcp_check(l.local_addr().unwrap())).await;
        assert!(r.ok, "{r:?}");
        assert!(r.detail.starts_with("connected in "), "{r:?}");
    }

    #[tokio::test]
    async fn passes_over_ipv6() {
        let Ok(l) = tokio::net::TcpListener::bind("[::1]:0").await else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let mut c = tcp_check(l.local_addr().unwrap());
        c.source = Some("::1".parse().unwrap());
        let r = probe_once(&c).await;
        assert!(r.ok, "{r:?}");
    }

    #[tokio::test]
    async fn fails_refused() {
        // Bind then drop: the port is (almost certainly) closed right after.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let r = probe_once(&tcp_check(addr)).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "connect refused");
    }

    /// A listener with backlog 0 that never accepts: once its queue is full the kernel drops
    /// further SYNs, so connect hangs the way a blackholed peer does.
    #[tokio::test]
    async fn times_out_on_silent_peer() {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        sock.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        sock.listen(0).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        // Fill the accept queue; a filler that hangs too just means the queue is full already.
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(s)) = tokio::time::timeout(
                Duration::from_millis(100),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                fillers.push(s);
            }
        }
        let mut c = tcp_check(addr);
        c.timeout = Duration::from_millis(300);
        let r = Prober::new(&c).unwrap().probe().await;
        assert!(!r.ok, "{r:?}");
        assert_eq!(r.detail, "timed out after 300 ms");
        assert!(r.elapsed >= Duration::from_millis(300), "{r:?}");
        assert!(r.elapsed < Duration::from_millis(600), "{r:?}");
    }

    #[tokio::test]
    async fn binds_source_address() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = tcp_check(l.local_addr().unwrap());
        c.source = Some("127.0.0.2".parse().unwrap());
        let (r, accepted) = tokio::join!(probe_once(&c), l.accept());
        assert!(r.ok, "{r:?}");
        assert_eq!(accepted.unwrap().1.ip().to_string(), "127.0.0.2");
    }

    #[tokio::test]
    async fn source_family_mismatch_is_explained() {
        let mut c = tcp_check("[::1]:9".parse().unwrap());
        c.source = Some("127.0.0.1".parse().unwrap());
        let r = probe_once(&c).await;
        assert!(!r.ok);
        assert_eq!(
            r.detail,
            "source 127.0.0.1 is IPv4 but target [::1]:9 is IPv6"
        );
    }

    #[tokio::test]
    async fn unassigned_source_is_explained() {
        // A documentation address that is not on this machine: bind fails before any packet.
        let mut c = tcp_check("127.0.0.1:9".parse().unwrap());
        c.source = Some("203.0.113.10".parse().unwrap());
        let r = probe_once(&c).await;
        assert!(!r.ok);
        assert_eq!(
            r.detail,
            "bind to source 203.0.113.10 failed: Cannot assign requested address"
        );
    }

    #[tokio::test]
    async fn binds_interface() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = tcp_check(addr);
        c.interface = Some("vw-nosuch0".into());
        let r = probe_once(&c).await;
        assert!(!r.ok);
        // Unprivileged processes may get EPERM before the name is looked up.
        assert!(
            r.detail == "bind to interface vw-nosuch0 failed: No such device"
                || r.detail == "bind to interface vw-nosuch0 failed: Operation not permitted",
            "{r:?}"
        );
        if crate::sys::process::effective_uid() == 0 {
            c.interface = Some("lo".into());
            let r = probe_once(&c).await;
            assert!(r.ok, "{r:?}");
        }
    }
}
