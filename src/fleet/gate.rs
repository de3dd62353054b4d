//! The gate: every way a guarded VIP's route can leave a ToR passes here.
//!
//! A guarded VIP whose lifecycle wants it gone (ill health, an operator drain or disable file, a
//! planned stop) is first announced *marked* everywhere for `settle`, so that nodes leaving at the
//! same instant all see each other marked before any of them counts. Then it is decided per ToR
//! (peer): it leaves a ToR only while that ToR's complete view shows at least
//! `min_healthy_others` other healthy (identified, unmarked) announcers of every one of its
//! prefixes; towards any other ToR it stays announced, marked (*held*). A partition therefore
//! never takes the prefix from a ToR that still needs this node.
//!
//! Fail open both ways: once out at a ToR, the VIP comes back there, marked, when that ToR's
//! complete view has shown too few healthy announcers for `dwell`, and leaves again when enough
//! have been back for `dwell`. Doubt holds: a view that is loading, behind, disabled, overflowing,
//! that shows paths without identity, or that reflects our own path without our mark, never lets
//! a node leave, and brings a node that is out back (marked) after `dwell`. Only a peer that never
//! offered a view (no ADD-PATH) follows `when_blind`. An operator's `--force` skips the count,
//! never the mark and settle.
//!
//! Pure: inputs are the view, the lifecycle's wish and an injected `Instant`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::view::{FleetView, ViewState};
use crate::route::Prefix;

/// What to do at a ToR that never offered a view (no ADD-PATH negotiated for the family).
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
    /// Leave a ToR only while it keeps at least this many other healthy announcers; 0 = off.
    pub min_healthy_others: u32,
    pub when_blind: WhenBlind,
    /// How long a leaving VIP stays marked before it counts (the longer of `fleet.settle` and the
    /// VIP's drain period).
    pub settle: Duration,
    /// How long a ToR's count must say so before a VIP that is out there returns (fail open), or
    /// one that returned leaves again: against flapping with a flapping neighbour.
    pub dwell: Duration,
}

impl GuardSpec {
    pub fn enabled(&self) -> bool {
        self.min_healthy_others > 0
    }
}

/// The lifecycle's wish for a guarded VIP, as the gate sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wish {
    /// The VIP should stop carrying traffic (any cause).
    pub leave: bool,
    /// An operator forced it: skip the count (not the mark and settle), never come back.
    pub forced: bool,
    /// The drain the marked phase runs is over (always, without a graceful drain): counting
    /// waits for it as well as for `settle`.
    pub drained: bool,
}

/// Where the gate has a guarded VIP overall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatePhase {
    /// The VIP should be announced normally: the lifecycle decides alone.
    Pass,
    /// Marked everywhere until `settle` ends.
    Marking,
    /// Marked towards at least one established ToR (held there, or came back there).
    Held,
    /// Out at every established ToR.
    Left,
}

impl GatePhase {
    pub fn as_str(&self) -> &'static str {
        match self {
            GatePhase::Pass => "idle",
            GatePhase::Marking => "marked",
            GatePhase::Held => "held",
            GatePhase::Left => "left",
        }
    }
}

/// The gate's decision at one step: the phase and the per-ToR route changes it made, each a line
/// with the figures that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateOutput {
    pub phase: GatePhase,
    pub changes: Vec<String>,
}

/// What one ToR's view says about leaving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerVerdict {
    /// Session not established: nothing is announced there; nothing changes.
    Down,
    /// The view is complete and shows enough healthy others (or the VIP is forced, or the ToR
    /// offers no view and `when_blind: leave`).
    MayLeave(String),
    /// Leaving would take away a needed announcer, or the view cannot tell: stay (marked), and
    /// come back (marked) if out.
    MustStay(String),
    /// The session's table is still arriving (it completes within `settle`): no change either
    /// way, so a starting node does not flap in and out while its sessions load.
    Loading(String),
}

/// The gate at one ToR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PeerGate {
    /// Withdrawn towards this ToR.
    out: bool,
    /// Left and came back in this episode: leaving again waits for `dwell`.
    returned: bool,
    /// Since when the verdict has disagreed with `out` (the dwell's start).
    disagree_since: Option<Instant>,
    /// The last verdict's words (status).
    note: String,
}

