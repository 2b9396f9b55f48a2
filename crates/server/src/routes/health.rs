//! Liveness (`/health`, in the shape the AxonFlow SDKs read), readiness (`/ready`) and metrics (`/metrics`).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use license::Permission;

use crate::{ApiError, AppState, Caller, Service};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

/// The process is up and serving. Says nothing about its dependencies: that is `/ready`.
pub(crate) async fn health(State((_, service)): State<(AppState, Service)>) -> Json<impl Serialize> {
    Json(Health { status: "healthy", service: service.name(), version: env!("CARGO_PKG_VERSION") })
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    checks: Vec<Check>,
}

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
}

/// Ready to take traffic: the store answers, Redis too when limits and sessions are shared through it, and (for
/// an Agent running apart) the Orchestrator.
pub(crate) async fn ready(State((state, service)): State<(AppState, Service)>) -> Response {
    let mut checks = Vec::new();
    let store_ok = match state.store().ping().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %error, "store is not reachable");
            false
        }
    };
    checks.push(Check { name: "store", ok: store_ok });
    let shared_state = &state.security().shared_state;
    if let engine::StateBackend::Redis(_) = shared_state {
        checks.push(Check { name: "redis", ok: shared_state.ping().await.is_ok() });
    }
    if let (Service::Agent, Some(orchestrator)) = (service, state.remote_orchestrator()) {
        let ok = orchestrator.is_ready().await;
        checks.push(Check { name: "orchestrator", ok });
    }
    let all_ok = checks.iter().all(|check| check.ok);
    let status = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Ready { status: if all_ok { "ready" } else { "not_ready" }, checks };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition, for credentials holding `metrics:read`.
pub(crate) async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(&Permission::MetricsRead)?;
    state.metrics().set_approvals(state.control().approval_stats());
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics().encode(),
    )
        .into_response())
}

/// The OpenAPI 3 document of both services.
pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub(crate) const OPENAPI: &str = include_str!("../openapi/openapi.json");
