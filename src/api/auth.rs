//! Bearer-token handling for mutating API requests: loading the token file safely and comparing
//! what a client sent without leaking the token through timing.

use std::net::SocketAddr;
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::secret_file::{self, Owner, SecretFileErrorKind};

/// A token longer than this is almost certainly the wrong file (a key, a log), not a token.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Why a token file was refused. `Access` (mode, owner, or the OS refusing to open it) gets its
/// own kind so the CLI can tell an operator that the file's permissions, not their user, are the
/// problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub kind: TokenErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// The file's mode or owner is unsafe (others may read or plant a token).
    UnsafeMode,
    /// This process may not open it (EACCES).
    PermissionDenied,
    /// Missing, not a regular file, empty, too large, not a token.
    Invalid,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TokenError {}

fn err(kind: TokenErrorKind, message: String) -> TokenError {
    TokenError { kind, message }
}

/// Reads the API bearer token from `path`.
///
/// The file must follow the secret-file rule (`config::secret_file`: owned by root or this
/// process's user, not group-writable, no access for others) and be a regular file of at most
/// 4 KiB holding characters that can travel in an `Authorization` header. Surrounding whitespace
/// (the trailing newline of `echo secret > file`) is trimmed. `check-config` runs the same
/// function.
pub fn load_token(path: &Path) -> Result<Zeroizing<String>, TokenError> {
    read_token(path, Owner::ThisProcess)
}

/// The CLI's reading of the same file: every rule of [`load_token`] except the owner, which is
/// checked against the daemon's user, not the (often root) user running the CLI.
pub fn load_token_for_client(path: &Path) -> Result<Zeroizing<String>, TokenError> {
    read_token(path, Owner::Any)
}

fn read_token(path: &Path, owner: Owner) -> Result<Zeroizing<String>, TokenError> {
    use TokenErrorKind::*;
    let shown = path.display();
    let raw = secret_file::read(path, "api token", MAX_TOKEN_BYTES, owner).map_err(|e| {
        let kind = match e.kind {
            SecretFileErrorKind::UnsafeMode => UnsafeMode,
            SecretFileErrorKind::PermissionDenied => PermissionDenied,
            SecretFileErrorKind::Invalid => Invalid,
        };
        err(kind, e.message)
    })?;
    let text = std::str::from_utf8(&raw).map_err(|_| {
        err(
            Invalid,
            format!("api token file {shown}: not valid UTF-8 text"),
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err(Invalid, format!("api token file {shown} is empty; put a random token in it, e.g. `openssl rand -hex 32 > {shown}`")));
    }
    if let Some(bad) = token.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(err(Invalid, format!(
            "api token file {shown}: the token contains {bad:?}; only printable ASCII without spaces can be sent in an Authorization header"
        )));
    }
    Ok(Zeroizing::new(token.to_string()))
}

/// Whether `addr` only accepts connections from this host. The daemon refuses a non-loopback
/// `api.listen` without a token file, because reads would then be open to the network.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => a.ip().is_loopback(),
        // ::ffff:127.0.0.1 is loopback too; to_ipv4_mapped keeps ::1 out of the v4 branch.
        SocketAddr::V6(a) => {
            a.ip().is_loopback() || a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// What requests are checked against; replaced whole when SIGHUP re-reads the `api:` section.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    /// `api.tls` is set: connections are TLS with `tls`; while it could not be loaded (None),
    /// connections are closed rather than served in clear text.
    pub tls_required: bool,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The bearer token for changes (and reads when `for_reads`).
    pub token: Option<Zeroizing<String>>,
    /// Why there is no token although `api.token_file` is set (the file was refused).
    pub refused: Option<String>,
    /// `api.read_token`: reads need the token too.
    pub for_reads: bool,
    /// What the operator must see in `/v1/status` errors (token file, listener).
    pub problems: Vec<String>,
}

impl Credentials {
    #[cfg(test)]
    pub fn with_token(token: Option<&str>) -> Self {
        Credentials {
            token: token.map(|t| Zeroizing::new(t.to_string())),
            ..Credentials::default()
        }
    }
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// The daemon has no token: nothing can authorize a change.
    NotConfigured,
    Missing,
    /// The header is there but not `Bearer <token>`.
    Malformed,
    Wrong,
}

impl AuthFailure {
    /// For logs: no Rust debug text.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthFailure::NotConfigured => "no configured",
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Wrong => "wrong",
        }
    }
}

