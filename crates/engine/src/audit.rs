//! The audit trail: one record per decision, hash-chained per writer and signed at checkpoints.
//!
//! Each node appends to its own chain (`chain_id`), so many nodes can write at once and every chain verifies on
//! its own. A record's hash is SHA-256 over the previous record's hash and the record's fields, so changing,
//! removing, inserting or reordering a record breaks the chain from that point. The node signs its chain head
//! (Ed25519) with the first batch it writes and then at most once a second, in the same transaction as the
//! records, so rewriting the chain up to a checkpoint, or forging a whole chain, is detected too.
//!
//! Writes are group-committed: requests hand their record to one writer task, which takes everything waiting,
//! yields to the runtime so that the tasks ready to run can add theirs (again while they do, up to
//! [`GATHER_YIELDS`] times), and commits it all in one transaction; it never waits on a timer. (The yields cut
//! the bytes written per record from 23.5 to 13 KB at 5,000 records/s: each commit writes the last page of
//! five B-trees, whatever its size.) A record is durable before [`AuditLog::record`] returns, and if the store
//! cannot take it the caller gets an error and must fail closed.
//!
//! With a journal the writer does not yield: it appends what is queued when it runs. An append is one write
//! whatever its size, and each yield held every record of the batch back for a turn of all the tasks ready to
//! run: at 3,000 pre-checks a second, 2.5 times as many waited more than 6.4 ms (BENCHMARKS.md, seventeenth
//! run).
//!
//! With a journal ([`AuditOptions::journal`], the server on the embedded database) "durable" is the journal:
//! the writer appends each batch there and acknowledges it, and an indexer stores the batches in the store
//! behind it (see [`crate::journal`]); readers call [`AuditLog::settled`] first. On the embedded database the
//! indexer runs on a thread of its own ([`INDEXER_THREAD`]) at the lowest priority, so that neither its work
//! nor a lock it holds waits in front of a request.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use license::{PublicKey, SigningKey};
use sha2::{Digest, Sha256};
use store::{AuditRow, CheckpointRow, HorizonRow, Store};

use crate::journal::{Journal, JournalError, JournalOptions};
use crate::spool::{Spool, SpoolError};
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use types::{Clock, UnixMillis};

/// What happened, as the engine describes it. `details` is a JSON object without raw PII or secrets: the
/// engine puts only redacted text and counts in it.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub kind: &'static str,
    pub tenant: String,
    pub actor: String,
    pub verdict: String,
    pub details: Details,
}

/// A record's details: one JSON object, held as the text the record stores and hashes. Built from a typed,
/// borrowing struct on the decision path ([`Details::of`]), so a decision's record never becomes a tree of
/// `serde_json::Value`s first; other records convert from a `json!` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details(String);

impl Details {
    /// The details a value serializes to (with `crate::json`: serde_json's text). The value must serialize to a
    /// JSON object; serializing can only fail on a map with keys that are not strings, and then the record keeps
    /// an object saying so rather than being lost.
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Details {
        match crate::json::to_string(value) {
            Ok(text) => Details(text),
            Err(_) => {
                tracing::error!("an audit record's details could not be serialized");
                Details(r#"{"details_unserializable":true}"#.to_owned())
            }
        }
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for Details {
    fn from(value: serde_json::Value) -> Details {
        Details(value.to_string())
    }
}

/// Where a record landed: its id, position and hash (the `X-AI-Audit-Hash` a caller can keep).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReceipt {
    pub id: String,
    pub chain_id: String,
    pub seq: i64,
    pub hash: [u8; 32],
}

impl AuditReceipt {
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The record could not be made durable: the request must fail closed.
    #[error("the audit trail cannot accept records right now")]
    Unavailable,
    /// The writer has stopped (shutdown).
    #[error("the audit writer has stopped")]
    Closed,
}

/// Settings of the writer.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Most records committed in one transaction.
    pub max_batch: usize,
    /// Records waiting for the writer before `record` has to wait (back-pressure).
    pub queue: usize,
    /// Least time between two checkpoints.
    pub checkpoint_interval: Duration,
    /// Opt-in: a directory where records go (flushed to disk) while the store cannot take them, replayed when
    /// it can. `None` (the default): a record the store cannot take fails the request (fail closed).
    pub spool_dir: Option<std::path::PathBuf>,
    /// The audit journal (for an embedded database): records are acknowledged once journaled and stored by
    /// an indexer behind the request path. With both set, the spool is only replayed at start (one left by
    /// an earlier version) and takes nothing new. See [`crate::journal`].
    pub journal: Option<JournalOptions>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_batch: 1024,
            queue: 65_536,
            checkpoint_interval: Duration::from_secs(1),
            spool_dir: None,
            journal: None,
        }
    }
}

struct Pending {
    entry: AuditEntry,
    ts: UnixMillis,
    reply: oneshot::Sender<Result<AuditReceipt, AuditError>>,
}

/// The handle requests use to record; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    sender: mpsc::Sender<Pending>,
    clock: Arc<dyn Clock>,
    /// With a journal: how far records are acknowledged, and how far the indexer has stored them.
    settle: Option<Settle>,
}

#[derive(Clone, Debug)]
struct Settle {
    acknowledged: Arc<AtomicI64>,
    stored: watch::Receiver<i64>,
    /// Tells the indexer a reader waits: it stores what it has without lingering for more.
    hurry: Arc<Notify>,
}

/// Longest [`AuditLog::settled`] waits for the indexer before it gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("kind", &self.entry.kind).finish_non_exhaustive()
    }
}

