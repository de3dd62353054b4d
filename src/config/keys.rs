//! Session keys from `peers[].password_file` (TCP-MD5) and `peers[].tcp_ao` (TCP-AO): reading the
//! key files safely at load time, and refusing TCP-AO on a kernel without it (a config error, never
//! a silent downgrade to an unsigned session).
//!
//! Owns: key-file contents (1-80 bytes; the file rule is `secret_file`'s). May not touch: sockets
//! (that is `bgp::transport`), anything that prints a key.

use std::path::Path;

use super::problems::Problems;
use super::raw::RawPeer;
use super::secret_file::{self, Owner};
use crate::bgp::transport::{self, AoAlgorithm, AoKey, Auth, Secret, MAX_KEY_LEN};

pub(super) fn abs_path<'a>(p: &mut Problems, path: &str, v: Option<&'a str>) -> Option<&'a Path> {
    let s = v?;
    if !s.starts_with('/') {
        p.add(path, format!("{path} \"{s}\" must be an absolute path"));
        return None;
    }
    Some(Path::new(s))
}

/// `peers[i]`'s authentication, with every problem added to `p`.
pub(super) fn peer_auth(p: &mut Problems, path: &str, r: &RawPeer) -> Auth {
    let md5_path = format!("{path}.password_file");
    let md5 = abs_path(p, &md5_path, r.password_file.as_deref())
        .and_then(|f| key_or_problem(p, &md5_path, f, "TCP-MD5 password"));
    let Some(ao) = &r.tcp_ao else {
        return md5.map(Auth::Md5).unwrap_or_default();
    };
    let ao_path = format!("{path}.tcp_ao");
    if r.password_file.is_some() {
        p.add(
            ao_path.as_str(),
            format!("{path} sets both password_file (TCP-MD5) and tcp_ao: a session uses one of them (RFC 5925 7.7)"),
        );
    }
    let id = |p: &mut Problems, key: &str, v: Option<u64>| -> u8 {
        let kp = format!("{ao_path}.{key}");
        match v {
            None => {
                p.add(
                    kp.as_str(),
                    format!("{kp} is required (0-255, as configured on the router)"),
                );
                0
            }
            Some(n) if n > 255 => {
                p.add(
                    kp.as_str(),
                    format!("{kp} {n} is out of range (a TCP-AO key id is 0-255)"),
                );
                0
            }
            Some(n) => n as u8,
        }
    };
    let send_id = id(p, "send_id", ao.send_id);
    let recv_id = id(p, "recv_id", ao.recv_id);
    let alg_path = format!("{ao_path}.algorithm");
    let algorithm = match ao.algorithm.as_deref() {
        None => AoAlgorithm::HmacSha256,
        Some(a) => AoAlgorithm::parse(a).unwrap_or_else(|| {
            p.add(
                alg_path.as_str(),
                format!("{alg_path} \"{a}\" is not supported (use hmac-sha-256)"),
            );
            AoAlgorithm::HmacSha256
        }),
    };
    let key_path = format!("{ao_path}.key_file");
    let key = match ao.key_file.as_deref() {
        None => {
            p.add(key_path.as_str(), format!("{key_path} is required"));
            None
        }
        s => abs_path(p, &key_path, s).and_then(|f| key_or_problem(p, &key_path, f, "TCP-AO key")),
    };
    if let Err(why) = transport::tcp_ao_supported() {
        p.add(
            ao_path.as_str(),
            format!("{ao_path} cannot be used: {why}; use password_file (TCP-MD5) instead, or run on a kernel with TCP-AO"),
        );
        return Auth::None;
    }
    match key {
        Some(key) => Auth::Ao(AoKey {
            key,
            send_id,
            recv_id,
            algorithm,
        }),
        None => Auth::None,
    }
}

pub(super) fn key_or_problem(
    p: &mut Problems,
    path: &str,
    file: &Path,
    what: &str,
) -> Option<Secret> {
    match read_key(file, what) {
        Ok(k) => Some(k),
        Err(e) => {
            p.add(path, format!("{path}: {e}"));
            None
        }
    }
}

/// Reads a key file under the secret-file rule (`secret_file`), 1-80 bytes after removing one
/// trailing newline (`echo secret > file`). Other bytes, spaces included, are part of the key, as
/// routers take them.
pub(super) fn read_key(file: &Path, what: &str) -> Result<Secret, KeyFileError> {
    let mut raw =
        secret_file::read(file, what, 4096, Owner::ThisProcess).map_err(KeyFileError::Secret)?;
    if raw.ends_with(b"\n") {
        raw.pop();
        if raw.ends_with(b"\r") {
            raw.pop();
        }
    }
    if raw.is_empty() || raw.len() > MAX_KEY_LEN {
        return Err(KeyFileError::Length {
            path: file.to_path_buf(),
            what: what.to_owned(),
            len: raw.len(),
        });
    }
    Ok(Secret::new(raw.as_slice()))
}

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// The secret-file rule (owner, mode) or the read itself.
    Secret(secret_file::SecretFileError),
    /// Empty, or longer than the kernel takes.
    Length {
        path: std::path::PathBuf,
        what: String,
        len: usize,
    },
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFileError::Secret(e) => f.write_str(&e.message),
            KeyFileError::Length { path, what, len } => write!(
                f,
                "{}: the {what} is {len} bytes; the kernel takes 1-{MAX_KEY_LEN}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyFileError {}
