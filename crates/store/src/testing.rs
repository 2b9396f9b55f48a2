//! Test support for every crate whose tests need a store: runs a test body once per backend, each time in a
//! fresh database (a new SQLite file, a new PostgreSQL schema) so tests never see each other's rows.
//!
//! PostgreSQL comes from `AXONFLOW_TEST_POSTGRES_URL`. Without it the PostgreSQL run is skipped with a printed
//! notice, except under CI (`CI` set), where a missing server is a failure.

use std::future::Future;
use std::sync::Arc;

use crate::{OpenOptions, Store, open};

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "AXONFLOW_TEST_POSTGRES_URL";

/// A fresh database for one test. Keep it alive for the test's duration, then call [`TestDatabase::cleanup`].
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub options: OpenOptions,
    _dir: Option<tempfile::TempDir>,
    postgres_schema: Option<String>,
}

impl TestDatabase {
    /// A new SQLite file in its own temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = dir.path().join("axonflow.db").to_string_lossy().into_owned();
        TestDatabase { url, options: OpenOptions::default(), _dir: Some(dir), postgres_schema: None }
    }

    #[allow(clippy::print_stderr)] // the notice is for the person running the tests
    /// A new schema on the test PostgreSQL server, or `None` (with a notice) when none is configured outside CI.
    pub fn postgres() -> Option<TestDatabase> {
        let url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{POSTGRES_URL_VAR} must be set under CI: the PostgreSQL tests may not be skipped there"
                );
                eprintln!("notice: {POSTGRES_URL_VAR} is not set; skipping the PostgreSQL run of this test");
                return None;
            }
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let options = OpenOptions { postgres_schema: Some(schema.clone()), ..OpenOptions::default() };
        Some(TestDatabase { url, options, _dir: None, postgres_schema: Some(schema) })
    }

    /// Opens and migrates the database.
    pub async fn open(&self) -> Arc<dyn Store> {
        open(&self.url, &self.options).await.expect("open the test store")
    }

    /// Runs raw SQL against the test database, bypassing the store: for tests that tamper with stored data.
    pub async fn execute_raw(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.postgres_schema {
            Some(schema) => {
                let options: sqlx::postgres::PgConnectOptions = self.url.parse().expect("postgres url");
                let pool = sqlx::PgPool::connect_with(options.options([("search_path", schema.as_str())]))
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&pool).await.expect("raw sql");
                pool.close().await;
            }
            None => {
                let pool =
                    sqlx::SqlitePool::connect(&format!("sqlite://{}", self.url)).await.expect("connect");
                sqlx::query(sql).execute(&pool).await.expect("raw sql");
                pool.close().await;
            }
        }
    }

    /// Drops the PostgreSQL schema; the SQLite directory goes when `self` is dropped.
    pub async fn cleanup(self) {
        if let Some(schema) = &self.postgres_schema {
            let pool = sqlx::PgPool::connect(&self.url).await.expect("connect for cleanup");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")))
                .execute(&pool)
                .await
                .expect("drop the test schema");
            pool.close().await;
        }
    }
}

/// Runs raw SQL on a SQLite database file, bypassing the store: for tests that tamper with stored data.
pub async fn execute_raw_sqlite(path: &std::path::Path, sql: &str) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&pool).await.expect("raw sql");
    pool.close().await;
}

/// The fresh databases a store test runs against: SQLite always, PostgreSQL when configured.
pub fn test_databases() -> Vec<TestDatabase> {
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres());
    databases
}

/// Runs `test` once per backend, each on a freshly migrated database.
pub async fn with_each_backend<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    for database in test_databases() {
        let store = database.open().await;
        test(store.clone()).await;
        store.close().await;
        database.cleanup().await;
    }
}

/// A thread's nice value, as [`threads_named`] reads it.
#[cfg(target_os = "linux")]
pub type Priority = i32;

/// The lowest priority (nice 19), where the store and the audit journal put their background threads.
#[cfg(target_os = "linux")]
pub const LOWEST: Priority = 19;

/// The threads of this process with a given name, and their nice values.
#[cfg(target_os = "linux")]
pub fn threads_named(name: &str) -> Vec<Priority> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim_end() == name).then_some(())?;
            priority(&std::fs::read_to_string(task.path().join("stat")).ok()?)
        })
        .collect()
}

/// A thread's nice value from its `/proc/.../stat` line.
#[cfg(target_os = "linux")]
pub fn priority(stat: &str) -> Option<Priority> {
    // Fields after the parenthesised name start at field 3 (state): nice is field 19.
    stat.rsplit_once(") ")?.1.split(' ').nth(16)?.parse().ok()
}

/// The nice values of this process's threads named `name`, once `done` holds for them (at most 2 s).
#[cfg(target_os = "linux")]
pub async fn settled_threads(name: &str, done: impl Fn(&[Priority]) -> bool) -> Vec<Priority> {
    let mut threads = Vec::new();
    for _ in 0..100 {
        threads = threads_named(name);
        if done(&threads) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    threads
}