/// The running writer. [`AuditWriter::finish`] stops it taking new records, commits those already handed over,
/// signs the final head and returns.
#[derive(Debug)]
pub struct AuditWriter {
    task: tokio::task::JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl AuditWriter {
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl AuditLog {
    /// Starts the writer for `chain_id`, continuing the chain where the store has it.
    pub async fn start(
        store: Arc<dyn Store>,
        chain_id: String,
        signer: SigningKey,
        clock: Arc<dyn Clock>,
        options: AuditOptions,
    ) -> Result<(AuditLog, AuditWriter), AuditStartError> {
        let mut spool = match &options.spool_dir {
            Some(dir) => Some(Spool::open(dir, &chain_id)?),
            None => None,
        };
        if let Some(spool) = &mut spool {
            let replayed = spool.replay(store.as_ref()).await?;
            if replayed > 0 {
                tracing::warn!(records = replayed, chain = %chain_id, "replayed spooled audit records into the store");
            }
        }
        let journal = match &options.journal {
            Some(journal_options) => Some((
                open_journal(store.as_ref(), journal_options, &chain_id).await?,
                journal_options.index_linger,
            )),
            None => None,
        };
        let head = store.audit_chain_head(&chain_id).await?;
        let (seq, hash) = match head {
            Some(head) => (head.seq, to_hash(&head.hash)),
            None => (0, [0; 32]),
        };
        let (journaling, settle) = match journal {
            Some((journal, linger)) => {
                // Requests wait for the journal only: the indexer's appends are background work.
                store.audit_appends_in_background().await;
                let (to_index, queue) = mpsc::unbounded_channel();
                let (stored_tx, stored) = watch::channel(seq);
                let hurry = Arc::new(Notify::new());
                let linger = Linger { time: linger, hurry: hurry.clone() };
                let indexer = Indexer::spawn(
                    store.backend(),
                    index(store.clone(), chain_id.clone(), queue, stored_tx, linger),
                )?;
                let backlog = Arc::new(Semaphore::new(INDEX_BACKLOG));
                let acknowledged = Arc::new(AtomicI64::new(seq));
                let settle = Settle { acknowledged: acknowledged.clone(), stored: stored.clone(), hurry };
                let journaling = Journaling {
                    journal,
                    to_index,
                    backlog,
                    stored,
                    acknowledged,
                    indexer,
                    hurry: settle.hurry.clone(),
                };
                (Some(journaling), Some(settle))
            }
            None => (None, None),
        };
        let (sender, receiver) = mpsc::channel(options.queue.max(1));
        let writer = Writer {
            store,
            chain_id,
            public_key: signer.public_key().to_base64(),
            signer,
            head_seq: seq,
            head_hash: hash,
            signed_seq: None,
            last_checkpoint: None,
            options,
            clock: clock.clone(),
            spool,
            journaling,
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(writer.run(receiver, stopped));
        Ok((AuditLog { sender, clock, settle }, AuditWriter { task, stop }))
    }

    /// Waits until every record acknowledged before the call can be read from the store (with a journal, the
    /// indexer stores them a moment after they are acknowledged; without one, at once). Readers of the trail
    /// call it first. An indexer that cannot store them within ten seconds is [`AuditError::Unavailable`].
    pub async fn settled(&self) -> Result<(), AuditError> {
        let Some(settle) = &self.settle else { return Ok(()) };
        let target = settle.acknowledged.load(Ordering::Acquire);
        let mut stored = settle.stored.clone();
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            if *stored.borrow_and_update() >= target {
                return Ok(());
            }
            // Again after each transaction that fell short: the indexer may have been hurried before the
            // writer handed it the records this reader waits for.
            settle.hurry.notify_one();
            match tokio::time::timeout_at(deadline, stored.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(AuditError::Closed),
                Err(_) => return Err(AuditError::Unavailable),
            }
        }
    }

    /// Makes `entry` durable and returns its receipt.
    pub async fn record(&self, entry: AuditEntry) -> Result<AuditReceipt, AuditError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { entry, ts: self.clock.now(), reply };
        self.sender.send(pending).await.map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }
}

struct Writer {
    store: Arc<dyn Store>,
    chain_id: String,
    signer: SigningKey,
    public_key: String,
    head_seq: i64,
    head_hash: [u8; 32],
    /// The seq of the last checkpoint this writer made, if any.
    signed_seq: Option<i64>,
    last_checkpoint: Option<UnixMillis>,
    options: AuditOptions,
    clock: Arc<dyn Clock>,
    spool: Option<Spool>,
    journaling: Option<Journaling>,
}

/// The journal, and the indexer that stores what it holds.
struct Journaling {
    journal: Journal,
    to_index: mpsc::UnboundedSender<Indexed>,
    /// One permit per record journaled and not yet stored.
    backlog: Arc<Semaphore>,
    stored: watch::Receiver<i64>,
    acknowledged: Arc<AtomicI64>,
    indexer: Indexer,
    /// The indexer's [`Linger::hurry`].
    hurry: Arc<Notify>,
}

/// The name of the thread the journal's indexer runs on (on the embedded database).
pub const INDEXER_THREAD: &str = "audit-indexer";

/// Where the indexer runs. On the embedded database, a thread of its own with a runtime of its own, at the
/// lowest priority (nice 19): on the request worker's runtime it spent ~2.5% of the server's CPU at 10,000
/// pre-checks a second, and it waited for its SQLite connection's thread (at nice 19) through a channel whose
/// lock that thread held, so the request worker blocked on that lock ~100 times a second, up to 4.5 ms at a
/// time, whenever the thread had been preempted holding it (BENCHMARKS.md, sixteenth run). SQLite's
/// connections run on threads of their own, so any runtime may use them. A PostgreSQL connection's socket
/// belongs to the reactor of the runtime that opened it: there the indexer is a task of the writer's runtime.
enum Indexer {
    Thread(store::BackgroundThread),
    Task(tokio::task::JoinHandle<()>),
}

impl Indexer {
    fn spawn(
        backend: store::Backend,
        indexing: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Indexer, store::StoreError> {
        if backend != store::Backend::Sqlite {
            return Ok(Indexer::Task(tokio::spawn(indexing)));
        }
        Ok(Indexer::Thread(store::on_background_thread(INDEXER_THREAD, indexing)?))
    }

    /// Whether the indexer has stopped (it stops early on a chain it cannot store).
    fn is_finished(&self) -> bool {
        match self {
            Indexer::Thread(thread) => thread.is_finished(),
            Indexer::Task(task) => task.is_finished(),
        }
    }

    /// Waits until the indexer has stored what it was given (and, on its own thread, its runtime is gone).
    async fn finish(self) {
        match self {
            Indexer::Thread(thread) => {
                thread.finished().await;
            }
            Indexer::Task(task) => {
                let _ = task.await;
            }
        }
    }
}

/// Records (and the checkpoint made with them) journaled and acknowledged, for the indexer to store.
struct Indexed {
    rows: Vec<AuditRow>,
    checkpoint: Option<CheckpointRow>,
    /// Released once the rows are stored.
    _backlog: Option<OwnedSemaphorePermit>,
}

/// Records journaled but not yet stored before the writer waits for the indexer (back-pressure). Counted in
/// records, not batches: under a light load batches are small, and the indexer stores many in one go.
const INDEX_BACKLOG: usize = 65_536;
/// Most batches the indexer stores in one transaction.
const INDEX_MERGE: usize = 1024;
/// Records the indexer stores without lingering for more ([`JournalOptions::index_linger`]).
const INDEX_ENOUGH: usize = 2048;

/// Why the audit writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditStartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "the audit journal of chain {chain} does not continue the store's chain (the store ends at record \
         {stored}, the journal holds {first}..{last}): it is kept for an operator to look at"
    )]
    JournalDiverged { chain: String, stored: i64, first: i64, last: i64 },
}

