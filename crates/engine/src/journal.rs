//! The audit journal: with an embedded database, a record is acknowledged once it is appended to a local
//! file, and an indexer (on a thread of its own) copies it into the store behind the request path.
//!
//! Why: a commit into SQLite rewrites the last page of the audit table and of each of its indexes, and its
//! appends to the WAL wait whenever a checkpoint or the WAL's start-over syncs that file. Those waits, not the
//! CPU, were the tail of the request path from a few thousand decisions a second (BENCHMARKS.md, the ninth and
//! eleventh HTTP runs). An append to a file of our own waits for nothing of SQLite's.
//!
//! The journal keeps every promise the store did:
//! - **Durable before acknowledged.** A batch is written (`write`, which survives a crash of the process) and,
//!   with power-loss durability, flushed to disk (`fdatasync`) before any of its records is acknowledged.
//! - **Nothing lost.** At start, records the journal holds beyond the store's chain head are copied into the
//!   store before anything new is written. Text after the last newline is a write that never finished, so was
//!   never acknowledged, and is dropped; any other damage stops the start with the file named, for an operator.
//! - **Readers see what was acknowledged.** [`crate::AuditLog::settled`] waits until the indexer has stored
//!   every record acknowledged before the call; the audit search, export and verification paths call it.
//! - **One writer.** The journal directory is locked (`flock`) for the life of the writer, so a second
//!   process on the same data directory refuses to start instead of forking the chain.
//!
//! Files are segments named after their first seq (`<chain>.<seq>.journal`, 0600, in a 0700 directory), one
//! JSON line per record or checkpoint: exactly what the store holds (redacted text, sealed subject fields,
//! hashes). A segment is closed once it passes [`JournalOptions::segment_bytes`] and deleted once the indexer
//! has stored all of it (on a thread of its own at the lowest priority, [`JOURNAL_REMOVE_THREAD`]); at a clean
//! stop every segment is gone.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use store::{AuditRow, CheckpointRow, FileSyncer};

use crate::audit::record_hash;
use crate::spool::SpooledRow;

/// The name of the thread that syncs the open segment (without a sync per append).
pub const JOURNAL_SYNC_THREAD: &str = "audit-jsync";

/// The name of the thread that deletes segments once they are stored.
pub const JOURNAL_REMOVE_THREAD: &str = "audit-jremove";

/// A thread at the lowest priority that deletes the stored segments it is sent. Unlinking a full segment is
/// 3-4 ms of the kernel's CPU (dropping its cached pages); on tokio's blocking threads, at the ordinary
/// priority, that was a stall of the request worker's core every few seconds at 10,000 records a second
/// (BENCHMARKS.md, sixteenth run).
#[derive(Debug)]
struct Remover {
    sender: std::sync::mpsc::Sender<Vec<PathBuf>>,
    thread: std::thread::JoinHandle<()>,
}

impl Remover {
    fn start() -> std::io::Result<Remover> {
        let (sender, paths) = std::sync::mpsc::channel::<Vec<PathBuf>>();
        let thread = store::spawn_lowest(JOURNAL_REMOVE_THREAD, move || {
            while let Ok(paths) = paths.recv() {
                remove_segments(paths);
            }
        })?;
        Ok(Remover { sender, thread })
    }

    /// Deletes `paths` on the remover's thread, or here if that thread is gone.
    fn remove(&self, paths: Vec<PathBuf>) {
        if let Err(std::sync::mpsc::SendError(paths)) = self.sender.send(paths) {
            remove_segments(paths);
        }
    }

    /// Waits for the deletions sent so far.
    fn stop(self) {
        drop(self.sender);
        let _ = self.thread.join();
    }
}

/// Where and how the journal is kept.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// The directory of the segments (created 0700).
    pub dir: PathBuf,
    /// Flush every append to disk before acknowledging (power-loss durability). Otherwise an append survives a
    /// crash of the process, and a background thread syncs the open segment every 20 ms when it changed.
    pub sync: bool,
    /// Size after which a segment is closed and a new one started.
    pub segment_bytes: u64,
    /// How long the indexer waits for more records before it stores a few, unless a reader waits for them
    /// (see [`crate::AuditLog::settled`]).
    pub index_linger: std::time::Duration,
}

impl JournalOptions {
    pub fn new(dir: PathBuf, sync: bool) -> JournalOptions {
        JournalOptions { dir, sync, segment_bytes: 64 << 20, index_linger: INDEX_LINGER }
    }
}

