//! Maintenance state that survives restarts and crashes: `<state_dir>/state.json`.
//!
//! Operator drains must outlive the process: a node drained for a kernel upgrade that crashes and
//! restarts must not re-announce itself. The file is outside input (it can be truncated by a full
//! disk, edited by hand, or written by a newer vipwarden), so reading never fails the daemon: a
//! bad file is reported, moved aside as `state.json.bad` for inspection, and treated as "no
//! maintenance". Writing is atomic (temp file, fsync, rename, fsync of the directory), so a crash
//! or a full disk leaves either the old or the new file, never a torn one.
//!
//! `drain --all` is stored as one global mark, not as a list of VIPs, so that it also covers VIPs
//! added to the config later: an operator who drained the whole node does not expect a reload to
//! bring new traffic to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod error;
pub use error::{LoadError, ReadError, SaveError, WriteStep};

/// File name inside `state_dir`.
pub const STATE_FILE: &str = "state.json";
/// Where a file that could not be used is kept for inspection.
pub const BAD_FILE: &str = "state.json.bad";
/// The format this build reads and writes.
pub const STATE_VERSION: u64 = 1;
/// Default `state_dir` (systemd's `StateDirectory=vipwarden`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vipwarden";
/// A real state file is a few hundred bytes; anything this large is not ours.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Fixed name: one writer per directory, and a crash leaves at most one stale temp file, which the
/// next save overwrites.
const TEMP_FILE: &str = ".state.json.tmp";

/// Who put something in maintenance, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub reason: String,
    /// Free text from the caller, e.g. "api 127.0.0.1:51234" or "cli root".
    pub by: String,
    /// Unix seconds.
    pub at: u64,
    /// The operator forced the drain past the fleet guard's count (it still marks and settles).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

impl Mark {
    /// A mark stamped with the current wall-clock time (0 if the clock is before 1970).
    pub fn now(reason: impl Into<String>, by: impl Into<String>) -> Mark {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Mark {
            reason: reason.into(),
            by: by.into(),
            at,
            forced: false,
        }
    }
}

/// Which VIPs are in maintenance. The daemon derives VIP states from this plus disable files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceState {
    /// `drain --all`: every VIP, including VIPs configured after the drain.
    #[serde(default)]
    pub all: Option<Mark>,
    /// Per-VIP drains, by VIP name.
    #[serde(default)]
    pub vips: BTreeMap<String, Mark>,
}

impl MaintenanceState {
    /// The mark that keeps `vip` in maintenance, if any. The per-VIP mark is more specific, so its
    /// reason is the one shown.
    pub fn mark_for(&self, vip: &str) -> Option<&Mark> {
        self.vips.get(vip).or(self.all.as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.vips.is_empty()
    }

    /// Puts one VIP (`Some`) or the whole node (`None`) in maintenance. A newer mark replaces an
    /// older one (the latest reason is the one an operator wants to see).
    pub fn drain(&mut self, vip: Option<&str>, mark: Mark) {
        match vip {
            Some(v) => {
                self.vips.insert(v.to_string(), mark);
            }
            None => self.all = Some(mark),
        }
    }

    /// Takes one VIP (`Some`) or everything (`None`) out of maintenance; true if anything was
    /// removed. Undraining one VIP while the node is drained as a whole turns the global mark
    /// into per-VIP marks for the other `configured` VIPs: the operator asked for this VIP back,
    /// not for the others. From then on VIPs added later are no longer covered, which matches
    /// "the node is partly drained".
    pub fn undrain(&mut self, vip: Option<&str>, configured: &[&str]) -> bool {
        match vip {
            None => {
                let changed = !self.is_empty();
                self.all = None;
                self.vips.clear();
                changed
            }
            Some(v) => {
                let mut changed = self.vips.remove(v).is_some();
                if let Some(global) = self.all.take() {
                    changed = true;
                    for other in configured.iter().filter(|c| **c != v) {
                        self.vips
                            .entry(other.to_string())
                            .or_insert_with(|| global.clone());
                    }
                }
                changed
            }
        }
    }

    /// Per-VIP marks naming VIPs that are not configured (renamed or removed). They are kept, not
    /// pruned, so a VIP removed and re-added stays drained; the daemon should warn about them.
    pub fn stale(&self, configured: &[&str]) -> Vec<String> {
        let known: BTreeSet<&str> = configured.iter().copied().collect();
        self.vips
            .keys()
            .filter(|k| !known.contains(k.as_str()))
            .cloned()
            .collect()
    }
}

/// On-disk form: the state plus a version, so a future format is refused, not misread.
#[derive(Serialize)]
struct FileOut<'a> {
    version: u64,
    #[serde(flatten)]
    state: &'a MaintenanceState,
}

/// Points at `<dir>/state.json`. Holds no file open: each save is a fresh atomic replace.
#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
    path: PathBuf,
}

/// Steps of an atomic save, for fault injection in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    TempWritten,
    TempSynced,
    Renamed,
}

