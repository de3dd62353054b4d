//! The hand-over through systemd's file-descriptor store: `systemctl restart vipwarden` (and the
//! package's upgrade, whose postinst restarts the unit) keeps every session, like SIGUSR2.
//!
//! 1. The unit's `ExecStop=` hook (`vipwarden stop-hook`, run as root before systemd's SIGTERM)
//!    asks systemd which job stops the unit. Only a `restart` job writes the verdict file
//!    (`$RUNTIME_DIRECTORY/restart-handover`, naming the main PID); a stop, no job, a query that
//!    fails or times out writes nothing: when in doubt it is a stop.
//! 2. At SIGTERM the daemon reads (and removes) that file. Without it, or with another PID in
//!    it, SIGTERM is a planned stop as always (drain/shutdown through the fleet gate, Cease).
//!    With it, the daemon pauses every session as for SIGUSR2, writes the same state blob to a
//!    memfd and pushes every socket (`FDNAME=vw-fd-<old number>`) and the memfd
//!    (`FDNAME=vw-state`) to systemd with `FDSTORE=1`, waits for `BARRIER=1`, and exits without
//!    touching a route. If a push fails it removes what it pushed, resumes and stops as planned.
//! 3. The next process gets them back as `LISTEN_FDS`/`LISTEN_FDNAMES`, decodes the blob, maps
//!    its fd numbers through the names and takes the sessions with the same code as SIGUSR2
//!    (`super::adopt`); then it removes them from the store (`FDSTOREREMOVE=1`), so systemd holds
//!    no session socket while we run (a crash or `kill -9` closes them as before). A state it
//!    refuses (another version, truncated, tampered, a peer changed, an fd missing) closes every
//!    handed TCP socket with a Cease and a FIN, empties the store and starts normally.
//!
//! Pure parts (names, `LISTEN_*`, the stop-or-restart decision, the verdict) are unit-tested here;
//! the notify socket calls are in `crate::sys::fdstore`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{BfdSpec, State};
use crate::bgp::session::Handed;
use crate::config::Config;
use crate::ops::sdnotify::Notifier;

/// The state blob's memfd in the store.
pub const STATE_NAME: &str = "vw-state";
/// A session socket in the store: this prefix and its fd number in the old process (the number
/// the blob names).
const FD_PREFIX: &str = "vw-fd-";
/// The hook's verdict, in `$RUNTIME_DIRECTORY`.
pub const VERDICT_FILE: &str = "restart-handover";
/// How long the hook waits for systemctl.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

pub fn fd_name(old: RawFd) -> String {
    format!("{FD_PREFIX}{old}")
}

/// The old process's fd number a store name stands for.
pub fn old_fd(name: &str) -> Option<RawFd> {
    name.strip_prefix(FD_PREFIX)?
        .parse()
        .ok()
        .filter(|n: &RawFd| *n >= 0)
}

/// What the `LISTEN_*` variables say.
#[derive(Debug, PartialEq, Eq)]
pub enum ListenError {
    /// `LISTEN_FDS` is not a number.
    BadCount(String),
    /// `LISTEN_FDNAMES` names another number of fds.
    Names { fds: usize, names: usize },
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::BadCount(v) => write!(f, "LISTEN_FDS={v:?} is not a count"),
            ListenError::Names { fds, names } => {
                write!(f, "LISTEN_FDS={fds} but LISTEN_FDNAMES has {names} names")
            }
        }
    }
}

/// The names of the fds systemd passed this process (fd 3 is the first name), from `LISTEN_PID`,
/// `LISTEN_FDS` and `LISTEN_FDNAMES`. None passed, or passed to another PID (a variable a child
/// inherited): an empty list. Without `LISTEN_FDNAMES` every fd is `unknown` (sd_listen_fds).
pub fn parse_listen(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    own_pid: u32,
) -> Result<Vec<String>, ListenError> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(own_pid) {
        return Ok(Vec::new());
    }
    let n: usize = fds
        .trim()
        .parse()
        .map_err(|_| ListenError::BadCount(fds.to_string()))?;
    // More than the kernel's fd limit is not a count systemd wrote.
    if n > 1 << 20 {
        return Err(ListenError::BadCount(fds.to_string()));
    }
    match names {
        None => Ok(vec!["unknown".to_string(); n]),
        Some(s) => {
            let v: Vec<String> = if n == 0 && s.is_empty() {
                Vec::new()
            } else {
                s.split(':').map(str::to_string).collect()
            };
            if v.len() != n {
                return Err(ListenError::Names {
                    fds: n,
                    names: v.len(),
                });
            }
            Ok(v)
        }
    }
}

