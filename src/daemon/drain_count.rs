//! Counts the established connections of VIPs in a connection-aware drain, for the engine.
//!
//! Owns the NETLINK_SOCK_DIAG socket used for it and the one count in flight. The dump is a
//! syscall that can take a while on a busy host, so it runs on a blocking thread; the result is
//! picked up on the next policy tick. It decides nothing: `Engine::observe_connections` does.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::engine::{Connections, CountRequest};
use crate::signals::sockdiag::{count_served, SockDiag, TCP_ESTABLISHED, TCP_LISTEN};

type Counts = Vec<(Arc<str>, Connections)>;

pub struct DrainCounter {
    tx: mpsc::Sender<Counts>,
    rx: mpsc::Receiver<Counts>,
    busy: bool,
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
            diag: Arc::new(Mutex::new(None)),
        }
    }
}

impl DrainCounter {
    /// Returns the counts finished since the last call, and starts a new count of `wanted`
    /// unless one is still running. Call it from a runtime thread.
    pub fn poll(&mut self, wanted: Vec<CountRequest>) -> Counts {
        let mut done = Vec::new();
        while let Ok(c) = self.rx.try_recv() {
            self.busy = false;
            done.extend(c);
        }
        if !self.busy && !wanted.is_empty() {
            self.busy = true;
            let tx = self.tx.clone();
            let diag = self.diag.clone();
            tokio::task::spawn_blocking(move || {
                let _ = tx.try_send(count(&diag, &wanted));
            });
        }
        done
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