/// How many times in a row the writer yields to gather records before a commit into the store, while each yield
/// adds some. (A commit writes the last page of each of the audit table's B-trees, whatever its size.)
const GATHER_YIELDS: usize = 8;

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Pending>, mut stopped: oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(self.options.max_batch);
        loop {
            let spooling = self.spool.as_ref().is_some_and(|s| s.pending() > 0);
            let received = tokio::select! {
                received = receiver.recv_many(&mut batch, self.options.max_batch) => received,
                _ = &mut stopped, if !receiver.is_closed() => {
                    // No new records; those already queued are still committed below.
                    receiver.close();
                    continue;
                }
                () = tokio::time::sleep(Duration::from_secs(1)), if spooling => {
                    self.replay_spool().await;
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            // Let the tasks that are ready to run add their records first: one commit for all of them. Not a
            // timer: with nothing else ready a yield returns at once, and adds nothing, which ends the loop.
            // Not with a journal: there a commit is one append, the indexer merges batches for the store anyway,
            // and each yield held the whole batch back for a turn of every task ready to run.
            let gather = if self.journaling.is_some() { 0 } else { GATHER_YIELDS };
            for _ in 0..gather {
                let before = batch.len();
                if before >= self.options.max_batch {
                    break;
                }
                tokio::task::yield_now().await;
                while batch.len() < self.options.max_batch
                    && let Ok(pending) = receiver.try_recv()
                {
                    batch.push(pending);
                }
                if batch.len() == before {
                    break;
                }
            }
            // The batch's room is kept for the next one: grown anew each time, it was reallocated (and copied)
            // several times a batch, on fresh pages.
            self.commit(&mut batch).await;
            if self.journaling.is_none() {
                // (With a journal the indexer does this, between its own appends.)
                self.store.between_audit_appends().await;
            }
        }
        // Shutdown: sign the final head so the whole chain is covered.
        let last = (self.head_seq > 0 && self.signed_seq != Some(self.head_seq))
            .then(|| self.checkpoint(self.head_seq, self.head_hash, self.clock.now()));
        if let Some(Journaling { journal, to_index, stored, indexer, hurry, .. }) = self.journaling.take() {
            // The indexer stores what is left (and the final checkpoint after it), then the journal goes.
            if let Some(checkpoint) = last {
                let _ =
                    to_index.send(Indexed { rows: Vec::new(), checkpoint: Some(checkpoint), _backlog: None });
            }
            drop(to_index);
            hurry.notify_one();
            indexer.finish().await;
            let stored_seq = *stored.borrow();
            journal.close(stored_seq);
        } else if let Some(checkpoint) = last
            && let Err(error) = self.store.append_checkpoint(&checkpoint).await
        {
            tracing::error!(error = %error, "cannot write the final audit checkpoint");
        }
    }

    /// Tries to move spooled records into the store; true when the spool is empty afterwards.
    async fn replay_spool(&mut self) -> bool {
        let Some(spool) = &mut self.spool else { return true };
        match spool.replay(self.store.as_ref()).await {
            Ok(0) => true,
            Ok(replayed) => {
                tracing::warn!(records = replayed, "the audit store is back: spooled records replayed");
                true
            }
            Err(SpoolError::StoreUnavailable) => false,
            Err(error) => {
                tracing::error!(error = %error, "cannot replay the audit spool");
                false
            }
        }
    }

    /// The store cannot take `rows`: with a spool, they are made durable there instead.
    fn spool_rows(&mut self, rows: &[AuditRow]) -> bool {
        let Some(spool) = &mut self.spool else { return false };
        match spool.append(rows) {
            Ok(()) => {
                tracing::warn!(
                    records = rows.len(),
                    pending = spool.pending(),
                    "audit store unavailable: records spooled"
                );
                true
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot spool audit records");
                false
            }
        }
    }

    async fn commit(&mut self, batch: &mut Vec<Pending>) {
        if self.journaling.is_some() {
            return self.journal(batch).await;
        }
        let batch = std::mem::take(batch);
        if self.spool.as_ref().is_some_and(|s| s.pending() > 0) && !self.replay_spool().await {
            // Still down: keep the order by spooling behind what is already there.
            let (rows, seq, prev) = self.chain(&batch);
            if self.spool_rows(&rows) {
                self.acknowledge(batch, rows, seq, prev);
            } else {
                for pending in batch {
                    let _ = pending.reply.send(Err(AuditError::Unavailable));
                }
            }
            return;
        }
        let (mut rows, mut seq, mut prev) = self.chain(&batch);
        let now = self.clock.now();
        let due = self.checkpoint_due(now);
        let checkpoint = due.then(|| self.checkpoint(seq, prev, now));
        let mut outcome = self.store.append_audit(&rows, checkpoint.as_ref()).await;
        let mut attempts = 1;
        while attempts < 8 && outcome.as_ref().is_err_and(|e| e.kind() == store::StoreErrorKind::Conflict) {
            // Another writer appended to this chain (a command-line tool, a second process with the same node
            // id): continue after its records and try again.
            attempts += 1;
            if let Ok(head) = self.store.audit_chain_head(&self.chain_id).await {
                (self.head_seq, self.head_hash) = head.map_or((0, [0; 32]), |h| (h.seq, to_hash(&h.hash)));
                (rows, seq, prev) = self.chain(&batch);
                let checkpoint = due.then(|| self.checkpoint(seq, prev, now));
                outcome = self.store.append_audit(&rows, checkpoint.as_ref()).await;
            }
        }
        match outcome {
            Ok(()) => {
                if checkpoint.is_some() {
                    self.last_checkpoint = Some(now);
                    self.signed_seq = Some(seq);
                }
                self.acknowledge(batch, rows, seq, prev);
            }
            Err(error) if error.kind() != store::StoreErrorKind::Conflict && self.spool_rows(&rows) => {
                tracing::error!(error = %error, "audit records could not be written to the store");
                self.acknowledge(batch, rows, seq, prev);
            }
            Err(error) => {
                tracing::error!(error = %error, records = batch.len(), "audit records could not be written");
                for pending in batch {
                    let _ = pending.reply.send(Err(AuditError::Unavailable));
                }
                // The outcome of a failed commit can be unknown: continue from what the store has.
                if let Ok(head) = self.store.audit_chain_head(&self.chain_id).await {
                    (self.head_seq, self.head_hash) =
                        head.map_or((0, [0; 32]), |h| (h.seq, to_hash(&h.hash)));
                }
            }
        }
    }

    /// Journals the batch, acknowledges it and hands it to the indexer.
    async fn journal(&mut self, batch: &mut Vec<Pending>) {
        let mut replies = Vec::with_capacity(batch.len());
        let (rows, seq, prev) = self.chain_entries(batch.drain(..).map(|pending| {
            replies.push(pending.reply);
            (pending.entry, pending.ts)
        }));
        let now = self.clock.now();
        let checkpoint = self.checkpoint_due(now).then(|| self.checkpoint(seq, prev, now));
        let Some(journaling) = self.journaling.as_mut() else { return };
        let written = if journaling.indexer.is_finished() {
            // The indexer stopped on a chain it cannot store: nothing more is acknowledged.
            Err("the audit indexer has stopped".to_owned())
        } else {
            match journaling.journal.append(&rows, checkpoint.as_ref()) {
                Ok(None) => Ok(()),
                Ok(Some(unsynced)) => {
                    let synced = unsynced.sync().await.map_err(|e| e.to_string());
                    if synced.is_err() {
                        journaling.journal.flush_failed();
                    }
                    synced
                }
                Err(error) => Err(error.to_string()),
            }
        };
        if let Err(error) = written {
            tracing::error!(error = %error, records = replies.len(), "audit records could not be journaled");
            for reply in replies {
                let _ = reply.send(Err(AuditError::Unavailable));
            }
            return;
        }
        if checkpoint.is_some() {
            self.last_checkpoint = Some(now);
            self.signed_seq = Some(seq);
        }
        (self.head_seq, self.head_hash) = (seq, prev);
        journaling.acknowledged.store(seq, Ordering::Release);
        for (reply, row) in replies.into_iter().zip(&rows) {
            let _ = reply.send(Ok(receipt(row)));
        }
        // Waits when the indexer is far behind, which holds back the next batch (back-pressure).
        let count = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let backlog = journaling.backlog.clone().acquire_many_owned(count).await.ok();
        let _ = journaling.to_index.send(Indexed { rows, checkpoint, _backlog: backlog });
        let stored = *journaling.stored.borrow();
        journaling.journal.release(stored);
    }

    fn checkpoint_due(&self, now: UnixMillis) -> bool {
        match self.last_checkpoint {
            None => true,
            Some(at) => {
                now.0 - at.0 >= i64::try_from(self.options.checkpoint_interval.as_millis()).unwrap_or(0)
            }
        }
    }

    /// The records are durable: the head moves on and every request gets its receipt.
    fn acknowledge(&mut self, batch: Vec<Pending>, rows: Vec<AuditRow>, seq: i64, prev: [u8; 32]) {
        self.head_seq = seq;
        self.head_hash = prev;
        for (pending, row) in batch.into_iter().zip(&rows) {
            let _ = pending.reply.send(Ok(receipt(row)));
        }
    }

    /// The batch as rows chained onto the current head, with the new head's seq and hash. The entries are
    /// copied: a store that refuses the rows gets them chained again onto its head.
    fn chain(&self, batch: &[Pending]) -> (Vec<AuditRow>, i64, [u8; 32]) {
        self.chain_entries(batch.iter().map(|pending| (pending.entry.clone(), pending.ts)))
    }

    /// Entries, each with its time, as rows chained onto the current head; their text moves into the rows.
    fn chain_entries(
        &self,
        entries: impl ExactSizeIterator<Item = (AuditEntry, UnixMillis)>,
    ) -> (Vec<AuditRow>, i64, [u8; 32]) {
        let mut rows = Vec::with_capacity(entries.len());
        let (mut seq, mut prev) = (self.head_seq, self.head_hash);
        for (entry, ts) in entries {
            seq += 1;
            let row = build_row(&self.chain_id, seq, prev, ts, entry);
            prev = to_hash(&row.hash);
            rows.push(row);
        }
        (rows, seq, prev)
    }

    fn checkpoint(&self, seq: i64, hash: [u8; 32], ts: UnixMillis) -> CheckpointRow {
        let signature = self.signer.sign(&checkpoint_message(&self.chain_id, seq, &hash));
        CheckpointRow {
            chain_id: self.chain_id.clone(),
            seq,
            hash: hash.to_vec(),
            ts,
            public_key: self.public_key.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature),
        }
    }
}

