//! Disable files: while `/etc/vipwarden/disable` (global) or a VIP's own `disable_file` exists,
//! the VIP is in maintenance. This is the drain that works without the API (config management,
//! `touch` in a runbook, a pre-reboot script) and that is obviously visible with `ls`.
//!
//! Polled about once a second rather than watched with inotify: inotify cannot watch a file that
//! does not exist yet (only its parent directory, which may itself be missing or replaced), misses
//! changes on network and some bind/overlay mounts, and needs a dependency or unsafe code. A few
//! `lstat` calls per second cost nothing, and a second of latency is small next to BGP
//! convergence.
//!
//! "Exists" means there is a directory entry with that name (`lstat`, so a dangling symlink
//! counts too: the operator created it on purpose). A path that cannot be checked (permission
//! denied on a parent, I/O error) counts as absent and is logged when that condition starts and
//! ends: one unreadable directory must not drain the whole fleet.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Default poll period.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

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
    let mut errors = ErrorLog::default();
    let first = evaluate(&files, |p| errors.check(p));
    log_changes(&Disabled::new(), &first);
    let (tx, rx) = watch::channel(first);
    let task = tokio::spawn(poll(files, interval, cancel, tx, errors, false));
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
    let (tx, rx) = watch::channel(current);
    let task = tokio::spawn(poll(files, interval, cancel, tx, ErrorLog::default(), true));
    (rx, task)
}

async fn poll(
    files: DisableFiles,
    interval: Duration,
    cancel: CancellationToken,
    tx: watch::Sender<Disabled>,
    mut errors: ErrorLog,
    at_once: bool,
) {
    let files = std::sync::Arc::new(files);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if !at_once {
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let f = files.clone();
        let job = tokio::task::spawn_blocking(move || {
            let now = evaluate(&f, |p| errors.check(p));
            (now, errors)
        });
        let (now, back) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = job => match r {
                Ok(r) => r,
                Err(e) => {
                    warn!("disable file check failed: {e}; keeping the last result");
                    (tx.borrow().clone(), ErrorLog::default())
                }
            },
        };
        errors = back;
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
}
