//! Format metadata: which record fields (status, request time) each format's lines can carry, as
//! far as the configuration tells, and which field each access-log value is computed from. Lets
//! `config` warn before any line arrives that a condition can never trip (latency from nginx
//! `combined`). Pure; knows nothing of config types. An nginx `log_format` string is judged by
//! rendering one sample line from it and running the real nginx parser on it, so this metadata
//! cannot drift from what the parser reads.

use std::borrow::Cow;

use super::{parse_nginx, LogFormat, Malformed};

/// A field of a log record that some access-log value is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogField {
    Status,
    RequestTime,
}

impl LogField {
    /// The field the access-log value `value` (`error_ratio`, `latency_p99`, ...) is computed
    /// from; None for values that only count lines (`request_rate`, `malformed_rate`).
    pub fn needed_by(value: &str) -> Option<Self> {
        if value.starts_with("latency_") {
            Some(Self::RequestTime)
        } else if value.starts_with("error_") {
            Some(Self::Status)
        } else {
            None
        }
    }

    /// For messages: "needs a status" / "needs a request time".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Status => "a status",
            Self::RequestTime => "a request time",
        }
    }
}

/// The fields a format's records can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSet {
    pub status: bool,
    pub request_time: bool,
}

impl FieldSet {
    pub const ALL: FieldSet = FieldSet {
        status: true,
        request_time: true,
    };

    pub fn has(self, f: LogField) -> bool {
        match f {
            LogField::Status => self.status,
            LogField::RequestTime => self.request_time,
        }
    }
}

impl LogFormat {
    /// The fields this format's records can carry, from the format alone. None for `nginx`: the
    /// same parser reads `combined` (no request time) and `combined` + `$request_time`, so only
    /// the nginx `log_format` tells (see [`nginx_log_format_fields`]). Envoy's default format and
    /// HAProxy's httplog always have both; `regex` must name both groups and `json` maps both
    /// (a JSON line without the mapped field is a run-time matter, not a config one).
    pub fn static_fields(&self) -> Option<FieldSet> {
        match self {
            Self::Nginx => None,
            Self::Envoy | Self::Haproxy | Self::Json(_) | Self::Regex(_) => Some(FieldSet::ALL),
        }
    }
}

/// nginx's predefined `combined` log format.
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The status the sample line carries: a line whose parsed status differs was read from
/// another field.
const SAMPLE_STATUS: u16 = 203;

/// A plausible value for nginx variable `$name` in a sample line. Only what the parser looks at
/// needs a real value; anything else is `-`, as nginx writes an empty variable, so a number can
/// only come from a variable the parser really reads.
fn sample_value(name: &str) -> &'static str {
    match name {
        "time_local" => "22/Nov/2026:13:45:01 +0000",
        "request" => "GET /index.html HTTP/1.1",
        "status" => "203",
        "request_time" => "1.234",
        "upstream_response_time" => "0.567",
        "remote_addr" | "realip_remote_addr" => "192.0.2.1",
        "body_bytes_sent" | "bytes_sent" => "612",
        "http_user_agent" => "curl/8.0 (x86_64-pc-linux-gnu)",
        _ => "-",
    }
}

