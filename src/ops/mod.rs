//! Operational pieces around the daemon: persistent maintenance state, disable files, on_change
//! hooks and systemd notification. Each module has one job and no knowledge of the engine; the
//! daemon wires them in. Imports only `control` (for `VipState`) and `process`.

pub mod disable;
pub mod held;
pub mod hooks;
pub mod sdnotify;
pub mod state;

use disable::Disabled;
use state::MaintenanceState;

/// Why `vip` is in maintenance, if it is: an operator drain, a disable file, or both (both are
/// named, so an operator who undrains and sees the VIP stay in maintenance learns why).
pub fn maintenance_reason(
    vip: &str,
    state: &MaintenanceState,
    disabled: &Disabled,
) -> Option<String> {
    let drained = state
        .mark_for(vip)
        .map(|m| format!("drained by {}: {}", m.by, m.reason));
    match (drained, disabled.get(vip)) {
        (Some(d), Some(f)) => Some(format!("{d}; {f}")),
        (Some(d), None) => Some(d),
        (None, Some(f)) => Some(f.clone()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::Mark;

    #[test]
    fn maintenance_reason_names_every_cause() {
        let mut st = MaintenanceState::default();
        let mut disabled = Disabled::new();
        assert_eq!(maintenance_reason("web", &st, &disabled), None);
        disabled.insert(
            "web".into(),
            "disable file /etc/vipwarden/disable exists".into(),
        );
        assert_eq!(
            maintenance_reason("web", &st, &disabled).unwrap(),
            "disable file /etc/vipwarden/disable exists"
        );
        st.drain(
            None,
            Mark {
                reason: "rack move".into(),
                by: "cli root".into(),
                at: 1,
                forced: false,
            },
        );
        assert_eq!(
            maintenance_reason("web", &st, &disabled).unwrap(),
            "drained by cli root: rack move; disable file /etc/vipwarden/disable exists"
        );
        assert_eq!(
            maintenance_reason("dns", &st, &disabled).unwrap(),
            "drained by cli root: rack move"
        );
    }
}
