//! `tail -F` for one access log: the I/O edge of the signal pipeline. Checks file identity
//! (dev+inode) and size on each poll rather than trusting inotify's event details (linemux lost
//! lines on rename in a probe, see notes/signals.md); inotify (`sys::inotify::DirWatch`) only says when to
//! poll. Handles rename rotation (drain the old descriptor, then open the new
//! path), copytruncate (size below our offset: start over at 0), lines written in pieces, and a
//! missing or unreadable file (reported, retried, never fatal).
//!
//! `poll` does blocking std I/O in large chunks; the async caller runs it via `spawn_blocking`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lines::{LineAssembler, DEFAULT_MAX_LINE};

#[derive(Clone, Debug, PartialEq)]
pub struct FollowOptions {
    /// Pause between polls when the file had nothing new.
    pub poll_interval: Duration,
    /// Start at the end of a file that exists at startup (live mode); `false` reads it whole.
    pub start_at_end: bool,
    /// Longer lines are counted as discarded and skipped.
    pub max_line: usize,
    /// Size of one `read` call.
    pub read_chunk: usize,
    /// Upper bound of bytes read in one `poll`, so one poll never runs unbounded on a huge backlog.
    pub max_bytes_per_poll: u64,
    /// How long the path may be absent while we hold the old descriptor (between a rename and
    /// the writer creating the new file) before the log counts as missing.
    pub vanish_grace: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            start_at_end: true,
            max_line: DEFAULT_MAX_LINE,
            read_chunk: 256 * 1024,
            max_bytes_per_poll: 16 * 1024 * 1024,
            vanish_grace: Duration::from_secs(5),
        }
    }
}

/// Lifetime counters of a follower.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowCounters {
    pub lines: u64,
    pub bytes: u64,
    pub rotations: u64,
    pub truncations: u64,
    pub open_errors: u64,
}

/// Result of one `poll`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub lines: u64,
    pub bytes: u64,
    /// The byte budget ran out with data left: poll again without sleeping.
    pub more_pending: bool,
}

struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
}

pub struct LogFollower {
    path: PathBuf,
    opts: FollowOptions,
    file: Option<OpenFile>,
    /// Whether the next open seeks to the end: true for a file that existed before we could read
    /// it, false for a file that appeared later (rotation, creation), whose every line is new.
    open_at_end: bool,
    /// Identity and offset of a file we lost to a read error, to resume it without re-reading.
    resume: Option<(u64, u64, u64)>,
    asm: LineAssembler,
    buf: Vec<u8>,
    missing: Option<String>,
    path_gone_since: Option<Instant>,
    counters: FollowCounters,
}

