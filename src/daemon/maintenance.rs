//! Operator intent that outlives the process: persisted drains, disable files, and the hooks that
//! tell other systems about state changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::engine::Decision;
use crate::ops::disable::{self, DisableFiles, Disabled};
use crate::ops::hooks::{HookEvent, HookRunner, HookSpec, DEFAULT_QUEUE_PER_VIP};
use crate::ops::state::{MaintenanceState, Mark, StateStore};

pub struct Maintenance {
    store: StateStore,
    pub state: MaintenanceState,
    pub disabled: watch::Receiver<Disabled>,
    disable_stop: CancellationToken,
    hooks: HookRunner,
    global_hook: Option<Arc<HookSpec>>,
    /// VIP name -> its own hooks (a map: with 100k VIPs a decision must not scan them all).
    vip_hooks: HashMap<String, Vec<Arc<HookSpec>>>,
    /// Problems to show in status until they are resolved (state file unusable or unwritable).
    pub errors: Vec<String>,
}

fn disable_files(config: &Config) -> DisableFiles {
    DisableFiles {
        global: config.disable_file.clone(),
        vips: config
            .vips
            .iter()
            .map(|v| (v.spec.name.clone(), v.disable_file().cloned()))
            .collect(),
    }
}

/// The global hook and the per-VIP ones.
type Hooks = (Option<Arc<HookSpec>>, HashMap<String, Vec<Arc<HookSpec>>>);

fn hooks(config: &Config) -> Hooks {
    let spec = |argv: &Vec<String>| {
        Arc::new(HookSpec {
            argv: argv.clone(),
            timeout: config.on_change_timeout,
        })
    };
    let global = config.on_change.as_ref().map(spec);
    let mut per_vip: HashMap<String, Vec<Arc<HookSpec>>> = HashMap::new();
    for v in &config.vips {
        if let Some(a) = v.on_change() {
            per_vip
                .entry(v.spec.name.to_string())
                .or_default()
                .push(spec(a));
        }
    }
    (global, per_vip)
}

impl Maintenance {
    pub fn start(config: &Config) -> Maintenance {
        let (store, loaded) = StateStore::open(&config.state_dir);
        let mut errors = Vec::new();
        let state = match loaded {
            Ok(s) => s,
            Err(e) => {
                warn!("maintenance state ignored, starting with none: {e}");
                errors.push(format!("maintenance state ignored: {e}"));
                MaintenanceState::default()
            }
        };
        let names: Vec<&str> = config.vips.iter().map(|v| &*v.spec.name).collect();
        for stale in state.stale(&names) {
            warn!("maintenance state names VIP {stale}, which is not configured; kept in case it comes back");
        }
        if !state.is_empty() {
            info!(
                "maintenance state from {}: {:?}",
                store.path().display(),
                state
            );
        }
        let disable_stop = CancellationToken::new();
        let (disabled, _task) = disable::spawn_poller(
            disable_files(config),
            disable::POLL_INTERVAL,
            disable_stop.clone(),
        );
        let (global_hook, vip_hooks) = hooks(config);
        Maintenance {
            store,
            state,
            disabled,
            disable_stop,
            hooks: HookRunner::new(DEFAULT_QUEUE_PER_VIP),
            global_hook,
            vip_hooks,
            errors,
        }
    }

    /// A new config may name other disable files and hooks; the persisted state stays.
    pub fn reconfigure(&mut self, config: &Config) {
        self.disable_stop.cancel();
        self.disable_stop = CancellationToken::new();
        let current = self.disabled.borrow().clone();
        let (rx, _task) = disable::respawn_poller(
            disable_files(config),
            disable::POLL_INTERVAL,
            self.disable_stop.clone(),
            current,
        );
        self.disabled = rx;
        (self.global_hook, self.vip_hooks) = hooks(config);
        if config.state_dir != self.store_dir() {
            warn!("state_dir changed; it takes effect at the next restart (the running state stays in {})", self.store.path().display());
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.store
            .path()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    /// Why `vip` is in maintenance now, if it is.
    pub fn reason(&self, vip: &str) -> Option<String> {
        crate::ops::maintenance_reason(vip, &self.state, &self.disabled.borrow())
    }

    /// The maintenance reason and whether the operator forced the drain (a disable file never
    /// is): what the engine's gate needs.
    pub fn reason_forced(&self, vip: &str) -> Option<(String, bool)> {
        let forced = self.state.mark_for(vip).is_some_and(|m| m.forced);
        self.reason(vip).map(|r| (r, forced))
    }

    /// What the persisted state becomes after a drain (`Some(mark)`) or undrain; `None` when it
    /// would not change (nothing to write).
    pub fn plan(
        &self,
        vip: Option<&str>,
        drain: Option<Mark>,
        configured: &[&str],
    ) -> Option<MaintenanceState> {
        let mut next = self.state.clone();
        match drain {
            Some(mark) => next.drain(vip, mark),
            None => {
                next.undrain(vip, configured);
            }
        }
        (next != self.state).then_some(next)
    }

    /// The store, for writing `plan`'s result on a blocking thread (write + fsync must not run
    /// on the runtime).
    pub fn store(&self) -> StateStore {
        self.store.clone()
    }

    /// Takes the result of saving `next`: the in-memory state changes only if the file was
    /// written.
    pub fn saved(
        &mut self,
        next: MaintenanceState,
        result: Result<(), String>,
    ) -> Result<(), String> {
        match result {
            Ok(()) => {
                self.state = next;
                self.errors
                    .retain(|e| !e.starts_with("maintenance state not saved"));
                Ok(())
            }
            Err(e) => {
                let msg = format!("maintenance state not saved: {e}");
                warn!("{msg}");
                if !self.errors.contains(&msg) {
                    self.errors.push(msg);
                }
                Err(e)
            }
        }
    }

    /// Runs the configured hooks for route-state changes (never waits for them). O(1) per
    /// decision; `prefixes` is asked only for VIPs that have a hook.
    pub fn notify(&self, decisions: &[Decision], prefixes: impl Fn(&str) -> Vec<String>) {
        if self.global_hook.is_none() && self.vip_hooks.is_empty() {
            return;
        }
        for d in decisions {
            let own = self.vip_hooks.get(&*d.vip);
            if self.global_hook.is_none() && own.is_none() {
                continue;
            }
            let ev = HookEvent {
                vip: d.vip.to_string(),
                state: d.to,
                previous: d.from,
                reason: d.reason.clone(),
                prefixes: prefixes(&d.vip),
            };
            if let Some(h) = &self.global_hook {
                self.hooks.fire(h.clone(), ev.clone());
            }
            for h in own.into_iter().flatten() {
                self.hooks.fire(h.clone(), ev.clone());
            }
        }
    }

    /// At stop: let the last hooks finish (bounded).
    pub async fn finish(&self, limit: Duration) {
        self.disable_stop.cancel();
        if !self.hooks.idle(limit).await {
            warn!("hooks still running after {limit:?}; exiting anyway");
        }
    }
}
