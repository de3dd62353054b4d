//! Passive signal sources measured locally from real traffic: kernel TCP counters and accept
//! queues, conntrack table fill, and a proxy's Prometheus endpoint. Each is a tokio task that
//! publishes a [`SourceSnapshot`] on a `watch` channel; the math behind each is pure and tested
//! with injected time.

pub mod conntrack;
pub mod prometheus;
pub mod snapshot;
pub mod sockdiag;
pub mod tcp_stats;

pub use conntrack::ConntrackConfig;
pub use prometheus::{Derive, Matcher, PrometheusConfig, Selector};
pub use snapshot::SourceSnapshot;
pub use tcp_stats::TcpStatsConfig;
