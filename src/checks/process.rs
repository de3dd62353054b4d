//! `process` check: passes while the process named by a pid file runs.
//!
//! The process is held by a pidfd (pidfd_open, Linux 5.3+), which becomes readable when it exits:
//! [`ProcessProbe::event`] resolves at that moment, so the scheduler reports the exit at once
//! instead of at the next interval. Each probe re-reads the pid file (on a blocking thread), so a
//! restarted service (new pid) is followed. Owns only its pidfd; reads nothing but the pid file.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;

use super::Failure;

/// A pid file is a number and a newline; anything longer is not one.
const MAX_PID_FILE: u64 = 64;

pub(super) struct ProcessProbe {
    pid_file: PathBuf,
    /// The process the pid file named at the last probe, while it ran.
    tracked: Mutex<Option<Tracked>>,
}

#[derive(Clone)]
struct Tracked {
    pid: i32,
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl ProcessProbe {
    pub(super) fn new(pid_file: PathBuf) -> ProcessProbe {
        ProcessProbe {
            pid_file,
            tracked: Mutex::new(None),
        }
    }

    fn tracked(&self) -> Option<Tracked> {
        self.tracked.lock().map(|t| t.clone()).unwrap_or(None)
    }

    fn set_tracked(&self, t: Option<Tracked>) {
        if let Ok(mut g) = self.tracked.lock() {
            *g = t;
        }
    }

    /// A process that is gone (exited, or no process has the pid) is a definitive failure; a
    /// missing or unreadable pid file is not (it may be being rewritten).
    pub(super) async fn run(&self) -> Result<String, Failure> {
        let path = self.pid_file.clone();
        let text = tokio::task::spawn_blocking(move || read_pid_file(&path))
            .await
            .map_err(|e| format!("pid file read task failed: {e}"));
        let result = match text.and_then(|t| t) {
            Ok(text) => self.check_pid(&text),
            Err(e) => Err(Failure::from(e)),
        };
        if result.is_err() {
            self.set_tracked(None);
        }
        result
    }

    fn check_pid(&self, text: &str) -> Result<String, Failure> {
        let file = self.pid_file.display();
        let pid = parse_pid(text).map_err(|why| format!("pid file {file} {why}"))?;
        let tracked = match self.tracked() {
            Some(t) if t.pid == pid => t,
            _ => {
                let fd =
                    crate::sys::process::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
                        Some(libc::ESRCH) => Failure::definitive(format!(
                            "process {pid} (pid file {file}) is not running"
                        )),
                        Some(libc::ENOSYS) => Failure::from(
                            "pidfd_open is not supported by this kernel (Linux 5.3+ needed)"
                                .to_string(),
                        ),
                        _ => Failure::from(format!(
                            "cannot watch process {pid} (pid file {file}): {e}"
                        )),
                    })?;
                let fd = crate::sys::fd::async_owned(fd)
                    .map_err(|e| format!("cannot watch process {pid} (pid file {file}): {e}"))?;
                let t = Tracked {
                    pid,
                    fd: Arc::new(fd),
                };
                self.set_tracked(Some(t.clone()));
                t
            }
        };
        if crate::sys::process::pidfd_exited(tracked.fd.get_ref()) {
            return Err(Failure::definitive(format!(
                "process {pid} (pid file {file}) has exited"
            )));
        }
        Ok(format!("process {pid} running"))
    }

    /// Resolves when the tracked process exits; never while none is tracked (nothing to wait
    /// for until a probe finds one). Cancel-safe.
    pub(super) async fn event(&self) {
        let Some(t) = self.tracked() else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut guard) = t.fd.readable().await else {
                // The reactor is going away: nothing more to report.
                return std::future::pending().await;
            };
            if crate::sys::process::pidfd_exited(t.fd.get_ref()) {
                return;
            }
            guard.clear_ready();
        }
    }
}

