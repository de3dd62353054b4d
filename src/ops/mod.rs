//! Operational pieces around the daemon: persistent maintenance state, disable files, on_change
//! hooks and systemd notification. Each module has one job and no knowledge of the engine; the
//! daemon wires them in.

pub mod disable;
pub mod hooks;
pub mod sdnotify;
pub mod state;
