//! `vipwarden doctor` and `vipwarden probe`: what a probe from the node to itself cannot see.
//! Doctor is a host preflight (VIP placement, listeners, session and return paths, policy rules,
//! rp_filter, ARP, hairpin checks, backlog, conntrack, certificates, sessions); probe walks the
//! path of one VIP step by step. Owns `src/doctor/`; reads config, signals' sock_diag and the
//! API client, and is used by nothing but the CLI.
//!
//! Structure: `gather` asks the host and fills `facts::Facts`; `evaluate` turns config + facts
//! into findings without I/O (tested with fabricated facts); this module renders them.

pub mod clients;
pub mod evaluate;
pub mod facts;
pub mod gather;
pub mod probe;
/// rtnetlink moved to `sys`; doctor's modules keep their `super::rtnl` paths.
pub use crate::sys::rtnl;
pub mod x509;

use std::fmt::Write;

use serde::Serialize;

pub use evaluate::{evaluate, Finding, Level};
pub use gather::Options;

#[derive(Debug, Serialize)]
pub struct Report {
    pub fail: usize,
    pub warn: usize,
    pub ok: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(findings: Vec<Finding>) -> Self {
        let n = |l| findings.iter().filter(|f| f.level == l).count();
        Self {
            fail: n(Level::Fail),
            warn: n(Level::Warn),
            ok: n(Level::Ok),
            findings,
        }
    }

    /// Exit status: 1 when anything failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.fail > 0)
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let _ = writeln!(s, "{:<4} {:<15} {}", f.level.label(), f.topic, f.message);
            for e in &f.evidence {
                let _ = writeln!(s, "     {:<15} evidence: {e}", "");
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(s, "     {:<15} fix: {fix}", "");
            }
        }
        let _ = writeln!(
            s,
            "doctor: {} fail, {} warn, {} ok",
            self.fail, self.warn, self.ok
        );
        s
    }
}

/// Gathers and evaluates: the whole of `vipwarden doctor`.
pub async fn run(cfg: &crate::config::Config, opts: &Options) -> Report {
    let facts = gather::gather(cfg, opts).await;
    Report::new(evaluate(cfg, &facts))
}
