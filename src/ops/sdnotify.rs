//! systemd notification (`Type=notify`, `WatchdogSec=`): READY=1, STATUS=, WATCHDOG=1,
//! RELOADING=1, STOPPING=1 as datagrams to `$NOTIFY_SOCKET`.
//!
//! Our own ~50 lines instead of the `sd-notify` crate: the protocol is one datagram on a unix
//! socket, std has everything (including abstract addresses), and owning it lets the socket be
//! non-blocking (a stuck systemd must never stall the decision loop) and the target be passed
//! explicitly in tests. Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.
//!
//! `NOTIFY_SOCKET` is not removed from our environment (that is unsound in a threaded process);
//! children cannot confuse systemd anyway, because the default `NotifyAccess=main` ignores
//! datagrams from other PIDs, and hooks get it removed from their environment.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

/// Sends state updates to systemd, or does nothing when not started by systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(SocketAddr, UnixDatagram)>,
    /// `NOTIFY_SOCKET` as given, for the messages that carry fds (`crate::sys::fdstore`).
    socket: std::ffi::OsString,
    /// Why `NOTIFY_SOCKET` was set but unusable; notifications are then skipped.
    problem: Option<String>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; a no-op notifier when it is unset or empty.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(v) if !v.is_empty() => Notifier::to_socket(&v),
            _ => Notifier::disabled(),
        }
    }

    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            socket: Default::default(),
            problem: None,
        }
    }

    /// `socket` as systemd writes it: an absolute path, or `@name` for the abstract namespace.
    pub fn to_socket(socket: &OsStr) -> Notifier {
        match open(socket) {
            Ok(t) => Notifier {
                target: Some(t),
                socket: socket.to_owned(),
                problem: None,
            },
            Err(why) => Notifier {
                target: None,
                socket: Default::default(),
                problem: Some(format!(
                    "NOTIFY_SOCKET={}: {why}; not notifying systemd",
                    socket.to_string_lossy()
                )),
            },
        }
    }

    /// True when notifications actually go somewhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Set when `NOTIFY_SOCKET` was present but unusable: log it once at start-up (under
    /// `Type=notify` systemd will then time the start out, and this says why).
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Sends raw `KEY=VALUE` lines. Ok(()) when disabled.
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        let Some((addr, sock)) = &self.target else {
            return Ok(());
        };
        match sock.send_to_addr(state.as_bytes(), addr) {
            Ok(n) if n == state.len() => Ok(()),
            Ok(n) => Err(NotifyError::ShortSend {
                sent: n,
                len: state.len(),
            }),
            Err(e) => Err(NotifyError::Send {
                first_line: first_line(state).to_string(),
                error: e,
            }),
        }
    }

    /// Sends `state` with `fds` attached (systemd's fd store: `FDSTORE=1`, `FDNAME=`). Err when
    /// not under systemd: the caller must not believe the fds were stored.
    pub fn send_with_fds(&self, state: &str, fds: &[std::os::fd::RawFd]) -> std::io::Result<()> {
        use std::os::fd::AsFd;
        let Some((_, sock)) = &self.target else {
            return Err(io::Error::other(
                "not started by systemd (no NOTIFY_SOCKET)",
            ));
        };
        crate::sys::fdstore::notify_with_raw_fds(sock.as_fd(), &self.socket, state, fds)
    }

    /// Waits until systemd has processed every notification sent before (`BARRIER=1`).
    pub fn barrier(&self, timeout: Duration) -> std::io::Result<()> {
        use std::os::fd::AsFd;
        let Some((_, sock)) = &self.target else {
            return Ok(());
        };
        crate::sys::fdstore::notify_barrier(sock.as_fd(), &self.socket, timeout)
    }

    /// Start-up done: routes may be announced from now on. `status` is shown by `systemctl status`.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// Keep-alive; send every [`watchdog_interval`] from the decision loop itself, so a hung loop
    /// stops pinging and systemd restarts the daemon.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    /// Reload started (SIGHUP); send [`Notifier::ready`] again when it is done.
    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            crate::sys::clock::monotonic_usec()
        ))
    }

    /// Planned stop started (routes are being withdrawn).
    pub fn stopping(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }
}

