//! Prometheus text exposition format (0.0.4), parsed strictly and without allocating: a sample
//! borrows its name and raw label text from the body, and label values are unescaped only while
//! being compared. A malformed line is an error for that line alone; the caller skips and counts it.

use std::borrow::Cow;

/// One sample line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// The validated text between the braces ("" without labels); read it with [`Sample::labels`].
    raw_labels: &'a str,
    pub value: f64,
    /// Milliseconds since the epoch, when the exporter gave one (unused: we stamp on receipt).
    pub timestamp: Option<i64>,
}

impl<'a> Sample<'a> {
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            rest: self.raw_labels,
        }
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<LabelValue<'a>> {
        self.labels().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// A label value as written, still escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelValue<'a>(&'a str);

impl<'a> LabelValue<'a> {
    /// Wraps text already checked by the quoted-string lexer.
    pub(crate) fn from_raw(raw: &'a str) -> Self {
        Self(raw)
    }

    fn chars(self) -> impl Iterator<Item = char> + 'a {
        let mut it = self.0.chars();
        std::iter::from_fn(move || match it.next()? {
            '\\' => match it.next() {
                Some('n') => Some('\n'),
                Some(c) => Some(c),
                None => Some('\\'),
            },
            c => Some(c),
        })
    }

    /// Compares the unescaped value with `s` without building it.
    pub fn eq_str(self, s: &str) -> bool {
        if self.0.contains('\\') {
            self.chars().eq(s.chars())
        } else {
            self.0 == s
        }
    }

    pub fn unescaped(self) -> Cow<'a, str> {
        if self.0.contains('\\') {
            Cow::Owned(self.chars().collect())
        } else {
            Cow::Borrowed(self.0)
        }
    }

    /// The escaped form: cheap, and as good as the unescaped one for telling series apart.
    pub fn raw(self) -> &'a str {
        self.0
    }
}

/// Iterates `(name, value)` over already-validated label text.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, LabelValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // The text was validated by `parse_line`; any surprise just ends the iteration.
        let mut c = Cursor::new(self.rest);
        c.blanks();
        let name = c.label_name().ok()?;
        c.blanks();
        c.expect(b'=').ok()?;
        c.blanks();
        let value = c.quoted().ok()?;
        c.blanks();
        if c.peek() == Some(b',') {
            c.pos += 1;
        }
        self.rest = c.rest();
        Some((name, LabelValue(value)))
    }
}

/// Why a line was rejected.
pub type LineError = &'static str;

/// A byte cursor over one line. All positions it stops at are ASCII, so slicing is safe.
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Skips blanks; true if there were any.
    pub(crate) fn blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    pub(crate) fn expect(&mut self, b: u8) -> Result<(), LineError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err("unexpected character")
        }
    }

    fn ident(&mut self, first: fn(u8) -> bool, more: fn(u8) -> bool) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(first) {
            return None;
        }
        self.pos += 1;
        while self.peek().is_some_and(more) {
            self.pos += 1;
        }
        Some(&self.s[start..self.pos])
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    pub(crate) fn metric_name(&mut self) -> Result<&'a str, LineError> {
        self.ident(
            |b| b.is_ascii_alphabetic() || b == b'_' || b == b':',
            |b| b.is_ascii_alphanumeric() || b == b'_' || b == b':',
        )
        .ok_or("bad metric name")
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    pub(crate) fn label_name(&mut self) -> Result<&'a str, LineError> {
        self.ident(
            |b| b.is_ascii_alphabetic() || b == b'_',
            |b| b.is_ascii_alphanumeric() || b == b'_',
        )
        .ok_or("bad label name")
    }

    /// A double-quoted string with escapes `\\`, `\"` and `\n`; returns it still escaped.
    pub(crate) fn quoted(&mut self) -> Result<&'a str, LineError> {
        self.expect(b'"').map_err(|_| "expected '\"'")?;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err("unterminated label value"),
                Some(b'"') => break,
                Some(b'\\') => {
                    match self.s.as_bytes().get(self.pos + 1) {
                        Some(b'\\' | b'"' | b'n') => {}
                        _ => return Err("bad escape in label value"),
                    }
                    self.pos += 2;
                }
                Some(_) => self.pos += 1,
            }
        }
        let value = &self.s[start..self.pos];
        self.pos += 1;
        Ok(value)
    }

    /// A run of non-blank characters.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// The label block after `{`, up to and including `}`; returns the text inside.
    fn label_block(&mut self) -> Result<&'a str, LineError> {
        let start = self.pos;
        loop {
            self.blanks();
            if self.peek() == Some(b'}') {
                let inner = &self.s[start..self.pos];
                self.pos += 1;
                return Ok(inner);
            }
            self.label_name()?;
            self.blanks();
            self.expect(b'=').map_err(|_| "expected '='")?;
            self.blanks();
            self.quoted()?;
            self.blanks();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}'"),
            }
        }
    }
}

/// Go's ParseFloat spellings the format allows, plus what Rust's parser accepts ("1e3", ".5").
fn parse_value(t: &str) -> Result<f64, LineError> {
    match t {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        // Rust would also take "inf", "infinity", "nan" in any case: not in the format.
        _ if t
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            Err("bad value")
        }
        _ => t.parse().map_err(|_| "bad value"),
    }
}

