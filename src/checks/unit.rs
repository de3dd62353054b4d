//! `unit` check: passes while a systemd unit's ActiveState is `active` (or `reloading`).
//!
//! Talks to systemd over the D-Bus system bus (zbus): LoadUnit, then the unit's ActiveState,
//! kept current by PropertiesChanged signals (after Manager.Subscribe); a change wakes
//! [`UnitProbe::event`], so the scheduler probes at once. Without systemd or D-Bus (containers,
//! other inits) every probe fails with "missing: <why>" and the connection is retried at the next
//! probe; nothing panics. Owns only its bus connection.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;
use zbus::zvariant::OwnedObjectPath;

use super::Failure;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";

/// Which bus to use: the system bus where systemd runs (the daemon), or a given address (tests).
#[derive(Clone, Debug)]
pub(super) enum Bus {
    System,
    #[cfg_attr(not(test), allow(dead_code))]
    Address(String),
}

pub(super) struct UnitProbe {
    unit: String,
    bus: Bus,
    watch: Mutex<Option<Watch>>,
    changed: Arc<Notify>,
}

/// A live subscription: the unit's proxy (its property cache follows the signals) and the task
/// that turns property changes into wake-ups.
struct Watch {
    proxy: zbus::Proxy<'static>,
    forward: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

impl UnitProbe {
    pub(super) fn new(unit: String, bus: Bus) -> UnitProbe {
        UnitProbe {
            unit,
            bus,
            watch: Mutex::new(None),
            changed: Arc::new(Notify::new()),
        }
    }

    /// `failed` and `inactive` are definitive failures (systemd says the service is not
    /// running); transitional states (`activating`, `deactivating`) and bus errors are not.
    pub(super) async fn run(&self) -> Result<String, Failure> {
        let mut watch = self.watch.lock().await;
        if watch.is_none() {
            *watch = Some(self.connect().await?);
        }
        let Some(w) = watch.as_ref() else {
            return Err("missing: no D-Bus connection".to_string().into());
        };
        match w.proxy.get_property::<String>("ActiveState").await {
            Ok(state) if state == "active" || state == "reloading" => {
                Ok(format!("unit {} {state}", self.unit))
            }
            Ok(state) => {
                let detail = format!("unit {} is {state}", self.unit);
                Err(if state == "failed" || state == "inactive" {
                    Failure::definitive(detail)
                } else {
                    Failure::from(detail)
                })
            }
            Err(e) => {
                // Start over at the next probe (systemd restarted, bus gone).
                *watch = None;
                Err(format!("unit {}: D-Bus: {e}", self.unit).into())
            }
        }
    }

    /// Resolves when the unit's ActiveState changed (or the subscription ended). Cancel-safe: a
    /// change that arrives between two waits is kept as a permit.
    pub(super) async fn event(&self) {
        self.changed.notified().await;
    }

