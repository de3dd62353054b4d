//! What the gatherer found on the host, as plain data: the evaluator reads only this (and the
//! config), so every finding can be tested with fabricated facts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::rtnl::{Addr, Link, Route, Rule};
use super::x509::CertInfo;
use crate::signals::conntrack::ReadError;
use crate::signals::sockdiag::DiagSocket;

/// Why a fact is missing. The evaluator turns it into a WARN saying what it could not check;
/// the variant says which source failed, the text is that source's own reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unread {
    /// Nothing asked yet (a default, or a gatherer that did not run).
    NotGathered,
    /// No rtnetlink socket: the reason it could not be opened.
    NoRtnetlink(String),
    /// rtnetlink answered a dump or a lookup with an error.
    Rtnetlink(String),
    /// sock_diag could not be opened or answered with an error.
    SockDiag(String),
    /// A /proc file could not be read or held no usable value.
    Proc(String),
}

impl fmt::Display for Unread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unread::NotGathered => f.write_str("not gathered"),
            Unread::NoRtnetlink(e) => write!(f, "cannot open rtnetlink: {e}"),
            Unread::Rtnetlink(e) | Unread::Proc(e) => f.write_str(e),
            Unread::SockDiag(e) => write!(f, "sock_diag: {e}"),
        }
    }
}

/// Why the certificate an https check's server serves could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertError {
    /// The check's URL host is a name: doctor connects only to addresses.
    NotAnAddress,
    /// The TLS client or the server name could not be set up.
    Setup(String),
    Connect {
        addr: SocketAddr,
        reason: String,
    },
    Handshake {
        addr: SocketAddr,
        reason: String,
    },
    NoCertificate,
    NotDer,
    Timeout {
        addr: SocketAddr,
        after: Duration,
    },
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::NotAnAddress => f.write_str("target is not an IP literal"),
            CertError::Setup(e) => f.write_str(e),
            CertError::Connect { addr, reason } => write!(f, "connect {addr}: {reason}"),
            CertError::Handshake { addr, reason } => {
                write!(f, "TLS handshake with {addr}: {reason}")
            }
            CertError::NoCertificate => f.write_str("server sent no certificate"),
            CertError::NotDer => f.write_str("certificate is not parseable DER"),
            CertError::Timeout { addr, after } => {
                write!(f, "no TLS answer from {addr} within {after:?}")
            }
        }
    }
}

/// Why the running daemon could not be asked for its session states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    NotGathered,
    Timeout { listen: String },
    Unreachable { listen: String, reason: String },
    BadStatus(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::NotGathered => f.write_str("not gathered"),
            ApiError::Timeout { listen } => {
                write!(f, "no answer from the API at {listen} within 3 s")
            }
            ApiError::Unreachable { listen, reason } => {
                write!(f, "daemon API at {listen} not reachable ({reason})")
            }
            ApiError::BadStatus(e) => write!(f, "status JSON: {e}"),
        }
    }
}

/// One BGP session as the running daemon reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub peer: String,
    /// idle | connect | active | opensent | openconfirm | established
    pub state: String,
}

impl Session {
    pub fn established(&self) -> bool {
        self.state == "established"
    }
}

/// IPReversePathFilter read twice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RpfSample {
    pub before: i64,
    pub after: i64,
    /// Seconds between the two reads.
    pub secs: f64,
}

/// The conntrack table's fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conntrack {
    pub count: u64,
    pub max: u64,
}

/// The certificate one https check's target serves.
#[derive(Clone, Debug)]
pub struct CertFact {
    pub check: String,
    pub cert: Result<CertInfo, CertError>,
}

/// `ip route get DST [from SRC]` and its answer.
#[derive(Clone, Debug)]
pub struct Lookup {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    pub route: Result<Route, Unread>,
}

/// One BGP peer: how its session leaves, and how packets from each VIP address to it would.
#[derive(Clone, Debug)]
pub struct PeerPath {
    pub name: String,
    pub session: Lookup,
    pub from_vips: Vec<Lookup>,
}

/// How one run of a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// No answer within the check's timeout (an exec command was killed).
    TimedOut,
}

/// One check, run once now.
#[derive(Clone, Debug)]
pub struct CheckRun {
    /// Index into the configured checks.
    pub check: usize,
    pub outcome: Outcome,
    /// The probe's own words, e.g. `exit status 3: disk full` or `unit nginx.service is inactive`.
    pub detail: String,
    pub took: Duration,
}

#[derive(Clone, Debug)]
pub struct Facts {
    pub links: Vec<Link>,
    pub addrs: Result<Vec<Addr>, Unread>,
    pub rules: Result<Vec<Rule>, Unread>,
    pub routes: Result<Vec<Route>, Unread>,
    /// LISTEN sockets.
    pub listeners: Result<Vec<DiagSocket>, Unread>,
    pub peers: Vec<PeerPath>,
    /// Replies from each VIP address to the sample client addresses.
    pub replies: Vec<Lookup>,
    /// sysctl values by dotted name, e.g. `net.ipv4.conf.eth0.rp_filter`.
    pub sysctl: BTreeMap<String, Result<i64, Unread>>,
    pub rpf_counter: Result<RpfSample, Unread>,
    /// Err(NotLoaded) when nf_conntrack is not loaded: no table to fill.
    pub conntrack: Result<Conntrack, ReadError>,
    /// Per https check: the certificate its target serves.
    pub certs: Vec<CertFact>,
    /// Session states from the running daemon's API; Err when it cannot be asked.
    pub sessions: Result<Vec<Session>, ApiError>,
    /// One run of each configured check but `listener` (sock_diag answers those), by the
    /// daemon's own prober, bounded by the check's timeout.
    pub checks: Vec<CheckRun>,
    /// The fleet guard's view per guarded VIP, from the same status answer.
    pub fleet: Vec<(String, crate::control::FleetVipView)>,
    pub now_unix: i64,
}

impl Default for Lookup {
    fn default() -> Self {
        Self {
            dst: IpAddr::from([0, 0, 0, 0]),
            src: None,
            route: Err(Unread::NotGathered),
        }
    }
}

impl Default for Facts {
    /// Nothing gathered yet: every question unanswered.
    fn default() -> Self {
        fn no<T>() -> Result<T, Unread> {
            Err(Unread::NotGathered)
        }
        Self {
            links: Vec::new(),
            addrs: no(),
            rules: no(),
            routes: no(),
            listeners: no(),
            peers: Vec::new(),
            replies: Vec::new(),
            sysctl: BTreeMap::new(),
            rpf_counter: no(),
            conntrack: Err(ReadError::Other("not gathered".into())),
            certs: Vec::new(),
            sessions: Err(ApiError::NotGathered),
            checks: Vec::new(),
            fleet: Vec::new(),
            now_unix: 0,
        }
    }
}

impl Facts {
    pub fn link_name(&self, index: u32) -> String {
        self.links
            .iter()
            .find(|l| l.index == index)
            .map_or_else(|| format!("if{index}"), |l| l.name.clone())
    }

    pub fn link(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    /// Interfaces holding `ip`.
    pub fn holders(&self, ip: IpAddr) -> Vec<u32> {
        self.addrs
            .as_ref()
            .map(|a| {
                a.iter()
                    .filter(|a| a.addr == ip)
                    .map(|a| a.ifindex)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn sysctl(&self, key: &str) -> Option<i64> {
        self.sysctl.get(key).and_then(|r| r.as_ref().ok().copied())
    }
}
