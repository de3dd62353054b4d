//! A VIP's route state on top of its health: announced, draining, withdrawn or maintenance.
//!
//! Health says whether the VIP *should* carry traffic; the lifecycle decides how the route gets
//! there. A graceful drain keeps the route for `drain_period` with RFC 8326 GRACEFUL_SHUTDOWN (and
//! optional de-preference attributes) so routers move traffic away before the withdrawal; a
//! withdraw drain removes it at once. Maintenance (operator drain) outranks health; a planned stop
//! outranks both.
//!
//! Connection-aware drains (`drain_until_connections` set; the configuration's default is 0): the
//! established connections on the VIP are an input like a check result (`observe_connections`);
//! the drain ends when they fall to the threshold (not before `drain_min`) or at `drain_period`,
//! whichever is first. Without a count (sock_diag unavailable, no TCP listener on the VIP) it is a
//! timed drain, and the reason says why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fmt::format_duration;

pub(super) mod handover;
use super::vip_state::VipState;
pub use handover::LifecycleExport;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DrainStrategy {
    /// Remove the route at once.
    #[default]
    Withdraw,
    /// Keep it de-preferred for `drain_period`, then remove it.
    Graceful,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnUnhealthy {
    /// Unhealthy VIPs are drained (per `drain`) and withdrawn.
    #[default]
    Withdraw,
    /// Unhealthy VIPs stay announced, de-preferred, for as long as they are unhealthy.
    Depreference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleSpec {
    pub drain: DrainStrategy,
    pub drain_period: Duration,
    pub on_unhealthy: OnUnhealthy,
    pub shutdown: DrainStrategy,
    /// End a graceful drain early once at most this many connections remain (None: timed only,
    /// `drain_until_connections: off`).
    pub drain_until_connections: Option<u32>,
    /// The shortest connection-aware drain, so routers converge before the route goes.
    pub drain_min: Duration,
    /// A connection that has received nothing for this long no longer holds the drain (None:
    /// every established connection does). The counter applies it; the engine reports it.
    pub drain_idle: Option<Duration>,
}

/// The established connections on a VIP, as last counted.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Connections {
    /// Not counted (yet).
    #[default]
    Unknown,
    /// `holding` connections keep the drain going; `silent` ones (nothing received for
    /// `drain_idle`) are reported but do not.
    Count { holding: u32, silent: u32 },
    /// Counting is not possible; the drain runs for `drain_period`.
    Unavailable(String),
}

impl Default for LifecycleSpec {
    fn default() -> Self {
        LifecycleSpec {
            drain: DrainStrategy::Withdraw,
            drain_period: Duration::from_secs(30),
            on_unhealthy: OnUnhealthy::Withdraw,
            shutdown: DrainStrategy::Withdraw,
            drain_until_connections: None,
            drain_min: Duration::ZERO,
            drain_idle: None,
        }
    }
}

impl Connections {
    /// ", 3 more silent for 2s+" when some connections were left out as silent.
    fn silent_note(&self, idle: Option<Duration>) -> String {
        match (self, idle) {
            (Connections::Count { silent, .. }, Some(idle)) if *silent > 0 => {
                format!(", {silent} more silent for {}+", format_duration(idle))
            }
            _ => String::new(),
        }
    }
}

/// Where the inputs say the VIP should end up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Up,
    Depreferred,
    Gone(VipState),
}

#[derive(Clone, Debug)]
pub struct Lifecycle {
    /// Shared by the VIPs of one policy.
    pub spec: Arc<LifecycleSpec>,
    pub state: VipState,
    pub since: Instant,
    /// Shared with the route tables and the status view, which show it per VIP.
    pub reason: Arc<str>,
    /// Maintenance, a planned stop, a drain: boxed only while set (see `OutBox`).
    pub out: OutBox,
}