/// Parses one line: `Ok(None)` for blank lines and comments (`# HELP`, `# TYPE`, anything `#`).
pub fn parse_line(line: &str) -> Result<Option<Sample<'_>>, LineError> {
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut c = Cursor::new(line);
    let name = c.metric_name()?;
    c.blanks();
    let raw_labels = if c.peek() == Some(b'{') {
        c.pos += 1;
        c.label_block()?
    } else {
        ""
    };
    c.blanks();
    let value = parse_value(c.token())?;
    let timestamp = if c.blanks() && !c.at_end() {
        Some(c.token().parse::<i64>().map_err(|_| "bad timestamp")?)
    } else {
        None
    };
    c.blanks();
    if !c.at_end() {
        return Err("trailing text");
    }
    Ok(Some(Sample {
        name,
        raw_labels,
        value,
        timestamp,
    }))
}

/// Counts from parsing one body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyStats {
    pub samples: usize,
    pub malformed: usize,
}

/// Calls `f` with every well-formed sample of `body`; malformed lines are skipped and counted.
pub fn parse_body<'a>(body: &'a str, mut f: impl FnMut(&Sample<'a>)) -> BodyStats {
    let mut stats = BodyStats::default();
    for line in body.split('\n') {
        match parse_line(line) {
            Ok(Some(s)) => {
                stats.samples += 1;
                f(&s);
            }
            Ok(None) => {}
            Err(_) => stats.malformed += 1,
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Sample<'_> {
        parse_line(line).unwrap().unwrap()
    }

    fn labels(s: &Sample<'_>) -> Vec<(String, String)> {
        s.labels()
            .map(|(n, v)| (n.to_owned(), v.unescaped().into_owned()))
            .collect()
    }

    #[test]
    fn plain_labelled_and_timestamped_samples() {
        let s = one("up 1");
        assert_eq!((s.name, s.value, s.timestamp), ("up", 1.0, None));
        assert_eq!(s.labels().count(), 0);
        let s = one("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000");
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.timestamp, Some(1395066363000));
        assert_eq!(
            labels(&s),
            [
                ("method".into(), "post".into()),
                ("code".into(), "200".into())
            ]
        );
        assert!(s.label("code").unwrap().eq_str("200"));
        assert!(s.label("nope").is_none());
        // Blanks anywhere the format allows them, a trailing comma, tabs, CRLF.
        let s = one("  a:b_c { x = \"1\" , y=\"2\", }\t-3.5e2 \r");
        assert_eq!((s.name, s.value), ("a:b_c", -350.0));
        assert_eq!(labels(&s).len(), 2);
        assert_eq!(one("m{} 2").labels().count(), 0);
    }

    #[test]
    fn escapes_are_compared_unescaped() {
        let s = one(
            r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9"#,
        );
        let path = s.label("path").unwrap();
        assert!(path.eq_str(r"C:\DIR\FILE.TXT"));
        assert!(!path.eq_str(r"C:\\DIR\\FILE.TXT"));
        assert_eq!(
            s.label("error").unwrap().unescaped(),
            "Cannot find file:\n\"FILE.TXT\""
        );
        // A '}' or ',' inside quotes is part of the value.
        let s = one(r#"m{a="x,}y",b="}"} 1"#);
        assert!(s.label("a").unwrap().eq_str("x,}y"));
        assert!(s.label("b").unwrap().eq_str("}"));
    }

    #[test]
    fn special_values() {
        assert!(one("m NaN").value.is_nan());
        assert_eq!(one("m +Inf").value, f64::INFINITY);
        assert_eq!(one("m -Inf").value, f64::NEG_INFINITY);
        assert_eq!(one(r#"b{le="+Inf"} 7"#).value, 7.0);
        assert_eq!(one("m .5").value, 0.5);
    }

    #[test]
    fn comments_and_blank_lines_are_not_samples() {
        for l in [
            "",
            "   ",
            "# HELP m Some help.",
            "# TYPE m counter",
            "#x",
            "# EOF",
        ] {
            assert_eq!(parse_line(l), Ok(None), "{l:?}");
        }
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for l in [
            "1m 1",
            "m",
            "m{",
            "m{a} 1",
            "m{a=1} 1",
            "m{a=\"1} 1",
            "m{a=\"\\x\"} 1",
            "m{a=\"1\" b=\"2\"} 1",
            "m{1a=\"1\"} 1",
            "m 1 2 3",
            "m 1 1.5",
            "m one",
            "m inf",
            "m nan",
            "m 0x10",
            "m{a=\"1\"}",
            "<html><body>Not Found</body></html>",
            "m{a=\"\u{e9}\\",
        ] {
            assert!(parse_line(l).is_err(), "{l:?} parsed");
        }
    }

    #[test]
    fn never_panics_on_any_prefix_or_junk() {
        let line = r#"x_y{a="b\\c\"d\n",le="+Inf"} -1.5e-3 123"#;
        for i in 0..=line.len() {
            let _ = parse_line(&line[..i]);
            let _ = parse_line(&line[i..]);
        }
        let junk = "\u{0}{}{\"\\\"\\é=,,}} ÿ \t\r";
        for (i, _) in junk.char_indices() {
            let _ = parse_line(&junk[i..]);
        }
    }

    #[test]
    fn body_counts_samples_and_malformed_lines() {
        let body = "# TYPE a counter\na 1\nbroken{\n\nb{x=\"y\"} 2\n";
        let mut names = Vec::new();
        let stats = parse_body(body, |s| names.push(s.name));
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            stats,
            BodyStats {
                samples: 2,
                malformed: 1
            }
        );
    }
}
