//! Native detectors for AxonFlow: personal data with checksum validators, SQL injection, prompt injection and
//! secrets, and redaction of what they find.
//!
//! The caller builds one [`DetectorSet`] from a [`DetectorConfig`] and shares it (it is `Send + Sync`); this
//! crate keeps no global state, does no I/O and knows nothing about HTTP or serialisation.
//!
//! ```
//! use detect::{DetectorConfig, DetectorSet, Kind};
//!
//! let detectors = DetectorSet::new(DetectorConfig::default()).unwrap();
//! let findings = detectors.scan("Get data for SSN 123-45-6789");
//! assert_eq!(findings[0].kind, Kind::Ssn);
//! assert_eq!(detectors.redact("Get data for SSN 123-45-6789", &findings), "Get data for SSN ***-**-****");
//! ```
//!
//! Scanning is a cheap gate first (are there digits or `@`? does a DFA pass over trigger words find SQL,
//! injection or credential vocabulary?), then one multi-pattern regex per triggered family: the SQL-injection
//! regex anchored at each position where a match can start (the keywords and punctuation its shapes begin
//! with), the prompt-injection regex in windows around its trigger words; then validators and context words on
//! the few candidates.
//!
//! Code map: `kind` (the stable names), `finding`, `triggers` (the gate, its anchors and windows), `table` (the
//! gate's automaton as a dense case-folding table), `regions` (where digits are), `pii` + `context` +
//! `validate` (shapes, context words, checksums), `sqli`, `injection` (normalisation, encoded payloads,
//! invisible characters), `secrets`, `redact`, `ascii` (pattern rewriting).
//!
//! **Architecture Invariant:** no serde, no I/O, no global or lazily initialised state: everything compiled
//! lives in a `DetectorSet` the caller owns.
//!
//! **Architecture Invariant:** scanning never panics and every span is on char boundaries of the scanned text,
//! whatever the input (property tests in `tests/it/properties.rs`); a `Finding` holds offsets, never a copy of
//! the text, so findings can be logged without leaking what they point at.

mod ascii;
mod context;
mod finding;
mod injection;
mod kind;
mod pii;
mod redact;
mod regions;
mod secrets;
mod sqli;
mod table;
mod triggers;
mod validate;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use types::Secret;

pub use finding::Finding;
pub use kind::{Category, Kind, UnknownKind, Validator};
pub use redact::Redaction;

/// Which categories of detector run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Categories {
    pub pii: bool,
    pub sqli: bool,
    pub prompt_injection: bool,
    pub secret: bool,
}

impl Categories {
    pub fn all() -> Categories {
        Categories { pii: true, sqli: true, prompt_injection: true, secret: true }
    }

    pub fn contains(self, category: Category) -> bool {
        match category {
            Category::Pii => self.pii,
            Category::Sqli => self.sqli,
            Category::PromptInjection => self.prompt_injection,
            Category::Secret => self.secret,
        }
    }
}

impl Default for Categories {
    fn default() -> Categories {
        Categories::all()
    }
}

/// What to detect and how to redact it.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Findings below this confidence (0.0 to 1.0) are not reported. Default 0.5: a valid SSN shape next to
    /// "order number" scores 0.3 and is dropped; next to "SSN:" it scores 0.95.
    pub threshold: f32,
    /// Which categories run. Default: all.
    pub categories: Categories,
    /// Per-kind redaction, overriding [`Redaction::default_for`].
    pub redaction: BTreeMap<Kind, Redaction>,
    /// Key for [`Redaction::KeyedHash`] pseudonyms, at least 16 bytes. Required when any kind uses it.
    pub pseudonym_key: Option<Secret<Vec<u8>>>,
}

impl Default for DetectorConfig {
    fn default() -> DetectorConfig {
        DetectorConfig {
            threshold: 0.5,
            categories: Categories::all(),
            redaction: BTreeMap::new(),
            pseudonym_key: None,
        }
    }
}

impl DetectorConfig {
    /// This config with `kind` redacted by `redaction`.
    pub fn with_redaction(mut self, kind: Kind, redaction: Redaction) -> DetectorConfig {
        self.redaction.insert(kind, redaction);
        self
    }
}

