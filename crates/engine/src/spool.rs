//! The audit spool (opt-in): when the audit store cannot take records, the writer appends them, already chained,
//! to a local file and flushes it to disk before it answers, so requests keep being served and nothing is lost.
//! The spool is replayed into the store, in order, as soon as the store answers again (at the next batch, every
//! second while idle, and at start), then emptied.
//!
//! The file holds one JSON record a line: exactly the rows the store would have held (redacted text, sealed
//! subject fields, hashes), never more. It is created 0600.

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use store::{AuditRow, Store, StoreErrorKind};
use types::UnixMillis;

/// A record as a line of the spool or of the audit journal: written from a borrowed row, read back owned.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SpooledRow<'a> {
    id: Cow<'a, str>,
    chain_id: Cow<'a, str>,
    seq: i64,
    ts: i64,
    tenant_id: Cow<'a, str>,
    actor: Cow<'a, str>,
    kind: Cow<'a, str>,
    verdict: Cow<'a, str>,
    body: Cow<'a, str>,
    prev_hash: String,
    hash: String,
}

impl<'a> From<&'a AuditRow> for SpooledRow<'a> {
    fn from(row: &'a AuditRow) -> Self {
        SpooledRow {
            id: Cow::Borrowed(&row.id),
            chain_id: Cow::Borrowed(&row.chain_id),
            seq: row.seq,
            ts: row.ts.0,
            tenant_id: Cow::Borrowed(&row.tenant_id),
            actor: Cow::Borrowed(&row.actor),
            kind: Cow::Borrowed(&row.kind),
            verdict: Cow::Borrowed(&row.verdict),
            body: Cow::Borrowed(&row.body),
            prev_hash: STANDARD.encode(&row.prev_hash),
            hash: STANDARD.encode(&row.hash),
        }
    }
}

impl SpooledRow<'_> {
    pub(crate) fn into_row(self) -> Option<AuditRow> {
        Some(AuditRow {
            prev_hash: STANDARD.decode(&self.prev_hash).ok()?,
            hash: STANDARD.decode(&self.hash).ok()?,
            id: self.id.into_owned(),
            chain_id: self.chain_id.into_owned(),
            seq: self.seq,
            ts: UnixMillis(self.ts),
            tenant_id: self.tenant_id.into_owned(),
            actor: self.actor.into_owned(),
            kind: self.kind.into_owned(),
            verdict: self.verdict.into_owned(),
            body: self.body.into_owned(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot write the audit spool {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the audit spool {path} is damaged at line {line}: it is kept for an operator to look at")]
    Damaged { path: PathBuf, line: usize },
    /// The store still cannot take the records.
    #[error("the audit store is still unavailable")]
    StoreUnavailable,
    /// The store holds another record where a spooled one belongs: someone else wrote this chain.
    #[error("the audit store already holds a different record {seq} of chain {chain}")]
    Diverged { chain: String, seq: i64 },
}

/// One chain's spool file.
#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
    /// Records in the file not yet replayed.
    pending: usize,
}

impl Spool {
    /// The spool of `chain_id` in `dir` (created 0700 if missing).
    pub(crate) fn open(dir: &Path, chain_id: &str) -> Result<Spool, SpoolError> {
        let io = |source| SpoolError::Io { path: dir.to_owned(), source };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
        let name: String =
            chain_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{name}.jsonl"));
        let mut spool = Spool { path, pending: 0 };
        spool.pending = spool.read()?.len();
        Ok(spool)
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Appends rows and flushes them to disk before returning.
    pub(crate) fn append(&mut self, rows: &[AuditRow]) -> Result<(), SpoolError> {
        let io = |source| SpoolError::Io { path: self.path.clone(), source };
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path).map_err(io)?;
        let mut text = String::new();
        for row in rows {
            let line = crate::json::to_string(&SpooledRow::from(row))
                .map_err(|e| SpoolError::Io { path: self.path.clone(), source: e.into() })?;
            text.push_str(&line);
            text.push('\n');
        }
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.pending += rows.len();
        Ok(())
    }

    fn read(&self) -> Result<Vec<AuditRow>, SpoolError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(SpoolError::Io { path: self.path.clone(), source }),
        };
        // Every append ends with a newline: text after the last one is a write that never finished, so was
        // never acknowledged, and is dropped.
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        let mut rows = Vec::new();
        for (n, line) in complete.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = serde_json::from_str::<SpooledRow>(line).ok().and_then(SpooledRow::into_row);
            match row {
                Some(row) => rows.push(row),
                None => return Err(SpoolError::Damaged { path: self.path.clone(), line: n + 1 }),
            }
        }
        Ok(rows)
    }

    /// Writes every spooled record to the store, in order, then empties the spool. Records the store already
    /// holds (a commit whose outcome was unknown) are skipped when they are the same record.
    pub(crate) async fn replay(&mut self, store: &dyn Store) -> Result<usize, SpoolError> {
        if self.pending == 0 {
            return Ok(0);
        }
        let rows = self.read()?;
        for chunk in rows.chunks(1000) {
            match store.append_audit(chunk, None).await {
                Ok(()) => {}
                Err(e) if e.kind() == StoreErrorKind::Conflict => {
                    for row in chunk {
                        self.replay_one(store, row).await?;
                    }
                }
                Err(_) => return Err(SpoolError::StoreUnavailable),
            }
        }
        let io = |source| SpoolError::Io { path: self.path.clone(), source };
        let file = OpenOptions::new().write(true).open(&self.path).map_err(io)?;
        file.set_len(0).map_err(io)?;
        file.sync_all().map_err(io)?;
        let replayed = rows.len();
        self.pending = 0;
        Ok(replayed)
    }

    async fn replay_one(&self, store: &dyn Store, row: &AuditRow) -> Result<(), SpoolError> {
        let present = store
            .audit_chain_page(&row.chain_id, row.seq - 1, 1)
            .await
            .map_err(|_| SpoolError::StoreUnavailable)?;
        match present.first() {
            Some(existing) if existing.seq == row.seq => {
                if existing.hash == row.hash {
                    Ok(())
                } else {
                    Err(SpoolError::Diverged { chain: row.chain_id.clone(), seq: row.seq })
                }
            }
            _ => store
                .append_audit(std::slice::from_ref(row), None)
                .await
                .map_err(|_| SpoolError::StoreUnavailable),
        }
    }
}
