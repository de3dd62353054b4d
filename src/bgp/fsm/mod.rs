//! One BGP connection as a pure state machine (RFC 4271 section 8, active side): OpenSent ->
//! OpenConfirm -> Established, and the Adj-RIB-Out while Established.
//!
//! Sans-IO: [`Fsm::handle`] takes an [`Input`] (TCP up, a framed message, a timer expiry, a
//! desired-routes snapshot, a stop with its reason) and returns [`Action`]s (bytes to send,
//! timers to arm or cancel, state changes, received UPDATEs, log lines, close with a typed
//! reason). No socket, no clock, no tokio: the driver (`conn`) owns those, and tests drive this
//! directly with simulated time. Timers are durations; the driver turns them into deadlines.
//! Encoding goes through `encode`/`sync`, parsing through `wire`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::encode::{self, PathParams};
use super::error::{BgpError, ErrorCode, FsmError, OpenError};
use super::rib_in::{AttrError, DecodeCx, RibInUpdate, RxParams};
use super::rib_out::RibOut;
use super::spec::PeerSpec;
use super::status::{EndReason, PeerState, StopReason};
pub use super::sync::Level;
use super::sync::{Batch, NextHops, Sync};
use super::wire::{self, Frame, Message, Open, RouteRefresh};
use crate::route::{DesiredRoutes, Family, Prefix};

/// Prefixes in the first slice of a new session's table (a few UPDATEs: IPv4 host routes fit
/// ~800 to a 4 KiB message).
const INITIAL_SLICE: usize = 1024;

/// What a peer task needs to know about its peer.
#[derive(Clone, Debug)]
pub struct SessionSetup {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peer: PeerSpec,
}

/// Durations the FSM hands to the driver.
#[derive(Clone, Copy, Debug)]
pub struct FsmTiming {
    /// Length of one hold-time second (tests run hold timers faster than real time).
    pub second: Duration,
    /// Hold timer while waiting for the peer's OPEN (RFC 4271 8.2.2 suggests 4 minutes).
    pub open_hold: Duration,
    /// ROUTE-REFRESH requests arriving within this delay share one re-send per family.
    pub refresh_delay: Duration,
    /// After the first ROUTE-REFRESH is logged, further ones are counted and summarised once
    /// per window.
    pub refresh_log_window: Duration,
}

