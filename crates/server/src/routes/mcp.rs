//! MCP checks: `POST /api/v1/mcp/check-input` (statements and tool arguments before they reach a connector)
//! and `POST /api/v1/mcp/check-output` (results before they reach the agent). Every status has a JSON body,
//! and a block is a 403 whose body the SDKs read as data.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::{Check, EngineError};
use serde::{Deserialize, Serialize};

use super::gateway::{decision_headers, engine_error, require_text};
use crate::{ApiError, ApiJson, AppState, Caller, RequestId};

#[derive(Deserialize)]
pub(crate) struct CheckInputRequest {
    connector_type: String,
    statement: String,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    parameters: Option<serde_json::Value>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_role: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    tenant_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    user_token: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    content_type: Option<String>,
}

#[derive(Serialize)]
struct PolicyMatch {
    policy_id: String,
    policy_name: String,
    rules: Vec<String>,
}

#[derive(Serialize)]
struct CheckInputResponse {
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_reason: Option<String>,
    policies_evaluated: usize,
    policy_matches: Vec<PolicyMatch>,
    decision_id: String,
    risk_level: &'static str,
    redacted: bool,
    redacted_statement: String,
    detections: std::collections::BTreeMap<&'static str, usize>,
}

/// Every string inside `value`, for scanning.
fn strings(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

pub(crate) async fn check_input(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    ApiJson(body): ApiJson<CheckInputRequest>,
) -> Result<Response, ApiError> {
    let statement = require_text(&body.statement, "statement")?;
    let operation = body.operation.as_deref().unwrap_or("execute");
    let mut text = statement.to_owned();
    if let Some(parameters) = &body.parameters {
        strings(parameters, &mut text);
    }
    let mut context = serde_json::Map::new();
    context.insert("connector".to_owned(), body.connector_type.clone().into());
    context.insert("operation".to_owned(), operation.into());
    if let Some(tool) = &body.tool {
        context.insert("tool".to_owned(), tool.clone().into());
    }
    if let Some(role) = &body.user_role {
        context.insert("user_role".to_owned(), role.clone().into());
    }
    let check = Check {
        principal: &caller.0,
        request_type: "mcp_tool",
        query: &text,
        user: body.user_id.as_deref().filter(|u| !u.is_empty()),
        context,
        request_id: &request_id.0,
    };
    // Boxed, as in `gateway::pre_check`.
    let checking = Box::pin(state.control().mcp_check_input(&check, &body.connector_type, operation));
    let checked = match checking.await {
        Ok(checked) => checked,
        Err(EngineError::Forbidden(permission)) => {
            let reason = format!("this credential does not grant `{permission}`");
            let body = serde_json::json!({"allowed": false, "block_reason": reason, "error": reason});
            return Ok((StatusCode::FORBIDDEN, Json(body)).into_response());
        }
        Err(error) => return Err(engine_error(error)),
    };
    state.metrics().observe_decision("mcp_input", &checked);
    let statement_findings = state.control().detectors().scan(statement);
    let redacted_statement = state.control().detectors().redact(statement, &statement_findings).into_owned();
    let allowed = checked.decision.proceeds();
    let reasons = checked.block_reasons();
    let response = CheckInputResponse {
        allowed,
        block_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        policies_evaluated: state.control().policy().packages().len(),
        policy_matches: checked
            .decision
            .matched
            .iter()
            .map(|m| PolicyMatch {
                policy_id: m.package.clone(),
                policy_name: m.package.clone(),
                rules: m.rules.clone(),
            })
            .collect(),
        decision_id: checked.decision_id().to_owned(),
        risk_level: engine::control::risk_level(&checked.findings),
        redacted: redacted_statement != statement,
        redacted_statement,
        detections: engine::control::counts(&checked.findings),
    };
    let status = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
    let mut response = (status, Json(response)).into_response();
    decision_headers(response.headers_mut(), &checked, &request_id.0);
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct CheckOutputRequest {
    connector_type: String,
    #[serde(default)]
    response_data: Vec<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    row_count: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    tool: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_id: Option<String>,
}

#[derive(Serialize)]
struct CheckOutputResponse {
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_reason: Option<String>,
    redacted_data: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted_message: Option<String>,
    redactions: usize,
    policies_evaluated: usize,
    exfiltration_info: serde_json::Value,
    decision_id: String,
}

pub(crate) async fn check_output(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    ApiJson(body): ApiJson<CheckOutputRequest>,
) -> Result<Response, ApiError> {
    let connector = require_text(&body.connector_type, "connector_type")?;
    let output = state
        .control()
        .mcp_check_output(&caller.0, connector, &body.response_data, body.message.as_deref(), &request_id.0)
        .await
        .map_err(engine_error)?;
    let rows = body.row_count.unwrap_or(output.row_count).max(output.row_count);
    let response = CheckOutputResponse {
        allowed: output.allowed,
        block_reason: output.block_reason,
        // A refused result is not echoed back, even redacted.
        redacted_data: if output.allowed { output.redacted_rows } else { Vec::new() },
        redacted_message: output.redacted_message,
        redactions: output.redactions,
        policies_evaluated: 1,
        exfiltration_info: serde_json::json!({"rows": rows, "bytes": output.bytes, "exceeded": !output.allowed}),
        decision_id: output.receipt.id.clone(),
    };
    let status = if response.allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
    let mut response = (status, Json(response)).into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&output.receipt.hash_hex()) {
        response.headers_mut().insert(super::gateway::X_AI_AUDIT_HASH.clone(), value);
    }
    Ok(response)
}
