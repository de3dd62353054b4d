//! One task per peer: connect, run a connection (driver `conn`, state machine `fsm`), reconnect
//! with backoff, until told to stop. Active side only: the ToR is configured passive, so there is
//! no collision handling.
//!
//! The socket is built by `transport::connect`, with the options that must be set before
//! `connect(2)` (TCP-MD5, TCP-AO, GTSM).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::command::Command;
use super::conn::{self, Links, Timing};
use super::feed::Feed;
use super::fsm::SessionSetup;
use super::rib_in::RibInEvent;
use super::spec::PeerSpec;
use super::status::{EndReason, PeerState, PeerStatus, StopReason};
use super::transport::{self, ConnectError};
use crate::route::{DesiredRoutes, Family};
use retry::Retry;

/// A peer task's channels.
pub struct PeerIo {
    /// The routes to announce; the task follows every change.
    pub desired: watch::Receiver<Arc<DesiredRoutes>>,
    pub status: watch::Sender<PeerStatus>,
    /// Stop or reset from outside; the channel closing counts as a stop.
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Session up/down and UPDATEs the peer sends (for the fleet view). Never blocks a live
    /// session: when the channel is full the view is told this peer is behind and later gets
    /// the whole table again (`bgp::feed`).
    pub received: Option<mpsc::Sender<RibInEvent>>,
}

/// Runs one peer until stopped: connect, establish, keep the peer's Adj-RIB-Out equal to
/// `desired`, reconnect with backoff.
///
/// On `Command::Stop`: if Established, withdraws everything we announced, waits until those
/// bytes have left the socket (kernel send queue empty, at most ~2 s), sends the Cease subcode
/// of the reason (6/2 with an RFC 9003 text on a planned stop), closes and returns.
pub async fn run_peer(setup: SessionSetup, io: PeerIo) {
    run_peer_with(setup, io, Timing::default(), None).await
}

/// An Established session handed over by the process this one replaced (in-place upgrade),
/// already validated against this process's config (`Fsm::resume`).
pub struct Handed {
    pub stream: std::net::TcpStream,
    pub fsm: super::fsm::Fsm,
    pub keepalive_in: Option<Duration>,
    pub hold_in: Option<Duration>,
    pub pending: Vec<u8>,
    pub established_since: Option<std::time::SystemTime>,
}

/// `run_peer`, continuing `handed` first (it reconnects as usual when that session ends).
pub async fn run_peer_handed(setup: SessionSetup, io: PeerIo, handed: Handed) {
    run_peer_with(setup, io, Timing::default(), Some(handed)).await
}

pub(crate) async fn run_peer_with(
    setup: SessionSetup,
    io: PeerIo,
    timing: Timing,
    mut handed: Option<Handed>,
) {
    let PeerIo {
        mut desired,
        status,
        mut commands,
        received,
    } = io;
    let name = setup.peer.name.clone();
    let mut feed = received.map(|tx| Feed::new(tx, name.clone()));
    let mut backoff = Backoff::new(timing.backoff_min, timing.backoff_max);
    // Families we already explained we cannot send to this peer (logged once per peer).
    let mut explained: HashSet<Family> = HashSet::new();
    loop {
        status.send_modify(|s| {
            s.state = PeerState::Connect;
            s.connect_attempts += 1;
        });
        if let Some(f) = &mut feed {
            if until_stop(&mut commands, f.ready()).await.is_err() {
                break;
            }
        }
        // A handed-over socket goes back to the runtime as it is (non-blocking, options set).
        let taken = handed.take().map(|h| {
            let stream = h
                .stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(h.stream));
            let resumed = conn::Resumed {
                fsm: h.fsm,
                keepalive_in: h.keepalive_in,
                hold_in: h.hold_in,
                pending: h.pending,
                established_since: h.established_since,
            };
            (stream, resumed)
        });
        if let Some((Err(e), _)) = &taken {
            warn!(peer = %name, "BGP session with {name} handed over by the previous process cannot be used: {e}; reconnecting");
        }
        if let Some((Ok(stream), resumed)) = taken {
            let links = Links {
                status: &status,
                desired: &mut desired,
                commands: &mut commands,
                feed: feed.as_mut(),
            };
            let outcome = conn::resume(&setup, timing, stream, links, resumed).await;
            explained = outcome.explained;
            if outcome.stop_task {
                break;
            }
            warn!(peer = %name, "BGP session with {name} (taken over from the previous process) failed: {}; reconnecting", outcome.reason);
            status.send_modify(|s| s.ended(&outcome.reason));
            continue;
        }
        let connected =
            match until_stop(&mut commands, connect(&setup.peer, timing.connect_timeout)).await {
                Err(_) => break,
                Ok(c) => c,
            };
        let outcome = match connected {
            Err(reason) => conn::Outcome {
                reason,
                established_for: None,
                stall: None,
                hold: Duration::ZERO,
                stop_task: false,
                explained: std::mem::take(&mut explained),
            },
            Ok(stream) => {
                let links = Links {
                    status: &status,
                    desired: &mut desired,
                    commands: &mut commands,
                    feed: feed.as_mut(),
                };
                conn::run(
                    &setup,
                    timing,
                    stream,
                    links,
                    std::mem::take(&mut explained),
                )
                .await
            }
        };
        explained = outcome.explained;
        if outcome.stop_task {
            if !matches!(outcome.reason, EndReason::Stopped(_)) {
                warn!(peer = %name, "BGP session with {name} ended while stopping: {}", outcome.reason);
            }
            break;
        }
        let reason = outcome.reason;
        let retry = retry::decide(
            &reason,
            outcome.established_for,
            outcome.stall,
            outcome.hold,
            timing.stable_after,
        );
        match retry {
            // Our own stall or error: the router is fine, be back at once.
            Retry::Prompt(_) => backoff.reset(),
            // A router restart: be back as soon as it listens again.
            Retry::FastWindow => backoff.fast_retry(timing.fast_retry_window),
            Retry::Reset => backoff.reset(),
            Retry::Grow => {}
        }
        let delay = backoff.next_delay();
        match retry {
            Retry::Prompt(why) => warn!(
                peer = %name,
                "BGP session with {name} failed: {reason}; retrying in {:.1} s: {why}",
                delay.as_secs_f64()
            ),
            _ => warn!(
                peer = %name,
                "BGP session with {name} failed: {reason}; retrying in {:.1} s",
                delay.as_secs_f64()
            ),
        }
        status.send_modify(|s| s.ended(&reason));
        if until_stop(&mut commands, tokio::time::sleep(delay))
            .await
            .is_err()
        {
            break;
        }
    }
    status.send_modify(|s| s.clear_session());
    info!(peer = %name, "BGP session task for {name} stopped");
}

