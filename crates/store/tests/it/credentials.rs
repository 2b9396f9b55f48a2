use store::testing::with_each_backend;
use store::{CredentialRow, StoreErrorKind};
use types::UnixMillis;

fn row(key_id: &str, tenant: &str) -> CredentialRow {
    CredentialRow {
        key_id: key_id.to_owned(),
        fingerprint: format!("fp-{key_id}"),
        tenant_id: tenant.to_owned(),
        kind: "service".to_owned(),
        service_name: Some("trip-planner".to_owned()),
        service_type: Some("backend-service".to_owned()),
        tier: "PLUS".to_owned(),
        environment: "prod".to_owned(),
        permissions: "query mcp:amadeus:search_flights".to_owned(),
        issued_at: UnixMillis(1_000),
        expires_at: UnixMillis(2_000),
        revoked_at: None,
        revocation_reason: None,
        replaced_by: None,
        created_at: UnixMillis(key_id.len() as i64),
    }
}

#[tokio::test]
async fn credentials_are_found_by_fingerprint_and_key_id() {
    with_each_backend(|store| async move {
        let written = row("k1", "acme");
        store.insert_credential(&written).await.expect("insert");
        assert_eq!(store.credential_by_fingerprint("fp-k1").await.expect("get"), Some(written.clone()));
        assert_eq!(store.credential_by_key_id("k1").await.expect("get"), Some(written));
        assert_eq!(store.credential_by_fingerprint("fp-nope").await.expect("get"), None);
    })
    .await;
}

#[tokio::test]
async fn duplicate_key_ids_and_fingerprints_conflict() {
    with_each_backend(|store| async move {
        store.insert_credential(&row("k1", "acme")).await.expect("insert");
        let error = store.insert_credential(&row("k1", "acme")).await.expect_err("dup id");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        let mut same_fingerprint = row("k2", "acme");
        same_fingerprint.fingerprint = "fp-k1".to_owned();
        let error = store.insert_credential(&same_fingerprint).await.expect_err("dup fingerprint");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
    })
    .await;
}

#[tokio::test]
async fn listing_is_per_tenant() {
    with_each_backend(|store| async move {
        store.insert_credential(&row("a1", "acme")).await.expect("insert");
        store.insert_credential(&row("g1", "globex")).await.expect("insert");
        store.insert_credential(&row("acme2", "acme")).await.expect("insert");
        let ids = |rows: Vec<CredentialRow>| rows.into_iter().map(|r| r.key_id).collect::<Vec<_>>();
        assert_eq!(ids(store.list_credentials(Some("acme")).await.expect("list")), ["a1", "acme2"]);
        assert_eq!(ids(store.list_credentials(Some("globex")).await.expect("list")), ["g1"]);
        assert_eq!(store.list_credentials(None).await.expect("list").len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_revocation_can_move_earlier_but_never_later() {
    with_each_backend(|store| async move {
        store.insert_credential(&row("k1", "acme")).await.expect("insert");
        assert!(
            store.revoke_credential("k1", UnixMillis(5_000), "rotated", Some("k2")).await.expect("schedule")
        );
        let found = store.credential_by_key_id("k1").await.expect("get").expect("exists");
        assert_eq!((found.revoked_at, found.replaced_by.as_deref()), (Some(UnixMillis(5_000)), Some("k2")));
        store.revoke_credential("k1", UnixMillis(9_000), "later", None).await.expect("later is ignored");
        let found = store.credential_by_key_id("k1").await.expect("get").expect("exists");
        assert_eq!(found.revoked_at, Some(UnixMillis(5_000)));
        store.revoke_credential("k1", UnixMillis(3_000), "compromised", None).await.expect("earlier");
        let found = store.credential_by_key_id("k1").await.expect("get").expect("exists");
        assert_eq!(found.revoked_at, Some(UnixMillis(3_000)));
        assert_eq!(found.revocation_reason.as_deref(), Some("compromised"));
        assert_eq!(found.replaced_by.as_deref(), Some("k2"));
        assert!(!store.revoke_credential("nope", UnixMillis(1), "x", None).await.expect("missing"));
    })
    .await;
}
