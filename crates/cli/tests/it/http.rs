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
    assert_eq!(client.get("/metrics").await.status, 401, "metrics need a credential");
    let text = String::from_utf8(client.get_as(&server.admin_key(), "/metrics").await.body).expect("utf-8");
    assert!(
        text.contains(
            r#"axonflow_http_requests_total{service="agent",route="/health",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",method="GET",status="404"} 1"#), "{text}");
}

#[tokio::test]
async fn sigterm_stops_the_server_with_exit_code_zero() {
    let mut server = Server::start(&[]);
    assert_eq!(server.client().get("/health").await.status, 200);
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
    assert!(server.stderr().contains("SIGTERM received"), "{}", server.stderr());
}

#[tokio::test]
async fn sigint_stops_the_server_with_exit_code_zero() {
    let mut server = Server::start(&[]);
    server.signal("INT");
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0));
}
