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
    let (log, writer) = AuditLog::start(
        store.clone(),
        "node-1".to_owned(),
        SigningKey::generate().expect("key"),
        Arc::new(SystemClock),
        AuditOptions::default(),
    )
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
        let (log, writer) =
            AuditLog::start(store.clone(), "node-1".to_owned(), a, Arc::new(SystemClock), options)
                .await
                .expect("start");
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
        let signer = SigningKey::generate().expect("key");
        let trusted = [signer.public_key()];
        let pem = signer.to_pkcs8_pem().expect("pem");
        let options = AuditOptions { spool_dir: Some(spool.path().to_owned()), ..AuditOptions::default() };
        let (log, writer) = AuditLog::start(
            store.clone(),
            "node-1".to_owned(),
            signer,
            Arc::new(SystemClock),
            options.clone(),
        )
        .await
        .expect("start");
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
        let signer = SigningKey::from_pkcs8_pem(pem.expose()).expect("key");
        let (log, writer) =
            AuditLog::start(store.clone(), "node-1".to_owned(), signer, Arc::new(SystemClock), options)
                .await
                .expect("restart");
        assert_eq!(log.record(entry(9)).await.expect("after replay").seq, 10);
        drop(log);
        writer.finish().await;

        let reports = verified(&store, &trusted).await;
        assert_eq!((reports[0].records, &reports[0].problem), (10, &None), "{reports:?}");
        database.cleanup().await;
    }
}