/// What takes a VIP out or keeps it out. Most of 100k VIPs have none of it at any time, so it
/// costs a pointer until something is set (it was 130 of a VIP's ~310 bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct Out {
    /// Operator drain with its reason.
    pub maintenance: Option<String>,
    /// The operator forced the drain: the fleet guard skips its count (never the mark and settle).
    pub forced: bool,
    /// Set by a planned stop, with its reason.
    pub stopping: Option<String>,
    /// While draining toward removal: when the route goes, and into which state.
    pub(super) drain_until: Option<Instant>,
    pub(super) drain_then: VipState,
    /// When the running timed drain started.
    pub(super) drain_started: Option<Instant>,
    /// The last connection count (connection-aware drains).
    pub connections: Connections,
    /// How the last drain ended, e.g. "0 connections left after 12.4 s" (for the log).
    pub drain_end: Option<String>,
}

static NOTHING_OUT: Out = Out {
    maintenance: None,
    forced: false,
    stopping: None,
    drain_until: None,
    drain_then: VipState::Withdrawn,
    drain_started: None,
    connections: Connections::Unknown,
    drain_end: None,
};

/// `Out`, boxed while it differs from nothing set: reads of an empty one see `NOTHING_OUT`, a
/// write boxes it, and `compact` drops a box that holds nothing again.
#[derive(Clone, Debug, Default)]
pub struct OutBox(Option<Box<Out>>);

impl std::ops::Deref for OutBox {
    type Target = Out;
    fn deref(&self) -> &Out {
        self.0.as_deref().unwrap_or(&NOTHING_OUT)
    }
}

impl std::ops::DerefMut for OutBox {
    fn deref_mut(&mut self) -> &mut Out {
        self.0.get_or_insert_with(|| Box::new(NOTHING_OUT.clone()))
    }
}

impl OutBox {
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    pub fn compact(&mut self) {
        if self.0.as_deref() == Some(&NOTHING_OUT) {
            self.0 = None;
        }
    }
}

/// A state change with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: VipState,
    pub to: VipState,
    pub reason: String,
}

impl Lifecycle {
    pub fn new(spec: impl Into<Arc<LifecycleSpec>>, reason: Arc<str>, now: Instant) -> Lifecycle {
        Lifecycle {
            spec: spec.into(),
            state: VipState::Withdrawn,
            since: now,
            reason,
            out: OutBox::default(),
        }
    }

    /// Takes over an earlier lifecycle's state (config reload), keeping this one's spec.
    pub fn inherit(&mut self, old: &Lifecycle) {
        self.state = old.state;
        self.since = old.since;
        self.reason = Arc::clone(&old.reason);
        if old.out.is_set() {
            self.out.maintenance.clone_from(&old.out.maintenance);
            self.out.forced = old.out.forced;
            self.out.stopping.clone_from(&old.out.stopping);
            self.out.drain_until = old.out.drain_until;
            self.out.drain_then = old.out.drain_then;
            self.out.drain_started = old.out.drain_started;
            self.out.connections.clone_from(&old.out.connections);
        }
    }

    /// Whether a running drain wants its connections counted.
    pub fn counts_connections(&self) -> bool {
        self.spec.drain_until_connections.is_some() && self.drain_deadline().is_some()
    }

    /// A running connection-aware drain's progress for the log and the events: "12 connections
    /// left after 3.0 s, 5 more silent for 2s+", or why it is timed. None when none runs or
    /// nothing was counted yet.
    pub fn drain_progress(&self, now: Instant) -> Option<String> {
        if !self.counts_connections() {
            return None;
        }
        let after = self.drained_for(now)?.as_secs_f64();
        match &self.out.connections {
            Connections::Unknown => None,
            Connections::Count { holding, .. } => Some(format!(
                "{holding} connections left after {after:.1} s{}",
                self.out.connections.silent_note(self.spec.drain_idle)
            )),
            Connections::Unavailable(why) => {
                Some(format!("connections not counted after {after:.1} s: {why}"))
            }
        }
    }

    /// How long the running drain has lasted.
    pub fn drained_for(&self, now: Instant) -> Option<Duration> {
        self.out
            .drain_started
            .filter(|_| self.drain_deadline().is_some())
            .map(|t| now.saturating_duration_since(t))
    }

