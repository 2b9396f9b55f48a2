const LATEST_SCHEMA: i64 = 5;

#[cfg(target_os = "linux")]
use store::testing::{LOWEST, priority, settled_threads, threads_named};
use store::testing::{TestDatabase, with_each_backend};
use store::{Backend, OpenOptions, StoreErrorKind, open};

#[tokio::test]
async fn opens_migrates_and_answers() {
    with_each_backend(|store| async move {
        store.ping().await.expect("ping");
        assert_eq!(store.schema_version().await.expect("version"), LATEST_SCHEMA);
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_remigrate() {
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres());
    for database in databases {
        let store = database.open().await;
        store.append_audit(&[crate::audit::row("chain-a", 1, b"")], None).await.expect("append");
        store.close().await;
        let again = database.open().await;
        assert_eq!(again.schema_version().await.expect("version"), LATEST_SCHEMA);
        assert_eq!(again.count_audit(&Default::default()).await.expect("count"), 1);
        again.close().await;
        database.cleanup().await;
    }
}

#[tokio::test]
async fn backend_is_chosen_by_url() {
    let sqlite = TestDatabase::sqlite();
    assert_eq!(sqlite.open().await.backend(), Backend::Sqlite);
    if let Some(postgres) = TestDatabase::postgres() {
        let store = postgres.open().await;
        assert_eq!(store.backend(), Backend::Postgres);
        store.close().await;
        postgres.cleanup().await;
    }
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_the_error_hides_the_password() {
    let options =
        OpenOptions { acquire_timeout: std::time::Duration::from_millis(500), ..OpenOptions::default() };
    let error =
        open("postgres://axon:hunter2-password@127.0.0.1:1/db", &options).await.expect_err("must fail");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn a_malformed_url_is_a_config_error_without_the_url() {
    let error = open("postgres://user:s3cret@[bad", &OpenOptions::default()).await.expect_err("must fail");
    assert_eq!(error.kind(), StoreErrorKind::Config);
    assert!(!format!("{error} {error:?}").contains("s3cret"));
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_fails_cleanly() {
    let error =
        open("/nonexistent-dir/for/axonflow.db", &OpenOptions::default()).await.expect_err("must fail");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    store.ping().await.expect("ping");
    let mode = std::fs::metadata(&database.url).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    store.close().await;
}

/// Under a steady stream of commits a passive checkpoint never reaches the end of the WAL, and SQLite only starts
/// the WAL over once one has: without the writer's own checkpoint between appends the file grew by everything
/// written (185 MB after 96 MiB of records).
#[tokio::test]
async fn the_sqlite_wal_stays_bounded_under_a_steady_stream_of_commits() {
    let mut database = TestDatabase::sqlite();
    // 8 MiB rather than the default 64, so that a few seconds of writing show the bound. (Until 2026-12-05 the
    // option counted 4 KiB pages, and the database has 16 KiB ones: this test ran at 32 MiB against its 48 MiB
    // bound, and failed about one run in four at 17 MB/s.)
    database.options.wal_restart_bytes = 8 * 1024 * 1024;
    let store = database.open().await;
    let body = "x".repeat(32 * 1024);
    let (mut seq, mut written) = (0_i64, 0_usize);
    let started = std::time::Instant::now();
    let wal_path = format!("{}-wal", database.url);
    let wal_size = || std::fs::metadata(&wal_path).map_or(0, |m| m.len());
    // The largest the file was after any commit: it is cut back when the WAL starts over, so its size at the end
    // would not show a peak in between.
    let mut peak = 0;
    // At least 96 MiB of record bodies over at least 2 s, a pause of 2 ms per commit keeping the stream steady
    // (~10 MB/s, the bytes of 5,000 2 KB records a second) rather than a burst. The WAL then peaks at 20-21 MiB
    // (the threshold, plus what is written while a checkpoint runs and until the writer's own one completes);
    // at 0.5 ms (~17 MB/s) it peaked at 37-38 MiB. Without the writer's checkpoint it would grow by everything
    // written.
    while written < 96 * 1024 * 1024 || started.elapsed() < std::time::Duration::from_secs(2) {
        seq += 1;
        let row = store::AuditRow { body: body.clone(), ..crate::audit::row("steady", seq, &[0; 32]) };
        store.append_audit(&[row], None).await.expect("append");
        // As the audit writer does between two batches.
        store.between_audit_appends().await;
        written += body.len();
        peak = peak.max(wal_size());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(
        peak < 48 * 1024 * 1024,
        "the WAL reached {peak} bytes during {written} bytes of records in {:?}",
        started.elapsed()
    );
    assert_eq!(store.count_audit(&Default::default()).await.expect("count"), seq as u64);
    store.close().await;
}

/// The thread that runs SQLite's checkpoints, and the one whose runtime runs their loop (never the caller's
/// runtime), are at the lowest priority, and both end when the store closes.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_sqlite_checkpoint_threads_run_at_the_lowest_priority() {
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    for thread in [store::SQLITE_CHECKPOINT_THREAD, store::SQLITE_CHECKPOINT_LOOP_THREAD] {
        let threads = settled_threads(thread, |t| t == [LOWEST]).await;
        assert_eq!(threads, [LOWEST], "the {thread} thread's priority");
    }
    store.close().await;
    for thread in [store::SQLITE_CHECKPOINT_THREAD, store::SQLITE_CHECKPOINT_LOOP_THREAD] {
        let threads = settled_threads(thread, <[_]>::is_empty).await;
        assert!(threads.is_empty(), "the {thread} thread ends with the store: {threads:?}");
    }
}

/// The audit appending connection's thread keeps the ordinary priority (the command-line tools append
/// directly) until the audit journal's indexer says its appends are background work; appends still work
/// after.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_audit_connection_runs_in_the_background_once_told() {
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    store.append_audit(&[crate::audit::row("chain-a", 1, b"")], None).await.expect("append");
    // The test's own thread's nice value (a suite run under `nice` starts every thread there).
    let ordinary = std::fs::read_to_string("/proc/thread-self/stat").ok().and_then(|s| priority(&s));
    assert_eq!(threads_named(store::SQLITE_AUDIT_THREAD), [ordinary.expect("own nice value")]);
    store.audit_appends_in_background().await;
    assert_eq!(threads_named(store::SQLITE_AUDIT_THREAD), [LOWEST]);
    let rows: Vec<_> = (2..=200).map(|seq| crate::audit::row("chain-a", seq, b"")).collect();
    store.append_audit(&rows, None).await.expect("append in the background");
    assert_eq!(store.count_audit(&Default::default()).await.expect("count"), 200);
    store.close().await;
}

/// A new SQLite database has 16 KiB pages (the file header says so at bytes 16-17).
#[tokio::test]
async fn a_new_sqlite_database_has_16_kib_pages() {
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    store.append_audit(&[crate::audit::row("chain-a", 1, b"")], None).await.expect("append");
    store.close().await;
    let header = std::fs::read(&database.url).expect("database file");
    assert_eq!(u16::from_be_bytes([header[16], header[17]]), 16384);
    assert_eq!(store::SQLITE_PAGE_SIZE, 16384);
}

/// With process-crash durability a low-priority thread syncs the WAL; it stops with the store. With
/// power-loss durability every commit syncs, and there is no such thread.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_low_priority_thread_syncs_the_wal_unless_every_commit_does() {
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    let threads = settled_threads(store::SQLITE_WAL_SYNC_THREAD, |t| t == [LOWEST]).await;
    assert_eq!(threads, [LOWEST], "one WAL sync thread, at the lowest priority");
    store.close().await;
    assert!(threads_named(store::SQLITE_WAL_SYNC_THREAD).is_empty(), "stopped with the store");

    let mut database = TestDatabase::sqlite();
    database.options.durability = store::Durability::PowerLoss;
    let store = database.open().await;
    assert!(
        threads_named(store::SQLITE_WAL_SYNC_THREAD).is_empty(),
        "power-loss durability syncs every commit"
    );
    store.close().await;
}
