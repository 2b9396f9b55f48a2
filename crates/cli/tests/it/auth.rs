use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::support::{Client, Reply, Server};

/// Issues a key through the admin API and returns (key, key_id).
async fn issue(client: &Client, admin: &str, body: serde_json::Value) -> (String, String) {
    let reply = client.post_json(admin, "/api/v1/admin/keys", &body).await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let json = reply.json();
    (
        json["key"].as_str().expect("key").to_owned(),
        json["credential"]["key_id"].as_str().expect("id").to_owned(),
    )
}

fn service_key(tier: &str) -> serde_json::Value {
    json!({"kind": "service", "tier": tier, "service": {"name": "trip-planner", "type": "backend-service"},
           "permissions": ["query", "mcp:amadeus:search_flights"], "expires_at": "2099-12-31"})
}

fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}")))
}

fn error_code(reply: &Reply) -> String {
    reply.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn first_start_writes_a_private_admin_credential_and_prints_only_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[]);
    let path = server.data().join("admin.key");
    assert_eq!(std::fs::metadata(&path).expect("admin.key").permissions().mode() & 0o777, 0o600);
    let admin = server.admin_key();
    assert!(admin.starts_with("AXON-V2-"));
    let stderr = server.stderr();
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(!stderr.contains(&admin[admin.len() - 40..]), "the credential itself was printed");
    let issuer_key = server.data().join("keys").join("issuer.key");
    assert_eq!(std::fs::metadata(issuer_key).expect("issuer.key").permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn every_sdk_auth_scheme_works() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let (key, key_id) = issue(&client, &admin, service_key("PRO")).await;
    for headers in [
        vec![("x-license-key".to_owned(), key.clone())],
        vec![("authorization".to_owned(), format!("Bearer {key}"))],
        vec![("authorization".to_owned(), basic("trip-planner", &key))],
        vec![("authorization".to_owned(), basic(&key_id, &key))],
        // The Rust SDK sends both: the license key wins over its Basic client id.
        vec![("x-license-key".to_owned(), key.clone()), ("authorization".to_owned(), basic("community", ""))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let reply = client.send("GET", "/api/v1/whoami", &headers, Vec::new()).await;
        assert_eq!(reply.status, 200, "{headers:?}");
        let body = reply.json();
        assert_eq!(body["key_id"], key_id.as_str());
        assert_eq!(body["tenant_id"], "default");
        assert_eq!(body["rate_limit"]["limit"], 100);
        assert!(reply.headers.contains_key("x-ratelimit-remaining"));
    }
}

#[tokio::test]
async fn refusals_are_generic_401s_that_never_echo_the_key() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    // Change the signature's last hex digit (to another digit, whatever it was).
    let last = if admin.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &admin[..admin.len() - 1]);
    for (headers, code) in [
        (vec![], "unauthorized"),
        (vec![("authorization", basic("community", ""))], "unauthorized"),
        (vec![("authorization", basic("someone-else", &admin))], "unauthorized"),
        (vec![("authorization", "Bearer not-a-key".to_owned())], "unauthorized"),
        (vec![("x-license-key", tampered.clone())], "unauthorized"),
        (vec![("x-license-key", "AXON-PLUS-acme-20271231-deadbeef".to_owned())], "deprecated_license_key"),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = client.send("GET", "/api/v1/whoami", &headers, Vec::new()).await;
        assert_eq!(reply.status, 401, "{headers:?}");
        assert_eq!(error_code(&reply), code);
        let body = String::from_utf8_lossy(&reply.body);
        assert!(!body.contains("AXON-V2") && !body.contains(&admin[admin.len() - 30..]), "{body}");
        if code == "deprecated_license_key" {
            assert!(body.contains("rotate to a V2 key"), "{body}");
        }
    }
    // Health, readiness stay open; metrics do not.
    assert_eq!(client.get("/health").await.status, 200);
    assert_eq!(client.get("/ready").await.status, 200);
    assert_eq!(client.get("/metrics").await.status, 401);
}

