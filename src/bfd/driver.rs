//! The BFD sessions' runtime: one dedicated OS thread with its own current-thread tokio runtime
//! owns every socket and timer, so a busy or blocked main runtime (a stalled log write, a slow
//! hook, an fsync) cannot delay a packet. It talks to the rest of the process only through
//! unbounded channels (commands in, reports out) and never logs: the consumer of `Report`s does.
//! Owns the demultiplexing of received packets to sessions and the per-peer counters.
//!
//! Reception: a task per local address reads datagrams and admits only those with TTL 255 from a
//! session's peer on that session's interface (`ingress`); only those enter a bounded queue to
//! the sessions (a flood fills it and is counted, never grows memory).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::Interest;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::auth::AuthConfig;
use super::ingress::{Arrival, Bindings};
use super::packet::{decode, encode_wire, RxError, State};
use super::session::{Action, Event, Session, SessionExport, Snapshot, StateChange, Timing};
use super::sock;

/// Admitted packets waiting for the sessions. At 300 ms intervals a handful of sessions queue a
/// few packets at most; more means a flood from a peer's address on its link.
const QUEUE: usize = 256;
/// While a session is not Up, how often the interface of the route to its peer is looked up
/// again (a link replaced under the same addresses gets a new ifindex).
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// One BFD session to set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// The BGP peer's name: reports carry it.
    pub name: Arc<str>,
    pub peer: IpAddr,
    /// Source address; None: the one the kernel routes from towards `peer`.
    pub local: Option<IpAddr>,
    pub timing: Timing,
    /// RFC 5880 6.7.4 authentication; None: packets with the A bit are discarded.
    pub auth: Option<AuthConfig>,
}

/// What status and metrics show for one peer's BFD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStatus {
    pub session: Option<Snapshot>,
    /// Our sending socket (source address and port).
    pub local: Option<SocketAddr>,
    /// The interface the session runs on (the route to the peer's): the only one it accepts
    /// packets from.
    pub ifindex: Option<u32>,
    /// Discarded packets attributed to this peer (by source address), by `RxError::label`.
    pub rx_errors: BTreeMap<&'static str, u64>,
    pub send_errors: u64,
    /// Why the session has no sockets yet (retried every second).
    pub setup_error: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Report {
    /// A state change, with the status right after it.
    Changed {
        peer: Arc<str>,
        change: StateChange,
        status: PeerStatus,
    },
    /// Counters and intervals, about once a second while they move.
    Status { peer: Arc<str>, status: PeerStatus },
    /// Packets that matched no peer, by error label (counts since start).
    Unattributed(BTreeMap<&'static str, u64>),
}

enum Cmd {
    Add(PeerSpec),
    Remove(Arc<str>),
    /// Send AdminDown now (planned stop); the reply comes once the packet left.
    AdminDown(Arc<str>, oneshot::Sender<()>),
    /// Planned stop, before the BGP Cease: keep sending as before but ignore what arrives and
    /// stop detecting, so a router that restarts its BFD session on the Cease cannot bring ours
    /// back Up just before our AdminDown (BIRD 2.0.12 would log that as a BFD failure).
    Quiesce(oneshot::Sender<()>),
    /// In-place upgrade: export every session, then wait for the verdict (true: released).
    Pause(
        oneshot::Sender<Result<Exported, String>>,
        oneshot::Receiver<bool>,
    ),
}

/// Why the BFD thread did not pause for an in-place upgrade.
#[derive(Debug)]
pub enum PauseError {
    /// The thread has ended.
    Gone,
    /// The thread refused to export (its reason).
    Refused(String),
    TimedOut {
        after: Duration,
    },
}

impl std::fmt::Display for PauseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PauseError::Gone => f.write_str("the BFD thread is gone"),
            PauseError::Refused(why) => f.write_str(why),
            PauseError::TimedOut { after } => {
                write!(f, "the BFD thread did not pause within {after:?}")
            }
        }
    }
}

impl std::error::Error for PauseError {}

/// One session as the in-place upgrade hands it over (`crate::handover`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportedSession {
    pub name: String,
    pub local: IpAddr,
    pub ifindex: u32,
    /// The sending socket (its source port stays the session's, RFC 5881 4).
    pub tx_fd: RawFd,
    pub tx_in: Option<Duration>,
    pub detect_in: Option<Duration>,
    pub session: SessionExport,
}

/// Every session and receiving socket of this process.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exported {
    pub sessions: Vec<ExportedSession>,
    /// UDP 3784 per local address.
    pub receivers: Vec<(IpAddr, RawFd)>,
}

