//! TEMPORARY signature stub; replaced by the real module on merge.
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
pub struct ProbeResult {
    pub ok: bool,
    pub detail: String,
    pub elapsed: Duration,
}
pub struct CheckSample {
    pub check: usize,
    pub result: ProbeResult,
    pub at: Instant,
}
pub fn spawn_checks(
    _c: &[crate::config::CheckConfig],
    _tx: tokio::sync::mpsc::Sender<CheckSample>,
    _s: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    Vec::new()
}
