//! Access-log line parsers. Pure: a line in, a `LogRecord` or `Malformed` out. Log lines are
//! outside input, so every scanner is bounds-checked and never panics. The nginx, Envoy and HAProxy
//! parsers are hand-written byte scanners that allocate nothing per line (the ingest path must
//! keep up with >= 1M lines/s on one core); JSON and regex formats allocate and are slower.

use std::fmt;

use memchr::{memchr, memchr_iter, memrchr};
use serde_json::Value;

use super::timeparse;

mod fields;
pub use fields::{
    nginx_advice, nginx_format_string, nginx_log_format_fields, nginx_sample_line, nginx_variables,
    FieldSet, LogField, NGINX_COMBINED,
};

/// What one access-log line tells us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// HTTP status; 0 when the proxy logged that no response was sent (Envoy `0`, HAProxy `-1`).
    pub status: u16,
    /// Total request time in microseconds, `None` when the line has none (`-`).
    pub latency_us: Option<u64>,
    /// Unix milliseconds from the line itself, when the format carries a parseable timestamp.
    pub time_ms: Option<i64>,
}

/// Why a line was rejected; a static reason so rejecting costs no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed log line: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// Unit of a latency field in JSON or regex formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyUnit {
    Seconds,
    Millis,
    Micros,
}

impl LatencyUnit {
    /// `s`, `ms` or `us` (also `µs`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "s" => Some(Self::Seconds),
            "ms" => Some(Self::Millis),
            "us" | "µs" => Some(Self::Micros),
            _ => None,
        }
    }

    /// Decimal digits of this unit below a microsecond-resolution integer.
    fn frac_digits(self) -> u32 {
        match self {
            Self::Seconds => 6,
            Self::Millis => 3,
            Self::Micros => 0,
        }
    }

    fn scale_f64(self, v: f64) -> Option<u64> {
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        // `as` saturates: an absurd value becomes u64::MAX and the window clamps and counts it.
        Some((v * 10f64.powi(self.frac_digits() as i32)).round() as u64)
    }
}

/// Field names for `format: json`. A dotted name (`upstream.duration`) walks nested objects when
/// no top-level key has that exact name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonFields {
    pub status_field: String,
    pub latency_field: String,
    pub latency_unit: LatencyUnit,
    pub time_field: Option<String>,
}

/// `format: regex`: a user pattern with named groups `status` and `latency`, optionally `time`
/// (RFC 3339, CLF or epoch seconds).
#[derive(Clone, Debug)]
pub struct RegexFormat {
    re: regex::bytes::Regex,
    latency_unit: LatencyUnit,
    status: usize,
    latency: usize,
    time: Option<usize>,
}

/// Two formats are the same when their patterns are (config reload compares values).
impl PartialEq for RegexFormat {
    fn eq(&self, other: &Self) -> bool {
        self.re.as_str() == other.re.as_str() && self.latency_unit == other.latency_unit
    }
}

/// Why a `regex` log format cannot be used.
#[derive(Clone, Debug)]
pub enum RegexFormatError {
    Regex(regex::Error),
    /// A named group every record needs (`status`, `latency`) is absent.
    NoGroup(&'static str),
}

impl fmt::Display for RegexFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegexFormatError::Regex(e) => e.fmt(f),
            RegexFormatError::NoGroup(name) => write!(f, "regex has no named group `{name}`"),
        }
    }
}

impl std::error::Error for RegexFormatError {}

impl RegexFormat {
    /// Compiles and checks the groups now so a bad pattern is a config error, not a stream of
    /// malformed lines.
    pub fn new(pattern: &str, latency_unit: LatencyUnit) -> Result<Self, RegexFormatError> {
        let re = regex::bytes::Regex::new(pattern).map_err(RegexFormatError::Regex)?;
        let group = |name: &'static str| {
            re.capture_names()
                .position(|n| n == Some(name))
                .ok_or(RegexFormatError::NoGroup(name))
        };
        let status = group("status")?;
        let latency = group("latency")?;
        let time = group("time").ok();
        Ok(Self {
            re,
            latency_unit,
            status,
            latency,
            time,
        })
    }
}

/// The access-log formats vipwarden understands.
#[derive(Clone, Debug, PartialEq)]
pub enum LogFormat {
    /// nginx `combined` plus ` $request_time` (or `$upstream_response_time`) at the end.
    Nginx,
    /// Envoy's default access-log format.
    Envoy,
    /// HAProxy `option httplog`, with or without a syslog prefix.
    Haproxy,
    Json(JsonFields),
    Regex(RegexFormat),
}

