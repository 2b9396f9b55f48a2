use std::sync::Arc;
use std::time::Duration;

use engine::audit::{self, ChainProblem, ChainReport};
use engine::{AuditEntry, AuditLog, AuditOptions};
use license::{PublicKey, SigningKey};
use store::Store;
use store::testing::{TestDatabase, test_databases};
use types::SystemClock;

fn entry(n: usize) -> AuditEntry {
    AuditEntry {
        kind: "pre_check",
        tenant: "acme".to_owned(),
        actor: "trip-planner".to_owned(),
        verdict: if n.is_multiple_of(2) { "allow".to_owned() } else { "deny".to_owned() },
        details: serde_json::json!({"n": n, "policies": ["pii"]}).into(),
    }
}

/// A signing key, the trust list of its public key, and a way to load the same key again (a restart).
fn restartable_key() -> (SigningKey, [PublicKey; 1], impl Fn() -> SigningKey) {
    let signer = SigningKey::generate().expect("key");
    let trusted = [signer.public_key()];
    let pem = signer.to_pkcs8_pem().expect("pem");
    (signer, trusted, move || SigningKey::from_pkcs8_pem(pem.expose()).expect("key"))
}

/// Starts the real writer on chain `node-1`.
async fn start_node1(
    store: &Arc<dyn Store>,
    signer: SigningKey,
    options: AuditOptions,
) -> Result<(AuditLog, engine::AuditWriter), engine::AuditStartError> {
    AuditLog::start(store.clone(), "node-1".to_owned(), signer, Arc::new(SystemClock), options).await
}

/// Writes `count` records on `chain` through the real writer and stops it (signing the final head).
async fn write(store: &Arc<dyn Store>, chain: &str, signer: SigningKey, count: usize) {
    let options = AuditOptions { checkpoint_interval: Duration::from_secs(3600), ..AuditOptions::default() };
    let (log, writer) =
        AuditLog::start(store.clone(), chain.to_owned(), signer, Arc::new(SystemClock), options)
            .await
            .expect("start");
    for n in 0..count {
        log.record(entry(n)).await.expect("record");
    }
    drop(log);
    writer.finish().await;
}

async fn verified(store: &Arc<dyn Store>, trusted: &[PublicKey]) -> Vec<ChainReport> {
    audit::verify(store.as_ref(), trusted, |_| {}).await.expect("verify")
}

async fn problem(store: &Arc<dyn Store>, trusted: &[PublicKey]) -> Option<ChainProblem> {
    verified(store, trusted).await.into_iter().find_map(|report| report.problem)
}

async fn seq_id(store: &Arc<dyn Store>, seq: i64) -> String {
    store.audit_chain_page("node-1", seq - 1, 1).await.expect("page")[0].id.clone()
}

/// A fresh database with one chain of ten records; returns the signer's public key.
async fn ten_records(database: &TestDatabase) -> (Arc<dyn Store>, PublicKey) {
    let store = database.open().await;
    let signer = SigningKey::generate().expect("key");
    let public = signer.public_key();
    write(&store, "node-1", signer, 10).await;
    (store, public)
}

#[tokio::test]
async fn an_untouched_trail_verifies_and_concurrent_writers_each_keep_a_chain() {
    for database in test_databases() {
        let store = database.open().await;
        let (a, b) = (SigningKey::generate().expect("key"), SigningKey::generate().expect("key"));
        let a_pem = a.to_pkcs8_pem().expect("pem");
        let trusted = [a.public_key(), b.public_key()];
        let (first, second) = tokio::join!(write(&store, "node-1", a, 300), write(&store, "node-2", b, 200));
        let ((), ()) = (first, second);
        let reports = verified(&store, &trusted).await;
        assert_eq!(reports.len(), 2);
        for report in &reports {
            assert_eq!(report.problem, None, "{report:?}");
            assert_eq!(report.unsigned_tail, 0, "the final head is signed at shutdown");
        }
        assert_eq!(reports.iter().map(|r| r.records).sum::<u64>(), 500);
        // A restarted writer (same node key) continues the chain.
        write(&store, "node-1", SigningKey::from_pkcs8_pem(a_pem.expose()).expect("key"), 5).await;
        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, &reports[0].problem), (305, &None));
        store.close().await;
        database.cleanup().await;
    }
}