fn receipt(row: &AuditRow) -> AuditReceipt {
    AuditReceipt {
        id: row.id.clone(),
        chain_id: row.chain_id.clone(),
        seq: row.seq,
        hash: to_hash(&row.hash),
    }
}

/// Opens the journal and copies into the store what an earlier run journaled but did not store.
async fn open_journal(
    store: &dyn Store,
    options: &JournalOptions,
    chain_id: &str,
) -> Result<Journal, AuditStartError> {
    let (mut journal, recovered) = Journal::open(options.clone(), chain_id)?;
    if let (Some(first), Some(last)) = (recovered.rows.first(), recovered.rows.last()) {
        let stored = store.audit_chain_head(chain_id).await?;
        let (stored_seq, stored_hash) = stored.map_or((0, Vec::new()), |head| (head.seq, head.hash));
        let diverged = || AuditStartError::JournalDiverged {
            chain: chain_id.to_owned(),
            stored: stored_seq,
            first: first.seq,
            last: last.seq,
        };
        // The journal must start right after the store's head, or the store must hold the journal's record at
        // the last place both have (a record's hash covers the whole chain before it, so one record is enough).
        let continues = if first.seq > stored_seq {
            first.seq == stored_seq + 1 && first.prev_hash == stored_hash
        } else {
            let both = last.seq.min(stored_seq);
            let theirs = if both == stored_seq {
                Some(stored_hash.clone())
            } else {
                let page = store.audit_chain_page(chain_id, both - 1, 1).await?;
                page.into_iter().find(|row| row.seq == both).map(|row| row.hash)
            };
            let ours = recovered.rows.iter().find(|row| row.seq == both).map(|row| &row.hash);
            theirs.is_some() && ours == theirs.as_ref()
        };
        if !continues {
            return Err(diverged());
        }
        let missing: Vec<AuditRow> = recovered.rows.into_iter().filter(|row| row.seq > stored_seq).collect();
        for chunk in missing.chunks(1000) {
            store.append_audit(chunk, None).await?;
        }
        for checkpoint in recovered.checkpoints.iter().filter(|c| c.seq > stored_seq) {
            store.append_checkpoint(checkpoint).await?;
        }
        if !missing.is_empty() {
            tracing::warn!(
                records = missing.len(),
                chain = %chain_id,
                "copied audit records journaled before a crash into the store"
            );
        }
    }
    journal.forget_recovered()?;
    Ok(journal)
}