/// One guarded VIP's gate state.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    /// An episode runs: the VIP is not announced normally.
    active: bool,
    /// Counting may start at this instant (the end of the marked phase).
    count_from: Option<Instant>,
    /// When the marking began (for measuring how long our mark takes to come back).
    marked_at: Option<Instant>,
    /// A ToR this episode has not met yet starts out (the VIP was never announced) or in.
    new_peers_out: bool,
    peers: BTreeMap<Arc<str>, PeerGate>,
    /// Per ToR, how long our mark took to come back reflected in the last episode that measured
    /// it (ToRs that reflect our path).
    pub mark_propagation: BTreeMap<Arc<str>, Duration>,
    /// The episode each of those measurements belongs to.
    measured: BTreeMap<Arc<str>, u32>,
    phase: Option<GatePhase>,
    /// Past `settle`, still waiting for the drain (woken by the drain's own events).
    draining: bool,
    /// Numbers each episode; the mark carries it, so a reflected mark is known to be this one's.
    episode: u32,
}

impl Gate {
    /// A VIP that starts without ever having been announced: out everywhere, but it comes back
    /// marked where a complete view shows too few healthy announcers (a node restarted during
    /// an outage serves, marked, like the others).
    pub fn starting(now: Instant) -> Gate {
        Gate {
            active: true,
            count_from: Some(now),
            new_peers_out: true,
            episode: 1,
            ..Gate::default()
        }
    }

    /// A VIP that was held (or marked) when the process last ran: announced marked everywhere
    /// until each ToR's view is complete, then counted at once (it never was announced unmarked
    /// since, so no one counted it healthy).
    pub fn restored(now: Instant) -> Gate {
        Gate {
            active: true,
            count_from: Some(now),
            // Not measured: the sessions are not even up yet.
            marked_at: None,
            new_peers_out: false,
            episode: 1,
            ..Gate::default()
        }
    }

    /// `restored`, keeping the episode its mark carries (an in-place upgrade: the routers keep
    /// the same attributes, so nothing is sent again).
    pub fn restored_episode(now: Instant, episode: u32) -> Gate {
        Gate {
            episode: episode.max(1),
            ..Gate::restored(now)
        }
    }

    /// One step: the wish, the view and the clock in; the phase and the per-ToR changes out.
    pub fn step(
        &mut self,
        spec: &GuardSpec,
        wish: Wish,
        view: &FleetView,
        prefixes: &[Prefix],
        now: Instant,
    ) -> GateOutput {
        let mut changes = Vec::new();
        if !spec.enabled() || !wish.leave {
            let was = std::mem::take(self);
            self.mark_propagation = was.mark_propagation;
            self.measured = was.measured;
            self.episode = was.episode;
            self.phase = Some(GatePhase::Pass);
            return GateOutput {
                phase: GatePhase::Pass,
                changes,
            };
        }
        if !self.active {
            // Announced normally until now: mark everywhere, count after settle.
            self.active = true;
            self.episode = self.episode.wrapping_add(1).max(1);
            self.count_from = Some(now + spec.settle);
            self.marked_at = Some(now);
            self.new_peers_out = false;
            self.peers.clear();
        }
        // A peer removed from the configuration has no gate (and no pending dwell to wake for).
        self.peers.retain(|p, _| view.knows(p));
        let count_from = self.count_from.unwrap_or(now);
        // Counting starts when `settle` has passed and the drain is over.
        let counting = now >= count_from && wish.drained;
        self.draining = now >= count_from && !wish.drained;
        let new_peers_out = self.new_peers_out;
        // Where a ToR reflects our own path, our mark's arrival is observed, not assumed: while
        // one we announce to has not shown this episode's mark back, routes propagate slower
        // than `settle` and no ToR may be left (the others' marks may not have reached us
        // either).
        let episode = self.episode;
        let in_flight = view
            .peers()
            .filter(|p| view.is_up(p) && view.reflects(p))
            .filter(|p| !self.peers.get(*p).map_or(new_peers_out, |g| g.out))
            .find(|p| {
                prefixes
                    .iter()
                    .any(|x| view.own_reflected(p, x) != Some(Some(episode)))
            })
            .cloned();
        let mut any_up_in = false;
        let mut any_up = false;
        for peer in view.peers() {
            let verdict = if !counting {
                None
            } else {
                Some(verdict_at(spec, wish.forced, view, peer, prefixes, now))
            };
            if let Some(at) = self.marked_at {
                self.note_propagation(view, peer, prefixes, now.saturating_duration_since(at));
            }
            let g = self.peers.entry(peer.clone()).or_insert_with(|| PeerGate {
                out: new_peers_out,
                ..PeerGate::default()
            });
            if view.is_up(peer) {
                any_up = true;
            }
            let Some(verdict) = verdict else {
                if view.is_up(peer) && !g.out {
                    any_up_in = true;
                }
                continue;
            };
            let (want_out, note) = match verdict {
                PeerVerdict::Down => {
                    g.disagree_since = None;
                    continue;
                }
                PeerVerdict::MayLeave(n) => match &in_flight {
                    Some(slow) if !wish.forced && !g.out => (
                        false,
                        format!(
                            "our mark has not come back from {slow} yet (routes propagate \
                             slower than settle, or the ToR strips communities: configure \
                             send-community); {n}"
                        ),
                    ),
                    _ => (true, n),
                },
                PeerVerdict::MustStay(n) => (false, n),
                PeerVerdict::Loading(n) => (g.out, n),
            };
            g.note.clone_from(&note);
            if want_out == g.out {
                g.disagree_since = None;
            } else {
                // The first leave after the marked phase goes at once (settle was its dwell);
                // a return, and a leave after a return, wait for the verdict to hold `dwell`.
                let immediate = want_out && !g.returned || wish.forced;
                let since = *g.disagree_since.get_or_insert(now);
                if immediate || now.saturating_duration_since(since) >= spec.dwell {
                    g.out = want_out;
                    g.disagree_since = None;
                    if want_out {
                        changes.push(format!("left {peer}: {note}"));
                    } else {
                        g.returned = true;
                        changes.push(format!("fail open: back at {peer}, marked: {note}"));
                    }
                }
            }
            if !g.out {
                any_up_in = true;
            }
        }
        // With no session up, a VIP that is in somewhere (or, restored, everywhere: no ToR met
        // yet) stays held: nothing is announced, and it is announced marked when one returns.
        let in_while_down = !any_up
            && (self.peers.values().any(|g| !g.out)
                || self.peers.is_empty() && !self.new_peers_out);
        let phase = if !counting {
            GatePhase::Marking
        } else if any_up_in || in_while_down {
            GatePhase::Held
        } else {
            GatePhase::Left
        };
        self.phase = Some(phase.clone());
        GateOutput { phase, changes }
    }

