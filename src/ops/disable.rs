//! Disable files: while `/etc/vipwarden/disable` (global) or a VIP's own `disable_file` exists,
//! the VIP is in maintenance. This is the drain that works without the API (config management,
//! `touch` in a runbook, a pre-reboot script) and that is obviously visible with `ls`.
//!
//! Creating or removing one is a definitive event, so the parent directories are watched with
//! inotify (entries created, removed or renamed; not writes) and the files checked at once, at
//! most every 20 ms: the route moves a few milliseconds after `touch` (testbed/bench-wire.sh).
//! The files are also polled about once a second, which covers what inotify cannot follow: a
//! directory that does not exist yet (its watch is retried at each poll) or is replaced, network
//! and some bind/overlay mounts, an exhausted inotify limit, and configs with more files or
//! directories than are worth watching ([`WATCH_MAX_FILES`], [`WATCH_MAX_DIRS`]). Watches are
//! made off the runtime after start-up: a path lookup on a hung mount must not stop KEEPALIVEs.
//!
//! "Exists" means there is a directory entry with that name (`lstat`, so a dangling symlink
//! counts too: the operator created it on purpose). A path that cannot be checked (permission
//! denied on a parent, I/O error) counts as absent and is logged when that condition starts and
//! ends: one unreadable directory must not drain the whole fleet.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::sys::inotify;

/// Default poll period.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Watched with inotify up to this many disable files (a wake-up `lstat`s all of them)...
pub const WATCH_MAX_FILES: usize = 256;
/// ... in up to this many directories (one inotify instance each).
pub const WATCH_MAX_DIRS: usize = 8;

/// The least time between two checks directory changes start: a directory that churns (a
/// temporary directory, a disable file beside a rotating log) costs a check per 20 ms at most.
/// The 1 s polls do not count, so a `touch` just after one is still seen at once.
const WAKE_GAP: Duration = Duration::from_millis(20);

/// Directories and their inotify descriptors, or why one could not be made.
type Opened = Vec<(PathBuf, std::io::Result<OwnedFd>)>;

/// What a poller watches: one wake-up for all its directories, and those not watched yet.
struct Watches {
    wake: Arc<Notify>,
    unwatched: Vec<PathBuf>,
}

/// The disable files of one config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisableFiles {
    /// Top-level `disable_file`: puts every VIP in maintenance.
    pub global: Option<PathBuf>,
    /// Every configured VIP, with its own `disable_file` if it has one. VIPs without one are
    /// listed too, because the global file covers them.
    pub vips: Vec<(std::sync::Arc<str>, Option<PathBuf>)>,
}

/// VIPs held in maintenance by a disable file, with the reason to show.
pub type Disabled = BTreeMap<String, String>;

/// Which VIPs are disabled, given an existence test. When both the global and a VIP's own file
/// exist, the global one is named: it is the one an operator must remove first. (`FnMut` so the
/// poller's existence test can remember errors; a plain `Fn` closure works too.)
pub fn evaluate(files: &DisableFiles, mut exists: impl FnMut(&Path) -> bool) -> Disabled {
    let global = files.global.as_deref().filter(|p| exists(p));
    files
        .vips
        .iter()
        .filter_map(|(vip, own)| {
            let by = global.or_else(|| own.as_deref().filter(|p| exists(p)))?;
            Some((vip.to_string(), reason(by)))
        })
        .collect()
}

/// The maintenance reason for a VIP held by `path`.
pub fn reason(path: &Path) -> String {
    format!("disable file {} exists", path.display())
}