impl LogFormat {
    /// The config's name of the format, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Envoy => "envoy",
            Self::Haproxy => "haproxy",
            Self::Json(_) => "json",
            Self::Regex(_) => "regex",
        }
    }

    /// The formats that need no further settings: `nginx`, `envoy`, `haproxy`.
    pub fn builtin(name: &str) -> Option<Self> {
        match name {
            "nginx" => Some(Self::Nginx),
            "envoy" => Some(Self::Envoy),
            "haproxy" => Some(Self::Haproxy),
            _ => None,
        }
    }

    pub fn parse(&self, line: &[u8]) -> Result<LogRecord, Malformed> {
        match self {
            Self::Nginx => parse_nginx(line),
            Self::Envoy => parse_envoy(line),
            Self::Haproxy => parse_haproxy(line),
            Self::Json(f) => parse_json(f, line),
            Self::Regex(f) => parse_regex(f, line),
        }
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// 1 to 3 ASCII digits as a status code.
fn status_code(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u16, |a, c| a * 10 + (c - b'0') as u16))
}

/// A non-negative decimal (`0.003`, `12`) scaled to microseconds without floating point. Extra
/// fraction digits are truncated (but must still be digits); overflow saturates (the window clamps
/// it). One pass over the bytes: this runs on every line.
fn decimal_us(b: &[u8], unit: LatencyUnit) -> Option<u64> {
    if b.is_empty() || b == b"." {
        return None;
    }
    let want = unit.frac_digits();
    let mut v: u64 = 0;
    // Fraction digits taken so far; None before the dot.
    let mut frac: Option<u32> = None;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                let take = match frac {
                    None => true,
                    Some(n) if n < want => {
                        frac = Some(n + 1);
                        true
                    }
                    Some(_) => false,
                };
                if take {
                    v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
    }
    for _ in frac.unwrap_or(0)..want {
        v = v.saturating_mul(10);
    }
    Some(v)
}

/// Finds the bracketed CLF date (`[22/Nov/2026:...]`), skipping other brackets such as a syslog
/// `haproxy[1234]:` tag. Returns the text inside and the index just after `]`.
fn find_clf_date(line: &[u8]) -> Option<(&[u8], usize)> {
    for open in memchr_iter(b'[', line) {
        let inner = &line[open + 1..];
        if timeparse::looks_like_clf(inner) {
            let close = memchr(b']', inner)?;
            return Some((&inner[..close], open + 1 + close + 1));
        }
    }
    None
}

/// Index of the quote that closes the request line: the first `"` after `from` followed by a space
/// and a digit. Unescaped quotes inside the request (nginx escapes them, others may not) are
/// skipped that way.
fn request_end(line: &[u8], from: usize) -> Option<usize> {
    let after = line.get(from..)?;
    memchr_iter(b'"', after)
        .find(|&q| {
            after.get(q + 1) == Some(&b' ') && after.get(q + 2).is_some_and(u8::is_ascii_digit)
        })
        .map(|q| from + q)
}

/// Next space-separated token of `rest`; returns (token, remainder).
fn token(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = rest.iter().position(|&c| c != b' ')?;
    let rest = &rest[start..];
    let end = memchr(b' ', rest).unwrap_or(rest.len());
    Some((&rest[..end], &rest[end..]))
}

/// `127.0.0.1 - - [22/Nov/2026:13:45:01 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/7.88" 0.003`
///
/// This is the ingest hot path: the short hops (date end, request start, status, last quote) are
/// checked in place instead of searched with memchr, whose set-up costs more than such a search;
/// each shortcut falls back to the general search, so every line gives what the general scan gives
/// (a test checks it against that scan).
fn parse_nginx(line: &[u8]) -> Result<LogRecord, Malformed> {
    let (time_ms, after_date) = nginx_date(line)?;
    let rest = &line[after_date..];
    // The request's quote: usually right after the space that follows the date.
    let open = match rest {
        [b'"', ..] => 0,
        [_, b'"', ..] => 1,
        _ => memchr(b'"', rest).ok_or(Malformed("no request"))?,
    };
    let close = request_end(rest, open + 1).ok_or(Malformed("no status after request"))?;
    // request_end guarantees `" d`: the status token starts at the digit and must be 3 digits.
    let (status, tail) = match rest.get(close + 2..) {
        Some([a, b, c, tail @ ..])
            if a.is_ascii_digit()
                && b.is_ascii_digit()
                && c.is_ascii_digit()
                && matches!(tail.first(), None | Some(b' ')) =>
        {
            let status = [*a, *b, *c]
                .iter()
                .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
            (status, tail)
        }
        _ => return Err(Malformed("bad status")),
    };
    // Referer and user agent are quoted and may contain spaces: the latency is what follows the
    // last quote, a few bytes before the end (a reverse scan finds it at once).
    let last_quote = tail
        .iter()
        .rposition(|&c| c == b'"')
        .ok_or(Malformed("no user agent"))?;
    let latency_us = nginx_latency(trim(&tail[last_quote + 1..]))?;
    Ok(LogRecord {
        status,
        latency_us,
        time_ms: Some(time_ms),
    })
}

