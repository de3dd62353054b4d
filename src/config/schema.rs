//! Every unknown key and wrong-typed value of a document in one pass, not one per run: serde stops
//! at the first, so each error's path (serde_path_to_error) names the node to drop before
//! deserializing again. What is left deserializes into `RawConfig`, so the semantic checks still
//! run over the rest of the file. A leaf: YAML value in, raw config and problems out.

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use serde_yaml::Value;

/// Enough for any real file; a bound, so a pathological document cannot loop for long.
const MAX_ROUNDS: usize = 200;

/// One schema problem: the YAML path (`vips[0].intervall`), whether it names a key that is not
/// allowed there (its position is then the key's, not the value's), and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    pub path: String,
    pub unknown_key: bool,
    pub message: String,
}

/// Deserializes `doc`, dropping each node serde refuses and trying again. Returns the value (None
/// when even the emptied document does not fit, e.g. a list at the top) and every problem found.
pub fn deserialize<T: DeserializeOwned>(mut doc: Value) -> (Option<T>, Vec<SchemaProblem>) {
    let mut problems: Vec<SchemaProblem> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        // By reference: a clone of the whole tree per round doubled the peak (~100 MB at 100k VIPs).
        let err = match serde_path_to_error::deserialize::<_, T>(&doc) {
            Ok(v) => return (Some(v), problems),
            Err(e) => e,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let path = render(&segments);
        let raw = err.into_inner().to_string();
        let unknown_key = raw.starts_with("unknown field `");
        let repeated = problems.iter().any(|p| p.path == path);
        if !repeated {
            let at = if unknown_key {
                render(&segments[..segments.len() - 1])
            } else {
                path.clone()
            };
            problems.push(SchemaProblem {
                message: explain(if at.is_empty() { "top level" } else { &at }, &raw),
                path: path.clone(),
                unknown_key,
            });
        }
        // A list item refused once is emptied (its own fields then count as unset); refused
        // again (a scalar list), the whole list goes.
        if segments.is_empty() || !remove(&mut doc, &segments, repeated) {
            return (None, problems);
        }
    }
    (None, problems)
}

