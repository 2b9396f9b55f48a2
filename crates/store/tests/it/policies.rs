use store::PolicyVersionRow;
use store::testing::with_each_backend;
use types::UnixMillis;

fn version(id: &str, tenant: &str, at: i64) -> PolicyVersionRow {
    PolicyVersionRow {
        id: id.to_owned(),
        tenant_id: tenant.to_owned(),
        author: "ops".to_owned(),
        created_at: UnixMillis(at),
        content_hash: format!("hash-{id}"),
        files: "{\"main.rego\": \"package x\"}".to_owned(),
        summary: "1 file".to_owned(),
        active: false,
    }
}

#[tokio::test]
async fn one_version_per_tenant_is_active_and_activation_moves_it() {
    with_each_backend(|store| async move {
        store.insert_policy_version(&version("v1", "acme", 1)).await.expect("insert");
        store.insert_policy_version(&version("v2", "acme", 2)).await.expect("insert");
        store.insert_policy_version(&version("g1", "globex", 3)).await.expect("insert");
        let active = |rows: Vec<PolicyVersionRow>| {
            rows.into_iter().filter(|r| r.active).map(|r| r.id).collect::<Vec<_>>()
        };
        assert!(store.activate_policy_version("acme", "v2").await.expect("activate"));
        assert!(store.activate_policy_version("globex", "g1").await.expect("activate"));
        assert_eq!(active(store.list_policy_versions("acme").await.expect("list")), ["v2"]);
        assert!(store.activate_policy_version("acme", "v1").await.expect("rollback"));
        assert_eq!(active(store.list_policy_versions("acme").await.expect("list")), ["v1"]);
        assert_eq!(
            active(store.list_policy_versions("globex").await.expect("list")),
            ["g1"],
            "other tenants untouched"
        );
        assert!(!store.activate_policy_version("acme", "g1").await.expect("other tenant's version"));
        assert_eq!(active(store.list_policy_versions("acme").await.expect("list")), ["v1"]);
        let ids: Vec<String> =
            store.list_policy_versions("acme").await.expect("list").into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["v2", "v1"], "newest first");
        assert_eq!(
            store.policy_version("v2").await.expect("get").map(|r| r.content_hash),
            Some("hash-v2".to_owned())
        );
    })
    .await;
}

#[tokio::test]
async fn the_active_version_of_every_tenant_is_listed() {
    with_each_backend(|store| async move {
        for (id, tenant) in [("v1", "system"), ("v2", "system"), ("a1", "acme"), ("g1", "globex")] {
            let row = store::PolicyVersionRow {
                id: id.to_owned(),
                tenant_id: tenant.to_owned(),
                author: "admin".to_owned(),
                created_at: types::UnixMillis(1),
                content_hash: "h".to_owned(),
                files: "{}".to_owned(),
                summary: "s".to_owned(),
                active: false,
            };
            store.insert_policy_version(&row).await.expect("insert");
        }
        assert!(store.active_policy_versions().await.expect("list").is_empty());
        for (tenant, id) in [("system", "v1"), ("acme", "a1"), ("system", "v2")] {
            assert!(store.activate_policy_version(tenant, id).await.expect("activate"));
        }
        let active: Vec<(String, String)> = store
            .active_policy_versions()
            .await
            .expect("list")
            .into_iter()
            .map(|r| (r.tenant_id, r.id))
            .collect();
        assert_eq!(active, [("acme".to_owned(), "a1".to_owned()), ("system".to_owned(), "v2".to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn activation_succeeds_while_audit_records_are_committed_alongside() {
    with_each_backend(|store| async move {
        store.insert_policy_version(&version("v1", "acme", 1)).await.expect("insert");
        store.insert_policy_version(&version("v2", "acme", 2)).await.expect("insert");
        // The audit indexer commits on its own connection at any moment: a read-then-write transaction that
        // began deferred would fail whenever one of its commits fell between the read and the write.
        let appender = {
            let store = store.clone();
            tokio::spawn(async move {
                for seq in 1..=400 {
                    let row = crate::audit::row("node-1", seq, &[0; 32]);
                    store.append_audit(std::slice::from_ref(&row), None).await.expect("append");
                    tokio::task::yield_now().await;
                }
            })
        };
        for n in 0..200 {
            let id = if n % 2 == 0 { "v1" } else { "v2" };
            assert!(store.activate_policy_version("acme", id).await.expect("activate while audit commits"));
        }
        appender.await.expect("appender");
    })
    .await;
}
