//! Which session a received datagram may reach, decided before it is queued (RFC 5881 single
//! hop): TTL / Hop Limit 255, a source that is the peer of a session on the receiving local
//! address, arriving on the interface that session runs on. Pure; also keeps the discard counts
//! of this stage until the driver collects them. Knows nothing of sockets or packet contents.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::packet::RxError;

/// What the socket layer knows of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The receiving socket's local address.
    pub local: IpAddr,
    pub src: IpAddr,
    pub ttl: Option<u8>,
    pub ifindex: Option<u32>,
}

/// One session's binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bound {
    ifindex: u32,
    id: u32,
}

/// Sessions by (local address, peer address), with their interface; discard counts by session
/// id and for datagrams that match none.
#[derive(Debug, Default)]
pub struct Bindings {
    by_peer: HashMap<(IpAddr, IpAddr), Bound>,
    dropped: HashMap<u32, BTreeMap<&'static str, u64>>,
    unmatched: BTreeMap<&'static str, u64>,
}

impl Bindings {
    /// Session `id` talks to `peer` from `local` over interface `ifindex` (replaces a binding of
    /// the same id or the same addresses).
    pub fn bind(&mut self, local: IpAddr, peer: IpAddr, ifindex: u32, id: u32) {
        self.unbind(id);
        self.by_peer.insert((local, peer), Bound { ifindex, id });
    }

    pub fn unbind(&mut self, id: u32) {
        self.by_peer.retain(|_, b| b.id != id);
    }

    /// The session id `a` goes to, or why it is discarded and which session it is counted
    /// against (None: it matches none). TTL first: nothing with a lower TTL goes further.
    pub fn admit(&self, a: &Arrival) -> Result<u32, (Option<u32>, RxError)> {
        let bound = self.by_peer.get(&(a.local, a.src));
        let id = bound.map(|b| b.id);
        if a.ttl != Some(255) {
            return Err((id, RxError::TtlNot255 { ttl: a.ttl }));
        }
        let Some(b) = bound else {
            return Err((None, RxError::UnknownSource));
        };
        if a.ifindex != Some(b.ifindex) {
            return Err((id, RxError::WrongInterface { ifindex: a.ifindex }));
        }
        Ok(b.id)
    }

    /// Counts a discard at this stage (or a full queue after it).
    pub fn count(&mut self, id: Option<u32>, e: RxError) {
        let m = match id {
            Some(id) => self.dropped.entry(id).or_default(),
            None => &mut self.unmatched,
        };
        *m.entry(e.label()).or_default() += 1;
    }

    /// Counts since the last call: per session id, and unmatched.
    #[allow(clippy::type_complexity)]
    pub fn take_counts(
        &mut self,
    ) -> (
        HashMap<u32, BTreeMap<&'static str, u64>>,
        BTreeMap<&'static str, u64>,
    ) {
        (
            std::mem::take(&mut self.dropped),
            std::mem::take(&mut self.unmatched),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn arrival(src: &str, ifindex: u32, ttl: u8) -> Arrival {
        Arrival {
            local: ip("198.51.100.2"),
            src: ip(src),
            ttl: Some(ttl),
            ifindex: Some(ifindex),
        }
    }

    fn two_sessions() -> Bindings {
        let mut b = Bindings::default();
        // tor-bird on ifindex 2, tor-frr on ifindex 3, both answered from the same address.
        b.bind(ip("198.51.100.2"), ip("198.51.100.1"), 2, 11);
        b.bind(ip("198.51.100.2"), ip("198.51.100.5"), 3, 22);
        b
    }

    #[test]
    fn the_peer_on_its_link_with_ttl_255_is_admitted() {
        let b = two_sessions();
        assert_eq!(b.admit(&arrival("198.51.100.1", 2, 255)), Ok(11));
        assert_eq!(b.admit(&arrival("198.51.100.5", 3, 255)), Ok(22));
    }

    /// The attack: the right source address (and whatever discriminators) from another
    /// link. Counted against the peer it pretends to be.
    #[test]
    fn the_peer_address_from_another_link_is_refused() {
        let b = two_sessions();
        assert_eq!(
            b.admit(&arrival("198.51.100.1", 3, 255)),
            Err((Some(11), RxError::WrongInterface { ifindex: Some(3) }))
        );
        let mut none = arrival("198.51.100.1", 2, 255);
        none.ifindex = None;
        assert_eq!(
            b.admit(&none),
            Err((Some(11), RxError::WrongInterface { ifindex: None }))
        );
    }

    #[test]
    fn ttl_is_checked_first_and_unknown_sources_match_nothing() {
        let b = two_sessions();
        assert_eq!(
            b.admit(&arrival("198.51.100.1", 2, 254)),
            Err((Some(11), RxError::TtlNot255 { ttl: Some(254) }))
        );
        assert_eq!(
            b.admit(&arrival("192.0.2.99", 2, 64)),
            Err((None, RxError::TtlNot255 { ttl: Some(64) }))
        );
        assert_eq!(
            b.admit(&arrival("192.0.2.99", 2, 255)),
            Err((None, RxError::UnknownSource))
        );
        // The peer's address reaching another local address is not this session's.
        let mut other = arrival("198.51.100.1", 2, 255);
        other.local = ip("198.51.100.6");
        assert_eq!(b.admit(&other), Err((None, RxError::UnknownSource)));
    }

    #[test]
    fn rebinding_moves_the_session_and_unbinding_forgets_it() {
        let mut b = two_sessions();
        b.bind(ip("198.51.100.2"), ip("198.51.100.1"), 7, 11);
        assert_eq!(b.admit(&arrival("198.51.100.1", 7, 255)), Ok(11));
        assert!(b.admit(&arrival("198.51.100.1", 2, 255)).is_err());
        b.unbind(11);
        assert_eq!(
            b.admit(&arrival("198.51.100.1", 7, 255)),
            Err((None, RxError::UnknownSource))
        );
        assert_eq!(b.admit(&arrival("198.51.100.5", 3, 255)), Ok(22));
    }

    #[test]
    fn counts_are_kept_per_session_and_taken_once() {
        let mut b = two_sessions();
        b.count(Some(11), RxError::WrongInterface { ifindex: Some(3) });
        b.count(Some(11), RxError::WrongInterface { ifindex: Some(4) });
        b.count(None, RxError::UnknownSource);
        let (per, unmatched) = b.take_counts();
        assert_eq!(per[&11]["wrong_interface"], 2);
        assert_eq!(unmatched["unknown_source"], 1);
        let (per, unmatched) = b.take_counts();
        assert!(per.is_empty() && unmatched.is_empty());
    }
}