/// A handed-over session, checked against this process's config.
pub struct Adopted {
    pub spec: PeerSpec,
    pub local: IpAddr,
    pub ifindex: u32,
    pub tx_fd: OwnedFd,
    pub tx_in: Option<Duration>,
    pub detect_in: Option<Duration>,
    pub session: Session,
}

/// What a new process takes over.
#[derive(Default)]
pub struct Inherited {
    pub sessions: Vec<Adopted>,
    pub receivers: Vec<(IpAddr, OwnedFd)>,
}

/// Handle to the BFD thread. Dropping it stops the thread.
pub struct Handle {
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl Handle {
    /// Starts the thread on the standard port 3784.
    pub fn start() -> io::Result<(Handle, mpsc::UnboundedReceiver<Report>)> {
        Self::start_on_port(sock::PORT)
    }

    /// As `start`, on another UDP port (tests run beside a real BFD speaker).
    pub fn start_on_port(port: u16) -> io::Result<(Handle, mpsc::UnboundedReceiver<Report>)> {
        Self::start_with(port, Inherited::default())
    }

    /// As `start`, continuing the sessions a replaced process handed over.
    pub fn start_inherited(
        inh: Inherited,
    ) -> io::Result<(Handle, mpsc::UnboundedReceiver<Report>)> {
        Self::start_with(sock::PORT, inh)
    }

    fn start_with(
        port: u16,
        inh: Inherited,
    ) -> io::Result<(Handle, mpsc::UnboundedReceiver<Report>)> {
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (rep_tx, rep_rx) = mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("vipwarden-bfd".into())
            .spawn(move || rt.block_on(Reactor::new(port, rep_tx).run(cmd_rx, inh)))?;
        Ok((Handle { cmds }, rep_rx))
    }

    /// In-place upgrade: every session exported; they keep running until the verdict is sent
    /// (true: released to the new process, this thread never sends again; false: resume).
    pub async fn pause(
        &self,
        max: Duration,
    ) -> Result<(Exported, oneshot::Sender<bool>), PauseError> {
        let (tx, rx) = oneshot::channel();
        let (vtx, vrx) = oneshot::channel();
        self.cmds
            .send(Cmd::Pause(tx, vrx))
            .map_err(|_| PauseError::Gone)?;
        match tokio::time::timeout(max, rx).await {
            Ok(Ok(Ok(e))) => Ok((e, vtx)),
            Ok(Ok(Err(e))) => Err(PauseError::Refused(e)),
            Ok(Err(_)) => Err(PauseError::Gone),
            Err(_) => Err(PauseError::TimedOut { after: max }),
        }
    }

    pub fn add(&self, spec: PeerSpec) {
        let _ = self.cmds.send(Cmd::Add(spec));
    }

    pub fn remove(&self, name: &Arc<str>) {
        let _ = self.cmds.send(Cmd::Remove(name.clone()));
    }

    /// Planned stop, before the Cease: every session ignores received packets from now on and
    /// stops detecting; transmission goes on. Waits at most `max`.
    pub async fn quiesce(&self, max: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Quiesce(tx)).is_ok() {
            let _ = tokio::time::timeout(max, rx).await;
        }
    }

    /// Sends AdminDown to the peer's router (planned stop) and waits, at most `max`, until it left.
    pub async fn admin_down(&self, name: &Arc<str>, max: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::AdminDown(name.clone(), tx)).is_ok() {
            let _ = tokio::time::timeout(max, rx).await;
        }
    }
}

struct Entry {
    spec: PeerSpec,
    local: IpAddr,
    ifindex: u32,
    resolved_at: Instant,
    session: Session,
    tx: tokio::net::UdpSocket,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    status: PeerStatus,
    reported: PeerStatus,
}

/// An admitted datagram and the session (local discriminator) its arrival binds it to.
struct RxPacket {
    id: u32,
    len: usize,
    buf: [u8; 128],
}

type Shared = Arc<Mutex<Bindings>>;

/// The bindings are only ever locked on the BFD thread, briefly: never contended.
fn lock(b: &Shared) -> std::sync::MutexGuard<'_, Bindings> {
    b.lock().unwrap_or_else(|e| e.into_inner())
}

