//! Raw fd calls of the in-place upgrade (`crate::handover`): a memfd carrying the state blob,
//! taking over fds inherited from the old process, and letting exactly one child inherit a list
//! of fds (FD_CLOEXEC cleared in the child only, between fork and exec, so no other child of this
//! process, e.g. a check's command, can ever hold a BGP socket and keep it alive past our death).

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::FdFlags;

/// A sealed-by-convention memfd holding `data`, CLOEXEC (inherited only through `inherit_fds`).
pub fn memfd_with(name: &str, data: &[u8]) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)?;
    f.rewind()?;
    Ok(OwnedFd::from(f))
}

/// Reads a whole file-like fd (the state memfd) from its start, at most `limit` bytes (plus one,
/// so the caller can tell the blob was larger than allowed).
pub fn read_all(fd: OwnedFd, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::from(fd);
    f.rewind()?;
    let mut out = Vec::new();
    f.take(limit as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

/// Takes ownership of an fd number inherited from the parent (named in the environment or the
/// state blob). Refuses the standard streams and numbers that are not open, and sets CLOEXEC
/// again so the fd goes no further.
pub fn take_inherited(fd: RawFd) -> std::io::Result<OwnedFd> {
    if fd < 3 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("fd {fd} is a standard stream, not a handed-over fd"),
        ));
    }
    // SAFETY: a borrow only for the F_GETFD probe below; fcntl on a closed number fails with
    // EBADF and touches nothing.
    let probe = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = rustix::io::fcntl_getfd(probe)?;
    rustix::io::fcntl_setfd(probe, flags | FdFlags::CLOEXEC)?;
    // SAFETY: the number is open (probed above) and was handed to this process to own: nothing
    // else in this process knows it (it came from the environment or the state blob, once).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `cmd`'s child inherit `fds` (their CLOEXEC flag cleared in the child only; the numbers
/// stay the same). The parent's fds are untouched.
pub fn inherit_fds(cmd: &mut tokio::process::Command, fds: Vec<RawFd>) {
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl (async-signal
    // safe) on numbers that are open in the parent, hence in the child; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                let b = BorrowedFd::borrow_raw(fd);
                let flags = rustix::io::fcntl_getfd(b)?;
                rustix::io::fcntl_setfd(b, flags - FdFlags::CLOEXEC)?;
            }
            Ok(())
        });
    }
}

/// Asks the daemon with `pid` for an in-place upgrade (SIGUSR2).
pub fn signal_upgrade(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("no such PID {pid}"),
            )
        })?;
    rustix::process::kill_process(pid, rustix::process::Signal::USR2)?;
    Ok(())
}

/// The raw number of an fd, for the state blob and the child's environment.
pub fn raw(fd: &impl AsFd) -> RawFd {
    use std::os::fd::AsRawFd;
    fd.as_fd().as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfd_round_trip() {
        let fd = memfd_with("vw-test", b"hello state").unwrap();
        assert_eq!(read_all(fd, 100).unwrap(), b"hello state");
    }

    #[test]
    fn read_all_stops_one_past_the_limit() {
        let fd = memfd_with("vw-test", &[7u8; 50]).unwrap();
        assert_eq!(read_all(fd, 10).unwrap().len(), 11);
    }

    #[test]
    fn standard_streams_and_closed_numbers_are_refused() {
        assert!(take_inherited(1).is_err());
        assert!(take_inherited(987_654).is_err());
    }

    #[test]
    fn an_inherited_number_is_taken_and_cloexec_again() {
        let fd = memfd_with("vw-test", b"x").unwrap();
        let n = raw(&fd);
        std::mem::forget(fd);
        let owned = take_inherited(n).unwrap();
        let flags = rustix::io::fcntl_getfd(&owned).unwrap();
        assert!(flags.contains(FdFlags::CLOEXEC));
    }
}
