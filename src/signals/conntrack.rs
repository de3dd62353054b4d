//! Conntrack table fill. A full table makes the kernel drop new flows ("nf_conntrack: table full,
//! dropping packet") while established users and health checks may look fine.

pub mod placeholder {}
