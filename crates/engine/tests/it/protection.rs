//! Envelope encryption, data subjects (GDPR rights), connector secrets and retention, on both backends.

use std::sync::Arc;
use std::time::Duration;

use crypto::{KeyRing, MasterKeyProvider};
use engine::audit;
use engine::{
    AuditLog, AuditOptions, AuditWriter, ConnectorSecrets, DELETED_USER, Principal, Retention,
    RetentionPolicy, RetentionProfile, SubjectError, SubjectOptions, Subjects, Vault,
};
use license::SigningKey;
use store::testing::test_databases;
use store::{AuditQuery, Store};
use types::{Clock, ManualClock, Secret, UnixMillis};

struct Fixture {
    store: Arc<dyn Store>,
    ring_path: std::path::PathBuf,
    vault: Arc<Vault>,
    subjects: Arc<Subjects>,
    audit: AuditLog,
    writer: AuditWriter,
    signer: SigningKey,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

async fn fixture(store: Arc<dyn Store>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring_path = dir.path().join("master.keys");
    let ring: Arc<dyn MasterKeyProvider> = Arc::new(KeyRing::open_or_create(&ring_path).expect("ring"));
    let clock = Arc::new(ManualClock::new(UnixMillis(1_800_000_000_000)));
    let vault = Arc::new(Vault::load(store.clone(), ring, clock.clone()).await.expect("vault"));
    let signer = SigningKey::generate().expect("key");
    let signer_copy = SigningKey::from_pkcs8_pem(signer.to_pkcs8_pem().expect("pem").expose()).expect("key");
    let options = AuditOptions { checkpoint_interval: Duration::ZERO, ..AuditOptions::default() };
    let (audit, writer) =
        AuditLog::start(store.clone(), "node-1".to_owned(), signer_copy, clock.clone(), options)
            .await
            .expect("audit");
    let subjects = Arc::new(Subjects::new(
        store.clone(),
        vault.clone(),
        audit.clone(),
        clock.clone(),
        SubjectOptions::default(),
    ));
    Fixture { store, ring_path, vault, subjects, audit, writer, signer, clock, _dir: dir }
}

impl Fixture {
    /// Retention on this fixture's store, audit trail, subjects and clock, signing with its audit key.
    fn retention(&self, policy: RetentionPolicy) -> Retention {
        let signer =
            SigningKey::from_pkcs8_pem(self.signer.to_pkcs8_pem().expect("pem").expose()).expect("key");
        Retention::new(
            self.store.clone(),
            self.audit.clone(),
            signer,
            self.subjects.clone(),
            self.clock.clone(),
            policy,
        )
    }

