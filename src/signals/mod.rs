//! Passive signals measured locally from real traffic, so routes can be withdrawn when users
//! suffer even though active checks pass: access logs (request rate, error ratio, latency
//! percentiles over a sliding window), kernel TCP counters and accept queues, conntrack fill, and a
//! local proxy's Prometheus endpoint.
//!
//! Pure parts (`logformat`, `lines`, `window`, `replay`, the rate/derive math) do no I/O; `follow`,
//! the proc/netlink readers and the scraper are the edges; each source is a tokio task that
//! publishes its latest values.

pub mod access_log;
pub mod conntrack;
pub mod follow;
pub mod handshakes;
pub mod lines;
pub mod logcheck;
pub mod logformat;
pub mod prometheus;
pub mod replay;
pub mod snapshot;
pub mod sockdiag;
pub mod tcp_stats;
mod timeparse;
pub mod window;

pub use access_log::{AccessLogConfig, AccessLogSource, AccessLogState};
pub use conntrack::ConntrackConfig;
pub use follow::{FollowCounters, FollowOptions, LogFollower, PollReport};
pub use lines::{LineAssembler, DEFAULT_MAX_LINE};
pub use logformat::{
    JsonFields, LatencyUnit, LogFormat, LogRecord, Malformed, RegexFormat, RegexFormatError,
};
pub use prometheus::{Derive, Matcher, PrometheusConfig, Selector};
pub use replay::{replay, ReplayOptions, ReplaySummary};
pub use snapshot::SourceSnapshot;
pub use tcp_stats::TcpStatsConfig;
pub use window::{StatusSet, WindowSnapshot, WindowStats, MAX_LATENCY_US, SLOTS};
