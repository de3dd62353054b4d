//! vipwarden: announce anycast VIPs over BGP while the local service is healthy, withdraw them when
//! it is not.
//!
//! Data flows one way: sources (`checks`) -> samples -> `engine` (pure health/route policy) ->
//! `route::DesiredRoutes` -> per-peer `bgp` sessions. `daemon` wires them together; `config` loads and
//! validates the YAML.

pub mod api;
pub mod bgp;
pub mod checks;
pub mod config;
pub mod control;
pub mod daemon;
pub mod doctor;
pub mod engine;
pub mod fleet;
pub mod netlink;
pub mod offline;
pub mod ops;
pub mod process;
pub mod route;
pub mod signals;