/// Whether a directory entry exists at `path`; `Err` when that cannot be known.
pub fn probe(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        // ENOTDIR: a parent is a file, so the disable file cannot exist.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Polls the disable files every `interval` and publishes the disabled set whenever it changes.
/// The first evaluation happens before this returns, so the receiver's initial value is already
/// true at start-up (a node must not announce for a second while its disable file exists).
/// Rebuild it on config reload with [`respawn_poller`] (cancel the old one).
///
/// Every later evaluation runs on a blocking thread: an `lstat` on a hung NFS mount must not stop
/// the runtime (KEEPALIVEs, the API). While one hangs, the set simply stays as it was.
pub fn spawn_poller(
    files: DisableFiles,
    interval: Duration,
    cancel: CancellationToken,
) -> (watch::Receiver<Disabled>, JoinHandle<()>) {
    // Watch before the first look, so nothing falls between the two. At start-up both may
    // block (nothing runs yet that could wait); later ones run off the runtime.
    let wake = Arc::new(Notify::new());
    let unwatched = spawn_watchers(open_watches(watched_dirs(&files)), &wake, &cancel);
    let mut errors = ErrorLog::default();
    let first = evaluate(&files, |p| errors.check(p));
    log_changes(&Disabled::new(), &first);
    let (tx, rx) = watch::channel(first);
    let watches = Watches { wake, unwatched };
    let task = tokio::spawn(poll(files, interval, cancel, tx, errors, watches, false));
    (rx, task)
}

/// After a reload: starts from `current` (what the old poller last saw) and evaluates the new
/// files at once, off the runtime, so a reload never waits on a disable file either.
pub fn respawn_poller(
    files: DisableFiles,
    interval: Duration,
    cancel: CancellationToken,
    current: Disabled,
) -> (watch::Receiver<Disabled>, JoinHandle<()>) {
    // The watches are made in the first check, off the runtime: their path lookups may block.
    let dirs = watched_dirs(&files);
    let (tx, rx) = watch::channel(current);
    let task = tokio::spawn(poll(
        files,
        interval,
        cancel,
        tx,
        ErrorLog::default(),
        Watches {
            wake: Arc::new(Notify::new()),
            unwatched: dirs,
        },
        true,
    ));
    (rx, task)
}

/// The directories holding the disable files, when there are few enough to watch.
fn watched_dirs(files: &DisableFiles) -> Vec<PathBuf> {
    let paths: Vec<&Path> = files
        .global
        .iter()
        .map(PathBuf::as_path)
        .chain(files.vips.iter().filter_map(|(_, own)| own.as_deref()))
        .collect();
    if paths.len() > WATCH_MAX_FILES {
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = paths
        .iter()
        .map(|p| inotify::dir_of(p).to_path_buf())
        .collect();
    dirs.sort();
    dirs.dedup();
    if dirs.len() > WATCH_MAX_DIRS {
        return Vec::new();
    }
    dirs
}

/// An inotify descriptor per directory (blocking: each looks its path up).
fn open_watches(dirs: Vec<PathBuf>) -> Opened {
    dirs.into_iter()
        .map(|d| {
            let fd = inotify::watch_dir(&d, inotify::ENTRY_EVENTS);
            (d, fd)
        })
        .collect()
}

/// Watches each opened directory until cancelled, waking `wake` on any change in one. Returns the
/// directories that could not be watched: they are polled, and tried again at each poll (one
/// may be created later, e.g. under /run).
fn spawn_watchers(opened: Opened, wake: &Arc<Notify>, cancel: &CancellationToken) -> Vec<PathBuf> {
    let mut unwatched = Vec::new();
    for (dir, fd) in opened {
        let watch = match fd.and_then(inotify::DirWatch::from_fd) {
            Ok(w) => w,
            Err(e) => {
                debug!(
                    "disable files in {}: not watched ({e}); polled every second",
                    dir.display()
                );
                unwatched.push(dir);
                continue;
            }
        };
        let (wake, cancel) = (wake.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = watch.changed() => match r {
                        Ok(()) => wake.notify_one(),
                        Err(e) => {
                            debug!("disable files in {}: watch ended ({e}); polled", dir.display());
                            return;
                        }
                    },
                }
            }
        });
    }
    unwatched
}

