//! Timestamp parsers for access-log lines: byte scanners, no allocation, no panics on any input.
//! All return unix milliseconds.

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

use crate::civil_time::days_from_civil;

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn civil_ms(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<i64> {
    // Seconds up to 60 for leap seconds as some loggers print them.
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    Some(((days * 24 + h as i64) * 60 + mi as i64) * 60_000 + s as i64 * 1000 + ms as i64)
}

/// Fractional seconds (the digits after the dot) as milliseconds; extra precision is truncated.
/// An optional `.digits` fraction at the front of `rest`, as milliseconds; advances `rest`.
fn fraction(rest: &mut &[u8]) -> Option<u32> {
    let Some(frac) = rest.strip_prefix(b".") else {
        return Some(0);
    };
    let end = frac
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(frac.len());
    let ms = frac_ms(&frac[..end])?;
    *rest = &frac[end..];
    Some(ms)
}

fn frac_ms(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut ms = 0;
    for i in 0..3 {
        ms = ms * 10 + b.get(i).map_or(0, |c| (c - b'0') as u32);
    }
    Some(ms)
}

/// `+hhmm` / `-hhmm` / `+hh:mm` / `Z` as an offset in ms east of UTC.
fn offset_ms(b: &[u8]) -> Option<i64> {
    match b {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hh, mm) = match rest {
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                [a, b] => (digits(&[*a, *b])?, 0),
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = (hh as i64 * 60 + mm as i64) * 60_000;
            Some(if *sign == b'-' { -off } else { off })
        }
        _ => None,
    }
}

/// True if `b` starts like a CLF date `dd/Mon/yyyy:`; used to find the date among other brackets.
pub fn looks_like_clf(b: &[u8]) -> bool {
    b.len() >= 20 && b[2] == b'/' && b[6] == b'/' && b[11] == b':'
}

/// nginx `$time_local` (`22/Nov/2026:13:45:01 +0000`) and HAProxy's accept date
/// (`22/Nov/2026:13:45:01.123`, no offset: taken as UTC).
pub fn parse_clf(b: &[u8]) -> Option<i64> {
    // A log's consecutive lines mostly share their second: remember the last date parsed (a
    // 26-byte compare instead of a parse; a tenth of the nginx ingest CPU).
    let key = <[u8; CLF_CACHE]>::try_from(b).ok();
    if let Some(k) = key {
        if let Some((last, v)) = LAST_CLF.get() {
            if last == k {
                return Some(v);
            }
        }
    }
    let v = parse_clf_uncached(b)?;
    if let Some(k) = key {
        LAST_CLF.set(Some((k, v)));
    }
    Some(v)
}

/// `22/Nov/2026:13:45:01 +0000`: the common CLF date's length, the one worth caching.
pub const CLF_CACHE: usize = 26;

/// The time of `b` if it is exactly the date `parse_clf` parsed last (which parsed, so it holds
/// no `]`): lets a scanner skip looking for the date's end and parsing it.
#[inline]
pub fn clf_cache_hit(b: &[u8; CLF_CACHE]) -> Option<i64> {
    LAST_CLF
        .get()
        .and_then(|(last, v)| (last == *b).then_some(v))
}

thread_local! {
    static LAST_CLF: std::cell::Cell<Option<([u8; CLF_CACHE], i64)>> = const { std::cell::Cell::new(None) };
}

fn parse_clf_uncached(b: &[u8]) -> Option<i64> {
    if !looks_like_clf(b) || b[14] != b':' || b[17] != b':' {
        return None;
    }
    let d = digits(&b[0..2])?;
    let mo = MONTHS.iter().position(|m| m[..] == b[3..6])? as u32 + 1;
    let y = digits(&b[7..11])?;
    let h = digits(&b[12..14])?;
    let mi = digits(&b[15..17])?;
    let s = digits(&b[18..20])?;
    let mut rest = &b[20..];
    let ms = fraction(&mut rest)?;
    let off = match rest {
        [] => 0,
        [b' ', tz @ ..] => offset_ms(tz)?,
        _ => return None,
    };
    Some(civil_ms(y, mo, d, h, mi, s, ms)? - off)
}

