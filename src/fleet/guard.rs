//! The fleet guard: never withdraw the last healthy announcer; leave in two phases; fail open.
//!
//! Owns the per-VIP leave protocol. A VIP whose health says "leave" is first announced *marked*
//! (unhealthy community, depreference, GRACEFUL_SHUTDOWN: the caller attaches them), waits
//! `settle`, then counts the other announcers of every one of its prefixes that some ToR shows
//! without the mark. It leaves only if each prefix keeps at least `min_healthy_others`; otherwise
//! it stays marked (`held`) and re-evaluates on every step until a healthy announcer appears.
//! Nodes failing at the same instant all mark before any counts, so none leaves on a stale view
//! as long as routes propagate faster than `settle`.
//!
//! Pure: inputs are the view, the health wish and an injected `Instant`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::view::{AnnouncerId, FleetView, ViewState};
use crate::route::Prefix;

/// What to do when no peer shows the other announcers (no ADD-PATH anywhere, sessions down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenBlind {
    Leave,
    Hold,
}

impl WhenBlind {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenBlind::Leave => "leave",
            WhenBlind::Hold => "hold",
        }
    }
}

/// One VIP's guard settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardSpec {
    /// Leave only while at least this many other healthy announcers remain; 0 = guard off.
    pub min_healthy_others: u32,
    pub when_blind: WhenBlind,
    /// How long a leaving VIP stays marked before it counts (the longer of `fleet.settle` and the
    /// VIP's drain period).
    pub settle: Duration,
}

impl GuardSpec {
    pub fn enabled(&self) -> bool {
        self.min_healthy_others > 0
    }
}

/// The other announcers of one prefix across all peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    pub prefix: Prefix,
    /// Distinct announcers that no peer shows marked.
    pub healthy: Vec<AnnouncerId>,
    /// Distinct announcers that some peer shows marked.
    pub marked: Vec<AnnouncerId>,
    /// Some peer shows every path of this prefix's family (ADD-PATH, table in).
    pub full_view: bool,
    /// Some peer's ADD-PATH table is still arriving, or some peer is behind (waiting for a
    /// resync: its announcers are not counted).
    pub loading: bool,
}

impl Count {
    pub fn blind(&self) -> bool {
        !self.full_view && !self.loading
    }
}

/// Counts the other announcers of `prefix`. An identified node counts once however many ToRs
/// show it, and as marked if any ToR shows it marked (the safer reading of a route in flight).
/// Paths without identity cannot be matched across ToRs: the largest per-peer number counts.
/// A peer that is behind (`ViewState::Behind`) may show announcers that are gone or unmarked
/// ones that are marked: none of them count, and it counts as loading, so a short count holds
/// (never blind, which `when_blind: leave` would turn into a leave) until its resync.
pub fn count_others(view: &FleetView, prefix: &Prefix, now: Instant) -> Count {
    use std::collections::BTreeMap;
    let mut nodes: BTreeMap<AnnouncerId, bool> = BTreeMap::new();
    let (mut anon_healthy, mut anon_marked): (Vec<AnnouncerId>, Vec<AnnouncerId>) =
        (vec![], vec![]);
    let mut full_view = false;
    let mut loading = false;
    for snap in view.snapshot(prefix, now) {
        match snap.state {
            ViewState::Full => full_view = true,
            ViewState::Loading => loading = true,
            ViewState::Behind => {
                loading = true;
                continue;
            }
            _ => {}
        }
        let (mut h, mut m) = (vec![], vec![]);
        for a in &snap.announcers {
            match a.identity {
                Some(id) => {
                    let marked = nodes.entry(AnnouncerId::Node(id)).or_insert(false);
                    *marked |= a.marked;
                }
                None => {
                    let id = AnnouncerId::Path(snap.peer.clone(), a.path_id);
                    if a.marked {
                        m.push(id)
                    } else {
                        h.push(id)
                    }
                }
            }
        }
        if h.len() > anon_healthy.len() {
            anon_healthy = h;
        }
        if m.len() > anon_marked.len() {
            anon_marked = m;
        }
    }
    let mut healthy: Vec<AnnouncerId> = nodes
        .iter()
        .filter(|(_, m)| !**m)
        .map(|(id, _)| id.clone())
        .collect();
    let mut marked: Vec<AnnouncerId> = nodes
        .iter()
        .filter(|(_, m)| **m)
        .map(|(id, _)| id.clone())
        .collect();
    healthy.extend(anon_healthy);
    marked.extend(anon_marked);
    Count {
        prefix: *prefix,
        healthy,
        marked,
        full_view,
        loading,
    }
}

/// What the guard wants done with a VIP's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardOutput {
    /// Guard off or health wants the VIP up: the lifecycle decides alone.
    Pass,
    /// Stay announced, marked. `held` is set once the count said no (with the reason).
    Marked { held: Option<String> },
    /// Leave now; the reason has the counts.
    Leave(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Marked { since: Instant },
    Held { reason: String },
    Left { reason: String },
}

/// One VIP's guard state.
#[derive(Clone, Debug)]
pub struct Guard {
    phase: Phase,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { phase: Phase::Idle }
    }
}

