//! Pausing an Established session at a message boundary for the in-place upgrade
//! (`crate::handover`): the daemon asks every peer task, each answers with its exported state and
//! waits for the verdict: resume (the upgrade failed: nothing happened) or release (the new
//! process owns the socket now; this one never touches it again).

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use super::fsm::ExportedSession;

/// What a paused session hands over.
#[derive(Debug)]
pub struct PausedSession {
    pub state: ExportedSession,
    /// The TCP socket (owned by the paused task, open until the verdict).
    pub fd: RawFd,
    /// When our next KEEPALIVE is due and the peer's silence ends the session, from the pause.
    pub keepalive_in: Option<Duration>,
    pub hold_in: Option<Duration>,
    /// Bytes read from the socket but not yet parsed (a partial message, or whole ones queued).
    pub pending: Vec<u8>,
    pub established_since: Option<SystemTime>,
    pub verdict: oneshot::Sender<Verdict>,
}

#[derive(Debug)]
pub enum Paused {
    /// No session at a message boundary to hand over (connecting, OPEN exchange, backoff): the
    /// new process connects afresh.
    NotEstablished,
    Session(Box<PausedSession>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The upgrade failed: carry on as if nothing happened.
    Resume,
    /// The new process has the session: never read, write or close it again.
    Release,
}

/// A pause request inside a `Command` (which is `Clone + Eq`: the reply end is shared, and two
/// requests are equal only if they are the same one).
#[derive(Clone, Debug)]
pub struct Pause(Arc<Mutex<Option<oneshot::Sender<Paused>>>>);

impl Pause {
    pub fn new() -> (Pause, oneshot::Receiver<Paused>) {
        let (tx, rx) = oneshot::channel();
        (Pause(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// Answers the request (once; later answers are dropped). Gives the answer back if nobody
    /// waits for it any more.
    pub fn reply(&self, p: Paused) -> Result<(), Paused> {
        let tx = self.0.lock().ok().and_then(|mut g| g.take());
        match tx {
            Some(tx) => tx.send(p),
            None => Err(p),
        }
    }
}

impl PartialEq for Pause {
    fn eq(&self, other: &Pause) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Pause {}