    /// Stops the audit writer (signing the final head) and closes the store.
    async fn finish(self) {
        drop(self.audit);
        self.writer.finish().await;
        self.store.close().await;
    }
}

fn admin(tenant: &str) -> Principal {
    Principal {
        key_id: "admin-key".to_owned(),
        tenant: license::TenantId::new(tenant).expect("tenant"),
        kind: license::KeyKind::Admin,
        tier: license::Tier::Plus,
        service: None,
        permissions: license::PermissionSet::new(),
        grace_remaining: None,
    }
}

/// Every text the store holds about records and subjects, to search for plaintext.
async fn everything_stored(store: &Arc<dyn Store>) -> String {
    let query = AuditQuery { limit: 10_000, ..AuditQuery::default() };
    let mut text = String::new();
    for row in store.search_audit(&query).await.expect("search") {
        text.push_str(&format!("{} {} {} {}\n", row.tenant_id, row.actor, row.kind, row.body));
    }
    text
}

#[tokio::test]
async fn rotation_keeps_old_data_readable_and_seals_new_data_under_the_new_keys() {
    for database in test_databases() {
        let fx = fixture(database.open().await).await;
        let old_key = fx.vault.current_key_id();
        let old = fx.vault.seal(b"old secret", b"ctx").expect("seal");

        // A second node on the same database and key ring.
        let other_ring: Arc<dyn MasterKeyProvider> = Arc::new(KeyRing::open(&fx.ring_path).expect("ring"));
        let other = Vault::load(fx.store.clone(), other_ring, fx.clock.clone()).await.expect("vault");

        let new_master = KeyRing::add_key_to_file(&fx.ring_path).expect("new master key");
        let rotation = fx.vault.rotate().await.expect("rotate");
        assert_eq!(rotation.master_key_id, new_master);
        assert_eq!((rotation.rewrapped, rotation.retired), (1, 1));
        assert_ne!(rotation.data_key_id, old_key);
        assert_eq!(fx.vault.current_key_id(), rotation.data_key_id);
        for row in fx.store.data_keys().await.expect("keys") {
            assert_eq!(row.master_key_id, new_master, "every data key is wrapped by the new master key");
        }

        let new = fx.vault.seal(b"new secret", b"ctx").expect("seal");
        assert_eq!(crypto::Sealed::key_id_of(&new).expect("id"), rotation.data_key_id);
        assert_eq!(fx.vault.open(&old, b"ctx").await.expect("old").expose(), b"old secret");
        // The other node has neither the new data key nor the new master key loaded: it picks both up.
        assert_eq!(other.open(&new, b"ctx").await.expect("new elsewhere").expose(), b"new secret");
        assert_eq!(other.open(&old, b"ctx").await.expect("old elsewhere").expose(), b"old secret");

        // Without the master key ring nothing opens: the database alone is not enough.
        let stranger: Arc<dyn MasterKeyProvider> = Arc::new(
            KeyRing::from_text(&Secret::new(format!("x {}", "A".repeat(43) + "=")), "test").expect("ring"),
        );
        let error = Vault::load(fx.store.clone(), stranger, fx.clock.clone()).await.expect_err("refused");
        assert!(error.to_string().contains("not have"), "{error}");

        fx.finish().await;
        database.cleanup().await;
    }
}

#[tokio::test]
async fn subjects_are_sealed_revealed_and_erased_by_crypto_shredding() {
    for database in test_databases() {
        let fx = fixture(database.open().await).await;
        let alice = fx.subjects.resolve("acme", "alice@example.com").await.expect("resolve");
        let again = fx.subjects.resolve("acme", "alice@example.com").await.expect("resolve");
        assert_eq!(alice.id, again.id, "one subject per user and tenant");
        let other_tenant = fx.subjects.resolve("globex", "alice@example.com").await.expect("resolve");
        assert_ne!(alice.id, other_tenant.id, "tenants do not share subjects");

        for n in 0..3 {
            let field = fx.subjects.record_field(&alice, "alice@example.com").expect("field");
            fx.audit
                .record(engine::AuditEntry {
                    kind: "pre_check",
                    tenant: "acme".to_owned(),
                    actor: "svc".to_owned(),
                    verdict: "allow".to_owned(),
                    details: serde_json::json!({ "n": n, "subject": field }).into(),
                })
                .await
                .expect("record");
        }
        assert!(!everything_stored(&fx.store).await.contains("alice"), "no identifier in the clear");

        let actor = admin("acme");
        let profile = serde_json::json!({ "email": "alice@example.com", "name": "Alice Liddell" });
        let profile = profile.as_object().expect("object").clone();
        fx.subjects.rectify(&actor, "acme", "alice@example.com", &profile).await.expect("rectify");
        let bad = serde_json::json!({ "user_id": "mallory" }).as_object().expect("object").clone();
        assert!(matches!(
            fx.subjects.rectify(&actor, "acme", "alice@example.com", &bad).await,
            Err(SubjectError::Invalid(_))
        ));

        let export = fx.subjects.export(&actor, "acme", "alice@example.com").await.expect("export");
        assert_eq!(export.subject_id, alice.id);
        assert_eq!(export.profile["user_id"], "alice@example.com");
        assert_eq!(export.profile["name"], "Alice Liddell");
        let kinds: Vec<&str> = export.records.iter().filter_map(|r| r["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            ["gdpr.rectification", "pre_check", "pre_check", "pre_check"],
            "naming the subject only"
        );
        let checks = export.records.iter().filter(|r| r["kind"] == "pre_check");
        assert!(checks.clone().all(|r| r["details"]["subject"]["user"] == "alice@example.com"));
        assert!(matches!(
            fx.subjects.export(&admin("globex"), "globex", "nobody").await,
            Err(SubjectError::Unknown)
        ));

        fx.subjects.restrict(&actor, "acme", "alice@example.com", true).await.expect("restrict");
        assert!(fx.subjects.resolve("acme", "alice@example.com").await.expect("resolve").restricted);

        let erasure = fx.subjects.erase(&actor, "acme", "alice@example.com").await.expect("erase");
        assert_eq!(erasure.subject_id, alice.id);
        let tomb = fx.store.subject_by_id(&alice.id).await.expect("get").expect("tombstone");
        assert_eq!((tomb.sealed_key, tomb.sealed_profile, tomb.lookup), (None, None, None));
        let mut details = serde_json::from_str::<serde_json::Value>(
            &fx.store
                .search_audit(&AuditQuery {
                    contains: Some(alice.id.clone()),
                    kind: Some("pre_check".into()),
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await
                .expect("search")[0]
                .body,
        )
        .expect("json");
        fx.subjects.reveal(&mut details).await;
        assert_eq!(details["subject"]["user"], DELETED_USER);
        assert!(matches!(
            fx.subjects.export(&actor, "acme", "alice@example.com").await,
            Err(SubjectError::Unknown)
        ));
        let stored = everything_stored(&fx.store).await;
        assert!(!stored.contains("alice") && !stored.contains("Liddell"), "no trace in the clear");
        assert!(stored.contains("gdpr.erasure"), "the erasure is audited");

        drop(fx.audit);
        fx.writer.finish().await;
        let reports =
            audit::verify(fx.store.as_ref(), &[fx.signer.public_key()], |_| {}).await.expect("verify");
        assert!(reports.iter().all(|r| r.problem.is_none()), "the chain still verifies: {reports:?}");
        fx.store.close().await;
        database.cleanup().await;
    }
}

#[tokio::test]
async fn connector_secrets_are_sealed_never_listed_and_survive_rotation() {
    for database in test_databases() {
        let fx = fixture(database.open().await).await;
        let secrets =
            ConnectorSecrets::new(fx.store.clone(), fx.vault.clone(), fx.audit.clone(), fx.clock.clone());
        let actor = admin("acme");
        let value = Secret::new("sf-password-123456".to_owned());
        let info = secrets.put(&actor, "snowflake", &value).await.expect("put");
        assert_eq!(info.data_key_id, fx.vault.current_key_id());
        let listed = secrets.list("acme").await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(!serde_json::to_string(&listed).expect("json").contains("sf-password"));
        let row = fx.store.connector_secret("acme", "snowflake").await.expect("get").expect("row");
        assert!(!row.sealed.windows(11).any(|w| w == b"sf-password"));
        assert!(secrets.list("globex").await.expect("list").is_empty(), "per tenant");
        assert!(secrets.reveal("globex", "snowflake").await.is_err());

        KeyRing::add_key_to_file(&fx.ring_path).expect("new master");
        fx.vault.rotate().await.expect("rotate");
        assert_eq!(secrets.reveal("acme", "snowflake").await.expect("reveal").expose(), "sf-password-123456");
        let info =
            secrets.put(&actor, "snowflake", &Secret::new("rotated-value".to_owned())).await.expect("put");
        assert_eq!(info.data_key_id, fx.vault.current_key_id(), "set again: sealed under the new data key");
        assert!(secrets.put(&actor, "bad name", &value).await.is_err());
        secrets.delete(&actor, "snowflake").await.expect("delete");
        assert!(secrets.reveal("acme", "snowflake").await.is_err());
        assert!(!everything_stored(&fx.store).await.contains("sf-password"), "audited without the value");

        fx.finish().await;
        database.cleanup().await;
    }
}

#[tokio::test]
async fn retention_deletes_old_records_audits_it_and_the_trail_still_verifies() {
    for database in test_databases() {
        let fx = fixture(database.open().await).await;
        let record = |n: u32| engine::AuditEntry {
            kind: "pre_check",
            tenant: "acme".to_owned(),
            actor: "svc".to_owned(),
            verdict: "allow".to_owned(),
            details: serde_json::json!({ "n": n }).into(),
        };
        for n in 0..5 {
            fx.audit.record(record(n)).await.expect("old");
        }
        fx.clock.advance_millis(200 * DAY_MS);
        for n in 5..8 {
            fx.audit.record(record(n)).await.expect("young");
        }
        let policy = RetentionPolicy::new(RetentionProfile::Default, Some(90)).expect("policy");
        assert!(RetentionPolicy::new(RetentionProfile::Default, Some(89)).is_err(), "never below 90 days");
        assert!(RetentionPolicy::new(RetentionProfile::Hipaa, Some(365)).is_err(), "HIPAA keeps 6 years");
        let retention = fx.retention(policy);

        let report = retention.run().await.expect("run");
        assert_eq!((report.audit_records_deleted, report.batches), (5, 1));
        let left =
            fx.store.search_audit(&AuditQuery { limit: 100, ..AuditQuery::default() }).await.expect("search");
        assert!(left.iter().all(|r| r.ts.0 >= fx.clock.now().0 - 90 * DAY_MS));
        let purge = left.iter().find(|r| r.kind == "retention.purge").expect("the batch is audited");
        assert!(purge.body.contains("\"records\":5"), "{}", purge.body);
        assert_eq!(retention.run().await.expect("again").audit_records_deleted, 0, "nothing more is due");

        // Erased subjects' tombstones go once their grace period is over.
        let actor = admin("acme");
        fx.subjects.resolve("acme", "bob").await.expect("resolve");
        let erasure = fx.subjects.erase(&actor, "acme", "bob").await.expect("erase");
        assert_eq!(retention.run().await.expect("run").erased_subjects_purged, 0, "within the grace period");
        fx.clock.advance_millis(31 * DAY_MS);
        assert_eq!(retention.run().await.expect("run").erased_subjects_purged, 1);
        assert_eq!(fx.store.subject_by_id(&erasure.subject_id).await.expect("get"), None);

        drop(fx.audit);
        fx.writer.finish().await;
        let reports =
            audit::verify(fx.store.as_ref(), &[fx.signer.public_key()], |_| {}).await.expect("verify");
        assert_eq!(reports.len(), 1);
        assert_eq!((reports[0].problem.clone(), reports[0].retained_after), (None, 5), "{reports:?}");

        // A horizon signed by someone else does not hide deleted records.
        let forged =
            audit::sign_horizon(&SigningKey::generate().expect("key"), "node-1", 9, &[0; 32], fx.clock.now());
        fx.store.prune_audit(&forged).await.expect("forge");
        let reports =
            audit::verify(fx.store.as_ref(), &[fx.signer.public_key()], |_| {}).await.expect("verify");
        assert!(
            matches!(reports[0].problem, Some(audit::ChainProblem::BadHorizon { seq: 9 })),
            "{reports:?}"
        );
        fx.store.close().await;
        database.cleanup().await;
    }
}

#[tokio::test]
async fn retention_refuses_to_delete_across_a_tampered_record() {
    for database in test_databases() {
        let fx = fixture(database.open().await).await;
        for n in 0..4 {
            let entry = engine::AuditEntry {
                kind: "pre_check",
                tenant: "acme".to_owned(),
                actor: "svc".to_owned(),
                verdict: "allow".to_owned(),
                details: serde_json::json!({ "n": n }).into(),
            };
            fx.audit.record(entry).await.expect("record");
        }
        database.execute_raw("UPDATE audit_records SET verdict = 'deny' WHERE seq = 2").await;
        fx.clock.advance_millis(400 * DAY_MS);
        let policy = RetentionPolicy::new(RetentionProfile::Default, None).expect("policy");
        let retention = fx.retention(policy);
        let error = retention.run().await.expect_err("refused");
        assert!(error.to_string().contains("record 2"), "{error}");
        assert_eq!(fx.store.audit_horizon("node-1").await.expect("horizon"), None, "nothing was deleted");
        fx.finish().await;
        database.cleanup().await;
    }
}
