//! One peer task's feed of received routes to the fleet view: never blocks a live session, never
//! loses a change silently.
//!
//! Owns: the per-session [`PeerTable`], the bounded channel's sending side and the one slot this
//! peer keeps in reserve. May not touch: the socket, the state machine, the view.
//!
//! Deltas (`Update`) go out with `try_send`, so KEEPALIVEs never wait behind the daemon. When the
//! channel is full the feed turns *behind*: it sends `Behind` on its reserved slot, right after
//! the last delta the daemon will see, so the view knows from that exact point that this peer's
//! paths are stale (the guard then counts none of them and holds rather than leaves). While
//! behind, UPDATEs only change the table. As soon as the channel has room (the driver waits for
//! it beside its other events) the feed first takes back a reserved slot, then sends one `Resync`
//! with the whole table, which the view applies by replacing the peer's paths.
//!
//! The reserved slot is taken before each connection (`ready`), when waiting harms nothing.

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError, OwnedPermit};

use super::rib_in::{PeerTable, RibInEvent, RibInUpdate};

pub(crate) struct Feed {
    tx: mpsc::Sender<RibInEvent>,
    peer: Arc<str>,
    /// A slot kept for `Behind` (or `Down`); held whenever the feed is not behind.
    spare: Option<OwnedPermit<RibInEvent>>,
    /// The Established session's table.
    table: Option<PeerTable>,
    behind: bool,
    /// Resyncs sent.
    pub resyncs: u64,
    /// Deltas not passed on one by one (a resync carried their effect).
    pub deltas_replaced: u64,
}

impl Feed {
    pub fn new(tx: mpsc::Sender<RibInEvent>, peer: Arc<str>) -> Feed {
        Feed {
            tx,
            peer,
            spare: None,
            table: None,
            behind: false,
            resyncs: 0,
            deltas_replaced: 0,
        }
    }

    /// Before a connection: holds the reserved slot (waits for room if needed; no session is up).
    pub async fn ready(&mut self) {
        if self.spare.is_none() {
            self.spare = self.tx.clone().reserve_owned().await.ok();
        }
    }

    /// [`Feed::ready`] without waiting; false if the channel has no room.
    #[cfg(test)]
    pub fn try_ready(&mut self) -> bool {
        if self.spare.is_none() {
            self.spare = self.tx.clone().try_reserve_owned().ok();
        }
        self.spare.is_some()
    }

    /// The session reached Established.
    pub fn up(&mut self, add_path_v4: bool, add_path_v6: bool) {
        self.table = Some(PeerTable::new(add_path_v4, add_path_v6));
        self.behind = false;
        self.send(RibInEvent::Up {
            peer: self.peer.clone(),
            add_path_v4,
            add_path_v6,
        });
    }

    /// One received UPDATE's routes (only relevant ones reach the view).
    pub fn update(&mut self, u: Box<RibInUpdate>) {
        let Some(table) = &mut self.table else {
            return;
        };
        if !u.is_relevant() {
            return;
        }
        table.apply(&u);
        if self.behind {
            self.deltas_replaced += 1;
            return;
        }
        self.send(RibInEvent::Update {
            peer: self.peer.clone(),
            update: u,
        });
    }

    fn send(&mut self, ev: RibInEvent) {
        match self.tx.try_send(ev) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                // The reserve is always held here: taken before each connection, spent only on
                // this marker (taken back before the resync) or on the session's Down.
                self.behind = true;
                self.deltas_replaced += 1;
                if let Some(p) = self.spare.take() {
                    p.send(RibInEvent::Behind {
                        peer: self.peer.clone(),
                    });
                }
            }
        }
    }

    /// Waiting for a resync: the driver waits on [`Feed::room`] and hands the slot to
    /// [`Feed::catch_up`].
    pub fn is_behind(&self) -> bool {
        self.behind && self.table.is_some()
    }

    /// Resolves with a free slot (None if the daemon is gone).
    pub fn room(&self) -> impl std::future::Future<Output = Option<OwnedPermit<RibInEvent>>> {
        let tx = self.tx.clone();
        async move { tx.reserve_owned().await.ok() }
    }

    /// Uses a free slot: first to take back the reserved one, then for the resync. True once
    /// the resync is sent.
    pub fn catch_up(&mut self, slot: OwnedPermit<RibInEvent>) -> bool {
        if !self.is_behind() {
            return false;
        }
        if self.spare.is_none() {
            self.spare = Some(slot);
            return false;
        }
        let Some(table) = &self.table else {
            return false;
        };
        slot.send(RibInEvent::Resync {
            peer: self.peer.clone(),
            table: Box::new(table.clone()),
        });
        self.behind = false;
        self.resyncs += 1;
        true
    }

    /// The receiving side is gone: nothing to catch up with.
    pub fn closed(&mut self) {
        self.behind = false;
    }

    /// [`Feed::catch_up`] with whatever room there is now, without waiting.
    #[cfg(test)]
    pub fn try_catch_up(&mut self) -> bool {
        while self.is_behind() {
            let Ok(slot) = self.tx.clone().try_reserve_owned() else {
                return false;
            };
            if self.catch_up(slot) {
                return true;
            }
        }
        false
    }

    /// The Established session ended. `Down` must reach the view (it clears a stale table too),
    /// so with no room and no reserved slot this waits: the session is over, nothing to keep alive.
    pub async fn down(&mut self) {
        if self.table.take().is_none() {
            return;
        }
        self.behind = false;
        let ev = RibInEvent::Down {
            peer: self.peer.clone(),
        };
        let ev = match self.tx.try_send(ev) {
            Ok(()) | Err(TrySendError::Closed(_)) => return,
            Err(TrySendError::Full(ev)) => ev,
        };
        match self.spare.take() {
            Some(p) => {
                p.send(ev);
            }
            None => {
                let _ = self.tx.send(ev).await;
            }
        }
    }

    /// Paths in the session's table.
    pub fn table_len(&self) -> usize {
        self.table.as_ref().map_or(0, PeerTable::len)
    }

    /// The table the view should hold now (tests compare it with the view).
    #[cfg(test)]
    pub fn table(&self) -> Option<&PeerTable> {
        self.table.as_ref()
    }
}