/// `vips[0].checks[1]`, the form `Locator` and the semantic checks use.
fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// Drops the node at `segments`: a mapping entry is removed; a list item becomes `{}`, or with
/// `whole_list` the list's own entry goes. False when the path cannot be followed.
fn remove(doc: &mut Value, segments: &[Segment], whole_list: bool) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    if whole_list && matches!(last, Segment::Seq { .. }) {
        return remove(doc, parents, false);
    }
    let Some(parent) = walk(doc, parents) else {
        return false;
    };
    match (last, parent) {
        (Segment::Map { key }, Value::Mapping(m)) => m.remove(key.as_str()).is_some(),
        (Segment::Seq { index }, Value::Sequence(s)) => match s.get_mut(*index) {
            Some(item) if !item.as_mapping().is_some_and(|m| m.is_empty()) => {
                *item = Value::Mapping(Default::default());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn walk<'a>(mut v: &'a mut Value, segments: &[Segment]) -> Option<&'a mut Value> {
    for s in segments {
        v = match (s, v) {
            (Segment::Map { key }, Value::Mapping(m)) => m.get_mut(key.as_str())?,
            (Segment::Seq { index }, Value::Sequence(s)) => s.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(v)
}

/// serde's words for the reader of a YAML file: `expected u16` becomes the range a port takes,
/// `struct RawPeer` a mapping, and the path leads.
pub fn explain(path: &str, raw: &str) -> String {
    if raw.starts_with("unknown field `") {
        return format!("{path}: {raw}");
    }
    let (what, expected) = match raw.split_once(", expected ") {
        Some((w, e)) => (w, e),
        None => return format!("{path}: {raw}"),
    };
    let want = expected_words(expected);
    if let Some(found) = what.strip_prefix("invalid type: ") {
        return format!("{path} must be {want}, not {}", found_words(found));
    }
    if let Some(found) = what.strip_prefix("invalid value: ") {
        return format!(
            "{path} {} is out of range: it must be {want}",
            found_words(found)
        );
    }
    format!("{path}: {what}; it must be {want}")
}

fn expected_words(e: &str) -> String {
    let e = e.trim();
    match e {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" | "usize" => "a whole number of 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "a bool" => "true or false".into(),
        "a string" => "a string".into(),
        "a sequence" => "a list".into(),
        "a YAML mapping" | "a map" => "a mapping (key: value lines)".into(),
        _ if e.starts_with("struct ") => "a mapping (key: value lines)".into(),
        _ => e.to_string(),
    }
}

/// `string "abc"` -> `the string "abc"`; `integer `70000`` -> `70000`.
fn found_words(f: &str) -> String {
    let f = f.trim();
    for (prefix, word) in [
        ("integer ", ""),
        ("floating point ", ""),
        ("boolean ", ""),
        ("string ", "the string "),
    ] {
        if let Some(rest) = f.strip_prefix(prefix) {
            return format!("{word}{}", rest.trim_matches('`'));
        }
    }
    match f {
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        "unit value" => "empty".into(),
        other => other.to_string(),
    }
}

/// Whether `path` is at or below `under` (`vips[0].port` is below `vips[0]`, not `vips[01]`).
pub fn is_within(path: &str, under: &str) -> bool {
    path == under
        || path
            .strip_prefix(under)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        port: Option<u16>,
        name: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        ports: Vec<u16>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Item {
        on: Option<bool>,
    }

    fn run(text: &str) -> (Option<Doc>, Vec<SchemaProblem>) {
        deserialize(serde_yaml::from_str(text).unwrap())
    }

    #[test]
    fn every_problem_in_one_pass_and_the_rest_kept() {
        let (doc, p) = run(
            "port: abc\nname: web\nbogus: 1\nitems:\n  - {on: yes please}\n  - {on: true, off: 1}\n",
        );
        let doc = doc.unwrap();
        assert_eq!(doc.name.as_deref(), Some("web"));
        assert_eq!(doc.port, None);
        assert_eq!(doc.items.len(), 2);
        assert_eq!(doc.items[1].on, Some(true));
        let mut paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        paths.sort();
        assert_eq!(
            paths,
            ["bogus", "items[0].on", "items[1].off", "port"],
            "{p:#?}"
        );
        let msg = |path: &str| p.iter().find(|p| p.path == path).unwrap();
        assert_eq!(
            msg("port").message,
            "port must be a whole number from 0 to 65535, not the string \"abc\""
        );
        assert!(msg("bogus").unknown_key && !msg("port").unknown_key);
        assert!(msg("bogus")
            .message
            .starts_with("top level: unknown field `bogus`"));
        assert!(msg("items[1].off")
            .message
            .starts_with("items[1]: unknown field `off`"));
        assert_eq!(
            msg("items[0].on").message,
            "items[0].on must be true or false, not the string \"yes please\""
        );
    }

    #[test]
    fn out_of_range_and_wrong_list_items() {
        let (doc, p) = run("port: 70000\nports: [80, x]\nitems: [3]\n");
        let doc = doc.unwrap();
        assert!(doc.ports.is_empty() && doc.items.len() == 1);
        let msg = |path: &str| &p.iter().find(|p| p.path == path).unwrap().message;
        assert_eq!(
            msg("port"),
            "port 70000 is out of range: it must be a whole number from 0 to 65535"
        );
        assert!(msg("ports[1]").contains("the string \"x\""));
        assert!(
            msg("items[0]").contains("must be a mapping (key: value lines)"),
            "{}",
            msg("items[0]")
        );
        assert_eq!(p.len(), 3, "{p:#?}");
    }

    #[test]
    fn a_document_that_is_not_a_mapping_stops() {
        let (doc, p) = run("- 1\n- 2\n");
        assert!(doc.is_none());
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn within() {
        assert!(is_within("vips[0].port", "vips[0]"));
        assert!(is_within("vips[0]", "vips[0]"));
        assert!(!is_within("vips[01]", "vips[0]"));
        assert!(!is_within("vips_x", "vips"));
    }
}
