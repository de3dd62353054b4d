//! Counts the established connections of VIPs in a connection-aware drain, for the engine.
//!
//! Owns the NETLINK_SOCK_DIAG socket used for it and the one count in flight. The dump is a
//! syscall that can take a while on a busy host, so it runs on a blocking thread. A result is
//! handed over as soon as it is ready and the next count starts `RECOUNT_AFTER` later, so a
//! drain ends a fraction of a second after its last connection closes, and a slow dump slows
//! the counting instead of piling up. It decides nothing: `Engine::observe_connections` does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::engine::{Connections, CountRequest};
use crate::signals::sockdiag::{count_served, SockDiag, TCP_ESTABLISHED, TCP_LISTEN};

pub type Counts = Vec<(Arc<str>, Connections)>;

/// The pause between the end of one count and the start of the next.
const RECOUNT_AFTER: Duration = Duration::from_millis(250);

pub struct DrainCounter {
    tx: mpsc::Sender<Counts>,
    rx: mpsc::Receiver<Counts>,
    busy: bool,
    /// When the next count should start (set when one finishes).
    due: Option<Instant>,
    /// Opened on first use and kept; None after an open failure (retried next time).
    diag: Arc<Mutex<Option<SockDiag>>>,
}

impl Default for DrainCounter {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(1);
        DrainCounter {
            tx,
            rx,
            busy: false,
            due: None,
            diag: Arc::new(Mutex::new(None)),
        }
    }
}

impl DrainCounter {
    /// Starts a count of `wanted` unless one is running; with nothing wanted, counting stops
    /// until the next call. Call it from a runtime thread.
    pub fn start(&mut self, wanted: Vec<CountRequest>) {
        if self.busy {
            return;
        }
        self.due = None;
        if wanted.is_empty() {
            return;
        }
        self.busy = true;
        let tx = self.tx.clone();
        let diag = self.diag.clone();
        tokio::task::spawn_blocking(move || {
            let _ = tx.try_send(count(&diag, &wanted));
        });
    }

    /// When the next count is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// The next finished count (cancel-safe: pending until one is ready).
    pub async fn finished(&mut self) -> Counts {
        // `self.tx` is held, so the channel never closes; None cannot happen.
        let counts = self.rx.recv().await.unwrap_or_default();
        self.busy = false;
        self.due = Some(Instant::now() + RECOUNT_AFTER);
        counts
    }
}

fn count(diag: &Mutex<Option<SockDiag>>, wanted: &[CountRequest]) -> Counts {
    let mut guard = match diag.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    // tcp_info (for the silent test) only when some VIP asks for it: it makes the dump larger.
    let info = wanted.iter().any(|w| w.idle.is_some());
    let states = (1 << TCP_LISTEN) | (1 << TCP_ESTABLISHED);
    let dump = |d: &mut SockDiag| {
        if info {
            d.sockets_with_tcp_info(states)
        } else {
            d.sockets(states)
        }
    };
    let sockets = match guard.as_mut() {
        Some(d) => dump(d),
        None => SockDiag::open().and_then(|d| dump(guard.insert(d))),
    };
    match sockets {
        Ok(s) => wanted
            .iter()
            .map(|w| {
                let idle_ms = w
                    .idle
                    .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
                let c = match count_served(&s, &w.prefixes, idle_ms) {
                    Some(n) => Connections::Count {
                        holding: n.holding,
                        silent: n.silent,
                    },
                    None => Connections::Unavailable(
                        "no TCP listener on the VIP's addresses; draining for drain_period".into(),
                    ),
                };
                (w.vip.clone(), c)
            })
            .collect(),
        Err(e) => {
            // A broken socket is reopened next time.
            *guard = None;
            let why = format!("sock_diag unavailable ({e}); draining for drain_period");
            wanted
                .iter()
                .map(|w| (w.vip.clone(), Connections::Unavailable(why.clone())))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CountRequest {
        CountRequest {
            vip: "web".into(),
            prefixes: vec!["203.0.113.10/32".parse().expect("prefix")],
            idle: None,
        }
    }

    #[tokio::test]
    async fn a_count_is_handed_over_when_done_and_the_next_is_due_shortly_after() {
        let mut c = DrainCounter::default();
        c.start(Vec::new());
        assert_eq!(c.due(), None, "nothing wanted, nothing scheduled");
        c.start(vec![request()]);
        c.start(vec![request()]); // in flight: not a second one
        let counts = tokio::time::timeout(Duration::from_secs(10), c.finished())
            .await
            .expect("a count within 10 s");
        // Whatever this host allows (sock_diag or not), the VIP gets an answer.
        assert_eq!(counts.len(), 1);
        assert_eq!(&*counts[0].0, "web");
        let due = c.due().expect("next count scheduled");
        assert!(due > Instant::now() && due <= Instant::now() + RECOUNT_AFTER);
        // Nothing else in flight: the second start above did not queue another count.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), c.finished())
                .await
                .is_err()
        );
        c.start(Vec::new());
        assert_eq!(c.due(), None, "the drain ended: counting stops");
    }
}
