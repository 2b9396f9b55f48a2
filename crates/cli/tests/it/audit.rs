use std::time::Duration;

use serde_json::json;

use crate::support::Server;

fn verify(server: &Server) -> (Option<i32>, serde_json::Value) {
    let out = server.cli(&["audit", "verify", "--json"], None);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), json)
}

#[tokio::test]
async fn key_administration_is_audited_and_the_trail_verifies_until_tampered_with() {
    let mut server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let body = json!({"kind": "user", "tier": "PRO", "permissions": ["query"], "expires_at": "2099-01-01"});
    let issued = client.post_json(&admin, "/api/v1/admin/keys", &body).await.json();
    let key_id = issued["credential"]["key_id"].as_str().expect("id").to_owned();
    let revoked = client
        .post_json(&admin, &format!("/api/v1/admin/keys/{key_id}/revoke"), &json!({"reason": "test"}))
        .await;
    assert_eq!(revoked.status, 200);
    let out =
        server.cli(&["emergency-access", "grant", "--reason", "incident 42", "--ttl-minutes", "5"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let emergency = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    assert_eq!(client.get_as(&emergency, "/api/v1/whoami").await.status, 200);
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));

    let (code, report) = verify(&server);
    assert_eq!(code, Some(0), "{report}");
    let chains = report["chains"].as_array().expect("chains");
    let records: u64 = chains.iter().map(|c| c["records"].as_u64().unwrap_or(0)).sum();
    // bootstrap admin issued, user key issued, revoked, emergency granted, emergency used.
    assert_eq!(records, 5, "{report}");
    assert!(chains.iter().all(|c| c["unsigned_tail"] == 0), "{report}");

    let db = server.data().join("axonflow.db");
    store::testing::execute_raw_sqlite(
        &db,
        "UPDATE audit_records SET verdict = 'denied' WHERE verdict = 'revoked'",
    )
    .await;
    let (code, report) = verify(&server);
    assert_eq!(code, Some(1));
    let problem = report["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find_map(|c| c["problem"].as_str())
        .expect("a problem")
        .to_owned();
    assert!(problem.contains("was modified"), "{problem}");
}

#[tokio::test]
async fn audit_records_hold_no_key_material() {
    let mut server = Server::start(&[]);
    let admin = server.admin_key();
    let body = json!({"kind": "user", "tier": "PRO", "permissions": ["query"], "expires_at": "2099-01-01"});
    let issued = server.client().post_json(&admin, "/api/v1/admin/keys", &body).await.json();
    let key = issued["key"].as_str().expect("key").to_owned();
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
    let bytes = std::fs::read(server.data().join("axonflow.db")).expect("db");
    let wal = std::fs::read(server.data().join("axonflow.db-wal")).unwrap_or_default();
    for secret in [&admin, &key] {
        let signature = &secret.as_bytes()[secret.len() - 64..];
        for haystack in [&bytes, &wal] {
            assert!(
                !haystack.windows(signature.len()).any(|w| w == signature),
                "key material in the database"
            );
        }
    }
}
