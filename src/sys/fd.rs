//! Registering descriptors with tokio's reactor. `AsyncFd::register` is `unsafe` because tokio
//! cannot check that the descriptor outlives the registration; an `OwnedFd` moved into the
//! `AsyncFd` does, so this wrapper is safe for every caller.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// `fd` registered for readiness with the current runtime (needs I/O enabled). `T` owns its
/// descriptor (it converts into an `OwnedFd`: an `OwnedFd` itself, a socket2 `Socket`).
pub fn async_owned<T: AsRawFd + Into<OwnedFd>>(fd: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: the AsyncFd owns the OwnedFd for its whole life and returns or closes it only
    // after deregistering, so the registered descriptor can never be closed or reused under it.
    let registered = unsafe { AsyncFd::register(fd) };
    registered.map_err(|e| e.into_parts().1)
}
