//! Judging whether an access log is understood at all: "most lines are not in the signal's
//! format" and "a latency condition on a log whose records carry no request time". Pure; shared
//! by replay (`offline`) and the live daemon (source task log, status), so both say the same.

/// A log is "not understood" when more than this share of its lines does not parse.
pub const MAX_MALFORMED_SHARE: f64 = 0.5;

/// The live daemon judges a window only once it has this many lines (two bad lines at start are
/// not a wrong format).
pub const MIN_LINES_LIVE: u64 = 20;

/// Sample lines are cut to this many bytes in messages.
pub const SAMPLE_BYTES: usize = 200;

/// Line counts over some span (a whole replay, or the live window).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogCounts {
    /// Lines read: parsed records plus malformed lines.
    pub lines: u64,
    pub malformed: u64,
    /// Parsed records, and how many of them carried a request time.
    pub records: u64,
    pub with_latency: u64,
}

impl LogCounts {
    pub fn malformed_ratio(&self) -> Option<f64> {
        (self.lines > 0).then(|| self.malformed as f64 / self.lines as f64)
    }

    /// More than half the lines are not in the format, with at least `min_lines` to judge.
    pub fn mostly_malformed(&self, min_lines: u64) -> bool {
        self.lines >= min_lines.max(1)
            && self.malformed as f64 > MAX_MALFORMED_SHARE * self.lines as f64
    }

    /// Records arrived but none had a request time: latency values can never exist.
    pub fn lacks_latency(&self) -> bool {
        self.records > 0 && self.with_latency == 0
    }
}

/// A printable sample of a line: lossy UTF-8, cut to `SAMPLE_BYTES`.
pub fn sample(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(SAMPLE_BYTES)]).into_owned()
}

/// "N of M lines (P%) are not in signal S's format (F)... first/last such line: ..."
pub fn malformed_message(signal: &str, format: &str, c: &LogCounts, line: Option<&str>) -> String {
    format!(
        "{} of {} lines ({:.1}%) are not in signal {signal}'s format ({format}); wrong log or \
         wrong format? Such a line: {}",
        c.malformed,
        c.lines,
        100.0 * c.malformed_ratio().unwrap_or(0.0),
        line.unwrap_or("-")
    )
}

/// The warning for a latency condition (`cond_signal`, e.g. `web.latency_p99`) on a log without
/// request times.
pub fn latency_missing_message(vip: &str, cond_signal: &str, records: u64) -> String {
    format!(
        "vip {vip}: condition on {cond_signal} needs a request time, but none of the {records} \
         records has one (nginx `combined` has no $request_time: end log_format with it); this \
         condition can never trip"
    )
}

/// Whether `SIGNAL.VALUE` names a latency value.
pub fn is_latency_value(reference: &str) -> bool {
    reference
        .split_once('.')
        .is_some_and(|(_, v)| v.starts_with("latency_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_needs_enough_lines_and_a_majority() {
        let c = |lines, malformed| LogCounts {
            lines,
            malformed,
            ..LogCounts::default()
        };
        assert!(!c(0, 0).mostly_malformed(1));
        assert!(c(10, 6).mostly_malformed(1));
        assert!(!c(10, 5).mostly_malformed(1));
        assert!(!c(10, 10).mostly_malformed(MIN_LINES_LIVE));
        assert!(c(40, 30).mostly_malformed(MIN_LINES_LIVE));
        let m = malformed_message("web", "haproxy", &c(40, 30), Some("GET /"));
        assert!(
            m.contains("30 of 40 lines (75.0%)") && m.contains("haproxy") && m.contains("GET /")
        );
        let l = LogCounts {
            lines: 3,
            records: 3,
            ..LogCounts::default()
        };
        assert!(l.lacks_latency());
        assert!(is_latency_value("web.latency_p99") && !is_latency_value("web.error_ratio"));
    }
}
