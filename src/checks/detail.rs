//! Wording shared by all probes, so details read the same whatever the check kind.

use std::io;
use std::time::Duration;

/// `0.4 ms`, `3.1 ms`, `250 ms`: one decimal only where it carries information.
pub(crate) fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub(crate) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", ms(timeout))
}

/// The OS reason without std's ` (os error N)` suffix: `Cannot assign requested address`.
pub(crate) fn io_reason(e: &io::Error) -> String {
    let s = e.to_string();
    match e.raw_os_error() {
        Some(code) => match s.strip_suffix(&format!(" (os error {code})")) {
            Some(stripped) => stripped.to_string(),
            None => s,
        },
        None => s,
    }
}

/// An error and its sources on one line, skipping a source whose text its parent already shows
/// (hyper and io wrappers often repeat it).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// At most `max` chars (`max` >= 1), cut on a char boundary, ending in `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().nth(max).is_none() {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_formats() {
        assert_eq!(ms(Duration::from_micros(400)), "0.4 ms");
        assert_eq!(ms(Duration::from_micros(3140)), "3.1 ms");
        assert_eq!(ms(Duration::from_millis(500)), "500 ms");
        assert_eq!(timed_out(Duration::from_secs(2)), "timed out after 2000 ms");
    }

    #[test]
    fn io_reason_strips_os_error_suffix() {
        let e = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        assert_eq!(io_reason(&e), "Cannot assign requested address");
        let e = io::Error::other("plain");
        assert_eq!(io_reason(&e), "plain");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("éééé", 3), "éé…");
        assert_eq!(truncate(&"x".repeat(500), 200).chars().count(), 200);
    }
}
