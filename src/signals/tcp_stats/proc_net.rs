//! Parsers for /proc/net/netstat and /proc/net/snmp: per section, a line of names then a line of
//! values, both prefixed with `Section:`. Values are parsed as i64 (`Tcp: MaxConn` is -1).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Counters reported as per-second rates, named as the kernel names them.
pub const RATE_NAMES: [&str; 10] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "TCPAbortOnData",
    "TCPTimeouts",
    // Packets dropped by a strict reverse-path filter: replies or requests on the wrong uplink.
    "IPReversePathFilter",
    "AttemptFails",
    "EstabResets",
    "OutRsts",
    "RetransSegs",
];
/// How many of [`RATE_NAMES`] come from TcpExt in /proc/net/netstat; the rest are Tcp in snmp.
const FROM_NETSTAT: usize = 6;
/// The gauge reported as is.
pub const CURR_ESTAB: &str = "CurrEstab";

/// One reading of both files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSample {
    /// In the order of [`RATE_NAMES`].
    pub counters: [i64; 10],
    pub curr_estab: i64,
}

/// Why a `Name: names / Name: values` section of a proc file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionError {
    NoSection {
        section: String,
    },
    NoValues {
        section: String,
    },
    CountMismatch {
        section: String,
        names: usize,
        values: usize,
    },
    BadValue {
        section: String,
        name: String,
        value: String,
    },
}

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SectionError::NoSection { section } => write!(f, "no {section} section"),
            SectionError::NoValues { section } => {
                write!(f, "{section} section has no values line")
            }
            SectionError::CountMismatch {
                section,
                names,
                values,
            } => write!(f, "{section} section has {names} names but {values} values"),
            SectionError::BadValue {
                section,
                name,
                value,
            } => write!(f, "{section} {name}: bad value {value:?}"),
        }
    }
}

impl std::error::Error for SectionError {}

/// Why the TCP counters could not be had from /proc/net.
#[derive(Debug)]
pub enum ProcError {
    Read {
        path: PathBuf,
        source: io::Error,
    },
    /// `file` is "netstat" or "snmp".
    Section {
        file: &'static str,
        source: SectionError,
    },
    /// A counter this build needs is not in the file (`file`, when set, prefixes the text).
    Missing {
        file: Option<&'static str>,
        section: &'static str,
        name: &'static str,
    },
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            ProcError::Section { file, source } => write!(f, "{file}: {source}"),
            ProcError::Missing {
                file,
                section,
                name,
            } => {
                if let Some(file) = file {
                    write!(f, "{file}: ")?;
                }
                write!(f, "{section} has no {name}")
            }
        }
    }
}

impl std::error::Error for ProcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcError::Read { source, .. } => Some(source),
            ProcError::Section { source, .. } => Some(source),
            ProcError::Missing { .. } => None,
        }
    }
}

/// The `(name, value)` pairs of `section` (e.g. "TcpExt"), or why they cannot be had.
pub fn section<'a>(text: &'a str, section: &str) -> Result<Vec<(&'a str, i64)>, SectionError> {
    let mut lines = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(s, _)| *s == section)
        .map(|(_, rest)| rest);
    let names = lines.next().ok_or_else(|| SectionError::NoSection {
        section: section.to_owned(),
    })?;
    let values = lines.next().ok_or_else(|| SectionError::NoValues {
        section: section.to_owned(),
    })?;
    let names: Vec<&str> = names.split_ascii_whitespace().collect();
    let values: Vec<&str> = values.split_ascii_whitespace().collect();
    if names.len() != values.len() {
        return Err(SectionError::CountMismatch {
            section: section.to_owned(),
            names: names.len(),
            values: values.len(),
        });
    }
    names
        .into_iter()
        .zip(values)
        .map(|(n, v)| match v.parse::<i64>() {
            Ok(v) => Ok((n, v)),
            Err(_) => Err(SectionError::BadValue {
                section: section.to_owned(),
                name: n.to_owned(),
                value: v.to_owned(),
            }),
        })
        .collect()
}