/// `[$time_local]` of an nginx line: its time and the index after `]`. Lines of a log mostly
/// repeat the previous line's date: when the first bracket holds exactly that date, neither its
/// end nor its value needs computing.
#[inline]
fn nginx_date(line: &[u8]) -> Result<(i64, usize), Malformed> {
    if let Some(open) = line.iter().position(|&c| c == b'[') {
        let inner = &line[open + 1..];
        if let Some((date, tail)) = inner.split_first_chunk::<{ timeparse::CLF_CACHE }>() {
            if tail.first() == Some(&b']') {
                if let Some(t) = timeparse::clf_cache_hit(date) {
                    // A cached date is a CLF date without `]`: find_clf_date picks this bracket
                    // and ends it here too.
                    return Ok((t, open + 1 + timeparse::CLF_CACHE + 1));
                }
            }
        }
    }
    let (date, after_date) = find_clf_date(line).ok_or(Malformed("no [time_local]"))?;
    let time_ms = timeparse::parse_clf(date).ok_or(Malformed("bad time_local"))?;
    Ok((time_ms, after_date))
}

/// `$request_time` (`0.003`), `$upstream_response_time` with several upstreams (`0.002, 0.004`,
/// `0.1 : 0.2`, summed as the user waited for all of them) or `-`. Nothing at all (plain
/// `combined`) is a line without latency, not a malformed one.
fn nginx_latency(b: &[u8]) -> Result<Option<u64>, Malformed> {
    if b.is_empty() {
        return Ok(None);
    }
    // The common case, one `$request_time`: a plain decimal has no separator to split at.
    if let Some(us) = decimal_us(b, LatencyUnit::Seconds) {
        return Ok(Some(us));
    }
    let mut total: Option<u64> = None;
    for part in b.split(|&c| c == b',' || c == b':') {
        let part = trim(part);
        if part == b"-" {
            continue;
        }
        let us = decimal_us(part, LatencyUnit::Seconds).ok_or(Malformed("bad request_time"))?;
        total = Some(total.unwrap_or(0).saturating_add(us));
    }
    Ok(total)
}

/// `[2026-11-22T13:45:01.123Z] "GET / HTTP/1.1" 200 - 0 612 3 2 "-" "curl/7.88" "id" "host" "up"`:
/// `%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%` follow the request.
fn parse_envoy(line: &[u8]) -> Result<LogRecord, Malformed> {
    let line = trim(line);
    let inner = line
        .strip_prefix(b"[")
        .ok_or(Malformed("no [START_TIME]"))?;
    let close = memchr(b']', inner).ok_or(Malformed("no [START_TIME]"))?;
    let time_ms = timeparse::parse_rfc3339(&inner[..close]).ok_or(Malformed("bad START_TIME"))?;
    let rest = &inner[close + 1..];
    let open = memchr(b'"', rest).ok_or(Malformed("no request"))?;
    let end = request_end(rest, open + 1).ok_or(Malformed("no status after request"))?;
    let mut rest = &rest[end + 1..];
    let mut fields: [&[u8]; 5] = [b""; 5];
    for f in fields.iter_mut() {
        let (t, r) = token(rest).ok_or(Malformed("too few fields"))?;
        *f = t;
        rest = r;
    }
    let status = status_code(fields[0]).ok_or(Malformed("bad RESPONSE_CODE"))?;
    let latency_us = match fields[4] {
        b"-" => None,
        d => Some(decimal_us(d, LatencyUnit::Millis).ok_or(Malformed("bad DURATION"))?),
    };
    Ok(LogRecord {
        status,
        latency_us,
        time_ms: Some(time_ms),
    })
}

