use store::testing::with_each_backend;
use store::{ConnectorSecretRow, DataKeyRow, HorizonRow, StoreErrorKind, SubjectRow};
use types::UnixMillis;

fn data_key(id: &str, at: i64) -> DataKeyRow {
    DataKeyRow {
        id: id.to_owned(),
        master_key_id: "mk-1".to_owned(),
        wrapped: vec![1, 2, 3],
        created_at: UnixMillis(at),
        retired_at: None,
    }
}

#[tokio::test]
async fn data_keys_rewrap_only_from_the_expected_master_and_retire() {
    with_each_backend(|store| async move {
        store.insert_data_key(&data_key("dk-a", 1)).await.expect("insert");
        store.insert_data_key(&data_key("dk-b", 2)).await.expect("insert");
        let error = store.insert_data_key(&data_key("dk-a", 3)).await.expect_err("dup");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);

        assert!(store.rewrap_data_key("dk-a", "mk-1", "mk-2", &[9, 9]).await.expect("rewrap"));
        assert!(!store.rewrap_data_key("dk-a", "mk-1", "mk-3", &[7]).await.expect("stale"), "lost race");
        assert_eq!(store.retire_data_keys("dk-b", UnixMillis(10)).await.expect("retire"), 1);
        assert_eq!(store.retire_data_keys("dk-b", UnixMillis(11)).await.expect("retire"), 0, "idempotent");

        let keys = store.data_keys().await.expect("list");
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].id.as_str(), keys[0].master_key_id.as_str()), ("dk-a", "mk-2"));
        assert_eq!(keys[0].wrapped, vec![9, 9]);
        assert_eq!(keys[0].retired_at, Some(UnixMillis(10)));
        assert_eq!(keys[1], data_key("dk-b", 2));
    })
    .await;
}

fn subject(id: &str, lookup: &str) -> SubjectRow {
    SubjectRow {
        subject_id: id.to_owned(),
        tenant_id: "acme".to_owned(),
        lookup: Some(lookup.to_owned()),
        sealed_key: Some(vec![1; 40]),
        sealed_profile: Some(vec![2; 40]),
        restricted: false,
        created_at: UnixMillis(1),
        updated_at: UnixMillis(1),
        erased_at: None,
        purge_after: None,
    }
}

#[tokio::test]
async fn subjects_update_erase_and_purge() {
    with_each_backend(|store| async move {
        let written = subject("s1", "l1");
        store.insert_subject(&written).await.expect("insert");
        let error = store.insert_subject(&subject("s2", "l1")).await.expect_err("dup lookup");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        assert_eq!(store.subject_by_lookup("l1").await.expect("get"), Some(written.clone()));
        assert_eq!(store.subject_by_id("s1").await.expect("get"), Some(written));

        assert!(store.update_subject("s1", Some(&[3; 8]), Some(true), UnixMillis(5)).await.expect("update"));
        let updated = store.subject_by_id("s1").await.expect("get").expect("there");
        assert_eq!((updated.sealed_profile, updated.restricted), (Some(vec![3; 8]), true));
        assert_eq!(updated.sealed_key, Some(vec![1; 40]), "the key is untouched");
        assert!(store.update_subject("s1", None, Some(false), UnixMillis(6)).await.expect("update"));
        assert!(!store.subject_by_id("s1").await.expect("get").expect("there").restricted);

        assert!(store.erase_subject("s1", UnixMillis(100), UnixMillis(200)).await.expect("erase"));
        assert!(!store.erase_subject("s1", UnixMillis(101), UnixMillis(300)).await.expect("again"), "once");
        let tomb = store.subject_by_id("s1").await.expect("get").expect("tombstone");
        assert_eq!((tomb.lookup, tomb.sealed_key, tomb.sealed_profile), (None, None, None));
        assert_eq!((tomb.erased_at, tomb.purge_after), (Some(UnixMillis(100)), Some(UnixMillis(200))));
        assert!(!store.update_subject("s1", Some(&[4]), None, UnixMillis(150)).await.expect("update"));
        assert_eq!(store.subject_by_lookup("l1").await.expect("get"), None);
        store.insert_subject(&subject("s3", "l1")).await.expect("the lookup is free again");

        assert_eq!(store.purge_erased_subjects(UnixMillis(199)).await.expect("purge"), 0);
        assert_eq!(store.purge_erased_subjects(UnixMillis(200)).await.expect("purge"), 1);
        assert_eq!(store.subject_by_id("s1").await.expect("get"), None);
        assert!(store.subject_by_id("s3").await.expect("get").is_some(), "live subjects stay");
    })
    .await;
}

