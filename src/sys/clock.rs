//! Clock reads the std library does not give as a number: CLOCK_MONOTONIC as the kernel counts
//! it (sd_notify's MONOTONIC_USEC must be on systemd's clock). Through rustix.

use rustix::time::{clock_gettime, ClockId};

/// CLOCK_MONOTONIC in microseconds.
pub fn monotonic_usec() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_moves_forward() {
        let a = monotonic_usec();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(monotonic_usec() >= a + 1_000);
    }
}