/// The indexer's default linger. Each SQLite transaction rewrites the last, partly filled page of the audit
/// table and of each of its indexes: stored a few at a time, as they came at 8,000 pre-checks a second (7
/// records a transaction), every record cost 4.8 `pwrite` calls (two a WAL frame) and the indexer's thread
/// 20–26 µs of CPU, a sixth of the server's (BENCHMARKS.md, fourteenth run). Nothing waits on this timer:
/// records are acknowledged once journaled, an idle writer sends the indexer nothing, and readers hurry it.
pub const INDEX_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use the audit journal {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the audit journal {path} is in use by another process (one server per data directory)")]
    Locked { path: PathBuf },
    #[error(
        "the audit journal {path} is damaged at line {line}: it is kept for an operator to look at, and the \
         server does not start without it"
    )]
    Damaged { path: PathBuf, line: usize },
}

/// One line of a segment.
#[derive(serde::Serialize, serde::Deserialize)]
enum Line<'a> {
    #[serde(rename = "r")]
    Record(SpooledRow<'a>),
    #[serde(rename = "c")]
    Checkpoint(JournalCheckpoint),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct JournalCheckpoint {
    seq: i64,
    hash: String,
    ts: i64,
    public_key: String,
    signature: String,
}

/// An appended batch still to be flushed to disk (power-loss durability).
#[derive(Debug)]
pub(crate) struct Unsynced {
    file: File,
    path: PathBuf,
}

impl Unsynced {
    /// Flushes the batch to disk, on a blocking thread: a flush waits for the disk (20–60 ms here under
    /// load), which the runtime's worker must not.
    pub(crate) async fn sync(self) -> Result<(), JournalError> {
        let Unsynced { file, path } = self;
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        synced.map_err(|source| JournalError::Io { path, source })
    }
}

/// How a segment's file name ends (`<chain>.<first seq>.journal`).
const SEGMENT_SUFFIX: &str = ".journal";

/// How many segments the journal directory `dir` holds (none when it does not exist). Records in them may not
/// be in the store yet: a running server stores them a moment after it journals them, and a server that
/// stopped without a clean shutdown stores them at its next start.
pub fn segment_count(dir: &std::path::Path) -> std::io::Result<usize> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut count = 0;
            for entry in entries {
                if entry?.file_name().to_str().is_some_and(|name| name.ends_with(SEGMENT_SUFFIX)) {
                    count += 1;
                }
            }
            Ok(count)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error),
    }
}

/// What a journal holds at start: records (in seq order) and checkpoints not yet known to be stored.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub(crate) rows: Vec<AuditRow>,
    pub(crate) checkpoints: Vec<CheckpointRow>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    /// The last seq written to it (0 when none).
    last_seq: i64,
}

