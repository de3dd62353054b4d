//! Warnings, not errors, about access-log signals, decided from the configuration alone: a
//! `withdraw_when` condition whose value needs a field the signal's format never carries (latency
//! from nginx `combined`: the condition could never trip), and an nginx `log_format` that format
//! `nginx` cannot read at all. The field sets come from the formats' own metadata
//! (`signals::logformat`); where the config cannot tell (nginx without `log_format`) it says
//! nothing rather than guess. Runs only on a config that validated; changes nothing in it.

use super::model::{SignalConfig, SignalKind};
use super::problems::Problem;
use super::raw::RawConfig;
use crate::signals::logformat::{
    nginx_advice, nginx_format_string, nginx_log_format_fields, FieldSet, LogField, NGINX_COMBINED,
};
use crate::signals::LogFormat;

/// What is known of one access-log signal's fields.
struct Known<'a> {
    /// `signals[i]`.
    path: String,
    format: &'a LogFormat,
    /// The nginx `log_format` string, when given.
    log_format: Option<&'a str>,
    fields: FieldSet,
}

pub(super) fn warnings(raw: &RawConfig, signals: &[SignalConfig]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut known = Vec::new();
    for (i, r) in raw.signals.iter().enumerate() {
        let Some(SignalKind::AccessLog(a)) = signals
            .iter()
            .find(|s| Some(&*s.name) == r.name.as_deref())
            .map(|s| &s.kind)
        else {
            continue;
        };
        let path = format!("signals[{i}]");
        let log_format = r.log_format.as_deref();
        let fields = match (&a.format, log_format) {
            (LogFormat::Nginx, Some(lf)) => match nginx_log_format_fields(lf) {
                Ok(f) => Some(f),
                Err(why) => {
                    out.push(Problem {
                        path: format!("{path}.log_format"),
                        message: format!(
                            "{path}.log_format: format nginx cannot read lines written with this \
                             log_format (a sample line gives \"{why}\"), so every line of signal \
                             {} would count as malformed; format nginx reads nginx `combined`, \
                             optionally followed by $request_time; for another layout use format: \
                             json (nginx escape=json) or regex",
                            a.name
                        ),
                    });
                    None
                }
            },
            (f, _) => f.static_fields(),
        };
        if let Some(fields) = fields {
            known.push((
                a.name.as_str(),
                Known {
                    path,
                    format: &a.format,
                    log_format,
                    fields,
                },
            ));
        }
    }
    for (v, vip) in raw.vips.iter().enumerate() {
        for (c, cond) in vip.withdraw_when.iter().enumerate() {
            let Some((sname, value)) = cond.signal.as_deref().and_then(|s| s.split_once('.'))
            else {
                continue;
            };
            let Some((_, k)) = known.iter().find(|(n, _)| *n == sname) else {
                continue;
            };
            let Some(field) = LogField::needed_by(value).filter(|f| !k.fields.has(*f)) else {
                continue;
            };
            let cpath = format!("vips[{v}].withdraw_when[{c}]");
            out.push(Problem {
                path: format!("{cpath}.signal"),
                message: missing_message(&cpath, sname, value, field, k),
            });
        }
    }
    out
}