impl StateStore {
    /// Opens the store and loads the state. A missing file (or directory) is an empty state. A
    /// file that cannot be used is the `Err`: the message says why, the caller runs with an empty
    /// state and shows the message in status until the next successful save.
    pub fn open(dir: &Path) -> (StateStore, Result<MaintenanceState, LoadError>) {
        let store = StateStore {
            dir: dir.to_path_buf(),
            path: dir.join(STATE_FILE),
        };
        let loaded = store.load();
        (store, loaded)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<MaintenanceState, LoadError> {
        let bytes = match read_bounded(&self.path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(MaintenanceState::default()),
            Err(source) => {
                return Err(LoadError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        parse(&bytes).map_err(|why| LoadError::Parse {
            path: self.path.clone(),
            why,
            kept: self.quarantine(),
        })
    }

    /// Moves an unusable file aside so the next save does not destroy the evidence.
    fn quarantine(&self) -> String {
        let bad = self.dir.join(BAD_FILE);
        match fs::rename(&self.path, &bad) {
            Ok(()) => format!(" (moved to {})", bad.display()),
            Err(e) => format!(" (could not move it to {}: {e})", bad.display()),
        }
    }

    /// Replaces the file atomically. An `Err` means the state on disk may be the old one: the
    /// caller must not report the change as done. (If only the final directory fsync fails, the
    /// new file is in place but not known durable; that is reported as a failure too.)
    pub fn save(&self, state: &MaintenanceState) -> Result<(), SaveError> {
        self.save_with(state, &mut |_| Ok(()))
    }

    /// Applies `change` to a copy of `current`, saves the copy, and only then makes it current: the
    /// in-memory state never claims what the disk does not hold. `Ok(false)` when `change` changed
    /// nothing (nothing is written). On `Err`, `current` is untouched; answer the command with
    /// `CommandError::StateNotSaved`.
    pub fn apply(
        &self,
        current: &mut MaintenanceState,
        change: impl FnOnce(&mut MaintenanceState),
    ) -> Result<bool, SaveError> {
        let mut next = current.clone();
        change(&mut next);
        if next == *current {
            return Ok(false);
        }
        self.save(&next)?;
        *current = next;
        Ok(true)
    }

    fn save_with(
        &self,
        state: &MaintenanceState,
        inject: &mut dyn FnMut(Step) -> io::Result<()>,
    ) -> Result<(), SaveError> {
        let mut text = serde_json::to_vec_pretty(&FileOut {
            version: STATE_VERSION,
            state,
        })
        .map_err(|source| SaveError::Encode {
            what: "state",
            source,
        })?;
        text.push(b'\n');
        // StateDirectory= creates it under systemd; this covers running by hand.
        fs::create_dir_all(&self.dir).map_err(|source| SaveError::CreateDir {
            dir: self.dir.clone(),
            source,
        })?;
        let tmp = self.dir.join(TEMP_FILE);
        let result = write_replace(&tmp, &self.path, &self.dir, &text, inject);
        if result.is_err() {
            // Best effort: a leftover temp file is harmless (overwritten next time) but untidy.
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

pub(crate) fn write_replace_plain(
    tmp: &Path,
    dest: &Path,
    dir: &Path,
    text: &[u8],
) -> Result<(), SaveError> {
    write_replace(tmp, dest, dir, text, &mut |_| Ok(()))
}

fn write_replace(
    tmp: &Path,
    dest: &Path,
    dir: &Path,
    text: &[u8],
    inject: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<(), SaveError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(tmp)
        .map_err(write_failed(WriteStep::CreateTemp, tmp, dest))?;
    f.write_all(text)
        .and_then(|()| inject(Step::TempWritten))
        .map_err(write_failed(WriteStep::WriteTemp, tmp, dest))?;
    // Data must be on disk before the rename makes it the file: otherwise a power cut can leave
    // a renamed but empty file.
    f.sync_all()
        .and_then(|()| inject(Step::TempSynced))
        .map_err(write_failed(WriteStep::FsyncTemp, tmp, dest))?;
    drop(f);
    fs::rename(tmp, dest)
        .and_then(|()| inject(Step::Renamed))
        .map_err(write_failed(WriteStep::Rename, tmp, dest))?;
    // The rename lives in the directory; without this a power cut can bring the old file back.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_failed(WriteStep::FsyncDir, dir, dest))
}

fn write_failed<'a>(
    step: WriteStep,
    path: &'a Path,
    dest: &'a Path,
) -> impl FnOnce(io::Error) -> SaveError + 'a {
    move |source| SaveError::Write {
        step,
        path: path.to_path_buf(),
        dest: dest.to_path_buf(),
        source,
    }
}

/// The file's bytes; `None` when there is no file (or no directory).
pub(crate) fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, ReadError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Stat(e)),
    };
    if !meta.is_file() {
        return Err(ReadError::NotRegularFile);
    }
    let f = File::open(path).map_err(ReadError::Open)?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            max: MAX_FILE_BYTES,
        });
    }
    Ok(Some(bytes))
}

/// Version first, so a newer format gets "unsupported version", not a confusing field error.
fn parse(bytes: &[u8]) -> Result<MaintenanceState, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("file is empty".to_string());
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    match value.get("version").map(|v| v.as_u64()) {
        None => return Err("no \"version\" field".to_string()),
        Some(Some(STATE_VERSION)) => {}
        Some(Some(v)) => {
            return Err(format!(
                "version {v} is not supported (this vipwarden reads version {STATE_VERSION})"
            ))
        }
        Some(None) => return Err("\"version\" is not a non-negative integer".to_string()),
    }
    serde_json::from_value(value).map_err(|e| format!("unexpected content: {e}"))
}

#[cfg(test)]
mod tests;