/// The indexer: stores journaled batches in order, several to a transaction, and says how far it got. A
/// store that fails is retried (the records are safe in the journal) until the writer stops; a chain the
/// store already holds differently stops it, after which the writer acknowledges nothing more.
async fn index(
    store: Arc<dyn Store>,
    chain_id: String,
    mut queue: mpsc::UnboundedReceiver<Indexed>,
    stored: watch::Sender<i64>,
    linger: Linger,
) {
    let mut batches = Vec::with_capacity(INDEX_MERGE);
    while linger.next_transaction(&mut queue, &mut batches).await {
        let mut rows = Vec::new();
        let mut checkpoint = None;
        for batch in &mut batches {
            rows.append(&mut batch.rows);
            // A later checkpoint covers the chain an earlier one did: the newest is stored.
            checkpoint = batch.checkpoint.take().or(checkpoint);
        }
        let mut delay = Duration::from_millis(50);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match store.append_audit(&rows, checkpoint.as_ref()).await {
                Ok(()) => break,
                Err(error) if error.kind() == store::StoreErrorKind::Conflict => {
                    // A commit whose outcome was unknown may have landed: that is fine when it holds these
                    // very records.
                    if already_stored(store.as_ref(), &chain_id, &rows).await {
                        if let Some(checkpoint) = &checkpoint {
                            let _ = store.append_checkpoint(checkpoint).await;
                        }
                        break;
                    }
                    tracing::error!(
                        chain = %chain_id,
                        "the store holds other records where journaled ones belong: the audit indexer stops"
                    );
                    return;
                }
                Err(error) => {
                    tracing::error!(error = %error, records = rows.len(), "cannot store journaled audit records");
                    if queue.is_closed() && attempts >= 5 {
                        tracing::warn!(
                            "stopping with audit records left in the journal; the next start stores them"
                        );
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        store.between_audit_appends().await;
        if let Some(last) = rows.last() {
            stored.send_replace(last.seq);
        }
        batches.clear();
    }
}

/// How the indexer waits for more records before it stores some.
struct Linger {
    time: Duration,
    /// Notified by a reader waiting in [`AuditLog::settled`].
    hurry: Arc<Notify>,
}

impl Linger {
    /// Waits for the batches of the next transaction (one, then what [`Linger::gather`] adds within its bounds);
    /// false once the writer is gone and everything is taken. Not all that is queued: with up to
    /// [`INDEX_MERGE`] batches at once, a whole backlog (up to [`INDEX_BACKLOG`] records) went into one
    /// transaction, and a writer held back by the backlog waited for all of it to be stored, ~150 ms at
    /// saturation (BENCHMARKS.md, nineteenth run).
    async fn next_transaction(
        &self,
        queue: &mut mpsc::UnboundedReceiver<Indexed>,
        batches: &mut Vec<Indexed>,
    ) -> bool {
        let Some(batch) = queue.recv().await else { return false };
        batches.push(batch);
        self.gather(queue, batches).await;
        true
    }

    /// Waits up to `time` for more batches, unless it holds [`INDEX_ENOUGH`] records or [`INDEX_MERGE`] batches
    /// already or a reader hurries it (as the writer does when it stops), then takes what came meanwhile, within
    /// those bounds. It sleeps rather than waking for each batch that arrives: on a thread of its own, each such
    /// wake was a switch of threads on the request worker's core, a thousand times a second at 10,000 records.
    async fn gather(&self, queue: &mut mpsc::UnboundedReceiver<Indexed>, batches: &mut Vec<Indexed>) {
        let mut records: usize = batches.iter().map(|b| b.rows.len()).sum();
        if records < INDEX_ENOUGH && batches.len() < INDEX_MERGE {
            tokio::select! {
                biased;
                () = self.hurry.notified() => {}
                () = tokio::time::sleep(self.time) => {}
            }
        }
        while records < INDEX_ENOUGH
            && batches.len() < INDEX_MERGE
            && let Ok(batch) = queue.try_recv()
        {
            records += batch.rows.len();
            batches.push(batch);
        }
    }
}

/// Whether the store holds exactly `rows` at their places.
async fn already_stored(store: &dyn Store, chain_id: &str, rows: &[AuditRow]) -> bool {
    let Some(first) = rows.first() else { return true };
    let limit = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    match store.audit_chain_page(chain_id, first.seq - 1, limit).await {
        Ok(present) => {
            present.len() == rows.len()
                && present.iter().zip(rows).all(|(have, want)| have.seq == want.seq && have.hash == want.hash)
        }
        Err(_) => false,
    }
}

fn build_row(chain_id: &str, seq: i64, prev: [u8; 32], ts: UnixMillis, entry: AuditEntry) -> AuditRow {
    let mut row = AuditRow {
        id: uuid::Uuid::now_v7().to_string(),
        chain_id: chain_id.to_owned(),
        seq,
        ts,
        tenant_id: entry.tenant,
        actor: entry.actor,
        kind: entry.kind.to_owned(),
        verdict: entry.verdict,
        body: entry.details.0,
        prev_hash: prev.to_vec(),
        hash: Vec::new(),
    };
    row.hash = record_hash(&row).to_vec();
    row
}

/// The hash of a record: SHA-256 over a version tag, the previous hash and every field, each length-prefixed so
/// that no two different records encode alike.
pub fn record_hash(row: &AuditRow) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"axonflow/audit-record/v1\0");
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(&row.prev_hash);
    field(row.id.as_bytes());
    field(row.chain_id.as_bytes());
    field(&row.seq.to_be_bytes());
    field(&row.ts.0.to_be_bytes());
    field(row.tenant_id.as_bytes());
    field(row.actor.as_bytes());
    field(row.kind.as_bytes());
    field(row.verdict.as_bytes());
    field(row.body.as_bytes());
    hasher.finalize().into()
}

fn checkpoint_message(chain_id: &str, seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut message = b"axonflow/audit-checkpoint/v1\0".to_vec();
    message.extend_from_slice(&(chain_id.len() as u64).to_be_bytes());
    message.extend_from_slice(chain_id.as_bytes());
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(hash);
    message
}

/// A signed retention horizon: the chain's records up to `seq` (whose hash was `hash`) were deleted by
/// retention, and verification restarts after it.
pub fn sign_horizon(
    signer: &SigningKey,
    chain_id: &str,
    seq: i64,
    hash: &[u8],
    ts: UnixMillis,
) -> HorizonRow {
    let signature = signer.sign(&horizon_message(chain_id, seq, hash));
    HorizonRow {
        chain_id: chain_id.to_owned(),
        through_seq: seq,
        through_hash: hash.to_vec(),
        ts,
        public_key: signer.public_key().to_base64(),
        signature: URL_SAFE_NO_PAD.encode(signature),
    }
}

fn horizon_message(chain_id: &str, seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut message = checkpoint_message(chain_id, seq, hash);
    message
        .splice(0..b"axonflow/audit-checkpoint/v1\0".len(), b"axonflow/audit-horizon/v1\0".iter().copied());
    message
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hash = [0; 32];
    if bytes.len() == 32 {
        hash.copy_from_slice(bytes);
    }
    hash
}

/// A record as exports show it: every stored field, the body as JSON, hashes in hex. Exported records verify
/// against their hashes, so the body is exactly as stored (end users stay sealed).
pub fn export_json(row: &AuditRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "chain_id": row.chain_id,
        "seq": row.seq,
        "timestamp": row.ts.to_rfc3339(),
        "tenant_id": row.tenant_id,
        "actor": row.actor,
        "kind": row.kind,
        "verdict": row.verdict,
        "details": serde_json::from_str::<serde_json::Value>(&row.body).unwrap_or(serde_json::Value::Null),
        "prev_hash": hex::encode(&row.prev_hash),
        "hash": hex::encode(&row.hash),
    })
}

