//! `peers[].bfd: {min_tx, min_rx, multiplier, auth}` (issues 10, 18): validation of these keys
//! only. The key file follows the same rules as every other key file (`keys::read_key`).

use std::time::Duration;

use super::keys::{abs_path, key_or_problem};
use super::model::{BfdAuth, BfdConfig};
use super::problems::{duration, Problems};
use super::raw::{RawBfd, RawBfdAuth};
use crate::bfd::auth::{AuthType, MAX_KEY_LEN};

const DEFAULT_INTERVAL: Duration = Duration::from_millis(300);
/// Below 10 ms a user-space speaker on a busy host would flap; above 60 s BFD is pointless.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_secs(60);

pub(super) fn validate(p: &mut Problems, peer_path: &str, r: &RawBfd) -> BfdConfig {
    let mut interval = |key: &str, v| {
        let path = format!("{peer_path}.bfd.{key}");
        let d = duration(p, &path, v, DEFAULT_INTERVAL);
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) || d.subsec_nanos() % 1000 != 0 {
            p.add(
                path.as_str(),
                format!(
                    "{path} must be 10ms..60s in whole microseconds; kept {DEFAULT_INTERVAL:?}"
                ),
            );
            return DEFAULT_INTERVAL;
        }
        d
    };
    let min_tx = interval("min_tx", r.min_tx.as_ref());
    let min_rx = interval("min_rx", r.min_rx.as_ref());
    let multiplier = match r.multiplier {
        None => 3,
        Some(m @ 1..=255) => m as u8,
        Some(m) => {
            let path = format!("{peer_path}.bfd.multiplier");
            p.add(
                path.as_str(),
                format!("{path} {m} must be 1..255 (RFC 5880 Detect Mult)"),
            );
            3
        }
    };
    let auth = r.auth.as_ref().and_then(|a| auth(p, peer_path, a));
    BfdConfig {
        min_tx,
        min_rx,
        multiplier,
        auth,
    }
}

