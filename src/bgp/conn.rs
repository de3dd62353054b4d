//! Thin async driver for one TCP connection: owns the socket, the framing and the timers, feeds
//! the pure state machine (`fsm`) and carries out its actions; publishes status; hands received
//! VIP routes to the peer's `feed` (never waiting on the daemon while the session is up).
//!
//! Reading goes through `FramedRead`, whose `next()` is cancel-safe inside `select!`. Writes are
//! never raced against anything: each `select!` only picks the next event, and the actions it
//! causes are carried out after it returns. No protocol decision is made here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use super::command::Command;
use super::feed::Feed;
use super::fsm::{Action, Fsm, FsmTiming, Input, Level, ReceivedUpdate, SessionSetup, Timer};
use super::pause::{Pause, Paused, PausedSession, Verdict};
use super::rib_in::RibInEvent;
use super::session::retry::Stall;
use super::status::{EndReason, PeerState, PeerStatus, StopReason};
use super::wire::{self, BgpCodec, Frame, ReadError};
use crate::route::{DesiredRoutes, Family};

/// Timer settings. Production uses `Default`; tests shrink them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub fsm: FsmTiming,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A session Established this long resets the backoff.
    pub stable_after: Duration,
    /// After the peer closed an Established session (router restart): retry at the minimum
    /// backoff for this long, so routes are back within about a second of the peer listening.
    pub fast_retry_window: Duration,
    /// On stop: how long to wait for the withdraws to leave the socket.
    pub drain: Duration,
    /// After our NOTIFICATION: how long to wait for the peer to close.
    pub linger: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            fsm: FsmTiming::default(),
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            fast_retry_window: Duration::from_secs(60),
            drain: Duration::from_secs(2),
            linger: Duration::from_secs(1),
        }
    }
}

/// What a connection talks to besides its socket.
pub(crate) struct Links<'a> {
    pub status: &'a watch::Sender<PeerStatus>,
    pub desired: &'a mut watch::Receiver<Arc<DesiredRoutes>>,
    pub commands: &'a mut mpsc::UnboundedReceiver<Command>,
    /// Where session up/down and received routes for VIP prefixes go (the fleet view), if
    /// anyone listens.
    pub feed: Option<&'a mut Feed>,
}

pub(crate) struct Outcome {
    pub reason: EndReason,
    /// How long the session was Established, if it got there.
    pub established_for: Option<Duration>,
    /// The last stall of this process seen on this connection (see `Conn::note_stall`).
    pub stall: Option<Stall>,
    /// The session's hold time (negotiated, or the OpenSent one), in real time.
    pub hold: Duration,
    /// A `Command::Stop` (or the command channel closing) ended it: the task ends too.
    pub stop_task: bool,
    pub explained: HashSet<Family>,
}

enum Event {
    Command(Option<Command>),
    Timer(Timer),
    Desired(bool),
    Frame(Option<Result<Frame, ReadError>>),
    /// The fleet feed is behind and the channel has room again.
    Room(Option<tokio::sync::mpsc::OwnedPermit<RibInEvent>>),
}

struct Conn<'a> {
    links: Links<'a>,
    name: Arc<str>,
    timing: Timing,
    reader: FramedRead<OwnedReadHalf, BgpCodec>,
    writer: OwnedWriteHalf,
    fsm: Fsm,
    deadlines: [Option<tokio::time::Instant>; 4],
    established_at: Option<Instant>,
    watching: bool,
    stop_task: bool,
    /// When this loop last saw a timer fire late by more than a hold-time second, and by how
    /// much: the process was stopped or starved, not the peer silent.
    stalled: Option<(Instant, Duration)>,
    /// A hold expiry right after a stall was already given its one grace period.
    hold_grace_used: bool,
    /// When the FSM decided to close (before the NOTIFICATION and the linger).
    closing_at: Option<Instant>,
}

fn slot(t: Timer) -> usize {
    match t {
        Timer::Hold => 0,
        Timer::Keepalive => 1,
        Timer::Refresh => 2,
        Timer::RefreshLog => 3,
    }
}

