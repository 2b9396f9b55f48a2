//! The embedded SQLite backend: one file in the data directory, WAL journal, migrations applied at open.
//!
//! Checkpoints (moving the WAL into the database file, and syncing it) run on a connection of their own every
//! [`CHECKPOINT_EVERY`], never on a writing connection: SQLite's automatic checkpoint runs inside the commit
//! that crosses its threshold, so one audit insert in a few thousand waited tens of milliseconds for it, and
//! every request waiting for that insert with it.

use std::str::FromStr;
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

/// How often the checkpointing connection moves the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// Stops the checkpointing task (so does dropping it), and the task to wait for.
    checkpoints: std::sync::Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
}

impl SqliteStore {
    /// Before the pool closes: a last checkpoint, and the checkpointing connection closed.
    async fn before_close(&self) {
        let checkpoints = self.checkpoints.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, task)) = checkpoints {
            // The task may have ended already: then there is nothing to stop.
            let _ = stop.send(());
            if let Err(error) = task.await {
                tracing::warn!(error = %error, "the sqlite checkpoint task failed");
            }
        }
    }
}

impl SqliteStore {
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
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(options.acquire_timeout)
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            // A connection to a local file cannot go stale behind the pool's back: no ping (a round trip to the
            // connection's thread) before each use.
            .test_before_acquire(false)
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        MIGRATOR.run(&pool).await.map_err(|e| from_sqlx("sqlite migration failed", e.into()))?;
        let checkpointer = SqliteConnection::connect_with(&connect)
            .await
            .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(checkpoints(checkpointer, stopped));
        Ok(SqliteStore { pool, checkpoints: std::sync::Mutex::new(Some((stop, task))) })
    }
}

/// Every [`CHECKPOINT_EVERY`] until `stopped`, a passive checkpoint: it copies what it can of the WAL without
/// waiting for, or blocking, the writers and readers of the other connections.
async fn checkpoints(mut connection: SqliteConnection, mut stopped: oneshot::Receiver<()>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = every.tick() => {
                if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut connection).await {
                    tracing::warn!(error = %error, "sqlite WAL checkpoint failed; retrying");
                }
            }
        }
    }
    if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut connection).await {
        tracing::warn!(error = %error, "the last sqlite WAL checkpoint failed");
    }
    if let Err(error) = connection.close().await {
        tracing::warn!(error = %error, "closing the sqlite checkpoint connection failed");
    }
}

/// Creates the database file readable by its owner only; SQLite gives its WAL and shared-memory files the same
/// mode. An existing file is left as it is.
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
