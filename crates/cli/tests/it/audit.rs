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
    assert_eq!(report["journal_segments"], 0, "a clean stop stores the journal and removes it: {report}");

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

#[tokio::test]
async fn after_kill_9_under_load_every_answered_decision_has_its_record_and_the_chain_verifies() {
    // Rate limits out of the way: the load must not stop at a key's 1,000 a minute, and neither may the
    // searches that look for its records after the restart (a fresh limiter there once answered 132 of them
    // with 429, which read as missing records).
    const UNLIMITED: &[(&str, &str)] = &[("AXONFLOW_RATE_LIMIT_PLUS_PER_MINUTE", "10000000")];
    let server = Server::start_with_env(&[], UNLIMITED);
    let admin = server.admin_key();
    let client = std::sync::Arc::new(server.client());
    let body = json!({"kind": "service", "tier": "PLUS", "service": {"name": "load", "type": "backend-service"},
                      "permissions": ["policy:evaluate"], "expires_at": "2099-01-01"});
    let key = client.post_json(&admin, "/api/v1/admin/keys", &body).await.json()["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, key, answered) = (client.clone(), key.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..1000 {
                let query = json!({"query": format!("worker {worker} request {n}: summarise the report")});
                // Requests cut off by the kill fail to connect or lose their answer: only answers count.
                let Ok(reply) = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.post_json(&key, "/api/v1/decide", &query),
                )
                .await
                else {
                    break;
                };
                if reply.status != 200 {
                    break;
                }
                let id = reply.json()["decision_id"].as_str().expect("id").to_owned();
                answered.lock().expect("lock").push(id);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.signal("KILL");
    for task in tasks {
        let _ = task.await;
    }
    let answered = answered.lock().expect("lock").clone();
    assert!(answered.len() > 20, "too few answers before the kill: {}", answered.len());
    // The killed server left its journal: verifying now says so (its records are stored at the next start).
    let (_, report) = verify(&server);
    assert!(report["journal_segments"].as_u64().is_some_and(|n| n >= 1), "{report}");
    let text = server.cli(&["audit", "verify"], None);
    assert!(String::from_utf8_lossy(&text.stderr).contains("the audit journal"), "{text:?}");

    let restarted = Server::spawn(server.into_data_dir(), &[], UNLIMITED);
    let client = restarted.client();
    let mut stored = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        let query = json!({"request_type": "decide", "limit": 1000, "offset": offset});
        let page = client.post_json(&admin, "/api/v1/audit/search", &query).await;
        assert_eq!(
            page.status,
            200,
            "audit search at offset {offset}: {}",
            String::from_utf8_lossy(&page.body)
        );
        let page = page.json();
        let entries = page["entries"].as_array().expect("entries");
        stored.extend(entries.iter().map(|e| e["id"].as_str().expect("id").to_owned()));
        offset += 1000;
        if entries.len() < 1000 {
            break;
        }
    }
    let missing: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered decisions have no record ({} stored): {missing:?}",
        missing.len(),
        answered.len(),
        stored.len()
    );
    let (code, report) = verify(&restarted);
    assert_eq!(code, Some(0), "{report}");
}

#[tokio::test]
async fn export_and_search_from_the_command_line() {
    let server = Server::start(&[]);
    let admin = server.admin_key();
    let client = server.client();
    for query in ["Summarise Q3", "Card 4532015112830366 for jane@example.com", "admin' OR 1=1--"] {
        let reply = client
            .post_json(&admin, "/api/v1/decide", &json!({"query": query, "context": {"user_role": "admin"}}))
            .await;
        assert_eq!(reply.status, 200);
    }
    // The command line reads the database from another process: it sees records once the server's indexer
    // has stored them. A search through the API waits for that.
    let searched = client.post_json(&admin, "/api/v1/audit/search", &json!({"limit": 10})).await;
    assert_eq!(searched.status, 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let out = server.cli(&["audit", "export", "--kind", "decide", "-o", file.to_str().expect("utf-8")], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).expect("export");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l["kind"] == "decide" && l["hash"].as_str().is_some_and(|h| h.len() == 64)));
    assert!(!text.contains("4532015112830366") && !text.contains("jane@example.com"), "{text}");

    let out = server.cli(&["audit", "export", "--format", "csv", "--verdict", "deny"], None);
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "id,chain_id,seq,timestamp,tenant_id,actor,kind,verdict,details,prev_hash,hash");
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].contains(",deny,\""), "{csv}");

    let out = server.cli(&["audit", "search", "--json", "--kind", "key_admin"], None);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(found["total"], 1, "the bootstrap admin key: {found}");
    let bad = server.cli(&["audit", "export", "--format", "xml"], None);
    assert_eq!(bad.status.code(), Some(1));
}
