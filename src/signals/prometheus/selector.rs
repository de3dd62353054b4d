//! Series selectors as users write them in YAML: `name{label="v",other!="x"}`.
//! Equality matchers only; `=~` / `!~` are rejected with a clear error rather than half-supported.

use std::fmt;
use std::str::FromStr;

use super::exposition::{Cursor, LabelValue, Sample};

/// A selector that does not parse: where (byte offset in the trimmed text) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub text: String,
    pub pos: usize,
    pub what: &'static str,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "selector {:?} at byte {}: {}",
            self.text, self.pos, self.what
        )
    }
}

impl std::error::Error for SelectorError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Equal(String),
    NotEqual(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, Matcher)>,
}

impl Selector {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            labels: Vec::new(),
        }
    }

    pub fn eq(mut self, label: &str, value: &str) -> Self {
        self.labels
            .push((label.to_owned(), Matcher::Equal(value.to_owned())));
        self
    }

    pub fn ne(mut self, label: &str, value: &str) -> Self {
        self.labels
            .push((label.to_owned(), Matcher::NotEqual(value.to_owned())));
        self
    }

    /// Whether the sample's labels satisfy every matcher. As in PromQL, an absent label reads as
    /// "", so `x!="a"` matches series without `x` and `x=""` matches only those.
    pub fn matches_labels(&self, s: &Sample<'_>) -> bool {
        self.labels.iter().all(|(name, m)| {
            let found = s.label(name);
            let is = |want: &str| found.map_or(want.is_empty(), |v: LabelValue| v.eq_str(want));
            match m {
                Matcher::Equal(v) => is(v),
                Matcher::NotEqual(v) => !is(v),
            }
        })
    }

    /// Parses `name` or `name{label="v", other!="x"}`.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let err = |pos: usize, what: &'static str| SelectorError {
            text: text.to_owned(),
            pos,
            what,
        };
        let mut c = Cursor::new(text.trim());
        let name = c.metric_name().map_err(|e| err(c.pos, e))?.to_owned();
        let mut sel = Selector::new(name);
        c.blanks();
        if c.peek() == Some(b'{') {
            c.pos += 1;
            loop {
                c.blanks();
                if c.peek() == Some(b'}') {
                    c.pos += 1;
                    break;
                }
                let label = c.label_name().map_err(|e| err(c.pos, e))?.to_owned();
                c.blanks();
                let negate = c.peek() == Some(b'!');
                if negate {
                    c.pos += 1;
                }
                // `a!~"x"`: the `!` is taken, `~` is where `=` should be.
                if c.peek() != Some(b'~') {
                    c.expect(b'=')
                        .map_err(|_| err(c.pos, "expected '=' or '!='"))?;
                }
                if c.peek() == Some(b'~') {
                    return Err(err(c.pos, "regex matchers (=~, !~) are not supported"));
                }
                c.blanks();
                let raw = c.quoted().map_err(|e| err(c.pos, e))?;
                let value = LabelValue::from_raw(raw).unescaped().into_owned();
                sel.labels.push((
                    label,
                    if negate {
                        Matcher::NotEqual(value)
                    } else {
                        Matcher::Equal(value)
                    },
                ));
                c.blanks();
                match c.peek() {
                    Some(b',') => c.pos += 1,
                    Some(b'}') => {}
                    _ => return Err(err(c.pos, "expected ',' or '}'")),
                }
            }
        }
        c.blanks();
        if !c.at_end() {
            return Err(err(c.pos, "trailing text"));
        }
        Ok(sel)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (name, m)) in self.labels.iter().enumerate() {
            let (op, v) = match m {
                Matcher::Equal(v) => ("=", v),
                Matcher::NotEqual(v) => ("!=", v),
            };
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            write!(f, "{}{name}{op}\"{v}\"", if i > 0 { "," } else { "" })?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::exposition::parse_line;
    use super::*;

    #[test]
    fn parses_names_and_matchers() {
        assert_eq!(Selector::parse("up").unwrap(), Selector::new("up"));
        let s = Selector::parse(
            r#" envoy_cluster_upstream_rq_xx { envoy_response_code_class = "5", envoy_cluster_name!="a\"b\\c\n", } "#,
        )
        .unwrap();
        assert_eq!(
            s,
            Selector::new("envoy_cluster_upstream_rq_xx")
                .eq("envoy_response_code_class", "5")
                .ne("envoy_cluster_name", "a\"b\\c\n")
        );
        // Display round-trips.
        assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
        assert_eq!("m{}".parse::<Selector>().unwrap(), Selector::new("m"));
    }

    #[test]
    fn rejects_bad_selectors_with_position() {
        for (text, why) in [
            ("", "bad metric name"),
            ("9m", "bad metric name"),
            ("m{a=\"1\"", "expected ',' or '}'"),
            ("m{a=1}", "expected '\"'"),
            ("m{a=~\"5..\"}", "regex matchers"),
            ("m{a!~\"5..\"}", "regex matchers"),
            ("m{a:\"1\"}", "expected '=' or '!='"),
            ("m{a=\"1\"} x", "trailing text"),
            ("m{a=\"\\t\"}", "bad escape"),
        ] {
            let e = Selector::parse(text).unwrap_err();
            assert!(e.what.contains(why), "{text:?}: {e}");
            assert!(e.to_string().contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn matching_follows_promql_absent_label_rules() {
        let sample = parse_line(r#"r{code="5xx",proxy="web"} 1"#)
            .unwrap()
            .unwrap();
        let m = |s: &str| Selector::parse(s).unwrap().matches_labels(&sample);
        assert!(m(r#"r{code="5xx"}"#));
        assert!(m(r#"r{code="5xx",proxy!="api"}"#));
        assert!(!m(r#"r{code="5xx",proxy!="web"}"#));
        assert!(!m(r#"r{code="4xx"}"#));
        assert!(m(r#"r{zone!="x"}"#), "absent label is not x");
        assert!(m(r#"r{zone=""}"#), "absent label reads as empty");
        assert!(!m(r#"r{zone="x"}"#));
    }
}
