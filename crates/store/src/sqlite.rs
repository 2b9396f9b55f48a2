//! The embedded SQLite backend: one file in the data directory, WAL journal, migrations applied at open.
//!
//! Checkpoints (moving the WAL into the database file, and syncing it) run on a connection of their own every
//! [`CHECKPOINT_EVERY`], never on a writing connection: SQLite's automatic checkpoint runs inside the commit
//! that crosses its threshold, so one audit insert in a few thousand waited tens of milliseconds for it, and
//! every request waiting for that insert with it.
//!
//! A passive checkpoint never waits for writers, so under a steady stream of commits it never catches up with
//! the end of the WAL, and SQLite only starts the WAL over once a checkpoint has: the file grew without bound
//! (1.3 GB after 54,000 audit records in a benchmark, with every read slower for it). So when a passive
//! checkpoint leaves more than `OpenOptions::wal_restart_bytes` in the WAL, the audit writer's own connection
//! runs one more passive checkpoint between two of its appends ([`AuditStore::between_audit_appends`]): with
//! no commit running meanwhile it copies the frames written since and completes, and the next commit starts
//! the WAL from the beginning. (SQLite's `RESTART` checkpoint would do the same from the checkpointing
//! connection, but it holds writers back through the busy handler, which sleeps in steps of 5 to 25 ms: each
//! restart stalled the audit trail for about 30 ms in a benchmark.)
//!
//! With process-crash durability (`synchronous=NORMAL`) a commit only writes the WAL into the page cache, and
//! the next sync of the file (a checkpoint's, or the writer's start-over) had to write out everything since
//! the last one while appends waited for it. A low-priority thread ([`FileSyncer`]) syncs the WAL every
//! [`WAL_SYNC_EVERY`] when it has changed, so those syncs find little to write (pre-check p99 at 2,000
//! requests/s on a fresh server: 4.9–6.4 ms without it, 1.8–1.9 ms with it; BENCHMARKS.md), and a power loss
//! usually costs at most the last few tens of milliseconds of records rather than everything since the last
//! checkpoint. (Not a guarantee: on a saturated core the thread runs late. `power-loss` durability syncs
//! every commit.)
//!
//! Background threads run at the lowest priority (nice 19): the checkpointing connection's and the one whose
//! runtime runs the checkpointing loop ([`on_background_thread`]), the WAL syncer and, once the audit
//! journal's indexer says its appends are background work ([`AuditStore::audit_appends_in_background`]), the
//! appending connection's. (At nice 0 the indexer's connection took turns with the request worker, in slices
//! of about 10 ms on the server's core while requests waited; BENCHMARKS.md, fifteenth run.) On a saturated
//! core they get a small share; the journal's bounded backlog then holds the writer back until they catch up.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::oneshot;
use types::UnixMillis;

use crate::error::from_sqlx;
use crate::{
    AuditQuery, AuditRow, AuditStore, Backend, ChainHead, CheckpointRow, ConnectorSecretRow, CredentialRow,
    CredentialStore, DataKeyRow, Durability, HorizonRow, KeyStore, OpenOptions, PolicyStore,
    PolicyVersionRow, SecretStore, Store, StoreError, SubjectRow, SubjectStore, clamp_limit,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The page size of a new database (an existing one keeps its own). The audit table is appended to at its
/// right edge, row after row of 1–2 KB: with 16 KiB pages a commit writes a quarter as many WAL frames, and
/// pages split a quarter as often, as with SQLite's default 4 KiB (the checkpointing thread's CPU per
/// pre-check fell from 1.6–1.8 to 1.0 us at 10,000 requests/s; BENCHMARKS.md).
pub const PAGE_SIZE: u32 = 16384;

/// How often the checkpointing connection moves the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// How often, with process-crash durability, the WAL is synced to disk when it has changed.
pub const WAL_SYNC_EVERY: Duration = Duration::from_millis(20);

/// The name of the WAL syncing thread.
pub const SQLITE_WAL_SYNC_THREAD: &str = "sqlite-walsync";

/// The size the WAL file is cut back to when it starts over (`journal_size_limit`), as a multiple of the
/// restart threshold: above what a steady load leaves, so that only a burst's WAL is truncated (a truncation
/// takes milliseconds).
const WAL_SIZE_LIMIT_RESTARTS: u64 = 2;

#[derive(Debug)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// One connection of its own for appending audit records. With the writes spread over the main pool,
    /// every connection found its page cache stale (another connection had written since) and read the
    /// tables' last pages back from the WAL on each commit; one appending connection keeps them cached.
    audit_pool: SqlitePool,
    /// Set by the checkpointing loop when the WAL should start over (see the module's documentation).
    wal_too_long: Arc<AtomicBool>,
    /// Stops the checkpointing loop (so does dropping it), and what says it has ended.
    checkpoints: std::sync::Mutex<Option<(oneshot::Sender<()>, BackgroundThread)>>,
    /// With process-crash durability: the thread syncing the WAL (stopped when dropped).
    wal_syncer: std::sync::Mutex<Option<FileSyncer>>,
}

