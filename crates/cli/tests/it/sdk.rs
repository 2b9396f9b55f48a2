use std::path::PathBuf;

use serde_json::json;

use crate::support::Server;
use crate::upstream::Upstream;

#[allow(clippy::print_stderr)] // the notice is for the person running the tests
fn venv_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-sdk/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the Python SDK venv (.venv-sdk) is missing: scripts/test creates it, and CI must run this test"
    );
    eprintln!("notice: .venv-sdk is missing (scripts/test creates it); skipping the Python SDK test");
    None
}

#[tokio::test]
async fn the_official_python_sdk_works_unchanged() {
    let Some(python) = venv_python() else { return };
    let upstream = Upstream::start().await;
    let url = upstream.url();
    let server = Server::start_with_env(
        &[],
        // On the single-threaded scheduler (what a one-core machine gets), so that every path the SDK takes
        // runs there too; the other tests get one worker a core.
        &[
            ("AXONFLOW_LLM_URL", url.as_str()),
            ("AXONFLOW_LLM_API_KEY", "sk-test-upstream"),
            ("AXONFLOW_RUNTIME_WORKER_THREADS", "1"),
        ],
    );
    let client = server.client();
    let admin = server.admin_key();
    let body = json!({"kind": "service", "tier": "PLUS", "service": {"name": "sdk-app", "type": "backend-service"},
                      "permissions": ["query", "policy:evaluate", "mcp:postgres:execute"], "expires_at": "2099-01-01"});
    let issued = client.post_json(&admin, "/api/v1/admin/keys", &body).await.json();
    let key = issued["key"].as_str().expect("key").to_owned();
    let admin_id =
        client.get_as(&admin, "/api/v1/whoami").await.json()["key_id"].as_str().expect("id").to_owned();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/sdk_check.py");
    let endpoint = format!("https://localhost:{}", server.agent.port());
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("AXONFLOW_AGENT_URL", endpoint)
        .env("SSL_CERT_FILE", &server.ca)
        .env("AXONFLOW_TELEMETRY", "off")
        .env_remove("AXONFLOW_TRY")
        .env("SDK_CLIENT_ID", "sdk-app")
        .env("SDK_CLIENT_SECRET", &key)
        .env("SDK_ADMIN_ID", &admin_id)
        .env("SDK_ADMIN_SECRET", &admin)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}\nserver log:\n{}", server.stderr());
    assert!(stdout.contains("sdk: 12 passed, 0 failed"), "{stdout}");
}