fn missing_message(cpath: &str, sname: &str, value: &str, field: LogField, k: &Known) -> String {
    let what = field.describe();
    match (k.format, k.log_format) {
        (LogFormat::Nginx, Some(lf)) => {
            let written = if nginx_format_string(lf) == NGINX_COMBINED {
                "nginx `combined`".to_string()
            } else {
                "that nginx log_format".to_string()
            };
            format!(
                "{cpath}: {sname}.{value} needs {what}, but lines written with {}.log_format \
                 ({written}) carry none that format nginx reads: this condition can never trip; {}",
                k.path,
                nginx_advice(lf, field)
            )
        }
        (f, _) => format!(
            "{cpath}: {sname}.{value} needs {what}, which {}'s format ({}) does not carry: this \
             condition can never trip",
            k.path,
            f.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, Config};

    /// A config with one access-log signal (`SIGNAL` replaced) and three conditions on it.
    const BASE: &str = r#"router_id: 198.51.100.2
local_as: 65101
peers: [{name: tor1, address: 198.51.100.1, remote_as: 65000}]
checks: [{name: web, type: tcp, target: "203.0.113.10:80"}]
signals:
  - name: web_log
    type: access_log
    path: /var/log/nginx/access.log
SIGNAL
vips:
  - name: web
    prefixes: [203.0.113.10/32]
    checks: [web]
    withdraw_when:
      - {signal: web_log.request_rate, above: 1000}
      - {signal: web_log.error_ratio, above: 0.05}
      - {signal: web_log.latency_p99, above: 1500ms}
"#;

    fn load(signal: &str) -> Config {
        parse(Path::new("vw.yaml"), &BASE.replace("SIGNAL", signal)).unwrap()
    }

    fn warnings(signal: &str) -> Vec<String> {
        load(signal)
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The issue's case: latency from stock nginx `combined`.
    #[test]
    fn latency_on_nginx_combined_warns_at_the_condition() {
        let w = warnings("    format: nginx\n    log_format: combined");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0],
            "vw.yaml:18:18: vips[0].withdraw_when[2]: web_log.latency_p99 needs a request time, \
             but lines written with signals[0].log_format (nginx `combined`) carry none that \
             format nginx reads: this condition can never trip; add ` $request_time` at the end \
             of the nginx log_format (after \"$http_user_agent\"), reload nginx, and put the new \
             format string in this signal's log_format"
        );
    }

    #[test]
    fn nginx_with_request_time_is_quiet() {
        for lf in [
            r#"'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time'"#,
            // As pasted from nginx.conf, quoted pieces and all.
            r#""log_format timed '$remote_addr - $remote_user [$time_local] \"$request\" $status ' '$body_bytes_sent \"$http_referer\" \"$http_user_agent\" $upstream_response_time';""#,
        ] {
            let w = warnings(&format!("    format: nginx\n    log_format: {lf}"));
            assert!(w.is_empty(), "{lf}: {w:?}");
        }
    }

    /// Without a log_format the config cannot tell combined from timed: no guess.
    #[test]
    fn unknown_or_complete_field_sets_are_quiet() {
        for sig in [
            "    format: nginx",
            "",
            "    format: envoy",
            "    format: haproxy",
            "    format: json",
            "    format: json\n    json: {status: code, latency: duration, latency_unit: ms}",
            "    format: regex\n    regex: '(?P<status>\\d{3}) (?P<latency>[0-9.]+)'",
        ] {
            assert!(warnings(sig).is_empty(), "{sig}");
        }
    }

    #[test]
    fn misplaced_fields_get_their_own_advice() {
        let late = r#"'[$time_local] "$request" $status $request_time "$http_user_agent"'"#;
        let w = warnings(&format!("    format: nginx\n    log_format: {late}"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("latency_p99") && w[0].contains("move $request_time to the end"));
        let status = r#"'[$time_local] "$request" $body_bytes_sent $status "$http_user_agent" $request_time'"#;
        let w = warnings(&format!("    format: nginx\n    log_format: {status}"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(
            "vw.yaml:17:18: vips[0].withdraw_when[1]: web_log.error_ratio needs a status"
        ));
        assert!(w[0].contains("right after the quoted"), "{}", w[0]);
    }

    /// A log_format the parser cannot read is one warning on the signal, not one per condition.
    #[test]
    fn an_unreadable_log_format_warns_once_at_the_signal() {
        let w =
            warnings("    format: nginx\n    log_format: '$time_iso8601 $status $request_time'");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("vw.yaml:10:17: signals[0].log_format: format nginx cannot read"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("no [time_local]"), "{}", w[0]);
    }

    #[test]
    fn log_format_belongs_to_nginx_only() {
        let text = BASE.replace("SIGNAL", "    format: haproxy\n    log_format: combined");
        let e = parse(Path::new("vw.yaml"), &text).unwrap_err().to_string();
        assert!(
            e.contains("vw.yaml:10:17: signals[0].log_format (the nginx log_format string) is only used with format: nginx"),
            "{e}"
        );
    }
}