impl SqliteStore {
    /// Before the pool closes: a last checkpoint, and the checkpointing connection closed.
    async fn before_close(&self) {
        self.audit_pool.close().await;
        let checkpoints = self.checkpoints.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, thread)) = checkpoints {
            // The loop may have ended already: then there is nothing to stop.
            let _ = stop.send(());
            if !thread.finished().await {
                tracing::warn!("the sqlite checkpoint loop failed");
            }
        }
        let syncer = self.wal_syncer.lock().ok().and_then(|mut s| s.take());
        if let Some(syncer) = syncer {
            syncer.stop();
        }
    }
}

impl SqliteStore {
    fn appender(&self) -> &SqlitePool {
        &self.audit_pool
    }

    /// The audit writer's checkpoint, run between its appends when the WAL should start over.
    async fn restart_wal(&self) {
        if !self.wal_too_long.load(Ordering::Relaxed) {
            return;
        }
        match checkpoint(&self.audit_pool, PASSIVE).await {
            Ok(done) if !done.asks_again() => self.wal_too_long.store(false, Ordering::Relaxed),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "sqlite WAL checkpoint failed; retrying"),
        }
    }

    /// Puts the appending connection's thread at the lowest priority (see the module's documentation), or
    /// says in the log that it could not: the appends still work, at the ordinary priority.
    async fn lower_appender(&self) {
        let lowered = match self.audit_pool.acquire().await {
            Ok(mut connection) => lower_connection_thread(&mut connection, SQLITE_AUDIT_THREAD).await,
            Err(error) => Err(error),
        };
        if let Err(error) = lowered {
            let error = from_sqlx("cannot lower the sqlite connection's priority", error);
            tracing::warn!(error = %error, thread = SQLITE_AUDIT_THREAD, "cannot lower a background thread's priority");
        }
    }

    pub(crate) async fn open(url: &str, options: &OpenOptions) -> Result<SqliteStore, StoreError> {
        let connect = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(|e| from_sqlx("invalid sqlite url", e))?
        } else {
            create_owner_only(std::path::Path::new(url))?;
            SqliteConnectOptions::new().filename(url)
        };
        let synchronous = match options.durability {
            Durability::ProcessCrash => SqliteSynchronous::Normal,
            Durability::PowerLoss => SqliteSynchronous::Full,
        };
        let connect = connect
            .create_if_missing(true)
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(options.acquire_timeout)
            .pragma("wal_autocheckpoint", "0")
            .pragma(
                "journal_size_limit",
                options
                    .wal_restart_bytes
                    .max(1)
                    .saturating_mul(WAL_SIZE_LIMIT_RESTARTS)
                    .min(i64::MAX as u64)
                    .to_string(),
            );
        let pool = |connections: u32| {
            SqlitePoolOptions::new()
                // A connection to a local file cannot go stale behind the pool's back: no ping (a round trip
                // to the connection's thread) before each use.
                .test_before_acquire(false)
                .max_connections(connections)
                .acquire_timeout(options.acquire_timeout)
        };
        let main = pool(options.max_connections.max(1))
            .connect_with(connect.clone())
            .await
            .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        MIGRATOR.run(&main).await.map_err(|e| from_sqlx("sqlite migration failed", e.into()))?;
        // One connection, never closed for idleness or age: its thread keeps the priority it was given
        // (`lower_appender`), and its page cache stays warm.
        let audit_pool = pool(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.clone().thread_name(|_| SQLITE_AUDIT_THREAD.to_owned()))
            .await
            .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        let mut checkpointer = SqliteConnection::connect_with(
            &connect.clone().thread_name(|_| SQLITE_CHECKPOINT_THREAD.to_owned()),
        )
        .await
        .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        lower_connection_thread(&mut checkpointer, SQLITE_CHECKPOINT_THREAD)
            .await
            .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        let (stop, stopped) = oneshot::channel();
        let wal_too_long = Arc::new(AtomicBool::new(false));
        // The threshold in WAL frames, one page each: an existing database keeps the page size it was made with.
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&main)
            .await
            .map_err(|e| from_sqlx("cannot read the sqlite page size", e))?;
        let restart = restart_frames(options.wal_restart_bytes, page_size);
        let thread = on_background_thread(
            SQLITE_CHECKPOINT_LOOP_THREAD,
            checkpoints(checkpointer, restart, wal_too_long.clone(), stopped),
        )?;
        let wal_syncer = match options.durability {
            Durability::ProcessCrash => {
                let wal = wal_path(connect.get_filename());
                Some(FileSyncer::start(SQLITE_WAL_SYNC_THREAD, move || Some(wal.clone()))?)
            }
            Durability::PowerLoss => None,
        };
        Ok(SqliteStore {
            pool: main,
            audit_pool,
            wal_too_long,
            checkpoints: std::sync::Mutex::new(Some((stop, thread))),
            wal_syncer: std::sync::Mutex::new(wal_syncer),
        })
    }
}