impl Default for FsmTiming {
    fn default() -> Self {
        FsmTiming {
            second: Duration::from_secs(1),
            open_hold: Duration::from_secs(240),
            refresh_delay: Duration::from_millis(200),
            refresh_log_window: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    Hold,
    Keepalive,
    /// Coalesced ROUTE-REFRESH re-send is due.
    Refresh,
    /// Time to summarise the ROUTE-REFRESH requests not logged one by one.
    RefreshLog,
}

impl Timer {
    pub const ALL: [Timer; 4] = [
        Timer::Hold,
        Timer::Keepalive,
        Timer::Refresh,
        Timer::RefreshLog,
    ];
}

/// An UPDATE the peer sent, for whoever reads routes (the fleet view); `body` is the message
/// after the 19-byte header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedUpdate {
    pub body: Bytes,
    /// The paths it announces and withdraws for VIP prefixes (`bgp::rib_in`).
    pub routes: Box<RibInUpdate>,
}

#[derive(Clone, Debug)]
pub enum Input {
    /// TCP is up; `local` is our end (default next hops come from it).
    Connected {
        local: SocketAddr,
    },
    /// A message whose header passed framing.
    Frame(Frame),
    /// Framing failed on the peer's bytes.
    BadFrame(BgpError),
    /// The peer closed TCP.
    Closed,
    /// The peer's TCP reset the connection (read or write).
    Reset,
    /// Reading the socket failed.
    ReadFailed(String),
    Timer(Timer),
    /// The routes we should announce now (the latest snapshot; may come in any state).
    Desired(Arc<DesiredRoutes>),
    /// Close the session with this reason.
    Stop(StopReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(Vec<u8>),
    /// (Re)start a timer to fire after the duration.
    Arm(Timer, Duration),
    Cancel(Timer),
    State(PeerState),
    Received(ReceivedUpdate),
    Log(Level, String),
    /// A per-peer route line (info) about one VIP.
    RouteLog(Arc<str>, String),
    /// The session is over. The driver waits until what was sent has left the socket when
    /// `drain` (withdrawals before Cease), sends `notification` if any, then closes.
    Close {
        notification: Option<Vec<u8>>,
        drain: bool,
        reason: EndReason,
    },
}

/// ROUTE-REFRESH bookkeeping: re-sends coalesced per family, logs rate-limited.
#[derive(Debug, Default)]
struct Refresh {
    pending: Vec<Family>,
    /// A summary window is running: requests are counted, not logged one by one.
    muted: bool,
    requests_in_window: u64,
    resends_in_window: u64,
    received: u64,
    resends: u64,
}

pub struct Fsm {
    setup: SessionSetup,
    timing: FsmTiming,
    name: Arc<str>,
    state: PeerState,
    /// Hold time we offer (config, with 1 and 2 raised to 3).
    our_hold: u16,
    /// Negotiated hold time in seconds; 0 disables both timers.
    hold: u16,
    /// The peer offered ROUTE-REFRESH (RFC 2918 / 7313): we may ask it to send its table again.
    peer_route_refresh: bool,
    peer_router_id: Option<Ipv4Addr>,
    local: Option<SocketAddr>,
    desired: Arc<DesiredRoutes>,
    sync: Sync,
    /// Families we already explained we cannot send to (logged once per peer, across sessions).
    explained: HashSet<Family>,
    refresh: Refresh,
    /// A KEEPALIVE or UPDATE went out in this step (RFC 4271 4.4 restarts the KeepaliveTimer).
    sent: bool,
    closed: bool,
    /// The initial table went out only in part (its first slice): the rest and End-of-RIB are
    /// due at the driver's next [`Fsm::continue_table`].
    table_pending: bool,
    out: Vec<Action>,
    /// What received UPDATEs carry (RFC 7911 path ids, AS width), from the OPENs.
    rx: RxParams,
}

impl Fsm {
    pub fn new(setup: SessionSetup, timing: FsmTiming, explained: HashSet<Family>) -> Fsm {
        let our_hold = setup.peer.hold_time.as_secs().min(u16::MAX as u64) as u16;
        // Hold times of 1 and 2 s are illegal (RFC 4271 4.2); config validation should prevent them.
        let our_hold = if our_hold == 1 || our_hold == 2 {
            3
        } else {
            our_hold
        };
        let name = setup.peer.name.clone();
        let path = PathParams {
            local_as: setup.local_as,
            ibgp: setup.local_as == setup.peer.remote_as,
            four_octet_as: true,
        };
        Fsm {
            sync: Sync {
                peer: name.clone(),
                path,
                next_hops: NextHops::default(),
                families: Vec::new(),
                rib: RibOut::default(),
            },
            setup,
            timing,
            name,
            state: PeerState::Connect,
            our_hold,
            hold: 0,
            peer_router_id: None,
            peer_route_refresh: false,
            local: None,
            desired: Arc::new(DesiredRoutes::default()),
            explained,
            refresh: Refresh::default(),
            sent: false,
            closed: false,
            table_pending: false,
            out: Vec::new(),
            rx: RxParams::default(),
        }
    }

    pub fn state(&self) -> PeerState {
        self.state
    }

    /// Negotiated hold time (0 before OpenConfirm, or when both sides chose 0).
    pub fn hold(&self) -> u16 {
        self.hold
    }

    pub fn families(&self) -> &[Family] {
        &self.sync.families
    }

    /// Asks the peer to send its routes of every negotiated family again (RFC 2918), if it
    /// offered the capability: a session taken over by an upgrade has an empty Adj-RIB-In, and
    /// the fleet view must not count on it. Without the capability the view stays incomplete and
    /// the guard holds (doubt) at that peer.
    pub fn request_tables(&mut self) -> Vec<Action> {
        if self.state != PeerState::Established || !self.peer_route_refresh {
            return Vec::new();
        }
        let families = self.sync.families.clone();
        for f in &families {
            self.send(encode::route_refresh(*f));
        }
        let list: Vec<String> = families.iter().map(|f| f.to_string()).collect();
        let msg = format!(
            "asked {} to send its routes again (ROUTE-REFRESH {}): the view of its paths starts empty after the upgrade",
            self.name,
            list.join(", ")
        );
        self.log(Level::Info, msg);
        std::mem::take(&mut self.out)
    }