    /// Whether the route is still in the RIB, and whether it carries the de-preference.
    pub fn routed(&self) -> Option<bool> {
        match self.state {
            VipState::Announced => Some(false),
            VipState::Draining | VipState::Held => Some(true),
            VipState::Withdrawn | VipState::Maintenance => None,
        }
    }

    /// A timed drain still running (a planned stop waits for these).
    pub fn drain_deadline(&self) -> Option<Instant> {
        (self.state == VipState::Draining)
            .then_some(self.out.drain_until)
            .flatten()
    }

    fn want(&self, healthy: bool) -> Want {
        if self.out.stopping.is_some() {
            Want::Gone(VipState::Withdrawn)
        } else if self.out.maintenance.is_some() {
            Want::Gone(VipState::Maintenance)
        } else if healthy {
            Want::Up
        } else if self.spec.on_unhealthy == OnUnhealthy::Depreference {
            Want::Depreferred
        } else {
            Want::Gone(VipState::Withdrawn)
        }
    }

    /// Why the VIP is going to `target`, from the inputs.
    fn cause(&self, target: VipState, health_reason: &str) -> String {
        match (&self.out.stopping, &self.out.maintenance, target) {
            (Some(why), ..) => why.clone(),
            (None, Some(why), VipState::Maintenance) => format!("maintenance: {why}"),
            _ => health_reason.to_string(),
        }
    }

    fn strategy(&self) -> DrainStrategy {
        if self.out.stopping.is_some() {
            self.spec.shutdown
        } else {
            self.spec.drain
        }
    }

    /// Moves toward what the inputs want; returns the change, if any.
    pub fn settle(
        &mut self,
        healthy: bool,
        health_reason: &str,
        now: Instant,
    ) -> Option<Transition> {
        let want = self.want(healthy);
        let (to, reason) = match (self.state, want) {
            (VipState::Announced, Want::Up) => return None,
            (_, Want::Up) => {
                let why = if self.state == VipState::Maintenance {
                    format!("out of maintenance; {health_reason}")
                } else {
                    health_reason.to_string()
                };
                (VipState::Announced, why)
            }
            (VipState::Draining, Want::Depreferred) if self.out.drain_until.is_none() => {
                return None
            }
            (_, Want::Depreferred) => {
                self.out.drain_until = None;
                (
                    VipState::Draining,
                    format!("unhealthy, kept announced de-preferred (on_unhealthy: depreference): {health_reason}"),
                )
            }
            (VipState::Announced, Want::Gone(then)) => {
                self.start_drain(then, health_reason, now)?
            }
            (VipState::Draining, Want::Gone(then)) => match self.out.drain_until {
                // Was de-preferred for ill health; now it must go: drain from here.
                None => self.start_drain(then, health_reason, now)?,
                Some(until) if now >= until => {
                    let silent = self.out.connections.silent_note(self.spec.drain_idle);
                    let left = match (&self.out.connections, self.spec.drain_until_connections) {
                        (Connections::Count { holding, .. }, Some(_)) => {
                            format!(", {holding} connections left at drain_period{silent}")
                        }
                        (Connections::Unavailable(why), Some(_)) => {
                            format!(", connections not counted: {why}")
                        }
                        _ => String::new(),
                    };
                    self.out.drain_end = Some(match self.out.connections {
                        Connections::Count { holding, .. } => {
                            format!("{holding} left at drain_period{silent}")
                        }
                        _ => format!(
                            "drain period {} over",
                            format_duration(self.spec.drain_period)
                        ),
                    });
                    let why = format!(
                        "{} (drain period {} over{left})",
                        self.cause(then, health_reason),
                        format_duration(self.spec.drain_period)
                    );
                    (then, why)
                }
                Some(_) if self.connections_done(now) => {
                    // The last progress line's words: "0 connections left after 3.2 s". A
                    // counted, running drain always has them.
                    let end = self.drain_progress(now).unwrap_or_default();
                    let why = format!("{} (drain: {end})", self.cause(then, health_reason));
                    self.out.drain_end = Some(end);
                    (then, why)
                }
                Some(_) => {
                    // Still draining; a new cause (e.g. stop during a health drain) may retarget it.
                    self.out.drain_then = then;
                    return None;
                }
            },
            (current, Want::Gone(then)) if current == then => return None,
            (_, Want::Gone(then)) => (then, self.cause(then, health_reason)),
        };
        Some(self.enter(to, reason, now))
    }

