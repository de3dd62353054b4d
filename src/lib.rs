//! vipwarden: announce anycast VIPs over BGP while the local service is healthy, withdraw them when
//! it is not.
//!
//! # Flow (one way)
//!
//! ```text
//! checks ──samples──┐
//!                   ├─> daemon loop ──> engine (pure) ──DesiredRoutes──> bgp sessions ──> routers
//! signals ─readings─┘        │  ^
//!                            │  └── ops (drains, disable files), control <── api <── CLI
//!                            └────> status/events (control) ──> api
//! ```
//!
//! # Modules: what each owns, and what it may not touch
//!
//! - `route`: prefixes, attributes and the `DesiredRoutes` snapshot, the seam between the
//!   decision core and the sessions. Imports nothing of ours.
//! - `engine`: the pure decision core (`engine::spec` inputs + injected clock -> `Decision`s and
//!   `DesiredRoutes`). Imports only `route`: no config, no control, no tokio, no I/O.
//! - `config`: YAML -> validated `Config`; builds the engine's specs (config -> engine, never back).
//!   No I/O beyond reading the file it is given.
//! - `checks`: active probes (tcp, http(s), exec) on a schedule, producing samples. Knows nothing
//!   of VIPs, the engine or sessions.
//! - `signals`: passive signals (access logs, TCP stats, conntrack, Prometheus, handshakes)
//!   producing readings. Knows nothing of VIPs, the engine or sessions.
//! - `bgp`: the BGP speaker: our own parser of received bytes, zettabgp-backed encoding, a sans-IO
//!   FSM and a thin async driver per peer. Reads `DesiredRoutes`; never decides what to announce.
//! - `control`: the status/event/command vocabulary shared by the daemon and the API. No logic.
//! - `ops`: persisted maintenance state, disable files, on_change hooks, systemd notification.
//!   No knowledge of the engine or sessions.
//! - `api`: HTTP control plane (status, events, drain, metrics) and the CLI client; talks to the
//!   daemon only through `control`.
//! - `handover`: the in-place upgrade (state blob, the two processes' sides of the hand-over).
//! - `daemon`: the only module that wires the others together (the loop: samples and readings in,
//!   decisions logged, `DesiredRoutes` published, sessions started and stopped). Blocking work
//!   goes to blocking threads; nothing imports `daemon`.
//! - `offline`: `vipwarden replay`: signals + engine on a recorded log's own clock. No network.
//! - `doctor`: host preflight and path probe; reads config, signals and the API. Changes nothing.
//! - `sys`: every raw OS call and `unsafe` block, behind safe functions (being gathered here).
//! - `process`, `civil_time`, `pem`: leaf helpers (running a child process safely; UTC calendar
//!   arithmetic; PEM certificates and the rustls provider). `netlink` is `sys::netlink`.
//!
//! Layout: a module with submodules is `foo/mod.rs`; its unit tests are `foo/tests.rs`.
//! End-to-end daemon tests are in `tests/` (one binary per scenario).

pub mod api;
pub mod bfd;
pub mod bgp;
pub mod checks;
pub mod civil_time;
pub mod config;
pub mod control;
pub mod daemon;
pub mod doctor;
pub mod engine;
pub mod fleet;
pub mod handover;
pub mod manpage;
pub mod offline;
pub mod ops;
pub mod pem;
pub mod preflight;
pub mod process;
pub mod risefall;
pub mod route;
pub mod signals;
pub mod sys;
// Old paths of what moved into `sys` (other modules still use them).
pub use sys::netlink;
