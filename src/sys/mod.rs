//! Every raw OS call of the crate (syscalls, socket options, netlink, fd passing) and every
//! `unsafe` block lives under this module, each behind a safe function; kernel structs carry
//! `size_of` assertions. The rest of the crate calls these functions and never says `unsafe`.

pub mod handover;
