//! TEMPORARY signature stub; replaced by the real module on merge.
use crate::route::{DesiredRoutes, Family};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct SessionSetup {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peer: crate::config::PeerConfig,
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerState {
    #[default]
    Idle,
    Connect,
    OpenSent,
    OpenConfirm,
    Established,
}
#[derive(Clone, Debug, Default)]
pub struct PeerStatus {
    pub state: PeerState,
    pub established_since: Option<std::time::SystemTime>,
    pub last_error: Option<String>,
    pub negotiated_hold_time: Option<u16>,
    pub peer_router_id: Option<Ipv4Addr>,
    pub families: Vec<Family>,
    pub updates_sent: u64,
    pub updates_received: u64,
    pub prefixes_announced: usize,
    pub connect_attempts: u64,
}
pub async fn run_peer(
    _s: SessionSetup,
    _d: watch::Receiver<Arc<DesiredRoutes>>,
    _st: watch::Sender<PeerStatus>,
    stop: CancellationToken,
    _m: Arc<Mutex<String>>,
) {
    stop.cancelled().await
}
