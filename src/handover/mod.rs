//! In-place upgrade (SIGUSR2, `vipwarden upgrade`): the running process starts the binary now at
//! its path and hands it every Established BGP session (socket, negotiated state, timers,
//! Adj-RIB-Out, unparsed bytes) and the decision state, then exits; the routers see nothing.
//!
//! All or nothing, in two phases over a socket pair:
//! 1. the old process pauses every session at a message boundary, writes the state blob
//!    (`blob`) to a memfd and starts the new binary with the memfd, the sockets and its end of
//!    the pair inherited (`ENV_STATE`, `ENV_CONTROL`);
//! 2. the new process reads and checks the blob, matches every session to its own config, and
//!    answers `ready` (or `refused <why>` and exits); it does not touch a socket yet;
//! 3. the old process answers `go` and exits; only then does the new one run. If `ready` does
//!    not come in time, or the child exits, the old process kills it, resumes its sessions and
//!    logs why; a child that sees no `go` exits without touching anything.
//!
//! Layers: `blob` is pure; this module does the two sides' I/O; raw fd calls are in
//! `crate::sys::handover`; the daemon wires it.

pub mod blob;
pub mod fdstore;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::bgp::fsm::{Fsm, FsmTiming};
use crate::bgp::session::Handed;
use crate::bgp::SessionSetup;
use crate::config::Config;
use crate::sys::handover as sys;
pub use blob::{Refused, State};

/// The memfd with the state blob (an fd number).
pub const ENV_STATE: &str = "VIPWARDEN_HANDOVER_STATE";
/// The new process's end of the control socket pair (an fd number).
pub const ENV_CONTROL: &str = "VIPWARDEN_HANDOVER_CONTROL";
/// How long the old process waits for `ready`, and the new one for `go`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an in-place upgrade (SIGUSR2) is refused here, if it is: this process is a systemd
/// service's own process: systemd (248 and later) exec'd it, so `SYSTEMD_EXEC_PID` is this PID,
/// whatever the unit's Type=. Older systemd: `INVOCATION_ID` and `NOTIFY_SOCKET` set with PID 1
/// as the parent. A process that merely inherited a service's environment (a lab script run
/// from a CI service, a hand-over's child re-parented to PID 1) has another PID there.
/// The new process would be the old one's child, not systemd's: systemd 252 then says
/// "Supervising process N which is not our child", and at `systemctl stop` SIGKILLs it right
/// after ExecStop= (measured in the package test), past the drain and the fleet guard. Under
/// systemd the hitless path is `systemctl restart`, through systemd's fd store.
pub fn refused_under_systemd() -> Option<String> {
    let service = match std::env::var("SYSTEMD_EXEC_PID") {
        Ok(pid) => pid.trim() == std::process::id().to_string(),
        Err(_) => {
            std::env::var_os("INVOCATION_ID").is_some()
                && std::env::var_os("NOTIFY_SOCKET").is_some()
                && crate::sys::process::parent_is_init()
        }
    };
    service.then(|| {
        "this process is a systemd service: a process it started would not be systemd's child, \
         and systemd would SIGKILL it at the next `systemctl stop` instead of letting it drain; \
         use `systemctl restart` (the sessions go over through systemd's fd store)"
            .to_string()
    })
}

