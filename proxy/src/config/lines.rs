//! Maps a field path (`routes[1].upstream`) to the line it stands on in the YAML file.
//!
//! serde forgets where values came from, so validation errors would otherwise name a field
//! but not a line. One pass of yaml-rust2's event parser records the line of every key
//! and sequence item; lookups fall back to the nearest parent that has a line.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path -> 1-based line number.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

struct Builder {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Builder {
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Map { key: Some(key) } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Frame::Seq { index } => path.push_str(&format!("[{index}]")),
                Frame::Map { key: None } => {}
            }
        }
        path
    }

    /// A value (scalar or container) starts at `line` in the current position.
    fn value_starts(&mut self, line: usize) {
        if let Some(Frame::Seq { .. }) = self.stack.last() {
            let path = self.path();
            self.lines.entry(path).or_insert(line);
        }
    }

    /// A value ended: move the parent on to its next key or item.
    fn value_ends(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { key: key @ None }) = self.stack.last_mut() {
                    *key = Some(value);
                    let path = self.path();
                    self.lines.entry(path).or_insert(line);
                } else {
                    self.value_starts(line);
                    self.value_ends();
                }
            }
            Event::Alias(_) => {
                self.value_starts(line);
                self.value_ends();
            }
            Event::MappingStart(..) => {
                self.value_starts(line);
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceStart(..) => {
                self.value_starts(line);
                self.stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_ends();
            }
            _ => {}
        }
    }
}

impl LineIndex {
    /// Indexes `text`; a file that does not parse gives an empty index (the YAML error
    /// itself carries the line in that case).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder {
            stack: Vec::new(),
            lines: HashMap::new(),
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            lines: builder.lines,
        }
    }

    /// Line of `path`, or of its closest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "server:\n  listen: \"127.0.0.1:1\"\nupstreams:\n  a:\n    peers:\n      - 127.0.0.1:2\n      - 127.0.0.1:3\nroutes:\n  - name: one\n    upstream: a\n  - { name: two, upstream: b }\n";

    #[test]
    fn keys_and_items_have_their_lines() {
        let index = LineIndex::build(YAML);
        assert_eq!(index.line_of("server.listen"), Some(2));
        assert_eq!(index.line_of("upstreams.a.peers[1]"), Some(7));
        assert_eq!(index.line_of("routes[0].upstream"), Some(10));
        assert_eq!(index.line_of("routes[1].upstream"), Some(11));
    }

    #[test]
    fn unknown_paths_fall_back_to_the_parent() {
        let index = LineIndex::build(YAML);
        assert_eq!(index.line_of("routes[0].nope"), Some(9));
        assert_eq!(index.line_of("nothing"), None);
    }
}
