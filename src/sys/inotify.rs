//! inotify through rustix: a non-blocking descriptor watching one directory, draining its queued
//! events without parsing them (the callers only want "something changed"), and [`DirWatch`],
//! that descriptor on the tokio reactor. Used by the access-log follower (look now, instead of at
//! the next poll) and the disable files (check now); both keep polling when a watch cannot be
//! made (limits, a missing directory, more files than they watch).

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use tokio::io::unix::AsyncFd;

use super::fd;

/// The kernel's event header, which `drain` never parses but whose size bounds one event.
const INOTIFY_EVENT_LEN: usize = 16;
const _: () = assert!(std::mem::size_of::<libc::inotify_event>() == INOTIFY_EVENT_LEN);

/// Entries created, removed or renamed in a directory, and the directory itself going away; not
/// writes to the files in it (a disable file next to a busy log must not wake its checker).
pub const ENTRY_EVENTS: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF);

/// [`ENTRY_EVENTS`] and writes to the files (MODIFY: appends, truncation): what a log follower
/// wants to hear about.
pub const ENTRY_AND_WRITE_EVENTS: WatchFlags = ENTRY_EVENTS.union(WatchFlags::MODIFY);

/// A non-blocking, close-on-exec inotify descriptor watching `dir` for `mask`. Blocks while the
/// path is looked up (a hung network mount): call it off the async threads once running.
pub fn watch_dir(dir: &Path, mask: WatchFlags) -> io::Result<OwnedFd> {
    let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
    inotify::add_watch(&fd, dir, mask)?;
    Ok(fd)
}

/// Reads every queued event; true when there was at least one. Never blocks (the descriptor is
/// non-blocking); EINTR is retried.
pub fn drain(fd: &OwnedFd) -> io::Result<bool> {
    // Room for many events with names (NAME_MAX 255) per read.
    let mut buf = [0u8; 4096];
    let mut any = false;
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(any),
            Ok(_) => any = true,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(any),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The directory holding `file` ("." for a bare file name): what a watch on it must watch.
pub fn dir_of(file: &Path) -> &Path {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Whether `e` says a per-user inotify limit is exhausted (instances: EMFILE, watches: ENOSPC).
pub fn is_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENOSPC))
}

/// A watched directory on the tokio reactor. Owns only its inotify descriptor.
pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    /// Watches the directory holding `file` for `mask`. Looks the path up on the calling thread;
    /// needs a tokio runtime with I/O enabled.
    pub fn new(file: &Path, mask: WatchFlags) -> io::Result<DirWatch> {
        DirWatch::from_fd(watch_dir(dir_of(file), mask)?)
    }

    /// Wraps a descriptor from [`watch_dir`] made elsewhere (off the runtime, when its path
    /// lookup may block). Needs a tokio runtime with I/O enabled.
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
            let drained_any = drain(self.fd.get_ref())?;
            guard.clear_ready();
            if drained_any {
                return Ok(());
            }
        }
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
        let w = DirWatch::new(&path, ENTRY_AND_WRITE_EVENTS).unwrap();
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
        let e = match DirWatch::new(Path::new("/nonexistent/vw/access.log"), ENTRY_EVENTS) {
            Err(e) => e,
            Ok(_) => panic!("watch on a missing directory"),
        };
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(!is_limit(&e));
        assert!(is_limit(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_limit(&io::Error::from_raw_os_error(libc::EMFILE)));
    }

    #[test]
    fn a_bare_file_name_is_watched_in_the_current_directory() {
        assert_eq!(dir_of(Path::new("maintenance")), Path::new("."));
        assert_eq!(
            dir_of(Path::new("/run/vw/maintenance")),
            Path::new("/run/vw")
        );
    }
}
