//! Gateway and decision mode: `POST /api/policy/pre-check`, `POST /api/audit/llm-call`, `POST /api/v1/decide`,
//! and the tool-call audit. Shapes follow the AxonFlow SDK wire contract.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::{Check, Checked, EngineError, LlmCall, RateLimitStatus, ToolCall};
use serde::{Deserialize, Serialize};

use super::keys::RateLimitDto;
use crate::{ApiError, ApiJson, AppState, Caller, Reply, RequestId};

/// The transparency headers' names, built once: a name given as a string is parsed and copied into a new
/// allocation on every insert.
static X_AI_REQUEST_ID: HeaderName = HeaderName::from_static("x-ai-request-id");
static X_AI_DECISION_ID: HeaderName = HeaderName::from_static("x-ai-decision-id");
static X_AI_DECISION: HeaderName = HeaderName::from_static("x-ai-decision");
static X_AI_DECISION_BLOCKED: HeaderName = HeaderName::from_static("x-ai-decision-blocked");
static X_AI_POLICIES_APPLIED: HeaderName = HeaderName::from_static("x-ai-policies-applied");
pub(crate) static X_AI_AUDIT_HASH: HeaderName = HeaderName::from_static("x-ai-audit-hash");
static X_AI_PII_DETECTED: HeaderName = HeaderName::from_static("x-ai-pii-detected");

/// The transparency headers of a decision.
pub(crate) fn decision_headers(headers: &mut HeaderMap, checked: &Checked, request_id: &str) {
    // `unique`: a value no other response carries (ids, hashes) is never indexed by HPACK; in the
    // connection's table it would only evict the values that do repeat (verdicts, policy lists).
    let mut set = |name: &HeaderName, value: &str, unique: bool| {
        if let Ok(mut value) = HeaderValue::from_str(value) {
            value.set_sensitive(unique);
            headers.insert(name.clone(), value);
        }
    };
    set(&X_AI_REQUEST_ID, request_id, true);
    set(&X_AI_DECISION_ID, checked.decision_id(), true);
    set(&X_AI_DECISION, checked.verdict(), false);
    set(&X_AI_DECISION_BLOCKED, if checked.decision.proceeds() { "false" } else { "true" }, false);
    set(&X_AI_POLICIES_APPLIED, &checked.policies().join(","), false);
    set(&X_AI_AUDIT_HASH, &checked.receipt.hash_hex(), true);
    let pii = checked.findings.iter().any(|f| f.category() == detect::Category::Pii);
    set(&X_AI_PII_DETECTED, if pii { "true" } else { "false" }, false);
}

pub(crate) fn engine_error(error: EngineError) -> ApiError {
    match error {
        EngineError::Forbidden(permission) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this credential does not grant `{permission}`"),
        ),
        EngineError::Invalid { field, message } => {
            ApiError::bad_request("invalid_field", message).with_field(field)
        }
        EngineError::Audit(_) => ApiError::unavailable("the audit trail cannot record decisions right now"),
        EngineError::Unavailable(message) => ApiError::unavailable(message),
    }
}

/// A query must have content: an empty one is refused before anything is decided or recorded.
pub(crate) fn require_text<'a>(value: &'a str, field: &'static str) -> Result<&'a str, ApiError> {
    if value.trim().is_empty() {
        return Err(
            ApiError::bad_request("invalid_field", format!("`{field}` must not be empty")).with_field(field)
        );
    }
    Ok(value)
}

fn context_map(
    context: Option<serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match context {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(map)) => Ok(map),
        Some(_) => {
            Err(ApiError::bad_request("invalid_field", "`context` must be an object").with_field("context"))
        }
    }
}