#[tokio::test]
async fn a_modified_record_is_named() {
    for database in test_databases() {
        let (store, key) = ten_records(&database).await;
        let id = seq_id(&store, 4).await;
        database
            .execute_raw("UPDATE audit_records SET verdict = 'allow' WHERE chain_id = 'node-1' AND seq = 4")
            .await;
        assert_eq!(problem(&store, &[key]).await, Some(ChainProblem::Modified { seq: 4, id }));
        database.cleanup().await;
    }
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    for database in test_databases() {
        let (store, key) = ten_records(&database).await;
        database.execute_raw("DELETE FROM audit_records WHERE chain_id = 'node-1' AND seq = 6").await;
        assert_eq!(problem(&store, &[key]).await, Some(ChainProblem::Deleted { expected: 6, found: 7 }));
        database.cleanup().await;
    }
}

#[tokio::test]
async fn deleting_the_end_of_the_chain_is_detected_by_the_checkpoint() {
    for database in test_databases() {
        let (store, key) = ten_records(&database).await;
        database.execute_raw("DELETE FROM audit_records WHERE chain_id = 'node-1' AND seq >= 9").await;
        assert_eq!(
            problem(&store, &[key]).await,
            Some(ChainProblem::Truncated { last_seq: 8, checkpoint_seq: 10 })
        );
        database.cleanup().await;
    }
}

#[tokio::test]
async fn reordered_records_are_named() {
    for database in test_databases() {
        let (store, key) = ten_records(&database).await;
        let id = seq_id(&store, 4).await;
        for sql in [
            "UPDATE audit_records SET seq = -3 WHERE chain_id = 'node-1' AND seq = 3",
            "UPDATE audit_records SET seq = 3 WHERE chain_id = 'node-1' AND seq = 4",
            "UPDATE audit_records SET seq = 4 WHERE chain_id = 'node-1' AND seq = -3",
        ] {
            database.execute_raw(sql).await;
        }
        assert_eq!(problem(&store, &[key]).await, Some(ChainProblem::InsertedOrReordered { seq: 3, id }));
        database.cleanup().await;
    }
}

#[tokio::test]
async fn an_inserted_record_is_detected_where_it_goes_in() {
    for database in test_databases() {
        let (store, key) = ten_records(&database).await;
        // Make room at 5 and put a forged record there, copying record 4's fields.
        for seq in (5..=10).rev() {
            database
                .execute_raw(&format!(
                    "UPDATE audit_records SET seq = {} WHERE chain_id = 'node-1' AND seq = {seq}",
                    seq + 1
                ))
                .await;
        }
        database
            .execute_raw(
                "INSERT INTO audit_records (id, chain_id, seq, ts_ms, tenant_id, actor, kind, verdict, body, prev_hash, hash) \
                 SELECT 'forged', chain_id, 5, ts_ms, tenant_id, actor, kind, 'allow', body, hash, hash \
                 FROM audit_records WHERE chain_id = 'node-1' AND seq = 4",
            )
            .await;
        assert_eq!(
            problem(&store, &[key]).await,
            Some(ChainProblem::Modified { seq: 5, id: "forged".to_owned() })
        );
        database.cleanup().await;
    }
}

#[tokio::test]
async fn a_rewritten_chain_fails_its_signed_checkpoint_and_a_forged_chain_is_untrusted() {
    for database in test_databases() {
        let (store, key) = ten_records(&database).await;
        // An attacker with database access rewrites the whole chain consistently, with their own key.
        let rewritten = TestDatabase::sqlite();
        let scratch = rewritten.open().await;
        write(&scratch, "node-1", SigningKey::generate().expect("key"), 10).await;
        database.execute_raw("DELETE FROM audit_records").await;
        for row in scratch.audit_chain_page("node-1", 0, 100).await.expect("rows") {
            store.append_audit(&[row], None).await.expect("copy");
        }
        assert_eq!(problem(&store, &[key]).await, Some(ChainProblem::CheckpointMismatch { seq: 1 }));
        // A whole extra chain signed by an unknown key.
        write(&store, "node-9", SigningKey::generate().expect("key"), 3).await;
        let reports = verified(&store, &[key]).await;
        let forged = reports.iter().find(|r| r.chain_id == "node-9").expect("chain");
        assert!(matches!(forged.problem, Some(ChainProblem::BadCheckpoint { .. })), "{forged:?}");
        database.cleanup().await;
    }
}

