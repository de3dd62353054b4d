//! Failed-authentication log lines, at most one a minute per client address, each with the
//! number of failures since that address's last line: a client guessing tokens cannot flood the
//! log, and the operator still sees who tried and how often.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; beyond this, addresses quiet for a window are forgotten first
/// (and if all are recent, the table is cleared: a flood from this many addresses is logged
/// more, never remembered without bound).
const MAX_ADDRESSES: usize = 4096;

#[derive(Default)]
pub(crate) struct AuthFailures {
    by_addr: HashMap<IpAddr, Entry>,
}

struct Entry {
    last_line: Instant,
    /// Failures since `last_line`, not yet logged.
    unlogged: u64,
}

impl AuthFailures {
    /// Records one failure from `addr`. `Some(n)`: log a line now, for `n` failures (this one
    /// and those since the last line); `None`: counted, log nothing.
    pub fn failed(&mut self, addr: IpAddr, now: Instant) -> Option<u64> {
        if let Some(e) = self.by_addr.get_mut(&addr) {
            e.unlogged += 1;
            if now.saturating_duration_since(e.last_line) < WINDOW {
                return None;
            }
            let n = e.unlogged;
            e.unlogged = 0;
            e.last_line = now;
            return Some(n);
        }
        if self.by_addr.len() >= MAX_ADDRESSES {
            self.by_addr
                .retain(|_, e| now.saturating_duration_since(e.last_line) < WINDOW);
            if self.by_addr.len() >= MAX_ADDRESSES {
                self.by_addr.clear();
            }
        }
        self.by_addr.insert(
            addr,
            Entry {
                last_line: now,
                unlogged: 0,
            },
        );
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_minute_per_address_with_the_count_since_the_last() {
        let mut f = AuthFailures::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(f.failed(a, t0), Some(1));
        for i in 1..=99 {
            assert_eq!(f.failed(a, t0 + Duration::from_millis(i * 100)), None);
        }
        // Another address has its own minute.
        assert_eq!(f.failed(b, t0 + Duration::from_secs(1)), Some(1));
        // A minute after a's line: the 99 counted ones and this one.
        assert_eq!(f.failed(a, t0 + WINDOW), Some(100));
        assert_eq!(f.failed(a, t0 + WINDOW + Duration::from_secs(1)), None);
        assert_eq!(f.failed(a, t0 + WINDOW * 3), Some(2));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut f = AuthFailures::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(f.failed(addr, t0), Some(1));
        }
        assert!(f.by_addr.len() <= MAX_ADDRESSES);
    }
}
