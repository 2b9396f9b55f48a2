//! The AxonFlow HTTPS services: the Agent (front door: authentication, policy enforcement, gateway mode, MCP,
//! audit) and the Orchestrator (LLM routing, response scanning). This is the only crate that knows HTTP and
//! JSON: handlers translate requests into calls on injected domain services and results into responses.

mod auth;
mod coalesce;
mod error;
mod json;
mod listener;
mod llm;
mod metrics;
mod middleware;
mod orchestrator;
mod routes;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use engine::{
    AuditLog, Authenticator, ControlPlane, FailureLimiter, KeyService, PolicyLifecycle, RequestLimiter,
    Sessions, StateBackend, UserTokens,
};
use store::Store;
use tower::Layer as _;
use types::Clock;

pub use auth::Caller;
pub use error::ApiError;
pub use json::{ApiJson, Reply};
pub use listener::{Listener, RedirectListener, ServeError, serve};
pub use llm::{Completion, LlmError, LlmProvider};
pub use metrics::Metrics;
pub use middleware::RequestId;
pub use orchestrator::RemoteOrchestrator;

/// Which of the two services a router or listener belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Agent,
    Orchestrator,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Agent => "axonflow-agent",
            Service::Orchestrator => "axonflow-orchestrator",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Service::Agent => "agent",
            Service::Orchestrator => "orchestrator",
        }
    }
}

/// Limits applied to every request.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { max_body_bytes: 1024 * 1024, request_timeout: Duration::from_secs(30) }
    }
}

/// The security services every protected route uses, built by the binary.
#[derive(Debug)]
pub struct Security {
    pub sessions: Sessions,
    pub user_tokens: UserTokens,
    pub authenticator: Arc<Authenticator>,
    pub keys: Arc<KeyService>,
    pub requests: RequestLimiter,
    pub failures: FailureLimiter,
    /// Where the limiters and sessions keep their state; Redis is part of readiness.
    pub shared_state: StateBackend,
}

/// Everything the handlers need, built by the binary and injected.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<AppParts>,
}