    pub fn peer_router_id(&self) -> Option<Ipv4Addr> {
        self.peer_router_id
    }

    /// Prefixes the peer holds from us.
    pub fn announced(&self) -> usize {
        self.sync.rib.len()
    }

    /// (ROUTE-REFRESH requests received, re-sends done).
    pub fn route_refresh_counts(&self) -> (u64, u64) {
        (self.refresh.received, self.refresh.resends)
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How to read this session's UPDATEs (set once the peer's OPEN is accepted).
    pub fn rx(&self) -> RxParams {
        self.rx
    }

    pub fn into_explained(self) -> HashSet<Family> {
        self.explained
    }

    /// One input, the actions it causes, in order. After a `Close`, nothing more happens.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        if self.closed {
            return Vec::new();
        }
        self.sent = false;
        match input {
            Input::Connected { local } => self.connected(local),
            Input::Desired(d) => {
                self.desired = d;
                if self.state == PeerState::Established {
                    let b = self.sync.sync(&self.desired.clone());
                    self.emit(b);
                }
            }
            Input::Stop(r) => self.stop(r),
            Input::Timer(t) => self.timer(t),
            Input::Frame(f) => self.frame(f),
            Input::BadFrame(e) => self.fail(e),
            Input::Closed => self.close(None, false, EndReason::PeerClosed { state: self.state }),
            Input::Reset => self.close(None, false, EndReason::PeerReset { state: self.state }),
            Input::ReadFailed(e) => {
                self.close(None, false, EndReason::Io(format!("read failed: {e}")))
            }
        }
        self.finish()
    }

    /// The rest of the initial table and End-of-RIB, once the driver has written the first
    /// slice that [`Fsm::handle`] returned on Established; None when nothing is pending. A
    /// driver calls it after every `handle`, before waiting for the next input.
    pub fn continue_table(&mut self) -> Option<Vec<Action>> {
        if !std::mem::take(&mut self.table_pending)
            || self.closed
            || self.state != PeerState::Established
        {
            return None;
        }
        self.sent = false;
        // A change published meanwhile was already synced in full; this diff is what is left.
        let b = self.sync.sync(&self.desired.clone());
        self.emit(b);
        for f in self.sync.families.clone() {
            self.send(encode::end_of_rib(f));
        }
        Some(self.finish())
    }

    /// The step's actions, with the KeepaliveTimer restarted if a KEEPALIVE or UPDATE went out.
    fn finish(&mut self) -> Vec<Action> {
        if self.sent
            && !self.closed
            && self.hold > 0
            && matches!(self.state, PeerState::OpenConfirm | PeerState::Established)
        {
            self.out
                .push(Action::Arm(Timer::Keepalive, self.keepalive_interval()));
        }
        std::mem::take(&mut self.out)
    }

    fn hold_duration(&self) -> Duration {
        self.timing.second * self.hold as u32
    }

    fn keepalive_interval(&self) -> Duration {
        self.hold_duration() / 3
    }

    fn send(&mut self, m: Vec<u8>) {
        if matches!(m.get(18), Some(&wire::MSG_KEEPALIVE | &wire::MSG_UPDATE)) {
            self.sent = true;
        }
        self.out.push(Action::Send(m));
    }

    fn log(&mut self, level: Level, s: String) {
        self.out.push(Action::Log(level, s));
    }

    fn set_state(&mut self, s: PeerState) {
        self.state = s;
        self.out.push(Action::State(s));
    }

    fn emit(&mut self, b: Batch) {
        for m in b.messages {
            self.send(m);
        }
        for (level, s) in b.logs {
            self.log(level, s);
        }
        for (vip, s) in b.route_logs {
            self.out.push(Action::RouteLog(vip, s));
        }
    }

    fn close(&mut self, notification: Option<Vec<u8>>, drain: bool, reason: EndReason) {
        self.closed = true;
        for t in Timer::ALL {
            self.out.push(Action::Cancel(t));
        }
        self.out.push(Action::Close {
            notification,
            drain,
            reason,
        });
    }

    /// Sends the NOTIFICATION for `e` and closes.
    fn fail(&mut self, e: BgpError) {
        let n = encode::notification(e.code, &e.data);
        self.close(Some(n), false, EndReason::ProtocolError(e));
    }

