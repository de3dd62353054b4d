//! Why a state file could not be read or written. Display texts are the messages operators see in
//! logs and status; variants let callers tell a missing directory from a bad file.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Reading a small file from the state dir failed (`read_bounded`).
#[derive(Debug)]
pub enum ReadError {
    Stat(io::Error),
    NotRegularFile,
    Open(io::Error),
    Read(io::Error),
    TooLarge { max: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Stat(e) => write!(f, "cannot stat: {e}"),
            ReadError::NotRegularFile => f.write_str("not a regular file"),
            ReadError::Open(e) => write!(f, "cannot open: {e}"),
            ReadError::Read(e) => write!(f, "cannot read: {e}"),
            ReadError::TooLarge { max } => write!(f, "larger than {max} bytes"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Stat(e) | ReadError::Open(e) | ReadError::Read(e) => Some(e),
            ReadError::NotRegularFile | ReadError::TooLarge { .. } => None,
        }
    }
}

/// The maintenance state file exists but cannot be used; the daemon runs with no maintenance.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        source: ReadError,
    },
    /// The content is not a state this build reads. `kept` says where the file went.
    Parse {
        path: PathBuf,
        why: String,
        kept: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, source } => {
                write!(f, "state file {} ignored: {source}", path.display())
            }
            LoadError::Parse { path, why, kept } => write!(
                f,
                "state file {} ignored: {why}{kept}; running with no maintenance",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::Parse { .. } => None,
        }
    }
}

/// Which step of the atomic replace failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    CreateTemp,
    WriteTemp,
    FsyncTemp,
    Rename,
    FsyncDir,
}

/// Saving a file into the state dir failed: the file on disk may be the old one.
#[derive(Debug)]
pub enum SaveError {
    /// `what` names the content ("state", "guard state").
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    CreateDir {
        dir: PathBuf,
        source: io::Error,
    },
    /// `path` is the temp file, or the directory for `FsyncDir`; `dest` is the final name.
    Write {
        step: WriteStep,
        path: PathBuf,
        dest: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::Encode { what, source } => write!(f, "cannot encode {what}: {source}"),
            SaveError::CreateDir { dir, source } => {
                write!(f, "cannot create state dir {}: {source}", dir.display())
            }
            SaveError::Write {
                step,
                path,
                dest,
                source,
            } => {
                let p = path.display();
                match step {
                    WriteStep::CreateTemp => write!(f, "cannot create {p}: {source}"),
                    WriteStep::WriteTemp => write!(f, "cannot write {p}: {source}"),
                    WriteStep::FsyncTemp => write!(f, "cannot fsync {p}: {source}"),
                    WriteStep::Rename => {
                        write!(f, "cannot rename {p} to {}: {source}", dest.display())
                    }
                    WriteStep::FsyncDir => write!(f, "cannot fsync directory {p}: {source}"),
                }
            }
        }
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SaveError::Encode { source, .. } => Some(source),
            SaveError::CreateDir { source, .. } | SaveError::Write { source, .. } => Some(source),
        }
    }
}