/// How systemd is stopping the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// A planned stop (drain, withdraw through the fleet gate, Cease). Also every doubt.
    Stop,
    /// A restart job: the next process takes the sessions over.
    Restart,
}

/// The decision from `systemctl list-jobs --no-legend --full UNIT` (columns: id, unit, type,
/// state). Only a `restart` job of exactly this unit is a restart (`try-restart` and
/// `reload-or-restart` are installed as `restart` on a running unit); a stop job, no job, or
/// output we do not understand is a stop.
pub fn stop_kind(jobs: &str, unit: &str) -> StopKind {
    let mut kind = StopKind::Stop;
    let mut seen = 0;
    for line in jobs.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 3 || cols[1] != unit {
            continue;
        }
        seen += 1;
        if cols[0].parse::<u64>().is_ok() && cols[2] == "restart" {
            kind = StopKind::Restart;
        }
    }
    // A unit has at most one job; two lines for it is output we do not understand.
    if seen == 1 {
        kind
    } else {
        StopKind::Stop
    }
}

/// The verdict file's contents for the main process `pid`.
pub fn verdict(pid: u32) -> String {
    format!("restart {pid}\n")
}

/// True when the verdict file says restart for this process.
pub fn verdict_is_for(contents: &str, own_pid: u32) -> bool {
    contents
        .trim()
        .strip_prefix("restart ")
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(own_pid)
}

// ---------------------------------------------------------------- the ExecStop= hook