    fn restart_hold_timer(&mut self) {
        if self.hold > 0 {
            self.out
                .push(Action::Arm(Timer::Hold, self.hold_duration()));
        }
    }

    fn connected(&mut self, local: SocketAddr) {
        if self.state != PeerState::Connect {
            return;
        }
        self.local = Some(local);
        match encode::open(self.setup.local_as, self.our_hold, self.setup.router_id) {
            Ok(open) => {
                self.send(open);
                self.set_state(PeerState::OpenSent);
                self.out
                    .push(Action::Arm(Timer::Hold, self.timing.open_hold));
            }
            Err(e) => self.close(
                None,
                false,
                EndReason::Local(format!("cannot build our OPEN: {e}")),
            ),
        }
    }

    fn stop(&mut self, r: StopReason) {
        let cease = encode::cease(r.cease(), r.text());
        // BFD down: the path is gone, withdrawals would only delay the close.
        if self.state == PeerState::Established && r != StopReason::BfdDown {
            let why = match &r {
                StopReason::Shutdown(t) => format!("shutting down: {t}"),
                other => other.to_string(),
            };
            let last = self.desired.clone();
            let b = self.sync.withdraw_everything(&last, &why);
            self.emit(b);
            let msg = format!("BGP session with {} closed: {r}", self.name);
            self.log(Level::Info, msg);
            self.close(Some(cease), true, EndReason::Stopped(r));
        } else {
            self.close(Some(cease), false, EndReason::Stopped(r));
        }
    }

    fn timer(&mut self, t: Timer) {
        match t {
            Timer::Hold => {
                let (after, what) = match self.state {
                    PeerState::OpenSent => (self.timing.open_hold, "no OPEN from peer in time"),
                    // A stale expiry (hold time 0 negotiated): nothing to do.
                    _ if self.hold == 0 => return,
                    _ => (self.hold_duration(), "hold timer expired"),
                };
                let e = BgpError::new(ErrorCode::HoldTimerExpired, Vec::new(), what);
                let n = encode::notification(e.code, &e.data);
                let state = self.state;
                self.close(Some(n), false, EndReason::HoldTimerExpired { state, after });
            }
            Timer::Keepalive => {
                if self.hold > 0
                    && matches!(self.state, PeerState::OpenConfirm | PeerState::Established)
                {
                    self.send(encode::keepalive());
                }
            }
            Timer::Refresh => {
                for f in std::mem::take(&mut self.refresh.pending) {
                    let (b, n) = self.sync.resend(f);
                    self.emit(b);
                    self.refresh.resends += 1;
                    self.refresh.resends_in_window += 1;
                    let msg = format!(
                        "route refresh for {f}: re-sent {n} prefixes to {}",
                        self.name
                    );
                    self.log(Level::Debug, msg);
                }
            }
            Timer::RefreshLog => {
                let r = &mut self.refresh;
                if r.requests_in_window == 0 {
                    r.muted = false;
                    return;
                }
                let msg = format!(
                    "{} more route refresh requests from {} in the last {} s, coalesced into {} re-sends",
                    r.requests_in_window,
                    self.name,
                    self.timing.refresh_log_window.as_secs_f64(),
                    r.resends_in_window
                );
                r.requests_in_window = 0;
                r.resends_in_window = 0;
                self.log(Level::Info, msg);
                self.out.push(Action::Arm(
                    Timer::RefreshLog,
                    self.timing.refresh_log_window,
                ));
            }
        }
    }

