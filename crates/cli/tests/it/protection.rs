//! Data protection end to end: GDPR rights over HTTPS, erasure by crypto-shredding, connector credentials,
//! key rotation while the server runs, retention refusing a tampered trail.

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, Server};

const USER: &str = "alice.liddell.4711";

async fn service_key(client: &Client, admin: &str) -> String {
    let body = json!({"kind": "service", "tier": "PLUS", "service": {"name": "clinic-app", "type": "backend-service"},
                      "permissions": ["policy:evaluate", "query"], "expires_at": "2099-01-01"});
    let reply = client.post_json(admin, "/api/v1/admin/keys", &body).await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["key"].as_str().expect("key").to_owned()
}

async fn pre_check_as(client: &Client, key: &str, user: &str) -> serde_json::Value {
    let body = json!({"query": "What is the weather in Paris?", "user_token": user, "context": {"user_role": "analyst"}});
    let reply = client.post_json(key, "/api/policy/pre-check", &body).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn gdpr_rights_work_over_https_and_erasure_leaves_no_plaintext_trace_while_the_trail_verifies() {
    let mut server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    for _ in 0..2 {
        assert_eq!(pre_check_as(&client, &key, USER).await["approved"], true);
    }
    let tool = json!({"tool_name": "ehr_lookup", "user_id": USER, "success": true});
    assert_eq!(client.post_json(&key, "/api/v1/audit/tool-call", &tool).await.status, 201);

    // Only auditors exercise subjects' rights.
    let subject = json!({"user": USER});
    assert_eq!(client.post_json(&key, "/api/v1/gdpr/subjects/export", &subject).await.status, 403);
    let missing = client.post_json(&admin, "/api/v1/gdpr/subjects/export", &json!({"user": "nobody"})).await;
    assert_eq!((missing.status, missing.json()["error"]["message"].is_string()), (404, true));
    let bad = client.post_json(&admin, "/api/v1/gdpr/subjects/export", &json!({"user": ""})).await;
    assert_eq!((bad.status, bad.json()["error"]["field"].as_str()), (400, Some("user")));

    let rectify = json!({"user": USER, "profile": {"email": "alice@wonderland.example"}});
    let rectified = client.post_json(&admin, "/api/v1/gdpr/subjects/rectify", &rectify).await;
    assert_eq!(rectified.status, 200, "{}", String::from_utf8_lossy(&rectified.body));
    let export = client.post_json(&admin, "/api/v1/gdpr/subjects/export", &subject).await;
    assert_eq!(export.status, 200);
    let export = export.json();
    assert_eq!(export["profile"]["user_id"], USER);
    assert_eq!(export["profile"]["email"], "alice@wonderland.example");
    let kinds: Vec<&str> =
        export["records"].as_array().expect("records").iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "pre_check").count(), 2, "{kinds:?}");
    assert!(kinds.contains(&"tool_call") && kinds.contains(&"gdpr.rectification"), "{kinds:?}");

    // Restriction: the user's requests are refused (and still audited) until it is lifted.
    let restrict = |on: bool| json!({"user": USER, "restricted": on});
    assert_eq!(client.post_json(&admin, "/api/v1/gdpr/subjects/restrict", &restrict(true)).await.status, 200);
    let refused = pre_check_as(&client, &key, USER).await;
    assert_eq!(refused["approved"], false);
    assert!(refused["block_reason"].as_str().expect("reason").contains("restricted"), "{refused}");
    assert_eq!(pre_check_as(&client, &key, "someone-else").await["approved"], true, "only that user");
    assert_eq!(
        client.post_json(&admin, "/api/v1/gdpr/subjects/restrict", &restrict(false)).await.status,
        200
    );
    assert_eq!(pre_check_as(&client, &key, USER).await["approved"], true);

    // Auditors see who made a request until the user is erased.
    let search = json!({"limit": 100, "request_type": "pre_check"});
    let before = client.post_json(&admin, "/api/v1/audit/search", &search).await.json();
    assert!(before.to_string().contains(USER));

    let erased = client.post_json(&admin, "/api/v1/gdpr/subjects/erase", &subject).await;
    assert_eq!(erased.status, 200, "{}", String::from_utf8_lossy(&erased.body));
    let erasure = erased.json();
    assert!(erasure["subject_id"].as_str().expect("id").starts_with("sub_"));
    assert!(erasure["purge_after"].is_string());
    assert_eq!(client.post_json(&admin, "/api/v1/gdpr/subjects/erase", &subject).await.status, 404, "once");
    assert_eq!(client.post_json(&admin, "/api/v1/gdpr/subjects/export", &subject).await.status, 404);
    let after = client.post_json(&admin, "/api/v1/audit/search", &search).await.json();
    let text = after.to_string();
    assert!(!text.contains(USER) && text.contains("DELETED_USER"), "{text}");
    let all = client.post_json(&admin, "/api/v1/audit/search", &json!({"limit": 1000})).await.json();
    assert!(all.to_string().contains("gdpr.erasure"), "the erasure request is audited");

    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
    let data = server.data();
    let mut stored = std::fs::read(data.join("axonflow.db")).expect("db");
    stored.extend(std::fs::read(data.join("axonflow.db-wal")).unwrap_or_default());
    for needle in [USER, "wonderland"] {
        assert!(!contains(&stored, needle), "`{needle}` is in the database file");
        assert!(!server.stderr().contains(needle), "`{needle}` is in the logs");
    }
    let exported = server.cli(&["audit", "export", "--format", "jsonl"], None);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    assert!(!contains(&exported.stdout, USER), "the export holds no trace of the user");
    let verify = server.cli(&["audit", "verify", "--json"], None);
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[tokio::test]
async fn connector_credentials_are_sealed_never_returned_and_survive_a_key_rotation_made_while_serving() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    let _ = pre_check_as(&client, &key, USER).await;

    let install = json!({"name": "Snowflake EU", "options": {"account": "acme-eu"},
                         "credentials": {"password": "sf-pass-98765"}});
    assert_eq!(client.post_json(&key, "/api/v1/connectors/snowflake/install", &install).await.status, 403);
    let installed = client.post_json(&admin, "/api/v1/connectors/snowflake/install", &install).await;
    assert_eq!(installed.status, 201, "{}", String::from_utf8_lossy(&installed.body));
    let first_key = installed.json()["data_key_id"].as_str().expect("key id").to_owned();
    let bad = client.post_json(&admin, "/api/v1/connectors/bad%20name/install", &install).await;
    assert_eq!(bad.status, 400);
    let listed = client.get_as(&key, "/api/v1/connectors").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["total"], 1);
    for field in ["id", "name", "type"] {
        assert_eq!(listed.json()["connectors"][0][field], "snowflake", "{field}");
    }
    assert_eq!(client.get_as(&admin, "/api/v1/connectors/snowflake").await.status, 200);
    assert_eq!(client.get_as(&admin, "/api/v1/connectors/nope").await.status, 404);

    let rotated = server.cli(&["keys", "rotate", "--json"], None);
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let rotation: serde_json::Value = serde_json::from_slice(&rotated.stdout).expect("json");
    let new_master = rotation["added_master_key"].as_str().expect("added").to_owned();
    assert_eq!(rotation["rotation"]["master_key_id"], new_master.as_str());
    assert_eq!(rotation["rotation"]["rewrapped"], 1);
    let new_data_key = rotation["rotation"]["data_key_id"].as_str().expect("new").to_owned();
    assert_ne!(new_data_key, first_key);

    // The running server keeps working: old data opens, new data is sealed under the new data key.
    let again = json!({"credentials": {"token": "xoxb-slack-123"}});
    let slack = client.post_json(&admin, "/api/v1/connectors/slack/install", &again).await;
    assert_eq!(slack.status, 201);
    assert_eq!(slack.json()["data_key_id"], new_data_key.as_str());
    let export = client.post_json(&admin, "/api/v1/gdpr/subjects/export", &json!({"user": USER})).await;
    assert_eq!(export.status, 200, "a subject sealed before the rotation still opens");
    assert_eq!(pre_check_as(&client, &key, "new-user-after-rotation").await["approved"], true);

    let status = server.cli(&["keys", "status", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["master_key_id"], new_master.as_str());
    let data_keys = status["data_keys"].as_array().expect("keys");
    assert_eq!(data_keys.len(), 2);
    assert!(data_keys.iter().all(|k| k["master_key_id"] == new_master.as_str()), "{status}");
    let old_master = server.cli(&["keys", "retire-master", "nope"], None);
    assert!(!old_master.status.success());

    assert_eq!(
        client
            .send("DELETE", "/api/v1/connectors/slack", &[("X-License-Key", &admin)], Vec::new())
            .await
            .status,
        200
    );
    assert_eq!(client.get_as(&admin, "/api/v1/connectors").await.json()["total"], 1);

    let mut stored = std::fs::read(server.data().join("axonflow.db")).expect("db");
    stored.extend(std::fs::read(server.data().join("axonflow.db-wal")).unwrap_or_default());
    for secret in ["sf-pass-98765", "xoxb-slack-123", "acme-eu"] {
        assert!(!contains(&stored, secret), "`{secret}` is in the database file");
        assert!(!listed.body.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!server.stderr().contains(secret), "`{secret}` is in the logs");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            std::fs::metadata(server.data().join("keys/master.keys")).expect("ring").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn retention_refuses_to_delete_across_a_tampered_record_and_reports_it() {
    let mut server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    let _ = pre_check_as(&client, &key, USER).await;
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));

    let nothing = server.cli(&["retention", "run", "--json"], None);
    assert!(nothing.status.success(), "{}", String::from_utf8_lossy(&nothing.stderr));
    let report: serde_json::Value = serde_json::from_slice(&nothing.stdout).expect("json");
    assert_eq!((report["audit_records_deleted"].as_u64(), report["batches"].as_u64()), (Some(0), Some(0)));

    // Backdating a record changes it: retention must not delete it quietly behind a signed horizon.
    store::testing::execute_raw_sqlite(
        &server.data().join("axonflow.db"),
        "UPDATE audit_records SET ts_ms = ts_ms - 400 * 86400000 WHERE seq = 1",
    )
    .await;
    let refused = server.cli(&["retention", "run"], None);
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("not intact") && message.contains("audit verify"), "{message}");
}

