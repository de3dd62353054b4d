//! The BGP connecting socket: TCP-MD5 (RFC 2385), TCP-AO (RFC 5925) and GTSM (RFC 5082) set with
//! setsockopt before connect, the bounded connect itself, and an explanation of the silent
//! failures these options cause (a router drops segments with a bad or missing signature, or a
//! low TTL, without answering).
//!
//! Owns: socket options, key material at the socket boundary (`Secret`, never printed), the
//! kernel probe for TCP-AO. May not touch: sessions, config types, logging of anything secret.
//! It imports nothing from the rest of the crate, so config and the session driver can both use it.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use zeroize::Zeroizing;

/// Longest key the kernel accepts, for TCP-MD5 and TCP-AO alike.
pub const MAX_KEY_LEN: usize = 80;

/// GTSM with the peer one hop away: send TTL 255, accept only >= 254 (RFC 5082 3).
const GTSM_TTL: u32 = 255;
const GTSM_MIN_TTL: u32 = 254;

/// `TCP_AO_ADD_KEY` from `include/uapi/linux/tcp.h` (Linux >= 6.7; Debian 12's headers predate it).
const TCP_AO_ADD_KEY: libc::c_int = 38;
/// RFC 5925 leaves the MAC length to the algorithm; 12 octets (96 bits) is the common choice and
/// what the kernel picks for 0.
const AO_MAC_LEN: u8 = 12;

/// After a connect timeout: how long the liveness probe may take, and the port it knocks on. A
/// closed port answers with a RST even when port 179 is silent because of a signature or TTL
/// check; port 1 (tcpmux) is essentially never open on a router.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const PROBE_PORT: u16 = 1;

/// Key bytes. `Debug` never shows them; nothing in this crate formats them anywhere. Zeroed
/// when the last copy is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<Zeroizing<Box<[u8]>>>);

impl Secret {
    /// Copies the key; the caller zeroes its own buffer (config reads into a `Zeroizing` one).
    pub fn new(bytes: impl AsRef<[u8]>) -> Secret {
        Secret(Arc::new(Zeroizing::new(bytes.as_ref().into())))
    }

    /// The key, for the setsockopt call only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// TCP-AO MAC algorithms we configure (the config spells them as in RFC 5926 style names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AoAlgorithm {
    HmacSha256,
}

impl AoAlgorithm {
    pub fn parse(s: &str) -> Option<AoAlgorithm> {
        match s {
            "hmac-sha-256" => Some(AoAlgorithm::HmacSha256),
            _ => None,
        }
    }

    /// The kernel crypto API's name for it.
    fn kernel_name(self) -> &'static str {
        match self {
            AoAlgorithm::HmacSha256 => "hmac(sha256)",
        }
    }
}

/// One TCP-AO master key tuple (RFC 5925 3.1) for the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AoKey {
    pub key: Secret,
    pub send_id: u8,
    pub recv_id: u8,
    pub algorithm: AoAlgorithm,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Md5(Secret),
    Ao(AoKey),
}

