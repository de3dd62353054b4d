//! What the gatherer found on the host, as plain data: the evaluator reads only this (and the
//! config), so every finding can be tested with fabricated facts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::rtnl::{Addr, Link, Route, Rule};
use super::x509::CertInfo;
use crate::signals::sockdiag::DiagSocket;

/// `ip route get DST [from SRC]` and its answer.
#[derive(Clone, Debug)]
pub struct Lookup {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    pub route: Result<Route, String>,
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
    pub addrs: Result<Vec<Addr>, String>,
    pub rules: Result<Vec<Rule>, String>,
    pub routes: Result<Vec<Route>, String>,
    /// LISTEN sockets.
    pub listeners: Result<Vec<DiagSocket>, String>,
    pub peers: Vec<PeerPath>,
    /// Replies from each VIP address to the sample client addresses.
    pub replies: Vec<Lookup>,
    /// sysctl values by dotted name, e.g. `net.ipv4.conf.eth0.rp_filter`.
    pub sysctl: BTreeMap<String, Result<i64, String>>,
    /// IPReversePathFilter read twice: (first, second, seconds between).
    pub rpf_counter: Result<(i64, i64, f64), String>,
    /// (count, max); Err(reason) also when nf_conntrack is not loaded.
    pub conntrack: Result<(u64, u64), String>,
    /// Per https check: the certificate its target serves.
    pub certs: Vec<(String, Result<CertInfo, String>)>,
    /// Session states from the running daemon's API: (peer, state); Err when it cannot be asked.
    pub sessions: Result<Vec<(String, String)>, String>,
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
            route: Err("not looked up".into()),
        }
    }
}

impl Default for Facts {
    /// Nothing gathered yet: every question unanswered.
    fn default() -> Self {
        fn no<T>() -> Result<T, String> {
            Err("not gathered".to_string())
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
            conntrack: no(),
            certs: Vec::new(),
            sessions: no(),
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
