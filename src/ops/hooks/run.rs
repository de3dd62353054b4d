//! One run of an `on_change` hook: spawn (argv, own process group, no shell), drain its output
//! (bounded), enforce the timeout by killing the whole group, and say how it ended.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use super::{HookEvent, HookSpec};
use crate::process::{self, Ended, Keep};

/// Bytes of each of stdout and stderr kept per run (the start: a hook's first lines say what it
/// did; the rest is counted).
pub const OUTPUT_LIMIT: usize = 4096;
/// After the hook exits, how long processes it left behind may keep its pipes open before they
/// are killed as leftovers.
const LEFTOVER_GRACE: Duration = Duration::from_millis(500);

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
    if spec.argv.first().is_none_or(|p| p.is_empty()) {
        return HookRun {
            outcome: Outcome::CannotRun("on_change command is empty".to_string()),
            took: Duration::ZERO,
            stdout: String::new(),
            stderr: String::new(),
            dropped_bytes: (0, 0),
        };
    }
    let env = ev.env();
    let f = process::run(&process::Spec {
        argv: &spec.argv,
        env: &env,
        env_remove: &process::SYSTEMD_ENV,
        timeout: spec.timeout,
        keep: Keep::Head,
        limit: OUTPUT_LIMIT,
        leftover_grace: LEFTOVER_GRACE,
    })
    .await;
    let outcome = match f.ended {
        Ended::CannotRun(e) => Outcome::CannotRun(spawn_reason(&e)),
        Ended::WaitFailed(e) => Outcome::Lost(format!("waiting for it: {e}")),
        Ended::TimedOut => Outcome::TimedOut,
        Ended::Status(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signalled(sig),
            (None, None) => Outcome::Lost(format!("ended abnormally ({status})")),
        },
    };
    HookRun {
        outcome,
        took: f.took,
        stdout: String::from_utf8_lossy(&f.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&f.stderr).into_owned(),
        dropped_bytes: f.dropped,
    }
}

fn spawn_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("program not found ({e})"),
        io::ErrorKind::PermissionDenied => format!("program not executable ({e})"),
        _ => e.to_string(),
    }
}
