//! Wiring: checks -> engine -> desired routes -> per-peer sessions, plus signals and shutdown.
//!
//! The engine is the only writer of `DesiredRoutes`; sessions only read it. A planned stop first
//! publishes an empty route set (so every session withdraws with the stop as the reason), then tells
//! the sessions to close with NOTIFICATION Cease/Administrative Shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

mod board;

use board::SignalBoard;

use crate::bgp::{self, PeerStatus, SessionSetup};
use crate::checks::{self, CheckSample};
use crate::config::Config;
use crate::engine::{Engine, Observation};
use crate::route::DesiredRoutes;

/// How long a planned stop waits for sessions to withdraw and close before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often traffic conditions, hold-downs and dampening are evaluated.
const POLICY_TICK: Duration = Duration::from_secs(1);

/// Runs until SIGTERM/SIGINT; returns after every session has withdrawn and closed (or the grace
/// period ran out).
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    // SIGHUP's default action would kill us; until reload exists it must do nothing harmful.
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;

    let mut engine = Engine::new(&config, Instant::now());
    let mut generation = 0u64;
    let (desired_tx, desired_rx) = watch::channel(Arc::new(publishable(&engine, generation)));

    let stop_sessions = CancellationToken::new();
    let stop_message = Arc::new(Mutex::new(String::new()));
    let mut sessions = JoinSet::new();
    let mut peer_status = Vec::new();
    for peer in &config.peers {
        let (status_tx, status_rx) = watch::channel(PeerStatus::default());
        peer_status.push((peer.name.clone(), status_rx));
        let setup = SessionSetup {
            local_as: config.local_as,
            router_id: config.router_id,
            peer: peer.clone(),
        };
        sessions.spawn(bgp::run_peer(
            setup,
            desired_rx.clone(),
            status_tx,
            stop_sessions.clone(),
            stop_message.clone(),
        ));
    }

    let stop_checks = CancellationToken::new();
    let board = SignalBoard::spawn(&config.signals, &stop_checks);
    let (sample_tx, mut sample_rx) = mpsc::channel::<CheckSample>(256);
    let check_tasks = checks::spawn_checks(&config.checks, sample_tx, stop_checks.clone());
    let mut policy_tick = tokio::time::interval(POLICY_TICK);
    policy_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(
        peers = config.peers.len(),
        checks = config.checks.len(),
        vips = config.vips.len(),
        "vipwarden {} started: nothing is announced until checks pass",
        env!("CARGO_PKG_VERSION")
    );

    let why_stop = loop {
        tokio::select! {
            Some(sample) = sample_rx.recv() => {
                if apply_sample(&mut engine, &config, &sample) {
                    generation += 1;
                    desired_tx.send_replace(Arc::new(publishable(&engine, generation)));
                }
            }
            _ = policy_tick.tick() => {
                let decisions = engine.tick(&|s| board.read(s), Instant::now());
                log_decisions(&decisions);
                if !decisions.is_empty() {
                    generation += 1;
                    desired_tx.send_replace(Arc::new(publishable(&engine, generation)));
                }
            }
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => {
                warn!("SIGHUP: configuration reload is not implemented yet; keeping the running configuration");
            }
        }
    };

    info!("{why_stop}: withdrawing all routes, then closing sessions");
    stop_checks.cancel();
    for t in check_tasks {
        t.abort();
    }
    board.abort();
    let mut last = publishable(&engine, generation + 1);
    last.routes.clear();
    let reason = format!("vipwarden stopping ({why_stop})");
    for r in last.reasons.values_mut() {
        r.clone_from(&reason);
    }
    desired_tx.send_replace(Arc::new(last));
    if let Ok(mut m) = stop_message.lock() {
        *m = format!("vipwarden node shutdown ({why_stop})");
    }
    stop_sessions.cancel();

    let all_closed = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, all_closed).await.is_err() {
        for (name, st) in &peer_status {
            warn!(peer = %name, state = ?st.borrow().state, "session did not close within {STOP_GRACE:?}; exiting anyway");
        }
    }
    info!("stopped");
    Ok(())
}

/// Feeds one sample to the engine and logs what it means; true when the desired routes changed.
fn apply_sample(engine: &mut Engine, config: &Config, sample: &CheckSample) -> bool {
    let Some(check) = config.checks.get(sample.check) else {
        return false;
    };
    let was_up = engine.checks()[sample.check].rise_fall.is_up();
    let obs = Observation {
        check: sample.check,
        ok: sample.result.ok,
        detail: sample.result.detail.clone(),
    };
    let decisions = engine.observe(&obs, sample.at);
    let state = &engine.checks()[sample.check];
    let rf = &state.rise_fall;
    match (was_up, rf.is_up(), obs.ok) {
        (false, true, _) => {
            info!(check = %check.name, "check {} up: passed {}/{} ({})", check.name, rf.rise(), rf.rise(), obs.detail)
        }
        (true, false, _) => {
            info!(check = %check.name, "check {} down: failed {}/{}: {}", check.name, rf.fall(), rf.fall(), obs.detail)
        }
        (true, true, false) => {
            info!(check = %check.name, "check {} failed {}/{}: {}", check.name, rf.streak(), rf.fall(), obs.detail)
        }
        _ => debug!(check = %check.name, ok = obs.ok, "check {}: {}", check.name, obs.detail),
    }
    log_decisions(&decisions);
    !decisions.is_empty()
}

fn log_decisions(decisions: &[crate::engine::Decision]) {
    for d in decisions {
        info!(vip = %d.vip, from = %d.from, to = %d.to, "vip {} {} -> {}: {}", d.vip, d.from, d.to, d.reason);
    }
}

fn publishable(engine: &Engine, generation: u64) -> DesiredRoutes {
    let mut d = engine.desired();
    d.generation = generation;
    d
}