#[tokio::test]
async fn when_the_store_fails_the_record_call_fails() {
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    let (log, writer) = start_node1(&store, SigningKey::generate().expect("key"), AuditOptions::default())
        .await
        .expect("start");
    log.record(entry(0)).await.expect("first");
    database.execute_raw("DROP TABLE audit_checkpoints").await;
    database.execute_raw("DROP TABLE audit_records").await;
    assert_eq!(log.record(entry(1)).await, Err(engine::AuditError::Unavailable));
    drop(log);
    writer.finish().await;
}

#[tokio::test]
async fn a_writer_continues_after_records_another_process_appended_to_its_chain() {
    for database in test_databases() {
        let store = database.open().await;
        let (a, b) = (SigningKey::generate().expect("key"), SigningKey::generate().expect("key"));
        let trusted = [a.public_key(), b.public_key()];
        let options = AuditOptions::default();
        let (log, writer) = start_node1(&store, a, options).await.expect("start");
        for n in 0..10 {
            log.record(entry(n)).await.expect("record");
        }
        // Meanwhile another process (a misconfigured twin, a tool) appends to the same chain.
        write(&store, "node-1", b, 5).await;
        for n in 0..10 {
            let receipt = log.record(entry(n)).await.expect("record after the other writer");
            assert!(receipt.seq > 15);
        }
        drop(log);
        writer.finish().await;
        let reports = verified(&store, &trusted).await;
        assert_eq!((reports.len(), reports[0].records, &reports[0].problem), (1, 25, &None), "{reports:?}");
        database.cleanup().await;
    }
}

/// Makes the audit table unreachable (`down`) or reachable again, as an outage would.
async fn outage(database: &TestDatabase, down: bool) {
    let (from, to) =
        if down { ("audit_records", "audit_records_away") } else { ("audit_records_away", "audit_records") };
    database.execute_raw(&format!("ALTER TABLE {from} RENAME TO {to}")).await;
}

#[tokio::test]
async fn with_the_spool_an_outage_loses_nothing_and_the_chain_verifies_after_replay() {
    for database in test_databases() {
        let store = database.open().await;
        let spool = tempfile::tempdir().expect("tempdir");
        let (signer, trusted, again) = restartable_key();
        let options = AuditOptions { spool_dir: Some(spool.path().to_owned()), ..AuditOptions::default() };
        let (log, writer) = start_node1(&store, signer, options.clone()).await.expect("start");
        for n in 0..3 {
            log.record(entry(n)).await.expect("stored");
        }
        outage(&database, true).await;
        for n in 3..7 {
            let receipt = log.record(entry(n)).await.expect("spooled, not refused");
            assert_eq!(receipt.seq, n as i64 + 1, "the chain goes on in the spool");
        }
        let spooled = std::fs::read_to_string(spool.path().join("node-1.jsonl")).expect("spool file");
        assert_eq!(spooled.lines().count(), 4);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode =
                std::fs::metadata(spool.path().join("node-1.jsonl")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // The store comes back: the writer replays the spool by itself while idle.
        outage(&database, false).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.count_audit(&store::AuditQuery::default()).await.expect("count") < 7 {
            assert!(std::time::Instant::now() < deadline, "the spool was not replayed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(std::fs::read_to_string(spool.path().join("node-1.jsonl")).expect("spool"), "", "emptied");
        log.record(entry(7)).await.expect("stored again");

        // An outage that lasts past a restart: the next start replays before writing anything new.
        outage(&database, true).await;
        log.record(entry(8)).await.expect("spooled");
        drop(log);
        writer.finish().await;
        outage(&database, false).await;
        let signer = again();
        let (log, writer) = start_node1(&store, signer, options).await.expect("restart");
        assert_eq!(log.record(entry(9)).await.expect("after replay").seq, 10);
        drop(log);
        writer.finish().await;

        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, &reports[0].problem), (10, &None), "{reports:?}");
        database.cleanup().await;
    }
}

/// The journal in `dir/journal` (created by the writer).
fn journal_options(dir: &std::path::Path) -> AuditOptions {
    let journal = engine::journal::JournalOptions::new(dir.join("journal"), false);
    AuditOptions { journal: Some(journal), ..AuditOptions::default() }
}

/// The segment files in a journal directory (the lock file aside).
fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir.join("journal"))
        .expect("journal dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "journal"))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn with_the_journal_records_are_readable_once_settled_and_the_journal_is_gone_after_a_stop() {
    for database in test_databases() {
        let store = database.open().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = SigningKey::generate().expect("key");
        let trusted = [signer.public_key()];
        let mut options = journal_options(dir.path());
        if let Some(journal) = options.journal.as_mut() {
            // Small segments: the journal closes many and must delete each once it is stored.
            journal.segment_bytes = 4096;
        }
        let (log, writer) = start_node1(&store, signer, options).await.expect("start");
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let log = log.clone();
                tokio::spawn(async move { log.record(entry(n)).await.expect("record") })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.expect("task").seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "every record has its own place in the chain");
        log.settled().await.expect("settled");
        assert_eq!(store.count_audit(&store::AuditQuery::default()).await.expect("count"), 200);
        assert!(segments(dir.path()).len() <= 2, "stored segments are deleted: {:?}", segments(dir.path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("journal")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            for segment in segments(dir.path()) {
                let mode = std::fs::metadata(&segment).expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", segment.display());
            }
        }
        drop(log);
        writer.finish().await;
        assert_eq!(segments(dir.path()), Vec::<std::path::PathBuf>::new(), "a clean stop leaves no segment");
        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, reports[0].unsigned_tail, &reports[0].problem), (200, 0, &None));
        database.cleanup().await;
    }
}