struct Reactor {
    port: u16,
    reports: mpsc::UnboundedSender<Report>,
    entries: Vec<Entry>,
    /// Specs whose sockets could not be set up yet.
    pending: Vec<PeerSpec>,
    /// Per local address: the receiving task and its socket's fd (for the in-place upgrade).
    receivers: HashMap<IpAddr, (tokio::task::JoinHandle<()>, std::os::fd::RawFd)>,
    bindings: Shared,
    pkt_tx: mpsc::Sender<RxPacket>,
    pkt_rx: Option<mpsc::Receiver<RxPacket>>,
    unattributed: BTreeMap<&'static str, u64>,
    unattributed_reported: BTreeMap<&'static str, u64>,
    rng: StdRng,
    quiet: bool,
}

async fn receive_loop(
    sock: tokio::net::UdpSocket,
    local: IpAddr,
    bindings: Shared,
    out: mpsc::Sender<RxPacket>,
) {
    let fd = sock.as_raw_fd();
    let mut buf = [0u8; 128];
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        match sock.try_io(Interest::READABLE, || sock::recv_meta(fd, &mut buf)) {
            Ok(m) => {
                let arrival = Arrival {
                    local,
                    src: m.src.ip(),
                    ttl: m.ttl,
                    ifindex: m.ifindex,
                };
                let mut b = lock(&bindings);
                let id = match b.admit(&arrival) {
                    Ok(id) => id,
                    Err((who, e)) => {
                        b.count(who, e);
                        continue;
                    }
                };
                let pkt = RxPacket {
                    id,
                    len: m.len.min(buf.len()),
                    buf,
                };
                match out.try_send(pkt) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => b.count(Some(id), RxError::QueueFull),
                    Err(TrySendError::Closed(_)) => return,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // ICMP errors and the like: the next datagram is independent.
            Err(_) => {}
        }
    }
}