impl Auth {
    fn label(&self) -> Option<&'static str> {
        match self {
            Auth::None => None,
            Auth::Md5(_) => Some("TCP-MD5"),
            Auth::Ao(_) => Some("TCP-AO"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub auth: Auth,
    /// GTSM: send with TTL/hop limit 255 and accept only >= 254.
    pub ttl_security: bool,
    pub timeout: Duration,
}

/// Why a connect failed. `Display` is the text shown in status and logs.
#[derive(Debug)]
pub enum ConnectError {
    Socket(io::Error),
    Bind {
        local: IpAddr,
        source: io::Error,
    },
    SetOption {
        option: &'static str,
        source: io::Error,
    },
    /// No SYN-ACK within the timeout. `peer_answers`: a probe of a closed port on the same address
    /// got an answer, so the host is there and port 179 is silent for us only.
    TimedOut {
        peer: SocketAddr,
        local: Option<IpAddr>,
        after: Duration,
        auth: Option<&'static str>,
        ttl_security: bool,
        peer_answers: bool,
    },
    Failed {
        peer: SocketAddr,
        local: Option<IpAddr>,
        source: io::Error,
    },
}

fn from(local: &Option<IpAddr>) -> String {
    local.map(|a| format!(" from {a}")).unwrap_or_default()
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Socket(e) => write!(f, "cannot create socket: {e}"),
            ConnectError::Bind { local, source } => {
                write!(f, "cannot bind local address {local}: {source}")
            }
            ConnectError::SetOption { option, source } => {
                write!(f, "cannot set {option} on the socket: {source}")
            }
            ConnectError::Failed {
                peer,
                local,
                source,
            } => write!(f, "connect to {peer}{} failed: {source}", from(local)),
            ConnectError::TimedOut {
                peer,
                local,
                after,
                auth,
                ttl_security,
                peer_answers,
            } => {
                let secs = after.as_secs_f64();
                let ip = peer.ip();
                if !peer_answers {
                    return write!(
                        f,
                        "connect to {peer}{} timed out after {secs} s; {ip} does not answer other \
                         traffic either (link down, wrong address, or filtered)",
                        from(local)
                    );
                }
                let (lead, why) = match (auth, ttl_security) {
                    (Some("TCP-AO"), _) => (
                        "check the TCP-AO key, send_id/recv_id and algorithm on both sides",
                        "a router drops segments with a bad or missing TCP-AO MAC silently",
                    ),
                    (Some(_), _) => (
                        "check the TCP-MD5 key on both sides",
                        "a router drops segments with a wrong or missing TCP-MD5 signature silently",
                    ),
                    (None, true) => (
                        "check GTSM (ttl_security) on both sides and that the router is directly \
                         connected",
                        "GTSM drops segments that crossed an extra hop silently; a router with a \
                         TCP-MD5 password also drops unsigned connections silently (set \
                         peers[].password_file)",
                    ),
                    (None, false) => (
                        "check the TCP-MD5 key on both sides",
                        "a router with a TCP-MD5 password drops unsigned connections silently: \
                         set peers[].password_file",
                    ),
                };
                let gtsm = match (auth, ttl_security) {
                    (None, true) => "",
                    (_, true) => {
                        "; or GTSM: ttl_security is off on the router, or the router is not \
                         directly connected"
                    }
                    (_, false) => "; or the router requires GTSM (ttl_security)",
                };
                write!(
                    f,
                    "no answer; {lead}: {peer}{} did not answer within {secs} s while {ip} answers \
                     other traffic ({why}){gtsm}",
                    from(local)
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// Connects to `peer` with `opts` applied before the SYN leaves, optionally from `local`, bounded
/// by `opts.timeout`; Nagle off (small BGP messages). A timeout is followed by a short liveness
/// probe so that the error can say what a silent drop most likely means.
pub async fn connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    opts: &Options,
) -> Result<TcpStream, ConnectError> {
    let sock = new_socket(peer)?;
    apply(sock.as_raw_fd(), peer.ip(), opts)?;
    if let Some(l) = local {
        sock.bind(SocketAddr::new(l, 0))
            .map_err(|source| ConnectError::Bind { local: l, source })?;
    }
    let stream = match tokio::time::timeout(opts.timeout, sock.connect(peer)).await {
        Err(_) => {
            return Err(ConnectError::TimedOut {
                peer,
                local,
                after: opts.timeout,
                auth: opts.auth.label(),
                ttl_security: opts.ttl_security,
                peer_answers: answers(peer.ip(), local).await,
            })
        }
        Ok(Err(source)) => {
            return Err(ConnectError::Failed {
                peer,
                local,
                source,
            })
        }
        Ok(Ok(s)) => s,
    };
    stream
        .set_nodelay(true)
        .map_err(|source| ConnectError::SetOption {
            option: "TCP_NODELAY",
            source,
        })?;
    Ok(stream)
}

fn new_socket(peer: SocketAddr) -> Result<TcpSocket, ConnectError> {
    match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(ConnectError::Socket)
}

/// Sets the options of `opts` on an unconnected socket for talking to `peer`.
pub(crate) fn apply(fd: RawFd, peer: IpAddr, opts: &Options) -> Result<(), ConnectError> {
    match &opts.auth {
        Auth::None => {}
        Auth::Md5(key) => {
            set_md5(fd, peer, key.expose()).map_err(|source| ConnectError::SetOption {
                option: "TCP_MD5SIG",
                source,
            })?
        }
        Auth::Ao(key) => set_ao(fd, peer, key).map_err(|source| ConnectError::SetOption {
            option: "TCP_AO_ADD_KEY",
            source,
        })?,
    }
    if opts.ttl_security {
        set_gtsm(fd, peer, GTSM_TTL, GTSM_MIN_TTL)?;
    }
    Ok(())
}

/// True when `ip` answers a TCP SYN to a closed port (RST or, unlikely, an accept) in time.
async fn answers(ip: IpAddr, local: Option<IpAddr>) -> bool {
    let target = SocketAddr::new(ip, PROBE_PORT);
    let Ok(sock) = new_socket(target) else {
        return false;
    };
    if let Some(l) = local {
        if sock.bind(SocketAddr::new(l, 0)).is_err() {
            return false;
        }
    }
    match tokio::time::timeout(PROBE_TIMEOUT, sock.connect(target)).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.kind() == io::ErrorKind::ConnectionRefused,
        Err(_) => false,
    }
}

/// Why TCP-AO cannot be used on this host.
#[derive(Debug)]
pub enum AoUnsupported {
    /// The probe socket itself could not be made.
    Socket(io::Error),
    /// ENOPROTOOPT: the kernel has no TCP-AO at all.
    NoAo,
    /// ENOENT: the kernel lacks the MAC algorithm.
    Algorithm(io::Error),
    Refused(io::Error),
}

impl fmt::Display for AoUnsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AoUnsupported::Socket(e) => {
                write!(f, "cannot create a socket to probe for TCP-AO: {e}")
            }
            AoUnsupported::NoAo => f.write_str(
                "this kernel has no TCP-AO (setsockopt TCP_AO_ADD_KEY: not supported; it needs \
                 Linux >= 6.7 built with CONFIG_TCP_AO)",
            ),
            AoUnsupported::Algorithm(e) => write!(
                f,
                "this kernel cannot compute {} for TCP-AO ({e})",
                AoAlgorithm::HmacSha256.kernel_name()
            ),
            AoUnsupported::Refused(e) => write!(f, "this kernel refused a TCP-AO key: {e}"),
        }
    }
}

