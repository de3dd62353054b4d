//! inotify through rustix: a non-blocking descriptor watching one directory, and draining its
//! queued events without parsing them (the caller only wants "something changed").

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

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
