//! Loopback tests between two sockets of ours: a listener with the peer's key (or minimum TTL) set
//! as a router would, and `connect` with the right and the wrong options.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn opts(auth: Auth, ttl_security: bool, timeout_ms: u64) -> Options {
    Options {
        auth,
        ttl_security,
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn md5(k: &str) -> Auth {
    Auth::Md5(Secret::new(k.as_bytes()))
}

fn ao(k: &str, send_id: u8, recv_id: u8) -> Auth {
    Auth::Ao(AoKey {
        key: Secret::new(k.as_bytes()),
        send_id,
        recv_id,
        algorithm: AoAlgorithm::HmacSha256,
    })
}

/// A listener on `ip`, port 0, with `prepare` applied to its fd before bind (as a router does).
fn listener(ip: IpAddr, prepare: impl FnOnce(RawFd)) -> tokio::net::TcpListener {
    let domain = if ip.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    prepare(s.as_raw_fd());
    s.bind(&SocketAddr::new(ip, 0).into()).unwrap();
    s.listen(8).unwrap();
    s.set_nonblocking(true).unwrap();
    tokio::net::TcpListener::from_std(s.into()).unwrap()
}

/// Connects with `o`; on success the listener must accept the same connection.
async fn try_connect(l: &tokio::net::TcpListener, o: &Options) -> Result<(), ConnectError> {
    let addr = l.local_addr().unwrap();
    let stream = connect(addr, None, o).await?;
    let (accepted, from) = tokio::time::timeout(Duration::from_secs(2), l.accept())
        .await
        .expect("accept")
        .unwrap();
    assert_eq!(from, stream.local_addr().unwrap());
    drop(accepted);
    Ok(())
}

use crate::sys::sockopt::getsockopt_int;

#[test]
fn kernel_struct_sizes_match_the_uapi_headers() {
    assert_eq!(size_of::<TcpMd5Sig>(), 216);
    assert_eq!(size_of::<TcpAoAdd>(), 288);
    assert_eq!(std::mem::offset_of!(TcpAoAdd, ifindex), 192);
    assert_eq!(std::mem::offset_of!(TcpAoAdd, prefix), 202);
    assert_eq!(std::mem::offset_of!(TcpAoAdd, keylen), 207);
    assert_eq!(std::mem::offset_of!(TcpAoAdd, key), 208);
}

#[test]
fn secrets_never_print() {
    let o = opts(md5("hunter2-md5"), true, 100);
    assert!(!format!("{o:?}").contains("hunter2"));
    let o = opts(ao("hunter2-ao", 1, 2), false, 100);
    assert!(!format!("{o:?}").contains("hunter2"));
}

#[tokio::test]
async fn md5_right_key_connects_v4_and_v6() {
    for ip in [V4, V6] {
        let l = listener(ip, |fd| set_md5(fd, ip, b"s3cret").unwrap());
        try_connect(&l, &opts(md5("s3cret"), false, 2000))
            .await
            .unwrap_or_else(|e| panic!("{ip}: {e}"));
    }
}

#[tokio::test]
async fn md5_wrong_or_missing_key_is_a_silent_timeout_explained_in_the_error() {
    let l = listener(V4, |fd| set_md5(fd, V4, b"router-key").unwrap());
    for (auth, hint) in [
        (
            md5("other-key"),
            "wrong or missing TCP-MD5 signature silently); or the router requires GTSM",
        ),
        (Auth::None, "set peers[].password_file"),
    ] {
        let e = try_connect(&l, &opts(auth, false, 600)).await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnectError::TimedOut {
                    peer_answers: true,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("no answer; check the TCP-MD5 key on both sides"),
            "{msg}"
        );
        assert!(msg.contains(hint), "{msg}");
        assert!(!msg.contains("other-key") && !msg.contains("router-key"));
    }
}

#[tokio::test]
async fn md5_signed_syn_to_an_unkeyed_listener_fails() {
    // The listener's kernel drops a signed SYN it has no key for (TCPMD5Unexpected).
    let l = listener(V4, |_| {});
    let e = try_connect(&l, &opts(md5("s3cret"), false, 600))
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::TimedOut { .. }), "{e:?}");
}

