use serde_json::{Value, json};

use crate::support::{Client, Server};

const EXTRA: &str = "package axonflow.policy\n\nimport rego.v1\n\n\
deny contains \"project bluebird is embargoed\" if contains(lower(input.query), \"bluebird\")\n";
const EXTRA_TEST: &str = "package axonflow.policy\n\nimport rego.v1\n\n\
test_bluebird_denied if \"project bluebird is embargoed\" in deny with input as {\"query\": \"Status of Bluebird?\", \"context\": {\"user_role\": \"analyst\"}}\n";

async fn decide(client: &Client, key: &str, query: &str) -> String {
    let reply = client
        .post_json(key, "/api/v1/decide", &json!({"query": query, "context": {"user_role": "analyst"}}))
        .await;
    reply.json()["verdict"].as_str().expect("verdict").to_owned()
}

fn active(versions: &Value) -> String {
    versions["versions"].as_array().expect("versions").iter().find(|v| v["active"] == true).expect("active")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn upload_refuses_bad_bundles_then_promote_and_rollback_change_live_decisions() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let versions = client.get_as(&admin, "/api/v1/policies/versions").await.json();
    assert_eq!(versions["total"], 1, "the built-in bundle is the first version: {versions}");
    let built_in = active(&versions);
    let mut files: serde_json::Map<String, Value> =
        client.get_as(&admin, &format!("/api/v1/policies/versions/{built_in}")).await.json()["files"]
            .as_object()
            .expect("files")
            .clone();

    // A syntax error, and a failing test: both refused with their reasons; nothing changes.
    let mut broken = files.clone();
    broken.insert("production/extra.rego".to_owned(), "package axonflow.policy\nallow if {\n".into());
    let reply = client.post_json(&admin, "/api/v1/policies/versions", &json!({"files": broken})).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (422, Some("bundle_refused")));
    let mut untested = files.clone();
    untested.insert("production/extra.rego".to_owned(), EXTRA.into());
    untested.insert("tests/extra_test.rego".to_owned(), EXTRA_TEST.replace("Bluebird", "Nothing").into());
    let reply = client.post_json(&admin, "/api/v1/policies/versions", &json!({"files": untested})).await;
    assert_eq!(reply.status, 422);
    assert!(reply.json()["problems"].to_string().contains("test_bluebird_denied"), "{}", reply.json());
    assert_eq!(decide(&client, &admin, "What is the status of project Bluebird?").await, "allow");

    files.insert("production/extra.rego".to_owned(), EXTRA.into());
    files.insert("tests/extra_test.rego".to_owned(), EXTRA_TEST.into());
    let uploaded = client.post_json(&admin, "/api/v1/policies/versions", &json!({"files": files})).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.json());
    let new = uploaded.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(uploaded.json()["summary"], "2 added, 0 changed, 0 removed");
    assert_eq!(
        decide(&client, &admin, "What is the status of project Bluebird?").await,
        "allow",
        "not live until promoted"
    );

    let promoted =
        client.post_json(&admin, &format!("/api/v1/policies/versions/{new}/promote"), &json!({})).await;
    assert_eq!(promoted.status, 200);
    assert_eq!(decide(&client, &admin, "What is the status of project Bluebird?").await, "deny");
    assert_eq!(decide(&client, &admin, "What is the weather?").await, "allow");

    // The promoted version survives a restart.
    let server = Server::start_in(server.into_data_dir(), &[]);
    let client = server.client();
    assert_eq!(decide(&client, &admin, "project bluebird").await, "deny");

    let rolled_back =
        client.post_json(&admin, &format!("/api/v1/policies/versions/{built_in}/promote"), &json!({})).await;
    assert_eq!(rolled_back.status, 200);
    assert_eq!(
        decide(&client, &admin, "What is the status of project Bluebird?").await,
        "allow",
        "the old decisions return"
    );
    let versions = client.get_as(&admin, "/api/v1/policies/versions").await.json();
    assert_eq!((versions["total"].as_u64(), active(&versions)), (Some(2), built_in));
    let audit = client
        .post_json(&admin, "/api/v1/audit/search", &json!({"request_type": "policy_admin"}))
        .await
        .json();
    assert_eq!(audit["total"], 3, "uploaded, promoted, rolled back: {audit}");
}

#[tokio::test]
async fn only_policy_admins_change_policies() {
    let server = Server::start(&[]);
    let client = server.client();
    let body = json!({"kind": "service", "tier": "PRO", "service": {"name": "s", "type": "t"},
                      "permissions": ["policy:evaluate"], "expires_at": "2099-01-01"});
    let key = client.post_json(&server.admin_key(), "/api/v1/admin/keys", &body).await.json()["key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(client.get_as(&key, "/api/v1/policies/versions").await.status, 403);
    let reply =
        client.post_json(&key, "/api/v1/policies/versions", &json!({"files": {"a.rego": "package a"}})).await;
    assert_eq!(reply.status, 403);
    let reply = client
        .post_json(
            &server.admin_key(),
            "/api/v1/policies/versions",
            &json!({"files": {"../x.rego": "package a"}}),
        )
        .await;
    assert_eq!((reply.status, reply.json()["error"]["field"].as_str()), (400, Some("files")));
}
