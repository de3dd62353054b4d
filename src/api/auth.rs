//! Bearer-token handling for mutating API requests: loading the token file safely and comparing
//! what a client sent without leaking the token through timing.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use subtle::ConstantTimeEq;

/// A token longer than this is almost certainly the wrong file (a key, a log), not a token.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Reads the API bearer token from `path`.
///
/// Refused: a file others can read (`mode & 0o004`), anything but a regular file, an empty file,
/// more than 4 KiB, or characters that cannot travel in an `Authorization` header. Surrounding
/// whitespace (the trailing newline of `echo secret > file`) is trimmed.
pub fn load_token(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let mut file = std::fs::File::open(path)
        .map_err(|e| format!("api token file {shown}: cannot open: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("api token file {shown}: cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err(format!("api token file {shown}: not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o004 != 0 {
        return Err(format!(
            "api token file {shown} is world-readable (mode {mode:04o}); run `chmod o-r {shown}` \
             so only the daemon's user and group can read it"
        ));
    }
    if meta.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "api token file {shown} is {} bytes; a token is at most {MAX_TOKEN_BYTES} bytes (wrong file?)",
            meta.len()
        ));
    }
    let mut raw = Vec::new();
    // take(): the file may grow between stat and read.
    (&mut file)
        .take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("api token file {shown}: cannot read: {e}"))?;
    let text = String::from_utf8(raw)
        .map_err(|_| format!("api token file {shown}: not valid UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("api token file {shown} is empty; put a random token in it, e.g. `openssl rand -hex 32 > {shown}`"));
    }
    if let Some(bad) = token.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "api token file {shown}: the token contains {bad:?}; only printable ASCII without spaces can be sent in an Authorization header"
        ));
    }
    Ok(token.to_string())
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
        assert_eq!(load_token(&p).unwrap(), "s3cret-token");
    }

    #[test]
    fn token_file_world_readable_is_refused_with_the_fix() {
        let p = temp_file("world", b"s3cret\n", 0o644);
        let e = load_token(&p).unwrap_err();
        assert!(e.contains("world-readable (mode 0644)"), "{e}");
        assert!(e.contains("chmod o-r"), "{e}");
    }

    #[test]
    fn token_file_empty_missing_or_spaced_is_refused() {
        let p = temp_file("empty", b" \n", 0o600);
        assert!(load_token(&p).unwrap_err().contains("is empty"));
        let p = temp_file("space", b"two words\n", 0o600);
        assert!(load_token(&p).unwrap_err().contains("contains ' '"));
        let e = load_token(Path::new("/nonexistent/vipwarden/token")).unwrap_err();
        assert!(e.contains("cannot open"), "{e}");
        let dir = temp_file("dir", b"x", 0o600);
        let e = load_token(dir.parent().unwrap()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
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