/// Runs `fut` unless a stop command comes first (resets are ignored: no session is up).
async fn until_stop<T>(
    commands: &mut mpsc::UnboundedReceiver<Command>,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, StopReason> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            c = commands.recv() => match c {
                None => return Err(StopReason::Shutdown(String::new())),
                Some(Command::Stop(r)) => return Err(r),
                Some(Command::Reset(_)) => {}
                Some(Command::Pause(p)) => {
                    let _ = p.reply(super::pause::Paused::NotEstablished);
                }
            },
            v = &mut fut => return Ok(v),
        }
    }
}

/// TCP connect with the peer's TCP-MD5/TCP-AO/GTSM options set before the SYN (see `transport`),
/// optional source address, bounded in time, Nagle off (small BGP messages).
async fn connect(peer: &PeerSpec, timeout: Duration) -> Result<TcpStream, EndReason> {
    let remote = SocketAddr::new(peer.address, peer.port);
    let opts = transport::Options {
        auth: peer.auth.clone(),
        ttl_security: peer.ttl_security,
        timeout,
    };
    transport::connect(remote, peer.local_address, &opts)
        .await
        .map_err(|e| match e {
            // The text says what a silent drop most likely means (key, GTSM, dead address).
            ConnectError::TimedOut { after, .. } => EndReason::ConnectTimeout {
                remote,
                after,
                detail: e.to_string(),
            },
            ConnectError::Failed { ref source, .. }
                if source.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                EndReason::ConnectRefused {
                    remote,
                    detail: source.to_string(),
                }
            }
            e => EndReason::ConnectFailed(e.to_string()),
        })
}

/// Exponential backoff with +-25 % jitter, so that many nodes behind one ToR do not reconnect in
/// lockstep after it restarts.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    /// Until then, every retry waits only `min` (after the peer closed an Established session).
    fast_until: Option<Instant>,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
            fast_until: None,
        }
    }

    pub fn reset(&mut self) {
        self.next = self.min;
        self.fast_until = None;
    }

    /// Resets, and keeps retrying at the minimum for `window` (then grows again as usual).
    pub fn fast_retry(&mut self, window: Duration) {
        self.next = self.min;
        self.fast_until = Some(Instant::now() + window);
    }

    pub fn next_delay(&mut self) -> Duration {
        if self.fast_until.is_some_and(|t| Instant::now() < t) {
            return self.min.mul_f64(rand::thread_rng().gen_range(0.75..=1.25));
        }
        let d = self.next;
        self.next = (d * 2).min(self.max);
        d.mul_f64(rand::thread_rng().gen_range(0.75..=1.25))
    }
}

pub(super) mod retry;

#[cfg(test)]
mod tests;
