//! The TCP send queue: bytes written but not yet acknowledged by the peer (SIOCOUTQ, called
//! TIOCOUTQ in libc). rustix has no wrapper for this ioctl, so it is the libc call.

use std::os::fd::AsRawFd;

/// Bytes in the socket's send queue not yet acknowledged; None if the kernel will not say.
#[cfg(target_os = "linux")]
pub fn unacked_bytes(socket: &impl AsRawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one c_int through the pointer, which points to a live local.
    let r = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n.max(0) as usize)
}

#[cfg(not(target_os = "linux"))]
pub fn unacked_bytes(_socket: &impl AsRawFd) -> Option<usize> {
    None
}