/// `vipwarden stop-hook --unit %n`, run by systemd as root (`ExecStop=-+`) before it sends
/// SIGTERM: decides stop or restart and, for a restart, writes the verdict for `$MAINPID`.
/// `config`: whether the config the next process reads loads; if not, the next process could
/// not take the sessions, so this is a planned stop (withdrawn in order, not left to the hold
/// timer). Returns the line to print; never fails the stop (systemd would mark the unit failed).
pub fn stop_hook(unit: &str, config: Result<(), String>) -> String {
    let Some(pid) = std::env::var("MAINPID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|p| *p > 0)
    else {
        return "stop-hook: no MAINPID (the daemon is not running): nothing to hand over".into();
    };
    let Some(dir) = std::env::var_os("RUNTIME_DIRECTORY")
        .and_then(|d| {
            d.to_str()
                .and_then(|d| d.split(':').next().map(str::to_string))
        })
        .filter(|d| d.starts_with('/'))
    else {
        return "stop-hook: no RUNTIME_DIRECTORY (the unit lacks RuntimeDirectory=): a planned stop".into();
    };
    if let Err(why) = config {
        return format!(
            "stop-hook: {why}; the next process could not take the sessions: a planned stop"
        );
    }
    let jobs = match list_jobs(unit) {
        Ok(j) => j,
        Err(e) => {
            return format!("stop-hook: cannot ask systemd for the job ({e}): a planned stop")
        }
    };
    match stop_kind(&jobs, unit) {
        StopKind::Stop => format!(
            "stop-hook: {unit} is being stopped ({}): a planned stop",
            jobs.trim()
        ),
        StopKind::Restart => {
            let path = std::path::Path::new(&dir).join(VERDICT_FILE);
            let tmp = path.with_extension("tmp");
            // Readable by the daemon's user: the unit's UMask=0027 would make it root's alone.
            let written = std::fs::write(&tmp, verdict(pid))
                .and_then(|()| {
                    std::fs::set_permissions(
                        &tmp,
                        std::os::unix::fs::PermissionsExt::from_mode(0o644),
                    )
                })
                .and_then(|()| std::fs::rename(&tmp, &path));
            match written {
                Ok(()) => format!(
                    "stop-hook: {unit} is being restarted: PID {pid} hands its sessions to the next process through systemd's fd store"
                ),
                Err(e) => format!(
                    "stop-hook: cannot write {}: {e}: a planned stop",
                    path.display()
                ),
            }
        }
    }
}

/// `systemctl list-jobs` for the unit (as root it talks to systemd's private socket: no D-Bus
/// daemon needed), bounded in time.
fn list_jobs(unit: &str) -> std::io::Result<String> {
    let mut child = std::process::Command::new("systemctl")
        .args(["list-jobs", "--no-legend", "--full", "--no-pager", unit])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::Instant::now() + QUERY_TIMEOUT;
    loop {
        if let Some(st) = child.try_wait()? {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                std::io::Read::read_to_string(&mut o, &mut out)?;
            }
            if !st.success() {
                return Err(std::io::Error::other(format!("systemctl list-jobs: {st}")));
            }
            return Ok(out);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("systemctl list-jobs took more than {QUERY_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------- the old process's side

/// At SIGTERM: did the hook say restart, for this process? Reads and removes the verdict file
/// (root-owned, naming our PID); anything else is a stop, with the reason for the log.
pub fn restart_requested() -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::var_os("RUNTIME_DIRECTORY")
        .ok_or("no RUNTIME_DIRECTORY (not run by the packaged unit)")?;
    let dir = dir.to_string_lossy();
    let path = std::path::Path::new(dir.split(':').next().unwrap_or("")).join(VERDICT_FILE);
    let meta =
        std::fs::metadata(&path).map_err(|_| "no restart job (stop-hook wrote no verdict)")?;
    let contents = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    if meta.uid() != 0 {
        return Err(format!("{} is not root's: ignored", path.display()));
    }
    let contents = contents.map_err(|e| format!("{}: {e}", path.display()))?;
    if !verdict_is_for(&contents, std::process::id()) {
        return Err(format!(
            "{} is not for this process: {contents:?}",
            path.display()
        ));
    }
    Ok(())
}

/// Pushes the sockets (`fds`, old numbers) and the state to systemd's store. All or nothing:
/// on an error whatever was pushed is removed again.
pub fn push(notifier: &Notifier, state: &State, fds: &[RawFd]) -> Result<(), String> {
    let memfd = crate::sys::handover::memfd_with("vipwarden-handover", &super::blob::encode(state))
        .map_err(|e| format!("cannot create the state memfd: {e}"))?;
    let mut pushed = Vec::new();
    let mut result = Ok(());
    for &fd in fds {
        let name = fd_name(fd);
        match notifier.send_with_fds(&format!("FDSTORE=1\nFDNAME={name}"), &[fd]) {
            Ok(()) => pushed.push(name),
            Err(e) => {
                result = Err(format!("pushing fd {fd} to systemd's fd store: {e}"));
                break;
            }
        }
    }
    if result.is_ok() {
        // Last: a state in the store means every socket it names is there too. Not polled: a
        // memfd is not pollable.
        result = notifier
            .send_with_fds(
                &format!("FDSTORE=1\nFDNAME={STATE_NAME}\nFDPOLL=0"),
                &[memfd.as_raw_fd()],
            )
            .map_err(|e| format!("pushing the state to systemd's fd store: {e}"));
        pushed.push(STATE_NAME.to_string());
    }
    if result.is_ok() {
        result = notifier
            .barrier(Duration::from_secs(3))
            .map_err(|e| format!("systemd did not confirm the fd store: {e}"));
    }
    if result.is_err() {
        remove(notifier, &pushed);
    }
    result
}

/// `FDSTOREREMOVE=1` for each name (systemd closes its copies).
pub fn remove(notifier: &Notifier, names: &[String]) {
    for n in names {
        let _ = notifier.send(&format!("FDSTOREREMOVE=1\nFDNAME={n}"));
    }
}

// ---------------------------------------------------------------- the new process's side

/// What this process found in systemd's store.
pub enum StoreIntake {
    /// Nothing: a normal start.
    None,
    /// A state it could not use: every handed TCP socket was closed (Cease, FIN) and the store
    /// emptied; a normal start follows. The reason and the number of sockets closed.
    Refused {
        why: String,
        closed: usize,
    },
    Ready(Box<Taken>),
}

pub struct Taken {
    pub state: State,
    pub sessions: std::collections::HashMap<String, Handed>,
    pub bfd: crate::bfd::driver::Inherited,
}

/// Ages the state's timers by the time the hand-over took (the old process's SIGTERM to now): a
/// KEEPALIVE or BFD packet that fell due in the gap goes out at once.
pub fn age(state: &mut State, elapsed: Duration) {
    let ms = elapsed.as_millis() as u64;
    for s in &mut state.sessions {
        s.keepalive_in_ms = s.keepalive_in_ms.map(|k| k.saturating_sub(ms));
    }
    for b in &mut state.bfd.sessions {
        b.tx_in = b.tx_in.map(|t| t.saturating_sub(elapsed));
    }
}

/// Takes what systemd passed (`LISTEN_FDS`), if it is ours.
pub async fn intake(config: &Config, bfd_spec: BfdSpec) -> StoreIntake {
    let names = match parse_listen(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::env::var("LISTEN_FDNAMES").ok().as_deref(),
        std::process::id(),
    ) {
        Ok(n) if n.is_empty() => return StoreIntake::None,
        Ok(n) => n,
        Err(e) => {
            return StoreIntake::Refused {
                why: e.to_string(),
                closed: 0,
            }
        }
    };
    let notifier = Notifier::from_env();
    let mut fds: Vec<(String, OwnedFd)> = Vec::new();
    let mut problems = Vec::new();
    for (name, fd) in names
        .iter()
        .zip(crate::sys::fdstore::take_listen_fds(names.len()))
    {
        match fd {
            Ok(fd) => fds.push((name.clone(), fd)),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    let taken = match problems.first() {
        Some(p) => Err(format!("an fd systemd passed is unusable: {p}")),
        None => take(config, bfd_spec, &mut fds).await,
    };
    // Either way systemd keeps no copy: ours are in use, or closed below.
    remove(&notifier, &names);
    match taken {
        Ok(t) => {
            // Anything left is not named by the state: not ours to keep.
            drop(fds);
            StoreIntake::Ready(Box::new(t))
        }
        Err(why) => {
            let closed = close_all(fds);
            StoreIntake::Refused { why, closed }
        }
    }
}

async fn take(
    config: &Config,
    bfd_spec: BfdSpec,
    fds: &mut Vec<(String, OwnedFd)>,
) -> Result<Taken, String> {
    let Some(i) = fds.iter().position(|(n, _)| n == STATE_NAME) else {
        return Err(format!(
            "systemd passed {} fds but no state ({STATE_NAME})",
            fds.len()
        ));
    };
    let memfd = fds.remove(i).1;
    let mut state = super::read_state(memfd).await?;
    let now_ms = super::unix_ms(std::time::SystemTime::now());
    let gap = Duration::from_millis(now_ms.saturating_sub(state.requested_at_ms));
    age(&mut state, gap);
    // The originals stay in `fds` until the end: on a refusal they are closed with a Cease.
    let mut fd_of = |old: RawFd| -> std::io::Result<OwnedFd> {
        let name = fd_name(old);
        fds.iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{name} is not in systemd's fd store"),
                )
            })?
            .1
            .try_clone()
    };
    let (sessions, bfd) = super::adopt(config, &state, bfd_spec, &mut fd_of)?;
    Ok(Taken {
        state,
        sessions,
        bfd,
    })
}

/// Closes every handed TCP socket with a Cease (Administrative Reset) and a FIN: the old process
/// paused each at a message boundary, so a whole NOTIFICATION is valid on the wire whatever the
/// state said. Other fds (BFD, memfd) are just closed. Returns the TCP sockets closed.
fn close_all(fds: Vec<(String, OwnedFd)>) -> usize {
    let cease = crate::bgp::encode::cease(
        crate::bgp::error::Cease::AdministrativeReset,
        "vipwarden restarted and could not take the session over",
    );
    let mut n = 0;
    for (_, fd) in fds {
        if crate::sys::fdstore::is_tcp(fd.as_fd()) {
            crate::sys::fdstore::close_tcp_with(fd.as_fd(), &cease);
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_names_round_trip_and_others_are_not_sockets() {
        assert_eq!(fd_name(17), "vw-fd-17");
        assert_eq!(old_fd(&fd_name(17)), Some(17));
        assert_eq!(old_fd(STATE_NAME), None);
        assert_eq!(old_fd("vw-fd-"), None);
        assert_eq!(old_fd("vw-fd--3"), None);
        assert_eq!(old_fd("unknown"), None);
    }

    #[test]
    fn listen_variables_for_this_process() {
        let n = parse_listen(Some("42"), Some("3"), Some("vw-fd-9:vw-fd-12:vw-state"), 42);
        assert_eq!(n.unwrap(), vec!["vw-fd-9", "vw-fd-12", "vw-state"]);
        // No names: sd_listen_fds_with_names says "unknown".
        assert_eq!(
            parse_listen(Some("42"), Some("2"), None, 42).unwrap(),
            vec!["unknown", "unknown"]
        );
    }

    #[test]
    fn listen_variables_of_another_process_or_none_are_nothing() {
        assert!(parse_listen(Some("41"), Some("3"), Some("a:b:c"), 42)
            .unwrap()
            .is_empty());
        assert!(parse_listen(None, None, None, 42).unwrap().is_empty());
        assert!(parse_listen(Some("42"), None, Some("a"), 42)
            .unwrap()
            .is_empty());
        assert!(parse_listen(Some("42"), Some("0"), Some(""), 42)
            .unwrap()
            .is_empty());
        assert!(parse_listen(Some("x"), Some("1"), Some("a"), 42)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn listen_variables_that_disagree_are_refused() {
        assert_eq!(
            parse_listen(Some("42"), Some("2"), Some("a:b:c"), 42),
            Err(ListenError::Names { fds: 2, names: 3 })
        );
        assert_eq!(
            parse_listen(Some("42"), Some("two"), None, 42),
            Err(ListenError::BadCount("two".into()))
        );
        assert!(parse_listen(Some("42"), Some("99999999"), None, 42).is_err());
    }

    const UNIT: &str = "vipwarden.service";

    #[test]
    fn only_a_restart_job_of_this_unit_is_a_restart() {
        assert_eq!(
            stop_kind("1234 vipwarden.service restart running\n", UNIT),
            StopKind::Restart
        );
        assert_eq!(
            stop_kind("  88 vipwarden.service restart running\n", UNIT),
            StopKind::Restart
        );
        assert_eq!(
            stop_kind("1234 vipwarden.service stop running\n", UNIT),
            StopKind::Stop
        );
    }

    #[test]
    fn doubt_is_a_stop() {
        // No job (systemctl kill, a stray SIGTERM), empty or strange output.
        assert_eq!(stop_kind("", UNIT), StopKind::Stop);
        assert_eq!(stop_kind("No jobs running.\n", UNIT), StopKind::Stop);
        // Another unit's restart (shutdown.target, a similarly named unit).
        assert_eq!(
            stop_kind("7 vipwarden2.service restart running\n", UNIT),
            StopKind::Stop
        );
        assert_eq!(
            stop_kind(
                "7 other.service restart running\n8 vipwarden.service stop running\n",
                UNIT
            ),
            StopKind::Stop
        );
        // Two jobs for one unit is not something systemd prints.
        assert_eq!(
            stop_kind(
                "7 vipwarden.service restart running\n8 vipwarden.service stop waiting\n",
                UNIT
            ),
            StopKind::Stop
        );
        // A line without a job id.
        assert_eq!(
            stop_kind("JOB vipwarden.service restart running\n", UNIT),
            StopKind::Stop
        );
    }

    #[test]
    fn the_verdict_names_the_process() {
        assert!(verdict_is_for(&verdict(4242), 4242));
        assert!(!verdict_is_for(&verdict(4242), 4243));
        assert!(!verdict_is_for("", 4242));
        assert!(!verdict_is_for("stop 4242", 4242));
        assert!(!verdict_is_for("restart", 4242));
    }

    #[test]
    fn ageing_brings_timers_forward_and_never_below_zero() {
        let mut s = super::super::blob::tests::state();
        let mut second = s.sessions[0].clone();
        second.keepalive_in_ms = Some(100);
        second.hold_in_ms = None;
        s.sessions.push(second);
        s.sessions[0].keepalive_in_ms = Some(2500);
        age(&mut s, Duration::from_millis(300));
        assert_eq!(s.sessions[0].keepalive_in_ms, Some(2200));
        // The hold timer is the peer's: its KEEPALIVEs wait in the socket and restart it.
        assert_eq!(s.sessions[0].hold_in_ms, Some(8000));
        assert_eq!(s.sessions[1].keepalive_in_ms, Some(0));
    }

    #[test]
    fn a_refused_state_closes_handed_tcp_sockets_with_a_cease() {
        use std::io::Read;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let n = close_all(vec![
            ("vw-fd-5".into(), OwnedFd::from(ours)),
            ("vw-fd-6".into(), OwnedFd::from(udp)),
        ]);
        assert_eq!(n, 1);
        let mut got = Vec::new();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        peer.read_to_end(&mut got).unwrap();
        // A whole NOTIFICATION, Cease / Administrative Reset, then EOF.
        assert!(got.len() >= 21, "{got:?}");
        assert_eq!(&got[..16], &[0xff; 16]);
        assert_eq!(got[18], 3);
        assert_eq!((got[19], got[20]), (6, 4));
    }
}
