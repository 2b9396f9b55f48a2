//! Proxy mode: `POST /api/request`. Policies are applied to the query; an allowed query goes to the
//! Orchestrator, which calls the configured LLM provider; the answer is scanned, redacted and audited before it
//! is returned. The Orchestrator's own route, `POST /api/v1/llm/complete`, serves Agents running apart.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::{Check, ProxyResponse};
use license::Permission;
use serde::{Deserialize, Serialize};

use super::gateway::{decision_headers, engine_error, require_text};
use crate::{ApiError, ApiJson, AppState, Caller, LlmError, Reply, RequestId};

/// The request types proxy mode serves: prompts for the LLM.
const LLM_REQUEST_TYPES: [&str; 4] = ["chat", "llm_chat", "natural-language", "sql"];

#[derive(Deserialize)]
pub(crate) struct ProxyRequest {
    query: String,
    #[serde(default)]
    user_token: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_id: Option<String>,
    request_type: String,
    #[serde(default)]
    context: Option<serde_json::Value>,
    #[serde(default)]
    media: Option<serde_json::Value>,
    #[serde(default)]
    skip_llm: Option<bool>,
}

#[derive(Serialize)]
struct PolicyInfo {
    policies_evaluated: Vec<String>,
    static_checks: Vec<String>,
    processing_time: String,
    tenant_id: String,
}

#[derive(Serialize)]
struct ProxyReply {
    success: bool,
    blocked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    policy_info: PolicyInfo,
    metadata: serde_json::Value,
    decision_id: String,
    engine: &'static str,
}

pub(crate) async fn request(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProxyRequest>,
) -> Result<Response, ApiError> {
    if !LLM_REQUEST_TYPES.contains(&body.request_type.as_str()) {
        let message = match body.request_type.as_str() {
            "mcp-query" => {
                "request_type `mcp-query` needs an MCP connector, and none is configured".to_owned()
            }
            other if other.len() <= 64 => {
                format!(
                    "request_type `{other}` is not supported here; use one of: {}",
                    LLM_REQUEST_TYPES.join(", ")
                )
            }
            _ => "request_type is not supported".to_owned(),
        };
        return Err(ApiError::bad_request("unsupported_request_type", message).with_field("request_type"));
    }
    if body.media.as_ref().is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("unsupported_media", "media governance is not available")
            .with_field("media"));
    }
    let mut context = match body.context {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map,
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_field", "`context` must be an object").with_field("context")
            );
        }
    };
    let user = super::gateway::end_user(&state, &caller, body.user_token.as_deref(), &headers, &mut context)?;
    let check = Check {
        principal: &caller.0,
        request_type: "llm_chat",
        query: require_text(&body.query, "query")?,
        user: user.as_deref(),
        context,
        request_id: &request_id.0,
    };
    // Boxed, as in `gateway::pre_check`.
    let checked = Box::pin(state.control().check_query(&check)).await.map_err(engine_error)?;
    state.metrics().observe_decision("request", &checked);
    let policy_info = PolicyInfo {
        policies_evaluated: checked.policies(),
        static_checks: engine::control::counts(&checked.findings).keys().map(|k| (*k).to_owned()).collect(),
        processing_time: format!("{}ms", (checked.timings.detection + checked.timings.policy).as_millis()),
        tenant_id: caller.0.tenant.as_str().to_owned(),
    };
    let decision_id = checked.decision_id().to_owned();
    if !checked.decision.proceeds() {
        let reason = checked.block_reasons().join("; ");
        let reply = ProxyReply {
            success: false,
            blocked: true,
            message: Some(reason.clone()),
            block_reason: Some(reason),
            data: None,
            result: None,
            policy_info,
            metadata: serde_json::json!({"verdict": checked.verdict()}),
            decision_id,
            engine: "axonflow-rs",
        };
        let mut response = (StatusCode::FORBIDDEN, Reply(reply)).into_response();
        decision_headers(response.headers_mut(), &checked, &request_id.0);
        return Ok(response);
    }
    let prompt = checked.policy_redaction().unwrap_or(check.query).to_owned();
    let mut reply = ProxyReply {
        success: true,
        blocked: false,
        block_reason: None,
        message: None,
        data: None,
        result: None,
        policy_info,
        metadata: serde_json::json!({"verdict": checked.verdict(), "redacted": checked.policy_redaction().is_some()}),
        decision_id: decision_id.clone(),
        engine: "axonflow-rs",
    };
    if body.skip_llm != Some(true) {
        let completion =
            state.complete(&prompt, &headers, caller.0.tenant.as_str()).await.map_err(llm_error)?;
        let (text, receipt) = state
            .control()
            .record_proxy_response(&ProxyResponse {
                principal: &caller.0,
                decision_id: &decision_id,
                usage: engine::LlmUsage {
                    provider: state.llm_name(),
                    model: &completion.model,
                    prompt_tokens: completion.prompt_tokens,
                    completion_tokens: completion.completion_tokens,
                    latency_ms: completion.latency.as_millis() as u64,
                },
                text: &completion.text,
                request_id: &request_id.0,
            })
            .await
            .map_err(engine_error)?;
        reply.metadata["model"] = completion.model.into();
        reply.metadata["response_audit_id"] = receipt.id.into();
        reply.metadata["token_usage"] = serde_json::json!({
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        });
        reply.data = Some(serde_json::json!({"response": text}));
        reply.result = Some(text);
    } else {
        reply.data = Some(serde_json::json!({"query": prompt}));
    }
    let mut response = Reply(reply).into_response();
    decision_headers(response.headers_mut(), &checked, &request_id.0);
    Ok(response)
}

fn llm_error(error: LlmError) -> ApiError {
    match error {
        LlmError::NotConfigured => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "llm_not_configured", error.to_string())
        }
        LlmError::InsecureUrl | LlmError::Unreachable | LlmError::Malformed | LlmError::Status(_) => {
            tracing::warn!(error = %error, "LLM call failed");
            ApiError::new(StatusCode::BAD_GATEWAY, "llm_unavailable", error.to_string())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteRequest {
    prompt: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CompleteReply {
    pub(crate) text: String,
    pub(crate) model: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) latency_ms: u64,
}

/// The Orchestrator's LLM call, for an Agent running as another process. Needs the caller's `query`
/// permission (the Agent forwards the caller's credential); the Agent does policy and audit.
pub(crate) async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CompleteRequest>,
) -> Result<Json<CompleteReply>, ApiError> {
    caller.require(&Permission::Query)?;
    let completion = state
        .complete(require_text(&body.prompt, "prompt")?, &headers, caller.0.tenant.as_str())
        .await
        .map_err(llm_error)?;
    Ok(Json(CompleteReply {
        text: completion.text,
        model: completion.model,
        prompt_tokens: completion.prompt_tokens,
        completion_tokens: completion.completion_tokens,
        latency_ms: completion.latency.as_millis() as u64,
    }))
}
