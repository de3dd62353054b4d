//! Wakes a log follower when its file's directory changes (inotify), so new lines are read within
//! milliseconds of being written instead of at the next poll. The follower still does all the
//! reading (rotation, truncation, partial lines): this only says "look now". Events are drained
//! and not parsed; the caller coalesces wake-ups. When inotify cannot be used (instance or watch
//! limit reached, directory missing) the caller keeps polling; the limit case is logged once per
//! process. Owns only its inotify descriptor.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::inotify::WatchFlags;
use tokio::io::unix::AsyncFd;

use crate::sys::{fd, inotify};

/// Changes to the directory's entries and to the files in it: writes and truncation (MODIFY),
/// rename rotation (MOVED_*), creation and removal, and the directory itself going away.
const MASK: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF);

static LIMIT_LOGGED: AtomicBool = AtomicBool::new(false);

/// The directory holding `file` ("." for a bare file name): what a watch on it must watch.
pub fn dir_of(file: &Path) -> &Path {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    /// Watches the directory holding `file`. Needs a tokio runtime with I/O enabled.
    pub fn new(file: &Path) -> io::Result<DirWatch> {
        let fd = fd::async_owned(inotify::watch_dir(dir_of(file), MASK)?)?;
        Ok(DirWatch { fd })
    }

    /// Wraps a descriptor from [`inotify::watch_dir`] made elsewhere (off the runtime, when its
    /// path lookup may block). Needs a tokio runtime with I/O enabled.
    pub fn from_fd(fd: OwnedFd) -> io::Result<DirWatch> {
        Ok(DirWatch {
            fd: fd::async_owned(fd)?,
        })
    }

    /// Resolves when something changed in the directory since the last call; drains the queued
    /// events (any number of them counts as one wake-up). Cancel-safe.
    pub async fn changed(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let drained_any = inotify::drain(self.fd.get_ref())?;
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