fn pick(
    fields: &[(&str, i64)],
    section: &'static str,
    name: &'static str,
) -> Result<i64, ProcError> {
    fields
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or(ProcError::Missing {
            file: None,
            section,
            name,
        })
}

/// Parses the texts of /proc/net/netstat and /proc/net/snmp.
pub fn parse(netstat: &str, snmp: &str) -> Result<TcpSample, ProcError> {
    let ext = section(netstat, "TcpExt").map_err(|source| ProcError::Section {
        file: "netstat",
        source,
    })?;
    let tcp = section(snmp, "Tcp").map_err(|source| ProcError::Section {
        file: "snmp",
        source,
    })?;
    let mut counters = [0i64; 10];
    for (i, name) in RATE_NAMES.iter().enumerate() {
        counters[i] = if i < FROM_NETSTAT {
            pick(&ext, "TcpExt", name)?
        } else {
            pick(&tcp, "Tcp", name)?
        };
    }
    Ok(TcpSample {
        counters,
        curr_estab: pick(&tcp, "Tcp", CURR_ESTAB)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Trimmed from a 6.x kernel: same layout, fewer columns.
    pub(crate) const NETSTAT: &str = "\
TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPTimeouts TCPAbortOnData TCPReqQFullDrop TCPReqQFullDoCookies IPReversePathFilter
TcpExt: 0 0 7 9 120 3 0 0 6
IpExt: InNoRoutes InTruncatedPkts InMcastPkts
IpExt: 0 0 12
";
    pub(crate) const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 123456
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 100 200 4 5 17 1000 900 33 0 44 0
Udp: InDatagrams NoPorts
Udp: 5 6
";

    #[test]
    fn parses_kernel_layout() {
        let s = parse(NETSTAT, SNMP).unwrap();
        assert_eq!(s.counters, [7, 9, 0, 3, 120, 6, 4, 5, 44, 33]);
        assert_eq!(s.curr_estab, 17);
        let tcp = section(SNMP, "Tcp").unwrap();
        assert_eq!(pick(&tcp, "Tcp", "MaxConn").unwrap(), -1);
    }

    #[test]
    fn tcp_is_not_confused_with_tcpext() {
        // A netstat-like text has only TcpExt: asking for Tcp must not match it.
        let err = section(NETSTAT, "Tcp").unwrap_err();
        assert_eq!(
            err,
            SectionError::NoSection {
                section: "Tcp".into()
            }
        );
        assert_eq!(err.to_string(), "no Tcp section");
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let err = parse("", SNMP).unwrap_err();
        assert!(matches!(
            err,
            ProcError::Section {
                file: "netstat",
                ..
            }
        ));
        assert!(err.to_string().contains("no TcpExt section"));
        // Names line only (file cut after the first line).
        let cut = NETSTAT.lines().next().unwrap();
        assert!(parse(cut, SNMP)
            .unwrap_err()
            .to_string()
            .contains("no values line"));
        // Values line truncated mid-way.
        let short = NETSTAT.replace("0 0 7 9 120 3 0 0 6", "0 0 7 9");
        assert!(parse(&short, SNMP)
            .unwrap_err()
            .to_string()
            .contains("9 names but 4 values"));
        // Garbage value.
        let bad = SNMP.replace(" 44 ", " 4x4 ");
        assert!(parse(NETSTAT, &bad)
            .unwrap_err()
            .to_string()
            .contains("OutRsts: bad value"));
        // A counter the kernel does not have.
        let missing = NETSTAT.replace("TCPReqQFullDrop", "Other");
        assert!(parse(&missing, SNMP)
            .unwrap_err()
            .to_string()
            .contains("no TCPReqQFullDrop"));
        // Binary junk and every truncation of the real thing: errors or values, never a panic.
        let _ = parse("\0\u{fffd}:::\n:\n", "Tcp:\nTcp:");
        for cut in 0..SNMP.len() {
            if SNMP.is_char_boundary(cut) {
                let _ = parse(NETSTAT, &SNMP[..cut]);
            }
        }
    }
}