/// The indexer, and the thread that deletes stored segments, run at the lowest priority on threads of their own,
/// never on the request worker's runtime, and both threads are gone once the writer has finished.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_indexer_and_the_segment_remover_run_on_lowest_priority_threads_of_their_own() {
    use engine::journal::JOURNAL_REMOVE_THREAD;
    use store::testing::{LOWEST, settled_threads};
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = SigningKey::generate().expect("key");
    let mut options = journal_options(dir.path());
    if let Some(journal) = options.journal.as_mut() {
        journal.segment_bytes = 4096;
    }
    let (log, writer) = start_node1(&store, signer, options).await.expect("start");
    for thread in [audit::INDEXER_THREAD, JOURNAL_REMOVE_THREAD] {
        let threads = settled_threads(thread, |t| t == [LOWEST]).await;
        assert_eq!(threads, [LOWEST], "one {thread} thread, at the lowest priority");
    }
    for n in 0..50 {
        log.record(entry(n)).await.expect("record");
        if n % 10 == 9 {
            log.settled().await.expect("settled");
        }
    }
    assert_eq!(store.count_audit(&store::AuditQuery::default()).await.expect("count"), 50);
    // The next append releases the segments stored so far.
    log.record(entry(50)).await.expect("record");
    let mut left = segments(dir.path()).len();
    for _ in 0..100 {
        if left <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = segments(dir.path()).len();
    }
    assert!(left <= 2, "stored segments are deleted: {left} left");
    drop(log);
    writer.finish().await;
    assert!(segments(dir.path()).is_empty(), "a clean stop leaves no segment");
    for thread in [audit::INDEXER_THREAD, JOURNAL_REMOVE_THREAD] {
        let threads = settled_threads(thread, <[_]>::is_empty).await;
        assert!(threads.is_empty(), "the {thread} thread ends with the writer: {threads:?}");
    }
    database.cleanup().await;
}

#[tokio::test]
async fn the_indexer_stores_records_together_and_a_waiting_reader_hurries_it() {
    for database in test_databases() {
        let store = database.open().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (signer, trusted, _) = restartable_key();
        let mut options = journal_options(dir.path());
        if let Some(journal) = options.journal.as_mut() {
            // Longer than the test: only a waiting reader, or the writer stopping, gets these stored.
            journal.index_linger = Duration::from_secs(3600);
        }
        let (log, writer) = start_node1(&store, signer, options).await.expect("start");
        for n in 0..10 {
            log.record(entry(n)).await.expect("record");
        }
        assert!(
            store.audit_chain_head("node-1").await.expect("head").is_none(),
            "acknowledged one by one, held back to be stored together"
        );
        log.settled().await.expect("a reader does not wait for the linger");
        let head = store.audit_chain_head("node-1").await.expect("head").expect("stored");
        assert_eq!(head.seq, 10);
        log.record(entry(10)).await.expect("record");
        drop(log);
        writer.finish().await;
        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, &reports[0].problem), (11, &None), "the stop stores the rest");
        database.cleanup().await;
    }
}