/// The header line of CSV exports.
pub const EXPORT_CSV_HEADER: &str =
    "id,chain_id,seq,timestamp,tenant_id,actor,kind,verdict,details,prev_hash,hash";

/// A record as one CSV line (RFC 4180 quoting), in the columns of [`EXPORT_CSV_HEADER`].
pub fn export_csv(row: &AuditRow) -> String {
    let fields = [
        row.id.clone(),
        row.chain_id.clone(),
        row.seq.to_string(),
        row.ts.to_rfc3339(),
        row.tenant_id.clone(),
        row.actor.clone(),
        row.kind.clone(),
        row.verdict.clone(),
        row.body.clone(),
        hex::encode(&row.prev_hash),
        hex::encode(&row.hash),
    ];
    let quoted: Vec<String> = fields
        .iter()
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.clone()
            }
        })
        .collect();
    quoted.join(",")
}

/// What is wrong with a chain, at the first record where it goes wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainProblem {
    /// The record's content no longer matches its hash.
    Modified { seq: i64, id: String },
    /// Records are missing before this one (`expected` was the next seq).
    Deleted { expected: i64, found: i64 },
    /// The record is intact but out of place (renumbered, or not following its predecessor): records were
    /// inserted or reordered here.
    InsertedOrReordered { seq: i64, id: String },
    /// The chain ends before a signed checkpoint: records at its end were deleted.
    Truncated { last_seq: i64, checkpoint_seq: i64 },
    /// A checkpoint's hash differs from the record it names: the chain was rewritten up to there.
    CheckpointMismatch { seq: i64 },
    /// A checkpoint whose signature does not verify, or by a key that is not trusted.
    BadCheckpoint { seq: i64 },
    /// No checkpoint by a trusted key: the chain was not written by a trusted node.
    Unsigned,
    /// The retention horizon (where the chain restarts after old records were deleted) is not signed by a
    /// trusted key: records were deleted and the deletion disguised.
    BadHorizon { seq: i64 },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Modified { seq, id } => write!(f, "record {seq} (id {id}) was modified"),
            ChainProblem::Deleted { expected, found } => {
                write!(f, "records {expected}..{} were deleted (next present is {found})", found - 1)
            }
            ChainProblem::InsertedOrReordered { seq, id } => {
                write!(f, "record {seq} (id {id}) is out of place: records were inserted or reordered here")
            }
            ChainProblem::Truncated { last_seq, checkpoint_seq } => write!(
                f,
                "records after {last_seq} were deleted: a signed checkpoint covers the chain up to {checkpoint_seq}"
            ),
            ChainProblem::CheckpointMismatch { seq } => {
                write!(f, "record {seq} differs from its signed checkpoint: the chain was rewritten")
            }
            ChainProblem::BadCheckpoint { seq } => {
                write!(f, "the checkpoint at record {seq} is not signed by a trusted key")
            }
            ChainProblem::Unsigned => {
                f.write_str("no checkpoint signed by a trusted key: the chain is not trusted")
            }
            ChainProblem::BadHorizon { seq } => write!(
                f,
                "records up to {seq} are gone and the retention horizon claiming it is not signed by a trusted key"
            ),
        }
    }
}