    /// Whether the inputs want the route gone, for any cause (ill health, operator drain or
    /// disable file, planned stop): with a fleet guard, every one of them passes its gate.
    pub fn wants_gone(&self, healthy: bool) -> bool {
        matches!(self.want(healthy), Want::Gone(_))
    }

    /// Whether an operator forced the drain that makes the VIP leave (a planned stop or ill
    /// health is never forced).
    pub fn forced_leave(&self) -> bool {
        self.out.forced && self.out.maintenance.is_some() && self.out.stopping.is_none()
    }

    /// The guard keeps the route announced and marked: its marked phase (`held` None, shown as
    /// draining) or held. Returns the change of state, if any; a new held reason alone is kept
    /// without a transition.
    pub fn mark(
        &mut self,
        held: Option<&str>,
        settle: Duration,
        health_reason: &str,
        now: Instant,
    ) -> Option<Transition> {
        let target = if self.out.stopping.is_none() && self.out.maintenance.is_some() {
            VipState::Maintenance
        } else {
            VipState::Withdrawn
        };
        let cause = self.cause(target, health_reason);
        let (to, reason) = match held {
            Some(h) => (VipState::Held, format!("{h}; wanted to leave: {cause}")),
            None => (
                VipState::Draining,
                format!(
                    "marked unhealthy (fleet guard): counting the other announcers in {}: {cause}",
                    format_duration(settle)
                ),
            ),
        };
        if self.state == to {
            if to == VipState::Held {
                self.reason = reason.into();
            }
            return None;
        }
        if self.out.drain_until.is_some() {
            self.out.drain_until = None;
        }
        if to == VipState::Draining
            && self.strategy() == DrainStrategy::Graceful
            && !self.spec.drain_period.is_zero()
        {
            // The marked phase is also the drain: a graceful drain runs its period, or until its
            // connections are gone, before the gate counts.
            self.out.drain_until = Some(now + self.spec.drain_period);
            self.out.drain_then = target;
            self.out.drain_started = Some(now);
            self.out.connections = Connections::Unknown;
            self.out.drain_end = None;
        }
        Some(self.enter(to, reason, now))
    }

    /// Whether the drain the marked phase runs (if any) is over: its period passed, or its
    /// connections are gone after `drain_min`. The gate counts only then.
    pub fn drain_finished(&self, now: Instant) -> bool {
        match self.drain_deadline() {
            None => true,
            Some(until) => now >= until || self.connections_done(now),
        }
    }

    /// The gate let the VIP go from every established ToR: into the state its cause wants
    /// (withdrawn, or maintenance for a drain). None when it is there already.
    pub fn leave(
        &mut self,
        guard_reason: &str,
        healthy: bool,
        health_reason: &str,
        now: Instant,
    ) -> Option<Transition> {
        let then = match self.want(healthy) {
            Want::Gone(t) => t,
            _ => VipState::Withdrawn,
        };
        if self.state == then {
            return None;
        }
        if let Some(until) = self.drain_deadline() {
            // How the drain of the marked phase ended, for the daemon's "withdrew after drain".
            let silent = self.out.connections.silent_note(self.spec.drain_idle);
            self.out.drain_end = Some(match (&self.out.connections, self.drain_progress(now)) {
                (Connections::Count { holding, .. }, _) if now >= until => {
                    format!("{holding} left at drain_period{silent}")
                }
                (_, Some(progress)) if now < until => progress,
                _ => format!(
                    "drain period {} over",
                    format_duration(self.spec.drain_period)
                ),
            });
        }
        let cause = self.cause(then, health_reason);
        Some(self.enter(then, format!("{cause}; {guard_reason}"), now))
    }