impl Reactor {
    fn new(port: u16, reports: mpsc::UnboundedSender<Report>) -> Reactor {
        let (pkt_tx, pkt_rx) = mpsc::channel(QUEUE);
        Reactor {
            port,
            reports,
            entries: Vec::new(),
            pending: Vec::new(),
            receivers: HashMap::new(),
            bindings: Shared::default(),
            pkt_tx,
            pkt_rx: Some(pkt_rx),
            unattributed: BTreeMap::new(),
            unattributed_reported: BTreeMap::new(),
            rng: StdRng::from_entropy(),
            quiet: false,
        }
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>, inh: Inherited) {
        self.adopt(inh);
        let mut pkts = self.pkt_rx.take().expect("taken once");
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self
                .entries
                .iter()
                .flat_map(|e| [e.tx_at, e.detect_at])
                .flatten()
                .min();
            let sleep = async move {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = sleep => self.fire_timers(),
                Some(p) = pkts.recv() => self.on_packet(&p),
                cmd = cmds.recv() => match cmd {
                    None => break,
                    Some(Cmd::Pause(reply, verdict)) => self.pause(reply, verdict).await,
                    Some(c) => self.on_cmd(c),
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
        for (_, (h, _)) in self.receivers.drain() {
            h.abort();
        }
    }

    fn on_cmd(&mut self, c: Cmd) {
        match c {
            // Handled in `run` (it waits).
            Cmd::Pause(..) => {}
            Cmd::Add(spec) => {
                // A session handed over by the replaced process, as configured: keep it.
                if self.entries.iter().any(|e| e.spec == spec) {
                    return;
                }
                self.remove(&spec.name);
                self.try_add(spec);
            }
            Cmd::Remove(name) => self.remove(&name),
            Cmd::Quiesce(done) => {
                self.quiet = true;
                for e in &mut self.entries {
                    e.detect_at = None;
                }
                let _ = done.send(());
            }
            Cmd::AdminDown(name, done) => {
                let now = Instant::now();
                if let Some(i) = self.entries.iter().position(|e| e.spec.name == name) {
                    self.event(i, Event::AdminDown, now);
                }
                let _ = done.send(());
            }
        }
    }

    fn remove(&mut self, name: &Arc<str>) {
        self.pending.retain(|s| &s.name != name);
        if let Some(i) = self.entries.iter().position(|e| &e.spec.name == name) {
            let e = self.entries.remove(i);
            lock(&self.bindings).unbind(e.session.local_discr());
            if !self.entries.iter().any(|o| o.local == e.local) {
                if let Some((h, _)) = self.receivers.remove(&e.local) {
                    h.abort();
                }
            }
        }
    }

    fn try_add(&mut self, spec: PeerSpec) {
        match self.setup(&spec) {
            Ok(entry) => {
                self.entries.push(entry);
                let i = self.entries.len() - 1;
                let _ = self.reports.send(Report::Status {
                    peer: spec.name.clone(),
                    status: self.entries[i].status.clone(),
                });
            }
            Err(e) => {
                let status = PeerStatus {
                    setup_error: Some(e.to_string()),
                    ..Default::default()
                };
                let _ = self.reports.send(Report::Status {
                    peer: spec.name.clone(),
                    status,
                });
                self.pending.push(spec);
            }
        }
    }

    fn setup(&mut self, spec: &PeerSpec) -> io::Result<Entry> {
        let local = match spec.local {
            Some(l) => l,
            None => sock::source_for(spec.peer)?,
        };
        let ifindex = sock::route_ifindex(spec.peer, local)?;
        if !self.receivers.contains_key(&local) {
            let rx = tokio::net::UdpSocket::from_std(sock::receiver(local, self.port)?)?;
            self.spawn_receiver(local, rx);
        }
        let start: u16 = self.rng.gen();
        let tx = sock::sender(local, SocketAddr::new(spec.peer, self.port), start)?;
        let tx = tokio::net::UdpSocket::from_std(tx)?;
        let discr = loop {
            let d: u32 = self.rng.gen();
            if d != 0 && !self.entries.iter().any(|e| e.session.local_discr() == d) {
                break d;
            }
        };
        let now = Instant::now();
        let (mut session, actions) = Session::new(spec.timing, discr, now);
        if let Some(a) = &spec.auth {
            session = session.with_auth(a.clone(), self.rng.gen());
        }
        let status = PeerStatus {
            session: Some(session.snapshot()),
            local: tx.local_addr().ok(),
            ifindex: Some(ifindex),
            ..Default::default()
        };
        lock(&self.bindings).bind(local, spec.peer, ifindex, discr);
        let mut e = Entry {
            spec: spec.clone(),
            local,
            ifindex,
            resolved_at: now,
            session,
            tx,
            tx_at: None,
            detect_at: None,
            reported: PeerStatus::default(),
            status,
        };
        for a in actions {
            if let Action::ArmTx(t) = a {
                e.tx_at = Some(t);
            }
        }
        Ok(e)
    }

    fn spawn_receiver(&mut self, local: IpAddr, rx: tokio::net::UdpSocket) {
        let fd = rx.as_raw_fd();
        let h = tokio::spawn(receive_loop(
            rx,
            local,
            self.bindings.clone(),
            self.pkt_tx.clone(),
        ));
        self.receivers.insert(local, (h, fd));
    }

    /// The in-place upgrade: every session and socket as the new process needs them. Sessions
    /// keep running in this process until the verdict (`pause`).
    fn export(&self) -> Result<Exported, String> {
        let now = Instant::now();
        if let Some(p) = self.pending.first() {
            return Err(format!("BFD session with {} has no sockets yet", p.name));
        }
        let mut sessions = Vec::new();
        for e in &self.entries {
            let session = e.session.export(now);
            let left = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(now));
            sessions.push(ExportedSession {
                name: e.spec.name.to_string(),
                local: e.local,
                ifindex: e.ifindex,
                tx_fd: e.tx.as_raw_fd(),
                tx_in: left(e.tx_at),
                detect_in: left(e.detect_at),
                session,
            });
        }
        let receivers = self
            .receivers
            .iter()
            .map(|(ip, (_, fd))| (*ip, *fd))
            .collect();
        Ok(Exported {
            sessions,
            receivers,
        })
    }

    /// Exports, then stops sending and detecting until the verdict: resume (the upgrade failed)
    /// or release (the new process has the sessions: this thread never sends again).
    async fn pause(
        &mut self,
        reply: oneshot::Sender<Result<Exported, String>>,
        verdict: oneshot::Receiver<bool>,
    ) {
        let exported = self.export();
        let ok = exported.is_ok();
        if reply.send(exported).is_err() || !ok {
            return;
        }
        if let Ok(true) = verdict.await {
            std::future::pending::<()>().await;
        }
    }

    /// Takes over sessions exported by the process this one replaced: same discriminators,
    /// state, sockets, and the timers where they were.
    fn adopt(&mut self, inh: Inherited) {
        let now = Instant::now();
        let udp = |fd: OwnedFd| {
            let s = std::net::UdpSocket::from(fd);
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        };
        for (local, fd) in inh.receivers {
            if let Ok(rx) = udp(fd) {
                self.spawn_receiver(local, rx);
            }
        }
        for a in inh.sessions {
            let tx = match udp(a.tx_fd) {
                Ok(t) => t,
                Err(_) => {
                    self.pending.push(a.spec);
                    continue;
                }
            };
            if !self.receivers.contains_key(&a.local) {
                if let Ok(rx) =
                    sock::receiver(a.local, self.port).and_then(tokio::net::UdpSocket::from_std)
                {
                    self.spawn_receiver(a.local, rx);
                }
            }
            lock(&self.bindings).bind(a.local, a.spec.peer, a.ifindex, a.session.local_discr());
            let status = PeerStatus {
                session: Some(a.session.snapshot()),
                local: tx.local_addr().ok(),
                ifindex: Some(a.ifindex),
                ..Default::default()
            };
            self.entries.push(Entry {
                spec: a.spec,
                local: a.local,
                ifindex: a.ifindex,
                resolved_at: now,
                session: a.session,
                tx,
                tx_at: Some(now + a.tx_in.unwrap_or_default()),
                detect_at: a.detect_in.map(|d| now + d),
                reported: PeerStatus::default(),
                status,
            });
        }
    }

    fn on_tick(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for spec in pending {
            self.try_add(spec);
        }
        self.collect_ingress_counts();
        self.re_resolve(Instant::now());
        for e in &mut self.entries {
            e.status.session = Some(e.session.snapshot());
            if e.status != e.reported {
                e.reported = e.status.clone();
                let _ = self.reports.send(Report::Status {
                    peer: e.spec.name.clone(),
                    status: e.status.clone(),
                });
            }
        }
        if self.unattributed != self.unattributed_reported {
            self.unattributed_reported = self.unattributed.clone();
            let _ = self
                .reports
                .send(Report::Unattributed(self.unattributed.clone()));
        }
    }

    /// Moves the discards counted before the queue into the peers' and the unattributed counts.
    fn collect_ingress_counts(&mut self) {
        let (per, unmatched) = lock(&self.bindings).take_counts();
        let add = |m: &mut BTreeMap<&'static str, u64>, c: BTreeMap<&'static str, u64>| {
            for (k, n) in c {
                *m.entry(k).or_default() += n;
            }
        };
        add(&mut self.unattributed, unmatched);
        for (id, c) in per {
            match self
                .entries
                .iter_mut()
                .find(|e| e.session.local_discr() == id)
            {
                Some(e) => add(&mut e.status.rx_errors, c),
                None => add(&mut self.unattributed, c),
            }
        }
    }

    /// Sessions not Up look up their peer's interface again now and then; an Up session keeps
    /// its binding (it is proven by the packets it gets).
    fn re_resolve(&mut self, now: Instant) {
        for e in &mut self.entries {
            if e.session.state() == State::Up || now - e.resolved_at < RESOLVE_EVERY {
                continue;
            }
            e.resolved_at = now;
            if let Ok(i) = sock::route_ifindex(e.spec.peer, e.local) {
                if i != e.ifindex {
                    e.ifindex = i;
                    e.status.ifindex = Some(i);
                    lock(&self.bindings).bind(e.local, e.spec.peer, i, e.session.local_discr());
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        for i in 0..self.entries.len() {
            if self.entries[i].detect_at.is_some_and(|t| t <= now) {
                self.entries[i].detect_at = None;
                self.event(i, Event::DetectTimer, now);
            }
            if self.entries[i].tx_at.is_some_and(|t| t <= now) {
                self.entries[i].tx_at = None;
                self.event(i, Event::TxTimer, now);
            }
        }
    }

    fn event(&mut self, i: usize, ev: Event, now: Instant) {
        let e = &mut self.entries[i];
        match e.session.handle(ev, now, &mut self.rng) {
            Ok(actions) => {
                for a in actions {
                    match a {
                        Action::Send(p) => {
                            if e.tx.try_send(encode_wire(&p).bytes()).is_err() {
                                e.status.send_errors += 1;
                            }
                        }
                        Action::ArmTx(t) => e.tx_at = Some(t),
                        Action::ArmDetect(t) => e.detect_at = if self.quiet { None } else { t },
                        Action::StateChange(change) => {
                            e.status.session = Some(e.session.snapshot());
                            e.reported = e.status.clone();
                            let _ = self.reports.send(Report::Changed {
                                peer: e.spec.name.clone(),
                                change,
                                status: e.status.clone(),
                            });
                        }
                    }
                }
            }
            Err(err) => *e.status.rx_errors.entry(err.label()).or_default() += 1,
        }
    }

    fn count(&mut self, entry: Option<usize>, err: RxError) {
        match entry {
            Some(i) => {
                *self.entries[i]
                    .status
                    .rx_errors
                    .entry(err.label())
                    .or_default() += 1
            }
            None => *self.unattributed.entry(err.label()).or_default() += 1,
        }
    }

    /// An admitted packet: to the session its arrival is bound to. Its Your Discriminator must
    /// then be that session's (or 0 while the session is not Up): `Session` checks.
    fn on_packet(&mut self, p: &RxPacket) {
        if self.quiet {
            return;
        }
        let Some(i) = self
            .entries
            .iter()
            .position(|e| e.session.local_discr() == p.id)
        else {
            // Removed while the packet was queued.
            return self.count(None, RxError::UnknownSource);
        };
        match decode(&p.buf[..p.len]) {
            Ok(pkt) => self.event(i, Event::Packet(pkt), Instant::now()),
            Err(e) => self.count(Some(i), e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, peer: &str, local: &str) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            peer: peer.parse().expect("ip"),
            local: Some(local.parse().expect("ip")),
            auth: None,
            timing: Timing {
                desired_min_tx: Duration::from_millis(50),
                required_min_rx: Duration::from_millis(50),
                detect_mult: 3,
            },
        }
    }

    async fn wait_state(
        r: &mut mpsc::UnboundedReceiver<Report>,
        want: State,
        max: Duration,
    ) -> StateChange {
        let end = tokio::time::Instant::now() + max;
        loop {
            match tokio::time::timeout_at(end, r.recv()).await {
                Ok(Some(Report::Changed { change, .. })) if change.to == want => return change,
                Ok(Some(_)) => {}
                _ => panic!("no change to {want} within {max:?}"),
            }
        }
    }

    /// Two BFD threads on 127.0.0.1 and 127.0.0.2 come Up; then the caller's runtime blocks its
    /// only thread for 1 s (6x the 150 ms detection time) and neither side notices; then one side
    /// sends AdminDown and the other goes Down without a failure.
    #[test]
    fn sessions_survive_a_blocked_main_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let port = 20000 + (std::process::id() % 20000) as u16;
            let (a, mut ra) = Handle::start_on_port(port).expect("a");
            let (b, mut rb) = Handle::start_on_port(port).expect("b");
            a.add(spec("b", "127.0.0.2", "127.0.0.1"));
            b.add(spec("a", "127.0.0.1", "127.0.0.2"));
            wait_state(&mut ra, State::Up, Duration::from_secs(5)).await;
            wait_state(&mut rb, State::Up, Duration::from_secs(5)).await;
            // Block this runtime's only thread: the BFD threads keep their own time.
            std::thread::sleep(Duration::from_millis(1000));
            let mut down = false;
            while let Ok(r) = ra.try_recv() {
                if let Report::Changed { change, .. } = r {
                    down |= change.to != State::Up;
                }
            }
            assert!(!down, "session went down while the caller was blocked");
            a.admin_down(&"b".into(), Duration::from_secs(1)).await;
            let c = wait_state(&mut rb, State::Down, Duration::from_secs(2)).await;
            assert!(!c.is_failure(), "{c:?}");
            // b's sender is still up, a is AdminDown: a ignores it; removing a leaves b to detect
            // silence as a plain Down (no state change from Down).
            a.remove(&"b".into());
            drop(b);
        });
    }

    /// Quiesced (planned stop), a session neither follows nor detects its peer: the peer going
    /// silent brings no state change.
    #[test]
    fn quiesced_sessions_ignore_the_peer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let port = 20000 + ((std::process::id() + 7) % 20000) as u16;
            let (a, mut ra) = Handle::start_on_port(port).expect("a");
            let (b, mut rb) = Handle::start_on_port(port).expect("b");
            a.add(spec("b", "127.0.0.4", "127.0.0.3"));
            b.add(spec("a", "127.0.0.3", "127.0.0.4"));
            wait_state(&mut ra, State::Up, Duration::from_secs(5)).await;
            wait_state(&mut rb, State::Up, Duration::from_secs(5)).await;
            b.quiesce(Duration::from_secs(1)).await;
            a.admin_down(&"b".into(), Duration::from_secs(1)).await;
            a.remove(&"b".into());
            tokio::time::sleep(Duration::from_millis(600)).await;
            while let Ok(r) = rb.try_recv() {
                assert!(
                    !matches!(r, Report::Changed { .. }),
                    "quiesced session changed: {r:?}"
                );
            }
        });
    }
}