#[tokio::test]
async fn auditors_export_their_tenants_trail_through_the_api_as_jsonl_or_csv() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    for _ in 0..3 {
        let _ = pre_check_as(&client, &key, USER).await;
    }
    assert_eq!(client.get_as(&key, "/api/v1/audit/export").await.status, 403);
    let bad = client.get_as(&admin, "/api/v1/audit/export?format=xml").await;
    assert_eq!((bad.status, bad.json()["error"]["field"].as_str()), (400, Some("format")));
    let bad_time = client.get_as(&admin, "/api/v1/audit/export?since=yesterday").await;
    assert_eq!((bad_time.status, bad_time.json()["error"]["field"].as_str()), (400, Some("since")));

    let total = client.post_json(&admin, "/api/v1/audit/search", &json!({"limit": 1})).await.json()["total"]
        .as_u64()
        .expect("total");
    let jsonl = client.get_as(&admin, "/api/v1/audit/export").await;
    assert_eq!(jsonl.status, 200);
    assert_eq!(
        jsonl.headers.get("content-type").map(|v| v.to_str().unwrap_or("")),
        Some("application/x-ndjson")
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(jsonl.body.clone())
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.len() as u64 >= total, "{} lines, {total} records before the export", lines.len());
    assert!(
        lines
            .iter()
            .all(|l| l["tenant_id"] == "default" && l["hash"].as_str().is_some_and(|h| h.len() == 64))
    );
    assert!(!contains(&jsonl.body, USER), "end users stay sealed in exports");

    let csv = client.get_as(&admin, "/api/v1/audit/export?format=csv&kind=pre_check").await;
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body).expect("utf-8");
    let mut rows = text.lines();
    assert_eq!(
        rows.next(),
        Some("id,chain_id,seq,timestamp,tenant_id,actor,kind,verdict,details,prev_hash,hash")
    );
    assert_eq!(rows.count(), 3, "{text}");
}

