//! The fleet guard's held VIPs, persisted in the state dir (`guard-held.json`), so that a restart
//! during an outage keeps them announced, marked, until the view is complete instead of dropping
//! them. Written atomically (temp file, fsync, rename) off the async threads by the daemon.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{read_bounded, write_replace_plain};

pub const HELD_FILE: &str = "guard-held.json";
const TEMP_FILE: &str = ".guard-held.json.tmp";
const VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    version: u64,
    held: Vec<String>,
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
    pub fn load(&self) -> Result<Vec<String>, String> {
        let path = self.path();
        let bytes = match read_bounded(&path)
            .map_err(|e| format!("guard state {} ignored: {e}", path.display()))?
        {
            Some(b) => b,
            None => return Ok(Vec::new()),
        };
        let f: File = serde_json::from_slice(&bytes)
            .map_err(|e| format!("guard state {} ignored: {e}", path.display()))?;
        if f.version != VERSION {
            return Err(format!(
                "guard state {} ignored: version {} (this build reads {VERSION})",
                path.display(),
                f.version
            ));
        }
        Ok(f.held)
    }

    /// Replaces the file atomically. Blocking: call it off the async threads.
    pub fn save(&self, held: &[String]) -> Result<(), String> {
        let mut text = serde_json::to_vec(&File {
            version: VERSION,
            held: held.to_vec(),
        })
        .map_err(|e| format!("cannot encode guard state: {e}"))?;
        text.push(b'\n');
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create state dir {}: {e}", self.dir.display()))?;
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
        assert!(s.load().unwrap_err().contains("version 9"));
        std::fs::write(s.path(), b"garbage").unwrap();
        assert!(s.load().is_err());
    }
}
