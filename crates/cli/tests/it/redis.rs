//! Several nodes sharing one Redis: one rate limit, one lockout and one set of admin sessions for the
//! deployment; and a Redis that does not answer refuses requests instead of letting them through.

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, Server};

/// Waits, if need be, until the current minute has at least 20 s left: the limits count in one-minute windows,
/// and a window boundary in the middle of the test would reset them.
async fn wait_for_a_fresh_window() {
    let now = time::OffsetDateTime::now_utc();
    let into_minute = i64::from(now.second()) * 1000 + i64::from(now.millisecond());
    if into_minute > 40_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into_minute + 200).unsigned_abs())).await;
    }
}

#[tokio::test]
async fn two_nodes_on_one_redis_share_limits_lockouts_and_sessions() {
    let Some(redis_url) = engine::testing::redis_url() else { return };
    let prefix = engine::testing::unique_prefix();
    let shared = [
        ("AXONFLOW_REDIS_URL", redis_url.as_str()),
        ("AXONFLOW_REDIS_KEY_PREFIX", prefix.as_str()),
        ("AXONFLOW_RATE_LIMIT_PRO_PER_MINUTE", "4"),
        ("AXONFLOW_AUTH_MAX_FAILURES_PER_MINUTE", "3"),
    ];
    let a = Server::start_with_env(&[], &shared);
    // Node B has its own data directory (node id, TLS, audit chain) and shares A's database and license keys,
    // as nodes of one deployment share PostgreSQL, the issuer's keys and the master key ring.
    let keys = a.data().join("keys");
    let (database, issuer, fingerprint) =
        (a.data().join("axonflow.db"), keys.join("issuer.key"), keys.join("fingerprint.key"));
    let master_keys = keys.join("master.keys");
    let mut node_b = shared.to_vec();
    node_b.extend([
        ("AXONFLOW_DATABASE_URL", database.to_str().expect("utf-8")),
        ("AXONFLOW_LICENSE_SIGNING_KEY_FILE", issuer.to_str().expect("utf-8")),
        ("AXONFLOW_LICENSE_FINGERPRINT_KEY_FILE", fingerprint.to_str().expect("utf-8")),
        ("AXONFLOW_MASTER_KEYS_FILE", master_keys.to_str().expect("utf-8")),
    ]);
    let b = Server::start_with_env(&[], &node_b);
    let (on_a, on_b) = (a.client(), b.client());
    let admin = a.admin_key();
    let ready = on_b.get("/ready").await;
    assert_eq!(ready.json()["checks"][1], json!({"name": "redis", "ok": true}));

    let body = json!({"kind": "service", "tier": "PRO", "service": {"name": "svc", "type": "backend-service"},
                      "permissions": ["query"], "expires_at": "2099-12-31"});
    let issued = on_a.post_json(&admin, "/api/v1/admin/keys", &body).await;
    assert_eq!(issued.status, 201, "{}", String::from_utf8_lossy(&issued.body));
    let key = issued.json()["key"].as_str().expect("key").to_owned();

    wait_for_a_fresh_window().await;
    // Four requests per minute in all, alternating between the nodes: each node alone would allow four.
    let nodes: [&Client; 2] = [&on_a, &on_b];
    for (n, remaining) in ["3", "2", "1", "0"].into_iter().enumerate() {
        let reply = nodes[n % 2].get_as(&key, "/api/v1/whoami").await;
        assert_eq!(reply.status, 200, "request {n}");
        assert_eq!(reply.headers["x-ratelimit-remaining"], remaining, "request {n}");
    }
    for client in nodes {
        let refused = client.get_as(&key, "/api/v1/whoami").await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.json()["error"]["code"], "rate_limited");
    }

    // A session opened on A works on B; logged off on B, it is gone on A.
    let opened = on_a.post_json(&admin, "/api/v1/admin/sessions", &json!({})).await;
    assert_eq!(opened.status, 201);
    let session = opened.json()["session_token"].as_str().expect("token").to_owned();
    assert_eq!(on_b.get_as(&session, "/api/v1/admin/keys").await.status, 200, "the session acts on B");
    let bearer = format!("Bearer {session}");
    let closed =
        on_b.send("DELETE", "/api/v1/admin/sessions/current", &[("authorization", &bearer)], vec![]).await;
    assert_eq!(closed.status, 204);
    assert_eq!(on_a.get_as(&session, "/api/v1/whoami").await.status, 401, "logged off everywhere");

    // Failed authentications on A lock this address out on B too. (The session refused just above was one.)
    for _ in 0..2 {
        assert_eq!(on_a.get_as("AXON-V2-wrong-key", "/api/v1/whoami").await.status, 401);
    }
    let locked = on_b.get_as(&admin, "/api/v1/whoami").await;
    assert_eq!(locked.status, 429, "valid credentials from a locked-out address, on the other node");
    assert_eq!(locked.json()["error"]["code"], "too_many_failed_attempts");
}

#[tokio::test]
async fn a_configured_redis_that_does_not_answer_refuses_requests_with_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("redis://:hunter2@{}", closed.local_addr().expect("addr"));
    drop(closed);
    let server = Server::start_with_env(
        &[],
        &[
            ("AXONFLOW_REDIS_URL", url.as_str()),
            ("AXONFLOW_REDIS_TIMEOUT_MS", "300"),
            ("AXONFLOW_LOG_LEVEL", "debug"),
        ],
    );
    let client = server.client();
    let admin = server.admin_key();
    for _ in 0..2 {
        let reply = client.get_as(&admin, "/api/v1/whoami").await;
        assert_eq!(reply.status, 503, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["error"]["code"], "unavailable");
        assert!(reply.headers.contains_key("retry-after"));
    }
    let ready = client.get("/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["checks"][1], json!({"name": "redis", "ok": false}));
    assert_eq!(client.get("/health").await.status, 200, "alive, just not ready");
    let logs = server.stderr();
    assert!(logs.contains("redis call failed"), "{logs}");
    assert!(!logs.contains("hunter2"), "the Redis password reached the logs");
}