/// Why a detector set could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("confidence threshold must be between 0 and 1")]
    InvalidThreshold,
    #[error("{0} is redacted with a keyed hash but no pseudonym key is configured")]
    MissingPseudonymKey(Kind),
    #[error("pseudonym key must be at least {MIN_KEY_LEN} bytes, got {0}")]
    PseudonymKeyTooShort(usize),
    #[error("built-in pattern failed to compile: {0}")]
    Pattern(String),
}

const MIN_KEY_LEN: usize = 16;

/// All detectors, compiled once. Build it at start-up and share it across threads.
pub struct DetectorSet {
    threshold: f32,
    categories: Categories,
    redaction: [Redaction; Kind::COUNT],
    pseudonym_key: Option<Secret<Vec<u8>>>,
    triggers: triggers::Triggers,
    words: context::ContextWords,
    pii: pii::PiiDetector,
    sqli: sqli::SqliDetector,
    injection: injection::InjectionDetector,
    secrets: secrets::SecretDetector,
}

impl fmt::Debug for DetectorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectorSet")
            .field("threshold", &self.threshold)
            .field("categories", &self.categories)
            .field("pseudonym_key", &self.pseudonym_key)
            .finish_non_exhaustive()
    }
}

impl DetectorSet {
    pub fn new(config: DetectorConfig) -> Result<DetectorSet, Error> {
        if !(0.0..=1.0).contains(&config.threshold) {
            return Err(Error::InvalidThreshold);
        }
        let mut redaction = [Redaction::Keep; Kind::COUNT];
        for &kind in Kind::all() {
            redaction[kind.index()] =
                config.redaction.get(&kind).copied().unwrap_or(Redaction::default_for(kind));
        }
        if let Some(&kind) = Kind::all().iter().find(|k| redaction[k.index()] == Redaction::KeyedHash) {
            match &config.pseudonym_key {
                None => return Err(Error::MissingPseudonymKey(kind)),
                Some(key) if key.expose().len() < MIN_KEY_LEN => {
                    return Err(Error::PseudonymKeyTooShort(key.expose().len()));
                }
                Some(_) => {}
            }
        }
        let pattern = |e: &dyn fmt::Display| Error::Pattern(e.to_string());
        Ok(DetectorSet {
            threshold: config.threshold,
            categories: config.categories,
            redaction,
            pseudonym_key: config.pseudonym_key,
            triggers: triggers::Triggers::new().map_err(|e| pattern(&e))?,
            words: context::ContextWords::new().map_err(|e| pattern(&e))?,
            pii: pii::PiiDetector::new().map_err(|e| pattern(&e))?,
            sqli: sqli::SqliDetector::new().map_err(|e| pattern(&e))?,
            injection: injection::InjectionDetector::new().map_err(|e| pattern(&e))?,
            secrets: secrets::SecretDetector::new().map_err(|e| pattern(&e))?,
        })
    }

