//! SIGUSR2: the old process's side of the in-place upgrade (`crate::handover`). Pauses every
//! session, starts the binary at our path with the state, and either releases the sessions to it
//! and exits, or resumes them and serves on, saying why.

use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use super::Daemon;
use crate::bgp::pause::{Paused, PausedSession, Verdict};
use crate::handover::{self, blob, Answer};

/// How long every session gets to reach a message boundary.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A successful hand-over, for the log and `vipwarden upgrade`.
pub struct Done {
    pub pid: u32,
    pub sessions: usize,
    pub took: Duration,
}

fn resume_all(paused: Vec<PausedSession>) {
    for p in paused {
        let _ = p.verdict.send(Verdict::Resume);
    }
}

impl Daemon {
    /// Runs the hand-over. Ok: the new process runs; this one must exit at once (its sessions are
    /// released and never touched again). Err: everything was resumed; the reason is for the log.
    pub(super) async fn upgrade(&mut self, started: Instant) -> Result<Done, String> {
        // Exiting mid-write could leave the drain state file half-written.
        if self.saving.is_some() {
            return Err("a drain/undrain is writing its state file; try again in a moment".into());
        }
        // A VIP a reload removed is still leaving through the guard's gate; the new process's
        // config does not have it, so it would withdraw it at once, past the gate.
        let retiring: Vec<&str> = self
            .engine
            .vips()
            .iter()
            .filter(|v| v.retiring)
            .map(|v| &*v.name)
            .collect();
        if !retiring.is_empty() {
            return Err(format!(
                "VIP {} was removed from the configuration and is still leaving through the fleet guard; upgrade once it has left (status shows it)",
                retiring.join(", ")
            ));
        }
        let path = handover::binary_path()
            .map_err(|e| format!("cannot find the path of this binary: {e}"))?;
        info!(
            "SIGUSR2: in-place upgrade to {}: pausing {} sessions at a message boundary",
            path.display(),
            self.peers.list.len()
        );
        let mut paused = Vec::new();
        let mut problem = None;
        let asks: Vec<_> = self
            .peers
            .list
            .iter()
            .map(|rt| (rt.cfg.spec.name.clone(), rt.pause()))
            .collect();
        for (name, rx) in asks {
            let Some(rx) = rx else { continue };
            match tokio::time::timeout(PAUSE_TIMEOUT, rx).await {
                Ok(Ok(Paused::Session(s))) => paused.push(*s),
                Ok(Ok(Paused::NotEstablished)) => {
                    info!(peer = %name, "upgrade: {name} is not Established; the new process connects afresh")
                }
                Ok(Err(_)) => {
                    info!(peer = %name, "upgrade: the task of {name} ended; the new process connects afresh")
                }
                Err(_) => {
                    problem = Some(format!(
                        "session with {name} did not pause within {PAUSE_TIMEOUT:?}"
                    ));
                    break;
                }
            }
        }
        if let Some(p) = problem {
            resume_all(paused);
            return Err(p);
        }
        // BFD last: its peers detect silence soonest (3 x 300 ms), so its pause is the shortest.
        let (bfd, bfd_verdict) = match self.bfd.pause().await {
            Ok(Some((e, v))) => (e, Some(v)),
            Ok(None) => (Default::default(), None),
            Err(e) => {
                resume_all(paused);
                return Err(e.to_string());
            }
        };
        let release_bfd = |v: Option<tokio::sync::oneshot::Sender<bool>>, release: bool| {
            if let Some(v) = v {
                let _ = v.send(release);
            }
        };
        let now = Instant::now();
        let sessions = paused
            .iter()
            .map(|p| blob::Session {
                fd: p.fd,
                fsm: p.state.clone(),
                keepalive_in_ms: p.keepalive_in.map(|d| d.as_millis() as u64),
                hold_in_ms: p.hold_in.map(|d| d.as_millis() as u64),
                pending: p.pending.clone(),
                established_since_unix_ms: p.established_since.map(handover::unix_ms),
            })
            .collect();
        let state = blob::State {
            from_version: env!("CARGO_PKG_VERSION").to_string(),
            from_pid: std::process::id(),
            requested_at_ms: handover::unix_ms(SystemTime::now())
                - started.elapsed().as_millis() as u64,
            sessions,
            engine: self.engine.export(now),
            bfd,
        };
        let mut fds: Vec<i32> = paused.iter().map(|p| p.fd).collect();
        fds.extend(state.bfd.sessions.iter().map(|b| b.tx_fd));
        fds.extend(state.bfd.receivers.iter().map(|r| r.1));
        let child = match handover::spawn(&path, &state, &fds) {
            Ok(c) => c,
            Err(e) => {
                resume_all(paused);
                release_bfd(bfd_verdict, false);
                return Err(e.to_string());
            }
        };
        info!(
            "upgrade: started {} (PID {}) with {} BGP sessions, {} BFD sessions and the decision state of {} VIPs",
            path.display(),
            child.pid,
            paused.len(),
            state.bfd.sessions.len(),
            state.engine.vips.len()
        );
        match child.answer(handover::READY_TIMEOUT).await {
            Answer::Ready { pid, sessions } => {
                let n = paused.len();
                for p in paused {
                    let _ = p.verdict.send(Verdict::Release);
                }
                release_bfd(bfd_verdict, true);
                if sessions != n {
                    warn!("upgrade: the new process reports {sessions} sessions of the {n} handed over");
                }
                Ok(Done {
                    pid,
                    sessions: n,
                    took: started.elapsed(),
                })
            }
            Answer::Failed(why) => {
                resume_all(paused);
                release_bfd(bfd_verdict, false);
                Err(why)
            }
        }
    }

    /// After a successful hand-over: tells systemd the new main PID, logs, exits at once (no
    /// drain, no withdrawal, no Cease: the sessions belong to the new process).
    pub(super) fn exit_upgraded(&self, d: &Done) -> ! {
        let _ = self.notifier.send(&format!("MAINPID={}", d.pid));
        info!(
            new_pid = d.pid,
            sessions = d.sessions,
            handover_ms = d.took.as_millis() as u64,
            "upgrade done: {} sessions and the decision state handed over to PID {} in {} ms; this process exits",
            d.sessions,
            d.pid,
            d.took.as_millis()
        );
        std::process::exit(0)
    }
}
