//! Store errors: typed, and free of connection strings, credentials and row contents.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The database cannot be reached or did not answer in time: callers fail closed (503).
    Unavailable,
    /// A uniqueness rule was broken; nothing was written.
    Conflict,
    /// The configuration (URL, options) is unusable.
    Config,
    /// A migration failed or the schema is newer than this binary.
    Migration,
    /// Stored data did not have the expected shape.
    Corrupt,
}

/// An error from the store. `Display` gives a short, safe message; the underlying driver error is kept as the
/// `source` for operators' logs.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: &'static str,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, message: &'static str) -> StoreError {
        StoreError { kind, message, source: None }
    }

    pub(crate) fn with_source(
        kind: StoreErrorKind,
        message: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError { kind, message, source: Some(Box::new(source)) }
    }

    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Maps a driver error onto a kind. Connection-string parse errors are reported without the string.
pub(crate) fn from_sqlx(message: &'static str, error: sqlx::Error) -> StoreError {
    let kind = match &error {
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => StoreErrorKind::Config,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreErrorKind::Conflict,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
            StoreErrorKind::Corrupt
        }
        sqlx::Error::Migrate(_) => StoreErrorKind::Migration,
        _ => StoreErrorKind::Unavailable,
    };
    if kind == StoreErrorKind::Config {
        // Configuration errors can quote the URL, which may hold a password: keep no source.
        return StoreError::new(kind, message);
    }
    StoreError::with_source(kind, message, error)
}
