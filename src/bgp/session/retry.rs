//! How soon to reconnect after a session or connection attempt ended: a pure decision over the
//! typed end reason, how long the session was up, and whether this process itself had just
//! stalled (SIGSTOP, a frozen VM, a starved runtime).
//!
//! The growing backoff protects a router that flaps or refuses us. An end that says nothing
//! about the router's health (our own stall, a local error) must not wait behind a backoff that
//! earlier router faults grew: the router is fine and our routes are missing until we are back.

use std::fmt;
use std::time::Duration;

use super::super::status::EndReason;

/// A stall of this process the connection's driver saw: a timer fired `late` after its
/// deadline, `before_end` before the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stall {
    pub late: Duration,
    pub before_end: Duration,
}

/// Why a reconnect skips the backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// The session ended within one hold time after this process stalled for `late`: the
    /// silence (ours, or the peer's as we saw it) was our own.
    OwnStall { late: Duration },
    /// A local error ended an Established session (not the peer's doing).
    LocalError,
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prompt::OwnStall { late } => write!(
                f,
                "this process had stalled for {:.1} s just before (not the peer's fault: no backoff)",
                late.as_secs_f64()
            ),
            Prompt::LocalError => f.write_str("a local error, not the peer's (no backoff)"),
        }
    }
}

/// What to do with the backoff before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Start over at the minimum, now: the end was our own.
    Prompt(Prompt),
    /// The peer closed an Established session (a router restart): the minimum for a while.
    FastWindow,
    /// The session was up long enough to count as stable: start over at the minimum.
    Reset,
    /// Anything else: the next, longer delay.
    Grow,
}

/// The decision. `hold`: the session's hold time (the window in which a stall explains an end).
pub(crate) fn decide(
    reason: &EndReason,
    established_for: Option<Duration>,
    stall: Option<Stall>,
    hold: Duration,
    stable_after: Duration,
) -> Retry {
    if let Some(s) = stall {
        // Whatever the end says (our hold timer, the peer's, our BFD seeing the router's Down),
        // it followed our own silence.
        if s.before_end <= hold {
            return Retry::Prompt(Prompt::OwnStall { late: s.late });
        }
    }
    let Some(up) = established_for else {
        // Never Established: whatever failed may fail again at once (a refused connect, a
        // local error building our OPEN): back off.
        return Retry::Grow;
    };
    if matches!(reason, EndReason::Local(_)) {
        return Retry::Prompt(Prompt::LocalError);
    }
    if reason.closed_by_peer() {
        Retry::FastWindow
    } else if up >= stable_after {
        Retry::Reset
    } else {
        Retry::Grow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::status::{PeerState, StopReason};

    const HOLD: Duration = Duration::from_secs(9);
    const STABLE: Duration = Duration::from_secs(60);

    fn hold_expired() -> EndReason {
        EndReason::HoldTimerExpired {
            state: PeerState::Established,
            after: HOLD,
        }
    }

    fn s(late: u64, before_end: u64) -> Option<Stall> {
        Some(Stall {
            late: Duration::from_secs(late),
            before_end: Duration::from_secs(before_end),
        })
    }

    #[test]
    fn hold_expiry_right_after_our_stall_is_prompt_even_on_a_short_session() {
        // The soak's case: SIGSTOP for a hold time on a session up for 20 s (the backoff had
        // grown through earlier faults).
        let up = Some(Duration::from_secs(20));
        assert_eq!(
            decide(&hold_expired(), up, s(11, 0), HOLD, STABLE),
            Retry::Prompt(Prompt::OwnStall {
                late: Duration::from_secs(11)
            })
        );
        // The peer's own hold expiry (its NOTIFICATION read after we resumed) too.
        let peer_hold = EndReason::PeerNotification(crate::bgp::wire::Notification {
            code: crate::bgp::error::ErrorCode::HoldTimerExpired,
            data: Vec::new(),
        });
        assert!(matches!(
            decide(&peer_hold, up, s(11, 1), HOLD, STABLE),
            Retry::Prompt(_)
        ));
    }

    #[test]
    fn without_a_recent_stall_a_hold_expiry_grows_the_backoff() {
        let up = Some(Duration::from_secs(20));
        assert_eq!(decide(&hold_expired(), up, None, HOLD, STABLE), Retry::Grow);
        // A stall long before the end explains nothing.
        assert_eq!(
            decide(&hold_expired(), up, s(11, 10), HOLD, STABLE),
            Retry::Grow
        );
        // A stable session resets as before.
        assert_eq!(
            decide(&hold_expired(), Some(STABLE), None, HOLD, STABLE),
            Retry::Reset
        );
    }

    #[test]
    fn bfd_down_right_after_our_stall_is_prompt_and_backs_off_otherwise() {
        let bfd = EndReason::Stopped(StopReason::BfdDown);
        let up = Some(Duration::from_secs(5));
        assert!(matches!(
            decide(&bfd, up, s(11, 0), HOLD, STABLE),
            Retry::Prompt(Prompt::OwnStall { .. })
        ));
        assert_eq!(decide(&bfd, up, None, HOLD, STABLE), Retry::Grow);
    }

    #[test]
    fn local_errors_are_prompt_once_established_and_back_off_before() {
        let local = EndReason::Local("UPDATE could not be built".into());
        assert_eq!(
            decide(&local, Some(Duration::from_secs(1)), None, HOLD, STABLE),
            Retry::Prompt(Prompt::LocalError)
        );
        // Failing before Established would fail again at once: back off.
        assert_eq!(decide(&local, None, None, HOLD, STABLE), Retry::Grow);
    }

    #[test]
    fn peer_closes_keep_the_fast_window_and_connect_failures_grow() {
        let closed = EndReason::PeerClosed {
            state: PeerState::Established,
        };
        assert_eq!(
            decide(&closed, Some(Duration::from_secs(3)), None, HOLD, STABLE),
            Retry::FastWindow
        );
        let refused = EndReason::ConnectFailed("network unreachable".into());
        assert_eq!(decide(&refused, None, None, HOLD, STABLE), Retry::Grow);
    }
}