/// RFC 3339 / ISO 8601 as Envoy's `%START_TIME%` prints it: `2026-11-22T13:45:01.123Z`; a space for
/// `T` and a numeric offset are accepted. No offset means UTC.
pub fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let y = digits(&b[0..4])?;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let s = digits(&b[17..19])?;
    let mut rest = &b[19..];
    let ms = fraction(&mut rest)?;
    let off = if rest.is_empty() { 0 } else { offset_ms(rest)? };
    Some(civil_ms(y, mo, d, h, mi, s, ms)? - off)
}

/// Epoch seconds with optional fraction (`1795355101` or nginx `$msec` `1795355101.123`).
pub fn parse_epoch_secs(b: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    if int.is_empty() || int.len() > 12 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = int.iter().fold(0i64, |a, c| a * 10 + (c - b'0') as i64);
    let ms = match frac {
        Some(f) => frac_ms(f)? as i64,
        None => 0,
    };
    Some(secs * 1000 + ms)
}

/// Any of the above, for JSON and regex formats where the user picks the field.
pub fn parse_any(b: &[u8]) -> Option<i64> {
    parse_rfc3339(b)
        .or_else(|| parse_clf(b))
        .or_else(|| parse_epoch_secs(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22T13:45:01Z, computed independently with `date -u -d ... +%s`.
    const T0: i64 = 1_795_355_101_000;

    #[test]
    fn clf_with_offset_and_fraction() {
        assert_eq!(parse_clf(b"22/Nov/2026:13:45:01 +0000"), Some(T0));
        assert_eq!(parse_clf(b"22/Nov/2026:14:45:01 +0100"), Some(T0));
        assert_eq!(parse_clf(b"22/Nov/2026:08:45:01 -0500"), Some(T0));
        assert_eq!(parse_clf(b"22/Nov/2026:13:45:01.123"), Some(T0 + 123));
        assert_eq!(parse_clf(b"01/Jan/1970:00:00:00 +0000"), Some(0));
        assert_eq!(
            parse_clf(b"29/Feb/2024:00:00:00 +0000"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn clf_rejects_garbage() {
        for bad in [
            &b""[..],
            b"22/Foo/2026:13:45:01 +0000",
            b"22/Nov/2026:25:45:01 +0000",
            b"22/Nov/2026:13:45:01 +99",
            b"22/Nov/2026:13:45:01x",
            b"22/Nov/2026:13:45:01.",
            b"xx/Nov/2026:13:45:01",
        ] {
            assert_eq!(parse_clf(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rfc3339_variants() {
        assert_eq!(parse_rfc3339(b"2026-11-22T13:45:01.123Z"), Some(T0 + 123));
        assert_eq!(parse_rfc3339(b"2026-11-22T13:45:01Z"), Some(T0));
        assert_eq!(
            parse_rfc3339(b"2026-11-22 15:45:01.5+02:00"),
            Some(T0 + 500)
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-22T13:45:01.123456789Z"),
            Some(T0 + 123)
        );
        assert_eq!(parse_rfc3339(b"2026-11-22T13:45:01"), Some(T0));
        assert_eq!(parse_rfc3339(b"2026-13-22T13:45:01Z"), None);
        assert_eq!(parse_rfc3339(b"2026-11-22T13:45:01Q"), None);
    }

    #[test]
    fn epoch_and_any() {
        assert_eq!(parse_epoch_secs(b"1795355101.123"), Some(T0 + 123));
        assert_eq!(parse_epoch_secs(b"1795355101"), Some(T0));
        assert_eq!(parse_epoch_secs(b"-1"), None);
        assert_eq!(parse_epoch_secs(b"99999999999999999999"), None);
        assert_eq!(parse_any(b"1795355101"), Some(T0));
        assert_eq!(parse_any(b"2026-11-22T13:45:01Z"), Some(T0));
        assert_eq!(parse_any(b"22/Nov/2026:13:45:01 +0000"), Some(T0));
    }

    proptest::proptest! {
        /// The last-date cache never changes an answer, whatever the order of dates.
        #[test]
        fn cached_clf_parse_matches_the_parse(seq in proptest::collection::vec((0u32..3, 0u32..60, 0u32..3), 1..50)) {
            for (d, sec, tz) in seq {
                let tz = ["+0000", "+0100", "-0530"][tz as usize];
                let text = format!("2{d}/Nov/2026:13:45:{sec:02} {tz}");
                proptest::prop_assert_eq!(parse_clf(text.as_bytes()), parse_clf_uncached(text.as_bytes()));
            }
        }
    }
}
