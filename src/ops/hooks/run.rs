//! One run of an `on_change` hook: spawn (argv, own process group, no shell), drain its output
//! (bounded), enforce the timeout by killing the whole group, and say how it ended.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::{HookEvent, HookSpec};

/// Bytes of each of stdout and stderr kept per run (the start: a hook's first lines say what it
/// did; the rest is counted).
pub const OUTPUT_LIMIT: usize = 4096;
/// After the hook exits, how long processes it left behind may keep its pipes open before they
/// are killed as leftovers.
const LEFTOVER_GRACE: Duration = Duration::from_millis(500);
/// Bound on reaping a SIGKILLed child (only a process stuck in the kernel takes longer).
const REAP_WAIT: Duration = Duration::from_millis(500);
/// Variables systemd gives us that a hook must not act on.
const STRIPPED_ENV: [&str; 5] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
];

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
    /// Killed (with its process group) after the timeout.
    TimedOut,
    /// Never started: missing binary, not executable, ...
    CannotRun(String),
    /// Waiting for it failed; it was killed.
    Lost(String),
}

/// One finished run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub outcome: Outcome,
    pub took: Duration,
    /// First [`OUTPUT_LIMIT`] bytes, lossily decoded.
    pub stdout: String,
    pub stderr: String,
    /// Bytes produced beyond the limit, per stream.
    pub dropped_bytes: (u64, u64),
}

impl HookRun {
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Exited(0)
    }
}

/// Runs one hook to completion (or timeout). Does not log; [`super::HookRunner`] does.
pub async fn run_hook(spec: &HookSpec, ev: &HookEvent) -> HookRun {
    let start = Instant::now();
    let finish = |outcome, out: Capture, err: Capture| HookRun {
        outcome,
        took: start.elapsed(),
        stdout: String::from_utf8_lossy(&out.kept).into_owned(),
        stderr: String::from_utf8_lossy(&err.kept).into_owned(),
        dropped_bytes: (out.dropped, err.dropped),
    };
    let Some(program) = spec.argv.first().filter(|p| !p.is_empty()) else {
        let why = "on_change command is empty".to_string();
        return finish(
            Outcome::CannotRun(why),
            Capture::default(),
            Capture::default(),
        );
    };
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .envs(ev.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for k in STRIPPED_ENV {
        cmd.env_remove(k);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return finish(
                Outcome::CannotRun(spawn_reason(&e)),
                Capture::default(),
                Capture::default(),
            )
        }
    };
    // The pid is the group id (process_group(0)); it stays ours until the child is reaped.
    let mut group = Group(child.id().and_then(|p| i32::try_from(p).ok()));
    let deadline = deadline_after(spec.timeout);
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let (so, se) = (child.stdout.take(), child.stderr.take());

    let outcome = {
        // Pipes are drained while waiting, or a chatty hook would block on a full pipe.
        let readers = async { tokio::join!(out.drain(so), err.drain(se)) };
        tokio::pin!(readers);
        let mut readers_done = false;
        let waited = loop {
            tokio::select! {
                s = child.wait() => break Some(s),
                _ = &mut readers, if !readers_done => readers_done = true,
                _ = tokio::time::sleep_until(deadline) => break None,
            }
        };
        match waited {
            None => {
                group.kill();
                let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
                Outcome::TimedOut
            }
            Some(Err(e)) => {
                group.kill();
                Outcome::Lost(format!("waiting for it: {e}"))
            }
            Some(Ok(status)) => {
                // Reaped: the pgid may be reused from here on, so no blind kill on drop.
                let pgid = group.disarm();
                if !readers_done {
                    let grace = deadline.min(tokio::time::Instant::now() + LEFTOVER_GRACE);
                    if tokio::time::timeout_at(grace, &mut readers).await.is_err() {
                        // Someone still holds our pipes, so the group still has members and its
                        // id cannot have been reused.
                        if let Some(pgid) = pgid {
                            killpg(pgid);
                        }
                        let _ = tokio::time::timeout(REAP_WAIT, &mut readers).await;
                    }
                }
                match (status.code(), status.signal()) {
                    (Some(code), _) => Outcome::Exited(code),
                    (None, Some(sig)) => Outcome::Signalled(sig),
                    (None, None) => Outcome::Lost(format!("ended abnormally ({status})")),
                }
            }
        }
    };
    finish(outcome, out, err)
}

fn spawn_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("program not found ({e})"),
        io::ErrorKind::PermissionDenied => format!("program not executable ({e})"),
        _ => e.to_string(),
    }
}

/// `now + timeout`, saturating: an absurd configured timeout must not panic on overflow.
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400))
}

#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    dropped: u64,
}

impl Capture {
    async fn drain(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else { return };
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(self.kept.len()).min(n);
                    self.kept.extend_from_slice(&buf[..room]);
                    self.dropped += (n - room) as u64;
                }
            }
        }
    }
}

/// The child's process group; SIGKILLed on drop while armed, so a run cancelled mid-way (runtime
/// shutdown) leaves nothing behind either.
struct Group(Option<i32>);

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            killpg(pgid);
        }
    }

    fn disarm(&mut self) -> Option<i32> {
        self.0.take()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

fn killpg(pgid: i32) {
    // SAFETY: killpg takes plain integers; ESRCH (group already gone) is fine.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}