/// A stand-in KMS for the test (a fixture): it keeps each data key under a random handle, returns the handle
/// as the wrapped key, and refuses to unwrap under another key id or context.
#[cfg(unix)]
fn fake_kms(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let script = dir.join("fake-kms.py");
    let text = format!(
        r#"#!/usr/bin/env python3
import base64, json, os, secrets, sys
store = {store:?}
verb = sys.argv[1]
if verb == "current":
    print("kms-1")
elif verb == "wrap":
    handle = secrets.token_hex(8)
    with open(os.path.join(store, handle), "w") as f:
        json.dump({{"key": sys.stdin.read().strip(), "context": sys.argv[2]}}, f)
    print("kms-1", base64.b64encode(handle.encode()).decode())
elif verb == "unwrap":
    handle = base64.b64decode(sys.stdin.read().strip()).decode()
    with open(os.path.join(store, handle)) as f:
        entry = json.load(f)
    if sys.argv[2] != "kms-1" or sys.argv[3] != entry["context"]:
        sys.exit(3)
    print(entry["key"])
else:
    sys.exit(2)
"#,
        store = dir.to_str().expect("utf-8"),
    );
    std::fs::write(&script, text).expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    script
}

#[cfg(unix)]
#[tokio::test]
async fn master_keys_can_live_in_a_kms_reached_through_a_program() {
    let kms_dir = tempfile::tempdir().expect("tempdir");
    let kms = fake_kms(kms_dir.path());
    let env = [("AXONFLOW_KMS_COMMAND", kms.to_str().expect("utf-8"))];
    let server = Server::start_with_env(&[], &env);
    let client = server.client();
    let admin = server.admin_key();
    let install = json!({"credentials": {"password": "kms-guarded-secret"}});
    assert_eq!(client.post_json(&admin, "/api/v1/connectors/warehouse/install", &install).await.status, 201);
    assert!(!server.data().join("keys/master.keys").exists(), "no local key ring when a KMS is configured");
    let keys = |with_kms: bool| {
        let mut command = crate::support::binary();
        command.args(["keys", "status", "--json", "--data-dir"]).arg(server.data());
        if with_kms {
            command.envs(env);
        }
        command.output().expect("keys status")
    };
    let status = keys(true);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["master_key_id"], "kms-1");
    assert!(status["data_keys"].as_array().expect("keys").iter().all(|k| k["master_key_id"] == "kms-1"));
    // Without the KMS the data keys do not open: the database alone is not enough, and no stray key ring is
    // created.
    let refused = keys(false);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("kms-1") && message.contains("restore the key ring"), "{message}");
    assert!(!server.data().join("keys/master.keys").exists());

    // Restarted, the node unwraps its data keys through the KMS again and its secrets still open.
    let restarted = Server::spawn_command("serve", server.into_data_dir(), &[], &env);
    let client = restarted.client();
    assert_eq!(client.get_as(&admin, "/api/v1/connectors/warehouse").await.status, 200);
    let rotated = client.post_json(&admin, "/api/v1/connectors/warehouse/install", &install).await;
    assert_eq!(rotated.status, 201, "sealing again works after the restart");
}

