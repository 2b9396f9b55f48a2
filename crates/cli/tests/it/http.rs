use std::time::Duration;

use crate::support::Server;

#[tokio::test]
async fn health_ready_and_metrics_on_both_services() {
    let server = Server::start(&[]);
    for (addr, service) in [(server.agent, "axonflow-agent"), (server.orchestrator, "axonflow-orchestrator")]
    {
        let client = crate::support::Client::new(&server.ca, addr);
        let health = client.get("/health").await;
        assert_eq!(health.status, 200);
        let body = health.json();
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["service"], service);
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        let ready = client.get("/ready").await;
        assert_eq!(ready.status, 200);
        assert_eq!(ready.json()["checks"][0], serde_json::json!({"name": "store", "ok": true}));
    }
}

#[tokio::test]
async fn every_response_has_a_request_id_and_a_client_id_is_kept_when_harmless() {
    let server = Server::start(&[]);
    let client = server.client();
    let reply = client.get("/health").await;
    let id = reply.headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "{id}");
    let reply = client.send("GET", "/health", &[("x-request-id", "trace-42")], Vec::new()).await;
    assert_eq!(reply.headers["x-request-id"], "trace-42");
    let reply = client.send("GET", "/health", &[("x-request-id", "bad id\"")], Vec::new()).await;
    assert_ne!(reply.headers["x-request-id"], "bad id\"");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let server = Server::start(&[]);
    let client = server.client();
    let reply = client.get("/no/such/route").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "not_found");
    let reply = client.send("DELETE", "/health", &[], Vec::new()).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_plain_http_listener_is_off_by_default_and_only_redirects_when_on() {
    let server = Server::start(&[]);
    assert!(!server.stderr().contains("redirect"));
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let redirecting = Server::start(&["--redirect-listen", &format!("127.0.0.1:{port}")]);
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /health?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer))
        .await
        .expect("in time")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    let location = format!("location: https://localhost:{}/health?x=1", redirecting.agent.port());
    assert!(answer.to_ascii_lowercase().contains(&location), "{answer}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = Server::start(&[]);
    let client = server.client();
    for _ in 0..3 {
        assert_eq!(client.get("/health").await.status, 200);
    }
    assert_eq!(client.get("/nowhere").await.status, 404);
    // Any token is a method; what a client makes up must not become a label (the registry would grow without
    // bound).
    assert_eq!(client.send("BREW-COFFEE-42", "/health", &[], Vec::new()).await.status, 405);
    assert_eq!(client.get("/metrics").await.status, 401, "metrics need a credential");
    let text = String::from_utf8(client.get_as(&server.admin_key(), "/metrics").await.body).expect("utf-8");
    assert!(
        text.contains(
            r#"axonflow_http_requests_total{service="agent",route="/health",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",method="GET",status="404"} 1"#), "{text}");
    assert!(text.contains(r#"route="/health",method="other",status="405"} 1"#), "{text}");
    assert!(!text.contains("BREW"), "{text}");
}

#[tokio::test]
async fn sigterm_stops_the_server_with_exit_code_zero() {
    let mut server = Server::start(&[]);
    assert_eq!(server.client().get("/health").await.status, 200);
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
    assert!(server.stderr().contains("SIGTERM received"), "{}", server.stderr());
}

/// The server turns transparent huge pages off for itself (2 MiB zeroed at a first touch stalled the request
/// worker for milliseconds), whatever the host's setting; `THP_enabled` is the kernel's own view of it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages() {
    let server = Server::start(&[]);
    assert_eq!(server.client().get("/health").await.status, 200);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("proc status");
    let thp = status.lines().find_map(|line| line.strip_prefix("THP_enabled:")).map(str::trim);
    assert_eq!(thp, Some("0"), "{status}");
}

#[tokio::test]
async fn sigint_stops_the_server_with_exit_code_zero() {
    let mut server = Server::start(&[]);
    server.signal("INT");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
}

async fn post_raw(server: &Server, content_type: Option<&str>, body: Vec<u8>) -> crate::support::Reply {
    let admin = server.admin_key();
    let mut headers = vec![("x-license-key", admin.as_str())];
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    server.client().send("POST", "/api/v1/admin/keys", &headers, body).await
}

#[tokio::test]
async fn bad_bodies_get_json_errors_with_the_right_status() {
    let server = Server::start(&[]);
    let json = Some("application/json");
    for (content_type, body, status, code) in [
        (json, b"{\"kind\": ".to_vec(), 400, "malformed_json"),
        (json, Vec::new(), 400, "empty_body"),
        (
            json,
            b"{\"kind\": \"service\", \"tier\": \"PRO\", \"permissions\": 5, \"expires_at\": \"2099-01-01\"}"
                .to_vec(),
            422,
            "invalid_field",
        ),
        (
            json,
            b"{\"tier\": \"PRO\", \"permissions\": [], \"expires_at\": \"2099-01-01\"}".to_vec(),
            422,
            "invalid_field",
        ),
        (json, b"{\"kind\": \"\xff\xfe\"}".to_vec(), 400, "invalid_utf8"),
        (Some("text/plain"), b"{}".to_vec(), 415, "unsupported_media_type"),
        (None, b"{}".to_vec(), 415, "unsupported_media_type"),
        (json, vec![b' '; 2 * 1024 * 1024], 413, "payload_too_large"),
    ] {
        let reply = post_raw(&server, content_type, body).await;
        assert_eq!(reply.status, status, "{code}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["error"]["code"], code);
    }
    let reply = post_raw(
        &server,
        json,
        b"{\"kind\": \"service\", \"tier\": \"PRO\", \"permissions\": 5, \"expires_at\": \"2099-01-01\"}"
            .to_vec(),
    )
    .await;
    assert_eq!(reply.json()["error"]["field"], "permissions");
    // Nothing was registered by any of them: only the bootstrap admin exists.
    let listed = server.client().get_as(&server.admin_key(), "/api/v1/admin/keys").await.json();
    assert_eq!(listed["total"], 1);
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let server = Server::start_with_env(&[], &[("AXONFLOW_HTTP_MAX_BODY_BYTES", "64")]);
    let body = serde_json::json!({"kind": "service", "tier": "PRO", "permissions": ["query"], "expires_at": "2099-01-01"});
    let reply = post_raw(&server, Some("application/json"), body.to_string().into_bytes()).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_before_exiting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = Server::start(&[]);
    let admin = server.admin_key();
    let body = serde_json::json!({"kind": "user", "tier": "PRO", "permissions": ["query"], "expires_at": "2099-01-01"})
        .to_string();
    let config = crate::support::client_config(
        crate::support::roots(&server.ca),
        rustls::DEFAULT_VERSIONS,
        &[b"http/1.1"],
    );
    let mut stream = crate::support::tls_connect(server.agent, config).await.expect("connect");
    let head = format!(
        "POST /api/v1/admin/keys HTTP/1.1\r\nHost: localhost\r\nX-License-Key: {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body.as_bytes()[..10]).await.expect("first part");
    stream.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // New connections are no longer accepted...
    assert!(
        crate::support::tls_connect(
            server.agent,
            crate::support::client_config(
                crate::support::roots(&server.ca),
                rustls::DEFAULT_VERSIONS,
                &[b"http/1.1"]
            )
        )
        .await
        .is_err(),
        "a new connection was accepted during the drain"
    );
    // ...but the request in flight completes.
    stream.write_all(&body.as_bytes()[10..]).await.expect("rest");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("in time")
        .ok();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert!(text.contains("\"key\":\"AXON-V2-"), "{text}");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
}

#[tokio::test]
async fn an_agent_reaches_a_separate_orchestrator_over_https_with_the_same_ca() {
    let shared = tempfile::tempdir().expect("tempdir");
    let orchestrator_dir = tempfile::tempdir().expect("tempdir");
    // The orchestrator creates the deployment's CA; the agent is given it.
    let orchestrator = Server::spawn_command("orchestrator", orchestrator_dir, &[], &[]);
    assert_eq!(orchestrator.agent.port(), 0, "the orchestrator process runs no agent");
    let tls = orchestrator.data().join("tls");
    let url = format!("https://localhost:{}", orchestrator.orchestrator.port());
    let agent = Server::spawn_command(
        "agent",
        shared,
        &[
            "--orchestrator-url",
            &url,
            "--tls-cert",
            tls.join("server.pem").to_str().expect("utf-8"),
            "--tls-key",
            tls.join("server.key").to_str().expect("utf-8"),
        ],
        &[("AXONFLOW_TLS_CA_FILE", tls.join("ca.pem").to_str().expect("utf-8"))],
    );
    assert_eq!(agent.orchestrator.port(), 0, "the agent process runs no orchestrator");
    let client = crate::support::Client::new(&tls.join("ca.pem"), agent.agent);
    let ready = client.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&ready.body));
    assert_eq!(ready.json()["checks"][1], serde_json::json!({"name": "orchestrator", "ok": true}));
    drop(orchestrator);
    let ready = client.get("/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["checks"][1], serde_json::json!({"name": "orchestrator", "ok": false}));
}

#[tokio::test]
async fn an_agent_refuses_a_plain_http_orchestrator_url() {
    let output = crate::support::binary()
        .args(["agent", "--orchestrator-url", "http://localhost:9443"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("https://"));
}
