//! Process-level calls through rustix: who we are, our limits and kernel constants, and killing a
//! process group. All safe wrappers; rustix does the raw syscalls.

use std::io;

use rustix::process::{self, Pid, Resource, Signal};

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    process::geteuid().as_raw()
}

/// Whether this process's parent is PID 1 (the init system, e.g. systemd).
pub fn parent_is_init() -> bool {
    process::getppid().is_some_and(|p| p.as_raw_nonzero().get() == 1)
}

/// SIGKILL to every process of group `pgid`. A group already gone (ESRCH) is not an error to
/// callers that only want it gone; they ignore the result.
pub fn kill_process_group(pgid: i32) -> io::Result<()> {
    let pid = Pid::from_raw(pgid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "process group 0"))?;
    process::kill_process_group(pid, Signal::KILL).map_err(io::Error::from)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, the unit of /proc CPU times).
pub fn clock_ticks_per_second() -> u64 {
    // libc, not rustix::param (why: the module list in sys/mod.rs).
    // SAFETY: sysconf takes a constant and touches no caller memory.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// The page size (`sysconf(_SC_PAGESIZE)`, the unit of /proc RSS).
pub fn page_size() -> usize {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// The soft RLIMIT_NOFILE; None when unlimited.
pub fn max_open_files() -> Option<u64> {
    process::getrlimit(Resource::Nofile).current
}

/// A pidfd for `pid` (close-on-exec): readable once the process has exited.
pub fn pidfd_open(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(process::pidfd_open(pid, process::PidfdFlags::empty())?)
}

/// Whether the process behind a pidfd has exited (zombie or reaped), without waiting.
pub fn pidfd_exited(fd: &std::os::fd::OwnedFd) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
        && fds[0].revents().intersects(PollFlags::IN | PollFlags::HUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_sane() {
        assert!(clock_ticks_per_second() > 0);
        assert!(page_size().is_power_of_two());
        assert!(max_open_files().is_none_or(|n| n > 0));
        // A group that cannot exist: an error, not a panic.
        assert!(kill_process_group(0).is_err());
        assert!(kill_process_group(i32::MAX).is_err());
        let _ = effective_uid();
    }
}
