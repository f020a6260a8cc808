//! Where validation puts what it finds: every error with its full field path and line.

use super::error::ConfigError;
use super::lines::LineIndex;
use std::path::Path;

/// Collects errors with their lines while validation walks the raw structs.
pub struct Errors<'a> {
    file: &'a Path,
    lines: &'a LineIndex,
    /// What was found so far.
    pub(super) found: Vec<ConfigError>,
    /// Problems that do not stop the config serving.
    pub(super) warned: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    /// An empty collector for `file`.
    pub fn new(file: &'a Path, lines: &'a LineIndex) -> Self {
        Self {
            file,
            lines,
            found: Vec::new(),
            warned: Vec::new(),
        }
    }

    /// Records `message` against `field` (a full path such as `routes[2].upstream`).
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.found.push(ConfigError {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(field),
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Records a warning against `field`: reported, but the config is still valid.
    pub fn warn(&mut self, field: &str, message: impl Into<String>) {
        self.warned.push(ConfigError {
            file: self.file.to_path_buf(),
            line: self.lines.line_of(field),
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A collector for the fields under `base` (e.g. `upstreams.todo`).
    pub fn scope(&mut self, base: impl Into<String>) -> Scope<'_, 'a> {
        Scope {
            errors: self,
            base: base.into(),
        }
    }
}

/// Errors of one section: fields are named relative to it, so a rule says
/// `errors.push("open_ms", ..)` and the error names `upstreams.todo.breaker.open_ms`.
pub struct Scope<'e, 'a> {
    errors: &'e mut Errors<'a>,
    base: String,
}

impl<'a> Scope<'_, 'a> {
    /// Records `message` against `field` of this section (`peers[0]`, `open_ms`).
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        let path = join(&self.base, field);
        self.errors.push(&path, message);
    }

    /// Records a warning against `field` of this section.
    pub fn warn(&mut self, field: &str, message: impl Into<String>) {
        let path = join(&self.base, field);
        self.errors.warn(&path, message);
    }

    /// The section `sub` of this one.
    pub fn scope(&mut self, sub: &str) -> Scope<'_, 'a> {
        Scope {
            base: join(&self.base, sub),
            errors: self.errors,
        }
    }
}

/// `base` + `field` as a YAML path: `a.b`, `a[0]`.
fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else if field.starts_with('[') {
        format!("{base}{field}")
    } else {
        format!("{base}.{field}")
    }
}
