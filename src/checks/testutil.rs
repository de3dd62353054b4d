//! Check configs for tests.

use std::net::SocketAddr;
use std::time::Duration;

use super::{CheckConfig, CheckKind, HttpCheck};

pub(crate) fn check(kind: CheckKind) -> CheckConfig {
    CheckConfig {
        name: "t".into(),
        kind,
        source: None,
        interface: None,
        interval: Duration::from_secs(1),
        fast_interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        rise: 1,
        fall: 1,
        definitive_fall: true,
    }
}

pub(crate) fn tcp_check(target: SocketAddr) -> CheckConfig {
    check(CheckKind::Tcp { target })
}

/// An http(s) check for `url` expecting 200, adjusted by `edit`.
pub(crate) fn http_check(url: &str, edit: impl FnOnce(&mut HttpCheck)) -> CheckConfig {
    let mut h = HttpCheck {
        url: url.to_string(),
        tls: url.starts_with("https:"),
        expect_status: vec![200],
        expect_body: None,
        host: None,
        ca_file: None,
        insecure: false,
    };
    edit(&mut h);
    check(CheckKind::Http(h))
}

pub(crate) fn exec_check(argv: &[&str]) -> CheckConfig {
    check(CheckKind::Exec {
        command: argv.iter().map(|s| s.to_string()).collect(),
    })
}