#[tokio::test]
async fn tcp_ao_right_key_connects_wrong_key_or_ids_time_out() {
    if let Err(why) = tcp_ao_supported() {
        // This kernel (e.g. 6.18 built without CONFIG_TCP_AO) cannot sign: connect must fail
        // loudly, never fall back to an unsigned session.
        assert!(matches!(why, AoUnsupported::NoAo), "{why}");
        assert!(why.to_string().contains("no TCP-AO"), "{why}");
        let l = listener(V4, |_| {});
        let e = try_connect(&l, &opts(ao("ao-secret", 1, 2), false, 2000))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ConnectError::SetOption {
                    option: "TCP_AO_ADD_KEY",
                    ..
                }
            ),
            "{e:?}"
        );
        eprintln!("TCP-AO round trip not run: {why}");
        return;
    }
    for ip in [V4, V6] {
        // The listener (router) sends with id 2 and expects 1; we send 1 and expect 2.
        let l = listener(ip, |fd| {
            let Auth::Ao(k) = ao("ao-secret", 2, 1) else {
                unreachable!()
            };
            set_ao(fd, ip, &k).unwrap()
        });
        try_connect(&l, &opts(ao("ao-secret", 1, 2), false, 2000))
            .await
            .unwrap_or_else(|e| panic!("{ip}: {e}"));
        for bad in [ao("not-the-key", 1, 2), ao("ao-secret", 3, 2)] {
            let e = try_connect(&l, &opts(bad, false, 600)).await.unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("no answer; check the TCP-AO key"),
                "{ip}: {msg}"
            );
        }
    }
}

#[tokio::test]
async fn gtsm_sets_ttl_255_and_min_254_v4_and_v6() {
    // The listener plays a GTSM router: it sends with TTL 255 too, or our minimum drops its SYN-ACK.
    let l4 = listener(V4, |fd| {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &255).unwrap()
    });
    let s = connect(
        l4.local_addr().unwrap(),
        None,
        &opts(Auth::None, true, 2000),
    )
    .await
    .unwrap();
    let fd = s.as_raw_fd();
    assert_eq!(getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL), 255);
    assert_eq!(getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL), 254);

    let l6 = listener(V6, |fd| {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &255).unwrap()
    });
    let s = connect(
        l6.local_addr().unwrap(),
        None,
        &opts(Auth::None, true, 2000),
    )
    .await
    .unwrap();
    let fd = s.as_raw_fd();
    assert_eq!(
        getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS),
        255
    );
    assert_eq!(
        getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT),
        254
    );

    // Without ttl_security the kernel's defaults stay (no minimum).
    let s = connect(
        l4.local_addr().unwrap(),
        None,
        &opts(Auth::None, false, 2000),
    )
    .await
    .unwrap();
    assert_eq!(
        getsockopt_int(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MINTTL),
        0
    );
}

#[tokio::test]
async fn gtsm_listener_refuses_a_low_ttl_and_accepts_ttl_255() {
    // A router with GTSM for a directly connected peer: accept only TTL 255 here (loopback does
    // not decrement), so the default TTL (64) is dropped silently.
    let l = listener(V4, |fd| {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &255).unwrap();
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &255).unwrap()
    });
    let e = try_connect(&l, &opts(Auth::None, false, 600))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("requires GTSM"), "{msg}");
    try_connect(&l, &opts(Auth::None, true, 2000))
        .await
        .unwrap();
    // GTSM on our side only: the router's SYN-ACK (TTL 64) is below our minimum.
    let plain = listener(V4, |_| {});
    let e = try_connect(&plain, &opts(Auth::None, true, 600))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("no answer; check GTSM (ttl_security) on both sides"),
        "{msg}"
    );
}

#[test]
fn a_silent_address_is_not_blamed_on_the_key() {
    // Nothing answers, not even a closed port: link, address or filter, not the key.
    let e = ConnectError::TimedOut {
        peer: SocketAddr::new(IpAddr::from([192, 0, 2, 1]), 179),
        local: Some(IpAddr::from([192, 0, 2, 2])),
        after: Duration::from_secs(5),
        auth: Some("TCP-MD5"),
        ttl_security: false,
        peer_answers: false,
    };
    assert_eq!(
        e.to_string(),
        "connect to 192.0.2.1:179 from 192.0.2.2 timed out after 5 s; 192.0.2.1 does not answer \
         other traffic either (link down, wrong address, or filtered)"
    );
}

#[test]
fn key_length_is_checked_before_the_kernel() {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    assert!(set_md5(s.as_raw_fd(), V4, &[b'x'; 81]).is_err());
    assert!(set_md5(s.as_raw_fd(), V4, b"").is_err());
    assert!(set_md5(s.as_raw_fd(), V4, &[b'x'; 80]).is_ok());
}
