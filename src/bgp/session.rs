//! One task per peer: connect, run a connection (see `conn`), reconnect with backoff, until
//! stopped. Active side only: the ToR is configured passive, so there is no collision handling.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::conn::{self, Outcome};
use crate::config::PeerConfig;
use crate::route::{DesiredRoutes, Family};

#[derive(Clone, Debug)]
pub struct SessionSetup {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peer: PeerConfig,
    /// Where received routes for VIP prefixes go (the fleet view); None: only counted.
    pub rib_in: Option<super::rib_in::RibInSender>,
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

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerState::Idle => "Idle",
            PeerState::Connect => "Connect",
            PeerState::OpenSent => "OpenSent",
            PeerState::OpenConfirm => "OpenConfirm",
            PeerState::Established => "Established",
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct PeerStatus {
    pub state: PeerState,
    pub established_since: Option<SystemTime>,
    /// Why the last connection attempt or session ended.
    pub last_error: Option<String>,
    pub negotiated_hold_time: Option<u16>,
    pub peer_router_id: Option<Ipv4Addr>,
    /// Families both sides negotiated on the current session.
    pub families: Vec<Family>,
    pub updates_sent: u64,
    pub updates_received: u64,
    /// Prefixes the peer currently holds from us.
    pub prefixes_announced: usize,
    pub connect_attempts: u64,
}

/// Timer settings. Production uses `Default`; tests shrink them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// Length of one hold-time second (tests run hold timers faster than real time).
    pub second: Duration,
    pub connect_timeout: Duration,
    /// Hold timer while waiting for the peer's OPEN (RFC 4271 8.2.2 suggests 4 minutes).
    pub open_hold: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A session Established this long resets the backoff.
    pub stable_after: Duration,
    /// On stop: how long to wait for the withdraws to leave the socket.
    pub drain: Duration,
    /// After our NOTIFICATION: how long to wait for the peer to close.
    pub linger: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            second: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            open_hold: Duration::from_secs(240),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            drain: Duration::from_secs(2),
            linger: Duration::from_secs(1),
        }
    }
}

/// Runs one peer until `stop` is cancelled: connect, establish, keep the peer's Adj-RIB-Out equal
/// to `desired`, reconnect with backoff.
///
/// On stop: if Established, withdraws everything we announced, waits until those bytes have left
/// the socket (kernel send queue empty, at most ~2 s), sends Cease/Administrative Shutdown (6/2)
/// with the text in `stop_message` (RFC 9003), closes and returns.
pub async fn run_peer(
    setup: SessionSetup,
    desired: watch::Receiver<Arc<DesiredRoutes>>,
    status: watch::Sender<PeerStatus>,
    stop: CancellationToken,
    stop_message: Arc<Mutex<String>>,
) {
    run_peer_with(
        setup,
        desired,
        status,
        stop,
        stop_message,
        Timing::default(),
    )
    .await
}

pub(crate) async fn run_peer_with(
    setup: SessionSetup,
    mut desired: watch::Receiver<Arc<DesiredRoutes>>,
    status: watch::Sender<PeerStatus>,
    stop: CancellationToken,
    stop_message: Arc<Mutex<String>>,
    timing: Timing,
) {
    let name = setup.peer.name.clone();
    let mut backoff = Backoff::new(timing.backoff_min, timing.backoff_max);
    // Families we already explained we cannot send to this peer (logged once per peer).
    let mut explained: HashSet<Family> = HashSet::new();
    loop {
        if stop.is_cancelled() {
            break;
        }
        status.send_modify(|s| {
            s.state = PeerState::Connect;
            s.connect_attempts += 1;
        });
        let connected = tokio::select! {
            _ = stop.cancelled() => break,
            r = connect(&setup.peer, timing.connect_timeout) => r,
        };
        let (reason, established_for) = match connected {
            Err(e) => (e, None),
            Ok(stream) => {
                let ctx = conn::Ctx {
                    setup: &setup,
                    timing,
                    status: &status,
                    stop: &stop,
                    stop_message: &stop_message,
                    explained: &mut explained,
                };
                match conn::run(ctx, stream, &mut desired).await {
                    Outcome::Stopped => break,
                    Outcome::Failed {
                        reason,
                        established_at,
                    } => (reason, established_at.map(|t: Instant| t.elapsed())),
                }
            }
        };
        if established_for.is_some_and(|d| d >= timing.stable_after) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        warn!(
            peer = %name,
            "BGP session with {name} failed: {reason}; retrying in {:.1} s",
            delay.as_secs_f64()
        );
        status.send_modify(|s| {
            s.state = PeerState::Idle;
            s.last_error = Some(reason);
            s.established_since = None;
            s.negotiated_hold_time = None;
            s.families.clear();
            s.prefixes_announced = 0;
        });
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    status.send_modify(|s| {
        s.state = PeerState::Idle;
        s.established_since = None;
        s.negotiated_hold_time = None;
        s.families.clear();
        s.prefixes_announced = 0;
    });
    info!(peer = %name, "BGP session task for {name} stopped");
}

/// TCP connect with optional source address, bounded in time, Nagle off (small BGP messages).
async fn connect(peer: &PeerConfig, timeout: Duration) -> Result<TcpStream, String> {
    let remote = SocketAddr::new(peer.address, peer.port);
    let from = peer
        .local_address
        .map(|a| format!(" from {a}"))
        .unwrap_or_default();
    let sock = match peer.address {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("cannot create socket: {e}"))?;
    if let Some(local) = peer.local_address {
        sock.bind(SocketAddr::new(local, 0))
            .map_err(|e| format!("cannot bind local address {local}: {e}"))?;
    }
    let stream = match tokio::time::timeout(timeout, sock.connect(remote)).await {
        Err(_) => {
            return Err(format!(
                "connect to {remote}{from} timed out after {} s",
                timeout.as_secs_f64()
            ))
        }
        Ok(Err(e)) => return Err(format!("connect to {remote}{from} failed: {e}")),
        Ok(Ok(s)) => s,
    };
    stream
        .set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    Ok(stream)
}

/// Exponential backoff with +-25 % jitter, so that many nodes behind one ToR do not reconnect in
/// lockstep after it restarts.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(self.max);
        d.mul_f64(rand::thread_rng().gen_range(0.75..=1.25))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let ds: Vec<f64> = (0..8).map(|_| b.next_delay().as_secs_f64()).collect();
        for (d, nominal) in ds.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]) {
            assert!(*d >= nominal * 0.75 && *d <= nominal * 1.25, "{ds:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1250));
    }
}
