//! Outgoing TCP connections with the check's source address and interface applied, so a probe
//! takes the same path (and return path) as the traffic it vouches for.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use super::detail::io_reason;

/// Where and how a probe connects from; copied out of the check config once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bind {
    pub source: Option<IpAddr>,
    pub interface: Option<String>,
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Connects to `target`. Not bounded in time: callers wrap the whole probe in the check timeout.
pub(crate) async fn connect(target: SocketAddr, bind: &Bind) -> Result<TcpStream, String> {
    if let Some(src) = bind.source {
        if src.is_ipv4() != target.is_ipv4() {
            return Err(format!(
                "source {src} is {} but target {target} is {}",
                family(src),
                family(target.ip())
            ));
        }
    }
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("cannot create socket: {}", io_reason(&e)))?;
    if let Some(ifname) = &bind.interface {
        bind_device(&socket, ifname)
            .map_err(|e| format!("bind to interface {ifname} failed: {}", io_reason(&e)))?;
    }
    if let Some(src) = bind.source {
        socket
            .bind(SocketAddr::new(src, 0))
            .map_err(|e| format!("bind to source {src} failed: {}", io_reason(&e)))?;
    }
    socket
        .connect(target)
        .await
        .map_err(|e| connect_error(target, &e))
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn bind_device(socket: &TcpSocket, ifname: &str) -> io::Result<()> {
    socket2::SockRef::from(socket).bind_device(Some(ifname.as_bytes()))
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn bind_device(_socket: &TcpSocket, _ifname: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "interface binding needs Linux (SO_BINDTODEVICE)",
    ))
}

fn connect_error(target: SocketAddr, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "connect refused".to_string(),
        Some(libc::EHOSTUNREACH) => "no route to host".to_string(),
        Some(libc::ENETUNREACH) => "network unreachable".to_string(),
        _ => format!("connect to {target} failed: {}", io_reason(e)),
    }
}
