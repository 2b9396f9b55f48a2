//! The Orchestrator's LLM client: an OpenAI-compatible chat-completions provider (OpenAI, Azure OpenAI, vLLM,
//! Ollama, …) reached over HTTPS (plain HTTP only on loopback, for a local model server).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use types::Secret;

/// A configured provider.
#[derive(Debug, Clone)]
pub struct LlmProvider {
    name: String,
    endpoint: String,
    model: String,
    api_key: Option<Secret<String>>,
    client: reqwest::Client,
}

/// What the provider answered.
#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM provider URL must be https:// (http:// only on a loopback address)")]
    InsecureUrl,
    #[error("the LLM provider could not be reached")]
    Unreachable,
    #[error("the LLM provider answered with status {0}")]
    Status(u16),
    #[error("the LLM provider's answer was not understood")]
    Malformed,
    #[error("no LLM provider is configured (llm.url)")]
    NotConfigured,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [Message<'a>; 1],
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl LlmProvider {
    /// `base_url` is the API root, e.g. `https://api.openai.com/v1`; requests go to `{base_url}/chat/completions`.
    pub fn new(
        name: &str,
        base_url: &str,
        model: &str,
        api_key: Option<Secret<String>>,
        timeout: Duration,
    ) -> Result<LlmProvider, LlmError> {
        let url = reqwest::Url::parse(base_url).map_err(|_| LlmError::InsecureUrl)?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(domain)) => domain == "localhost",
            None => false,
        };
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(LlmError::InsecureUrl);
        }
        let provider = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|_| LlmError::Unreachable)?
            .with_root_certificates(system_roots())
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(provider)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|_| LlmError::Unreachable)?;
        Ok(LlmProvider {
            name: name.to_owned(),
            endpoint: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            api_key,
            client,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one user message and returns the first choice. `api_key` (a tenant's own provider credential)
    /// replaces the configured one.
    pub async fn complete(
        &self,
        prompt: &str,
        api_key: Option<&Secret<String>>,
    ) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let mut request = self
            .client
            .post(&self.endpoint)
            .json(&ChatRequest { model: &self.model, messages: [Message { role: "user", content: prompt }] });
        if let Some(key) = api_key.or(self.api_key.as_ref()) {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await.map_err(|error| {
            tracing::warn!(provider = %self.name, error = %error.without_url(), "LLM provider request failed");
            LlmError::Unreachable
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(LlmError::Status(status.as_u16()));
        }
        let body: ChatResponse = response.json().await.map_err(|_| LlmError::Malformed)?;
        let text =
            body.choices.into_iter().next().and_then(|c| c.message.content).ok_or(LlmError::Malformed)?;
        let usage = body.usage.unwrap_or(Usage { prompt_tokens: 0, completion_tokens: 0 });
        Ok(Completion {
            text,
            model: body.model.unwrap_or_else(|| self.model.clone()),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            latency: started.elapsed(),
        })
    }
}

/// The operating system's trusted roots (for public providers).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let check = |url: &str| LlmProvider::new("p", url, "m", None, Duration::from_secs(1)).is_ok();
        assert!(check("https://api.openai.com/v1"));
        assert!(check("http://127.0.0.1:11434/v1"));
        assert!(check("http://localhost:8000/v1"));
        assert!(!check("http://api.openai.com/v1"));
        assert!(!check("http://10.0.0.5/v1"));
        assert!(!check("ftp://x"));
        assert!(!check("not a url"));
    }
}
