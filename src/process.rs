//! Runs an external program the way exec checks and hooks both need it: argv (no shell), its own
//! process group, stdin from /dev/null, stdout/stderr drained while it runs (bounded), and on
//! timeout or cancellation the whole group SIGKILLed, so a script that hangs in `curl` does not
//! leave the `curl` behind. Processes it leaves holding its pipes after it exits are killed once
//! `leftover_grace` has passed.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Bound on reaping a SIGKILLed child; only a process stuck in the kernel takes longer, and tokio
/// reaps it later anyway (kill_on_drop).
const REAP_WAIT: Duration = Duration::from_millis(500);

/// Which part of a long output to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The first bytes (a hook's first lines say what it did).
    Head,
    /// The last bytes (a check's last line says why it failed).
    Tail,
}

/// What systemd gives the daemon and no child may act on: with `NotifyAccess=all` a check or
/// hook could otherwise talk to systemd for us, and `LISTEN_*` name fds only we hold.
pub const SYSTEMD_ENV: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

pub struct Spec<'a> {
    /// Program and arguments; the program is looked up in `PATH` when it has no slash.
    pub argv: &'a [String],
    pub env: &'a [(&'a str, String)],
    pub env_remove: &'a [&'a str],
    pub timeout: Duration,
    pub keep: Keep,
    /// Bytes kept per stream.
    pub limit: usize,
    pub leftover_grace: Duration,
}

#[derive(Debug)]
pub enum Ended {
    Status(ExitStatus),
    /// Killed with its process group at the timeout.
    TimedOut,
    /// Never started (missing binary, not executable, empty argv).
    CannotRun(io::Error),
    /// Waiting for it failed; it was killed.
    WaitFailed(io::Error),
}

#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes produced beyond `limit`, per stream.
    pub dropped: (u64, u64),
    pub took: Duration,
}

/// Runs the program to completion or timeout. Cancelling the future kills the group too.
pub async fn run(spec: &Spec<'_>) -> Finished {
    let start = Instant::now();
    let mut out = Capture::new(spec.keep, spec.limit);
    let mut err = Capture::new(spec.keep, spec.limit);
    let finish = |ended, out: Capture, err: Capture| Finished {
        ended,
        dropped: (out.dropped, err.dropped),
        stdout: out.kept,
        stderr: err.kept,
        took: start.elapsed(),
    };
    let Some(program) = spec.argv.first().filter(|p| !p.is_empty()) else {
        return finish(
            Ended::CannotRun(io::Error::other("empty command")),
            out,
            err,
        );
    };
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for k in spec.env_remove {
        cmd.env_remove(k);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return finish(Ended::CannotRun(e), out, err),
    };
    // The pid is the group id (process_group(0)); it stays ours until the child is reaped.
    let Some(pgid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return finish(
            Ended::CannotRun(io::Error::other("no pid for the child")),
            out,
            err,
        );
    };
    let mut group = Group::new(pgid);
    let deadline = deadline_after(spec.timeout);
    let (so, se) = (child.stdout.take(), child.stderr.take());

    let ended = {
        // Pipes are drained while waiting, or a chatty program would block on a full pipe.
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
                Ended::TimedOut
            }
            Some(Err(e)) => {
                group.kill();
                Ended::WaitFailed(e)
            }
            Some(Ok(status)) => {
                // Reaped: the pgid may be reused from here on, so no blind kill on drop.
                group.disarm();
                if !readers_done {
                    let grace = deadline.min(tokio::time::Instant::now() + spec.leftover_grace);
                    if tokio::time::timeout_at(grace, &mut readers).await.is_err() {
                        // Someone still holds our pipes, so the group still has members and its
                        // id cannot have been reused.
                        killpg(pgid);
                        let _ = tokio::time::timeout(REAP_WAIT, &mut readers).await;
                    }
                }
                Ended::Status(status)
            }
        }
    };
    finish(ended, out, err)
}

/// `now + timeout`, saturating: an absurd configured timeout must not panic on overflow.
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400))
}

struct Capture {
    keep: Keep,
    limit: usize,
    kept: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn new(keep: Keep, limit: usize) -> Capture {
        Capture {
            keep,
            limit,
            kept: Vec::new(),
            dropped: 0,
        }
    }

    async fn drain(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else { return };
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => self.add(&buf[..n]),
            }
        }
    }

    fn add(&mut self, chunk: &[u8]) {
        match self.keep {
            Keep::Head => {
                let room = self.limit.saturating_sub(self.kept.len()).min(chunk.len());
                self.kept.extend_from_slice(&chunk[..room]);
                self.dropped += (chunk.len() - room) as u64;
            }
            Keep::Tail => {
                self.kept.extend_from_slice(chunk);
                if self.kept.len() > self.limit {
                    let cut = self.kept.len() - self.limit;
                    self.kept.drain(..cut);
                    self.dropped += cut as u64;
                }
            }
        }
    }
}

/// The child's process group; SIGKILLed on drop while armed, so a run cancelled mid-way (daemon
/// shutdown) leaves nothing behind either.
struct Group {
    pgid: i32,
    armed: bool,
}

impl Group {
    fn new(pgid: i32) -> Group {
        Group { pgid, armed: true }
    }

    /// SIGKILL to the whole group; only while the leader is unreaped, so `pgid` is ours.
    fn kill(&mut self) {
        if self.armed {
            self.armed = false;
            killpg(self.pgid);
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

fn killpg(pgid: i32) {
    // ESRCH (group already gone) is fine: gone is what we want.
    let _ = crate::sys::process::kill_process_group(pgid);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn huge_timeout_does_not_overflow() {
        let d = deadline_after(Duration::MAX);
        assert!(d > tokio::time::Instant::now() + Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn capture_keeps_head_or_tail_and_counts_the_rest() {
        let mut head = Capture::new(Keep::Head, 4);
        head.add(b"abc");
        head.add(b"defg");
        assert_eq!((head.kept.as_slice(), head.dropped), (&b"abcd"[..], 3));
        let mut tail = Capture::new(Keep::Tail, 4);
        tail.add(b"abc");
        tail.add(b"defg");
        assert_eq!((tail.kept.as_slice(), tail.dropped), (&b"defg"[..], 3));
    }
}