    /// Records how long our mark took to come back from a ToR that reflects our path.
    fn note_propagation(&mut self, view: &FleetView, peer: &Arc<str>, ps: &[Prefix], d: Duration) {
        if self.measured.get(peer) == Some(&self.episode) {
            return;
        }
        if ps
            .iter()
            .any(|p| view.own_reflected(peer, p) == Some(Some(self.episode)))
        {
            self.mark_propagation.insert(peer.clone(), d);
            self.measured.insert(peer.clone(), self.episode);
        }
    }

    /// The current episode's number, which the mark's large twin carries.
    pub fn episode(&self) -> u32 {
        self.episode
    }

    /// `idle`, `marked`, `held` or `left`, for status.
    pub fn phase_name(&self) -> &'static str {
        self.phase.as_ref().map_or("idle", GatePhase::as_str)
    }

    /// Whether the VIP is withdrawn towards `peer`.
    pub fn is_out(&self, peer: &str) -> bool {
        self.active && self.peers.get(peer).is_some_and(|g| g.out)
    }

    /// Whether a planned stop must still wait: marking, or held towards an established ToR.
    pub fn holds(&self, view: &FleetView) -> bool {
        match self.phase {
            Some(GatePhase::Marking) => true,
            Some(GatePhase::Held) => self.peers.iter().any(|(p, g)| !g.out && view.is_up(p)),
            _ => false,
        }
    }

    /// Whether the VIP is in an episode (not announced normally).
    pub fn active(&self) -> bool {
        self.active
    }

    /// Per ToR: `out` or `held`, and the last verdict's words (status).
    pub fn peer_states(&self) -> impl Iterator<Item = (&Arc<str>, bool, &str)> {
        self.peers
            .iter()
            .filter(|_| self.active)
            .map(|(p, g)| (p, g.out, g.note.as_str()))
    }

    /// The held reasons at the ToRs where the VIP stays, joined (status, logs).
    pub fn held_reason(&self) -> Option<String> {
        if !self.active {
            return None;
        }
        let mut s = String::new();
        for (p, g) in self.peers.iter().filter(|(_, g)| !g.out) {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = write!(s, "at {p}: {}", g.note);
        }
        (!s.is_empty()).then_some(s)
    }

    /// When the marked phase ends or a running dwell completes (step again then).
    pub fn wake_at(&self, spec: &GuardSpec) -> Option<Instant> {
        if !self.active {
            return None;
        }
        let dwell = self
            .peers
            .values()
            .filter_map(|g| g.disagree_since)
            .map(|t| t + spec.dwell)
            .min();
        let count = self
            .count_from
            .filter(|_| self.phase == Some(GatePhase::Marking) && !self.draining);
        match (count, dwell) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The healthy others one ToR shows for one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCount {
    pub healthy: Vec<std::net::Ipv4Addr>,
    pub marked: usize,
    /// Paths without a usable identity (none, another AS's, or two nodes' at once).
    pub anonymous: usize,
}

/// Counts the other announcers of `prefix` at `peer`.
pub fn count_at(view: &FleetView, peer: &str, prefix: &Prefix) -> PeerCount {
    let mut c = PeerCount {
        healthy: Vec::new(),
        marked: 0,
        anonymous: 0,
    };
    // Only this peer's paths: no snapshot (a copy of every peer's announcers) per count.
    for a in view.announcers(peer, prefix) {
        match (a.identity, a.marked) {
            (None, _) => c.anonymous += 1,
            (Some(_), true) => c.marked += 1,
            (Some(id), false) => c.healthy.push(id),
        }
    }
    c.healthy.sort_unstable();
    c.healthy.dedup();
    c
}

/// What `peer`'s view says about leaving it, over every prefix of the VIP.
pub fn verdict_at(
    spec: &GuardSpec,
    forced: bool,
    view: &FleetView,
    peer: &str,
    prefixes: &[Prefix],
    now: Instant,
) -> PeerVerdict {
    if !view.is_up(peer) && !view.is_behind(peer) {
        return PeerVerdict::Down;
    }
    if forced {
        return PeerVerdict::MayLeave("forced by the operator (count skipped)".into());
    }
    let min = spec.min_healthy_others as usize;
    let mut ok = Vec::new();
    for p in prefixes {
        let state = view.state(peer, p.family(), now);
        let doubt = match &state {
            ViewState::Full => None,
            ViewState::Down => return PeerVerdict::Down,
            ViewState::Partial => match spec.when_blind {
                WhenBlind::Leave => {
                    ok.push(format!("{p}: no view (no ADD-PATH), when_blind: leave"));
                    continue;
                }
                WhenBlind::Hold => Some("no view (no ADD-PATH), when_blind: hold".to_string()),
            },
            ViewState::Loading => {
                return PeerVerdict::Loading(format!("{p}: its table is still arriving"))
            }
            ViewState::Behind => Some("behind: waiting for a resync of its table".to_string()),
            ViewState::Disabled(why) => Some(format!("family disabled after a bad UPDATE: {why}")),
        };
        if let Some(why) = doubt {
            return PeerVerdict::MustStay(format!("{p}: doubt: {why}"));
        }
        if view.overflowed(peer, p) {
            return PeerVerdict::MustStay(format!(
                "{p}: doubt: more paths than the view keeps (count incomplete)"
            ));
        }
        let c = count_at(view, peer, p);
        if c.anonymous > 0 {
            return PeerVerdict::MustStay(format!(
                "{p}: doubt: {} paths without a node identity (the ToR strips large \
                 communities? configure send-community large)",
                c.anonymous
            ));
        }
        if c.healthy.len() < min {
            return PeerVerdict::MustStay(format!(
                "{p}: leaving would leave {} healthy announcers ({} marked; min_healthy_others \
                 {min})",
                c.healthy.len(),
                c.marked
            ));
        }
        ok.push(format!(
            "{p}: {} healthy announcers remain ({}), {} marked",
            c.healthy.len(),
            ids(&c.healthy),
            c.marked
        ));
    }
    PeerVerdict::MayLeave(ok.join("; "))
}

fn ids(v: &[std::net::Ipv4Addr]) -> String {
    let mut s = String::new();
    for (i, id) in v.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{id}");
    }
    s
}