    fn frame(&mut self, f: Frame) {
        // A NOTIFICATION ends the session in any state.
        if f.msg_type == wire::MSG_NOTIFICATION {
            match wire::parse(&f, &DecodeCx::keep_all(self.rx)) {
                Ok(Message::Notification(n)) => {
                    self.close(None, false, EndReason::PeerNotification(n))
                }
                Ok(_) => {}
                Err(e) => self.fail(e),
            }
            return;
        }
        // The FSM check comes before the message is parsed: an OPEN on an Established session
        // is an FSM error (5/3) whatever its content.
        let expected = matches!(
            (self.state, f.msg_type),
            (PeerState::OpenSent, wire::MSG_OPEN)
                | (PeerState::OpenConfirm, wire::MSG_KEEPALIVE)
                | (
                    PeerState::Established,
                    wire::MSG_KEEPALIVE | wire::MSG_UPDATE | wire::MSG_ROUTE_REFRESH
                )
        );
        if !expected {
            return self.unexpected(f.msg_type);
        }
        // Our own reader of received routes (fleet view): VIP prefixes only, so memory does not
        // follow the router's table.
        let desired = self.desired.clone();
        let keep = |p: &Prefix| desired.vip_of(p).is_some();
        let cx = DecodeCx {
            rx: self.rx,
            keep: &keep,
        };
        let m = match wire::parse(&f, &cx) {
            Ok(m) => m,
            Err(e) => return self.fail(e),
        };
        match m {
            Message::Open(o) => self.accept_open(&o),
            Message::Keepalive if self.state == PeerState::OpenConfirm => self.established(),
            Message::Keepalive => self.restart_hold_timer(),
            Message::Update(u) => {
                self.restart_hold_timer();
                for e in &u.errors {
                    let (level, what) = match e {
                        AttrError::SessionReset { .. } => continue,
                        AttrError::Discard { .. } => (Level::Debug, "attribute discarded"),
                        AttrError::TreatAsWithdraw(_) => (Level::Warn, "treated as withdraw"),
                        AttrError::AfiSafiDisable { family, .. } => {
                            let msg = format!(
                                "malformed UPDATE from {}: its {family} routes are dropped and \
                                 ignored until the session restarts (RFC 7606): {}",
                                self.name,
                                e.why()
                            );
                            self.log(Level::Warn, msg);
                            continue;
                        }
                    };
                    let msg = format!(
                        "malformed UPDATE from {}: {what} (RFC 7606): {}",
                        self.name,
                        e.why()
                    );
                    self.log(level, msg);
                }
                if let Some(reset) = u.session_reset().and_then(AttrError::to_bgp_error) {
                    return self.fail(reset);
                }
                if let Some(f) = u.routes.end_of_rib {
                    let msg = format!("End-of-RIB from {} for {f}", self.name);
                    self.log(Level::Debug, msg);
                }
                self.out.push(Action::Received(ReceivedUpdate {
                    body: f.body,
                    routes: Box::new(u.routes),
                }));
            }
            Message::RouteRefresh(rr) => {
                self.restart_hold_timer();
                self.route_refresh(rr);
            }
            Message::Notification(_) => {}
        }
    }

    /// RFC 6608 subcode for a message the current state does not expect.
    fn unexpected(&mut self, msg_type: u8) {
        let sub = match self.state {
            PeerState::OpenSent => FsmError::UnexpectedInOpenSent,
            PeerState::OpenConfirm => FsmError::UnexpectedInOpenConfirm,
            _ => FsmError::UnexpectedInEstablished,
        };
        let what = format!("unexpected {} in {}", wire::type_name(msg_type), self.state);
        self.fail(BgpError::fsm(sub, what));
    }

