use store::testing::with_each_backend;
use store::{AuditQuery, AuditRow, ChainHead, StoreErrorKind};
use types::UnixMillis;

pub(crate) fn row(chain: &str, seq: i64, prev: &[u8]) -> AuditRow {
    AuditRow {
        id: format!("{chain}-{seq}"),
        chain_id: chain.to_owned(),
        seq,
        ts: UnixMillis(1_700_000_000_000 + seq * 1_000),
        tenant_id: if seq % 2 == 0 { "acme".to_owned() } else { "globex".to_owned() },
        actor: "svc-trip-planner".to_owned(),
        kind: if seq % 3 == 0 { "llm_call".to_owned() } else { "pre_check".to_owned() },
        verdict: if seq % 5 == 0 { "deny".to_owned() } else { "allow".to_owned() },
        body: format!("{{\"seq\":{seq}}}"),
        prev_hash: prev.to_vec(),
        hash: vec![u8::try_from(seq % 256).unwrap_or(0); 32],
    }
}

fn rows(chain: &str, count: i64) -> Vec<AuditRow> {
    (1..=count).map(|seq| row(chain, seq, &[0; 32])).collect()
}

#[tokio::test]
async fn appended_rows_read_back_exactly() {
    with_each_backend(|store| async move {
        let written = rows("node-1", 3);
        store.append_audit(&written, None).await.expect("append");
        let mut read =
            store.search_audit(&AuditQuery { limit: 10, ..AuditQuery::default() }).await.expect("search");
        read.reverse();
        assert_eq!(read, written);
    })
    .await;
}

/// A batch larger than one INSERT statement carries (256 + 256 + 88 rows) is written whole and in order.
#[tokio::test]
async fn a_large_batch_is_written_whole_and_in_order() {
    with_each_backend(|store| async move {
        let written = rows("node-1", 600);
        store.append_audit(&written, None).await.expect("append");
        let mut read =
            store.search_audit(&AuditQuery { limit: 1000, ..AuditQuery::default() }).await.expect("search");
        read.reverse();
        assert_eq!(read, written);
        let head = store.audit_chain_head("node-1").await.expect("head");
        assert_eq!(head.map(|h| h.seq), Some(600));
    })
    .await;
}

#[tokio::test]
async fn chain_head_is_the_highest_seq_of_that_chain() {
    with_each_backend(|store| async move {
        assert_eq!(store.audit_chain_head("node-1").await.expect("head"), None);
        store.append_audit(&rows("node-1", 4), None).await.expect("append");
        store.append_audit(&rows("node-2", 2), None).await.expect("append");
        let head = store.audit_chain_head("node-1").await.expect("head");
        assert_eq!(head, Some(ChainHead { seq: 4, hash: vec![4; 32] }));
        let head = store.audit_chain_head("node-2").await.expect("head");
        assert_eq!(head.map(|h| h.seq), Some(2));
    })
    .await;
}

/// Whether the batch fits one INSERT statement or spans several (the duplicate in a later one), a conflict
/// writes none of it.
#[tokio::test]
async fn a_duplicate_seq_is_a_conflict_and_the_batch_writes_nothing() {
    with_each_backend(|store| async move {
        store.append_audit(&rows("node-1", 2), None).await.expect("append");
        let batch = vec![row("node-1", 3, &[]), row("node-1", 2, &[])];
        let error = store.append_audit(&batch, None).await.expect_err("duplicate");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        store.append_audit(&rows("node-2", 1), None).await.expect("append");
        let mut batch: Vec<AuditRow> = (2..=300).map(|seq| row("node-2", seq, &[])).collect();
        batch.push(row("node-2", 1, &[]));
        let error = store.append_audit(&batch, None).await.expect_err("duplicate");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        assert_eq!(store.count_audit(&AuditQuery::default()).await.expect("count"), 3);
        assert_eq!(store.audit_chain_head("node-2").await.expect("head").map(|h| h.seq), Some(1));
        assert_eq!(store.audit_chain_head("node-1").await.expect("head").map(|h| h.seq), Some(2));
    })
    .await;
}

