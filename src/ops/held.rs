//! The fleet guard's held VIPs, persisted in the state dir (`guard-held.json`), so that a restart
//! during an outage keeps them announced, marked, until the view is complete instead of dropping
//! them. Written atomically (temp file, fsync, rename) off the async threads by the daemon.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{read_bounded, write_replace_plain, ReadError, SaveError};

pub const HELD_FILE: &str = "guard-held.json";
const TEMP_FILE: &str = ".guard-held.json.tmp";
const VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    version: u64,
    held: Vec<String>,
}

/// The held-VIPs file exists but cannot be used; the daemon starts with none held.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        source: ReadError,
    },
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    Version {
        path: PathBuf,
        found: u64,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, source } => {
                write!(f, "guard state {} ignored: {source}", path.display())
            }
            LoadError::Parse { path, source } => {
                write!(f, "guard state {} ignored: {source}", path.display())
            }
            LoadError::Version { path, found } => write!(
                f,
                "guard state {} ignored: version {found} (this build reads {VERSION})",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::Parse { source, .. } => Some(source),
            LoadError::Version { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct HeldStore {
    dir: PathBuf,
}

impl HeldStore {
    pub fn new(dir: &Path) -> HeldStore {
        HeldStore {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(HELD_FILE)
    }

    /// The held VIPs of the last run; a missing file is none. An unusable file is an `Err`
    /// (the caller logs it and starts with none: the gate then starts every VIP out, which is the
    /// behaviour without this file).
    pub fn load(&self) -> Result<Vec<String>, LoadError> {
        let path = self.path();
        let bytes = match read_bounded(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Vec::new()),
            Err(source) => return Err(LoadError::Read { path, source }),
        };
        let f: File = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(source) => return Err(LoadError::Parse { path, source }),
        };
        if f.version != VERSION {
            return Err(LoadError::Version {
                path,
                found: f.version,
            });
        }
        Ok(f.held)
    }

    /// Replaces the file atomically. Blocking: call it off the async threads.
    pub fn save(&self, held: &[String]) -> Result<(), SaveError> {
        let mut text = serde_json::to_vec(&File {
            version: VERSION,
            held: held.to_vec(),
        })
        .map_err(|source| SaveError::Encode {
            what: "guard state",
            source,
        })?;
        text.push(b'\n');
        std::fs::create_dir_all(&self.dir).map_err(|source| SaveError::CreateDir {
            dir: self.dir.clone(),
            source,
        })?;
        write_replace_plain(&self.dir.join(TEMP_FILE), &self.path(), &self.dir, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_bad() {
        let d = tempfile::tempdir().unwrap();
        let s = HeldStore::new(d.path());
        assert_eq!(s.load().unwrap(), Vec::<String>::new());
        s.save(&["web".into(), "dns".into()]).unwrap();
        assert_eq!(
            s.load().unwrap(),
            vec!["web".to_string(), "dns".to_string()]
        );
        std::fs::write(s.path(), b"{\"version\":9,\"held\":[]}").unwrap();
        let err = s.load().unwrap_err();
        assert!(matches!(err, LoadError::Version { found: 9, .. }), "{err}");
        assert!(err.to_string().contains("version 9"));
        std::fs::write(s.path(), b"garbage").unwrap();
        assert!(s.load().is_err());
    }
}
