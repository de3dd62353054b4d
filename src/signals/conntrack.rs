//! Conntrack table fill. A full table makes the kernel drop new flows ("nf_conntrack: table full,
//! dropping packet") while established users and health checks may look fine.
//!
//! Values: `fill_ratio` (count / max), `count`, `max`. The files exist only while nf_conntrack is
//! loaded; without it there is no table to fill, which is "no signal", not an error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::snapshot::{MissingLog, SourceSnapshot, Ticker};

pub const FILL_RATIO: &str = "fill_ratio";
pub const COUNT: &str = "count";
pub const MAX: &str = "max";
pub const NOT_LOADED: &str = "nf_conntrack not loaded";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConntrackConfig {
    pub interval: Duration,
    /// Where procfs is mounted; "/proc" except in tests.
    pub proc_root: PathBuf,
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// Why a reading failed: the module is not loaded, or something unexpected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    NotLoaded,
    Other(String),
}

impl ReadError {
    fn reason(&self) -> &str {
        match self {
            ReadError::NotLoaded => NOT_LOADED,
            ReadError::Other(s) => s,
        }
    }
}

fn read_number(path: &Path) -> Result<u64, ReadError> {
    let mut text = String::new();
    // The file holds one number; 64 bytes is plenty and bounds a surprise.
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_string(&mut text))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotLoaded,
            _ => ReadError::Other(format!("{}: {e}", path.display())),
        })?;
    text.trim()
        .parse()
        .map_err(|_| ReadError::Other(format!("{}: not a number: {text:?}", path.display())))
}

/// Reads `(count, max)` under `proc_root`.
pub fn read(proc_root: &Path) -> Result<(u64, u64), ReadError> {
    let dir = proc_root.join("sys/net/netfilter");
    let count = read_number(&dir.join("nf_conntrack_count"))?;
    let max = read_number(&dir.join("nf_conntrack_max"))?;
    Ok((count, max))
}

/// The snapshot for one reading.
pub fn snapshot(now: Instant, reading: Result<(u64, u64), ReadError>) -> SourceSnapshot {
    let mut snap = SourceSnapshot {
        updated: Some(now),
        ..SourceSnapshot::default()
    };
    match reading {
        Ok((count, max)) => {
            snap.values.insert(COUNT.to_owned(), count as f64);
            snap.values.insert(MAX.to_owned(), max as f64);
            // max 0 would be a table that admits nothing; no ratio rather than inf.
            if max > 0 {
                snap.values
                    .insert(FILL_RATIO.to_owned(), count as f64 / max as f64);
            }
        }
        Err(e) => snap.missing = Some(e.reason().to_owned()),
    }
    snap
}

pub fn spawn(
    cfg: ConntrackConfig,
    tx: watch::Sender<SourceSnapshot>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = Ticker::new(cfg.interval, stop);
        let mut log = MissingLog::default();
        let mut told_not_loaded = false;
        while ticker.tick().await {
            let root = cfg.proc_root.clone();
            let Some(reading) = ticker
                .run(tokio::task::spawn_blocking(move || read(&root)))
                .await
            else {
                return;
            };
            let reading =
                reading.unwrap_or_else(|e| Err(ReadError::Other(format!("read task failed: {e}"))));
            if reading == Err(ReadError::NotLoaded) {
                // Expected on hosts without conntrack: say so once, at info, and stay quiet.
                if !told_not_loaded {
                    tracing::info!(source = "conntrack", "nf_conntrack not loaded: no signal");
                    told_not_loaded = true;
                }
            } else {
                log.note("conntrack", reading.as_ref().err().map(ReadError::reason));
            }
            tx.send_replace(snapshot(Instant::now(), reading));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway proc root under the temp dir, removed on drop.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> Self {
            let root = std::env::temp_dir()
                .join(format!("vipwarden-conntrack-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("sys/net/netfilter")).unwrap();
            Self(root)
        }

        fn with(self, file: &str, text: &str) -> Self {
            std::fs::write(self.0.join("sys/net/netfilter").join(file), text).unwrap();
            self
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn fill_ratio_from_count_and_max() {
        let p = FakeProc::new("ok")
            .with("nf_conntrack_count", "196608\n")
            .with("nf_conntrack_max", "262144\n");
        let snap = snapshot(Instant::now(), read(&p.0));
        assert_eq!(snap.missing, None);
        assert_eq!(snap.values[FILL_RATIO], 0.75);
        assert_eq!(snap.values[COUNT], 196608.0);
        assert_eq!(snap.values[MAX], 262144.0);
    }

    #[test]
    fn missing_files_mean_not_loaded() {
        let empty = FakeProc::new("empty");
        assert_eq!(read(&empty.0), Err(ReadError::NotLoaded));
        let half = FakeProc::new("half").with("nf_conntrack_count", "5\n");
        let snap = snapshot(Instant::now(), read(&half.0));
        assert_eq!(snap.missing.as_deref(), Some(NOT_LOADED));
        assert!(snap.values.is_empty());
    }

    #[test]
    fn garbage_and_zero_max() {
        let bad = FakeProc::new("bad")
            .with("nf_conntrack_count", "lots\n")
            .with("nf_conntrack_max", "10\n");
        let err = read(&bad.0).unwrap_err();
        assert!(
            matches!(&err, ReadError::Other(s) if s.contains("not a number")),
            "{err:?}"
        );
        // A file far longer than a number is cut, not slurped, and rejected.
        let long = FakeProc::new("long")
            .with("nf_conntrack_count", &"9".repeat(100_000))
            .with("nf_conntrack_max", "10\n");
        assert!(matches!(read(&long.0), Err(ReadError::Other(_))));
        let zero = FakeProc::new("zero")
            .with("nf_conntrack_count", "0\n")
            .with("nf_conntrack_max", "0\n");
        let snap = snapshot(Instant::now(), read(&zero.0));
        assert!(!snap.values.contains_key(FILL_RATIO));
        assert_eq!(snap.missing, None);
    }

    #[tokio::test]
    async fn task_publishes_and_stops() {
        let p = FakeProc::new("task");
        let (tx, mut rx) = watch::channel(SourceSnapshot::default());
        let stop = CancellationToken::new();
        let cfg = ConntrackConfig {
            interval: Duration::from_millis(10),
            proc_root: p.0.clone(),
        };
        let task = spawn(cfg, tx, stop.clone());
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().missing.as_deref(), Some(NOT_LOADED));
        // The module gets loaded: the next rounds see it.
        let p = p
            .with("nf_conntrack_count", "1\n")
            .with("nf_conntrack_max", "4\n");
        let snap = tokio::time::timeout(
            Duration::from_secs(2),
            rx.wait_for(|s| s.values.contains_key(FILL_RATIO)),
        )
        .await
        .unwrap()
        .unwrap()
        .clone();
        assert_eq!(snap.values[FILL_RATIO], 0.25);
        stop.cancel();
        task.await.unwrap();
        drop(p);
    }
}