/// The open journal of one chain; owned by the audit writer.
#[derive(Debug)]
pub(crate) struct Journal {
    options: JournalOptions,
    prefix: String,
    chain_id: String,
    /// Held (locked) for as long as the journal is open.
    _lock: File,
    current: Option<Segment>,
    /// Closed segments, oldest first, with the last seq each holds.
    closed: VecDeque<(PathBuf, i64)>,
    /// Segments found at start, deleted once what they hold is stored.
    recovered: Vec<PathBuf>,
    /// A failed append could not be taken back out: no later append may follow it.
    broken: bool,
    /// Without a sync per append: the open segment, which a lowest-priority thread syncs every 20 ms when it
    /// changed (as the store does for SQLite's WAL), so a power cut usually loses at most that much.
    syncing: Option<(Arc<Mutex<Option<PathBuf>>>, FileSyncer)>,
    remover: Remover,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (locking) the journal of `chain_id` and reads what an earlier run left in it.
    pub(crate) fn open(
        options: JournalOptions,
        chain_id: &str,
    ) -> Result<(Journal, Recovered), JournalError> {
        let dir = options.dir.clone();
        let io = |source| JournalError::Io { path: dir.clone(), source };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(io)?;
        let prefix: String =
            chain_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let lock_path = dir.join(format!("{prefix}.lock"));
        let lock = private_file(&lock_path, false).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Locked { path: lock_path }),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(JournalError::Io { path: lock_path, source });
            }
        }
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let Some(name) = name.to_str() else { continue };
            let first = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|seq| seq.parse::<i64>().ok());
            if let Some(first) = first {
                segments.push((first, dir.join(name)));
            }
        }
        segments.sort();
        let mut recovered = Recovered::default();
        let count = segments.len();
        for (n, (_, path)) in segments.iter().enumerate() {
            read_segment(path, chain_id, n + 1 == count, &mut recovered)?;
        }
        let remover = Remover::start().map_err(io)?;
        let mut journal = Journal {
            options,
            prefix,
            chain_id: chain_id.to_owned(),
            _lock: lock,
            current: None,
            closed: VecDeque::new(),
            recovered: segments.into_iter().map(|(_, path)| path).collect(),
            broken: false,
            syncing: None,
            remover,
            buf: Vec::with_capacity(64 << 10),
        };
        if !journal.options.sync {
            let open: Arc<Mutex<Option<PathBuf>>> = Arc::default();
            let target = open.clone();
            let syncer =
                FileSyncer::start(JOURNAL_SYNC_THREAD, move || target.lock().ok()?.clone()).map_err(|e| {
                    JournalError::Io { path: dir.clone(), source: std::io::Error::other(e.to_string()) }
                })?;
            journal.syncing = Some((open, syncer));
        }
        Ok((journal, recovered))
    }

    /// The segments found at start are stored: they go.
    pub(crate) fn forget_recovered(&mut self) -> Result<(), JournalError> {
        for path in std::mem::take(&mut self.recovered) {
            std::fs::remove_file(&path).map_err(|source| JournalError::Io { path, source })?;
        }
        self.sync_dir()
    }

    /// Appends `rows` (chained, in seq order) and `checkpoint`, which then survive a crash of the process. With
    /// power-loss durability it returns the file to flush before they are acknowledged (see [`Unsynced::sync`]),
    /// so that the flush does not hold up the caller's thread. On an error nothing of the batch is left in the
    /// journal (or, if even that fails, the journal refuses every later append), so the batch may be refused
    /// and its seqs used again.
    pub(crate) fn append(
        &mut self,
        rows: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<Option<Unsynced>, JournalError> {
        let Some(last) = rows.last() else { return Ok(None) };
        if self.broken {
            return Err(JournalError::Io {
                path: self.options.dir.clone(),
                source: std::io::Error::other("an earlier failed append could not be taken back out"),
            });
        }
        self.buf.clear();
        for row in rows {
            crate::json::append(&mut self.buf, &Line::Record(SpooledRow::from(row)))
                .map_err(|e| JournalError::Io { path: self.options.dir.clone(), source: e.into() })?;
            self.buf.push(b'\n');
        }
        if let Some(checkpoint) = checkpoint {
            crate::json::append(&mut self.buf, &Line::Checkpoint(JournalCheckpoint::from(checkpoint)))
                .map_err(|e| JournalError::Io { path: self.options.dir.clone(), source: e.into() })?;
            self.buf.push(b'\n');
        }
        if self.current.is_none() {
            self.current = Some(self.create_segment(rows[0].seq)?);
        }
        let Some(segment) = self.current.as_mut() else { return Ok(None) };
        let written = segment
            .file
            .write_all(&self.buf)
            .and_then(|()| if self.options.sync { segment.file.try_clone().map(Some) } else { Ok(None) });
        let unsynced = match written {
            Ok(file) => file.map(|file| Unsynced { file, path: segment.path.clone() }),
            Err(source) => {
                // Take the partial batch back out; if that fails too, no later append may follow it.
                let path = segment.path.clone();
                self.broken = segment.file.set_len(segment.len).is_err();
                return Err(JournalError::Io { path, source });
            }
        };
        segment.len += self.buf.len() as u64;
        segment.last_seq = last.seq;
        if segment.len >= self.options.segment_bytes
            && let Some(full) = self.current.take()
        {
            self.closed.push_back((full.path, full.last_seq));
        }
        Ok(unsynced)
    }

    /// A flush of an appended batch failed: what it wrote may or may not be on disk, so nothing more is
    /// appended after it (the records are refused, and any that did reach the disk are stored at the next
    /// start, like those of a commit whose outcome was unknown).
    pub(crate) fn flush_failed(&mut self) {
        self.broken = true;
    }

    /// The indexer has stored every record up to `stored_seq`: segments holding nothing newer go. They are
    /// deleted on the [`Remover`]'s thread: unlinking a full segment took 25 ms on ext4, all of it holding up
    /// the runtime's worker when done in place.
    pub(crate) fn release(&mut self, stored_seq: i64) {
        let stored = self.take_stored(stored_seq);
        if !stored.is_empty() {
            self.remover.remove(stored);
        }
    }

    /// The closed segments (in seq order) holding nothing newer than `stored_seq`, taken off the list.
    fn take_stored(&mut self, stored_seq: i64) -> Vec<PathBuf> {
        let mut stored = Vec::new();
        while let Some((_, last)) = self.closed.front()
            && *last <= stored_seq
            && let Some((path, _)) = self.closed.pop_front()
        {
            stored.push(path);
        }
        stored
    }

    /// A clean stop: everything is stored, so every segment goes.
    pub(crate) fn close(mut self, stored_seq: i64) {
        if let Some((_, syncer)) = self.syncing.take() {
            syncer.stop();
        }
        if let Some(segment) = self.current.take() {
            self.closed.push_back((segment.path, segment.last_seq));
        }
        remove_segments(self.take_stored(stored_seq));
        if !self.closed.is_empty() {
            tracing::warn!(
                chain = %self.chain_id,
                "audit journal segments remain: their records are copied into the store at the next start"
            );
        }
        self.remover.stop();
    }

    fn create_segment(&mut self, first_seq: i64) -> Result<Segment, JournalError> {
        let path = self.options.dir.join(format!("{}.{first_seq:020}{SEGMENT_SUFFIX}", self.prefix));
        let file =
            private_file(&path, true).map_err(|source| JournalError::Io { path: path.clone(), source })?;
        if self.options.sync {
            self.sync_dir()?;
        }
        if let Some((open, _)) = &self.syncing
            && let Ok(mut open) = open.lock()
        {
            *open = Some(path.clone());
        }
        Ok(Segment { path, file, len: 0, last_seq: 0 })
    }

    fn sync_dir(&self) -> Result<(), JournalError> {
        #[cfg(unix)]
        File::open(&self.options.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| JournalError::Io { path: self.options.dir.clone(), source })?;
        Ok(())
    }
}