async fn poll(
    files: DisableFiles,
    interval: Duration,
    cancel: CancellationToken,
    tx: watch::Sender<Disabled>,
    mut errors: ErrorLog,
    watches: Watches,
    at_once: bool,
) {
    let Watches {
        wake,
        mut unwatched,
    } = watches;
    let files = Arc::new(files);
    // Only checks a wake-up started count for the gap: a poll just before a `touch` must not
    // delay the check that `touch` asks for.
    let mut last_wake_check: Option<Instant> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if !at_once {
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
            _ = wake.notified() => {
                if let Some(last) = last_wake_check {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until((last + WAKE_GAP).into()) => {}
                    }
                }
                last_wake_check = Some(Instant::now());
            }
        }
        let f = files.clone();
        let dirs = std::mem::take(&mut unwatched);
        let job = tokio::task::spawn_blocking(move || {
            // Watch before looking, as at start-up.
            let opened = open_watches(dirs);
            let now = evaluate(&f, |p| errors.check(p));
            (opened, now, errors)
        });
        let (opened, now, back) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = job => match r {
                Ok(r) => r,
                Err(e) => {
                    warn!("disable file check failed: {e}; keeping the last result");
                    (Vec::new(), tx.borrow().clone(), ErrorLog::default())
                }
            },
        };
        errors = back;
        unwatched = spawn_watchers(opened, &wake, &cancel);
        tx.send_if_modified(|old| {
            if *old == now {
                return false;
            }
            log_changes(old, &now);
            *old = now;
            true
        });
    }
}

fn log_changes(old: &Disabled, new: &Disabled) {
    for (vip, why) in new {
        if old.get(vip) != Some(why) {
            info!(vip = %vip, "vip {vip}: {why}: maintenance");
        }
    }
    for vip in old.keys().filter(|v| !new.contains_key(*v)) {
        info!(vip = %vip, "vip {vip}: disable file removed: leaving maintenance");
    }
}

/// Remembers which paths could not be checked, so each problem is logged once when it starts and
/// once when it ends, not every second.
#[derive(Default)]
struct ErrorLog {
    failing: BTreeMap<PathBuf, String>,
}