/// The verification of one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub chain_id: String,
    pub records: u64,
    pub checkpoints: u64,
    /// Records after the last checkpoint: intact, but not yet covered by a signature.
    pub unsigned_tail: u64,
    /// The last record deleted by retention (0 when none was).
    pub retained_after: i64,
    pub problem: Option<ChainProblem>,
}

/// Verifies every chain in the store against the trusted checkpoint keys. `progress` is called with the number
/// of records checked so far.
pub async fn verify(
    store: &dyn Store,
    trusted: &[PublicKey],
    mut progress: impl FnMut(u64),
) -> Result<Vec<ChainReport>, store::StoreError> {
    let mut reports = Vec::new();
    let mut checked = 0;
    for chain_id in store.audit_chains().await? {
        let checkpoints = store.audit_checkpoints(&chain_id).await?;
        let mut report = ChainReport {
            chain_id: chain_id.clone(),
            records: 0,
            checkpoints: checkpoints.len() as u64,
            unsigned_tail: 0,
            retained_after: 0,
            problem: None,
        };
        let horizon = store.audit_horizon(&chain_id).await?;
        let mut trusted_checkpoints = Vec::new();
        for checkpoint in &checkpoints {
            if checkpoint_is_trusted(checkpoint, trusted) {
                trusted_checkpoints.push((checkpoint.seq, to_hash(&checkpoint.hash)));
            } else if report.problem.is_none() {
                report.problem = Some(ChainProblem::BadCheckpoint { seq: checkpoint.seq });
            }
        }
        let (mut expected, mut prev) = (1_i64, [0_u8; 32]);
        let mut last_signed = 0;
        if let Some(horizon) = &horizon {
            if horizon_is_trusted(horizon, trusted) {
                (expected, prev) = (horizon.through_seq + 1, to_hash(&horizon.through_hash));
                (report.retained_after, last_signed) = (horizon.through_seq, horizon.through_seq);
                trusted_checkpoints.retain(|(seq, _)| *seq > horizon.through_seq);
            } else if report.problem.is_none() {
                report.problem = Some(ChainProblem::BadHorizon { seq: horizon.through_seq });
            }
        }
        let mut next_checkpoint = trusted_checkpoints.iter().peekable();
        'pages: while report.problem.is_none() {
            let page = store.audit_chain_page(&chain_id, expected - 1, 1000).await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                checked += 1;
                report.records += 1;
                let hash = record_hash(&row);
                let problem = if hash.as_slice() != row.hash.as_slice() {
                    if was_moved(&row) {
                        Some(ChainProblem::InsertedOrReordered { seq: row.seq, id: row.id })
                    } else {
                        Some(ChainProblem::Modified { seq: row.seq, id: row.id })
                    }
                } else if row.seq != expected {
                    Some(ChainProblem::Deleted { expected, found: row.seq })
                } else if row.prev_hash.as_slice() != prev.as_slice() {
                    Some(ChainProblem::InsertedOrReordered { seq: row.seq, id: row.id })
                } else {
                    None
                };
                if problem.is_some() {
                    report.problem = problem;
                    break 'pages;
                }
                while let Some((seq, signed)) = next_checkpoint.peek() {
                    if *seq > row.seq {
                        break;
                    }
                    if *seq == row.seq && *signed != hash {
                        report.problem = Some(ChainProblem::CheckpointMismatch { seq: row.seq });
                        break 'pages;
                    }
                    last_signed = *seq;
                    next_checkpoint.next();
                }
                prev = hash;
                expected = row.seq + 1;
            }
            progress(checked);
        }
        if report.problem.is_none() {
            if let Some((seq, _)) = next_checkpoint.next() {
                report.problem =
                    Some(ChainProblem::Truncated { last_seq: expected - 1, checkpoint_seq: *seq });
            } else if trusted_checkpoints.is_empty() && horizon.is_none() {
                report.problem = Some(ChainProblem::Unsigned);
            }
        }
        report.unsigned_tail = u64::try_from((expected - 1 - last_signed).max(0)).unwrap_or(0);
        reports.push(report);
    }
    Ok(reports)
}