/// A piece of an nginx log_format string.
enum Piece<'a> {
    Literal(&'a str),
    /// A variable's name, without `$` and braces.
    Variable(&'a str),
}

/// Splits an nginx log_format string into literal text and variables (`$name`, `${name}`).
fn scan_log_format<'a>(fmt: &'a str, mut out: impl FnMut(Piece<'a>)) {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = fmt;
    while let Some(i) = rest.find('$') {
        out(Piece::Literal(&rest[..i]));
        let after = &rest[i + 1..];
        if let Some((name, tail)) = after.strip_prefix('{').and_then(|b| b.split_once('}')) {
            out(Piece::Variable(name));
            rest = tail;
            continue;
        }
        let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
        out(if end == 0 {
            Piece::Literal("$")
        } else {
            Piece::Variable(&after[..end])
        });
        rest = &after[end..];
    }
    out(Piece::Literal(rest));
}

/// The nginx variables a log_format string uses, in order.
pub fn nginx_variables(log_format: &str) -> Vec<String> {
    let fmt = nginx_format_string(log_format);
    let mut vars = Vec::new();
    scan_log_format(&fmt, |p| {
        if let Piece::Variable(v) = p {
            vars.push(v.to_string())
        }
    });
    vars
}

/// The format string from what an operator pastes: the bare string, `combined` (nginx's
/// predefined format), or the directive as in nginx.conf
/// (`log_format timed '$remote_addr ...' '... $request_time';`), whose quoted pieces nginx joins.
pub fn nginx_format_string(pasted: &str) -> Cow<'_, str> {
    let mut t = pasted.trim();
    if t == "combined" {
        return Cow::Borrowed(NGINX_COMBINED);
    }
    if let Some(rest) = t
        .strip_prefix("log_format")
        .filter(|r| r.starts_with(char::is_whitespace))
    {
        // The format's name, then optional `escape=...`.
        let mut words = rest.trim_start().splitn(2, char::is_whitespace);
        words.next();
        t = words.next().unwrap_or("").trim_start();
        if t.starts_with("escape=") {
            t = t.split_once(char::is_whitespace).map_or("", |(_, r)| r);
        }
        t = t.trim().trim_end_matches(';').trim_end();
    }
    if !t.starts_with('\'') {
        return Cow::Borrowed(t);
    }
    let mut joined = String::with_capacity(t.len());
    let mut quoted = false;
    for c in t.chars() {
        match c {
            '\'' => quoted = !quoted,
            c if quoted => joined.push(c),
            _ => {}
        }
    }
    Cow::Owned(joined)
}

/// The line nginx would write with `log_format` (see [`nginx_format_string`]) for a sample
/// request.
pub fn nginx_sample_line(log_format: &str) -> String {
    let fmt = nginx_format_string(log_format);
    let fmt = fmt.as_ref();
    let mut line = String::with_capacity(fmt.len() * 2);
    scan_log_format(fmt, |p| match p {
        Piece::Literal(l) => line.push_str(l),
        Piece::Variable(v) => line.push_str(sample_value(v)),
    });
    line
}

/// What format `nginx` reads from lines written with nginx `log_format` (the string from
/// nginx.conf, or `combined`): the fields it gets, or why it cannot read such lines at all.
pub fn nginx_log_format_fields(log_format: &str) -> Result<FieldSet, Malformed> {
    let rec = parse_nginx(nginx_sample_line(log_format).as_bytes())?;
    Ok(FieldSet {
        status: rec.status == SAMPLE_STATUS,
        request_time: rec.latency_us.is_some(),
    })
}

