//! Maps YAML paths such as `vips[0].checks[1]` to their line and column, so semantic errors found
//! after deserializing can still point at the file. serde_yaml keeps no spans, hence this pass over
//! yaml-rust2's marked events.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Default, Debug)]
pub struct Locator {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

impl Locator {
    /// Builds the map; YAML the parser rejects gives an empty locator (serde_yaml reports that
    /// error with its own position).
    pub fn new(text: &str) -> Locator {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Locator::default();
        }
        Locator {
            values: builder.values,
            keys: builder.keys,
        }
    }

    /// Position of the key at `path` (an unknown key is the key's problem, not its value's),
    /// else as `find`.
    pub fn find_key(&self, path: &str) -> Option<Position> {
        self.keys.get(path).copied().or_else(|| self.find(path))
    }

    /// Position of the value at `path`, else of its key, else of the nearest enclosing node.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p).or_else(|| self.keys.get(p)) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// Called for every node start; returns the node's path if it is a value (None for a key).
    fn node(&mut self, ev: &Event, pos: Position) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    // A key: only scalar keys are addressable.
                    let name = match ev {
                        Event::Scalar(s, ..) => s.clone(),
                        _ => String::from("?"),
                    };
                    self.keys.entry(join(path, &name)).or_insert(pos);
                    *key = Some(name);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                if let Some(p) = self.node(&ev, pos) {
                    self.values.entry(p).or_insert(pos);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a mapping key is not addressable; track it as "?".
                let path = self.node(&ev, pos).unwrap_or_else(|| String::from("?"));
                self.values.entry(path.clone()).or_insert(pos);
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map { path, key: None },
                    _ => Frame::Seq { path, index: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "router_id: 1.2.3.4\npeers:\n  - name: a\n    address: 192.0.2.1\nvips:\n  - name: web\n    checks: [web, other]\n";

    #[test]
    fn finds_values_keys_and_sequence_items() {
        let l = Locator::new(DOC);
        assert_eq!(
            l.find("router_id"),
            Some(Position {
                line: 1,
                column: 12
            })
        );
        assert_eq!(l.find("peers[0].address").map(|p| p.line), Some(4));
        assert_eq!(
            l.find("vips[0].checks[1]"),
            Some(Position {
                line: 7,
                column: 19
            })
        );
    }

    #[test]
    fn falls_back_to_the_enclosing_node() {
        let l = Locator::new(DOC);
        assert_eq!(l.find("vips[0].require").map(|p| p.line), Some(6));
        assert_eq!(l.find("nothing.here"), None);
    }

    #[test]
    fn broken_yaml_gives_empty_locator() {
        assert_eq!(Locator::new("a: [1, 2\n").find("a"), None);
    }
}