    /// Findings at or above the threshold, sorted by start (then longest first, then kind).
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        self.scan_into(text, &mut out);
        out
    }

    /// As [`DetectorSet::scan`], into a buffer the caller reuses (it is cleared first).
    ///
    /// Overlaps are resolved within a category: personal data and secrets keep one finding per span (higher
    /// confidence, then longer, then the kind declared first); SQL and prompt injection keep overlapping
    /// findings of different kinds ("; DROP TABLE" is both stacked and dangerous) and merge same-kind ones.
    /// Findings of different categories may overlap (an email inside a password assignment).
    pub fn scan_into(&self, text: &str, out: &mut Vec<Finding>) {
        out.clear();
        let cats = self.categories;
        let fired = if cats.sqli || cats.prompt_injection || cats.secret {
            self.triggers.scan(text)
        } else {
            triggers::Fired::default()
        };
        if cats.pii {
            self.pii.scan(text, &self.words, out);
        }
        if cats.secret && fired.secret {
            self.secrets.scan(text, out);
        }
        if cats.sqli && !fired.sqli.is_empty() {
            self.sqli.scan_at(text, &fired.sqli, out);
        }
        if cats.prompt_injection {
            self.injection.scan(text, &fired.injection, &self.sqli, out);
        }
        let threshold = self.threshold;
        out.retain(|f| f.confidence >= threshold);
        resolve_overlaps(out);
    }

    /// The strategy this set uses for `kind`.
    pub fn redaction(&self, kind: Kind) -> Redaction {
        self.redaction[kind.index()]
    }

    /// `text` with the spans of `findings` replaced per kind's strategy; borrowed when nothing changes.
    /// `findings` should come from scanning this same `text`; spans that do not fit it are ignored.
    pub fn redact<'t>(&self, text: &'t str, findings: &[Finding]) -> Cow<'t, str> {
        let key = self.pseudonym_key.as_ref().map(|k| k.expose().as_slice());
        redact::redact(text, findings, |kind| self.redaction(kind), key)
    }

    /// Scan, then redact what was found.
    pub fn scan_and_redact<'t>(&self, text: &'t str) -> (Vec<Finding>, Cow<'t, str>) {
        let findings = self.scan(text);
        let redacted = self.redact(text, &findings);
        (findings, redacted)
    }
}

fn resolve_overlaps(out: &mut Vec<Finding>) {
    out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)).then(a.kind.cmp(&b.kind)));
    // Compact in place: `out[..kept]` are the findings kept so far. Findings arrive by start, so a new one can
    // only overlap the last kept finding of its category (personal data, secrets: those never overlap each
    // other) or of its kind (SQL and prompt injection): one comparison each, linear overall.
    let mut kept = 0;
    let mut replaced = false;
    let mut last_of_category: [Option<usize>; 4] = [None; 4];
    let mut last_of_kind: [Option<usize>; Kind::COUNT] = [None; Kind::COUNT];
    for i in 0..out.len() {
        let f = out[i];
        let category = f.category() as usize;
        match f.category() {
            Category::Pii | Category::Secret => {
                if let Some(k) = last_of_category[category].filter(|&k| out[k].end > f.start) {
                    let current = out[k];
                    let f_wins = f.confidence > current.confidence
                        || f.confidence == current.confidence && f.len() > current.len();
                    if f_wins {
                        out[k] = f;
                        replaced = true;
                    }
                    continue;
                }
                last_of_category[category] = Some(kept);
            }
            Category::Sqli | Category::PromptInjection => {
                if let Some(k) = last_of_kind[f.kind.index()].filter(|&k| out[k].end > f.start) {
                    out[k].end = out[k].end.max(f.end);
                    out[k].confidence = out[k].confidence.max(f.confidence);
                    continue;
                }
                last_of_kind[f.kind.index()] = Some(kept);
            }
        }
        out[kept] = f;
        kept += 1;
    }
    out.truncate(kept);
    // A replaced finding may start later than its neighbours: restore the order.
    if replaced {
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)).then(a.kind.cmp(&b.kind)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_set_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DetectorSet>();
    }

    #[test]
    fn config_is_validated() {
        let err = |config: DetectorConfig| DetectorSet::new(config).unwrap_err().to_string();
        assert_eq!(
            err(DetectorConfig { threshold: 1.5, ..DetectorConfig::default() }),
            "confidence threshold must be between 0 and 1"
        );
        assert_eq!(
            err(DetectorConfig::default().with_redaction(Kind::Ssn, Redaction::KeyedHash)),
            "ssn is redacted with a keyed hash but no pseudonym key is configured"
        );
        let short = DetectorConfig {
            pseudonym_key: Some(Secret::new(b"short".to_vec())),
            ..DetectorConfig::default().with_redaction(Kind::Email, Redaction::KeyedHash)
        };
        assert_eq!(err(short), "pseudonym key must be at least 16 bytes, got 5");
    }

    #[test]
    fn debug_hides_the_key() {
        let set = DetectorSet::new(DetectorConfig {
            pseudonym_key: Some(Secret::new(b"super-secret-key-material".to_vec())),
            ..DetectorConfig::default()
        })
        .unwrap();
        assert!(!format!("{set:?}").contains("super-secret"));
    }
}
