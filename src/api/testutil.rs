//! Test fixtures: a hand-made status and a fake daemon answering commands.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::control::{
    CheckView, Command, CommandError, CommandOutcome, ConditionView, ConfigView, ControlHandle,
    DurationHistogram, EventView, PeerView, RouteChangeCount, StatusView, VipState, VipView,
    WeightView,
};

/// "Now" for the status fixture, so rendered durations are fixed.
pub const NOW: u64 = 1_790_000_000;

pub fn check(name: &str, up: bool, detail: &str, ms: f64) -> CheckView {
    CheckView {
        name: name.into(),
        kind: "tcp".into(),
        up,
        last_ok: Some(up),
        last_detail: detail.into(),
        last_duration_ms: Some(ms),
        passes: 120,
        failures: 4,
        durations: {
            let mut h = DurationHistogram::default();
            for secs in [0.0003, 0.0004, 0.002, 0.7] {
                h.observe(secs);
            }
            h
        },
    }
}

pub fn sample_status() -> StatusView {
    StatusView {
        version: "0.1.0".into(),
        router_id: "192.0.2.11".into(),
        local_as: 65011,
        started_at: NOW - 3 * 86400 - 4 * 3600,
        config: ConfigView {
            path: "/etc/vipwarden/vipwarden.yaml".into(),
            generation: 3,
            loaded_at: NOW - 600,
            last_reload_error: None,
        },
        peers: vec![
            PeerView {
                name: "tor1".into(),
                address: "192.0.2.1".into(),
                remote_as: 65000,
                state: "established".into(),
                established_since: Some(NOW - 3720),
                uptime_secs: Some(3720),
                prefixes_announced: 2,
                updates_sent: 7,
                updates_received: 2,
                connect_attempts: 1,
                last_error: None,
                flaps: 0,
                fleet_resyncs: 1,
                fleet_deltas_replaced: 40,
                ..PeerView::default()
            },
            PeerView {
                name: "tor2".into(),
                address: "2001:db8::2".into(),
                remote_as: 65000,
                state: "connect".into(),
                established_since: None,
                uptime_secs: None,
                prefixes_announced: 0,
                updates_sent: 0,
                updates_received: 0,
                connect_attempts: 14,
                last_error: Some("connect: connection refused".into()),
                flaps: 2,
                last_end: Some("connect_refused".into()),
                session_ends: [("connect_refused".to_string(), 13)].into_iter().collect(),
                ..PeerView::default()
            },
        ],
        vips: vec![
            VipView {
                name: "web".into(),
                prefixes: crate::control::PrefixList(
                    ["203.0.113.10/32".parse().expect("prefix")].into(),
                ),
                state: VipState::Announced,
                reason: "checks passed".into(),
                since: NOW - 3660,
                checks: [std::sync::Arc::new(check(
                    "web_tcp",
                    true,
                    "connected in 0.3 ms",
                    0.3,
                ))]
                .into(),
                conditions: vec![ConditionView {
                    signal: "errors.5xx_ratio".into(),
                    value: Some(0.012),
                    phase: "clear".into(),
                    description: "5xx ratio above 0.05".into(),
                    trip_above: Some(0.05),
                    restore_below: Some(0.01),
                }]
                .into(),
                extra: Some(Box::new(crate::control::VipExtra {
                    fleet: Some(crate::control::FleetVipView {
                        guard: "idle".into(),
                        min_healthy_others: 1,
                        when_blind: "hold".into(),
                        prefixes: vec![crate::control::FleetPrefixView {
                            prefix: "203.0.113.10/32".into(),
                            healthy: vec!["198.51.100.18".into()],
                            marked: vec![],
                            blind: false,
                        }],
                        peers: vec![crate::control::FleetPeerView {
                            peer: "tor1".into(),
                            view: "full".into(),
                            announcers: vec![crate::control::FleetAnnouncerView {
                                prefix: "203.0.113.10/32".into(),
                                node: "198.51.100.18".into(),
                                path_id: 2,
                                next_hop: Some("198.51.100.1".into()),
                                health: "healthy".into(),
                            }],
                            guard: String::new(),
                            guard_reason: String::new(),
                            mark_propagation_ms: Some(180),
                        }],
                        warnings: vec![],
                    }),
                    weight: Some(WeightView {
                        bytes_per_sec: 625_000_000,
                        capacity_bytes_per_sec: 1_250_000_000,
                        reason: "50% of capacity: x50% while lat.p99 = 240ms (ACTIVE)".into(),
                        conditions: vec![],
                    }),
                    ..Default::default()
                })),
            },
            VipView {
                name: "api".into(),
                prefixes: crate::control::PrefixList(
                    ["203.0.113.11/32".parse().expect("prefix")].into(),
                ),
                state: VipState::Maintenance,
                reason: "drained via API: kernel upgrade".into(),
                since: NOW - 185,
                checks: [std::sync::Arc::new(check(
                    "web_tcp",
                    true,
                    "connected in 0.3 ms",
                    0.3,
                ))]
                .into(),
                conditions: Box::new([]),
                extra: None,
            },
        ],
        errors: vec![
            "state file /var/lib/vipwarden/state.json not writable: permission denied".into(),
        ],
        route_changes: vec![RouteChangeCount {
            vip: "web".into(),
            to: VipState::Withdrawn,
            count: 3,
        }],
        signals: vec![],
        bfd_unmatched: Default::default(),
        pid: 4242,
        upgraded: None,
        upgrade_failed: None,
    }
}

