//! What the daemon (and BFD) can tell a running peer task. Its own module so that the session's
//! status types, which the state machine uses, do not depend on the upgrade's pause.

use super::pause::Pause;
use super::status::StopReason;

/// Input to a running peer task from outside (daemon, BFD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Close the session (withdraw, Cease) and end the task.
    Stop(StopReason),
    /// Close the current session at once with Cease and reconnect as usual (e.g. BFD down).
    /// Ignored while no session is up.
    Reset(StopReason),
    /// Pause the session at a message boundary and hand it over (in-place upgrade).
    Pause(Pause),
}