/// The path of the binary to start: the running one's path, also after a package upgrade
/// replaced (deleted) the file, so the new file at that path is the one started.
pub fn binary_path() -> std::io::Result<PathBuf> {
    let p = std::env::current_exe()?;
    let s = p.to_string_lossy();
    Ok(match s.strip_suffix(" (deleted)") {
        Some(stripped) => PathBuf::from(stripped),
        None => p,
    })
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---------------------------------------------------------------- the new process's side

/// What a new process took over, ready to run once `go` came.
pub struct Takeover {
    pub sessions: HashMap<String, Handed>,
    pub bfd: crate::bfd::driver::Inherited,
    pub state: State,
    /// The control socket the old process answers `go` on.
    control: UnixStream,
}

/// The hand-over offered to this process, if any.
pub enum Intake {
    /// Not started by an upgrading vipwarden: a normal start.
    None,
    /// The old process serves on; this one must exit (it was told why).
    Refused(String),
    Ready(Box<Takeover>),
}

/// Reads the environment the old process set, checks the blob and matches every session to this
/// config. Answers `ready` or `refused` on the control socket; nothing is used yet.
pub async fn intake(config: &Config, bfd_spec: BfdSpec) -> Intake {
    let (Some(state_fd), Some(control_fd)) = (env_fd(ENV_STATE), env_fd(ENV_CONTROL)) else {
        return Intake::None;
    };
    let control = match sys::take_inherited(control_fd)
        .map(StdUnixStream::from)
        .and_then(|s| {
            s.set_nonblocking(true)?;
            UnixStream::from_std(s)
        }) {
        Ok(c) => c,
        Err(e) => {
            return Intake::Refused(format!(
                "the control socket (fd {control_fd}) is unusable: {e}"
            ))
        }
    };
    let mut c = control;
    match take(config, state_fd, bfd_spec).await {
        Err(why) => {
            let _ = c.write_all(format!("refused {why}\n").as_bytes()).await;
            Intake::Refused(why)
        }
        Ok((state, sessions, bfd)) => {
            let line = format!("ready {} {}\n", std::process::id(), sessions.len());
            if let Err(e) = c.write_all(line.as_bytes()).await {
                return Intake::Refused(format!("cannot tell the old process: {e}"));
            }
            Intake::Ready(Box::new(Takeover {
                sessions,
                bfd,
                state,
                control: c,
            }))
        }
    }
}

/// Why the old process did not say `go`.
#[derive(Debug)]
pub enum GoError {
    /// It closed the control socket: it gave up and serves on.
    Closed,
    Unexpected {
        answer: String,
    },
    Read(std::io::Error),
    TimedOut {
        after: Duration,
    },
}

impl std::fmt::Display for GoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoError::Closed => {
                f.write_str("the old process closed the control socket (it gave up and serves on)")
            }
            GoError::Unexpected { answer } => {
                write!(f, "unexpected answer {answer:?} from the old process")
            }
            GoError::Read(e) => write!(f, "reading the control socket: {e}"),
            GoError::TimedOut { after } => write!(f, "no go from the old process within {after:?}"),
        }
    }
}

impl std::error::Error for GoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GoError::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// Why the new process could not be started with the state.
#[derive(Debug)]
pub enum SpawnError {
    Memfd(std::io::Error),
    ControlPair(std::io::Error),
    Start {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    Control(std::io::Error),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Memfd(e) => write!(f, "cannot create the state memfd: {e}"),
            SpawnError::ControlPair(e) => write!(f, "cannot create the control socket: {e}"),
            SpawnError::Start { path, source } => {
                write!(f, "cannot start {}: {source}", path.display())
            }
            SpawnError::Control(e) => write!(f, "control socket: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Memfd(e)
            | SpawnError::ControlPair(e)
            | SpawnError::Control(e)
            | SpawnError::Start { source: e, .. } => Some(e),
        }
    }
}

impl Takeover {
    /// Waits for the old process's `go`. Err: it gave up (timed out, or the child was too slow);
    /// this process must exit without touching the sessions.
    pub async fn wait_go(&mut self) -> Result<(), GoError> {
        let mut line = String::new();
        let mut r = BufReader::new(&mut self.control);
        match tokio::time::timeout(READY_TIMEOUT, r.read_line(&mut line)).await {
            Ok(Ok(_)) if line.trim() == "go" => Ok(()),
            Ok(Ok(0)) => Err(GoError::Closed),
            Ok(Ok(_)) => Err(GoError::Unexpected {
                answer: line.trim().to_owned(),
            }),
            Ok(Err(e)) => Err(GoError::Read(e)),
            Err(_) => Err(GoError::TimedOut {
                after: READY_TIMEOUT,
            }),
        }
    }
}

fn env_fd(name: &str) -> Option<i32> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// The BFD session a peer's config asks for (the daemon's mapping).
pub type BfdSpec = fn(&crate::config::PeerConfig) -> Option<crate::bfd::driver::PeerSpec>;

async fn take(
    config: &Config,
    state_fd: i32,
    bfd_spec: BfdSpec,
) -> Result<
    (
        State,
        HashMap<String, Handed>,
        crate::bfd::driver::Inherited,
    ),
    String,
> {
    let fd = sys::take_inherited(state_fd)
        .map_err(|e| format!("the state memfd (fd {state_fd}) is unusable: {e}"))?;
    let state = read_state(fd).await?;
    let (sessions, bfd) = adopt(config, &state, bfd_spec, &mut sys::take_inherited)?;
    Ok((state, sessions, bfd))
}