#[tokio::test]
async fn a_key_for_another_environment_is_refused() {
    let server = Server::start(&[]);
    let out = server.cli(
        &[
            "license",
            "issue",
            "--tenant",
            "default",
            "--service",
            "svc",
            "--env",
            "staging",
            "--expires",
            "2099-01-01",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    let reply = server.client().get_as(&key, "/api/v1/whoami").await;
    assert_eq!(reply.status, 401);
    let verify = server.cli(&["license", "verify", "--json", "-"], Some(&key));
    assert_eq!(verify.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&verify.stdout).expect("json");
    assert_eq!(json["reason"], "wrong_environment");
}

#[tokio::test]
async fn expired_keys_are_refused_unless_in_the_configured_grace_period() {
    for (grace, expected) in [("0", 401), ("3600", 200)] {
        let server = Server::start_with_env(&[], &[("AXONFLOW_LICENSE_GRACE_SECONDS", grace)]);
        let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
        let expires = soon.format(&time::format_description::well_known::Rfc3339).expect("format");
        let out = server.cli(
            &["license", "issue", "--tenant", "default", "--service", "svc", "--expires", &expires],
            None,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
        assert_eq!(server.client().get_as(&key, "/api/v1/whoami").await.status, 200, "valid before expiry");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let reply = server.client().get_as(&key, "/api/v1/whoami").await;
        assert_eq!(reply.status, expected, "grace {grace}");
        if expected == 200 {
            let left = reply.json()["license_grace_seconds_remaining"].as_u64().expect("grace shown");
            assert!((3500..=3600).contains(&left), "{left}");
            assert!(reply.headers.contains_key("x-axonflow-license-grace-seconds"));
            let metrics = server.client().get_as(&server.admin_key(), "/metrics").await;
            assert!(
                String::from_utf8_lossy(&metrics.body)
                    .contains("axonflow_license_grace_requests_total{tenant=\"default\"} 1")
            );
        }
    }
}

#[tokio::test]
async fn revocation_applies_at_once_and_rotation_keeps_the_old_key_for_the_overlap() {
    let server = Server::start_with_env(&[], &[("AXONFLOW_AUTH_CACHE_TTL_MS", "0")]);
    let client = server.client();
    let admin = server.admin_key();
    let (old, old_id) = issue(&client, &admin, service_key("PLUS")).await;

    let rotated = client
        .post_json(&admin, &format!("/api/v1/admin/keys/{old_id}/rotate"), &json!({"overlap_hours": 1}))
        .await;
    assert_eq!(rotated.status, 201);
    let new = rotated.json()["key"].as_str().expect("key").to_owned();
    assert_eq!(client.get_as(&old, "/api/v1/whoami").await.status, 200, "old key works during the overlap");
    assert_eq!(client.get_as(&new, "/api/v1/whoami").await.status, 200);
    let listed = client.get_as(&admin, &format!("/api/v1/admin/keys/{old_id}")).await.json();
    assert_eq!(listed["status"], "revocation_scheduled");

    let revoked = client
        .post_json(&admin, &format!("/api/v1/admin/keys/{old_id}/revoke"), &json!({"reason": "leaked"}))
        .await;
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(client.get_as(&old, "/api/v1/whoami").await.status, 401);

    // Revocation from the operator's command line, in another process.
    let new_id = rotated.json()["credential"]["key_id"].as_str().expect("id").to_owned();
    let out = server.cli(&["license", "revoke", &new_id, "--reason", "compromised"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(client.get_as(&new, "/api/v1/whoami").await.status, 401);
}

#[tokio::test]
async fn wildcards_are_refused_when_a_key_is_created() {
    let server = Server::start(&[]);
    let client = server.client();
    let mut body = service_key("PRO");
    body["permissions"] = json!(["query", "mcp:*:*"]);
    let reply = client.post_json(&server.admin_key(), "/api/v1/admin/keys", &body).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["field"], "permissions[1]");
    let out = server.cli(
        &[
            "license",
            "issue",
            "--tenant",
            "t",
            "--service",
            "s",
            "--permission",
            "mcp:amadeus:*",
            "--expires",
            "2099-01-01",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wildcard"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn tenants_cannot_see_or_change_each_others_keys() {
    let server = Server::start(&[]);
    let client = server.client();
    let out = server.cli(
        &[
            "license",
            "issue",
            "--tenant",
            "acme",
            "--kind",
            "admin",
            "--tier",
            "PLUS",
            "--expires",
            "2099-01-01",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let acme_admin = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    let (_, acme_key_id) = issue(&client, &acme_admin, service_key("PRO")).await;
    let default_admin = server.admin_key();

    let listed = client.get_as(&default_admin, "/api/v1/admin/keys").await.json();
    let ids: Vec<&str> =
        listed["keys"].as_array().expect("keys").iter().filter_map(|k| k["key_id"].as_str()).collect();
    assert!(!ids.contains(&acme_key_id.as_str()), "{ids:?}");
    assert!(listed["keys"].as_array().expect("keys").iter().all(|k| k["tenant_id"] == "default"));
    assert_eq!(client.get_as(&default_admin, &format!("/api/v1/admin/keys/{acme_key_id}")).await.status, 404);
    for action in ["revoke", "rotate"] {
        let reply = client
            .post_json(
                &default_admin,
                &format!("/api/v1/admin/keys/{acme_key_id}/{action}"),
                &json!({"reason": "x"}),
            )
            .await;
        assert!(reply.status == 404 || reply.status == 422, "{action}: {}", reply.status);
    }
    assert_eq!(client.get_as(&acme_admin, &format!("/api/v1/admin/keys/{acme_key_id}")).await.status, 200);
}

#[tokio::test]
async fn services_cannot_administer_keys_or_read_metrics() {
    let server = Server::start(&[]);
    let client = server.client();
    let (key, _) = issue(&client, &server.admin_key(), service_key("PRO")).await;
    let reply = client.get_as(&key, "/api/v1/admin/keys").await;
    assert_eq!((reply.status, error_code(&reply).as_str()), (403, "forbidden"));
    assert_eq!(client.get_as(&key, "/metrics").await.status, 403);
}

#[tokio::test]
async fn clients_over_their_tier_limit_get_429_with_retry_after() {
    let server = Server::start_with_env(&[], &[("AXONFLOW_RATE_LIMIT_PRO_PER_MINUTE", "3")]);
    let client = server.client();
    let (key, _) = issue(&client, &server.admin_key(), service_key("PRO")).await;
    // Seven requests must hit the limit even if a minute boundary falls among them.
    let mut limited = None;
    for _ in 0..7 {
        let reply = client.get_as(&key, "/api/v1/whoami").await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200);
    }
    let reply = limited.expect("a 429 within seven requests");
    assert_eq!(error_code(&reply), "rate_limited");
    let retry: u64 = reply.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(reply.headers["x-ratelimit-limit"], "3");
    assert_eq!(reply.headers["x-ratelimit-remaining"], "0");
}

#[tokio::test]
async fn repeated_failures_lock_out_the_source_and_are_counted() {
    let server = Server::start_with_env(&[], &[("AXONFLOW_AUTH_MAX_FAILURES_PER_MINUTE", "3")]);
    let client = server.client();
    let admin = server.admin_key();
    let metrics_before = String::from_utf8_lossy(&client.get_as(&admin, "/metrics").await.body).into_owned();
    assert!(!metrics_before.contains("locked_out"));
    let mut locked = false;
    // Two rounds at most: a minute boundary can reset the window once.
    for _ in 0..2 {
        for _ in 0..3 {
            assert_eq!(client.get_as("AXON-V2-wrong-key", "/api/v1/whoami").await.status, 401);
        }
        let reply = client.get_as(&admin, "/api/v1/whoami").await;
        if reply.status == 429 {
            assert_eq!(error_code(&reply), "too_many_failed_attempts");
            assert!(reply.headers.contains_key("retry-after"));
            locked = true;
            break;
        }
    }
    assert!(locked, "valid credentials from a locked-out source must be refused");
}

#[tokio::test]
async fn no_key_material_reaches_the_logs() {
    let server = Server::start_with_env(&["--log-level", "debug"], &[("AXONFLOW_LOG_FORMAT", "json")]);
    let client = server.client();
    let admin = server.admin_key();
    let (key, key_id) = issue(&client, &admin, service_key("PRO")).await;
    let _ = client.get_as(&key, "/api/v1/whoami").await;
    let _ = client
        .send("GET", "/api/v1/whoami", &[("authorization", &basic("trip-planner", &key))], Vec::new())
        .await;
    let _ = client.get_as(&format!("{key}x"), "/api/v1/whoami").await;
    let _ = client.post_json(&admin, &format!("/api/v1/admin/keys/{key_id}/rotate"), &json!({})).await;
    let logs = server.stderr();
    assert!(logs.contains(&key_id), "the key id is fine to log and should be there: {logs}");
    for secret in [&admin, &key] {
        let signature = &secret[secret.len() - 128..];
        for window in [&signature[..32], &signature[48..80], &secret[8..40]] {
            assert!(!logs.contains(window), "key material in the logs");
        }
    }
    let fingerprint_secret =
        std::fs::read_to_string(server.data().join("keys").join("fingerprint.key")).expect("key");
    assert!(!logs.contains(fingerprint_secret.trim()));
}

#[tokio::test]
async fn admin_sessions_log_off_when_idle() {
    let server = Server::start_with_env(&[], &[("AXONFLOW_AUTH_SESSION_IDLE_SECONDS", "1")]);
    let client = server.client();
    let admin = server.admin_key();
    let opened = client.post_json(&admin, "/api/v1/admin/sessions", &json!({})).await;
    assert_eq!(opened.status, 201);
    let session = opened.json()["session_token"].as_str().expect("token").to_owned();
    assert!(session.starts_with("axs_"));
    assert_eq!(opened.json()["idle_timeout_seconds"], 1);
    assert_eq!(
        client.get_as(&session, "/api/v1/admin/keys").await.status,
        200,
        "the session acts as the admin"
    );
    let cookie = format!("axonflow_session={session}");
    assert_eq!(client.send("GET", "/api/v1/whoami", &[("cookie", &cookie)], Vec::new()).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(
        client.get_as(&session, "/api/v1/admin/keys").await.status,
        401,
        "logged off after the idle time"
    );

    let again = client.post_json(&admin, "/api/v1/admin/sessions", &json!({})).await.json()["session_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let closed = client
        .send(
            "DELETE",
            "/api/v1/admin/sessions/current",
            &[("authorization", &format!("Bearer {again}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(closed.status, 204);
    assert_eq!(client.get_as(&again, "/api/v1/whoami").await.status, 401);

    let (service, _) = issue(&client, &admin, service_key("PRO")).await;
    assert_eq!(
        client.post_json(&service, "/api/v1/admin/sessions", &json!({})).await.status,
        403,
        "admins only"
    );
}