#[tokio::test]
async fn no_data_protection_route_lets_one_tenant_see_or_change_anothers_data() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    let _ = pre_check_as(&client, &key, USER).await;
    let install = json!({"credentials": {"password": "default-tenant-secret"}});
    assert_eq!(client.post_json(&admin, "/api/v1/connectors/snowflake/install", &install).await.status, 201);

    let other = server.issue("acme", "admin", &["admin:audit", "admin:connectors", "policy:evaluate"]);
    for route in ["export", "erase", "rectify", "restrict"] {
        let body = json!({"user": USER, "profile": {"email": "x@y.example"}, "restricted": true});
        let reply = client.post_json(&other, &format!("/api/v1/gdpr/subjects/{route}"), &body).await;
        assert_eq!(reply.status, 404, "{route}: another tenant's user is not found");
    }
    assert_eq!(client.get_as(&other, "/api/v1/connectors/snowflake").await.status, 404);
    assert_eq!(client.get_as(&other, "/api/v1/connectors").await.json()["total"], 0);
    let deleted =
        client.send("DELETE", "/api/v1/connectors/snowflake", &[("X-License-Key", &other)], Vec::new()).await;
    assert_eq!(deleted.status, 404);
    let foreign_tenant = json!({"tenant_id": "default", "credentials": {"password": "x"}});
    let reply = client.post_json(&other, "/api/v1/connectors/snowflake/install", &foreign_tenant).await;
    assert_eq!(reply.status, 403, "cannot install into another tenant");
    let export = client.get_as(&other, "/api/v1/audit/export").await;
    assert_eq!(export.status, 200);
    assert!(String::from_utf8_lossy(&export.body).lines().all(|l| l.contains("\"tenant_id\":\"acme\"")));
    let search = client.post_json(&other, "/api/v1/audit/search", &json!({"limit": 1000})).await.json();
    assert!(
        search["entries"].as_array().expect("entries").iter().all(|e| e["tenant_id"] == "acme"),
        "{search}"
    );

    // The default tenant's data is untouched by all of that.
    let export = client.post_json(&admin, "/api/v1/gdpr/subjects/export", &json!({"user": USER})).await;
    assert_eq!((export.status, export.json()["restricted"].as_bool()), (200, Some(false)));
    assert_eq!(client.get_as(&admin, "/api/v1/connectors/snowflake").await.status, 200);
}

