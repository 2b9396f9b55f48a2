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