#[tokio::test]
async fn search_filters_narrow_and_page() {
    with_each_backend(|store| async move {
        store.append_audit(&rows("node-1", 30), None).await.expect("append");
        let check = |query: AuditQuery, expected: &'static [i64]| {
            let store = store.clone();
            async move {
                let count = store.count_audit(&query).await.expect("count");
                let found: Vec<i64> =
                    store.search_audit(&query).await.expect("search").iter().map(|r| r.seq).collect();
                assert_eq!(found, expected, "{query:?}");
                if query.offset == 0 && expected.len() < query.limit as usize {
                    assert_eq!(count, expected.len() as u64, "{query:?}");
                }
            }
        };
        let q = |f: fn(&mut AuditQuery)| {
            let mut query = AuditQuery { limit: 100, ..AuditQuery::default() };
            f(&mut query);
            query
        };
        check(q(|q| q.verdict = Some("deny".into())), &[30, 25, 20, 15, 10, 5]).await;
        check(
            q(|q| {
                q.verdict = Some("deny".into());
                q.tenant_id = Some("acme".into())
            }),
            &[30, 20, 10],
        )
        .await;
        check(
            q(|q| {
                q.kind = Some("llm_call".into());
                q.tenant_id = Some("globex".into())
            }),
            &[27, 21, 15, 9, 3],
        )
        .await;
        check(
            q(|q| {
                q.since = Some(UnixMillis(1_700_000_010_000));
                q.until = Some(UnixMillis(1_700_000_013_000))
            }),
            &[12, 11, 10],
        )
        .await;
        check(
            q(|q| {
                q.limit = 3;
                q.offset = 2
            }),
            &[28, 27, 26],
        )
        .await;
        check(q(|q| q.tenant_id = Some("nobody".into())), &[]).await;
    })
    .await;
}

#[tokio::test]
async fn search_limit_is_clamped_to_at_least_one() {
    with_each_backend(|store| async move {
        store.append_audit(&rows("node-1", 3), None).await.expect("append");
        let found =
            store.search_audit(&AuditQuery { limit: 0, ..AuditQuery::default() }).await.expect("search");
        assert_eq!(found.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn empty_append_is_a_no_op() {
    with_each_backend(|store| async move {
        store.append_audit(&[], None).await.expect("append nothing");
        assert_eq!(store.count_audit(&AuditQuery::default()).await.expect("count"), 0);
    })
    .await;
}

fn checkpoint(chain: &str, seq: i64) -> store::CheckpointRow {
    store::CheckpointRow {
        chain_id: chain.to_owned(),
        seq,
        hash: vec![7; 32],
        ts: UnixMillis(5),
        public_key: "pk".to_owned(),
        signature: "sig".to_owned(),
    }
}

#[tokio::test]
async fn chains_are_listed_and_read_in_seq_order_by_page() {
    with_each_backend(|store| async move {
        store.append_audit(&rows("node-b", 5), None).await.expect("append");
        store.append_audit(&rows("node-a", 2), None).await.expect("append");
        assert_eq!(store.audit_chains().await.expect("chains"), ["node-a", "node-b"]);
        let page: Vec<i64> =
            store.audit_chain_page("node-b", 1, 3).await.expect("page").iter().map(|r| r.seq).collect();
        assert_eq!(page, [2, 3, 4]);
        assert!(store.audit_chain_page("node-b", 5, 10).await.expect("page").is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_checkpoint_is_written_with_its_records_or_not_at_all() {
    with_each_backend(|store| async move {
        store.append_audit(&rows("node-1", 2), Some(&checkpoint("node-1", 2))).await.expect("append");
        assert_eq!(store.audit_checkpoints("node-1").await.expect("checkpoints"), [checkpoint("node-1", 2)]);
        // A failing batch (duplicate seq) takes its checkpoint down with it.
        let error =
            store.append_audit(&rows("node-1", 1), Some(&checkpoint("node-1", 9))).await.expect_err("dup");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        assert_eq!(store.audit_checkpoints("node-1").await.expect("checkpoints").len(), 1);
        store.append_checkpoint(&checkpoint("node-1", 3)).await.expect("checkpoint alone");
        let seqs: Vec<i64> =
            store.audit_checkpoints("node-1").await.expect("list").iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [2, 3]);
    })
    .await;
}

/// Writes never checkpoint the SQLite WAL themselves (that stalled the insert that crossed SQLite's threshold):
/// the store's own checkpointing connection moves the records into the database file soon after, and a closed
/// store leaves no WAL behind.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("axonflow.db");
    let store =
        store::open(&path.to_string_lossy(), &store::OpenOptions::default()).await.expect("open sqlite");
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let written: Vec<AuditRow> =
        (1..=2000).map(|seq| AuditRow { body: "x".repeat(400), ..row("node-1", seq, &[0; 32]) }).collect();
    store.append_audit(&written, None).await.expect("append");
    // About 1 MB of records: well below SQLite's automatic threshold (1,000 pages), so only the store's
    // checkpoints can bring them into the database file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 500_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint within 10 s: {} -> {} bytes",
            before,
            size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.close().await;
    let wal = std::fs::metadata(dir.path().join("axonflow.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "a closed store leaves its records in the database file, not the WAL");
}
