//! Counts the established connections of VIPs in a connection-aware drain, for the engine.
//!
//! Owns the NETLINK_SOCK_DIAG socket used for it and the one count in flight. The dump is a
//! syscall that can take a while on a busy host, so it runs on a blocking thread. A result is
//! handed over as soon as it is ready and the next count starts `RECOUNT_AFTER` later, so a
//! drain ends a fraction of a second after its last connection closes, and a slow dump slows
//! the counting instead of piling up. It decides nothing: `Engine::observe_connections` does.

use std::collections::BTreeMap;
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

/// Which counts of a running drain are shown as progress (log line and event): the first, then
/// one that differs from the last shown, at most every `every`. Counts come four times a
/// second, and a busy VIP's changes on nearly every one.
pub struct ProgressGate {
    every: Duration,
    shown: BTreeMap<Arc<str>, (Instant, Connections)>,
}

impl ProgressGate {
    pub fn new(every: Duration) -> Self {
        ProgressGate {
            every,
            shown: BTreeMap::new(),
        }
    }

    /// Whether to show `count` of `vip`'s drain now; remembers it if so.
    pub fn show(&mut self, vip: &Arc<str>, count: &Connections, now: Instant) -> bool {
        let due = match self.shown.get(vip) {
            None => true,
            Some((at, last)) => last != count && now.saturating_duration_since(*at) >= self.every,
        };
        if due {
            self.shown.insert(vip.clone(), (now, count.clone()));
        }
        due
    }

    /// Forgets `vip`'s drain (it ended): its next drain shows its first count.
    pub fn ended(&mut self, vip: &str) {
        self.shown.remove(vip);
    }

    /// Forgets every drain not in `counting` (ended by undrain or reload).
    pub fn keep_only(&mut self, counting: &[CountRequest]) {
        self.shown
            .retain(|vip, _| counting.iter().any(|w| w.vip == *vip));
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
            prefixes: ["203.0.113.10/32".parse().expect("prefix")].into(),
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

    fn count(holding: u32) -> Connections {
        Connections::Count { holding, silent: 0 }
    }

    #[test]
    fn progress_shows_the_first_count_then_changes_at_most_once_a_second() {
        let mut g = ProgressGate::new(Duration::from_secs(1));
        let web: Arc<str> = "web".into();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(g.show(&web, &count(12), at(0)), "the first count");
        assert!(!g.show(&web, &count(11), at(250)), "a change, but too soon");
        assert!(
            !g.show(&web, &count(12), at(1000)),
            "back to what was shown"
        );
        assert!(
            g.show(&web, &count(10), at(1250)),
            "a change a second later"
        );
        assert!(
            !g.show(&web, &count(10), at(5000)),
            "no change, however long"
        );
        assert!(
            g.show(&web, &count(9), at(5100)),
            "a change after a quiet while"
        );
        // A change that came too soon is shown by a later count once the second is over.
        assert!(!g.show(&web, &count(8), at(5200)));
        assert!(g.show(&web, &count(8), at(6100)));
        // Another VIP has its own pace.
        let api: Arc<str> = "api".into();
        assert!(g.show(&api, &count(3), at(6101)));
        assert!(!g.show(&api, &count(2), at(6200)));
        // A drain that ended starts over: its next drain's first count is shown.
        g.ended("web");
        assert!(g.show(&web, &count(8), at(6200)));
        g.keep_only(&[]);
        assert!(
            g.show(&api, &count(3), at(6300)),
            "api's drain ended by undrain"
        );
    }
}
