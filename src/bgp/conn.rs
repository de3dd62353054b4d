//! One TCP connection through the RFC 4271 section 8 states OpenSent -> OpenConfirm ->
//! Established, and the Adj-RIB-Out sync while Established.
//!
//! Reading goes through `FramedRead`, whose `next()` is cancel-safe inside `select!`. Writes are
//! never raced against anything: each `select!` only picks the next event, and the event is
//! handled after it returns.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::encode::{self, NextHop, PathParams};
use super::rib_in::{self, RibInEvent, RxParams};
use super::rib_out::{self, ChangeKind, Entry, RibOut};
use super::session::{PeerState, PeerStatus, SessionSetup, Timing};
use super::wire::{self, BgpCodec, BgpError, Frame, Message, Open, ReadError};
use crate::route::{DesiredRoutes, Family, Prefix};

pub(crate) struct Ctx<'a> {
    pub setup: &'a SessionSetup,
    pub timing: Timing,
    pub status: &'a watch::Sender<PeerStatus>,
    pub stop: &'a CancellationToken,
    pub stop_message: &'a Mutex<String>,
    pub explained: &'a mut HashSet<Family>,
}

pub(crate) enum Outcome {
    /// `stop` was cancelled and the session closed cleanly.
    Stopped,
    Failed {
        reason: String,
        /// When the session became Established, if it did.
        established_at: Option<Instant>,
    },
}

/// Ends the connection; `Err` carries why.
enum End {
    Stopped,
    Failed(String),
}

type Step<T> = Result<T, End>;

enum Event {
    Stop,
    Frame(Option<Result<Frame, ReadError>>),
    Desired(bool),
    HoldExpired,
    KeepaliveDue,
}

struct Conn<'a> {
    ctx: Ctx<'a>,
    name: Arc<str>,
    reader: FramedRead<OwnedReadHalf, BgpCodec>,
    writer: OwnedWriteHalf,
    local: SocketAddr,
    state: PeerState,
    /// Negotiated hold time in seconds; 0 disables both timers.
    hold: u16,
    hold_deadline: Option<tokio::time::Instant>,
    keepalive_deadline: Option<tokio::time::Instant>,
    families: Vec<Family>,
    path: PathParams,
    next_hop_v4: Option<Ipv4Addr>,
    next_hop_v6: Option<Ipv6Addr>,
    rib: RibOut,
    established_at: Option<Instant>,
    /// Received routes for the fleet view (RFC 7911 path ids as negotiated).
    rib_in: rib_in::Receiver,
}

pub(crate) async fn run(
    ctx: Ctx<'_>,
    stream: TcpStream,
    desired: &mut watch::Receiver<Arc<DesiredRoutes>>,
) -> Outcome {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Failed {
                reason: format!("cannot read the socket's local address: {e}"),
                established_at: None,
            }
        }
    };
    let (r, w) = stream.into_split();
    let setup = ctx.setup;
    let mut c = Conn {
        name: setup.peer.name.clone(),
        reader: FramedRead::new(r, BgpCodec),
        writer: w,
        local,
        state: PeerState::Connect,
        hold: 0,
        hold_deadline: None,
        keepalive_deadline: None,
        families: Vec::new(),
        path: PathParams {
            local_as: setup.local_as,
            ibgp: setup.local_as == setup.peer.remote_as,
            four_octet_as: true,
        },
        next_hop_v4: None,
        next_hop_v6: None,
        rib: RibOut::default(),
        established_at: None,
        rib_in: rib_in::Receiver::default(),
        ctx,
    };
    let end = match c.handshake().await {
        Ok(()) => c.established(desired).await,
        Err(e) => e,
    };
    if c.established_at.is_some() {
        c.feed(RibInEvent::Down {
            peer: c.name.clone(),
        })
        .await;
    }
    match end {
        End::Stopped => Outcome::Stopped,
        End::Failed(reason) => Outcome::Failed {
            reason,
            established_at: c.established_at,
        },
    }
}