/// `haproxy[1]: 10.0.0.1:5000 [22/Nov/2026:13:45:01.123] fe be/srv 0/0/1/2/3 200 612 - - ---- ...`
/// Status is `%ST`; latency the last of the timers (`%Ta` or, in older formats, `%Tt`) in ms.
fn parse_haproxy(line: &[u8]) -> Result<LogRecord, Malformed> {
    let (date, after_date) = find_clf_date(line).ok_or(Malformed("no [accept_date]"))?;
    let time_ms = timeparse::parse_clf(date).ok_or(Malformed("bad accept_date"))?;
    let rest = &line[after_date..];
    let (_frontend, rest) = token(rest).ok_or(Malformed("no frontend"))?;
    let (_backend, rest) = token(rest).ok_or(Malformed("no backend/server"))?;
    let (timers, rest) = token(rest).ok_or(Malformed("no timers"))?;
    let (status, _) = token(rest).ok_or(Malformed("no status"))?;
    let status = match status {
        b"-1" => 0,
        s if s.len() == 3 => status_code(s).ok_or(Malformed("bad status"))?,
        _ => return Err(Malformed("bad status")),
    };
    // httplog has 5 timers; tcplog's 3 are not an HTTP line.
    if timers.iter().filter(|&&c| c == b'/').count() != 4 {
        return Err(Malformed("bad timers"));
    }
    let last = &timers[memrchr(b'/', timers).map_or(0, |i| i + 1)..];
    // `+` marks `option logasap` (time so far); -1 means the request never completed.
    let last = last.strip_prefix(b"+").unwrap_or(last);
    let latency_us = if last.first() == Some(&b'-') {
        None
    } else {
        Some(decimal_us(last, LatencyUnit::Millis).ok_or(Malformed("bad total time"))?)
    };
    Ok(LogRecord {
        status,
        latency_us,
        time_ms: Some(time_ms),
    })
}

fn json_get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(found) = v.get(path) {
        return Some(found);
    }
    path.split('.').try_fold(v, |cur, key| cur.get(key))
}

fn parse_json(f: &JsonFields, line: &[u8]) -> Result<LogRecord, Malformed> {
    let v: Value = serde_json::from_slice(trim(line)).map_err(|_| Malformed("not JSON"))?;
    if !v.is_object() {
        return Err(Malformed("not a JSON object"));
    }
    let status = match json_get(&v, &f.status_field) {
        Some(Value::Number(n)) => n.as_u64().filter(|&s| s <= 999).map(|s| s as u16),
        Some(Value::String(s)) => status_code(s.as_bytes()),
        _ => return Err(Malformed("no status field")),
    }
    .ok_or(Malformed("bad status field"))?;
    let latency_us = match json_get(&v, &f.latency_field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "-" || s.is_empty() => None,
        Some(Value::String(s)) => {
            Some(decimal_us(s.trim().as_bytes(), f.latency_unit).ok_or(Malformed("bad latency"))?)
        }
        Some(Value::Number(n)) => Some(
            n.as_f64()
                .and_then(|x| f.latency_unit.scale_f64(x))
                .ok_or(Malformed("bad latency"))?,
        ),
        Some(_) => return Err(Malformed("bad latency")),
    };
    // A missing or odd time field leaves time unknown; replay counts such lines, live mode does
    // not need them.
    let time_ms = f
        .time_field
        .as_deref()
        .and_then(|name| json_get(&v, name))
        .and_then(|t| match t {
            Value::String(s) => timeparse::parse_any(s.as_bytes()),
            Value::Number(n) => n
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e12)
                .map(|x| (x * 1000.0).round() as i64),
            _ => None,
        });
    Ok(LogRecord {
        status,
        latency_us,
        time_ms,
    })
}

fn parse_regex(f: &RegexFormat, line: &[u8]) -> Result<LogRecord, Malformed> {
    let caps = f.re.captures(line).ok_or(Malformed("no regex match"))?;
    let group = |i: usize| caps.get(i).map(|m| trim(m.as_bytes()));
    let status = group(f.status)
        .and_then(status_code)
        .ok_or(Malformed("bad status"))?;
    let latency_us = match group(f.latency) {
        None | Some(b"-") | Some(b"") => None,
        Some(l) => Some(decimal_us(l, f.latency_unit).ok_or(Malformed("bad latency"))?),
    };
    let time_ms = f.time.and_then(group).and_then(timeparse::parse_any);
    Ok(LogRecord {
        status,
        latency_us,
        time_ms,
    })
}

#[cfg(test)]
mod tests;