fn secret(tenant: &str, connector: &str, sealed: u8, at: i64) -> ConnectorSecretRow {
    ConnectorSecretRow {
        tenant_id: tenant.to_owned(),
        connector: connector.to_owned(),
        sealed: vec![sealed; 30],
        created_by: "admin".to_owned(),
        created_at: UnixMillis(at),
        updated_at: UnixMillis(at),
    }
}

#[tokio::test]
async fn connector_secrets_are_one_per_tenant_and_connector() {
    with_each_backend(|store| async move {
        store.put_connector_secret(&secret("acme", "snowflake", 1, 10)).await.expect("put");
        store.put_connector_secret(&secret("acme", "slack", 2, 11)).await.expect("put");
        store.put_connector_secret(&secret("globex", "snowflake", 3, 12)).await.expect("put");
        let mut replaced = secret("acme", "snowflake", 4, 20);
        replaced.created_by = "someone-else".to_owned();
        store.put_connector_secret(&replaced).await.expect("replace");

        let got = store.connector_secret("acme", "snowflake").await.expect("get").expect("there");
        assert_eq!(got.sealed, vec![4; 30]);
        assert_eq!((got.created_at, got.updated_at), (UnixMillis(10), UnixMillis(20)));
        assert_eq!(got.created_by, "admin", "creation stays");
        let names: Vec<String> = store
            .list_connector_secrets("acme")
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.connector)
            .collect();
        assert_eq!(names, ["slack", "snowflake"]);
        assert!(store.delete_connector_secret("acme", "slack").await.expect("delete"));
        assert!(!store.delete_connector_secret("acme", "slack").await.expect("delete"));
        assert_eq!(store.connector_secret("globex", "slack").await.expect("get"), None);
        assert_eq!(store.list_connector_secrets("globex").await.expect("list").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn pruning_deletes_a_prefix_and_the_chain_continues_from_its_horizon() {
    use store::AuditRow;
    with_each_backend(|store| async move {
        let rows: Vec<AuditRow> = (1..=5)
            .map(|seq| AuditRow {
                id: format!("r{seq}"),
                chain_id: "node-a".to_owned(),
                seq,
                ts: UnixMillis(seq * 100),
                tenant_id: "acme".to_owned(),
                actor: "svc".to_owned(),
                kind: "decision".to_owned(),
                verdict: "allow".to_owned(),
                body: "{}".to_owned(),
                prev_hash: vec![seq as u8 - 1; 32],
                hash: vec![seq as u8; 32],
            })
            .collect();
        store.append_audit(&rows, None).await.expect("append");

        assert_eq!(store.audit_prune_point("node-a", UnixMillis(100), 10).await.expect("point"), None);
        let point =
            store.audit_prune_point("node-a", UnixMillis(350), 10).await.expect("point").expect("some");
        assert_eq!((point.seq, point.hash), (3, vec![3; 32]));
        let capped =
            store.audit_prune_point("node-a", UnixMillis(350), 2).await.expect("point").expect("some");
        assert_eq!(capped.seq, 2, "at most max_records per batch");

        let horizon = |seq: i64| HorizonRow {
            chain_id: "node-a".to_owned(),
            through_seq: seq,
            through_hash: vec![seq as u8; 32],
            ts: UnixMillis(1_000),
            public_key: "pk".to_owned(),
            signature: "sig".to_owned(),
        };
        assert_eq!(store.prune_audit(&horizon(3)).await.expect("prune"), 3);
        assert_eq!(store.audit_horizon("node-a").await.expect("horizon"), Some(horizon(3)));
        let left = store.audit_chain_page("node-a", 0, 100).await.expect("page");
        assert_eq!(left.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);

        assert_eq!(
            store.audit_prune_point("node-a", UnixMillis(10_000), 10).await.expect("p").map(|p| p.seq),
            Some(5)
        );
        assert_eq!(store.prune_audit(&horizon(5)).await.expect("prune"), 2);
        assert_eq!(
            store.audit_chains().await.expect("chains"),
            ["node-a"],
            "a fully pruned chain is still known"
        );
        let head = store.audit_chain_head("node-a").await.expect("head").expect("from the horizon");
        assert_eq!((head.seq, head.hash), (5, vec![5; 32]));
    })
    .await;
}