/// A notification that did not reach systemd.
#[derive(Debug)]
pub enum NotifyError {
    ShortSend {
        sent: usize,
        len: usize,
    },
    Send {
        first_line: String,
        error: io::Error,
    },
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::ShortSend { sent, len } => {
                write!(f, "sd_notify: short send ({sent} of {len} bytes)")
            }
            NotifyError::Send { first_line, error } => {
                write!(f, "sd_notify {first_line:?}: {error}")
            }
        }
    }
}

impl std::error::Error for NotifyError {}

fn open(socket: &OsStr) -> Result<(SocketAddr, UnixDatagram), String> {
    let bytes = socket.as_bytes();
    let addr = match bytes.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        Some(b'/') => SocketAddr::from_pathname(PathBuf::from(socket)),
        _ => return Err("not an absolute path or @abstract name".to_string()),
    }
    .map_err(|e| format!("bad address: {e}"))?;
    let sock = UnixDatagram::unbound().map_err(|e| format!("cannot create socket: {e}"))?;
    // A full receive queue must fail the send, not block the caller.
    sock.set_nonblocking(true)
        .map_err(|e| format!("cannot make socket non-blocking: {e}"))?;
    Ok((addr, sock))
}

/// Half of `WATCHDOG_USEC` (the usual ping period: one lost ping is not fatal), when the watchdog
/// is enabled for this process.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var_os("WATCHDOG_USEC").as_deref(),
        std::env::var_os("WATCHDOG_PID").as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval_from(
    usec: Option<&OsStr>,
    pid: Option<&OsStr>,
    own_pid: u32,
) -> Option<Duration> {
    // WATCHDOG_PID names the process meant to ping; a child that inherited the variables is not.
    if let Some(pid) = pid {
        if pid.to_str()?.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.to_str()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// STATUS= is one line of the datagram: a newline would start a bogus assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to_socket(path.as_os_str());
        assert!(n.is_enabled() && n.problem().is_none());
        n.ready("2 VIPs announced\nsecond line").unwrap();
        assert_eq!(
            recv(&server),
            "READY=1\nSTATUS=2 VIPs announced second line"
        );
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping("withdrawing").unwrap();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=withdrawing");
        n.reloading().unwrap();
        let r = recv(&server);
        let usec: u64 = r
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("vipwarden-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::to_socket(OsStr::new(&format!("@{name}")));
        n.status("hello").unwrap();
        assert_eq!(recv(&server), "STATUS=hello");
    }

    #[test]
    fn gone_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::to_socket(dir.path().join("absent").as_os_str());
        let err = n.watchdog().unwrap_err();
        assert!(matches!(err, NotifyError::Send { .. }));
        assert!(err.to_string().contains("WATCHDOG=1"), "{err}");
    }

    #[test]
    fn unusable_values_are_reported_and_disable_notification() {
        for v in ["relative/path", "vsock:2:1234"] {
            let n = Notifier::to_socket(OsStr::new(v));
            assert!(!n.is_enabled());
            assert!(n.problem().unwrap().contains(v));
            n.ready("x").unwrap();
        }
        let n = Notifier::disabled();
        assert!(n.problem().is_none());
        n.watchdog().unwrap();
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_this_pid_only() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(
            watchdog_interval_from(os("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval_from(os("30000000"), os("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval_from(os("30000000"), os("8"), 7), None);
        assert_eq!(watchdog_interval_from(os("30000000"), os("x"), 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(os("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(os("-5"), None, 7), None);
        assert_eq!(watchdog_interval_from(os("soon"), None, 7), None);
    }
}
