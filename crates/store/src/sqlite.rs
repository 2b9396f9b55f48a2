//! The embedded SQLite backend: one file in the data directory, WAL journal, migrations applied at open.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use types::UnixMillis;

use crate::error::from_sqlx;
use crate::{
    AuditQuery, AuditRow, AuditStore, Backend, ChainHead, CheckpointRow, ConnectorSecretRow, CredentialRow,
    CredentialStore, DataKeyRow, Durability, HorizonRow, KeyStore, OpenOptions, PolicyStore,
    PolicyVersionRow, SecretStore, Store, StoreError, SubjectRow, SubjectStore, clamp_limit,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
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
            .busy_timeout(options.acquire_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| from_sqlx("cannot open the sqlite database", e))?;
        MIGRATOR.run(&pool).await.map_err(|e| from_sqlx("sqlite migration failed", e.into()))?;
        Ok(SqliteStore { pool })
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