/// Reads and checks the state blob from its memfd.
pub(crate) async fn read_state(fd: OwnedFd) -> Result<State, String> {
    let bytes = tokio::task::spawn_blocking(move || sys::read_all(fd, blob::MAX_BLOB))
        .await
        .map_err(|e| format!("reading the state: {e}"))?
        .map_err(|e| format!("reading the state: {e}"))?;
    blob::decode(&bytes).map_err(|e| e.to_string())
}

/// Where the fds a blob names come from: inherited numbers (SIGUSR2) or systemd's fd store.
pub(crate) type FdSource<'a> = dyn FnMut(i32) -> std::io::Result<OwnedFd> + 'a;

/// Matches every handed-over session (BGP and BFD) to this config and takes its socket from
/// `fd_of` (the blob's fd numbers are the old process's). Err: the reason; every fd taken so far
/// is closed again.
pub(crate) fn adopt(
    config: &Config,
    state: &State,
    bfd_spec: BfdSpec,
    fd_of: &mut FdSource<'_>,
) -> Result<(HashMap<String, Handed>, crate::bfd::driver::Inherited), String> {
    // Take every fd first, so that none stays open unowned whatever is refused below.
    let mut fds: Vec<Option<OwnedFd>> = Vec::new();
    let mut problems = Vec::new();
    for s in &state.sessions {
        match fd_of(s.fd) {
            Ok(fd) => fds.push(Some(fd)),
            Err(e) => {
                fds.push(None);
                problems.push(format!("session with {}: fd {}: {e}", s.fsm.peer, s.fd));
            }
        }
    }
    if let Some(p) = problems.first() {
        return Err(p.clone());
    }
    let mut sessions = HashMap::new();
    for (s, fd) in state.sessions.iter().zip(fds) {
        let Some(fd) = fd else { continue };
        let peer = config
            .peers
            .iter()
            .find(|p| *p.spec.name == *s.fsm.peer)
            .ok_or_else(|| format!("peer {} is no longer configured", s.fsm.peer))?;
        let setup = SessionSetup {
            local_as: config.local_as,
            router_id: config.router_id,
            peer: peer.spec.clone(),
        };
        let stream = std::net::TcpStream::from(fd);
        let remote = stream.peer_addr().map_err(|e| {
            format!(
                "session with {}: the socket is not connected: {e}",
                s.fsm.peer
            )
        })?;
        let want = std::net::SocketAddr::new(peer.spec.address, peer.spec.port);
        if normalize(remote) != normalize(want) {
            return Err(format!(
                "session with {}: the socket is connected to {remote}, the config says {want}",
                s.fsm.peer
            ));
        }
        let fsm = Fsm::resume(setup, FsmTiming::default(), &s.fsm)?;
        let handed = Handed {
            stream,
            fsm,
            keepalive_in: s.keepalive_in_ms.map(Duration::from_millis),
            hold_in: s.hold_in_ms.map(Duration::from_millis),
            pending: s.pending.clone(),
            established_since: s
                .established_since_unix_ms
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        };
        sessions.insert(s.fsm.peer.clone(), handed);
    }
    let bfd = take_bfd(config, &state.bfd, bfd_spec, fd_of)?;
    Ok((sessions, bfd))
}

/// The BFD sessions, each matched to its peer's BFD config (same timing and authentication).
fn take_bfd(
    config: &Config,
    e: &crate::bfd::driver::Exported,
    bfd_spec: BfdSpec,
    fd_of: &mut FdSource<'_>,
) -> Result<crate::bfd::driver::Inherited, String> {
    use crate::bfd::driver::{Adopted, Inherited};
    let now = std::time::Instant::now();
    let mut out = Inherited::default();
    for (ip, fd) in &e.receivers {
        let fd = fd_of(*fd).map_err(|err| format!("BFD receiver on {ip}: fd {fd}: {err}"))?;
        out.receivers.push((*ip, fd));
    }
    for b in &e.sessions {
        let tx_fd = fd_of(b.tx_fd)
            .map_err(|err| format!("BFD session with {}: fd {}: {err}", b.name, b.tx_fd))?;
        let spec = config
            .peers
            .iter()
            .find(|p| *p.spec.name == *b.name)
            .and_then(bfd_spec)
            .ok_or_else(|| format!("BFD with {} is no longer configured", b.name))?;
        let session = crate::bfd::Session::resume(spec.timing, spec.auth.clone(), &b.session, now)
            .map_err(|err| format!("BFD session with {}: {err}", b.name))?;
        out.sessions.push(Adopted {
            spec,
            local: b.local,
            ifindex: b.ifindex,
            tx_fd,
            tx_in: b.tx_in,
            detect_in: b.detect_in,
            session,
        });
    }
    Ok(out)
}