/// `peers[i].bfd.auth: {algorithm, key_id, key_file}`; None with a problem added when unusable
/// (the config is then refused: never a silent fallback to unauthenticated BFD).
fn auth(p: &mut Problems, peer_path: &str, r: &RawBfdAuth) -> Option<BfdAuth> {
    let path = format!("{peer_path}.bfd.auth");
    let alg_path = format!("{path}.algorithm");
    let algorithm = match r.algorithm.as_deref() {
        None => {
            p.add(
                alg_path.as_str(),
                format!("{alg_path} is required (keyed-sha1 or meticulous-keyed-sha1)"),
            );
            None
        }
        Some(a) => AuthType::parse(a).or_else(|| {
            p.add(
                alg_path.as_str(),
                format!(
                    "{alg_path} \"{a}\" is not supported (use keyed-sha1 or meticulous-keyed-sha1)"
                ),
            );
            None
        }),
    };
    let id_path = format!("{path}.key_id");
    let key_id = match r.key_id {
        None => {
            p.add(
                id_path.as_str(),
                format!("{id_path} is required (0-255, the router's key id)"),
            );
            None
        }
        Some(n @ 0..=255) => Some(n as u8),
        Some(n) => {
            p.add(
                id_path.as_str(),
                format!("{id_path} {n} is out of range (a BFD Auth Key ID is 0-255)"),
            );
            None
        }
    };
    let key_path = format!("{path}.key_file");
    let key = match r.key_file.as_deref() {
        None => {
            p.add(key_path.as_str(), format!("{key_path} is required"));
            None
        }
        f => abs_path(p, &key_path, f)
            .and_then(|f| key_or_problem(p, &key_path, f, "BFD key").map(|k| (f, k))),
    };
    let key = key.and_then(|(f, k)| {
        let n = k.expose().len();
        if n > MAX_KEY_LEN {
            p.add(
                key_path.as_str(),
                format!(
                    "{key_path}: {}: the BFD key is {n} bytes; Keyed SHA1 takes 1-{MAX_KEY_LEN} (RFC 5880 6.7.4)",
                    f.display()
                ),
            );
            return None;
        }
        Some(k)
    });
    Some(BfdAuth {
        algorithm: algorithm?,
        key_id: key_id?,
        key: key?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{parse, BfdConfig};

    const BASE: &str = "router_id: 198.51.100.2\nlocal_as: 65101\npeers:\n  - name: tor1\n    address: 198.51.100.1\n    remote_as: 65000\n";
    const TAIL: &str = "checks:\n  - {name: web, type: tcp, target: 203.0.113.10:80, interval: 1s, timeout: 500ms}\nvips:\n  - {name: web, prefixes: [203.0.113.10/32], checks: [web]}\n";

    fn load(bfd: &str) -> Result<Option<BfdConfig>, String> {
        let text = format!("{BASE}{bfd}{TAIL}");
        parse(Path::new("vw.yaml"), &text)
            .map(|c| c.peers[0].bfd.clone())
            .map_err(|e| {
                e.0.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }

    #[test]
    fn bfd_is_off_when_absent_and_defaults_to_300ms_x3() {
        assert_eq!(load(""), Ok(None));
        let d = BfdConfig {
            min_tx: Duration::from_millis(300),
            min_rx: Duration::from_millis(300),
            multiplier: 3,
            auth: None,
        };
        assert_eq!(load("    bfd: {}\n"), Ok(Some(d.clone())));
        assert_eq!(
            load("    bfd: {min_tx: 300ms, min_rx: 300ms, multiplier: 3}\n"),
            Ok(Some(d))
        );
        let c = load("    bfd:\n      min_tx: 50ms\n      min_rx: 1s\n      multiplier: 5\n");
        assert_eq!(
            c,
            Ok(Some(BfdConfig {
                min_tx: Duration::from_millis(50),
                min_rx: Duration::from_secs(1),
                multiplier: 5,
                auth: None,
            }))
        );
    }

    #[test]
    fn bad_bfd_values_point_at_their_line() {
        let e = load("    bfd: {min_tx: 300ms, min_rx: 300ms, multiplier: 0}\n").unwrap_err();
        assert!(
            e.contains("vw.yaml:7") && e.contains("peers[0].bfd.multiplier 0"),
            "{e}"
        );
        let e = load("    bfd:\n      min_tx: 1ms\n").unwrap_err();
        assert!(
            e.contains("vw.yaml:8") && e.contains("peers[0].bfd.min_tx"),
            "{e}"
        );
        let e = load("    bfd:\n      min_rx: 300\n").unwrap_err();
        assert!(e.contains("vw.yaml:8") && e.contains("no unit"), "{e}");
        let e = load("    bfd: {min_tx: 300ms, interval: 1s}\n").unwrap_err();
        assert!(e.contains("interval"), "{e}");
    }

    fn key_file(dir: &tempfile::TempDir, name: &str, body: &[u8], mode: u32) -> String {
        use std::os::unix::fs::PermissionsExt;
        let f = dir.path().join(name);
        std::fs::write(&f, body).expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
        f.display().to_string()
    }

    #[test]
    fn bfd_auth_reads_its_key_like_the_md5_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = key_file(&dir, "bfd.key", b"bfd-secret\n", 0o600);
        let c = load(&format!(
            "    bfd:\n      auth: {{algorithm: meticulous-keyed-sha1, key_id: 7, key_file: {f}}}\n"
        ))
        .expect("valid");
        let a = c.and_then(|c| c.auth).expect("auth");
        assert_eq!(a.algorithm, crate::bfd::AuthType::MeticulousKeyedSha1);
        assert_eq!(a.key_id, 7);
        assert_eq!(a.key.expose(), b"bfd-secret");
        assert!(!format!("{a:?}").contains("bfd-secret"), "{a:?}");
    }

    #[test]
    fn bad_bfd_auth_is_refused_with_the_file_and_the_rule() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = key_file(&dir, "open.key", b"secret\n", 0o644);
        let e = load(&format!(
            "    bfd:\n      auth: {{algorithm: keyed-sha1, key_id: 1, key_file: {open}}}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("vw.yaml:8")
                && e.contains("peers[0].bfd.auth.key_file")
                && e.contains(&open)
                && e.contains("(mode 0644, owner uid ")
                && e.contains(") is world-readable"),
            "{e}"
        );
        let long = key_file(&dir, "long.key", &[b'k'; 21], 0o600);
        let e = load(&format!(
            "    bfd:\n      auth: {{algorithm: keyed-sha1, key_id: 1, key_file: {long}}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("21 bytes") && e.contains("1-20"), "{e}");
        let ok = key_file(&dir, "ok.key", b"secret", 0o600);
        let e = load(&format!(
            "    bfd:\n      auth: {{algorithm: keyed-md5, key_id: 256, key_file: {ok}}}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("algorithm \"keyed-md5\" is not supported") && e.contains("key_id 256"),
            "{e}"
        );
        let e = load("    bfd:\n      auth: {algorithm: keyed-sha1, key_id: 1}\n").unwrap_err();
        assert!(e.contains("peers[0].bfd.auth.key_file is required"), "{e}");
        let e = load(&format!(
            "    bfd:\n      auth: {{algorithm: keyed-sha1, key_id: 1, key_file: {ok}, password: x}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("password"), "{e}");
    }
}