impl std::error::Error for AoUnsupported {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AoUnsupported::Socket(e) | AoUnsupported::Algorithm(e) | AoUnsupported::Refused(e) => {
                Some(e)
            }
            AoUnsupported::NoAo => None,
        }
    }
}

/// Does this kernel do TCP-AO? Err explains why not (for a config error, never a downgrade).
pub fn tcp_ao_supported() -> Result<(), AoUnsupported> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(AoUnsupported::Socket)?;
    let probe = AoKey {
        key: Secret::new(b"probe"),
        send_id: 1,
        recv_id: 1,
        algorithm: AoAlgorithm::HmacSha256,
    };
    match set_ao(sock.as_raw_fd(), IpAddr::from([127, 0, 0, 1]), &probe) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Err(AoUnsupported::NoAo),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(AoUnsupported::Algorithm(e)),
        Err(e) => Err(AoUnsupported::Refused(e)),
    }
}

// ------------------------------------------------------------------ raw options --

/// `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

/// `struct tcp_ao_add` (include/uapi/linux/tcp.h, Linux >= 6.7), `__attribute__((aligned(8)))`.
#[repr(C, align(8))]
struct TcpAoAdd {
    addr: libc::sockaddr_storage,
    alg_name: [u8; 64],
    ifindex: i32,
    /// Bit 0 set_current, bit 1 set_rnext, 30 reserved bits (must be 0).
    flags: u32,
    reserved2: u16,
    prefix: u8,
    sndid: u8,
    rcvid: u8,
    maclen: u8,
    keyflags: u8,
    keylen: u8,
    key: [u8; MAX_KEY_LEN],
}

use crate::sys::sockopt::{setsockopt, storage_of};

fn key_array(key: &[u8]) -> io::Result<[u8; MAX_KEY_LEN]> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("key must be 1-{MAX_KEY_LEN} bytes"),
        ));
    }
    let mut a = [0u8; MAX_KEY_LEN];
    a[..key.len()].copy_from_slice(key);
    Ok(a)
}

/// TCP-MD5 key for segments to and from `peer` (the whole address).
pub(crate) fn set_md5(fd: RawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    let (addr, _) = storage_of(peer);
    let sig = TcpMd5Sig {
        addr,
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: key_array(key)?,
    };
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// TCP-AO master key tuple for `peer` (the whole address). The first key added becomes the
/// current one, so no set_current is needed (and it is refused on a listening socket).
pub(crate) fn set_ao(fd: RawFd, peer: IpAddr, k: &AoKey) -> io::Result<()> {
    let (addr, prefix) = storage_of(peer);
    let mut alg_name = [0u8; 64];
    let n = k.algorithm.kernel_name().as_bytes();
    alg_name[..n.len()].copy_from_slice(n);
    let key = k.key.expose();
    let add = TcpAoAdd {
        addr,
        alg_name,
        ifindex: 0,
        flags: 0,
        reserved2: 0,
        prefix,
        sndid: k.send_id,
        rcvid: k.recv_id,
        maclen: AO_MAC_LEN,
        keyflags: 0,
        keylen: key.len() as u8,
        key: key_array(key)?,
    };
    setsockopt(fd, libc::IPPROTO_TCP, TCP_AO_ADD_KEY, &add)
}

/// GTSM: outgoing TTL/hop limit and the minimum accepted on incoming segments.
pub(crate) fn set_gtsm(fd: RawFd, peer: IpAddr, ttl: u32, min: u32) -> Result<(), ConnectError> {
    let opt = |option: &'static str| move |source| ConnectError::SetOption { option, source };
    let (ttl, min) = (ttl as libc::c_int, min as libc::c_int);
    match peer {
        IpAddr::V4(_) => {
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl).map_err(opt("IP_TTL"))?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &min).map_err(opt("IP_MINTTL"))
        }
        IpAddr::V6(_) => {
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)
                .map_err(opt("IPV6_UNICAST_HOPS"))?;
            setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &min)
                .map_err(opt("IPV6_MINHOPCOUNT"))
        }
    }
}

#[cfg(test)]
mod tests;