    fn start_drain(
        &mut self,
        then: VipState,
        health_reason: &str,
        now: Instant,
    ) -> Option<(VipState, String)> {
        let cause = self.cause(then, health_reason);
        if self.strategy() == DrainStrategy::Graceful && !self.spec.drain_period.is_zero() {
            self.out.drain_until = Some(now + self.spec.drain_period);
            self.out.drain_then = then;
            self.out.drain_started = Some(now);
            self.out.connections = Connections::Unknown;
            self.out.drain_end = None;
            Some((
                VipState::Draining,
                format!(
                    "draining for {} before {then} (graceful shutdown community): {cause}",
                    format_duration(self.spec.drain_period)
                ),
            ))
        } else {
            Some((then, cause))
        }
    }

    /// A connection-aware drain whose count fell to the threshold after `drain_min`.
    fn connections_done(&self, now: Instant) -> bool {
        let (Some(limit), Connections::Count { holding: n, .. }, Some(t0)) = (
            self.spec.drain_until_connections,
            &self.out.connections,
            self.out.drain_started,
        ) else {
            return false;
        };
        *n <= limit && now.saturating_duration_since(t0) >= self.spec.drain_min
    }

    fn enter(&mut self, to: VipState, reason: String, now: Instant) -> Transition {
        // Only written when set: a write boxes the drain state (`OutBox`).
        if to != VipState::Draining && self.out.is_set() {
            self.out.drain_until = None;
            self.out.drain_started = None;
        }
        let from = self.state;
        self.state = to;
        self.since = now;
        self.reason = reason.as_str().into();
        self.out.compact();
        Transition { from, to, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graceful(period: u64) -> LifecycleSpec {
        LifecycleSpec {
            drain: DrainStrategy::Graceful,
            drain_period: Duration::from_secs(period),
            on_unhealthy: OnUnhealthy::Withdraw,
            shutdown: DrainStrategy::Graceful,
            drain_until_connections: None,
            drain_min: Duration::ZERO,
            drain_idle: None,
        }
    }

    fn counted(holding: u32, silent: u32) -> Connections {
        Connections::Count { holding, silent }
    }

    /// An announced VIP put in maintenance (an operator drain) at t0: its drain has begun.
    fn drained_by_operator(spec: LifecycleSpec, t0: Instant) -> Lifecycle {
        let mut l = up(spec, t0);
        l.out.maintenance = Some("ops".into());
        assert_eq!(l.settle(true, "ok", t0).unwrap().to, VipState::Draining);
        l
    }

    fn aware(period: u64, min: u64, until: u32) -> LifecycleSpec {
        LifecycleSpec {
            drain_until_connections: Some(until),
            drain_min: Duration::from_secs(min),
            ..graceful(period)
        }
    }

    #[test]
    fn connection_aware_drain_ends_when_connections_are_gone_after_drain_min() {
        let t0 = Instant::now();
        let ms = |x| t0 + Duration::from_millis(x);
        let mut l = up(aware(30, 2, 0), t0);
        l.out.maintenance = Some("ops".into());
        assert_eq!(l.settle(true, "ok", t0).unwrap().to, VipState::Draining);
        assert!(l.counts_connections());
        l.out.connections = counted(5, 0);
        assert_eq!(l.settle(true, "ok", ms(1000)), None);
        // Gone, but drain_min (2 s) is the floor.
        l.out.connections = counted(0, 0);
        assert_eq!(l.settle(true, "ok", ms(1500)), None);
        let t = l.settle(true, "ok", ms(12_400)).unwrap();
        assert_eq!(t.to, VipState::Maintenance);
        assert_eq!(
            t.reason,
            "maintenance: ops (drain: 0 connections left after 12.4 s)"
        );
        assert!(!l.counts_connections());
        assert_eq!(l.drained_for(ms(13_000)), None);
        assert_eq!(
            l.out.drain_end.as_deref(),
            Some("0 connections left after 12.4 s")
        );
    }

    #[test]
    fn a_connection_that_never_closes_cannot_hold_the_drain_past_the_period() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut l = up(aware(30, 0, 2), t0);
        l.out.stopping = Some("vipwarden stopping (SIGTERM)".into());
        l.settle(true, "ok", t0);
        l.out.connections = counted(37, 0);
        assert_eq!(l.settle(true, "ok", s(29)), None);
        assert_eq!(l.drained_for(s(29)), Some(Duration::from_secs(29)));
        let t = l.settle(true, "ok", s(30)).unwrap();
        assert_eq!(t.to, VipState::Withdrawn);
        assert_eq!(
            t.reason,
            "vipwarden stopping (SIGTERM) (drain period 30s over, 37 connections left at drain_period)"
        );
        assert_eq!(l.out.drain_end.as_deref(), Some("37 left at drain_period"));
        // The threshold counts: 2 left is enough.
        let mut l = drained_by_operator(aware(30, 0, 2), t0);
        l.out.connections = counted(2, 0);
        assert_eq!(
            l.settle(true, "ok", s(1)).unwrap().to,
            VipState::Maintenance
        );
    }

    #[test]
    fn silent_connections_do_not_hold_the_drain_and_are_reported() {
        let t0 = Instant::now();
        let ms = |x| t0 + Duration::from_millis(x);
        let idle = LifecycleSpec {
            drain_idle: Some(Duration::from_secs(2)),
            ..aware(30, 1, 0)
        };
        let mut l = drained_by_operator(idle, t0);
        // Still live ones hold it; the silent are counted apart by the daemon.
        l.out.connections = counted(2, 14);
        assert_eq!(l.settle(true, "ok", ms(2000)), None);
        l.out.connections = counted(0, 16);
        assert_eq!(
            l.drain_progress(ms(2500)).as_deref(),
            Some("0 connections left after 2.5 s, 16 more silent for 2s+")
        );
        let t = l.settle(true, "ok", ms(3200)).unwrap();
        assert_eq!(t.to, VipState::Maintenance);
        assert_eq!(l.drain_progress(ms(3300)), None, "no drain runs");
        assert_eq!(
            l.out.drain_end.as_deref(),
            Some("0 connections left after 3.2 s, 16 more silent for 2s+")
        );
        // At the period the silent ones are named too.
        let mut l = drained_by_operator(
            LifecycleSpec {
                drain_idle: Some(Duration::from_secs(2)),
                ..aware(10, 0, 0)
            },
            t0,
        );
        l.out.connections = counted(3, 5);
        let t = l.settle(true, "ok", ms(10_000)).unwrap();
        assert_eq!(
            t.reason,
            "maintenance: ops (drain period 10s over, 3 connections left at drain_period, 5 more silent for 2s+)"
        );
    }

    #[test]
    fn without_a_count_the_drain_is_timed_and_says_why() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut l = up(aware(10, 0, 0), t0);
        assert_eq!(l.settle(false, "bad", t0).unwrap().to, VipState::Draining);
        // Unknown (never counted) does not end the drain.
        assert_eq!(l.settle(false, "bad", s(5)), None);
        l.out.connections = Connections::Unavailable("sock_diag: permission denied".into());
        assert_eq!(l.settle(false, "bad", s(9)), None);
        let t = l.settle(false, "bad", s(10)).unwrap();
        assert_eq!(
            t.reason,
            "bad (drain period 10s over, connections not counted: sock_diag: permission denied)"
        );
        // A timed (not connection-aware) drain ignores counts.
        let mut l = up(graceful(10), t0);
        l.settle(false, "bad", t0);
        l.out.connections = counted(0, 0);
        assert!(!l.counts_connections());
        assert_eq!(l.settle(false, "bad", s(1)), None);
    }

