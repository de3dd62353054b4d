//! Where the `vips:` block list sits in a config's text, found with yaml-rust2's pull parser,
//! which hands out one event at a time (serde_yaml 0.9 first loads every event of the document:
//! ~200 MB at 100k VIPs). Only the shape `direct` can cut up safely is accepted: one document, a
//! top-level block mapping with a plain `vips:` key, a block list whose items start on their
//! dash's line, no anchors, aliases or tags anywhere. Anything else is None and the caller takes
//! the full path. Positions come from line and column: yaml-rust2's char index counts a block
//! scalar's text in bytes, so it is not a reliable offset once the text is not ASCII.

use std::ops::Range;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// The config text cut into the `vips:` block and the rest, with the node count yaml-rust2 saw
/// in each piece: the caller reads each piece with serde_yaml and compares the counts, so a
/// piece that the two parsers read differently falls back instead of giving another config.
pub struct Split {
    /// The `vips:` block, when the file has one.
    pub vips: Option<VipsBlock>,
    /// Nodes outside the `vips` key and its list, the top-level mapping included.
    pub rest_nodes: usize,
}

pub struct VipsBlock {
    /// Bytes `cut.0..cut.1` of the text: from the start of the `vips:` line to the start of
    /// the line after the list (or the end of the text).
    pub cut: (usize, usize),
    items: Vec<Item>,
}

struct Item {
    /// Byte offset of the item's first character (after `- `).
    start: usize,
    /// The length of the `  - ` before it on its line.
    indent: u32,
    /// Nodes in the item (scalars, lists and mappings).
    nodes: u32,
}

/// Consecutive list items as a document of their own: a block list (dashes included) in the
/// columns of the file, and the node count yaml-rust2 saw in it.
pub struct Items<'a> {
    pub text: &'a str,
    pub nodes: usize,
}

impl VipsBlock {
    /// The number of items, for sizing the output exactly.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Items `range` of the list, cut from `text` (the text `split` was given): from the start
    /// of the first one's line to the start of the line after the last one.
    pub fn items<'a>(&self, text: &'a str, range: Range<usize>) -> Option<Items<'a>> {
        let first = self.items.get(range.start)?;
        let nodes = self.items.get(range.clone())?.iter();
        Some(Items {
            text: text.get(first.line_start()?..self.end(range.end.checked_sub(1)?)?)?,
            nodes: nodes.map(|i| i.nodes as usize).sum::<usize>() + 1,
        })
    }

    /// Where item `i` ends: the start of the next item's line, or of the line after the list.
    fn end(&self, i: usize) -> Option<usize> {
        match self.items.get(i + 1) {
            Some(next) => next.line_start(),
            None => Some(self.cut.1),
        }
    }
}

impl Item {
    fn line_start(&self) -> Option<usize> {
        self.start.checked_sub(self.indent as usize)
    }
}

/// The split of `text`, or None when its shape is anything but the plain one described above.
pub fn split(text: &str) -> Option<Split> {
    // yaml-rust2 ends the stream at NUL and breaks lines only at \n and \r; libyaml also breaks
    // at NEL, LS and PS. Where the two could see other lines, positions would not carry over.
    if text.contains(['\0', '\u{85}', '\u{2028}', '\u{2029}'])
        || text
            .match_indices('\r')
            .any(|(i, _)| text.as_bytes().get(i + 1) != Some(&b'\n'))
    {
        return None;
    }
    let mut w = Walk {
        parser: Parser::new_from_str(text),
        lines: Lines {
            text,
            line: 1,
            start: 0,
        },
    };
    if !matches!(w.next()?.0, Event::StreamStart)
        || !matches!(w.next()?.0, Event::DocumentStart)
        || !matches!(w.next()?.0, Event::MappingStart(0, None))
    {
        return None;
    }
    let mut keys: Vec<String> = Vec::new();
    let mut vips = None;
    let mut rest_nodes = 1;
    loop {
        let (event, mark) = w.next()?;
        let key = match event {
            Event::MappingEnd => break,
            Event::Scalar(key, _, 0, None) => key,
            _ => return None,
        };
        // A repeated key: the full path reports it (serde_yaml refuses it in a tree).
        if keys.contains(&key) {
            return None;
        }
        if key == "vips" {
            vips = Some(w.vips_block(mark)?);
        } else {
            rest_nodes += 1 + w.node()?;
        }
        keys.push(key);
    }
    // One document only.
    if !matches!(w.next()?.0, Event::DocumentEnd) || !matches!(w.next()?.0, Event::StreamEnd) {
        return None;
    }
    Some(Split { vips, rest_nodes })
}

/// Deeper than any config; see `node_from`.
const MAX_DEPTH: usize = 64;

struct Walk<'a> {
    parser: Parser<std::str::Chars<'a>>,
    lines: Lines<'a>,
}

