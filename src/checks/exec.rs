//! `exec` check: run a command (argv, no shell); exit 0 passes.
//!
//! The command runs in its own process group so that on timeout (or when the probe is
//! cancelled) the whole tree it started is killed, not just the direct child: a health script
//! that hangs in `curl` must not leave the `curl` behind on every interval.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::detail::{self, io_reason, truncate};
use crate::process::{self, Ended, Keep};

/// Bytes of stdout/stderr kept (the tail: the last line is what explains a failure).
const TAIL_BYTES: usize = 4096;
/// Longest reason quoted from the command's output.
const REASON_CHARS: usize = 200;
/// After the command exits, how long descendants may keep its pipes open before they are
/// killed as leftovers.
const LEFTOVER_GRACE: Duration = Duration::from_millis(100);

pub(crate) struct ExecProbe {
    argv: Vec<String>,
}

impl ExecProbe {
    pub(crate) fn new(command: &[String]) -> Result<ExecProbe, super::SetupError> {
        if command.is_empty() || command[0].is_empty() {
            return Err(super::SetupError::EmptyCommand);
        }
        Ok(ExecProbe {
            argv: command.to_vec(),
        })
    }

    pub(crate) async fn run(&self, timeout: Duration) -> Result<String, String> {
        let program = &self.argv[0];
        let f = process::run(&process::Spec {
            argv: &self.argv,
            env: &[],
            env_remove: &process::SYSTEMD_ENV,
            timeout,
            keep: Keep::Tail,
            limit: TAIL_BYTES,
            leftover_grace: LEFTOVER_GRACE,
        })
        .await;
        match f.ended {
            Ended::CannotRun(e) => Err(format!("cannot run {program}: {}", io_reason(&e))),
            Ended::WaitFailed(e) => Err(format!("waiting for {program}: {}", io_reason(&e))),
            Ended::TimedOut => Err(detail::timed_out(timeout)),
            Ended::Status(status) => judge(status, &f.stdout, &f.stderr, f.took),
        }
    }
}

fn judge(status: ExitStatus, out: &[u8], err: &[u8], took: Duration) -> Result<String, String> {
    if status.success() {
        return Ok(format!("exit 0 in {}", detail::ms(took)));
    }
    let why = last_line(err)
        .or_else(|| last_line(out))
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    match (status.code(), status.signal()) {
        (Some(code), _) => Err(format!("exit status {code}{why}")),
        (None, Some(sig)) => Err(format!(
            "killed by signal {sig} ({}){why}",
            signal_name(sig)
        )),
        (None, None) => Err(format!("ended abnormally ({status}){why}")),
    }
}

