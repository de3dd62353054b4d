//! `peers[].bfd: {min_tx, min_rx, multiplier}` (issue 10): validation of these keys only.

use std::time::Duration;

use super::model::BfdConfig;
use super::problems::{duration, Problems};
use super::raw::RawBfd;

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
    BfdConfig {
        min_tx,
        min_rx,
        multiplier,
    }
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
            .map(|c| c.peers[0].bfd)
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
        };
        assert_eq!(load("    bfd: {}\n"), Ok(Some(d)));
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
                multiplier: 5
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
}
