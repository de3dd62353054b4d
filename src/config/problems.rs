//! Collecting config problems (YAML path + message) and the small value validators every section
//! shares. A leaf: `validate` and the per-section validators use it, it uses none of them.

use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;

/// One problem: the YAML path it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

pub(super) fn required<'a, T>(
    p: &mut Problems,
    path: &str,
    v: &'a Option<T>,
    what: &str,
) -> Option<&'a T> {
    if v.is_none() {
        p.add(path, format!("{path} is required ({what})"));
    }
    v.as_ref()
}

/// `500ms`, `1s`, `2m`; a bare number is refused because its unit would be a guess.
pub(super) fn duration(
    p: &mut Problems,
    path: &str,
    v: Option<&Value>,
    default: Duration,
) -> Duration {
    match v {
        None => default,
        Some(Value::String(s)) => match humantime::parse_duration(s.trim()) {
            Ok(d) => d,
            Err(e) => {
                p.add(
                    path,
                    format!("{path} \"{s}\" is not a duration ({e}); write e.g. 500ms, 1s, 2m"),
                );
                default
            }
        },
        Some(Value::Number(n)) => {
            p.add(
                path,
                format!("{path} {n} has no unit; write e.g. {n}s or {n}ms"),
            );
            default
        }
        Some(other) => {
            p.add(
                path,
                format!(
                    "{path} must be a duration such as 1s, not {}",
                    kind_of(other)
                ),
            );
            default
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn name(p: &mut Problems, path: &str, v: &Option<String>) -> Option<Arc<str>> {
    let n = required(p, &format!("{path}.name"), v, "a unique name")?;
    if !crate::control::is_valid_name(n) {
        p.add(
            format!("{path}.name"),
            format!(
                "{path}.name \"{n}\" must be 1-64 characters of letters, digits, '-', '_' or '.'"
            ),
        );
        return None;
    }
    Some(Arc::from(n.as_str()))
}