    /// Validates the peer's OPEN against configuration and negotiates hold time and families.
    fn accept_open(&mut self, o: &Open) {
        let setup = &self.setup;
        if let Err(e) = o.check_peer(setup.peer.remote_as, setup.local_as, setup.router_id) {
            return self.fail(e);
        }
        self.sync.path.four_octet_as = o.four_octet_as.is_some();
        self.rx = RxParams::negotiate(&o.add_path, self.sync.path.four_octet_as);
        let theirs = o.families();
        self.sync.families = [Family::Ipv4Unicast, Family::Ipv6Unicast]
            .into_iter()
            .filter(|f| theirs.contains(f))
            .collect();
        if self.sync.families.is_empty() {
            return self.fail(BgpError::open(
                OpenError::UnsupportedCapability,
                vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1],
                "no address family in common (we speak IPv4 and IPv6 unicast)",
            ));
        }
        if !self.sync.path.four_octet_as && self.setup.local_as > 65535 {
            let msg = format!(
                "{} has no 4-octet AS support: our AS {} goes out as AS_TRANS 23456, with AS4_PATH (RFC 6793)",
                self.name, self.setup.local_as
            );
            self.log(Level::Info, msg);
        }
        if !o.other_capabilities.is_empty() {
            let msg = format!(
                "ignoring capabilities {:?} from {}",
                o.other_capabilities, self.name
            );
            self.log(Level::Debug, msg);
        }
        self.hold = self.our_hold.min(o.hold_time);
        self.peer_router_id = Some(o.router_id);
        self.peer_route_refresh = o.route_refresh || o.enhanced_route_refresh;
        self.send(encode::keepalive());
        self.set_state(PeerState::OpenConfirm);
        if self.hold > 0 {
            self.restart_hold_timer();
        } else {
            // Hold time 0: no hold timer and no KEEPALIVEs (RFC 4271 4.4). The OpenSent timer
            // must go too, or it would end the session minutes later.
            self.out.push(Action::Cancel(Timer::Hold));
            self.out.push(Action::Cancel(Timer::Keepalive));
        }
    }

    fn established(&mut self) {
        self.set_state(PeerState::Established);
        self.restart_hold_timer();
        let families = self
            .sync
            .families
            .iter()
            .map(Family::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let msg = format!(
            "BGP session with {} established: AS {}, hold time {} s, families {families}",
            self.name, self.setup.peer.remote_as, self.hold
        );
        self.log(Level::Info, msg);
        self.resolve_next_hops();
        // Initial table, then End-of-RIB for every negotiated family (RFC 4724 2). Its first
        // slice goes out now: computing a 100k-prefix table (target, diff, encoding, the
        // Adj-RIB-Out) takes 100+ ms, which the first UPDATEs need not wait for. The rest is
        // `continue_table`'s, right after the driver wrote these.
        let b = self.sync.sync_first(&self.desired.clone(), INITIAL_SLICE);
        self.emit(b);
        self.table_pending = true;
    }

    fn resolve_next_hops(&mut self) {
        let Some(local) = self.local.map(|a| a.ip()) else {
            return;
        };
        let unmapped = match local {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
            a => a,
        };
        let peer = &self.setup.peer;
        self.sync.next_hops = NextHops {
            v4: peer.next_hop_v4.or(match unmapped {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            }),
            v6: peer.next_hop_v6.or(match unmapped {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            }),
        };
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let why = if !self.sync.families.contains(&f) {
                format!("{} did not negotiate {f}", self.name)
            } else if self.sync.next_hops.get(f).is_none() {
                match f {
                    Family::Ipv4Unicast => format!(
                        "no IPv4 next hop: the session runs over IPv6 ({local}) and next_hop_v4 is not set"
                    ),
                    Family::Ipv6Unicast => format!(
                        "no IPv6 next hop: the session runs over IPv4 ({local}) and next_hop_v6 is not set"
                    ),
                }
            } else {
                continue;
            };
            if self.explained.insert(f) {
                let msg = format!("not announcing {f} routes to {}: {why}", self.name);
                self.log(Level::Warn, msg);
            }
        }
    }

    /// Coalesces re-sends (one pending per family) and rate-limits the log: the first request
    /// of a window is logged, the rest are counted and summarised when the window ends.
    fn route_refresh(&mut self, rr: RouteRefresh) {
        self.refresh.received += 1;
        let f = match rr.family() {
            Some(f) if rr.subtype == 0 && self.sync.families.contains(&f) => f,
            _ => {
                let msg = format!(
                    "ignoring ROUTE-REFRESH from {} for AFI {} SAFI {} subtype {}",
                    self.name, rr.afi, rr.safi, rr.subtype
                );
                return self.log(Level::Debug, msg);
            }
        };
        if !self.refresh.pending.contains(&f) {
            if self.refresh.pending.is_empty() {
                self.out
                    .push(Action::Arm(Timer::Refresh, self.timing.refresh_delay));
            }
            self.refresh.pending.push(f);
        }
        if self.refresh.muted {
            self.refresh.requests_in_window += 1;
            return;
        }
        self.refresh.muted = true;
        let n = self.sync.rib.prefixes(f).len();
        let msg = format!(
            "route refresh from {} for {f}: re-sending {n} prefixes (further requests within {} s are coalesced and counted)",
            self.name,
            self.timing.refresh_log_window.as_secs_f64()
        );
        self.log(Level::Info, msg);
        self.out.push(Action::Arm(
            Timer::RefreshLog,
            self.timing.refresh_log_window,
        ));
    }
}

mod handover;
pub use handover::{ExportedRoute, ExportedSession};

#[cfg(test)]
mod tests;