/// Checks an `Authorization` header value against the configured token.
pub(crate) fn check_bearer(
    expected: Option<&str>,
    header: Option<&[u8]>,
) -> Result<(), AuthFailure> {
    let expected = expected.ok_or(AuthFailure::NotConfigured)?;
    let header = header.ok_or(AuthFailure::Missing)?;
    // RFC 7235: the scheme is case-insensitive.
    let (scheme, rest) = match header.iter().position(|&b| b == b' ') {
        Some(i) => (&header[..i], &header[i + 1..]),
        None => return Err(AuthFailure::Malformed),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthFailure::Malformed);
    }
    let sent = rest.trim_ascii();
    if sent.is_empty() {
        return Err(AuthFailure::Malformed);
    }
    // Constant time over the contents; only the length can leak, which is not the secret.
    if bool::from(sent.ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AuthFailure::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn temp_file(name: &str, content: &[u8], mode: u32) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vipwarden-auth-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn token_file_private_is_read_and_trimmed() {
        let p = temp_file("ok", b"s3cret-token\n", 0o640);
        assert_eq!(load_token(&p).unwrap().as_str(), "s3cret-token");
    }

    #[test]
    fn token_file_world_readable_is_refused_with_the_fix() {
        let p = temp_file("world", b"s3cret\n", 0o644);
        let e = load_token(&p).unwrap_err();
        assert_eq!(e.kind, TokenErrorKind::UnsafeMode);
        assert!(e.message.contains("(mode 0644, owner uid"), "{e}");
        assert!(e.message.contains("world-readable"), "{e}");
        assert!(e.message.contains("chmod o-rwx"), "{e}");
    }

    #[test]
    fn token_file_empty_missing_or_spaced_is_refused() {
        let p = temp_file("empty", b" \n", 0o600);
        assert!(load_token(&p).unwrap_err().message.contains("is empty"));
        let p = temp_file("space", b"two words\n", 0o600);
        assert!(load_token(&p).unwrap_err().message.contains("contains ' '"));
        let e = load_token(Path::new("/nonexistent/vipwarden/token")).unwrap_err();
        assert!(e.message.contains("cannot open"), "{e}");
        assert_eq!(e.kind, TokenErrorKind::Invalid);
        let dir = temp_file("dir", b"x", 0o600);
        let e = load_token(dir.parent().unwrap()).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn token_file_writable_by_others_is_refused() {
        for (mode, what) in [(0o602, "world-writable"), (0o620, "group-writable")] {
            let p = temp_file(&format!("w{mode:o}"), b"s3cret\n", mode);
            let e = load_token(&p).unwrap_err();
            assert_eq!(e.kind, TokenErrorKind::UnsafeMode, "{e}");
            assert!(e.message.contains(what), "{mode:o}: {e}");
        }
        // 0640 and 0600 are fine.
        let p = temp_file("g-r", b"s3cret\n", 0o640);
        assert_eq!(load_token(&p).unwrap().as_str(), "s3cret");
    }

    #[test]
    fn bearer_check_distinguishes_every_failure() {
        let t = Some("abc123");
        assert_eq!(check_bearer(t, Some(b"Bearer abc123")), Ok(()));
        assert_eq!(check_bearer(t, Some(b"bearer  abc123 ")), Ok(()));
        assert_eq!(
            check_bearer(t, Some(b"Bearer abc124")),
            Err(AuthFailure::Wrong)
        );
        assert_eq!(
            check_bearer(t, Some(b"Bearer abc12")),
            Err(AuthFailure::Wrong)
        );
        assert_eq!(
            check_bearer(t, Some(b"Basic abc123")),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            check_bearer(t, Some(b"abc123")),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            check_bearer(t, Some(b"Bearer ")),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(check_bearer(t, None), Err(AuthFailure::Missing));
        assert_eq!(
            check_bearer(None, Some(b"Bearer abc123")),
            Err(AuthFailure::NotConfigured)
        );
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback(&"127.0.0.1:9180".parse().unwrap()));
        assert!(is_loopback(&"[::1]:9180".parse().unwrap()));
        assert!(is_loopback(&"[::ffff:127.0.0.1]:9180".parse().unwrap()));
        assert!(!is_loopback(&"0.0.0.0:9180".parse().unwrap()));
        assert!(!is_loopback(&"[::]:9180".parse().unwrap()));
        assert!(!is_loopback(&"192.0.2.1:9180".parse().unwrap()));
    }
}
