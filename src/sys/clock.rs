//! Clock reads the std library does not give as a number: CLOCK_MONOTONIC as the kernel counts
//! it (sd_notify's MONOTONIC_USEC must be on systemd's clock). Through libc, not rustix (why:
//! the module list in sys/mod.rs).

/// CLOCK_MONOTONIC in microseconds.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call. CLOCK_MONOTONIC
    // always exists on Linux, so the call cannot fail and `ts` is always written.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
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