#[tokio::test]
async fn records_journaled_while_the_store_cannot_take_them_are_stored_at_the_next_start() {
    for database in test_databases() {
        let store = database.open().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (signer, trusted, again) = restartable_key();
        let (log, writer) = start_node1(&store, signer, journal_options(dir.path())).await.expect("start");
        let mut receipts = vec![log.record(entry(0)).await.expect("stored")];
        log.settled().await.expect("settled");
        outage(&database, true).await;
        for n in 1..6 {
            receipts.push(log.record(entry(n)).await.expect("journaled, not refused"));
        }
        // The writer stops while the store is still down: the records stay in the journal.
        drop(log);
        writer.finish().await;
        let left = segments(dir.path());
        assert_eq!(left.len(), 1, "the journal keeps what the store did not take");
        // A write that was cut off by the crash was never acknowledged: it is dropped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&left[0])
            .and_then(|mut file| std::io::Write::write_all(&mut file, b"{\"r\":{\"id\":\"cut-o"))
            .expect("torn tail");
        outage(&database, false).await;
        assert_eq!(store.count_audit(&store::AuditQuery::default()).await.expect("count"), 1);

        let signer = again();
        let (log, writer) = start_node1(&store, signer, journal_options(dir.path()))
            .await
            .expect("restart stores the journal first");
        assert_eq!(store.count_audit(&store::AuditQuery::default()).await.expect("count"), 6);
        for receipt in &receipts {
            let row = &store.audit_chain_page("node-1", receipt.seq - 1, 1).await.expect("page")[0];
            assert_eq!(
                (&row.id, row.hash.as_slice()),
                (&receipt.id, receipt.hash.as_slice()),
                "as acknowledged"
            );
        }
        assert_eq!(log.record(entry(6)).await.expect("after recovery").seq, 7);
        drop(log);
        writer.finish().await;
        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, &reports[0].problem), (7, &None), "{reports:?}");
        database.cleanup().await;
    }
}

#[tokio::test]
async fn a_damaged_or_foreign_journal_stops_the_start_and_a_second_writer_is_refused() {
    let database = TestDatabase::sqlite();
    let store = database.open().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let start = || start_node1(&store, SigningKey::generate().expect("key"), journal_options(dir.path()));
    let (log, writer) = start().await.expect("start");
    // One writer per journal: a second process on the same data directory must not fork the chain.
    let error = start().await.expect_err("locked");
    assert!(error.to_string().contains("in use by another process"), "{error}");

    // Leave a journal behind (the store is away), then damage a line in its middle.
    outage(&database, true).await;
    for n in 0..3 {
        log.record(entry(n)).await.expect("journaled");
    }
    drop(log);
    writer.finish().await;
    outage(&database, false).await;
    let segment = segments(dir.path()).pop().expect("segment");
    let text = std::fs::read_to_string(&segment).expect("read");
    let line = text.lines().position(|l| l.contains("\"verdict\":\"deny\"")).expect("a deny record") + 1;
    assert!(line < text.lines().count(), "a line in the middle");
    std::fs::write(&segment, text.replacen("\"verdict\":\"deny\"", "\"verdict\":\"allow\"", 1))
        .expect("write");
    let error = start().await.expect_err("damaged");
    assert!(error.to_string().contains(&format!("damaged at line {line}:")), "{error}");
    assert_eq!(
        store.count_audit(&store::AuditQuery::default()).await.expect("count"),
        0,
        "nothing half-stored"
    );

    // A journal that does not continue the store's chain (the store moved on without it).
    std::fs::write(&segment, &text).expect("restore");
    write(&store, "node-1", SigningKey::generate().expect("key"), 2).await;
    let error = start().await.expect_err("diverged");
    assert!(error.to_string().contains("does not continue the store's chain"), "{error}");
    assert_eq!(segments(dir.path()), vec![segment], "kept for an operator");
    database.cleanup().await;
}

