//! Wakes a log follower when its file's directory changes (inotify), so new lines are read within
//! milliseconds of being written instead of at the next poll. The follower still does all the
//! reading (rotation, truncation, partial lines): this only says "look now". Events are drained
//! and not parsed; the caller coalesces wake-ups. When inotify cannot be used (instance or watch
//! limit reached, directory missing) the caller keeps polling; the limit case is logged once per
//! process. Owns only its inotify descriptor.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::unix::AsyncFd;

/// Changes to the directory's entries and to the files in it: writes and truncation (MODIFY),
/// rename rotation (MOVED_*), creation and removal, and the directory itself going away.
const MASK: u32 = libc::IN_MODIFY
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

static LIMIT_LOGGED: AtomicBool = AtomicBool::new(false);

pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    /// Watches the directory holding `file`. Needs a tokio runtime with I/O enabled.
    pub fn new(file: &Path) -> io::Result<DirWatch> {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let cdir = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: plain syscall with flags; returns a new fd or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: valid fd and NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), cdir.as_ptr(), MASK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the OwnedFd owns the inotify fd for its whole life and always returns it.
        let fd = unsafe { AsyncFd::register(fd) }?;
        Ok(DirWatch { fd })
    }

    /// Resolves when something changed in the directory since the last call; drains the queued
    /// events (any number of them counts as one wake-up). Cancel-safe.
    pub async fn changed(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut drained_any = false;
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reading into a local buffer of the given length.
                let n = unsafe {
                    libc::read(
                        self.fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                if n > 0 {
                    drained_any = true;
                    continue;
                }
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if n < 0 && e.kind() != io::ErrorKind::WouldBlock {
                    return Err(e);
                }
                break;
            }
            guard.clear_ready();
            if drained_any {
                return Ok(());
            }
        }
    }
}

/// Whether `e` says a per-user inotify limit is exhausted (instances: EMFILE, watches: ENOSPC).
pub fn is_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENOSPC))
}

/// Logs the fallback to polling for a limit once per process (a fleet-wide limit would otherwise
/// log once per log file and reload); other causes are logged at debug level.
pub fn log_fallback(signal: &str, e: &io::Error) {
    if is_limit(e) {
        if !LIMIT_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                signal,
                "inotify limit reached ({e}): access logs are polled instead (raise \
                 fs.inotify.max_user_watches / max_user_instances); logged once"
            );
        }
    } else {
        tracing::debug!(signal, "no inotify watch ({e}): polling the access log");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::signals::follow::tests::TempDir;

    #[tokio::test]
    async fn writes_renames_and_creations_wake_and_coalesce() {
        let dir = TempDir::new("wake");
        let path = dir.join("access.log");
        std::fs::write(&path, "").unwrap();
        let w = DirWatch::new(&path).unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(50), w.changed()).await;
        assert!(quiet.is_err(), "no change, no wake-up");
        // Many writes before we look: one wake-up, then quiet again.
        for _ in 0..200 {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            std::io::Write::write_all(&mut f, b"line\n").unwrap();
        }
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .unwrap()
            .unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(50), w.changed()).await;
        assert!(quiet.is_err(), "all 200 events drained by one wake-up");
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .unwrap()
            .unwrap();
        std::fs::write(&path, "").unwrap();
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_not_a_panic() {
        let e = match DirWatch::new(Path::new("/nonexistent/vw/access.log")) {
            Err(e) => e,
            Ok(_) => panic!("watch on a missing directory"),
        };
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(!is_limit(&e));
        assert!(is_limit(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_limit(&io::Error::from_raw_os_error(libc::EMFILE)));
    }
}