impl Guard {
    /// `wants_leave`: health (or a planned stop, or a drain) says the VIP should go.
    pub fn step(
        &mut self,
        spec: &GuardSpec,
        wants_leave: bool,
        view: &FleetView,
        prefixes: &[Prefix],
        now: Instant,
    ) -> GuardOutput {
        if !spec.enabled() || !wants_leave {
            self.phase = Phase::Idle;
            return GuardOutput::Pass;
        }
        match &self.phase {
            Phase::Idle => {
                self.phase = Phase::Marked { since: now };
                return GuardOutput::Marked { held: None };
            }
            Phase::Marked { since } if now.saturating_duration_since(*since) < spec.settle => {
                return GuardOutput::Marked { held: None };
            }
            Phase::Left { reason } => return GuardOutput::Leave(reason.clone()),
            Phase::Marked { .. } | Phase::Held { .. } => {}
        }
        let counts: Vec<Count> = prefixes
            .iter()
            .map(|p| count_others(view, p, now))
            .collect();
        match verdict(spec, &counts) {
            Ok(reason) => {
                self.phase = Phase::Left {
                    reason: reason.clone(),
                };
                GuardOutput::Leave(reason)
            }
            Err(reason) => {
                self.phase = Phase::Held {
                    reason: reason.clone(),
                };
                GuardOutput::Marked { held: Some(reason) }
            }
        }
    }

    /// `idle`, `marked`, `held` or `left`, for status.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "idle",
            Phase::Marked { .. } => "marked",
            Phase::Held { .. } => "held",
            Phase::Left { .. } => "left",
        }
    }

    /// When the marked phase ends (the caller should step again then).
    pub fn wake_at(&self, spec: &GuardSpec) -> Option<Instant> {
        match self.phase {
            Phase::Marked { since } => Some(since + spec.settle),
            _ => None,
        }
    }

    /// The held reason, if held.
    pub fn held_reason(&self) -> Option<&str> {
        match &self.phase {
            Phase::Held { reason } => Some(reason),
            _ => None,
        }
    }
}

fn ids(v: &[AnnouncerId]) -> String {
    let mut s = String::new();
    for (i, id) in v.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{id}");
    }
    s
}

/// Ok(reason to leave) or Err(reason to hold), over every prefix of the VIP.
fn verdict(spec: &GuardSpec, counts: &[Count]) -> Result<String, String> {
    let min = spec.min_healthy_others as usize;
    let short: Vec<&Count> = counts.iter().filter(|c| c.healthy.len() < min).collect();
    if short.is_empty() {
        let mut r = String::from("fleet guard: ");
        for (i, c) in counts.iter().enumerate() {
            if i > 0 {
                r.push_str("; ");
            }
            let _ = write!(
                r,
                "{} healthy announcers of {} remain ({}), {} marked",
                c.healthy.len(),
                c.prefix,
                ids(&c.healthy),
                c.marked.len()
            );
        }
        return Ok(r);
    }
    let c = short[0];
    if c.blind() {
        let why = format!(
            "no peer shows all announcers of {} (no ADD-PATH, or sessions down); {} healthy \
             visible",
            c.prefix,
            c.healthy.len()
        );
        return match spec.when_blind {
            WhenBlind::Leave => Ok(format!("fleet guard blind, when_blind: leave: {why}")),
            WhenBlind::Hold => Err(format!("held: blind, when_blind: hold: {why}")),
        };
    }
    let loading = if c.full_view {
        ""
    } else {
        ", a peer's table is still arriving or being resynced"
    };
    Err(format!(
        "held: withdrawing would leave {} healthy announcers of {} ({} others marked unhealthy{}; \
         min_healthy_others {})",
        c.healthy.len(),
        c.prefix,
        c.marked.len(),
        loading,
        min
    ))
}

/// Why an operator drain was refused: it would leave too few healthy announcers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainRefused {
    pub prefix: Prefix,
    pub healthy: usize,
    pub min_healthy_others: u32,
    pub announcers: Vec<String>,
    pub reason: String,
}

/// Whether an operator may drain a VIP now (unless forced). Blind follows `when_blind`.
pub fn drain_check(
    spec: &GuardSpec,
    view: &FleetView,
    prefixes: &[Prefix],
    now: Instant,
) -> Result<(), DrainRefused> {
    if !spec.enabled() {
        return Ok(());
    }
    let counts: Vec<Count> = prefixes
        .iter()
        .map(|p| count_others(view, p, now))
        .collect();
    let reason = match verdict(spec, &counts) {
        Ok(_) => return Ok(()),
        Err(reason) => reason,
    };
    match counts
        .iter()
        .find(|c| c.healthy.len() < spec.min_healthy_others as usize)
    {
        None => Ok(()),
        Some(c) => {
            let mut announcers: Vec<String> =
                c.healthy.iter().map(|i| format!("{i} healthy")).collect();
            announcers.extend(c.marked.iter().map(|i| format!("{i} marked")));
            Err(DrainRefused {
                prefix: c.prefix,
                healthy: c.healthy.len(),
                min_healthy_others: spec.min_healthy_others,
                announcers,
                reason: reason.replacen("held: ", "", 1),
            })
        }
    }
}