/// v4-mapped v6 addresses compare equal to their v4 form.
fn normalize(a: std::net::SocketAddr) -> std::net::SocketAddr {
    match a.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::SocketAddr::new(v4.into(), a.port()),
            None => a,
        },
        _ => a,
    }
}

// ---------------------------------------------------------------- the old process's side

/// A started new process, waiting for its `ready`.
pub struct Child {
    pub pid: u32,
    child: tokio::process::Child,
    control: UnixStream,
}

/// What came of waiting for the new process.
pub enum Answer {
    /// It took the state: `go` was sent; this process must exit now.
    Ready { pid: u32, sessions: usize },
    /// It did not: the reason, for the log. The child was killed if still running.
    Failed(String),
}

/// Starts the binary at `path` with the same arguments, the state blob in a memfd and `fds`
/// (the sessions' sockets) inherited.
pub fn spawn(path: &std::path::Path, state: &State, fds: &[i32]) -> Result<Child, SpawnError> {
    let blob = blob::encode(state);
    let memfd = sys::memfd_with("vipwarden-handover", &blob).map_err(SpawnError::Memfd)?;
    let (ours, theirs) = StdUnixStream::pair().map_err(SpawnError::ControlPair)?;
    let mut cmd = tokio::process::Command::new(path);
    cmd.args(std::env::args_os().skip(1))
        .env(ENV_STATE, memfd.as_raw_fd().to_string())
        .env(ENV_CONTROL, theirs.as_raw_fd().to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false);
    let mut inherit = fds.to_vec();
    inherit.push(memfd.as_raw_fd());
    inherit.push(theirs.as_raw_fd());
    sys::inherit_fds(&mut cmd, inherit);
    let child = cmd.spawn().map_err(|source| SpawnError::Start {
        path: path.to_path_buf(),
        source,
    })?;
    // The child has its copies now.
    drop(memfd);
    drop(theirs);
    let pid = child.id().unwrap_or(0);
    ours.set_nonblocking(true).map_err(SpawnError::Control)?;
    let control = UnixStream::from_std(ours).map_err(SpawnError::Control)?;
    Ok(Child {
        pid,
        child,
        control,
    })
}

impl Child {
    /// Waits for `ready` (then sends `go`), a refusal, the child's exit, or the timeout.
    pub async fn answer(mut self, timeout: Duration) -> Answer {
        let mut line = String::new();
        let outcome = {
            let mut r = BufReader::new(&mut self.control);
            tokio::select! {
                r = tokio::time::timeout(timeout, r.read_line(&mut line)) => match r {
                    Err(_) => Err(format!("no answer from the new process within {timeout:?}")),
                    Ok(Err(e)) => Err(format!("reading the control socket: {e}")),
                    Ok(Ok(0)) => Err("the new process closed the control socket without an answer".to_string()),
                    Ok(Ok(_)) => Ok(()),
                },
                st = self.child.wait() => Err(match st {
                    Ok(st) => format!("the new process exited ({st}) before taking over"),
                    Err(e) => format!("waiting for the new process: {e}"),
                }),
            }
        };
        let verdict = match outcome {
            Err(e) if line.is_empty() => {
                // EOF often comes just before the exit status: give it a moment, it says more.
                match tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await {
                    Ok(Ok(st)) => Err(format!("the new process exited ({st}) before taking over")),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
            Ok(()) => {
                let l = line.trim();
                if let Some(why) = l.strip_prefix("refused ") {
                    Err(format!("the new process refused the state: {why}"))
                } else if let Some(rest) = l.strip_prefix("ready ") {
                    let n = rest
                        .split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    Ok(n)
                } else {
                    Err(format!("unexpected answer {l:?} from the new process"))
                }
            }
        };
        match verdict {
            Ok(sessions) => match self.control.write_all(b"go\n").await {
                Ok(()) => Answer::Ready {
                    pid: self.pid,
                    sessions,
                },
                Err(e) => {
                    self.kill().await;
                    Answer::Failed(format!("cannot send go to the new process: {e}"))
                }
            },
            Err(why) => {
                self.kill().await;
                Answer::Failed(why)
            }
        }
    }

    /// Our own child, by its handle: it must not run on beside us.
    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }
}
