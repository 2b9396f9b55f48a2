//! Prometheus metrics, kept in a registry owned by the application state (no process globals). Labels hold
//! routes as templates (`/api/v1/plan/{id}`), never request content, and methods from a fixed set: a label
//! taken from what a client sends would let anyone grow the registry without bound.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    route: String,
    method: &'static str,
    status: u16,
}

/// A request's method as a label: the standard ones by name, any other (HTTP allows any token) as `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodLabel(&'static str);

impl MethodLabel {
    pub fn of(method: &Method) -> MethodLabel {
        const STANDARD: [&str; 9] =
            ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"];
        MethodLabel(STANDARD.into_iter().find(|name| *name == method.as_str()).unwrap_or("other"))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    kind: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvaluatorLabels {
    evaluator: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// The metrics of one process, shared by both services.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    connections: Family<ServiceLabels, Gauge>,
    tls_handshake_failures: Family<ServiceLabels, Counter>,
    auth_failures: Family<ReasonLabels, Counter>,
    rate_limited: Family<TierLabels, Counter>,
    shared_state_unavailable: Family<OperationLabels, Counter>,
    license_grace: Family<TenantLabels, Counter>,
    emergency_uses: Counter,
    decisions: Family<DecisionLabels, Counter>,
    stages: Family<StageLabels, Histogram, fn() -> Histogram>,
    evaluators: Family<EvaluatorLabels, Counter>,
    approvals_held: Gauge,
    approvals_dropped_early: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 17))
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("axonflow");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let connections = Family::<ServiceLabels, Gauge>::default();
        let tls_handshake_failures = Family::<ServiceLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests handled, by route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time from request received to response produced",
            latency.clone(),
        );
        registry.register("open_connections", "Client connections currently open", connections.clone());
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out (including refused protocol versions)",
            tls_handshake_failures.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed authentications by reason (no credential material is ever recorded)",
            auth_failures.clone(),
        );
        let rate_limited = Family::<TierLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by the per-client rate limit",
            rate_limited.clone(),
        );
        let shared_state_unavailable = Family::<OperationLabels, Counter>::default();
        registry.register(
            "shared_state_unavailable",
            "Requests refused (503) because the shared limits or sessions (Redis) did not answer",
            shared_state_unavailable.clone(),
        );
        let license_grace = Family::<TenantLabels, Counter>::default();
        registry.register(
            "license_grace_requests",
            "Requests authenticated by a license key past its expiry, inside the grace period",
            license_grace.clone(),
        );
        let emergency_uses = Counter::default();
        registry.register(
            "emergency_access_uses",
            "Requests authenticated with a break-glass emergency credential",
            emergency_uses.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register("decisions", "Policy decisions by kind and verdict", decisions.clone());
        let stages =
            Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "decision_stage_duration_seconds",
            "Time per stage of a request: auth (credential, lockout and rate limit), detection, policy, audit",
            stages.clone(),
        );
        let evaluators = Family::<EvaluatorLabels, Counter>::default();
        registry.register(
            "policy_evaluations",
            "Policy decisions by evaluator: compiled, or regorus' interpreter (a bundle the compiled evaluator \
             does not cover, or an evaluation that met an error; a rise means policies are failing)",
            evaluators.clone(),
        );
        let approvals_held = Gauge::default();
        registry.register(
            "gateway_approvals_held",
            "Pre-check approvals (context_id) waiting for their LLM call's audit, as of this scrape",
            approvals_held.clone(),
        );
        let approvals_dropped_early = Counter::default();
        registry.register(
            "gateway_approvals_dropped_early",
            "Pre-check approvals dropped before their 5 minutes to stay within the capacity (a million held); \
             the audit of their LLM call is refused as an unknown context",
            approvals_dropped_early.clone(),
        );
        Arc::new(Metrics {
            registry,
            requests,
            latency,
            connections,
            tls_handshake_failures,
            auth_failures,
            rate_limited,
            shared_state_unavailable,
            license_grace,
            emergency_uses,
            decisions,
            stages,
            evaluators,
            approvals_held,
            approvals_dropped_early,
        })
    }

    pub fn observe_request(
        &self,
        service: &'static str,
        route: &str,
        method: MethodLabel,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = RequestLabels { service, route: route.to_owned(), method: method.as_str(), status };
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    pub fn connection_opened(&self, service: &'static str) {
        self.connections.get_or_create(&ServiceLabels { service }).inc();
    }

    pub fn connection_closed(&self, service: &'static str) {
        self.connections.get_or_create(&ServiceLabels { service }).dec();
    }

    pub fn tls_handshake_failed(&self, service: &'static str) {
        self.tls_handshake_failures.get_or_create(&ServiceLabels { service }).inc();
    }

    pub fn auth_failed(&self, reason: &'static str) {
        self.auth_failures.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn rate_limited(&self, tier: &'static str) {
        self.rate_limited.get_or_create(&TierLabels { tier }).inc();
    }

    /// `operation`: `rate_limit`, `lockout` or `session`.
    pub fn shared_state_unavailable(&self, operation: &'static str) {
        self.shared_state_unavailable.get_or_create(&OperationLabels { operation }).inc();
    }

    pub fn license_in_grace(&self, tenant: &str) {
        self.license_grace.get_or_create(&TenantLabels { tenant: tenant.to_owned() }).inc();
    }

    pub fn emergency_access_used(&self) {
        self.emergency_uses.inc();
    }

    /// Time spent in one stage outside the engine (e.g. `auth`).
    pub fn observe_stage(&self, stage: &'static str, duration: std::time::Duration) {
        self.stages.get_or_create(&StageLabels { stage }).observe(duration.as_secs_f64());
    }

    /// One checked request: its verdict, which policy evaluator decided it, and the time of each stage.
    pub fn observe_decision(&self, kind: &'static str, checked: &engine::Checked) {
        let verdict = checked.verdict();
        self.decisions.get_or_create(&DecisionLabels { kind, verdict }).inc();
        let evaluator = if checked.decision.timings.compiled { "compiled" } else { "interpreter" };
        self.evaluators.get_or_create(&EvaluatorLabels { evaluator }).inc();
        let timings = &checked.timings;
        for (stage, duration) in
            [("detection", timings.detection), ("policy", timings.policy), ("audit", timings.audit)]
        {
            self.observe_stage(stage, duration);
        }
    }

    /// The engine's approval counts, read when metrics are scraped.
    pub fn set_approvals(&self, stats: engine::ApprovalStats) {
        self.approvals_held.set(i64::try_from(stats.held).unwrap_or(i64::MAX));
        // The engine counts since start; a counter only goes up, whatever order two scrapes set it in.
        self.approvals_dropped_early
            .inner()
            .fetch_max(stats.dropped_early, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let metrics = Metrics::new();
        let (get, brew) =
            (MethodLabel::of(&Method::GET), MethodLabel::of(&Method::from_bytes(b"BREW").expect("a token")));
        metrics.observe_request("agent", "/health", get, 200, Duration::from_micros(120));
        metrics.observe_request("agent", "/health", get, 200, Duration::from_micros(80));
        metrics.observe_request("agent", "/ready", get, 503, Duration::from_millis(2));
        metrics.observe_request("agent", "/ready", brew, 405, Duration::from_millis(1));
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"axonflow_http_requests_total{service="agent",route="/health",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"route="/ready",method="GET",status="503"} 1"#), "{text}");
        assert!(text.contains(r#"route="/ready",method="other",status="405"} 1"#), "{text}");
        assert!(!text.contains("BREW"), "{text}");
        assert!(text.contains("axonflow_http_request_duration_seconds_bucket"), "{text}");
    }
}