/// How many WAL frames (one page each) make `bytes`: at least one.
fn restart_frames(bytes: u64, page_size: i64) -> i64 {
    let frames = bytes / u64::try_from(page_size).unwrap_or(1).max(1);
    i64::try_from(frames).unwrap_or(i64::MAX).max(1)
}

/// Every [`CHECKPOINT_EVERY`] until `stopped`, a passive checkpoint: it copies what it can of the WAL without
/// waiting for, or blocking, the writers and readers of the other connections. When that leaves a long WAL,
/// it sets `wal_too_long` for the audit writer (see the module's documentation).
async fn checkpoints(
    mut connection: SqliteConnection,
    restart_frames: i64,
    wal_too_long: Arc<AtomicBool>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = every.tick() => {
                match checkpoint(&mut connection, PASSIVE).await {
                    Ok(done) => wal_too_long.store(done.frames > restart_frames, Ordering::Relaxed),
                    Err(error) => tracing::warn!(error = %error, "sqlite WAL checkpoint failed; retrying"),
                }
            }
        }
    }
    if let Err(error) = checkpoint(&mut connection, TRUNCATE).await {
        tracing::warn!(error = %error, "the last sqlite WAL checkpoint failed");
    }
    if let Err(error) = connection.close().await {
        tracing::warn!(error = %error, "closing the sqlite checkpoint connection failed");
    }
}

/// The name of the checkpointing connection's thread.
pub const SQLITE_CHECKPOINT_THREAD: &str = "sqlite-checkpt";

/// The name of the thread whose runtime runs the checkpointing loop (its timer, and the waits for the
/// checkpointing connection's thread).
pub const SQLITE_CHECKPOINT_LOOP_THREAD: &str = "sqlite-ckptloop";

