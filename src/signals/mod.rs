//! Local traffic signals from access logs: what real users experienced (request rate, error
//! ratio, latency percentiles) over a sliding window, so routes can be withdrawn when users suffer
//! even though active health checks pass.
//!
//! Pure parts (`logformat`, `lines`, `window`, `replay`) do no I/O; `follow` is the file edge and
//! `source` the tokio task that ties them together for the daemon.

pub mod follow;
pub mod lines;
pub mod logformat;
pub mod replay;
pub mod source;
mod timeparse;
pub mod window;

pub use follow::{FollowCounters, FollowOptions, LogFollower, PollReport};
pub use lines::{LineAssembler, DEFAULT_MAX_LINE};
pub use logformat::{JsonFields, LatencyUnit, LogFormat, LogRecord, Malformed, RegexFormat};
pub use replay::{replay, ReplayOptions, ReplaySummary};
pub use source::{AccessLogConfig, AccessLogSource, AccessLogState};
pub use window::{StatusSet, WindowSnapshot, WindowStats, MAX_LATENCY_US, SLOTS};