    async fn connect(&self) -> Result<Watch, String> {
        let conn = match &self.bus {
            Bus::System => {
                // sd_booted(3): systemd runs as init iff this directory exists.
                let booted =
                    tokio::task::spawn_blocking(|| Path::new("/run/systemd/system").is_dir())
                        .await
                        .unwrap_or(false);
                if !booted {
                    return Err(
                        "missing: systemd is not running on this host (no /run/systemd/system)"
                            .to_string(),
                    );
                }
                zbus::Connection::system().await
            }
            Bus::Address(a) => match zbus::connection::Builder::address(a.as_str()) {
                Ok(b) => b.build().await,
                Err(e) => Err(e),
            },
        }
        .map_err(|e| format!("missing: cannot reach the D-Bus system bus: {e}"))?;
        let unit = &self.unit;
        let manager = zbus::Proxy::new(&conn, SYSTEMD, MANAGER_PATH, MANAGER)
            .await
            .map_err(|e| format!("missing: systemd manager: {e}"))?;
        // Without a subscriber systemd sends no unit signals.
        let _: () = manager
            .call("Subscribe", &())
            .await
            .map_err(|e| format!("missing: systemd Subscribe: {e}"))?;
        let path: OwnedObjectPath = manager
            .call("LoadUnit", &(unit.as_str(),))
            .await
            .map_err(|e| format!("unit {unit}: {e}"))?;
        let proxy = zbus::Proxy::new_owned(conn, SYSTEMD, path, UNIT)
            .await
            .map_err(|e| format!("unit {unit}: {e}"))?;
        let mut changes = proxy
            .receive_property_changed::<String>("ActiveState")
            .await;
        let changed = self.changed.clone();
        let forward = tokio::spawn(async move {
            while changes.next().await.is_some() {
                changed.notify_one();
            }
            // The subscription ended: wake the scheduler so the next probe reconnects.
            changed.notify_one();
        });
        Ok(Watch { proxy, forward })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use zbus::object_server::SignalEmitter;

    use super::*;

    #[tokio::test]
    async fn without_systemd_it_is_missing_with_the_reason() {
        if Path::new("/run/systemd/system").is_dir() {
            // This host runs systemd: the path under test cannot occur here.
            eprintln!("systemd runs here; the no-systemd path is covered on hosts without it");
            return;
        }
        let p = UnitProbe::new("nginx.service".into(), Bus::System);
        for _ in 0..2 {
            let e = p.run().await.unwrap_err().detail;
            assert_eq!(
                e,
                "missing: systemd is not running on this host (no /run/systemd/system)"
            );
        }
        // No subscription, so no event.
        assert!(tokio::time::timeout(Duration::from_millis(50), p.event())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn unreachable_bus_is_missing_with_the_reason() {
        let p = UnitProbe::new(
            "nginx.service".into(),
            Bus::Address("unix:path=/nonexistent/vw-bus".into()),
        );
        let e = p.run().await.unwrap_err().detail;
        assert!(
            e.starts_with("missing: cannot reach the D-Bus system bus"),
            "{e}"
        );
    }

    /// A stand-in for systemd on a private bus: one unit whose ActiveState the test sets.
    struct FakeManager;

    #[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
    impl FakeManager {
        fn subscribe(&self) {}
        fn load_unit(&self, name: &str) -> zbus::fdo::Result<OwnedObjectPath> {
            if name == "web.service" {
                Ok(OwnedObjectPath::try_from(UNIT_PATH).unwrap())
            } else {
                Err(zbus::fdo::Error::Failed(format!("Unit {name} not found.")))
            }
        }
    }

    const UNIT_PATH: &str = "/org/freedesktop/systemd1/unit/web_2eservice";

    struct FakeUnit {
        state: String,
    }

    #[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
    impl FakeUnit {
        #[zbus(property)]
        fn active_state(&self) -> String {
            self.state.clone()
        }
    }

    /// A private dbus-daemon, killed on drop.
    struct BusDaemon(Child);

    impl Drop for BusDaemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn private_bus() -> Option<(BusDaemon, String)> {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        Some((BusDaemon(child), line.trim().to_string()))
    }

    async fn set_state(server: &zbus::Connection, state: &str) {
        let iface = server
            .object_server()
            .interface::<_, FakeUnit>(UNIT_PATH)
            .await
            .unwrap();
        let mut unit = iface.get_mut().await;
        unit.state = state.to_string();
        let emitter: &SignalEmitter<'static> = iface.signal_emitter();
        unit.active_state_changed(emitter).await.unwrap();
    }

    #[tokio::test]
    async fn follows_active_state_through_signals() {
        let Some((_daemon, address)) = private_bus() else {
            panic!("dbus-daemon is needed for this test (Debian package dbus-daemon)");
        };
        let server = zbus::connection::Builder::address(address.as_str())
            .unwrap()
            .name(SYSTEMD)
            .unwrap()
            .serve_at(MANAGER_PATH, FakeManager)
            .unwrap()
            .serve_at(
                UNIT_PATH,
                FakeUnit {
                    state: "active".into(),
                },
            )
            .unwrap()
            .build()
            .await
            .unwrap();
        let p = UnitProbe::new("web.service".into(), Bus::Address(address.clone()));
        assert_eq!(p.run().await.unwrap(), "unit web.service active");
        // Let the initial value's wake-up (if any) pass, then a change must wake us.
        let _ = tokio::time::timeout(Duration::from_millis(100), p.event()).await;
        let waiter = async {
            tokio::time::timeout(Duration::from_secs(2), p.event())
                .await
                .expect("ActiveState change event")
        };
        let (_, ()) = tokio::join!(set_state(&server, "failed"), waiter);
        let e = p.run().await.unwrap_err();
        assert_eq!(e.detail, "unit web.service is failed");
        assert!(e.definitive, "systemd says the unit failed");
        set_state(&server, "active").await;
        tokio::time::timeout(Duration::from_secs(2), p.event())
            .await
            .unwrap();
        assert_eq!(p.run().await.unwrap(), "unit web.service active");

        let nope = UnitProbe::new("nope.service".into(), Bus::Address(address));
        let e = nope.run().await.unwrap_err().detail;
        assert!(
            e.starts_with("unit nope.service:") && e.contains("Unit nope.service not found."),
            "{e}"
        );
    }
}
