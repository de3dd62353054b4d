//! glibc malloc: giving freed heap back to the kernel.
//!
//! A rebuilt status view or route table frees hundreds of megabytes at 100k VIPs, but glibc only
//! returns the top of the main heap by itself: freed pages in the middle stay resident, so RSS
//! stays at the high-water mark and grows with every router restart (the Adj-RIB-Out rebuilt).
//! `malloc_trim(0)` releases every whole free page (`MADV_DONTNEED`) in all arenas. Measured with
//! testbed/bench-memory.sh --no-router at 100k VIPs: see docs/performance.md.
//! On other C libraries (musl) these are no-ops.

/// Returns free heap pages to the kernel; true if some memory was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's own free lists
    // under its locks; any thread may call it at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn releasing_after_a_large_free_does_not_disturb_the_heap() {
        let big: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 * 1024]).collect();
        let keep = big[63].clone();
        drop(big);
        super::release_free_memory();
        assert!(keep.iter().all(|&b| b == 63));
    }
}