/// The parts of an [`AppState`].
#[derive(Debug)]
pub struct AppParts {
    pub policies: Arc<PolicyLifecycle>,
    /// The LLM provider this process calls (the Orchestrator's); `None` when none is configured.
    pub llm: Option<LlmProvider>,
    pub control: Arc<ControlPlane>,
    /// The tenant whose admins manage the system policy bundle (the bootstrap tenant).
    pub operator_tenant: String,
    pub subjects: Arc<engine::Subjects>,
    pub secrets: Arc<engine::ConnectorSecrets>,
    pub audit: AuditLog,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub limits: HttpLimits,
    pub security: Security,
    pub clock: Arc<dyn Clock>,
    /// `Some` for an Agent whose Orchestrator runs as another process, reached over HTTPS; in one process the
    /// Agent reaches the Orchestrator by a direct call.
    pub remote_orchestrator: Option<RemoteOrchestrator>,
}

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState { inner: Arc::new(parts) }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub(crate) fn operator_tenant(&self) -> &str {
        &self.inner.operator_tenant
    }

    pub(crate) fn subjects(&self) -> &engine::Subjects {
        &self.inner.subjects
    }

    pub(crate) fn secrets(&self) -> &engine::ConnectorSecrets {
        &self.inner.secrets
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Calls the LLM: the local provider, or the remote Orchestrator with the caller's credential. The local
    /// provider uses the tenant's own provider credential when its admin installed one (connector `llm`,
    /// `credentials.api_key`), else the configured `llm.api_key`.
    pub(crate) async fn complete(
        &self,
        prompt: &str,
        caller_headers: &axum::http::HeaderMap,
        tenant: &str,
    ) -> Result<Completion, LlmError> {
        match (&self.inner.llm, &self.inner.remote_orchestrator) {
            (Some(provider), _) => {
                let own_key = self.provider_key(tenant).await?;
                provider.complete(prompt, own_key.as_ref()).await
            }
            (None, Some(remote)) => remote.complete(prompt, caller_headers).await,
            (None, None) => Err(LlmError::NotConfigured),
        }
    }

    /// The tenant's own LLM provider key, from its sealed `llm` connector.
    async fn provider_key(&self, tenant: &str) -> Result<Option<types::Secret<String>>, LlmError> {
        let document = self.inner.secrets.cached(tenant, PROVIDER_CONNECTOR).await.map_err(|error| {
            tracing::error!(error = %error, "cannot read the tenant's provider credential");
            LlmError::Unreachable
        })?;
        let Some(document) = document else { return Ok(None) };
        let parsed: serde_json::Value =
            serde_json::from_str(document.expose()).map_err(|_| LlmError::NotConfigured)?;
        Ok(parsed["credentials"]["api_key"].as_str().map(|key| types::Secret::new(key.to_owned())))
    }

    pub(crate) fn llm_name(&self) -> &str {
        self.inner.llm.as_ref().map_or("orchestrator", LlmProvider::name)
    }

    pub(crate) fn inner_policies(&self) -> Arc<PolicyLifecycle> {
        self.inner.policies.clone()
    }

    pub(crate) fn policies(&self) -> &PolicyLifecycle {
        &self.inner.policies
    }

    pub(crate) fn control(&self) -> &ControlPlane {
        &self.inner.control
    }

    pub(crate) fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub(crate) fn security(&self) -> &Security {
        &self.inner.security
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub(crate) fn remote_orchestrator(&self) -> Option<&RemoteOrchestrator> {
        self.inner.remote_orchestrator.as_ref()
    }
}

/// The connector whose sealed credentials hold a tenant's own LLM provider key.
pub const PROVIDER_CONNECTOR: &str = "llm";

/// The Agent's routes.
pub fn agent_router(state: AppState) -> Router {
    service_router(state, Service::Agent)
}

/// The Orchestrator's routes.
pub fn orchestrator_router(state: AppState) -> Router {
    service_router(state, Service::Orchestrator)
}

fn service_router(state: AppState, service: Service) -> Router {
    let observe = middleware::ObserveConfig {
        service: service.label(),
        metrics: state.metrics().clone(),
        request_timeout: state.inner.limits.request_timeout,
    };
    let limits = state.inner.limits;
    let mut protected = Router::new()
        .route("/metrics", get(routes::health::metrics))
        .route("/api/v1/whoami", get(routes::keys::whoami));
    if service == Service::Orchestrator {
        protected = protected.route("/api/v1/llm/complete", post(routes::proxy::complete));
    }
    if service == Service::Agent {
        protected = protected
            .route("/api/request", post(routes::proxy::request))
            .route("/api/policy/pre-check", post(routes::gateway::pre_check))
            .route("/api/audit/llm-call", post(routes::gateway::audit_llm_call))
            .route("/api/v1/decide", post(routes::gateway::decide))
            .route("/api/v1/audit/tool-call", post(routes::gateway::audit_tool_call))
            .route("/api/v1/audit/search", post(routes::audit::search))
            .route("/api/v1/audit/export", get(routes::audit::export))
            .route("/api/v1/audit/tenant/{tenant_id}", get(routes::audit::tenant))
            .route("/api/v1/mcp/check-input", post(routes::mcp::check_input))
            .route("/api/v1/mcp/check-output", post(routes::mcp::check_output))
            .route("/api/v1/connectors", get(routes::protection::list))
            .route(
                "/api/v1/connectors/{id}",
                get(routes::protection::get).delete(routes::protection::uninstall),
            )
            .route("/api/v1/connectors/{id}/install", post(routes::protection::install))
            .route("/api/v1/gdpr/subjects/export", post(routes::protection::export))
            .route("/api/v1/gdpr/subjects/erase", post(routes::protection::erase))
            .route("/api/v1/gdpr/subjects/rectify", post(routes::protection::rectify))
            .route("/api/v1/gdpr/subjects/restrict", post(routes::protection::restrict))
            .route("/api/v1/policies/versions", get(routes::policies::list).post(routes::policies::upload))
            .route("/api/v1/policies/versions/{id}", get(routes::policies::get))
            .route("/api/v1/policies/versions/{id}/promote", post(routes::policies::promote))
            .route("/api/v1/policies/test", post(routes::policies::test))
            .route(
                "/api/v1/static-policies",
                get(routes::static_policies::list).post(routes::static_policies::create),
            )
            .route(
                "/api/v1/static-policies/{id}",
                get(routes::static_policies::get)
                    .put(routes::static_policies::update)
                    .patch(routes::static_policies::toggle)
                    .delete(routes::static_policies::delete),
            )
            .route(
                "/api/v1/policies/system/versions",
                get(routes::policies::system_list).post(routes::policies::system_upload),
            )
            .route("/api/v1/policies/system/versions/{id}", get(routes::policies::system_get))
            .route("/api/v1/policies/system/versions/{id}/promote", post(routes::policies::system_promote))
            .route("/api/v1/admin/sessions", post(routes::keys::open_session))
            .route("/api/v1/admin/sessions/current", axum::routing::delete(routes::keys::close_session))
            .route("/api/v1/admin/keys", get(routes::keys::list).post(routes::keys::issue))
            .route("/api/v1/admin/keys/{key_id}", get(routes::keys::get))
            .route("/api/v1/admin/keys/{key_id}/revoke", post(routes::keys::revoke))
            .route("/api/v1/admin/keys/{key_id}/rotate", post(routes::keys::rotate));
    }
    let protected = protected
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .with_state(state.clone());
    let routes = Router::new()
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .route("/openapi.json", get(routes::health::openapi))
        .with_state((state, service))
        .merge(protected)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(observe, middleware::observe));
    // The body limit needs no route, so it wraps the router once instead of every route (a layer added with
    // `Router::layer` is one more boxed service per route, cloned with everything under it on each request).
    Router::new().fallback_service(DefaultBodyLimit::max(limits.max_body_bytes).layer(routes))
}