    fn up(spec: LifecycleSpec, t0: Instant) -> Lifecycle {
        let mut l = Lifecycle::new(spec, "starting".into(), t0);
        assert_eq!(
            l.settle(true, "check web passed 2/2", t0).unwrap().to,
            VipState::Announced
        );
        l
    }

    #[test]
    fn withdraw_strategy_removes_at_once() {
        let t0 = Instant::now();
        let mut l = up(LifecycleSpec::default(), t0);
        let t = l
            .settle(false, "check web failed 2/2: connect refused", t0)
            .unwrap();
        assert_eq!((t.from, t.to), (VipState::Announced, VipState::Withdrawn));
        assert_eq!(t.reason, "check web failed 2/2: connect refused");
        assert_eq!(l.routed(), None);
    }

    #[test]
    fn graceful_drain_keeps_the_route_for_the_period_then_withdraws() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut l = up(graceful(30), t0);
        l.out.maintenance = Some("drained via API: kernel upgrade".into());
        let t = l.settle(true, "healthy", s(1)).unwrap();
        assert_eq!(t.to, VipState::Draining);
        assert!(
            t.reason.starts_with("draining for 30s before maintenance"),
            "{}",
            t.reason
        );
        assert_eq!(l.routed(), Some(true));
        assert_eq!(l.settle(true, "healthy", s(30)), None);
        let t = l.settle(true, "healthy", s(31)).unwrap();
        assert_eq!(t.to, VipState::Maintenance);
        assert_eq!(
            t.reason,
            "maintenance: drained via API: kernel upgrade (drain period 30s over)"
        );
        // Undrain: back at once when healthy.
        l.out.maintenance = None;
        let t = l.settle(true, "check web passed 2/2", s(40)).unwrap();
        assert_eq!((t.from, t.to), (VipState::Maintenance, VipState::Announced));
    }

    #[test]
    fn recovery_during_a_health_drain_cancels_it() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut l = up(graceful(30), t0);
        assert_eq!(l.settle(false, "bad", s(1)).unwrap().to, VipState::Draining);
        assert_eq!(
            l.settle(true, "good", s(5)).unwrap().to,
            VipState::Announced
        );
        assert_eq!(l.drain_deadline(), None);
    }

    #[test]
    fn stop_during_a_drain_retargets_and_keeps_the_deadline() {
        let t0 = Instant::now();
        let s = |x| t0 + Duration::from_secs(x);
        let mut l = up(graceful(30), t0);
        l.out.maintenance = Some("ops".into());
        l.settle(true, "ok", s(0));
        l.out.stopping = Some("vipwarden stopping (SIGTERM)".into());
        assert_eq!(l.settle(true, "ok", s(10)), None);
        assert_eq!(l.drain_deadline(), Some(s(30)));
        let t = l.settle(true, "ok", s(30)).unwrap();
        assert_eq!(t.to, VipState::Withdrawn);
        assert!(
            t.reason.starts_with("vipwarden stopping (SIGTERM)"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn depreference_keeps_an_unhealthy_vip_announced() {
        let t0 = Instant::now();
        let spec = LifecycleSpec {
            on_unhealthy: OnUnhealthy::Depreference,
            ..Default::default()
        };
        let mut l = up(spec, t0);
        let t = l.settle(false, "check web failed 2/2", t0).unwrap();
        assert_eq!(t.to, VipState::Draining);
        assert_eq!(l.routed(), Some(true));
        assert_eq!(
            l.drain_deadline(),
            None,
            "no deadline: de-preferred while unhealthy"
        );
        assert_eq!(
            l.settle(false, "still bad", t0 + Duration::from_secs(3600)),
            None
        );
        // A planned stop still withdraws (shutdown: withdraw).
        l.out.stopping = Some("stop".into());
        assert_eq!(l.settle(false, "bad", t0).unwrap().to, VipState::Withdrawn);
    }

    #[test]
    fn maintenance_while_withdrawn_needs_no_drain() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(graceful(30), "starting".into(), t0);
        l.out.maintenance = Some("ops".into());
        let t = l.settle(false, "down", t0).unwrap();
        assert_eq!((t.from, t.to), (VipState::Withdrawn, VipState::Maintenance));
    }
}