#[tokio::test]
async fn operators_exercise_subjects_rights_and_retire_old_master_keys_from_the_command_line() {
    // No subject cache: a restriction made by another process applies to the next request.
    let server = Server::start_with_env(&[], &[("AXONFLOW_GDPR_SUBJECT_CACHE_SECONDS", "0")]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    let _ = pre_check_as(&client, &key, USER).await;
    // The command line reads the database from another process: a search through the API first waits for the
    // server's audit indexer to store the pre-check's record.
    let searched = client.post_json(&admin, "/api/v1/audit/search", &json!({"limit": 1})).await;
    assert_eq!(searched.status, 200);
    let subject = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["subject"];
        all.extend_from_slice(args);
        all.extend(["--tenant", "default", "--json"]);
        let out = server.cli(&all, stdin);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The user id can come from standard input, to keep it out of shell history.
    let (ok, out, err) = subject(&["export", "--user", "-"], Some(USER));
    assert!(ok, "{err}");
    let export: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(export["profile"]["user_id"], USER);
    assert!(export["records"].as_array().expect("records").iter().any(|r| r["kind"] == "pre_check"));
    let (ok, _, err) = subject(&["rectify", "--user", USER, "--set", "email=alice@wonderland.example"], None);
    assert!(ok, "{err}");
    let (ok, out, _) = subject(&["restrict", "--user", USER], None);
    assert!(ok && out.contains("\"restricted\":true"), "{out}");
    assert_eq!(pre_check_as(&client, &key, USER).await["approved"], false, "the server sees the restriction");
    let (ok, out, err) = subject(&["erase", "--user", USER], None);
    assert!(ok, "{err}");
    assert!(out.contains("\"subject_id\":\"sub_"), "{out}");
    let (ok, _, err) = subject(&["export", "--user", USER], None);
    assert!(!ok && err.contains("no data is held"), "{err}");
    let (ok, _, err) = subject(&["rectify", "--user", USER, "--set", "nonsense"], None);
    assert!(!ok && err.contains("FIELD=VALUE"), "{err}");

    // Rotate, then retire the old master key: refused while a data key is wrapped by it, fine afterwards.
    let before: serde_json::Value =
        serde_json::from_slice(&server.cli(&["keys", "status", "--json"], None).stdout).expect("json");
    let old_master = before["master_key_id"].as_str().expect("id").to_owned();
    assert!(!server.cli(&["keys", "retire-master", &old_master], None).status.success(), "still in use");
    assert!(server.cli(&["keys", "rotate"], None).status.success());
    let retired = server.cli(&["keys", "retire-master", &old_master, "--json"], None);
    assert!(retired.status.success(), "{}", String::from_utf8_lossy(&retired.stderr));
    let ring = std::fs::read_to_string(server.data().join("keys/master.keys")).expect("ring");
    assert!(!ring.contains(&old_master), "the retired key is gone from the ring");
    let install = json!({"credentials": {"password": "after-retirement"}});
    assert_eq!(client.post_json(&admin, "/api/v1/connectors/db/install", &install).await.status, 201);
    assert_eq!(
        pre_check_as(&client, &key, "someone-new").await["approved"],
        true,
        "the server keeps working"
    );
}