/// Last non-blank line, trimmed and cut, with control characters replaced so a detail never
/// carries terminal escapes or NULs into logs.
fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let clean: String = line
        .chars()
        .map(|c| {
            if c.is_control() {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect();
    Some(truncate(&clean, REASON_CHARS))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "unknown signal",
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::exec_check;
    use super::super::{probe_once, ProbeResult};
    use super::*;

    async fn run(argv: &[&str], timeout: Duration) -> ProbeResult {
        let mut c = exec_check(argv);
        c.timeout = timeout;
        probe_once(&c).await
    }

    /// Members of process group `pgid` that are not zombies, from /proc.
    pub(crate) fn live_members(pgid: i32) -> Vec<i32> {
        let mut live = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
            {
                live.push(pid);
            }
        }
        live
    }

    /// Polls up to 1 s: SIGKILL is delivered asynchronously.
    async fn wait_group_gone(pgid: i32) -> Vec<i32> {
        for _ in 0..50 {
            if live_members(pgid).is_empty() {
                return Vec::new();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        live_members(pgid)
    }

    fn pid_file(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("vw-exec-{tag}-{}", std::process::id()))
    }

    #[tokio::test]
    async fn exit_zero_passes() {
        let r = run(&["true"], Duration::from_secs(5)).await;
        assert!(r.ok, "{r:?}");
        assert!(r.detail.starts_with("exit 0 in "), "{r:?}");
    }

    #[tokio::test]
    async fn nonzero_exit_quotes_last_stderr_line() {
        let r = run(
            &[
                "sh",
                "-c",
                "echo first >&2; echo '  it broke  ' >&2; echo out; exit 3",
            ],
            Duration::from_secs(5),
        )
        .await;
        assert!(!r.ok);
        assert_eq!(r.detail, "exit status 3: it broke");
    }

    #[tokio::test]
    async fn long_reason_is_cut_to_200_chars() {
        let r = run(
            &["sh", "-c", "printf 'x%.0s' $(seq 500) >&2; exit 1"],
            Duration::from_secs(5),
        )
        .await;
        let reason = r.detail.strip_prefix("exit status 1: ").unwrap();
        assert_eq!(reason.chars().count(), 200, "{r:?}");
        assert!(reason.ends_with('…'));
    }

    #[tokio::test]
    async fn missing_binary_is_explained() {
        let r = run(&["/usr/bin/vw-nope"], Duration::from_secs(5)).await;
        assert!(!r.ok);
        assert_eq!(
            r.detail,
            "cannot run /usr/bin/vw-nope: No such file or directory"
        );
    }

    #[tokio::test]
    async fn death_by_signal_is_named() {
        let r = run(&["sh", "-c", "kill -TERM $$"], Duration::from_secs(5)).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "killed by signal 15 (SIGTERM)");
    }

    #[tokio::test]
    async fn stdin_is_null() {
        // An inherited stdin (terminal, socket) could make a check block or eat daemon input.
        let r = run(
            &[
                "sh",
                "-c",
                "test \"$(readlink /proc/self/fd/0)\" = /dev/null",
            ],
            Duration::from_secs(5),
        )
        .await;
        assert!(r.ok, "{r:?}");
    }

    #[tokio::test]
    async fn large_output_does_not_block() {
        let r = run(
            &["sh", "-c", "head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2; printf '\\nlast\\n' >&2; exit 1"],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r.detail, "exit status 1: last");
    }

    /// Runs `script` (which must start `echo $$ > PIDFILE`) as a probe, checks mid-run that the
    /// shell leads its own group with a grandchild in it, and returns the probe result and pgid.
    async fn run_grouped(
        tag: &str,
        script: &str,
        timeout: Duration,
        cancel_after: Option<Duration>,
    ) -> (Option<ProbeResult>, i32) {
        let file = pid_file(tag);
        let _ = std::fs::remove_file(&file);
        let mut c = exec_check(&[
            "sh",
            "-c",
            &script.replace("PIDFILE", &file.display().to_string()),
        ]);
        c.timeout = timeout;
        let probe = probe_once(&c);
        tokio::pin!(probe);
        let observe = async {
            // Poll for the pid file, then for sh plus its background child in group $$.
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                let Ok(pgid) = text.trim().parse::<i32>() else {
                    continue;
                };
                if live_members(pgid).len() >= 2 {
                    return pgid;
                }
            }
            panic!("never saw the command's own process group with 2+ members");
        };
        let mut result = None;
        let pgid = tokio::select! {
            pgid = observe => pgid,
            r = &mut probe => panic!("probe ended before its group was observed: {r:?}"),
        };
        match cancel_after {
            Some(d) => assert!(tokio::time::timeout(d, probe).await.is_err(), "probe ended"),
            None => result = Some(probe.await),
        }
        std::fs::remove_file(&file).unwrap();
        (result, pgid)
    }

    async fn assert_group_gone(pgid: i32) {
        let left = wait_group_gone(pgid).await;
        // Hygiene so a failing test leaves no sleepers behind.
        let _ = crate::sys::process::kill_process_group(pgid);
        assert!(left.is_empty(), "group {pgid} still has {left:?}");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let script = "echo $$ > PIDFILE; sleep 30 & sleep 30";
        let (r, pgid) = run_grouped("timeout", script, Duration::from_millis(400), None).await;
        let r = r.unwrap();
        assert!(!r.ok);
        assert_eq!(r.detail, "timed out after 400 ms");
        assert!(r.elapsed >= Duration::from_millis(400), "{r:?}");
        assert!(r.elapsed < Duration::from_millis(900), "{r:?}");
        assert_group_gone(pgid).await;
    }

    #[tokio::test]
    async fn leftovers_holding_pipes_are_killed_after_exit() {
        // The shell waits a little so the test can see the group, then exits leaving `sleep`.
        let script = "echo $$ > PIDFILE; sleep 30 & sleep 0.3; echo started";
        let (r, pgid) = run_grouped("leftover", script, Duration::from_secs(5), None).await;
        let r = r.unwrap();
        assert!(r.ok, "{r:?}");
        assert!(r.elapsed < Duration::from_secs(1), "{r:?}");
        assert_group_gone(pgid).await;
    }

    #[tokio::test]
    async fn cancelled_probe_kills_the_group() {
        // Dropping the probe future is what shutdown does.
        let script = "echo $$ > PIDFILE; sleep 30 & sleep 30";
        let (_, pgid) = run_grouped(
            "cancel",
            script,
            Duration::from_secs(60),
            Some(Duration::from_millis(100)),
        )
        .await;
        assert_group_gone(pgid).await;
    }

    #[test]
    fn reason_has_no_control_characters() {
        assert_eq!(
            last_line(b"a\n\x1b[31mred\0\n\n").unwrap(),
            "\u{fffd}[31mred\u{fffd}"
        );
        assert_eq!(last_line(b" \n \n"), None);
    }

    #[test]
    fn empty_command_is_rejected() {
        let e = ExecProbe::new(&[]).err().unwrap();
        assert!(matches!(e, crate::checks::SetupError::EmptyCommand));
        assert_eq!(e.to_string(), "exec command is empty");
    }
}
