//! Policy lifecycle for operators (`admin:policies`): list versions, upload a bundle (refused with its problems
//! unless it parses, compiles, fits the limits and its tests pass), promote a version to live, or roll back by
//! promoting an older one. Promotion reloads the live policy without dropping requests.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::LifecycleError;
use license::Permission;
use serde::{Deserialize, Serialize};
use store::PolicyVersionRow;

use crate::{ApiError, ApiJson, AppState, Caller};

#[derive(Serialize)]
struct Version {
    id: String,
    author: String,
    created_at: String,
    content_hash: String,
    summary: String,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<BTreeMap<String, String>>,
}

fn version(row: PolicyVersionRow, with_files: bool) -> Version {
    Version {
        files: with_files.then(|| serde_json::from_str(&row.files).unwrap_or_default()),
        id: row.id,
        author: row.author,
        created_at: row.created_at.to_rfc3339(),
        content_hash: row.content_hash,
        summary: row.summary,
        active: row.active,
    }
}

fn lifecycle_error(error: LifecycleError) -> Response {
    match error {
        LifecycleError::Refused(problems) => {
            let body = serde_json::json!({
                "error": {"code": "bundle_refused", "message": "the bundle was refused: never deploy untested policies"},
                "message": "the bundle was refused",
                "problems": problems,
            });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
        LifecycleError::NotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such policy version").into_response()
        }
        LifecycleError::Store(_) | LifecycleError::Audit(_) => {
            tracing::error!(error = %error, "policy lifecycle failed");
            ApiError::unavailable("the policy store is unavailable").into_response()
        }
        LifecycleError::Corrupt => ApiError::internal().into_response(),
    }
}

pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    Ok(match state.policies().list().await {
        Ok(rows) => {
            let versions: Vec<Version> = rows.into_iter().map(|r| version(r, false)).collect();
            Json(serde_json::json!({"total": versions.len(), "versions": versions})).into_response()
        }
        Err(error) => lifecycle_error(error),
    })
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    Ok(match state.policies().get(&id).await {
        Ok(row) => Json(version(row, true)).into_response(),
        Err(error) => lifecycle_error(error),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    /// Path (in the guide's layout: `production/main.rego`, `tests/main_test.rego`, …) → Rego text.
    files: BTreeMap<String, String>,
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Upload>,
) -> Result<Response, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    if body.files.is_empty()
        || body.files.keys().any(|p| !p.ends_with(".rego") || p.contains("..") || p.len() > 256)
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`files` maps .rego paths (no `..`) to their text",
        )
        .with_field("files"));
    }
    Ok(
        match state
            .policies()
            .upload(body.files.into_iter().collect(), caller.0.display_name(), caller.0.tenant.as_str())
            .await
        {
            Ok(row) => (StatusCode::CREATED, Json(version(row, false))).into_response(),
            Err(error) => lifecycle_error(error),
        },
    )
}

pub(crate) async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    Ok(match state.policies().promote(&id, caller.0.display_name(), caller.0.tenant.as_str()).await {
        Ok(row) => {
            tracing::warn!(version = %row.id, by = caller.0.display_name(), "policy version promoted");
            Json(version(row, false)).into_response()
        }
        Err(error) => lifecycle_error(error),
    })
}