/// Whether the record is intact but carries another position than the one it was written at.
fn was_moved(row: &AuditRow) -> bool {
    (1..=64).flat_map(|d| [row.seq - d, row.seq + d]).any(|seq| {
        let moved = AuditRow { seq, ..row.clone() };
        record_hash(&moved).as_slice() == row.hash.as_slice()
    })
}

fn checkpoint_is_trusted(checkpoint: &CheckpointRow, trusted: &[PublicKey]) -> bool {
    let message = checkpoint_message(&checkpoint.chain_id, checkpoint.seq, &checkpoint.hash);
    signed_by_trusted(&message, &checkpoint.public_key, &checkpoint.signature, trusted)
}

fn horizon_is_trusted(horizon: &HorizonRow, trusted: &[PublicKey]) -> bool {
    let message = horizon_message(&horizon.chain_id, horizon.through_seq, &horizon.through_hash);
    signed_by_trusted(&message, &horizon.public_key, &horizon.signature, trusted)
}

fn signed_by_trusted(message: &[u8], public_key: &str, signature: &str, trusted: &[PublicKey]) -> bool {
    let Some(key) = trusted.iter().find(|k| k.to_base64() == public_key) else { return false };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return false };
    let Ok(signature) = <[u8; 64]>::try_from(signature.as_slice()) else { return false };
    key.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first_seq: i64, records: usize) -> Indexed {
        let row = |seq| AuditRow {
            id: format!("r{seq}"),
            chain_id: "node-1".to_owned(),
            seq,
            ts: UnixMillis(0),
            tenant_id: "default".to_owned(),
            actor: "test".to_owned(),
            kind: "decide".to_owned(),
            verdict: "allow".to_owned(),
            body: "{}".to_owned(),
            prev_hash: vec![0; 32],
            hash: vec![0; 32],
        };
        Indexed {
            rows: (first_seq..first_seq + records as i64).map(row).collect(),
            checkpoint: None,
            _backlog: None,
        }
    }

    #[tokio::test]
    async fn a_full_backlog_is_stored_in_transactions_of_a_bounded_size() {
        let (sender, mut queue) = mpsc::unbounded_channel();
        // A whole backlog waiting, as when the writer is held back: 1,024 batches of 64 records.
        let per_batch = 64;
        for n in 0..INDEX_BACKLOG / per_batch {
            sender.send(batch((n * per_batch) as i64 + 1, per_batch)).expect("queued");
        }
        drop(sender);
        let linger = Linger { time: Duration::ZERO, hurry: Arc::new(Notify::new()) };
        let mut batches = Vec::new();
        let (mut transactions, mut stored, mut next_seq) = (0, 0, 1);
        while linger.next_transaction(&mut queue, &mut batches).await {
            let records: usize = batches.iter().map(|b| b.rows.len()).sum();
            assert!(
                records <= INDEX_ENOUGH + per_batch,
                "transaction {transactions} holds {records} records"
            );
            for row in batches.iter().flat_map(|b| &b.rows) {
                assert_eq!(row.seq, next_seq, "in order, none lost or repeated");
                next_seq += 1;
            }
            stored += records;
            transactions += 1;
            batches.clear();
        }
        assert_eq!(stored, INDEX_BACKLOG, "everything queued is taken");
        assert!(transactions >= INDEX_BACKLOG / (INDEX_ENOUGH + per_batch), "{transactions} transactions");
    }
}