fn remove_segments(paths: Vec<PathBuf>) {
    for path in paths {
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::error!(error = %error, "cannot delete a stored audit journal segment");
        }
    }
}

fn private_file(path: &Path, new: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    if new {
        options.create_new(true).append(true);
    } else {
        options.create(true).truncate(false).write(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Reads one segment into `into`. Only the last segment may end in a write that never finished.
fn read_segment(path: &Path, chain_id: &str, last: bool, into: &mut Recovered) -> Result<(), JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io { path: path.to_owned(), source })?;
    let damaged = |line| JournalError::Damaged { path: path.to_owned(), line };
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) if end + 1 == bytes.len() || last => &bytes[..=end],
        None if bytes.is_empty() || last => &[][..],
        _ => return Err(damaged(bytes.split(|b| *b == b'\n').count())),
    };
    for (n, line) in complete.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line<'_>>(line) {
            Ok(Line::Record(row)) => {
                let row = row.into_row().ok_or(damaged(n + 1))?;
                let follows = into.rows.last().is_none_or(|prev| {
                    prev.seq + 1 == row.seq && prev.hash.as_slice() == row.prev_hash.as_slice()
                });
                if row.chain_id != chain_id || !follows || record_hash(&row).as_slice() != row.hash.as_slice()
                {
                    return Err(damaged(n + 1));
                }
                into.rows.push(row);
            }
            Ok(Line::Checkpoint(checkpoint)) => {
                into.checkpoints.push(checkpoint.into_row(chain_id).ok_or(damaged(n + 1))?);
            }
            Err(_) => return Err(damaged(n + 1)),
        }
    }
    Ok(())
}

impl From<&CheckpointRow> for JournalCheckpoint {
    fn from(row: &CheckpointRow) -> Self {
        use base64::Engine as _;
        JournalCheckpoint {
            seq: row.seq,
            hash: base64::engine::general_purpose::STANDARD.encode(&row.hash),
            ts: row.ts.0,
            public_key: row.public_key.clone(),
            signature: row.signature.clone(),
        }
    }
}

impl JournalCheckpoint {
    fn into_row(self, chain_id: &str) -> Option<CheckpointRow> {
        use base64::Engine as _;
        Some(CheckpointRow {
            chain_id: chain_id.to_owned(),
            seq: self.seq,
            hash: base64::engine::general_purpose::STANDARD.decode(&self.hash).ok()?,
            ts: types::UnixMillis(self.ts),
            public_key: self.public_key,
            signature: self.signature,
        })
    }
}