#[tokio::test]
async fn with_power_loss_durability_a_chain_forked_in_the_store_stops_the_journal_closed() {
    for database in test_databases() {
        let store = database.open().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = journal_options(dir.path());
        if let Some(journal) = options.journal.as_mut() {
            journal.sync = true;
        }
        let start =
            |options: AuditOptions| start_node1(&store, SigningKey::generate().expect("key"), options);
        let (log, writer) = start(options.clone()).await.expect("start");
        for n in 0..3 {
            assert_eq!(log.record(entry(n)).await.expect("journaled and flushed").seq, n as i64 + 1);
        }
        log.settled().await.expect("stored");
        // Another process writes this chain behind the writer's back: the store no longer takes the journal.
        write(&store, "node-1", SigningKey::generate().expect("key"), 2).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match log.record(entry(9)).await {
                Err(engine::AuditError::Unavailable) => break,
                Ok(_) => assert!(std::time::Instant::now() < deadline, "the writer kept acknowledging"),
                Err(other) => panic!("unexpected {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            log.settled().await,
            Err(engine::AuditError::Closed),
            "readers are told, not kept waiting"
        );
        drop(log);
        writer.finish().await;
        // What was acknowledged stays in the journal, and the next start refuses to fork the chain.
        let error = start(options).await.expect_err("diverged");
        assert!(error.to_string().contains("does not continue the store's chain"), "{error}");
        database.cleanup().await;
    }
}

#[tokio::test]
async fn a_spool_left_by_an_earlier_version_is_replayed_before_the_journal_takes_over() {
    for database in test_databases() {
        let store = database.open().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (signer, trusted, again) = restartable_key();
        let spool = AuditOptions { spool_dir: Some(dir.path().join("spool")), ..AuditOptions::default() };
        let (log, writer) = start_node1(&store, signer, spool.clone()).await.expect("start");
        outage(&database, true).await;
        for n in 0..3 {
            log.record(entry(n)).await.expect("spooled");
        }
        drop(log);
        writer.finish().await;
        outage(&database, false).await;

        let both = AuditOptions { journal: journal_options(dir.path()).journal, ..spool };
        let signer = again();
        let (log, writer) = start_node1(&store, signer, both).await.expect("start with the journal");
        assert_eq!(store.count_audit(&store::AuditQuery::default()).await.expect("count"), 3, "replayed");
        assert_eq!(log.record(entry(3)).await.expect("journaled").seq, 4);
        drop(log);
        writer.finish().await;
        let spooled = std::fs::read_to_string(dir.path().join("spool").join("node-1.jsonl")).expect("spool");
        assert_eq!(spooled, "", "the spool is empty and takes nothing new");
        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, &reports[0].problem), (4, &None), "{reports:?}");
        database.cleanup().await;
    }
}

/// With a journal the writer appends what is queued when it runs: a record is not held back while tasks that
/// were not ready yet come to add theirs (each such wait was a turn of every task ready to run).
#[tokio::test]
async fn with_the_journal_a_record_is_not_held_back_for_records_still_to_come() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for database in test_databases() {
        let store = database.open().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = SigningKey::generate().expect("key");
        let (log, writer) = start_node1(&store, signer, journal_options(dir.path())).await.expect("start");
        log.record(entry(0)).await.expect("first batch");
        // One record now, and eight more from tasks that get to theirs after 1..=8 turns of the runtime.
        let issued = Arc::new(AtomicUsize::new(0));
        let now = tokio::spawn({
            let (log, issued) = (log.clone(), issued.clone());
            async move {
                log.record(entry(1)).await.expect("record");
                issued.load(Ordering::SeqCst)
            }
        });
        let later: Vec<_> = (1..=8)
            .map(|turns| {
                let (log, issued) = (log.clone(), issued.clone());
                tokio::spawn(async move {
                    for _ in 0..turns {
                        back_of_the_queue().await;
                    }
                    issued.fetch_add(1, Ordering::SeqCst);
                    log.record(entry(1 + turns)).await.expect("record");
                })
            })
            .collect();
        let before_acknowledged = now.await.expect("task");
        for task in later {
            task.await.expect("task");
        }
        assert!(before_acknowledged <= 3, "{before_acknowledged} of the 8 later records were waited for");
        drop(log);
        writer.finish().await;
        database.cleanup().await;
    }
}

/// Puts the task at the back of the runtime's queue at once, the way a task woken by I/O joins it (unlike
/// `yield_now`, whose task waits until the runtime next looks for I/O).
async fn back_of_the_queue() {
    let mut queued = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut queued, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}