/// Sleeps until the deadline, or forever without one.
async fn sleep_opt(d: Option<tokio::time::Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Conn<'_> {
    fn set_state(&mut self, s: PeerState) {
        self.state = s;
        self.ctx.status.send_modify(|st| st.state = s);
    }

    fn secs(&self, n: u16) -> Duration {
        self.ctx.timing.second * n as u32
    }

    /// A write that cannot hang the session forever when the peer stops reading.
    async fn send(&mut self, bytes: &[u8]) -> Step<()> {
        let limit = if self.hold > 0 {
            self.secs(self.hold)
        } else {
            Duration::from_secs(30)
        };
        match tokio::time::timeout(limit, self.writer.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(End::Failed(format!("write failed: {e}"))),
            Err(_) => {
                return Err(End::Failed(format!(
                    "write blocked for {} s (peer not reading)",
                    limit.as_secs_f64()
                )))
            }
        }
        if self.hold > 0 && bytes.get(18) != Some(&wire::MSG_NOTIFICATION) {
            // RFC 4271 4.4: sending KEEPALIVE or UPDATE restarts the KeepaliveTimer.
            self.keepalive_deadline = Some(tokio::time::Instant::now() + self.secs(self.hold) / 3);
        }
        Ok(())
    }

    async fn send_update(&mut self, m: &[u8]) -> Step<()> {
        self.send(m).await?;
        self.ctx.status.send_modify(|s| s.updates_sent += 1);
        Ok(())
    }

    /// Sends the NOTIFICATION for `e`, closes, and reports `e` as the reason.
    async fn fail(&mut self, e: BgpError) -> End {
        self.notify_and_close(&encode::notification(e.code, e.subcode, &e.data))
            .await;
        End::Failed(format!("we sent NOTIFICATION: {e}"))
    }

    /// Best effort: the session is ending either way.
    async fn notify_and_close(&mut self, notification: &[u8]) {
        if self.send(notification).await.is_err() {
            return;
        }
        let _ = self.writer.flush().await;
        wait_sent(self.writer.as_ref(), self.ctx.timing.drain).await;
        let _ = self.writer.shutdown().await;
        // Read until the peer closes too: closing with unread data would send a RST, which can
        // make the peer drop our NOTIFICATION unread. Raw reads, because nothing after our
        // NOTIFICATION matters and the framer may have failed on the bytes that caused it.
        let sock = self.reader.get_mut();
        let _ = tokio::time::timeout(self.ctx.timing.linger, async {
            let mut scratch = [0u8; 4096];
            while matches!(sock.read(&mut scratch).await, Ok(n) if n > 0) {}
        })
        .await;
    }

    async fn next_event(
        &mut self,
        desired: Option<&mut watch::Receiver<Arc<DesiredRoutes>>>,
    ) -> Event {
        let hold = self.hold_deadline;
        let ka = self.keepalive_deadline;
        let watching = desired.is_some();
        let changed = async {
            match desired {
                Some(d) => d.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        // Biased, in this order: stop always wins; our KEEPALIVEs go out even while the peer
        // floods us; route changes are rare so they cannot starve reading; the hold timer comes
        // last so that a KEEPALIVE already buffered is read before the timer is judged.
        tokio::select! {
            biased;
            _ = self.ctx.stop.cancelled() => Event::Stop,
            _ = sleep_opt(ka) => Event::KeepaliveDue,
            ok = changed, if watching => Event::Desired(ok),
            f = self.reader.next() => Event::Frame(f),
            _ = sleep_opt(hold) => Event::HoldExpired,
        }
    }

    fn restart_hold_timer(&mut self) {
        if self.hold > 0 {
            self.hold_deadline = Some(tokio::time::Instant::now() + self.secs(self.hold));
        }
    }

    /// Turns a received frame into a message, or ends the session with the right NOTIFICATION.
    async fn receive(&mut self, f: Option<Result<Frame, ReadError>>) -> Step<Message> {
        let frame = match f {
            None => {
                return Err(End::Failed(format!(
                    "peer closed the connection in {}",
                    self.state
                )))
            }
            Some(Err(ReadError::Io(e))) => return Err(End::Failed(format!("read failed: {e}"))),
            Some(Err(ReadError::Protocol(e))) => return Err(self.fail(e).await),
            Some(Ok(f)) => f,
        };
        match wire::parse(&frame) {
            // Logged (with its name and any shutdown text) when the session loop reports the end.
            Ok(Message::Notification(n)) => Err(End::Failed(format!("peer sent NOTIFICATION {n}"))),
            Ok(m) => Ok(m),
            Err(e) => Err(self.fail(e).await),
        }
    }

    /// RFC 6608 subcode for a message the current state does not expect.
    async fn unexpected(&mut self, m: &Message) -> End {
        let sub = match self.state {
            PeerState::OpenSent => 1,
            PeerState::OpenConfirm => 2,
            _ => 3,
        };
        let kind = match m {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::Keepalive => "KEEPALIVE",
            Message::RouteRefresh(_) => "ROUTE-REFRESH",
        };
        let what = format!("unexpected {kind} in {}", self.state);
        self.fail(BgpError::new(5, sub, Vec::new(), what)).await
    }

    fn stop_text(&self) -> String {
        match self.ctx.stop_message.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn stop_before_established(&mut self) -> End {
        let text = self.stop_text();
        self.notify_and_close(&encode::admin_shutdown(&text)).await;
        End::Stopped
    }

    /// OpenSent and OpenConfirm.
    async fn handshake(&mut self) -> Step<()> {
        let setup = self.ctx.setup;
        let our_hold = setup.peer.hold_time.as_secs().min(u16::MAX as u64) as u16;
        // Hold times of 1 and 2 s are illegal (RFC 4271 4.2); config validation should prevent them.
        let our_hold = if our_hold == 1 || our_hold == 2 {
            3
        } else {
            our_hold
        };
        let open = match encode::open(setup.local_as, our_hold, setup.router_id) {
            Ok(o) => o,
            Err(e) => return Err(End::Failed(format!("cannot build our OPEN: {e}"))),
        };
        self.set_state(PeerState::OpenSent);
        self.send(&open).await?;
        self.hold_deadline = Some(tokio::time::Instant::now() + self.ctx.timing.open_hold);

        let peer_open = loop {
            match self.next_event(None).await {
                Event::Stop => return Err(self.stop_before_established().await),
                Event::HoldExpired => {
                    let e = BgpError::new(4, 0, Vec::new(), "no OPEN from peer in time");
                    return Err(self.fail(e).await);
                }
                Event::KeepaliveDue | Event::Desired(_) => {}
                Event::Frame(f) => match self.receive(f).await? {
                    Message::Open(o) => break o,
                    m => return Err(self.unexpected(&m).await),
                },
            }
        };
        self.accept_open(&peer_open, our_hold).await?;
        self.send(&encode::keepalive()).await?;
        self.set_state(PeerState::OpenConfirm);
        self.restart_hold_timer();

        loop {
            match self.next_event(None).await {
                Event::Stop => return Err(self.stop_before_established().await),
                Event::HoldExpired => {
                    let e = BgpError::new(4, 0, Vec::new(), "hold timer expired in OpenConfirm");
                    return Err(self.fail(e).await);
                }
                Event::KeepaliveDue => self.send(&encode::keepalive()).await?,
                Event::Desired(_) => {}
                Event::Frame(f) => match self.receive(f).await? {
                    Message::Keepalive => return Ok(()),
                    m => return Err(self.unexpected(&m).await),
                },
            }
        }
    }

    /// Validates the peer's OPEN against configuration and negotiates hold time and families.
    async fn accept_open(&mut self, o: &Open, our_hold: u16) -> Step<()> {
        let setup = self.ctx.setup;
        if let Err(e) = o.check_peer(setup.peer.remote_as, setup.local_as, setup.router_id) {
            return Err(self.fail(e).await);
        }
        self.path.four_octet_as = o.four_octet_as.is_some();
        if !self.path.four_octet_as && setup.local_as > 65535 {
            let mut data = vec![65, 4];
            data.extend_from_slice(&setup.local_as.to_be_bytes());
            let e = BgpError::new(
                2,
                7,
                data,
                format!(
                    "peer lacks 4-octet AS support, needed for our AS {}",
                    setup.local_as
                ),
            );
            return Err(self.fail(e).await);
        }
        let theirs = o.families();
        self.families = [Family::Ipv4Unicast, Family::Ipv6Unicast]
            .into_iter()
            .filter(|f| theirs.contains(f))
            .collect();
        if self.families.is_empty() {
            let e = BgpError::new(
                2,
                7,
                vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1],
                "no address family in common (we speak IPv4 and IPv6 unicast)",
            );
            return Err(self.fail(e).await);
        }
        self.rib_in =
            rib_in::Receiver::new(RxParams::negotiate(&o.add_path, self.path.four_octet_as));
        self.hold = our_hold.min(o.hold_time);
        let families = self.families.clone();
        let hold = self.hold;
        self.ctx.status.send_modify(|s| {
            s.negotiated_hold_time = Some(hold);
            s.peer_router_id = Some(o.router_id);
            s.families = families;
        });
        if !o.other_capabilities.is_empty() {
            debug!(peer = %self.name, "ignoring capabilities {:?} from {}", o.other_capabilities, self.name);
        }
        Ok(())
    }

    fn resolve_next_hops(&mut self) {
        let peer = &self.ctx.setup.peer;
        let local = match self.local.ip() {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
            a => a,
        };
        self.next_hop_v4 = peer.next_hop_v4.or(match local {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        });
        self.next_hop_v6 = peer.next_hop_v6.or(match local {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        });
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let why = if !self.families.contains(&f) {
                Some(format!("{} did not negotiate {f}", self.name))
            } else if self.next_hop(f).is_none() {
                Some(match f {
                    Family::Ipv4Unicast => format!(
                        "no IPv4 next hop: the session runs over IPv6 ({}) and next_hop_v4 is not set",
                        self.local.ip()
                    ),
                    Family::Ipv6Unicast => format!(
                        "no IPv6 next hop: the session runs over IPv4 ({}) and next_hop_v6 is not set",
                        self.local.ip()
                    ),
                })
            } else {
                None
            };
            if let Some(why) = why {
                if self.ctx.explained.insert(f) {
                    warn!(peer = %self.name, "not announcing {f} routes to {}: {why}", self.name);
                }
            }
        }
    }

    fn next_hop(&self, f: Family) -> Option<NextHop> {
        match f {
            Family::Ipv4Unicast => self.next_hop_v4.map(NextHop::V4),
            Family::Ipv6Unicast => self.next_hop_v6.map(NextHop::V6),
        }
    }

    fn sendable(&self, f: Family) -> bool {
        self.families.contains(&f) && self.next_hop(f).is_some()
    }

    async fn established(&mut self, desired: &mut watch::Receiver<Arc<DesiredRoutes>>) -> End {
        self.set_state(PeerState::Established);
        self.restart_hold_timer();
        self.established_at = Some(Instant::now());
        self.ctx
            .status
            .send_modify(|s| s.established_since = Some(SystemTime::now()));
        let families = self
            .families
            .iter()
            .map(Family::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        info!(
            peer = %self.name,
            "BGP session with {} established: AS {}, hold time {} s, families {families}",
            self.name, self.ctx.setup.peer.remote_as, self.hold
        );
        self.resolve_next_hops();
        let rx = self.rib_in.rx;
        self.feed(RibInEvent::Up {
            peer: self.name.clone(),
            add_path_v4: rx.add_path_v4,
            add_path_v6: rx.add_path_v6,
        })
        .await;
        match self.serve(desired).await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn serve(
        &mut self,
        desired: &mut watch::Receiver<Arc<DesiredRoutes>>,
    ) -> Step<std::convert::Infallible> {
        // Initial table, then End-of-RIB for every negotiated family (RFC 4724 2).
        let snapshot = desired.borrow_and_update().clone();
        self.sync(&snapshot).await?;
        for f in self.families.clone() {
            self.send_update(&encode::end_of_rib(f)).await?;
        }
        let mut last = snapshot;
        let mut watching = true;
        loop {
            let ev = self.next_event(watching.then_some(&mut *desired)).await;
            match ev {
                Event::Stop => return Err(self.shutdown(&last).await),
                Event::HoldExpired => {
                    let e = BgpError::new(
                        4,
                        0,
                        Vec::new(),
                        format!("hold timer expired: nothing from peer for {} s", self.hold),
                    );
                    return Err(self.fail(e).await);
                }
                Event::KeepaliveDue => self.send(&encode::keepalive()).await?,
                Event::Desired(false) => {
                    // The publisher is gone (daemon shutting down): keep what the peer has.
                    watching = false;
                }
                Event::Desired(true) => {
                    last = desired.borrow_and_update().clone();
                    self.sync(&last).await?;
                }
                Event::Frame(f) => {
                    let update = match &f {
                        Some(Ok(fr)) if fr.msg_type == wire::MSG_UPDATE => Some(fr.body.clone()),
                        _ => None,
                    };
                    let m = self.receive(f).await?;
                    self.on_message(m).await?;
                    if let Some(body) = update {
                        self.received_routes(&body, &last).await?;
                    }
                }
            }
        }
    }

    /// An UPDATE's routes for the fleet view: VIP prefixes only; RFC 7606 session-reset errors
    /// close the session, the rest is treat-as-withdraw (counted).
    async fn received_routes(&mut self, body: &[u8], desired: &DesiredRoutes) -> Step<()> {
        if self.ctx.setup.rib_in.is_none() {
            return Ok(());
        }
        let vips = &desired.vip_prefixes;
        let keep = |p: &Prefix| vips.values().any(|ps| ps.contains(p));
        match self.rib_in.on_update(body, &keep) {
            Ok(None) => Ok(()),
            Ok(Some(update)) => {
                if let Some(why) = &update.treat_as_withdraw {
                    warn!(peer = %self.name, "malformed UPDATE from {}: treated as withdraw (RFC 7606): {why}", self.name);
                }
                for (f, why) in &update.disable {
                    warn!(peer = %self.name, "malformed UPDATE from {}: {f} routes dropped and ignored until the session restarts (RFC 7606): {why}", self.name);
                }
                self.feed(RibInEvent::Update {
                    peer: self.name.clone(),
                    update: Box::new(update),
                })
                .await;
                Ok(())
            }
            Err(e) => {
                let (code, sub, data) = e.notification();
                Err(self
                    .fail(BgpError::new(code, sub, data, e.to_string()))
                    .await)
            }
        }
    }

    /// Hands an event to the fleet view, if the daemon wants them.
    async fn feed(&self, ev: RibInEvent) {
        if let Some(tx) = &self.ctx.setup.rib_in {
            let _ = tx.send(ev).await;
        }
    }

    async fn on_message(&mut self, m: Message) -> Step<()> {
        match m {
            Message::Keepalive => self.restart_hold_timer(),
            Message::Update(u) => {
                self.restart_hold_timer();
                self.ctx.status.send_modify(|s| s.updates_received += 1);
                // With path ids in the NLRI, wire's plain prefix walk misreads them; rib_in
                // reads such UPDATEs (and reports its own errors).
                let add_path = self.rib_in.rx.add_path_v4 || self.rib_in.rx.add_path_v6;
                if let (Some(why), false) = (u.malformed, add_path) {
                    debug!(peer = %self.name, "malformed UPDATE from {} ignored (RFC 7606 treat-as-withdraw): {why}", self.name);
                } else if let Some((afi, safi)) = u.end_of_rib {
                    debug!(peer = %self.name, "End-of-RIB from {} for AFI {afi} SAFI {safi}", self.name);
                }
            }
            Message::RouteRefresh(rr) => {
                self.restart_hold_timer();
                match rr.family() {
                    Some(f) if rr.subtype == 0 && self.families.contains(&f) => {
                        self.resend(f).await?;
                    }
                    _ => debug!(
                        peer = %self.name,
                        "ignoring ROUTE-REFRESH from {} for AFI {} SAFI {} subtype {}",
                        self.name, rr.afi, rr.safi, rr.subtype
                    ),
                }
            }
            m @ (Message::Open(_) | Message::Notification(_)) => {
                return Err(self.unexpected(&m).await)
            }
        }
        Ok(())
    }

    /// ROUTE-REFRESH: re-send everything of one family as it is in the Adj-RIB-Out.
    async fn resend(&mut self, f: Family) -> Step<()> {
        let Some(nh) = self.next_hop(f) else {
            return Ok(());
        };
        let mut n = 0;
        for (attrs, prefixes) in self.rib.groups(f) {
            match encode::announce(&self.path, &attrs, nh, &prefixes) {
                Ok(ms) => {
                    for m in &ms {
                        self.send_update(m).await?;
                    }
                    n += prefixes.len();
                }
                Err(e) => {
                    warn!(peer = %self.name, "cannot re-send {f} routes to {}: {e}", self.name)
                }
            }
        }
        info!(peer = %self.name, "route refresh from {} for {f}: re-sent {n} prefixes", self.name);
        Ok(())
    }

    /// Brings the peer's Adj-RIB-Out to `desired`, sending only what differs.
    async fn sync(&mut self, desired: &DesiredRoutes) -> Step<()> {
        let target = rib_out::target(desired, |f| self.sendable(f));
        let diff = self.rib.diff(&target);
        if diff.is_empty() {
            return Ok(());
        }
        // Withdraws first: the peer never holds more than the union of old and new.
        let mut withdrawn: Vec<(Prefix, Arc<str>)> = Vec::new();
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let ps: Vec<Prefix> = diff
                .withdraw
                .iter()
                .filter(|p| p.family() == f)
                .copied()
                .collect();
            if ps.is_empty() {
                continue;
            }
            match encode::withdraw(self.path.local_as, f, &ps) {
                Ok(ms) => {
                    for m in &ms {
                        self.send_update(m).await?;
                    }
                    for p in ps {
                        if let Some(e) = self.rib.remove(&p) {
                            let vip = desired.vip_of(&p).cloned().unwrap_or(e.vip);
                            withdrawn.push((p, vip));
                        }
                    }
                }
                Err(e) => {
                    warn!(peer = %self.name, "cannot withdraw {f} routes from {}: {e}", self.name)
                }
            }
        }
        let added = self.announce(&diff.add).await?;
        let changed = self.announce(&diff.change).await?;
        let count = self.rib.len();
        self.ctx
            .status
            .send_modify(|s| s.prefixes_announced = count);
        for (kind, items) in [
            (ChangeKind::Withdrew, &withdrawn),
            (ChangeKind::Announced, &added),
            (ChangeKind::Changed, &changed),
        ] {
            for line in rib_out::change_log(&self.name, kind, items, desired) {
                info!(peer = %self.name, "{line}");
            }
        }
        Ok(())
    }

    /// Announces routes grouped by family and attributes; returns what went out, for logs.
    async fn announce(&mut self, routes: &[(Prefix, Entry)]) -> Step<Vec<(Prefix, Arc<str>)>> {
        let mut sent = Vec::new();
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let Some(nh) = self.next_hop(f) else {
                continue;
            };
            let groups = rib_out::group(
                routes
                    .iter()
                    .filter(|(p, _)| p.family() == f)
                    .map(|(p, e)| (*p, &e.attrs)),
            );
            for (attrs, prefixes) in groups {
                match encode::announce(&self.path, &attrs, nh, &prefixes) {
                    Ok(ms) => {
                        for m in &ms {
                            self.send_update(m).await?;
                        }
                        let by_prefix: BTreeMap<Prefix, &Entry> =
                            routes.iter().map(|(p, e)| (*p, e)).collect();
                        for p in prefixes {
                            if let Some(e) = by_prefix.get(&p) {
                                self.rib.insert(p, (*e).clone());
                                sent.push((p, e.vip.clone()));
                            }
                        }
                    }
                    // Only local limits (e.g. too many communities) get here; skip those routes.
                    Err(e) => warn!(
                        peer = %self.name,
                        "cannot announce {} {f} prefixes to {}: {e}",
                        prefixes.len(),
                        self.name
                    ),
                }
            }
        }
        Ok(sent)
    }

    /// Stop while Established: withdraw everything, make sure it left, then Cease 6/2.
    async fn shutdown(&mut self, last: &DesiredRoutes) -> End {
        let text = self.stop_text();
        let mut withdrawn = Vec::new();
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let ps = self.rib.prefixes(f);
            if ps.is_empty() {
                continue;
            }
            match encode::withdraw(self.path.local_as, f, &ps) {
                Ok(ms) => {
                    for m in &ms {
                        if let Err(End::Failed(e)) = self.send_update(m).await {
                            warn!(peer = %self.name, "withdrawing from {} on stop failed: {e}", self.name);
                            return End::Stopped;
                        }
                    }
                    for p in ps {
                        if let Some(e) = self.rib.remove(&p) {
                            withdrawn.push((p, last.vip_of(&p).cloned().unwrap_or(e.vip)));
                        }
                    }
                }
                Err(e) => {
                    warn!(peer = %self.name, "cannot withdraw {f} routes from {}: {e}", self.name)
                }
            }
        }
        let _ = self.writer.flush().await;
        let drained = wait_sent(self.writer.as_ref(), self.ctx.timing.drain).await;
        let mut reason = DesiredRoutes::default();
        for (_, vip) in &withdrawn {
            reason
                .reasons
                .insert(vip.clone(), format!("shutting down: {text}"));
        }
        for line in rib_out::change_log(&self.name, ChangeKind::Withdrew, &withdrawn, &reason) {
            info!(peer = %self.name, "{line}");
        }
        if !drained {
            warn!(peer = %self.name, "withdraws to {} not acknowledged within {} s; closing anyway",
                self.name, self.ctx.timing.drain.as_secs_f64());
        }
        self.ctx.status.send_modify(|s| s.prefixes_announced = 0);
        self.notify_and_close(&encode::admin_shutdown(&text)).await;
        info!(peer = %self.name, "BGP session with {} closed: administrative shutdown \"{text}\"", self.name);
        End::Stopped
    }
}

/// Waits until the kernel send queue is empty (everything sent and acknowledged by the peer's
/// TCP), or `limit` passes. Returns whether it emptied.
async fn wait_sent(stream: &TcpStream, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        match unacked_bytes(stream) {
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

/// Bytes in the socket's send queue not yet acknowledged (SIOCOUTQ/TIOCOUTQ).
#[cfg(target_os = "linux")]
fn unacked_bytes(stream: &TcpStream) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one c_int through the pointer, which points to a live local.
    let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n.max(0) as usize)
}

#[cfg(not(target_os = "linux"))]
fn unacked_bytes(_stream: &TcpStream) -> Option<usize> {
    None
}