pub fn sample_events() -> Vec<EventView> {
    (0..5)
        .map(|i| EventView {
            at_ms: (NOW - 600 + i * 60) * 1000 + 250,
            vip: "web".into(),
            from: if i % 2 == 0 {
                VipState::Announced
            } else {
                VipState::Withdrawn
            },
            to: if i % 2 == 0 {
                VipState::Withdrawn
            } else {
                VipState::Announced
            },
            reason: format!("event {i}"),
            weight: None,
        })
        .collect()
}

/// A stand-in for the daemon: records every command and answers from the VIP list.
pub struct FakeDaemon {
    pub handle: ControlHandle,
    pub commands: Arc<Mutex<Vec<Command>>>,
    pub status_tx: watch::Sender<Arc<StatusView>>,
    pub events_tx: watch::Sender<Arc<Vec<EventView>>>,
    /// When set, every command fails with StateNotSaved carrying this detail.
    pub fail_save: Arc<Mutex<Option<String>>>,
}

pub fn fake_daemon() -> FakeDaemon {
    let (status_tx, status) = watch::channel(Arc::new(sample_status()));
    let (events_tx, events) = watch::channel(Arc::new(sample_events()));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<(Command, tokio::sync::oneshot::Sender<_>)>(8);
    let commands = Arc::new(Mutex::new(Vec::new()));
    let fail_save = Arc::new(Mutex::new(None::<String>));
    // The VIPs' part comes from the published view here (the daemon builds it per request).
    let (vips_tx, mut vips_rx) = mpsc::channel::<crate::control::VipsRequest>(8);
    let published = status.clone();
    tokio::spawn(async move {
        while let Some(reply) = vips_rx.recv().await {
            let s = published.borrow().clone();
            let _ = reply.send(crate::control::VipsView {
                vips: s.vips.clone(),
                route_changes: s.route_changes.clone(),
            });
        }
    });
    let (log, fail, status_rx) = (commands.clone(), fail_save.clone(), status.clone());
    tokio::spawn(async move {
        while let Some((cmd, reply)) = cmd_rx.recv().await {
            log.lock().unwrap().push(cmd.clone());
            let (vip, to) = match &cmd {
                Command::Drain { vip, .. } => (vip.clone(), VipState::Maintenance),
                Command::Undrain { vip, .. } => (vip.clone(), VipState::Announced),
            };
            let names: Vec<String> = status_rx
                .borrow()
                .vips
                .iter()
                .map(|v| v.name.to_string())
                .collect();
            let answer = if let Some(detail) = fail.lock().unwrap().clone() {
                Err(CommandError::StateNotSaved { detail })
            } else {
                match vip {
                    Some(v) if !names.contains(&v) => Err(CommandError::unknown_vip(
                        &v,
                        names.iter().map(String::as_str),
                    )),
                    Some(v) => Ok(CommandOutcome {
                        changed: vec![(v, to)],
                    }),
                    None => Ok(CommandOutcome {
                        changed: names.into_iter().map(|n| (n, to)).collect(),
                    }),
                }
            };
            let _ = reply.send(answer);
        }
    });
    FakeDaemon {
        handle: ControlHandle {
            status,
            vips: vips_tx,
            events,
            commands: cmd_tx,
        },
        commands,
        status_tx,
        events_tx,
        fail_save,
    }
}
