//! One detection: what, where (byte offsets into the scanned text, on char boundaries), how sure, and why.

use crate::kind::{Category, Kind, Validator};

/// A detection in a scanned text. `start..end` are byte offsets into the text given to `scan`, always on char
/// boundaries. A finding holds no copy of the matched text, so it is safe to log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// 0.0 to 1.0: how likely the span really is `kind`, after validators and context words.
    pub confidence: f32,
    /// The structural or checksum test that passed, if any.
    pub validator: Option<Validator>,
}

impl Finding {
    pub fn category(&self) -> Category {
        self.kind.category()
    }

    /// The matched text. `text` must be the text that was scanned.
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.start..self.end).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn new(
        kind: Kind,
        start: usize,
        end: usize,
        confidence: f32,
        validator: Option<Validator>,
    ) -> Finding {
        Finding { kind, start, end, confidence, validator }
    }
}
