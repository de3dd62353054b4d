//! Turns serde_yaml's parse errors into messages that say what to do: the duplicate key's own
//! line (serde_yaml points at the mapping's start), the nearest known key for a typo, and plain
//! words for tabs and merge keys. Text in, (line, column, message) out; a leaf module.

/// Rewrites one parse error. `line`/`column` are 1-based as serde_yaml reports them.
pub fn explain(
    text: &str,
    message: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> (Option<usize>, Option<usize>, String) {
    // A struct reports `duplicate field`, a plain YAML mapping `duplicate entry with key`.
    let duplicate = between(message, "duplicate field `", "`")
        .or_else(|| between(message, "duplicate entry with key \"", "\""));
    if let Some(key) = duplicate {
        let from = line.unwrap_or(1);
        let hits: Vec<(usize, usize)> = key_lines(text, key)
            .into_iter()
            .filter(|(l, _)| *l >= from)
            .collect();
        if let [first, second, ..] = hits.as_slice() {
            return (
                Some(second.0),
                Some(second.1),
                format!(
                    "duplicate key `{key}` (first at line {}): YAML keeps only one of them; remove or merge one",
                    first.0
                ),
            );
        }
    }
    if message.contains("unknown field `<<`") {
        return (
            line,
            column,
            "merge keys (`<<: *anchor`) are not supported: write the keys out in each place".into(),
        );
    }
    if let Some(key) = between(message, "unknown field `", "`") {
        let known: Vec<&str> = message.split('`').skip(3).step_by(2).collect();
        if let Some(best) = nearest(key, &known) {
            return (line, column, format!("{message}; did you mean `{best}`?"));
        }
    }
    if message.contains("tab character") {
        return (
            line,
            column,
            "a tab character: YAML indents with spaces only; replace the tabs with spaces (e.g. `expand -t 2`)".into(),
        );
    }
    (line, column, message.to_string())
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// (line, column) of every line whose first token is `key:`.
fn key_lines(text: &str, key: &str) -> Vec<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let body = l.trim_start_matches([' ', '-']);
            let indent = l.len() - body.len();
            let unquoted = body.strip_prefix(key).or_else(|| {
                body.strip_prefix(&format!("\"{key}\"")[..])
                    .or_else(|| body.strip_prefix(&format!("'{key}'")[..]))
            })?;
            unquoted
                .trim_start()
                .starts_with(':')
                .then_some((i + 1, indent + 1))
        })
        .collect()
}

/// The known key closest to `typo` by edit distance, if close enough to be a typo.
fn nearest<'a>(typo: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (typo.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (levenshtein(typo, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_points_at_the_second_key() {
        let text = "router_id: 192.0.2.1\nlocal_as: 1\nrouter_id: 192.0.2.2\n";
        let (l, c, m) = explain(text, "duplicate field `router_id`", Some(1), Some(1));
        assert_eq!((l, c), (Some(3), Some(1)));
        assert!(m.contains("first at line 1"), "{m}");
        let nested = "vips:\n  - name: a\n    med: 1\n    med: 2\n";
        let (l, c, _) = explain(nested, "duplicate field `med`", Some(2), Some(5));
        assert_eq!((l, c), (Some(4), Some(5)));
        let (l, c, m) = explain(
            text,
            "duplicate entry with key \"router_id\"",
            Some(1),
            Some(1),
        );
        assert_eq!((l, c), (Some(3), Some(1)));
        assert!(
            m.starts_with("duplicate key `router_id` (first at line 1)"),
            "{m}"
        );
    }

    #[test]
    fn typos_get_the_nearest_key() {
        let m = "unknown field `local_az`, expected one of `router_id`, `local_as`, `peers`";
        assert_eq!(
            explain("", m, Some(2), Some(1)).2,
            format!("{m}; did you mean `local_as`?")
        );
        let far = "unknown field `zzzzzz`, expected one of `router_id`, `local_as`";
        assert_eq!(explain("", far, None, None).2, far);
        let one = "unknown field `remote_az`, expected `remote_as`";
        assert!(explain("", one, None, None)
            .2
            .ends_with("did you mean `remote_as`?"));
    }

    #[test]
    fn tabs_and_merge_keys_say_what_to_do() {
        let m = "found a tab character that violates indentation at line 2 column 1, while scanning a plain scalar";
        assert!(explain("", m, Some(2), Some(1))
            .2
            .contains("replace the tabs with spaces"));
        let m = "unknown field `<<`, expected one of `name`";
        assert!(explain("", m, None, None).2.contains("merge keys"));
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("local_az", "local_as"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
