//! Raw OS calls of systemd's file-descriptor store (`crate::handover::fdstore`): a notification
//! carrying fds (`sendmsg` with SCM_RIGHTS on `$NOTIFY_SOCKET`), the `BARRIER=1` wait (systemd
//! closes the pipe end we send once it has processed everything before it), the fds systemd
//! passes at start (`LISTEN_FDS`, from fd 3), and closing a handed-over TCP socket for good.
//! All through rustix; no `unsafe` here beyond what `handover::take_inherited` already argues.

use std::ffi::OsStr;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix};

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// `NOTIFY_SOCKET` as systemd writes it (an absolute path or `@abstract`), as a socket address.
fn notify_addr(socket: &OsStr) -> std::io::Result<SocketAddrUnix> {
    let b = socket.as_bytes();
    match b.first() {
        Some(b'@') => Ok(SocketAddrUnix::new_abstract_name(&b[1..])?),
        Some(b'/') => Ok(SocketAddrUnix::new(b)?),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is not an absolute path or @abstract name",
        )),
    }
}

/// Sends `state` with `fds` attached (SCM_RIGHTS) to systemd's notify socket in one datagram;
/// systemd stores them under the message's `FDNAME=`.
pub fn notify_with_fds(
    sock: BorrowedFd<'_>,
    socket: &OsStr,
    state: &str,
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    let addr = notify_addr(socket)?;
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other(
            "control buffer too small for the fds",
        ));
    }
    let n = rustix::net::sendmsg_addr(
        sock,
        &addr,
        &[IoSlice::new(state.as_bytes())],
        &mut control,
        SendFlags::empty(),
    )?;
    if n != state.len() {
        return Err(std::io::Error::other(format!(
            "short send ({n} of {} bytes)",
            state.len()
        )));
    }
    Ok(())
}

/// [`notify_with_fds`] for fds known by number (sockets owned by paused session tasks until
/// their verdict, a memfd of the caller's): a number that is not open fails with EBADF.
pub fn notify_with_raw_fds(
    sock: BorrowedFd<'_>,
    socket: &OsStr,
    state: &str,
    fds: &[RawFd],
) -> std::io::Result<()> {
    // SAFETY: the borrows live only for this call; the kernel checks every number in SCM_RIGHTS
    // (EBADF for one not open) and only duplicates them, nothing here reads or closes them.
    let borrowed: Vec<BorrowedFd<'_>> = fds
        .iter()
        .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect();
    notify_with_fds(sock, socket, state, &borrowed)
}

/// `BARRIER=1` (systemd >= 246): sends the write end of a fresh pipe and waits until systemd
/// closes it, which it does after processing every notification we sent before. Err on timeout
/// (an older systemd ignores the message and closes the fd at once: that also returns Ok).
pub fn notify_barrier(
    sock: BorrowedFd<'_>,
    socket: &OsStr,
    timeout: Duration,
) -> std::io::Result<()> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    notify_with_fds(sock, socket, "BARRIER=1", &[w.as_fd()])?;
    drop(w);
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    let mut pfd = [rustix::event::PollFd::new(&r, rustix::event::PollFlags::IN)];
    match rustix::event::poll(&mut pfd, Some(&ts))? {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("systemd did not answer BARRIER=1 within {timeout:?}"),
        )),
        _ => Ok(()),
    }
}

/// Takes the `n` fds systemd passed (3, 4, ...): each owned and CLOEXEC from here on.
pub fn take_listen_fds(n: usize) -> Vec<std::io::Result<OwnedFd>> {
    (0..n)
        .map(|i| super::handover::take_inherited(LISTEN_FDS_START + i as RawFd))
        .collect()
}

/// True for a TCP socket (a BGP session), false for anything else (UDP BFD sockets, the memfd).
pub fn is_tcp(fd: BorrowedFd<'_>) -> bool {
    use rustix::net::{AddressFamily, SocketType};
    let Ok(t) = rustix::net::sockopt::socket_type(fd) else {
        return false;
    };
    let Ok(d) = rustix::net::sockopt::socket_domain(fd) else {
        return false;
    };
    t == SocketType::STREAM && (d == AddressFamily::INET || d == AddressFamily::INET6)
}

/// Writes `bytes` (a whole NOTIFICATION) without blocking, then shuts the connection down both
/// ways: the peer gets the message and a FIN now, whoever else still holds the fd (systemd's
/// store). Best effort: a full send buffer or a dead connection only loses the message.
pub fn close_tcp_with(fd: BorrowedFd<'_>, bytes: &[u8]) {
    let _ = rustix::net::send(fd, bytes, SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
    let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn fds_reach_the_receiver_with_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        let memfd = super::super::handover::memfd_with("vw-test", b"blob").unwrap();
        notify_with_fds(
            tx.as_fd(),
            path.as_os_str(),
            "FDSTORE=1\nFDNAME=vw-state",
            &[memfd.as_fd()],
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let r = rustix::net::recvmsg(
            &rx,
            &mut iov,
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .unwrap();
        assert_eq!(&buf[..r.bytes], b"FDSTORE=1\nFDNAME=vw-state");
        let mut got = None;
        for m in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = m {
                got = fds.next();
            }
        }
        let fd = got.expect("an fd came with the message");
        assert_eq!(super::super::handover::read_all(fd, 100).unwrap(), b"blob");
    }

    #[test]
    fn a_relative_notify_socket_is_refused() {
        let tx = UnixDatagram::unbound().unwrap();
        assert!(notify_with_fds(tx.as_fd(), OsStr::new("relative"), "X=1", &[]).is_err());
    }

    #[test]
    fn tcp_is_told_from_udp() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(is_tcp(c.as_fd()));
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!is_tcp(u.as_fd()));
    }
}
