//! Pure decision core: samples + injected clock in, decisions out. No I/O.