/// What to change in the nginx `log_format` so format `nginx` reads `field` from it.
pub fn nginx_advice(log_format: &str, field: LogField) -> &'static str {
    match field {
        LogField::RequestTime
            if nginx_variables(log_format)
                .iter()
                .any(|v| v == "request_time" || v == "upstream_response_time") =>
        {
            "format nginx reads the request time only at the end of the line, after the last \
             quoted field: move $request_time to the end of the nginx log_format"
        }
        LogField::RequestTime => {
            "add ` $request_time` at the end of the nginx log_format (after \"$http_user_agent\"), \
             reload nginx, and put the new format string in this signal's log_format"
        }
        LogField::Status => {
            "format nginx reads the status right after the quoted \"$request\": write \
             \"$request\" $status as in combined"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{JsonFields, LatencyUnit, RegexFormat, WindowSnapshot};

    const TIMED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time"#;

    #[test]
    fn every_window_value_maps_to_its_field() {
        for v in WindowSnapshot::VALUES {
            let want = match v {
                "request_rate" | "malformed_rate" => None,
                "error_ratio" | "error_rate" => Some(LogField::Status),
                l if l.starts_with("latency_p") => Some(LogField::RequestTime),
                other => panic!("value {other} has no field mapping here"),
            };
            assert_eq!(LogField::needed_by(v), want, "{v}");
        }
    }

    #[test]
    fn static_field_sets_per_format() {
        assert_eq!(LogFormat::Nginx.static_fields(), None);
        assert_eq!(LogFormat::Envoy.static_fields(), Some(FieldSet::ALL));
        assert_eq!(LogFormat::Haproxy.static_fields(), Some(FieldSet::ALL));
        let json = LogFormat::Json(JsonFields {
            status_field: "status".into(),
            latency_field: "request_time".into(),
            latency_unit: LatencyUnit::Seconds,
            time_field: None,
        });
        assert_eq!(json.static_fields(), Some(FieldSet::ALL));
        let re = RegexFormat::new(r"(?P<status>\d+) (?P<latency>\S+)", LatencyUnit::Millis);
        assert_eq!(
            LogFormat::Regex(re.unwrap()).static_fields(),
            Some(FieldSet::ALL)
        );
    }

    #[test]
    fn nginx_combined_has_a_status_but_no_request_time() {
        let want = FieldSet {
            status: true,
            request_time: false,
        };
        assert_eq!(nginx_log_format_fields("combined"), Ok(want));
        assert_eq!(nginx_log_format_fields(NGINX_COMBINED), Ok(want));
        assert!(nginx_advice("combined", LogField::RequestTime).contains("add ` $request_time`"));
    }

    #[test]
    fn nginx_with_request_time_at_the_end_has_both() {
        assert_eq!(nginx_log_format_fields(TIMED), Ok(FieldSet::ALL));
        let up = TIMED.replace("$request_time", "${upstream_response_time}");
        assert_eq!(nginx_log_format_fields(&up), Ok(FieldSet::ALL));
        // Extra fields before the date and quoted ones after the agent are fine.
        let extra = TIMED.replace(
            "\"$http_user_agent\"",
            "\"$http_user_agent\" \"$http_x_forwarded_for\"",
        );
        let extra = format!("$host {extra}");
        assert_eq!(nginx_log_format_fields(&extra), Ok(FieldSet::ALL));
    }

    #[test]
    fn nginx_request_time_not_at_the_end_is_not_read() {
        let f = r#"$remote_addr - $remote_user [$time_local] "$request" $status $request_time "$http_referer" "$http_user_agent""#;
        assert_eq!(
            nginx_log_format_fields(f),
            Ok(FieldSet {
                status: true,
                request_time: false
            })
        );
        assert!(nginx_advice(f, LogField::RequestTime).contains("move $request_time to the end"));
    }

    #[test]
    fn nginx_status_elsewhere_is_not_read() {
        let f =
            r#"[$time_local] "$request" $body_bytes_sent $status "$http_user_agent" $request_time"#;
        assert_eq!(
            nginx_log_format_fields(f),
            Ok(FieldSet {
                status: false,
                request_time: true
            })
        );
        assert!(nginx_advice(f, LogField::Status).contains("right after"));
    }

    #[test]
    fn nginx_layouts_the_parser_cannot_read() {
        for f in [
            r#"$time_iso8601 "$request" $status "$http_user_agent" $request_time"#,
            r#"[$time_local] $status $request_time"#,
            // Two times at the end: nginx_latency cannot read "1.234 0.567".
            &format!("{TIMED} $upstream_response_time"),
            "",
        ] {
            assert!(nginx_log_format_fields(f).is_err(), "{f}");
        }
    }

    #[test]
    fn a_pasted_nginx_directive_is_joined_like_nginx_does() {
        let pasted = r#"log_format timed escape=default '$remote_addr - $remote_user [$time_local] "$request" $status '
                       '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time';"#;
        assert_eq!(nginx_format_string(pasted), TIMED);
        assert_eq!(nginx_log_format_fields(pasted), Ok(FieldSet::ALL));
        let quoted = format!("'{NGINX_COMBINED}'");
        assert_eq!(nginx_format_string(&quoted), NGINX_COMBINED);
        assert_eq!(nginx_format_string(" combined "), NGINX_COMBINED);
        assert_eq!(nginx_format_string("log_format"), "log_format");
    }

    #[test]
    fn scanner_handles_braces_dollars_and_names() {
        assert_eq!(
            nginx_variables("a $x ${y}z $ $$w ${unterminated"),
            ["x", "y", "w"]
        );
        assert_eq!(nginx_sample_line("$status${status}x$"), "203203x$");
        assert_eq!(
            nginx_sample_line("$nope [$time_local]"),
            "- [22/Nov/2026:13:45:01 +0000]"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_log_format_is_judged_without_panic(s in ".{0,200}") {
            let _ = nginx_log_format_fields(&s);
            let _ = nginx_variables(&s);
            let _ = nginx_advice(&s, LogField::RequestTime);
        }
    }
}