/// Runs `work` on a thread of its own at the lowest priority, in a runtime of its own (timers, no IO: SQLite's
/// connections run on threads of their own, which any runtime may wait for). Not a task of the caller's
/// runtime: there, waiting for a lowered connection's thread meant taking the lock of sqlx's channel to it,
/// and the request worker blocked on that lock whenever the lowered thread had been preempted holding it
/// (BENCHMARKS.md, sixteenth run).
pub fn on_background_thread(
    name: &str,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<BackgroundThread, StoreError> {
    let unavailable = |error| {
        StoreError::with_source(crate::StoreErrorKind::Unavailable, "cannot start a background thread", error)
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(unavailable)?;
    let (finished, ended) = oneshot::channel();
    let spawned = spawn_lowest(name, move || {
        runtime.block_on(async {
            work.await;
            // sqlx hands a connection back to its pool, or closes one, from a task of its own: let it run.
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
        });
        drop(runtime);
        let _ = finished.send(());
    });
    Ok(BackgroundThread { thread: spawned.map_err(unavailable)?, ended })
}

/// A thread started by [`on_background_thread`].
#[derive(Debug)]
pub struct BackgroundThread {
    thread: std::thread::JoinHandle<()>,
    ended: oneshot::Receiver<()>,
}

impl BackgroundThread {
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits until its work has ended and its runtime is gone; false if the work panicked.
    pub async fn finished(self) -> bool {
        self.ended.await.is_ok()
    }
}

/// The name of the audit appending connection's thread.
pub const SQLITE_AUDIT_THREAD: &str = "sqlite-audit";

/// Lowers the thread a connection runs on (see the module's documentation). sqlx runs each connection on a
/// thread of its own and offers no hook to it but SQLite's callbacks: a progress handler, which runs on that
/// thread, lowers it during one statement and is removed again, so later statements do not call it.
///
/// Checkpoints are such background work: sharing one core evenly, a checkpoint's reads and writes held the
/// audit commit back by whole scheduler ticks, 4 to 12 ms, several times a second. On a saturated core a
/// lowered checkpointer does not keep up: each checkpoint took 1–4 s in a benchmark, holding SQLite's
/// checkpoint lock all along, and the WAL grew to 140–260 MiB before the writer could start it over (see
/// [`WalCheckpoint::asks_again`]).
async fn lower_connection_thread(
    connection: &mut SqliteConnection,
    name: &'static str,
) -> Result<(), sqlx::Error> {
    let mut lowered = false;
    connection.lock_handle().await?.set_progress_handler(1, move || {
        if !lowered {
            lowered = true;
            lower_this_thread(name);
        }
        true
    });
    let ran = sqlx::query("SELECT 1").execute(&mut *connection).await;
    connection.lock_handle().await?.remove_progress_handler();
    ran.map(drop)
}

/// Starts a thread named `name` that runs `body` at the lowest priority ([`lower_this_thread`]): the store's
/// background threads and the audit journal's.
pub fn spawn_lowest(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let thread = name.to_owned();
    std::thread::Builder::new().name(thread.clone()).spawn(move || {
        lower_this_thread(&thread);
        body();
    })
}

/// Puts the calling thread at the lowest priority (nice 19), or says in the log that it could not. Not
/// `SCHED_IDLE`: a thread under it that holds one of SQLite's locks can wait indefinitely on a saturated core
/// while request workers wait for the lock (at pre-check saturation the auth stage's mean, whose cache
/// refreshes read the database, went from 2.4 to 26-104 us in two of four runs under `SCHED_IDLE`).
fn lower_this_thread(name: &str) {
    if let Err(error) = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min) {
        tracing::warn!(error = ?error, thread = name, "cannot lower a background thread's priority");
    }
}

/// The WAL file next to a database file (`axonflow.db` → `axonflow.db-wal`).
fn wal_path(database: &std::path::Path) -> std::path::PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    std::path::PathBuf::from(name)
}