/// Waits for the future, or forever without one.
async fn wait_opt<T>(f: Option<impl std::future::Future<Output = T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until the deadline, or forever without one.
async fn sleep_opt(d: Option<tokio::time::Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn run(
    setup: &SessionSetup,
    timing: Timing,
    stream: TcpStream,
    links: Links<'_>,
    explained: HashSet<Family>,
) -> Outcome {
    let fsm = Fsm::new(setup.clone(), timing.fsm, explained);
    drive(setup, timing, stream, links, fsm, None).await
}

/// A session handed over by the process this one replaced (in-place upgrade), continued on its
/// socket: the FSM resumed Established, the timers where they were, the bytes already read.
pub(crate) struct Resumed {
    pub fsm: Fsm,
    pub keepalive_in: Option<Duration>,
    pub hold_in: Option<Duration>,
    pub pending: Vec<u8>,
    pub established_since: Option<SystemTime>,
}

pub(crate) async fn resume(
    setup: &SessionSetup,
    timing: Timing,
    stream: TcpStream,
    links: Links<'_>,
    mut r: Resumed,
) -> Outcome {
    let fsm = std::mem::replace(
        &mut r.fsm,
        Fsm::new(setup.clone(), timing.fsm, HashSet::new()),
    );
    drive(setup, timing, stream, links, fsm, Some(r)).await
}

async fn drive(
    setup: &SessionSetup,
    timing: Timing,
    stream: TcpStream,
    links: Links<'_>,
    fsm: Fsm,
    resumed: Option<Resumed>,
) -> Outcome {
    let local = stream.local_addr();
    let (r, w) = stream.into_split();
    let mut c = Conn {
        links,
        name: setup.peer.name.clone(),
        timing,
        reader: FramedRead::new(r, BgpCodec),
        writer: w,
        fsm,
        deadlines: [None; 4],
        established_at: None,
        watching: true,
        stop_task: false,
        stalled: None,
        hold_grace_used: false,
        closing_at: None,
    };
    let reason = match local {
        Err(e) => EndReason::ConnectFailed(format!("cannot read the socket's local address: {e}")),
        Ok(local) => c.serve(local, resumed).await,
    };
    if let Some(f) = c.links.feed.as_deref_mut() {
        f.down().await;
    }
    let hold = match c.fsm.hold() {
        0 => timing.fsm.open_hold,
        h => timing.fsm.second * u32::from(h),
    };
    Outcome {
        reason,
        established_for: c.established_at.map(|t| t.elapsed()),
        stall: c.stalled.map(|(at, late)| Stall {
            late,
            before_end: c
                .closing_at
                .unwrap_or_else(Instant::now)
                .saturating_duration_since(at),
        }),
        hold,
        stop_task: c.stop_task,
        explained: c.fsm.into_explained(),
    }
}

impl Conn<'_> {
    async fn serve(&mut self, local: std::net::SocketAddr, resumed: Option<Resumed>) -> EndReason {
        let snapshot = self.links.desired.borrow_and_update().clone();
        let mut actions = match resumed {
            None => {
                let mut a = self.fsm.handle(Input::Desired(snapshot));
                a.extend(self.fsm.handle(Input::Connected { local }));
                a
            }
            Some(r) => {
                let queued = self.take_over(r);
                // Diffed against the handed-over Adj-RIB-Out: empty when nothing changed.
                let mut a = self.fsm.handle(Input::Desired(snapshot));
                // Whole messages the old process had read but not parsed go first, in order.
                for input in queued {
                    a.extend(self.fsm.handle(input));
                }
                // The fleet view of this peer starts empty: ask for the peer's table again.
                if self.links.feed.is_some() {
                    a.extend(self.fsm.request_tables());
                }
                a
            }
        };
        loop {
            if let Some(end) = self.apply(actions).await {
                return end;
            }
            // A new session's first UPDATEs are written: now the rest of its table.
            if let Some(rest) = self.fsm.continue_table() {
                actions = rest;
                continue;
            }
            // Only time spent waiting counts: a slow write in `apply` is not a stall.
            let waiting = tokio::time::Instant::now();
            let due = self
                .deadlines
                .iter()
                .flatten()
                .min()
                .map(|d| (*d).max(waiting));
            let event = self.next_event().await;
            self.note_stall(due);
            let input = match event {
                Event::Command(None) => {
                    self.stop_task = true;
                    Input::Stop(StopReason::Shutdown(String::new()))
                }
                Event::Command(Some(Command::Stop(r))) => {
                    self.stop_task = true;
                    Input::Stop(r)
                }
                Event::Command(Some(Command::Reset(r))) => Input::Stop(r),
                Event::Command(Some(Command::Pause(p))) => {
                    self.pause(p).await;
                    actions = Vec::new();
                    continue;
                }
                Event::Timer(Timer::Hold) if self.hold_needs_grace() => {
                    // Resumed after a stall: the peer's bytes may be sitting unread in the
                    // socket. Read them before judging its silence (once per stall).
                    self.hold_grace_used = true;
                    let grace = self.timing.fsm.second;
                    self.deadlines[slot(Timer::Hold)] = Some(tokio::time::Instant::now() + grace);
                    info!(peer = %self.name, "hold timer for {} ran out while this process was stalled; reading what the peer sent before judging", self.name);
                    actions = Vec::new();
                    continue;
                }
                Event::Timer(t) => {
                    self.deadlines[slot(t)] = None;
                    Input::Timer(t)
                }
                Event::Desired(false) => {
                    // The publisher is gone (daemon shutting down): keep what the peer has.
                    self.watching = false;
                    actions = Vec::new();
                    continue;
                }
                Event::Desired(true) => {
                    Input::Desired(self.links.desired.borrow_and_update().clone())
                }
                Event::Frame(None) => Input::Closed,
                Event::Frame(Some(Err(ReadError::Io(e)))) if is_reset(&e) => Input::Reset,
                Event::Frame(Some(Err(ReadError::Io(e)))) => Input::ReadFailed(e.to_string()),
                Event::Frame(Some(Err(ReadError::Protocol(e)))) => Input::BadFrame(e),
                Event::Frame(Some(Ok(f))) => Input::Frame(f),
                Event::Room(slot) => {
                    self.catch_up(slot);
                    actions = Vec::new();
                    continue;
                }
            };
            actions = self.fsm.handle(input);
        }
    }

    /// Continues a handed-over session: timers where the old process left them, the bytes it had
    /// read but not parsed first in the read buffer, the status Established.
    fn take_over(&mut self, r: Resumed) -> Vec<Input> {
        let now = tokio::time::Instant::now();
        if self.fsm.hold() > 0 {
            self.deadlines[slot(Timer::Keepalive)] = r.keepalive_in.map(|d| now + d);
            self.deadlines[slot(Timer::Hold)] = r.hold_in.map(|d| now + d);
        }
        // Complete messages become inputs now (the framer would only look at its buffer after
        // the next read from the socket); a partial one waits in the buffer for its rest.
        let mut pending = bytes::BytesMut::from(&r.pending[..]);
        let mut queued = Vec::new();
        loop {
            match tokio_util::codec::Decoder::decode(&mut BgpCodec, &mut pending) {
                Ok(Some(f)) => queued.push(Input::Frame(f)),
                Ok(None) => break,
                Err(ReadError::Protocol(e)) => {
                    queued.push(Input::BadFrame(e));
                    break;
                }
                Err(ReadError::Io(e)) => {
                    queued.push(Input::ReadFailed(e.to_string()));
                    break;
                }
            }
        }
        self.reader.read_buffer_mut().extend_from_slice(&pending);
        self.established_at = Some(Instant::now());
        let (hold, families, id) = (
            self.fsm.hold(),
            self.fsm.families().to_vec(),
            self.fsm.peer_router_id(),
        );
        let (rr, resends) = self.fsm.route_refresh_counts();
        let announced = self.fsm.announced();
        self.links.status.send_modify(|s| {
            s.state = PeerState::Established;
            s.negotiated_hold_time = Some(hold);
            s.peer_router_id = id;
            s.families = families;
            s.established_since = Some(r.established_since.unwrap_or_else(SystemTime::now));
            s.prefixes_announced = announced;
            s.route_refresh_received = rr;
            s.route_refresh_resends = resends;
        });
        let rx = self.fsm.rx();
        if let Some(f) = self.links.feed.as_deref_mut() {
            f.up(rx.add_path_v4, rx.add_path_v6);
        }
        info!(peer = %self.name, "BGP session with {} taken over from the previous process: {} prefixes held by the peer, {} bytes read but not yet parsed",
            self.name, announced, r.pending.len());
        queued
    }

    /// Hands the session over at this message boundary (every action of the last event was
    /// carried out, nothing is half-written) and waits for the verdict. On `Release` this task
    /// never touches the socket again: it waits for the process to exit.
    async fn pause(&mut self, p: Pause) {
        let Some(state) = self.fsm.export() else {
            let _ = p.reply(Paused::NotEstablished);
            return;
        };
        let now = tokio::time::Instant::now();
        let left = |t: Timer| self.deadlines[slot(t)].map(|d| d.saturating_duration_since(now));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let established_since = self.links.status.borrow().established_since;
        let paused = PausedSession {
            state,
            fd: std::os::fd::AsRawFd::as_raw_fd(self.reader.get_ref().as_ref()),
            keepalive_in: left(Timer::Keepalive),
            hold_in: left(Timer::Hold),
            pending: self.reader.read_buffer().to_vec(),
            established_since,
            verdict: tx,
        };
        if p.reply(Paused::Session(Box::new(paused))).is_err() {
            return;
        }
        match rx.await {
            Ok(Verdict::Release) => {
                info!(peer = %self.name, "BGP session with {} handed over to the new process", self.name);
                std::future::pending::<()>().await;
            }
            // Resume, or the upgrade gave up without a word: carry on.
            Ok(Verdict::Resume) | Err(_) => {
                info!(peer = %self.name, "BGP session with {} resumed: the upgrade did not take place", self.name);
            }
        }
    }

    /// A timer due at `due` is only now seen: later than one hold-time second means this
    /// process was stopped or starved (timers are otherwise served within milliseconds).
    fn note_stall(&mut self, due: Option<tokio::time::Instant>) {
        let Some(due) = due else { return };
        let late = tokio::time::Instant::now().saturating_duration_since(due);
        if late > self.timing.fsm.second {
            self.stalled = Some((Instant::now(), late));
            self.hold_grace_used = false;
            info!(peer = %self.name, "this process was stalled: a timer of the session with {} fired {:.1} s late", self.name, late.as_secs_f64());
        }
    }

    /// The hold timer fired within a hold-time second of a stall, and has had no grace yet.
    fn hold_needs_grace(&self) -> bool {
        !self.hold_grace_used
            && self
                .stalled
                .is_some_and(|(at, _)| at.elapsed() <= self.timing.fsm.second)
    }

    async fn next_event(&mut self) -> Event {
        let hold = self.deadlines[slot(Timer::Hold)];
        // The earliest of the other timers.
        let other = [Timer::Keepalive, Timer::Refresh, Timer::RefreshLog]
            .into_iter()
            .filter_map(|t| self.deadlines[slot(t)].map(|d| (d, t)))
            .min_by_key(|(d, _)| *d);
        let desired = &mut *self.links.desired;
        let commands = &mut *self.links.commands;
        let room = match self.links.feed.as_deref() {
            Some(f) if f.is_behind() => Some(f.room()),
            _ => None,
        };
        // Biased, in this order: commands always win; our KEEPALIVEs (and due re-sends) go out
        // even while the peer floods us; route changes are rare so they cannot starve reading;
        // the hold timer comes last so that a KEEPALIVE already buffered is read before the
        // timer is judged.
        tokio::select! {
            biased;
            c = commands.recv() => Event::Command(c),
            _ = sleep_opt(other.map(|(d, _)| d)) => Event::Timer(other.map_or(Timer::Keepalive, |(_, t)| t)),
            ok = desired.changed(), if self.watching => Event::Desired(ok.is_ok()),
            // Catching up the fleet view before reading more: the resync then carries more.
            slot = wait_opt(room) => Event::Room(slot),
            f = self.reader.next() => Event::Frame(f),
            _ = sleep_opt(hold) => Event::Timer(Timer::Hold),
        }
    }

    /// Carries out the FSM's actions in order; `Some` when the connection is over.
    async fn apply(&mut self, actions: Vec<Action>) -> Option<EndReason> {
        let mut updates_sent = 0u64;
        let mut updates_received = 0u64;
        let mut end = None;
        for a in actions {
            match a {
                Action::Send(m) => {
                    if let Err(e) = self.write(&m).await {
                        end = Some(e);
                        break;
                    }
                    if m.get(18) == Some(&wire::MSG_UPDATE) {
                        updates_sent += 1;
                    }
                }
                Action::Arm(t, d) => {
                    self.deadlines[slot(t)] = Some(tokio::time::Instant::now() + d)
                }
                Action::Cancel(t) => self.deadlines[slot(t)] = None,
                Action::State(s) => {
                    self.state_changed(s);
                    if s == PeerState::Established {
                        let rx = self.fsm.rx();
                        if let Some(f) = self.links.feed.as_deref_mut() {
                            f.up(rx.add_path_v4, rx.add_path_v6);
                        }
                    }
                }
                Action::Received(u) => {
                    updates_received += 1;
                    let ReceivedUpdate { routes, .. } = u;
                    if let Some(f) = self.links.feed.as_deref_mut() {
                        f.update(routes);
                    }
                }
                Action::Log(level, s) => match level {
                    Level::Debug => debug!(peer = %self.name, "{s}"),
                    Level::Info => info!(peer = %self.name, "{s}"),
                    Level::Warn => warn!(peer = %self.name, "{s}"),
                },
                Action::RouteLog(vip, s) => info!(peer = %self.name, vip = %vip, "{s}"),
                Action::Close {
                    notification,
                    drain,
                    reason,
                } => {
                    self.closing_at = Some(Instant::now());
                    self.close(notification, drain).await;
                    end = Some(reason);
                    break;
                }
            }
        }
        let announced = self.fsm.announced();
        let (rr, resends) = self.fsm.route_refresh_counts();
        self.feed_counts();
        self.links.status.send_modify(|s| {
            s.updates_sent += updates_sent;
            s.updates_received += updates_received;
            s.prefixes_announced = announced;
            s.route_refresh_received = rr;
            s.route_refresh_resends = resends;
        });
        end
    }

    /// The channel has room again while the fleet feed is behind.
    fn catch_up(&mut self, slot: Option<tokio::sync::mpsc::OwnedPermit<RibInEvent>>) {
        let Some(f) = self.links.feed.as_deref_mut() else {
            return;
        };
        let Some(slot) = slot else {
            // Nobody reads any more (daemon shutting down): stop waiting for room.
            f.closed();
            return;
        };
        if f.catch_up(slot) {
            info!(peer = %self.name, "fleet view of {} resynced ({} paths) after the daemon fell behind; {} deltas replaced by resyncs so far",
                self.name, f.table_len(), f.deltas_replaced);
        }
        self.feed_counts();
    }

    /// The fleet feed's counters into the status (they only grow, across sessions).
    fn feed_counts(&self) {
        let Some(f) = self.links.feed.as_deref() else {
            return;
        };
        let (resyncs, replaced) = (f.resyncs, f.deltas_replaced);
        self.links.status.send_if_modified(|s| {
            let changed = (s.fleet_resyncs, s.fleet_deltas_replaced) != (resyncs, replaced);
            s.fleet_resyncs = resyncs;
            s.fleet_deltas_replaced = replaced;
            changed
        });
    }

    fn state_changed(&mut self, state: PeerState) {
        let (hold, families, id) = (
            self.fsm.hold(),
            self.fsm.families().to_vec(),
            self.fsm.peer_router_id(),
        );
        if state == PeerState::Established {
            self.established_at = Some(Instant::now());
        }
        self.links.status.send_modify(|s| {
            s.state = state;
            match state {
                PeerState::OpenConfirm => {
                    s.negotiated_hold_time = Some(hold);
                    s.peer_router_id = id;
                    s.families = families;
                }
                PeerState::Established => s.established_since = Some(SystemTime::now()),
                _ => {}
            }
        });
    }

    /// A write that cannot hang the session forever when the peer stops reading.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), EndReason> {
        let hold = self.fsm.hold();
        let limit = if hold > 0 {
            self.timing.fsm.second * hold as u32
        } else {
            Duration::from_secs(30)
        };
        match tokio::time::timeout(limit, self.writer.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if is_reset(&e) => Err(EndReason::PeerReset {
                state: self.fsm.state(),
            }),
            Ok(Err(e)) => Err(EndReason::Io(format!("write failed: {e}"))),
            Err(_) => Err(EndReason::WriteBlocked { after: limit }),
        }
    }

    /// Best effort: the session is ending either way.
    async fn close(&mut self, notification: Option<Vec<u8>>, drain: bool) {
        if drain {
            let _ = self.writer.flush().await;
            if !wait_sent(self.writer.as_ref(), self.timing.drain).await {
                warn!(peer = %self.name, "withdraws to {} not acknowledged within {} s; closing anyway",
                    self.name, self.timing.drain.as_secs_f64());
            }
        }
        let Some(n) = notification else {
            return;
        };
        if self.write(&n).await.is_err() {
            return;
        }
        let _ = self.writer.flush().await;
        wait_sent(self.writer.as_ref(), self.timing.drain).await;
        let _ = self.writer.shutdown().await;
        // Read until the peer closes too: closing with unread data would send a RST, which can
        // make the peer drop our NOTIFICATION unread. Raw reads, because nothing after our
        // NOTIFICATION matters and the framer may have failed on the bytes that caused it.
        let sock = self.reader.get_mut();
        let _ = tokio::time::timeout(self.timing.linger, async {
            let mut scratch = [0u8; 4096];
            while matches!(sock.read(&mut scratch).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

/// Waits until the kernel send queue is empty (everything sent and acknowledged by the peer's
/// TCP), or `limit` passes. Returns whether it emptied.
async fn wait_sent(stream: &TcpStream, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        match crate::sys::tcp_queue::unacked_bytes(stream) {
            Some(0) => return true,
            None => {
                // No way to ask the kernel: give the bytes a moment instead.
                tokio::time::sleep(limit.min(Duration::from_millis(200))).await;
                return false;
            }
            Some(_) if Instant::now() >= until => return false,
            Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