impl std::fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFollower")
            .field("path", &self.path)
            .field("missing", &self.missing)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl LogFollower {
    pub fn new(path: impl Into<PathBuf>, opts: FollowOptions) -> Self {
        Self {
            path: path.into(),
            open_at_end: opts.start_at_end,
            resume: None,
            asm: LineAssembler::new(opts.max_line),
            buf: vec![0; opts.read_chunk.max(4096)],
            file: None,
            missing: None,
            path_gone_since: None,
            counters: FollowCounters::default(),
            opts,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &FollowOptions {
        &self.opts
    }

    /// Why the log cannot be read right now; `None` while it is being followed.
    pub fn missing(&self) -> Option<&str> {
        self.missing.as_deref()
    }

    pub fn counters(&self) -> &FollowCounters {
        &self.counters
    }

    /// Lines dropped since the last call (over-long, or cut off by rotation or truncation).
    pub fn take_discarded(&mut self) -> u64 {
        self.asm.take_discarded()
    }

    /// Reads whatever is new and calls `on_line` for each complete line. Never fails: problems
    /// become `missing()` and are retried on the next poll.
    pub fn poll<F: FnMut(&[u8])>(&mut self, on_line: &mut F) -> PollReport {
        let mut report = PollReport::default();
        if self.file.is_none() && !self.open() {
            return report;
        }
        if !self.drain(on_line, &mut report) {
            return report;
        }
        if report.more_pending {
            return report;
        }
        self.check_truncation(on_line, &mut report);
        self.check_rotation(on_line, &mut report);
        report
    }

    fn open(&mut self) -> bool {
        let opened = File::open(&self.path).and_then(|f| {
            let m = f.metadata()?;
            Ok((f, m))
        });
        let (mut file, meta) = match opened {
            Ok(x) => x,
            Err(e) => {
                // A file that appears later was created after we started: read it from the top.
                if e.kind() == io::ErrorKind::NotFound {
                    self.open_at_end = false;
                }
                self.counters.open_errors += 1;
                self.missing = Some(format!("{}: {e}", self.path.display()));
                return false;
            }
        };
        let (dev, ino) = (meta.dev(), meta.ino());
        let offset = match self.resume.take() {
            Some((d, i, off)) if (d, i) == (dev, ino) && off <= meta.len() => off,
            _ if self.open_at_end => meta.len(),
            _ => 0,
        };
        if offset > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                self.missing = Some(format!("{}: seek: {e}", self.path.display()));
                return false;
            }
            let mut last = [0u8; 1];
            if file.read_at(&mut last, offset - 1).is_ok_and(|n| n == 1) && last[0] != b'\n' {
                self.asm.skip_to_newline();
            }
        }
        self.open_at_end = false;
        self.missing = None;
        self.path_gone_since = None;
        self.file = Some(OpenFile {
            file,
            dev,
            ino,
            offset,
        });
        true
    }

    /// Reads to EOF or to the byte budget. Returns false if the file was lost to a read error.
    fn drain<F: FnMut(&[u8])>(&mut self, on_line: &mut F, report: &mut PollReport) -> bool {
        let Some(of) = self.file.as_mut() else {
            return false;
        };
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut count = |l: &[u8]| {
            lines += 1;
            on_line(l);
        };
        loop {
            if report.bytes >= self.opts.max_bytes_per_poll {
                report.more_pending = true;
                break;
            }
            match of.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    of.offset += n as u64;
                    bytes += n as u64;
                    report.bytes += n as u64;
                    self.asm.feed(&self.buf[..n], &mut count);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.resume = Some((of.dev, of.ino, of.offset));
                    self.missing = Some(format!("{}: read: {e}", self.path.display()));
                    self.file = None;
                    self.asm.discard_partial();
                    break;
                }
            }
        }
        report.lines += lines;
        self.counters.lines += lines;
        self.counters.bytes += bytes;
        self.file.is_some()
    }

    /// copytruncate: the file shrank below what we read, so it was truncated and rewritten.
    fn check_truncation<F: FnMut(&[u8])>(&mut self, on_line: &mut F, report: &mut PollReport) {
        let Some(of) = self.file.as_mut() else {
            return;
        };
        let Ok(meta) = of.file.metadata() else {
            return;
        };
        if meta.len() >= of.offset {
            return;
        }
        if of.file.seek(SeekFrom::Start(0)).is_err() {
            self.file = None;
            return;
        }
        of.offset = 0;
        self.counters.truncations += 1;
        self.asm.discard_partial();
        self.drain(on_line, report);
    }

    /// Rename rotation: the path now names another file. The old descriptor was just drained to
    /// EOF; since the writer created the new file, it is done with the old one.
    fn check_rotation<F: FnMut(&[u8])>(&mut self, on_line: &mut F, report: &mut PollReport) {
        let Some(of) = self.file.as_ref() else {
            return;
        };
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == (of.dev, of.ino) => {
                self.path_gone_since = None;
            }
            Ok(_) => {
                // Catch bytes the writer appended between our last read and the stat.
                if self.drain(on_line, report) && !report.more_pending {
                    self.switch_file(on_line, report);
                }
            }
            Err(e) => {
                let since = *self.path_gone_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.opts.vanish_grace {
                    self.drain(on_line, report);
                    self.file = None;
                    self.asm.discard_partial();
                    self.missing = Some(format!("{}: {e}", self.path.display()));
                }
            }
        }
    }

    fn switch_file<F: FnMut(&[u8])>(&mut self, on_line: &mut F, report: &mut PollReport) {
        self.file = None;
        self.asm.discard_partial();
        self.counters.rotations += 1;
        self.open_at_end = false;
        self.resume = None;
        if self.open() {
            self.drain(on_line, report);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