/// A thread that syncs a file every [`WAL_SYNC_EVERY`] when its length or modification time changed since the
/// last sync (see the module's documentation): SQLite's WAL here, the audit journal's open segment in the
/// engine. It asks `target` for the file before each sync and opens it anew, so a file that was truncated,
/// recreated or replaced is followed; none, or a missing one (an in-memory database), is skipped.
#[derive(Debug)]
pub struct FileSyncer {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl FileSyncer {
    /// Starts the thread, named `name`, at the lowest priority.
    pub fn start(
        name: &'static str,
        target: impl Fn() -> Option<std::path::PathBuf> + Send + 'static,
    ) -> Result<FileSyncer, StoreError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        // Background work, like the checkpoints: it never takes turns with the request workers.
        let thread = spawn_lowest(name, move || {
            let (mut synced, mut failing) = (None, false);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(WAL_SYNC_EVERY)
            {
                let Some(path) = target() else { continue };
                match sync_if_changed(&path, synced) {
                    Ok(state) => (synced, failing) = (state, false),
                    // Once per run of failures, not every period; the writers' own syncs report theirs.
                    Err(error) if !failing => {
                        tracing::warn!(error = %error, thread = name, "a background file sync failed; retrying");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        })
        .map_err(|error| {
            StoreError::with_source(crate::StoreErrorKind::Unavailable, "cannot start a file sync thread", error)
        })?;
        Ok(FileSyncer { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            tracing::warn!("a background file sync thread panicked");
        }
    }
}

/// A file's length and modification time, as last synced.
type FileState = (u64, std::time::SystemTime);

/// Syncs the file if it changed since `synced`; the state it synced (or `synced` again when there was nothing
/// to do, or no file). A failed sync is an error, and the next period tries again.
fn sync_if_changed(path: &std::path::Path, synced: Option<FileState>) -> std::io::Result<Option<FileState>> {
    let Ok(file) = std::fs::File::open(path) else { return Ok(synced) };
    let metadata = file.metadata()?;
    let state = (metadata.len(), metadata.modified().unwrap_or(std::time::UNIX_EPOCH));
    if synced == Some(state) {
        return Ok(synced);
    }
    file.sync_data()?;
    Ok(Some(state))
}

const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

/// What a checkpoint reports (the three columns of `PRAGMA wal_checkpoint`).
struct WalCheckpoint {
    /// It could not run to the end (another checkpoint, or a writer or reader it had to wait for).
    busy: bool,
    /// The WAL's length in frames when it ran.
    frames: i64,
    /// How many of those frames are now in the database file.
    copied: i64,
}

impl WalCheckpoint {
    /// Every frame is in the database file: the next commit starts the WAL over.
    fn complete(&self) -> bool {
        !self.busy && self.copied == self.frames
    }

    /// After the writer's start-over checkpoint: whether its next call should try again. Not when it
    /// completed. Not when it was busy either: the background holds SQLite's checkpoint lock, for seconds on
    /// a saturated core, where retrying after every commit cost a round trip each (hundreds per benchmark
    /// series); the background asks again when it has finished (or, if its request crossed this answer, at
    /// its next period). Otherwise (a reader held an old snapshot) yes.
    fn asks_again(&self) -> bool {
        !self.complete() && !self.busy
    }
}

/// Runs a checkpoint (one of the statements above).
async fn checkpoint<'c>(
    executor: impl sqlx::Executor<'c, Database = Sqlite>,
    sql: &'static str,
) -> Result<WalCheckpoint, sqlx::Error> {
    let row = sqlx::query(sql).fetch_one(executor).await?;
    Ok(WalCheckpoint {
        busy: row.try_get::<i64, _>(0)? != 0,
        frames: row.try_get(1)?,
        copied: row.try_get(2)?,
    })
}

/// Creates the database file readable by its owner only; SQLite gives its WAL and shared-memory files the
/// same mode. An existing file is left as it is.
fn create_owner_only(path: &std::path::Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::with_source(
            crate::StoreErrorKind::Unavailable,
            "cannot create the sqlite database file",
            error,
        )),
    }
}

crate::sql::impl_sql_store!(SqliteStore, Sqlite, SqliteRow, Backend::Sqlite);
crate::sql_protect::impl_protection_sql!(SqliteStore, Sqlite, SqliteRow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restart_threshold_is_counted_in_frames_of_the_databases_own_page_size() {
        assert_eq!(restart_frames(64 * 1024 * 1024, 16384), 4096);
        assert_eq!(restart_frames(64 * 1024 * 1024, 4096), 16384);
        assert_eq!(restart_frames(1, 16384), 1, "never zero: a WAL of one frame may start over");
        assert_eq!(restart_frames(u64::MAX, 512), i64::try_from(u64::MAX / 512).unwrap());
        assert_eq!(restart_frames(1 << 20, 0), 1 << 20, "a nonsensical page size does not divide by zero");
    }

    #[test]
    fn the_writer_tries_its_start_over_again_only_when_a_reader_held_it_back() {
        let checkpoint = |busy, frames, copied| WalCheckpoint { busy, frames, copied };
        assert!(!checkpoint(false, 100, 100).asks_again(), "complete");
        assert!(!checkpoint(true, -1, -1).asks_again(), "the background holds the checkpoint lock");
        assert!(!checkpoint(true, 100, 40).asks_again(), "busy part way");
        assert!(checkpoint(false, 100, 40).asks_again(), "a reader held an old snapshot");
    }

    #[test]
    fn the_wal_is_synced_only_when_it_changed() {
        use std::io::Write as _;
        assert_eq!(
            wal_path(std::path::Path::new("/data/axonflow.db")),
            std::path::Path::new("/data/axonflow.db-wal")
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let wal = dir.path().join("axonflow.db-wal");
        let sync = |synced| sync_if_changed(&wal, synced).expect("sync");
        assert_eq!(sync(None), None, "no WAL yet: nothing to sync");
        std::fs::write(&wal, b"frame").expect("write");
        let first = sync(None).expect("synced");
        assert_eq!(first.0, 5);
        assert_eq!(sync(Some(first)), Some(first), "unchanged: kept as synced");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&wal)
            .expect("open")
            .write_all(b"more")
            .expect("append");
        let second = sync(Some(first)).expect("synced");
        assert_eq!(second.0, 9, "a longer WAL is synced again");
        std::fs::remove_file(&wal).expect("remove");
        assert_eq!(sync(Some(second)), Some(second), "a vanished WAL is skipped");
    }
}