/// Why an operator drain was refused: it would leave too few healthy announcers somewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainRefused {
    pub prefix: Prefix,
    pub healthy: usize,
    pub min_healthy_others: u32,
    pub announcers: Vec<String>,
    pub reason: String,
}

/// An early answer for an operator drain (the API's 409): refused when some established ToR
/// would keep the VIP held right now. Advisory: the drain itself still passes the gate, which
/// marks, settles and counts again, so two drains accepted at once cannot both leave.
pub fn drain_check(
    spec: &GuardSpec,
    view: &FleetView,
    prefixes: &[Prefix],
    now: Instant,
) -> Result<(), DrainRefused> {
    if !spec.enabled() {
        return Ok(());
    }
    for peer in view.peers() {
        let reason = match verdict_at(spec, false, view, peer, prefixes, now) {
            PeerVerdict::MustStay(r) | PeerVerdict::Loading(r) => r,
            _ => continue,
        };
        let prefix = prefixes
            .iter()
            .find(|p| reason.starts_with(&format!("{p}:")))
            .or(prefixes.first())
            .copied();
        let Some(prefix) = prefix else { continue };
        let c = count_at(view, peer, &prefix);
        let mut announcers: Vec<String> = c
            .healthy
            .iter()
            .map(|i| format!("{i} healthy at {peer}"))
            .collect();
        if c.marked > 0 {
            announcers.push(format!("{} marked at {peer}", c.marked));
        }
        return Err(DrainRefused {
            prefix,
            healthy: c.healthy.len(),
            min_healthy_others: spec.min_healthy_others,
            announcers,
            reason: format!("at {peer}: {reason}"),
        });
    }
    Ok(())
}