/// The end user of a request: from the body's `user_token` or the `X-User-Token` header (`anonymous` and empty
/// mean none). With a user-token issuer configured the token must verify, its tenant must be the client's, and
/// the role policies see (`context.user_role`) comes only from the token; without one the token is an opaque id
/// and the calling service's `context.user_role` stands.
pub(crate) fn end_user(
    state: &AppState,
    caller: &Caller,
    body_token: Option<&str>,
    headers: &axum::http::HeaderMap,
    context: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, ApiError> {
    let token = body_token
        .or_else(|| headers.get("x-user-token").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "anonymous");
    let tokens = &state.security().user_tokens;
    let verified = matches!(tokens, engine::UserTokens::Verified { .. });
    if verified {
        context.remove("user_role");
    }
    let Some(token) = token else { return Ok(None) };
    match tokens.end_user(token, &caller.0) {
        Ok(user) => {
            if let Some(role) = user.role {
                context.insert("user_role".to_owned(), role.into());
            }
            if user.verified {
                context.insert("user_id".to_owned(), user.id.clone().into());
            }
            Ok(Some(user.id))
        }
        Err(engine::UserTokenError::WrongTenant) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_tenant",
            "the user belongs to another tenant than the client",
        )),
        Err(error) => {
            state.metrics().auth_failed("user_token");
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_user_token", error.to_string()))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct PreCheckRequest {
    #[serde(default)]
    user_token: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    query: String,
    #[serde(default)]
    data_sources: Vec<serde_json::Value>,
    #[serde(default)]
    context: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct PreCheckResponse {
    context_id: String,
    approved: bool,
    expires_at: String,
    requires_redaction: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_query: Option<String>,
    approved_data: serde_json::Value,
    policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_reason: Option<String>,
    decision_id: String,
    verdict: &'static str,
    rate_limit: RateLimitDto,
    engine: &'static str,
}

pub(crate) async fn pre_check(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    Extension(rate): Extension<RateLimitStatus>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PreCheckRequest>,
) -> Result<Response, ApiError> {
    let query = require_text(&body.query, "query")?;
    let mut context = context_map(body.context)?;
    if !body.data_sources.is_empty() {
        context.insert("data_sources".to_owned(), serde_json::Value::Array(body.data_sources));
    }
    if let Some(client_id) = body.client_id.filter(|c| !c.is_empty()) {
        context.entry("client_id").or_insert(client_id.into());
    }
    let user = end_user(&state, &caller, body.user_token.as_deref(), &headers, &mut context)?;
    let check = Check {
        principal: &caller.0,
        request_type: "llm_chat",
        query,
        user: user.as_deref(),
        context,
        request_id: &request_id.0,
    };
    // Boxed: the engine's future is about 3 KB, and the handler's future, which would hold it, is moved
    // (copied) several times on its way through the router and middleware.
    let (checked, approved) = Box::pin(state.control().pre_check(&check)).await.map_err(engine_error)?;
    state.metrics().observe_decision("pre_check", &checked);
    let reasons = checked.block_reasons();
    let response = PreCheckResponse {
        context_id: approved
            .as_ref()
            .map_or_else(|| format!("denied_{}", checked.decision_id()), |a| a.context_id.clone()),
        approved: approved.is_some(),
        expires_at: approved.as_ref().map_or_else(|| state.clock().now(), |a| a.expires_at).to_rfc3339(),
        requires_redaction: checked.policy_redaction().is_some(),
        redacted_query: checked.policy_redaction().map(str::to_owned),
        approved_data: serde_json::json!({}),
        policies: checked.policies(),
        block_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        decision_id: checked.decision_id().to_owned(),
        verdict: checked.verdict(),
        rate_limit: RateLimitDto::from(&rate),
        engine: "axonflow-rs",
    };
    let mut response = Reply(response).into_response();
    decision_headers(response.headers_mut(), &checked, &request_id.0);
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct TokenUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    #[allow(dead_code)]
    total_tokens: u64,
}

#[derive(Deserialize)]
pub(crate) struct LlmCallRequest {
    context_id: String,
    #[serde(default)]
    #[allow(dead_code)]
    client_id: Option<String>,
    #[serde(default)]
    response_summary: String,
    provider: String,
    model: String,
    #[serde(default)]
    token_usage: Option<TokenUsage>,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct AuditedResponse {
    success: bool,
    audit_id: String,
    audit_hash: String,
}

pub(crate) async fn audit_llm_call(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    ApiJson(body): ApiJson<LlmCallRequest>,
) -> Result<Response, ApiError> {
    let context_id = require_text(&body.context_id, "context_id")?;
    let usage =
        body.token_usage.unwrap_or(TokenUsage { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    let call = LlmCall {
        principal: &caller.0,
        context_id,
        usage: engine::LlmUsage {
            provider: require_text(&body.provider, "provider")?,
            model: require_text(&body.model, "model")?,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            latency_ms: body.latency_ms,
        },
        response_summary: &body.response_summary,
        request_id: &request_id.0,
    };
    let receipt = state.control().audit_llm_call(&call).await.map_err(engine_error)?;
    let mut response =
        Json(AuditedResponse { success: true, audit_id: receipt.id.clone(), audit_hash: receipt.hash_hex() })
            .into_response();
    if let Ok(value) = HeaderValue::from_str(&receipt.hash_hex()) {
        response.headers_mut().insert(X_AI_AUDIT_HASH.clone(), value);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideRequest {
    query: String,
    #[serde(default)]
    request_type: Option<String>,
    #[serde(default)]
    user_token: Option<String>,
    #[serde(default)]
    context: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct DecideResponse {
    decision_id: String,
    verdict: &'static str,
    allowed: bool,
    reasons: Vec<String>,
    warnings: Vec<String>,
    policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_query: Option<String>,
    detections: std::collections::BTreeMap<&'static str, usize>,
    audit_hash: String,
}

/// Decision mode for infrastructure gateways (PEPs): the verdict only.
pub(crate) async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DecideRequest>,
) -> Result<Response, ApiError> {
    let request_type = body.request_type.as_deref().unwrap_or("llm_chat");
    if request_type.len() > 64
        || !request_type.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::bad_request("invalid_field", "`request_type` must be 1-64 of A-Z a-z 0-9 _ -")
            .with_field("request_type"));
    }
    let mut context = context_map(body.context)?;
    let user = end_user(&state, &caller, body.user_token.as_deref(), &headers, &mut context)?;
    let check = Check {
        principal: &caller.0,
        request_type,
        query: require_text(&body.query, "query")?,
        user: user.as_deref(),
        context,
        request_id: &request_id.0,
    };
    // Boxed, as in `pre_check`.
    let checked = Box::pin(state.control().check(&check)).await.map_err(engine_error)?;
    state.metrics().observe_decision("decide", &checked);
    let response = DecideResponse {
        decision_id: checked.decision_id().to_owned(),
        verdict: checked.verdict(),
        allowed: checked.decision.proceeds(),
        reasons: checked.block_reasons(),
        warnings: checked.decision.warnings.clone(),
        policies: checked.policies(),
        redacted_query: checked.policy_redaction().map(str::to_owned),
        detections: engine::control::counts(&checked.findings),
        audit_hash: checked.receipt.hash_hex(),
    };
    let mut response = Reply(response).into_response();
    decision_headers(response.headers_mut(), &checked, &request_id.0);
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct ToolCallRequest {
    tool_name: String,
    #[serde(default)]
    caller_name: Option<String>,
    #[serde(default)]
    tool_type: Option<String>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    step_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    policies_applied: Vec<String>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Serialize)]
struct ToolCallResponse {
    audit_id: String,
    status: &'static str,
    timestamp: String,
    audit_hash: String,
}

pub(crate) async fn audit_tool_call(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    ApiJson(body): ApiJson<ToolCallRequest>,
) -> Result<Response, ApiError> {
    let call = ToolCall {
        principal: &caller.0,
        tool_name: require_text(&body.tool_name, "tool_name")?,
        tool_type: body.tool_type.as_deref(),
        caller_name: body.caller_name.as_deref(),
        workflow_id: body.workflow_id.as_deref(),
        step_id: body.step_id.as_deref(),
        user: body.user_id.as_deref().map(str::trim).filter(|u| !u.is_empty() && *u != "anonymous"),
        duration_ms: body.duration_ms,
        policies_applied: &body.policies_applied,
        success: body.success,
        error_message: body.error_message.as_deref(),
        input: body.input.as_ref(),
        output: body.output.as_ref(),
        request_id: &request_id.0,
    };
    let receipt = state.control().audit_tool_call(&call).await.map_err(engine_error)?;
    let response = ToolCallResponse {
        audit_id: receipt.id.clone(),
        status: "recorded",
        timestamp: state.clock().now().to_rfc3339(),
        audit_hash: receipt.hash_hex(),
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}