impl ErrorLog {
    fn check(&mut self, path: &Path) -> bool {
        match probe(path) {
            Ok(present) => {
                if self.failing.remove(path).is_some() {
                    info!("disable file {} can be checked again", path.display());
                }
                present
            }
            Err(e) => {
                let msg = e.to_string();
                if self.failing.get(path) != Some(&msg) {
                    warn!(
                        "cannot check disable file {}: {msg}; treating it as absent",
                        path.display()
                    );
                    self.failing.insert(path.to_path_buf(), msg);
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn files() -> DisableFiles {
        DisableFiles {
            global: Some("/etc/vipwarden/disable".into()),
            vips: vec![
                ("web".into(), Some("/etc/vipwarden/disable-web".into())),
                ("dns".into(), Some("/etc/vipwarden/disable-dns".into())),
                ("mail".into(), None),
            ],
        }
    }

    fn present(paths: &[&str]) -> impl Fn(&Path) -> bool {
        let set: BTreeSet<PathBuf> = paths.iter().map(PathBuf::from).collect();
        move |p| set.contains(p)
    }

    #[test]
    fn nothing_present_nothing_disabled() {
        assert!(evaluate(&files(), present(&[])).is_empty());
    }

    #[test]
    fn own_file_disables_only_its_vip() {
        let d = evaluate(&files(), present(&["/etc/vipwarden/disable-web"]));
        assert_eq!(d.len(), 1);
        assert_eq!(d["web"], "disable file /etc/vipwarden/disable-web exists");
    }

    #[test]
    fn global_file_disables_every_vip_and_wins_the_reason() {
        let d = evaluate(
            &files(),
            present(&["/etc/vipwarden/disable", "/etc/vipwarden/disable-dns"]),
        );
        assert_eq!(d.keys().collect::<Vec<_>>(), ["dns", "mail", "web"]);
        assert!(d
            .values()
            .all(|r| r == "disable file /etc/vipwarden/disable exists"));
    }

    #[test]
    fn no_global_configured() {
        let mut f = files();
        f.global = None;
        let d = evaluate(&f, |_| true);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["dns", "web"]);
    }

    #[test]
    fn probe_sees_files_dangling_symlinks_and_parents_that_are_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("disable");
        assert!(!probe(&f).unwrap());
        std::fs::write(&f, b"").unwrap();
        assert!(probe(&f).unwrap());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(probe(&link).unwrap());
        assert!(!probe(&f.join("below-a-file")).unwrap());
    }

    #[tokio::test]
    async fn poller_reports_at_start_and_follows_create_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("disable-web");
        std::fs::write(&web, b"").unwrap();
        let f = DisableFiles {
            global: Some(dir.path().join("disable")),
            vips: vec![("web".into(), Some(web.clone())), ("dns".into(), None)],
        };
        let cancel = CancellationToken::new();
        let (mut rx, task) = spawn_poller(f, Duration::from_millis(20), cancel.clone());
        // Already known before the first tick.
        assert_eq!(rx.borrow_and_update().keys().collect::<Vec<_>>(), ["web"]);
        std::fs::write(dir.path().join("disable"), b"").unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.borrow_and_update().len(), 2);
        // Own file first: the global one still covers both, so the next change is the last.
        std::fs::remove_file(&web).unwrap();
        std::fs::remove_file(dir.path().join("disable")).unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert!(rx.borrow().is_empty());
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    /// A temporary directory with VIP web's own disable file (not created yet) in it.
    fn one_vip_file() -> (tempfile::TempDir, PathBuf, DisableFiles) {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("disable-web");
        let f = DisableFiles {
            global: None,
            vips: vec![("web".into(), Some(web.clone()))],
        };
        (dir, web, f)
    }

    #[tokio::test]
    async fn a_created_or_removed_file_is_seen_at_once_not_at_the_next_poll() {
        let (_dir, web, f) = one_vip_file();
        let cancel = CancellationToken::new();
        // A poll period no test waits for: only the directory watch can report in time.
        let (mut rx, _task) = spawn_poller(f, Duration::from_secs(3600), cancel.clone());
        assert!(rx.borrow_and_update().is_empty());
        std::fs::write(&web, b"").unwrap();
        tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .expect("creation seen through inotify")
            .unwrap();
        assert_eq!(rx.borrow_and_update().keys().collect::<Vec<_>>(), ["web"]);
        std::fs::remove_file(&web).unwrap();
        tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .expect("removal seen through inotify")
            .unwrap();
        assert!(rx.borrow().is_empty());
        cancel.cancel();
    }

    #[tokio::test]
    async fn after_a_reload_the_watch_is_made_off_the_runtime_and_works() {
        let (_dir, web, f) = one_vip_file();
        let cancel = CancellationToken::new();
        // Start from "disabled" while the file is absent: the first check (at once, with the
        // watch made just before it) then reports a change, so the test knows it has run.
        let stale: Disabled = [("web".to_string(), "stale".to_string())].into();
        let (mut rx, _task) = respawn_poller(f, Duration::from_secs(3600), cancel.clone(), stale);
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("the first check runs at once")
            .unwrap();
        assert!(rx.borrow_and_update().is_empty());
        std::fs::write(&web, b"").unwrap();
        tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .expect("creation seen through the watch made in the first check")
            .unwrap();
        assert_eq!(rx.borrow().keys().collect::<Vec<_>>(), ["web"]);
        cancel.cancel();
    }

    #[test]
    fn only_few_files_in_few_directories_are_watched() {
        let own = |p: &str| ("v".into(), Some(PathBuf::from(p)));
        let f = DisableFiles {
            global: Some("/etc/vipwarden/disable".into()),
            vips: vec![
                own("/etc/vipwarden/disable-web"),
                own("/run/web/off"),
                ("dns".into(), None),
            ],
        };
        assert_eq!(
            watched_dirs(&f),
            [PathBuf::from("/etc/vipwarden"), PathBuf::from("/run/web")]
        );
        let many_dirs = DisableFiles {
            global: None,
            vips: (0..=WATCH_MAX_DIRS)
                .map(|i| own(&format!("/d{i}/off")))
                .collect(),
        };
        assert!(watched_dirs(&many_dirs).is_empty());
        let many_files = DisableFiles {
            global: None,
            vips: (0..=WATCH_MAX_FILES)
                .map(|i| own(&format!("/d/off{i}")))
                .collect(),
        };
        assert!(watched_dirs(&many_files).is_empty());
    }
}
