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

/// Every session paused at a message boundary, and the state blob they make: what both ways
/// of handing over (SIGUSR2's child, systemd's fd store) send.
struct Prepared {
    paused: Vec<PausedSession>,
    bfd_verdict: Option<tokio::sync::oneshot::Sender<bool>>,
    state: blob::State,
    /// Every fd the state names (BGP sockets, BFD senders and receivers).
    fds: Vec<i32>,
}

impl Prepared {
    /// The hand-over failed: every session carries on where it paused.
    fn resume(self) {
        resume_all(self.paused);
        if let Some(v) = self.bfd_verdict {
            let _ = v.send(false);
        }
    }

    /// The sessions belong to the next process now: never touched again here.
    fn release(self) -> usize {
        let n = self.paused.len();
        for p in self.paused {
            let _ = p.verdict.send(Verdict::Release);
        }
        if let Some(v) = self.bfd_verdict {
            let _ = v.send(true);
        }
        n
    }
}

impl Daemon {
    /// Runs the hand-over. Ok: the new process runs; this one must exit at once (its sessions are
    /// released and never touched again). Err: everything was resumed; the reason is for the log.
    pub(super) async fn upgrade(&mut self, started: Instant) -> Result<Done, String> {
        if let Some(why) = handover::refused_under_systemd() {
            return Err(why);
        }
        let path = handover::binary_path()
            .map_err(|e| format!("cannot find the path of this binary: {e}"))?;
        info!(
            "SIGUSR2: in-place upgrade to {}: pausing {} sessions at a message boundary",
            path.display(),
            self.peers.list.len()
        );
        let p = self.prepare(started).await?;
        let child = match handover::spawn(&path, &p.state, &p.fds) {
            Ok(c) => c,
            Err(e) => {
                p.resume();
                return Err(e.to_string());
            }
        };
        info!(
            "upgrade: started {} (PID {}) with {} BGP sessions, {} BFD sessions and the decision state of {} VIPs",
            path.display(),
            child.pid,
            p.paused.len(),
            p.state.bfd.sessions.len(),
            p.state.engine.vips.len()
        );
        match child.answer(handover::READY_TIMEOUT).await {
            Answer::Ready { pid, sessions } => {
                let n = p.release();
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
                p.resume();
                Err(why)
            }
        }
    }

    /// `systemctl restart` (the ExecStop= hook said restart): pushes every session and the
    /// state to systemd's fd store. Ok: this process must exit at once, the next one started by
    /// systemd takes them. Err: everything was resumed; the caller stops as planned.
    pub(super) async fn restart_handover(&mut self, started: Instant) -> Result<Done, String> {
        info!(
            "SIGTERM of a restart job: handing {} sessions to the next process through systemd's fd store",
            self.peers.list.len()
        );
        let p = self.prepare(started).await?;
        let (state, fds) = (p.state.clone(), p.fds.clone());
        // sendmsg on the notify socket and the BARRIER=1 wait (bounded) off the runtime.
        let pushed = tokio::task::spawn_blocking(move || {
            handover::fdstore::push(&crate::ops::sdnotify::Notifier::from_env(), &state, &fds)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match pushed {
            Ok(()) => {
                let n = p.release();
                Ok(Done {
                    pid: 0,
                    sessions: n,
                    took: started.elapsed(),
                })
            }
            Err(why) => {
                p.resume();
                Err(why)
            }
        }
    }

    /// Pauses every session and BFD and builds the state. Err: nothing is paused any more.
    async fn prepare(&mut self, started: Instant) -> Result<Prepared, String> {
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
            .map(|v| &*v.spec.name)
            .collect();
        if !retiring.is_empty() {
            return Err(format!(
                "VIP {} was removed from the configuration and is still leaving through the fleet guard; upgrade once it has left (status shows it)",
                retiring.join(", ")
            ));
        }
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
        Ok(Prepared {
            paused,
            bfd_verdict,
            state,
            fds,
        })
    }

    /// After a successful hand-over: logs, exits at once (no drain, no withdrawal, no Cease: the
    /// sessions belong to the new process). No `MAINPID=`: under systemd SIGUSR2 is refused
    /// (`handover::refused_under_systemd`), and `systemctl restart` starts systemd's own process.
    pub(super) fn exit_upgraded(&self, d: &Done) -> ! {
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

impl Daemon {
    /// After the fd store took everything: exits at once (no drain, no withdrawal, no Cease);
    /// systemd starts the next process, which takes the sessions from the store.
    pub(super) fn exit_restarted(&self, d: &Done) -> ! {
        let _ = self
            .notifier
            .stopping("sessions handed to the next process through systemd's fd store");
        info!(
            sessions = d.sessions,
            handover_ms = d.took.as_millis() as u64,
            "restart: {} sessions and the decision state are in systemd's fd store ({} ms); this process exits, the next one takes them",
            d.sessions,
            d.took.as_millis()
        );
        std::process::exit(0)
    }
}