fn read_pid_file(path: &Path) -> Result<String, String> {
    let file = path.display();
    let f = std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("pid file {file} does not exist"),
        _ => format!("pid file {file}: {e}"),
    })?;
    let mut text = String::new();
    f.take(MAX_PID_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("pid file {file}: {e}"))?;
    Ok(text)
}

/// The pid in a pid file's text: decimal digits, surrounding whitespace allowed. The error says
/// what was there instead.
fn parse_pid(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is empty".to_string());
    }
    match t.parse::<i32>() {
        Ok(pid) if pid > 0 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(pid),
        _ => {
            let shown: String = t.chars().take(24).collect();
            Err(format!("holds {shown:?}, not a process id"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn pid_file_text_is_a_pid_or_a_reason() {
        assert_eq!(parse_pid("1234\n"), Ok(1234));
        assert_eq!(parse_pid("  42 "), Ok(42));
        assert_eq!(parse_pid(""), Err("is empty".into()));
        assert_eq!(parse_pid("\n"), Err("is empty".into()));
        for bad in ["0", "-5", "+5", "12a", "nginx", "99999999999", "1 2"] {
            let e = parse_pid(bad).unwrap_err();
            assert!(e.contains("not a process id"), "{bad}: {e}");
        }
        assert!(parse_pid(&"x".repeat(100)).unwrap_err().len() < 60);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panic(s in "\\PC{0,40}") {
            let _ = parse_pid(&s);
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn missing_and_garbage_pid_files_fail_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("svc.pid");
        let p = ProcessProbe::new(f.clone());
        // A pid file can be missing or half-written for a moment: not definitive.
        let e = p.run().await.unwrap_err();
        assert_eq!(e.detail, format!("pid file {} does not exist", f.display()));
        assert!(!e.definitive);
        write(&f, "not-a-pid\n");
        let e = p.run().await.unwrap_err();
        assert!(
            e.detail.ends_with("holds \"not-a-pid\", not a process id"),
            "{e:?}"
        );
        assert!(!e.definitive);
        // A pid nobody has (pid_max is at most 2^22): the kernel says so, definitively.
        write(&f, "2147483647\n");
        let e = p.run().await.unwrap_err();
        assert!(e.detail.contains("is not running"), "{e:?}");
        assert!(e.definitive);
    }

    #[tokio::test]
    async fn exit_is_an_event_and_a_restart_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("svc.pid");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        write(&f, &format!("{}\n", child.id()));
        let p = ProcessProbe::new(f.clone());
        assert_eq!(
            p.run().await.unwrap(),
            format!("process {} running", child.id())
        );
        // No exit yet: the event does not fire.
        assert!(tokio::time::timeout(Duration::from_millis(50), p.event())
            .await
            .is_err());
        let t0 = Instant::now();
        let killer = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(30));
            child.kill().unwrap();
            child // still a zombie until waited for: the pidfd says exited anyway
        });
        tokio::time::timeout(Duration::from_secs(2), p.event())
            .await
            .expect("exit event");
        let waited = t0.elapsed();
        assert!(waited < Duration::from_millis(500), "{waited:?}");
        let mut child = killer.await.unwrap();
        let e = p.run().await.unwrap_err();
        assert!(
            e.detail.contains("has exited") || e.detail.contains("is not running"),
            "{e:?}"
        );
        assert!(e.definitive, "an exit seen through the pidfd is a fact");
        child.wait().unwrap();
        // Nothing tracked after a failure: no event until a probe finds a process.
        assert!(tokio::time::timeout(Duration::from_millis(30), p.event())
            .await
            .is_err());
        // The service restarts with a new pid.
        let mut again = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        write(&f, &format!("{}\n", again.id()));
        assert_eq!(
            p.run().await.unwrap(),
            format!("process {} running", again.id())
        );
        again.kill().unwrap();
        again.wait().unwrap();
        tokio::time::timeout(Duration::from_secs(2), p.event())
            .await
            .expect("exit event of the new process");
    }
}
