//! The PostgreSQL backend, for many stateless nodes sharing one database. Migrations run at open under
//! PostgreSQL's advisory lock, so nodes starting together do not race.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use types::UnixMillis;

use crate::error::from_sqlx;
use crate::{
    AuditQuery, AuditRow, AuditStore, Backend, ChainHead, CheckpointRow, ConnectorSecretRow, CredentialRow,
    CredentialStore, DataKeyRow, HorizonRow, KeyStore, OpenOptions, PolicyStore, PolicyVersionRow,
    SecretStore, Store, StoreError, StoreErrorKind, SubjectRow, SubjectStore, clamp_limit,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug)]
pub(crate) struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Nothing to do before the pool closes.
    async fn before_close(&self) {}

    /// Nothing to do between audit appends: PostgreSQL recycles its WAL on its own.
    async fn restart_wal(&self) {}

    /// The appends run on the server's side: there is no thread of ours to lower.
    async fn lower_appender(&self) {}

    /// Audit records are appended through the one pool.
    fn appender(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn open(url: &str, options: &OpenOptions) -> Result<PostgresStore, StoreError> {
        let mut connect =
            PgConnectOptions::from_str(url).map_err(|e| from_sqlx("invalid postgres url", e))?;
        if let Some(schema) = &options.postgres_schema {
            if !is_identifier(schema) {
                return Err(StoreError::new(StoreErrorKind::Config, "invalid postgres schema name"));
            }
            let bootstrap = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
                .await
                .map_err(|e| from_sqlx("cannot connect to postgres", e))?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
                .execute(&bootstrap)
                .await
                .map_err(|e| from_sqlx("cannot create the postgres schema", e))?;
            bootstrap.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| from_sqlx("cannot connect to postgres", e))?;
        MIGRATOR.run(&pool).await.map_err(|e| from_sqlx("postgres migration failed", e.into()))?;
        Ok(PostgresStore { pool })
    }
}

/// A plain SQL identifier: safe to quote into DDL.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

crate::sql::impl_sql_store!(PostgresStore, Postgres, PgRow, Backend::Postgres);
crate::sql_protect::impl_protection_sql!(PostgresStore, Postgres, PgRow);
