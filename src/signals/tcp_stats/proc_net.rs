//! Parsers for /proc/net/netstat and /proc/net/snmp: per section, a line of names then a line of
//! values, both prefixed with `Section:`. Values are parsed as i64 (`Tcp: MaxConn` is -1).

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

/// The `(name, value)` pairs of `section` (e.g. "TcpExt"), or why they cannot be had.
pub fn section<'a>(text: &'a str, section: &str) -> Result<Vec<(&'a str, i64)>, String> {
    let mut lines = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(s, _)| *s == section)
        .map(|(_, rest)| rest);
    let names = lines
        .next()
        .ok_or_else(|| format!("no {section} section"))?;
    let values = lines
        .next()
        .ok_or_else(|| format!("{section} section has no values line"))?;
    let names: Vec<&str> = names.split_ascii_whitespace().collect();
    let values: Vec<&str> = values.split_ascii_whitespace().collect();
    if names.len() != values.len() {
        return Err(format!(
            "{section} section has {} names but {} values",
            names.len(),
            values.len()
        ));
    }
    names
        .into_iter()
        .zip(values)
        .map(|(n, v)| match v.parse::<i64>() {
            Ok(v) => Ok((n, v)),
            Err(_) => Err(format!("{section} {n}: bad value {v:?}")),
        })
        .collect()
}

fn pick(fields: &[(&str, i64)], section: &str, name: &str) -> Result<i64, String> {
    fields
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("{section} has no {name}"))
}

/// Parses the texts of /proc/net/netstat and /proc/net/snmp.
pub fn parse(netstat: &str, snmp: &str) -> Result<TcpSample, String> {
    let ext = section(netstat, "TcpExt").map_err(|e| format!("netstat: {e}"))?;
    let tcp = section(snmp, "Tcp").map_err(|e| format!("snmp: {e}"))?;
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
        assert_eq!(pick(&tcp, "Tcp", "MaxConn"), Ok(-1));
    }

    #[test]
    fn tcp_is_not_confused_with_tcpext() {
        // A netstat-like text has only TcpExt: asking for Tcp must not match it.
        assert_eq!(section(NETSTAT, "Tcp"), Err("no Tcp section".into()));
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(parse("", SNMP).unwrap_err().contains("no TcpExt section"));
        // Names line only (file cut after the first line).
        let cut = NETSTAT.lines().next().unwrap();
        assert!(parse(cut, SNMP).unwrap_err().contains("no values line"));
        // Values line truncated mid-way.
        let short = NETSTAT.replace("0 0 7 9 120 3 0 0 6", "0 0 7 9");
        assert!(parse(&short, SNMP)
            .unwrap_err()
            .contains("9 names but 4 values"));
        // Garbage value.
        let bad = SNMP.replace(" 44 ", " 4x4 ");
        assert!(parse(NETSTAT, &bad)
            .unwrap_err()
            .contains("OutRsts: bad value"));
        // A counter the kernel does not have.
        let missing = NETSTAT.replace("TCPReqQFullDrop", "Other");
        assert!(parse(&missing, SNMP)
            .unwrap_err()
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
