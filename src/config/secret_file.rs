//! The one rule for every file that holds a secret (API token, TCP-MD5 and TCP-AO keys, the API's
//! TLS key, BFD keys): a regular file owned by root or the user this process runs as, that its
//! group cannot write and others cannot read, write or run. Whoever can write the file can plant
//! a key; whoever can read it can forge our sessions or commands.
//!
//! Every reader of a secret goes through [`read`], so `check-config` and the daemon (at start and
//! on SIGHUP) apply the same rule and print the same words. The checks run on the opened file
//! (fstat), not on the path, so a file swapped between the check and the read is still checked.
//! The bytes come back in a buffer that is zeroed when dropped.
//!
//! Owns: the rule and its messages. May not touch: what a secret's bytes mean (each reader
//! trims and validates its own format).

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use zeroize::Zeroizing;

/// The rule, as every message states it.
pub const RULE: &str =
    "a secret file must be owned by root or the daemon's user, not group-writable, and have no access for others";

/// Why a secret file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFileError {
    pub kind: SecretFileErrorKind,
    /// Complete: names the file, what it holds, its mode and owner, the rule and the fix.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFileErrorKind {
    /// The mode or the owner breaks [`RULE`].
    UnsafeMode,
    /// This process may not open it (EACCES).
    PermissionDenied,
    /// Missing, not a regular file, unreadable, or larger than its reader takes.
    Invalid,
}

impl fmt::Display for SecretFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SecretFileError {}

/// Whose files to accept besides root's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The user this process runs as (the daemon, and `check-config` run as the daemon's user,
    /// as the systemd unit's ExecReload does).
    ThisProcess,
    /// Any owner: the CLI's reading of the daemon's token, whose user it cannot know. The mode
    /// rule still applies.
    Any,
}

/// Reads the secret in `path`: at most `max_bytes` (a larger file is refused as the wrong file).
/// `what` names the contents in messages ("api token", "TCP-MD5 password", "BFD key").
pub fn read(
    path: &Path,
    what: &str,
    max_bytes: u64,
    owner: Owner,
) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    use SecretFileErrorKind::*;
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
            PermissionDenied
        } else {
            Invalid
        };
        err(kind, format!("{what} file {shown}: cannot open: {e}"))
    })?;
    let meta = file
        .metadata()
        .map_err(|e| err(Invalid, format!("{what} file {shown}: cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(err(
            Invalid,
            format!("{what} file {shown}: not a regular file"),
        ));
    }
    let me = match owner {
        Owner::ThisProcess => Some(effective_uid()),
        Owner::Any => None,
    };
    check_mode_and_owner(path, what, meta.mode(), meta.uid(), me)?;
    if meta.len() > max_bytes {
        return Err(err(
            Invalid,
            format!(
                "{what} file {shown} is {} bytes; a {what} is at most {max_bytes} bytes (wrong file?)",
                meta.len()
            ),
        ));
    }
    // Sized up front so the buffer never reallocates (a reallocation would leave a copy behind).
    let mut raw = Zeroizing::new(Vec::with_capacity(max_bytes as usize + 1));
    // take(): the file may grow between fstat and read.
    (&mut file)
        .take(max_bytes + 1)
        .read_to_end(&mut raw)
        .map_err(|e| err(Invalid, format!("{what} file {shown}: cannot read: {e}")))?;
    if raw.len() as u64 > max_bytes {
        return Err(err(
            Invalid,
            format!("{what} file {shown} grew past {max_bytes} bytes while being read"),
        ));
    }
    Ok(raw)
}

/// Checks the rule on `path` without keeping its contents (for a secret another library reads).
pub fn check(path: &Path, what: &str) -> Result<(), SecretFileError> {
    read(path, what, 1 << 20, Owner::ThisProcess).map(drop)
}

fn err(kind: SecretFileErrorKind, message: String) -> SecretFileError {
    SecretFileError { kind, message }
}

pub(crate) fn effective_uid() -> u32 {
    crate::sys::process::effective_uid()
}

