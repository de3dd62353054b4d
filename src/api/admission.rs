//! Which connections the API keeps when its slots run out.
//!
//! Every connection takes one of `max` slots. A connection that has not yet sent a request with
//! the valid bearer token is *unproven*. When a new client arrives and every slot is taken, the
//! oldest unproven connection (open at least `min_age`: a real client's head arrives within
//! milliseconds) that is not in the middle of a request is closed to make room. Age, not idle
//! time, so clients without the token cannot keep their slots by sending requests back to back. So clients without the token (silent, slow, scraping, guessing) can
//! hold slots only while nobody else needs them, and can never keep the operator's drain command
//! out. Connections that proved the token are never evicted; when all slots are theirs or busy,
//! newcomers wait in the kernel's accept queue as before.
//!
//! Why not a per-address limit: the API usually listens on loopback, where every local client,
//! the operator's CLI included, has the same address. Why not a fixed reserve for control
//! commands: which pool a connection belongs to is only known once its request head is in, and
//! a reserve can itself be filled by clients that never send one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) struct Admission {
    max: usize,
    min_age: Duration,
    inner: Mutex<Inner>,
    freed: Notify,
}

#[derive(Default)]
struct Inner {
    open: usize,
    next_id: u64,
    /// Admission order.
    unproven: VecDeque<Unproven>,
    evicted_total: u64,
}

struct Unproven {
    id: u64,
    evict: CancellationToken,
    /// Admitted then.
    since: Instant,
    /// A request is being served (never cut in the middle).
    busy: bool,
}

/// One admitted connection's slot; dropping it frees the slot.
pub(crate) struct Ticket {
    adm: Arc<Admission>,
    id: u64,
    evict: CancellationToken,
}

/// What the accept loop may do now.
enum Room {
    Now,
    /// Every slot is held; an unproven connection becomes old enough to evict then.
    At(Instant),
    Wait,
}

impl Admission {
    pub fn new(max: usize, min_age: Duration) -> Arc<Admission> {
        Arc::new(Admission {
            max: max.max(1),
            min_age,
            inner: Mutex::new(Inner::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is complete under the lock, so a poisoned one is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn room_at(&self, now: Instant) -> Room {
        let i = self.lock();
        if i.open < self.max {
            return Room::Now;
        }
        // Busy ones come back through `idle`, which notifies.
        match i.unproven.iter().filter(|u| !u.busy).map(|u| u.since).min() {
            Some(t) if now.saturating_duration_since(t) >= self.min_age => Room::Now,
            Some(t) => Room::At(t + self.min_age),
            None => Room::Wait,
        }
    }

    /// Waits until a new connection can be admitted: a free slot, or an unproven connection
    /// open for `min_age` and between requests, to evict.
    pub async fn room(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.room_at(Instant::now()) {
                Room::Now => return,
                Room::At(t) => {
                    tokio::select! {
                        _ = freed => {}
                        _ = tokio::time::sleep_until(t) => {}
                    }
                }
                Room::Wait => freed.await,
            }
        }
    }

    /// Admits a connection (call after [`Admission::room`]); if every slot is taken, closes the
    /// oldest unproven connection between requests. Returns the ticket and whether one was
    /// evicted.
    pub fn admit(self: &Arc<Self>) -> (Ticket, bool) {
        let now = Instant::now();
        let mut i = self.lock();
        let mut evicted = false;
        if i.open >= self.max {
            let victim = i
                .unproven
                .iter()
                .enumerate()
                .filter(|(_, u)| !u.busy)
                .map(|(n, u)| (u.since, n))
                .filter(|(t, _)| now.saturating_duration_since(*t) >= self.min_age)
                .min()
                .map(|(_, n)| n);
            if let Some(u) = victim.and_then(|n| i.unproven.remove(n)) {
                u.evict.cancel();
                i.evicted_total += 1;
                evicted = true;
            }
        }
        i.open += 1;
        let id = i.next_id;
        i.next_id += 1;
        let evict = CancellationToken::new();
        i.unproven.push_back(Unproven {
            id,
            evict: evict.clone(),
            since: now,
            busy: false,
        });
        drop(i);
        (
            Ticket {
                adm: self.clone(),
                id,
                evict,
            },
            evicted,
        )
    }

    /// Connections closed to make room, since start.
    #[cfg(test)]
    pub fn evicted_total(&self) -> u64 {
        self.lock().evicted_total
    }
}

impl Ticket {
    fn update(&self, f: impl FnOnce(&mut Inner, usize)) {
        let mut i = self.adm.lock();
        if let Some(n) = i.unproven.iter().position(|u| u.id == self.id) {
            f(&mut i, n);
        }
    }

    /// The connection sent the valid token: it keeps its slot from now on.
    pub fn proven(&self) {
        self.update(|i, n| {
            i.unproven.remove(n);
        });
    }

    /// A request head is in and being served: not evictable until it is answered.
    pub fn busy(&self) {
        self.update(|i, n| i.unproven[n].busy = true);
    }

    /// Answered; waiting for the next request head.
    pub fn idle(&self) {
        self.update(|i, n| i.unproven[n].busy = false);
        self.adm.freed.notify_one();
    }

    /// Cancelled when the connection must close to make room.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evict
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut i = self.adm.lock();
        i.open -= 1;
        i.unproven.retain(|u| u.id != self.id);
        drop(i);
        self.adm.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn full_slots_evict_the_oldest_unproven_between_requests_never_a_proven_or_busy_one() {
        let adm = Admission::new(3, IDLE);
        let (a, e) = adm.admit();
        assert!(!e);
        let (b, _) = adm.admit();
        let (c, _) = adm.admit();
        a.proven();
        c.busy();
        // Full, and b is not old enough yet: wait.
        assert!(matches!(adm.room_at(Instant::now()), Room::At(_)));
        tokio::time::sleep(IDLE).await;
        adm.room().await;
        let (d, e) = adm.admit();
        assert!(e);
        assert!(b.evicted().is_cancelled());
        assert!(!a.evicted().is_cancelled() && !c.evicted().is_cancelled());
        drop(b);
        d.proven();
        // a and d proven, c busy: nothing to evict, wait for a close.
        assert!(matches!(adm.room_at(Instant::now()), Room::Wait));
        c.idle();
        let (_e, evicted) = adm.admit();
        assert!(evicted && c.evicted().is_cancelled());
        assert_eq!(adm.evicted_total(), 2);
        drop(a);
    }

    /// A client without the token sending requests back to back is between requests now and
    /// then, and old: it gives way like a silent one.
    #[tokio::test]
    async fn back_to_back_requests_without_the_token_do_not_keep_a_slot() {
        let adm = Admission::new(1, IDLE);
        let (a, _) = adm.admit();
        for _ in 0..5 {
            a.busy();
            tokio::time::sleep(IDLE / 4).await;
            a.idle();
        }
        let (_b, evicted) = adm.admit();
        assert!(evicted && a.evicted().is_cancelled());
    }

    #[tokio::test]
    async fn room_waits_for_a_proven_connection_to_close() {
        let adm = Admission::new(1, IDLE);
        let (a, _) = adm.admit();
        a.proven();
        let waiting = tokio::spawn({
            let adm = adm.clone();
            async move { adm.room().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("room after the close")
            .unwrap();
    }
}
