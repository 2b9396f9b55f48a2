//! What wraps every route: a request id, a tracing span carrying it (so every log line of the request has it),
//! the time limit, a panic caught as a 500, metrics and one access-log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use tracing::Instrument;

use crate::error::ApiError;
use crate::metrics::Metrics;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being handled, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub Arc<str>);

/// Per-service settings of the middleware.
#[derive(Clone, Debug)]
pub struct ObserveConfig {
    pub service: &'static str,
    pub metrics: Arc<Metrics>,
    pub request_timeout: Duration,
}

/// Assigns the request id (a valid incoming `X-Request-Id` is kept, otherwise a UUIDv7), runs the request in a
/// span under the time limit, records metrics and logs the outcome. A handler that panics answers 500 (its
/// message is not logged: it could hold request data) and is counted like any other response. Catching it here
/// rather than in a layer of its own saves every request a layer: axum wraps each route once per layer, and
/// clones the whole stack under a layer on each call.
pub async fn observe(State(config): State<ObserveConfig>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id: Arc<str> = match request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()) {
        Some(incoming) if is_safe_request_id(incoming) => Arc::from(incoming),
        _ => Arc::from(uuid::Uuid::now_v7().to_string()),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = crate::metrics::MethodLabel::of(request.method());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, service = config.service, method = method.as_str(), route = %route, client = tracing::field::Empty);
    let mut response = async {
        let handled = std::panic::AssertUnwindSafe(next.run(request)).catch_unwind();
        let response = match tokio::time::timeout(config.request_timeout, handled).await {
            Ok(Ok(response)) => response,
            Ok(Err(_panic)) => {
                tracing::error!("a handler panicked; the request failed with 500");
                ApiError::internal().into_response()
            }
            Err(_) => {
                tracing::warn!(timeout_ms = config.request_timeout.as_millis() as u64, "request timed out");
                ApiError::timeout().into_response()
            }
        };
        let elapsed = started.elapsed();
        tracing::info!(
            status = response.status().as_u16(),
            latency_us = elapsed.as_micros() as u64,
            "request completed"
        );
        config.metrics.observe_request(config.service, &route, method, response.status().as_u16(), elapsed);
        response
    }
    .instrument(span)
    .await;
    if let Ok(mut value) = HeaderValue::from_str(&id) {
        // Never indexed by HPACK: a value that cannot repeat would only evict the entries that do.
        value.set_sensitive(true);
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// A request id from a client is accepted only if it cannot inject anything into a log line or header.
fn is_safe_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    fn observed(router: Router, metrics: &Arc<Metrics>) -> Router {
        let config = ObserveConfig {
            service: "agent",
            metrics: metrics.clone(),
            request_timeout: Duration::from_secs(5),
        };
        router.layer(axum::middleware::from_fn_with_state(config, observe))
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_a_json_error_and_is_counted() {
        async fn boom() -> &'static str {
            panic!("secret request data");
        }
        let metrics = Metrics::new();
        let app = observed(Router::new().route("/boom", get(boom)), &metrics);
        let request = axum::http::Request::get("/boom").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        assert!(response.headers().contains_key(&REQUEST_ID), "the request id survives the panic");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert!(!body.to_string().contains("secret"), "the panic's message is not sent: {body}");
        let exposition = metrics.encode();
        assert!(
            exposition.lines().any(|l| l.starts_with("axonflow_http_requests_total{")
                && l.contains("route=\"/boom\"")
                && l.contains("status=\"500\"")
                && l.ends_with(" 1")),
            "{exposition}"
        );
        // The worker that ran the handler goes on serving.
        let request = axum::http::Request::get("/nothing").body(Body::empty()).unwrap();
        assert_eq!(app.oneshot(request).await.unwrap().status(), 404);
    }

    #[test]
    fn client_request_ids_are_kept_only_when_harmless() {
        for (id, safe) in [
            ("0190c8a3-5bfa-7cc2-a1b2-0123456789ab", true),
            ("req_42", true),
            ("", false),
            ("has space", false),
            ("inject\nlevel=error", false),
            ("quote\"", false),
        ] {
            assert_eq!(is_safe_request_id(id), safe, "{id:?}");
        }
        assert!(!is_safe_request_id(&"a".repeat(129)));
    }
}