impl Walk<'_> {
    fn next(&mut self) -> Option<(Event, Marker)> {
        self.parser.next_token().ok()
    }

    fn peek(&mut self) -> Option<&(Event, Marker)> {
        self.parser.peek().ok()
    }

    /// Consumes one whole node and returns how many nodes it holds.
    fn node(&mut self) -> Option<usize> {
        let first = self.next()?.0;
        self.node_from(first)
    }

    /// The node that starts with `first` (already taken), consumed to its end. Anchors, aliases
    /// and tags are refused: cut into pieces, an alias could lose its anchor.
    fn node_from(&mut self, first: Event) -> Option<usize> {
        let mut depth = 0usize;
        let mut count = 0usize;
        let mut event = first;
        loop {
            match event {
                Event::Scalar(_, _, 0, None) => count += 1,
                Event::SequenceStart(0, None) | Event::MappingStart(0, None) => {
                    count += 1;
                    depth += 1;
                    // serde_yaml refuses deep nesting (128 levels); an item read on its own
                    // is two levels shallower than in the file, so stay well below.
                    if depth > MAX_DEPTH {
                        return None;
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => depth = depth.checked_sub(1)?,
                _ => return None,
            }
            if depth == 0 {
                return Some(count);
            }
            event = self.next()?.0;
        }
    }

    /// The `vips` key's value (the key, at `key`, is taken): a block list, item by item.
    fn vips_block(&mut self, key: Marker) -> Option<VipsBlock> {
        let text = self.lines.text;
        let (key_line, key_at) = self.lines.byte_at(key)?;
        // The line is `vips:` and at most a comment, so cutting it drops nothing else.
        let line = line_at(text, key_line);
        let after_key = line_at(text, key_at).strip_prefix("vips:")?;
        if !spaces(text.get(key_line..key_at)?)
            || !(after_key.is_empty() || after_key.starts_with(' ') && blank(after_key))
        {
            return None;
        }
        let (event, seq) = self.next()?;
        if !matches!(event, Event::SequenceStart(0, None)) {
            return None;
        }
        // A flow list starts at its `[` (a block list at its first dash or, when the dashes
        // are in the key's column, at its first item).
        let (_, seq_at) = self.lines.byte_at(seq)?;
        if text.as_bytes().get(seq_at) == Some(&b'[') {
            return None;
        }
        let mut dash_col = None;
        let mut items = Vec::new();
        let end_mark = loop {
            let (event, mark) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                break mark;
            }
            // A block mapping's start is marked at its first `:`; its first key is earlier.
            let mut first = mark;
            if matches!(event, Event::MappingStart(..)) {
                let key = self.peek()?.1;
                if (key.line(), key.col()) < (mark.line(), mark.col()) {
                    first = key;
                }
            }
            let (line_start, start) = self.lines.byte_at(first)?;
            // Only `- ` before the item on its line, every dash in the same column.
            let prefix = text.get(line_start..start)?;
            let col = prefix.len() - prefix.trim_start_matches(' ').len();
            let after_dash = prefix.get(col..)?.strip_prefix('-')?;
            if after_dash.is_empty() || !spaces(after_dash) || *dash_col.get_or_insert(col) != col {
                return None;
            }
            if items.is_empty() {
                // Only blank and comment lines between `vips:` and the first dash: they are cut.
                let between = text.get(key_line + line.len()..line_start)?;
                if !between.split('\n').all(blank) {
                    return None;
                }
            }
            let nodes = self.node_from(event)?;
            items.push(Item {
                start,
                indent: u32::try_from(prefix.len()).ok()?,
                nodes: u32::try_from(nodes).ok()?,
            });
        };
        // No item: a flow list or something else again.
        let dash_col = dash_col?;
        // The list ends where the next top-level key starts (its line, which must hold nothing
        // before it), or with the mapping: then the last item runs to the end of the text.
        let end = match self.peek()? {
            (Event::Scalar(..), next) if *next == end_mark => {
                let (start, at) = self.lines.byte_at(end_mark)?;
                if !spaces(text.get(start..at)?) {
                    return None;
                }
                start
            }
            (Event::MappingEnd, _) => text.len(),
            _ => return None,
        };
        let block = VipsBlock {
            cut: (key_line, end),
            items,
        };
        // Every other line of an item is blank, a comment or indented past the dash: a line
        // that is not would end the item in the whole file but not in the item's own text.
        for (i, item) in block.items.iter().enumerate() {
            let mut lines = text.get(item.start..block.end(i)?)?.split('\n').skip(1);
            if !lines.all(|l| blank(l) || l.len() - l.trim_start_matches(' ').len() > dash_col) {
                return None;
            }
        }
        Some(block)
    }
}

/// Whether `s` is only spaces (no tabs: where yaml-rust2 and libyaml might differ, cut text is
/// kept plain).
fn spaces(s: &str) -> bool {
    s.bytes().all(|b| b == b' ')
}

/// Whether a line (or the rest of one, after a blank) holds only spaces and at most a comment.
fn blank(s: &str) -> bool {
    let t = s.trim_start_matches(' ');
    t.is_empty() || t == "\r" || t.starts_with('#')
}

/// The line of `text` that starts at byte `start`, without its line break.
fn line_at(text: &str, start: usize) -> &str {
    let line = text.get(start..).unwrap_or("");
    let line = line.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line)
}

/// Byte offsets of lines, for line numbers that never go back (events come in text order).
struct Lines<'a> {
    text: &'a str,
    /// The 1-based line that starts at `start`.
    line: usize,
    start: usize,
}

impl Lines<'_> {
    fn start_of(&mut self, line: usize) -> Option<usize> {
        if line < self.line {
            return None;
        }
        while self.line < line {
            let nl = self.text.get(self.start..)?.find('\n')?;
            self.start += nl + 1;
            self.line += 1;
        }
        Some(self.start)
    }

    /// The byte offsets of a marker's line and of the marker (its column counts chars).
    fn byte_at(&mut self, mark: Marker) -> Option<(usize, usize)> {
        let start = self.start_of(mark.line())?;
        let line = self.text.get(start..)?;
        let line = line.split('\n').next().unwrap_or("");
        let offset = match line.char_indices().nth(mark.col()) {
            Some((i, _)) => i,
            None if line.chars().count() == mark.col() => line.len(),
            None => return None,
        };
        Some((start, start + offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_comments() {
        for s in ["", "  ", " # c", "#c", "\r", "  # x\r"] {
            assert!(blank(s), "{s:?}");
        }
        for s in ["x", "  - a", " a # c", "\t# c"] {
            assert!(!blank(s), "{s:?}");
        }
    }
}
