//! Why a check cannot be prepared: every probe of it would fail, so the reason is reported as
//! its detail on every interval (and logged once).

use std::fmt;
use std::io;

use super::tls::TlsSetupError;
use super::url::UrlError;

#[derive(Debug)]
pub enum SetupError {
    Url(UrlError),
    /// The URL's scheme says one thing, `tls:` another.
    TlsMismatch {
        url: String,
        tls: bool,
    },
    NoExpectedStatus,
    HostHeader {
        host: String,
    },
    SniHost {
        host: String,
    },
    Tls(TlsSetupError),
    EmptyCommand,
    SockDiag(io::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Url(e) => e.fmt(f),
            SetupError::TlsMismatch { url, tls } => write!(
                f,
                "URL {url:?} disagrees with tls: {tls} in the check config"
            ),
            SetupError::NoExpectedStatus => {
                f.write_str("expect_status is empty: no response could pass")
            }
            SetupError::HostHeader { host } => {
                write!(f, "host {host:?} is not a valid Host header")
            }
            SetupError::SniHost { host } => write!(f, "host {host:?} is not a valid host[:port]"),
            SetupError::Tls(e) => e.fmt(f),
            SetupError::EmptyCommand => f.write_str("exec command is empty"),
            SetupError::SockDiag(e) => write!(f, "cannot open a sock_diag netlink socket: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Url(e) => Some(e),
            SetupError::Tls(e) => Some(e),
            SetupError::SockDiag(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UrlError> for SetupError {
    fn from(e: UrlError) -> Self {
        SetupError::Url(e)
    }
}

impl From<TlsSetupError> for SetupError {
    fn from(e: TlsSetupError) -> Self {
        SetupError::Tls(e)
    }
}