/// The rule itself, apart from the file system so tests can use any owner. `me`: the uid that
/// may own the file besides root; None skips the owner part.
pub fn check_mode_and_owner(
    path: &Path,
    what: &str,
    mode: u32,
    owner: u32,
    me: Option<u32>,
) -> Result<(), SecretFileError> {
    let shown = path.display();
    let mode = mode & 0o7777;
    let broken = |why: &str, fix: String| {
        err(
            SecretFileErrorKind::UnsafeMode,
            format!(
                "{what} file {shown} (mode {mode:04o}, owner uid {owner}) is {why}; {RULE}: run `{fix}`"
            ),
        )
    };
    if mode & 0o007 != 0 {
        let why = if mode & 0o002 != 0 {
            "world-writable: any local user could plant a secret"
        } else if mode & 0o004 != 0 {
            "world-readable: any local user could read the secret"
        } else {
            "accessible to others"
        };
        return Err(broken(why, format!("chmod o-rwx {shown}")));
    }
    if mode & 0o020 != 0 {
        return Err(broken(
            "group-writable: any member of its group could plant a secret",
            format!("chmod g-w {shown}"),
        ));
    }
    if let Some(me) = me {
        if owner != 0 && owner != me {
            return Err(broken(
                &format!(
                    "owned by neither root nor the daemon's user (this process runs as uid {me}); whoever owns it can change the secret"
                ),
                format!("chown root {shown}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn temp_file(name: &str, content: &[u8], mode: u32) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vipwarden-secret-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn private_files_are_read() {
        for mode in [0o600, 0o640, 0o400, 0o440] {
            let p = temp_file(&format!("ok{mode:o}"), b"k3y\n", mode);
            let got = read(&p, "test key", 80, Owner::ThisProcess).unwrap();
            assert_eq!(&got[..], b"k3y\n", "{mode:o}");
        }
    }

    #[test]
    fn every_kind_of_other_access_or_group_write_is_refused_naming_file_mode_owner_rule() {
        for (mode, what) in [
            (0o644, "world-readable"),
            (0o602, "world-writable"),
            (0o601, "accessible to others"),
            (0o660, "group-writable"),
            (0o666, "world-writable"),
        ] {
            let p = temp_file(&format!("bad{mode:o}"), b"k3y\n", mode);
            let e = read(&p, "TCP-MD5 password", 80, Owner::ThisProcess).unwrap_err();
            assert_eq!(e.kind, SecretFileErrorKind::UnsafeMode, "{e}");
            let m = &e.message;
            assert!(
                m.starts_with(&format!("TCP-MD5 password file {}", p.display())),
                "{m}"
            );
            assert!(
                m.contains(&format!("(mode {mode:04o}, owner uid {}", effective_uid())),
                "{m}"
            );
            assert!(m.contains(what), "{mode:o}: {m}");
            assert!(m.contains(RULE), "{m}");
        }
    }

    #[test]
    fn owner_must_be_root_or_this_process() {
        let p = Path::new("/etc/vipwarden/key");
        assert!(check_mode_and_owner(p, "k", 0o100640, 0, Some(999)).is_ok());
        assert!(check_mode_and_owner(p, "k", 0o100600, 999, Some(999)).is_ok());
        let e = check_mode_and_owner(p, "k", 0o100600, 1234, Some(999)).unwrap_err();
        assert_eq!(e.kind, SecretFileErrorKind::UnsafeMode);
        assert!(e.message.contains("owner uid 1234"), "{e}");
        assert!(e.message.contains("uid 999"), "{e}");
        assert!(e.message.contains("chown root"), "{e}");
        // Root as the process: another user's file is still refused.
        assert!(check_mode_and_owner(p, "k", 0o100600, 1234, Some(0)).is_err());
        // Any owner: only the mode counts.
        assert!(check_mode_and_owner(p, "k", 0o100600, 1234, None).is_ok());
        assert!(check_mode_and_owner(p, "k", 0o100604, 1234, None).is_err());
    }

    #[test]
    fn missing_directory_and_oversized_files_are_refused() {
        let e = read(Path::new("/nonexistent/vw/key"), "k", 80, Owner::Any).unwrap_err();
        assert_eq!(e.kind, SecretFileErrorKind::Invalid);
        assert!(e.message.contains("cannot open"), "{e}");
        let p = temp_file("dir", b"x", 0o600);
        let e = read(p.parent().unwrap(), "k", 80, Owner::Any).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        let p = temp_file("big", &[b'a'; 81], 0o600);
        let e = read(&p, "k", 80, Owner::Any).unwrap_err();
        assert!(e.message.contains("81 bytes"), "{e}");
        assert!(check(&p, "k").is_ok());
    }
}
