//! The Agent's link to an Orchestrator that runs as another process: HTTPS, trusting the deployment's CA.

use std::path::Path;
use std::time::Duration;

use crate::tls::{MinTlsVersion, TlsError, client_config_trusting};

/// An Orchestrator reached over HTTPS.
#[derive(Clone, Debug)]
pub struct RemoteOrchestrator {
    base_url: String,
    client: reqwest::Client,
}

impl RemoteOrchestrator {
    /// `base_url` is `https://host:port`; `ca_path` the CA that signed the Orchestrator's certificate.
    pub fn new(
        base_url: &str,
        ca_path: &Path,
        min_version: MinTlsVersion,
    ) -> Result<RemoteOrchestrator, TlsError> {
        let tls = client_config_trusting(ca_path, min_version)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|_| TlsError::Parse { path: ca_path.to_owned(), what: "client configuration" })?;
        Ok(RemoteOrchestrator { base_url: base_url.trim_end_matches('/').to_owned(), client })
    }

    /// Asks the Orchestrator to call its LLM provider, forwarding the caller's credential.
    pub async fn complete(
        &self,
        prompt: &str,
        caller_headers: &axum::http::HeaderMap,
    ) -> Result<crate::Completion, crate::LlmError> {
        let mut request = self.client.post(format!("{}/api/v1/llm/complete", self.base_url));
        for name in ["authorization", "x-license-key"] {
            if let Some(value) = caller_headers.get(name) {
                request = request.header(name, value.as_bytes());
            }
        }
        let response =
            request.json(&serde_json::json!({"prompt": prompt})).send().await.map_err(|error| {
                tracing::warn!(error = %error.without_url(), "orchestrator call failed");
                crate::LlmError::Unreachable
            })?;
        if !response.status().is_success() {
            return Err(crate::LlmError::Status(response.status().as_u16()));
        }
        let reply: crate::routes::proxy::CompleteReply =
            response.json().await.map_err(|_| crate::LlmError::Malformed)?;
        Ok(crate::Completion {
            text: reply.text,
            model: reply.model,
            prompt_tokens: reply.prompt_tokens,
            completion_tokens: reply.completion_tokens,
            latency: std::time::Duration::from_millis(reply.latency_ms),
        })
    }

    /// Whether the Orchestrator answers its readiness check.
    pub async fn is_ready(&self) -> bool {
        match self.client.get(format!("{}/ready", self.base_url)).send().await {
            Ok(response) => response.status().is_success(),
            Err(error) => {
                tracing::warn!(error = %error, "orchestrator is not reachable");
                false
            }
        }
    }
}
