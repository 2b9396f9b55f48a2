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

/// Whose bundle a request is about: the caller's tenant's own (on top of the system bundle), or the system
/// bundle itself, which only admins of the deployment's operator tenant may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Tenant,
    System,
}

fn scope_of(state: &AppState, caller: &Caller, scope: Scope) -> Result<String, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    match scope {
        Scope::Tenant => Ok(caller.0.tenant.as_str().to_owned()),
        Scope::System if caller.0.tenant.as_str() == state.operator_tenant() => {
            Ok(engine::policies::SYSTEM_TENANT.to_owned())
        }
        Scope::System => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admins of the operator tenant manage the system bundle; use /api/v1/policies/versions for yours",
        )),
    }
}

async fn list_in(state: AppState, caller: Caller, scope: Scope) -> Result<Response, ApiError> {
    let scope = scope_of(&state, &caller, scope)?;
    Ok(match state.policies().list(&scope).await {
        Ok(rows) => {
            let versions: Vec<Version> = rows.into_iter().map(|r| version(r, false)).collect();
            Json(serde_json::json!({"scope": scope, "total": versions.len(), "versions": versions}))
                .into_response()
        }
        Err(error) => lifecycle_error(error),
    })
}

async fn get_in(state: AppState, caller: Caller, scope: Scope, id: String) -> Result<Response, ApiError> {
    let scope = scope_of(&state, &caller, scope)?;
    Ok(match state.policies().get(&scope, &id).await {
        Ok(row) => Json(version(row, true)).into_response(),
        Err(error) => lifecycle_error(error),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    files: BTreeMap<String, String>,
}

/// The files of an upload or test request, checked: `.rego` paths without `..`.
fn checked_files(files: BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    if files.is_empty() || files.keys().any(|p| !p.ends_with(".rego") || p.contains("..") || p.len() > 256) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`files` maps .rego paths (no `..`) to their text",
        )
        .with_field("files"));
    }
    Ok(files.into_iter().collect())
}

async fn upload_in(
    state: AppState,
    caller: Caller,
    scope: Scope,
    body: Upload,
) -> Result<Response, ApiError> {
    let scope = scope_of(&state, &caller, scope)?;
    let files = checked_files(body.files)?;
    Ok(
        match state.policies().upload(&scope, files, caller.0.display_name(), caller.0.tenant.as_str()).await
        {
            Ok(row) => (StatusCode::CREATED, Json(version(row, false))).into_response(),
            Err(error) => lifecycle_error(error),
        },
    )
}

async fn promote_in(state: AppState, caller: Caller, scope: Scope, id: String) -> Result<Response, ApiError> {
    let scope = scope_of(&state, &caller, scope)?;
    Ok(match state.policies().promote(&scope, &id, caller.0.display_name(), caller.0.tenant.as_str()).await {
        Ok(row) => {
            tracing::warn!(scope = %scope, version = %row.id, by = caller.0.display_name(), "policy version promoted");
            Json(version(row, false)).into_response()
        }
        Err(error) => lifecycle_error(error),
    })
}

pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    list_in(state, caller, Scope::Tenant).await
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get_in(state, caller, Scope::Tenant, id).await
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Upload>,
) -> Result<Response, ApiError> {
    upload_in(state, caller, Scope::Tenant, body).await
}

pub(crate) async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    promote_in(state, caller, Scope::Tenant, id).await
}

pub(crate) async fn system_list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    list_in(state, caller, Scope::System).await
}

pub(crate) async fn system_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    get_in(state, caller, Scope::System, id).await
}

pub(crate) async fn system_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Upload>,
) -> Result<Response, ApiError> {
    upload_in(state, caller, Scope::System, body).await
}

pub(crate) async fn system_promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    promote_in(state, caller, Scope::System, id).await
}

/// Runs a bundle's tests (like `axonflow policy test --coverage`) without storing it: one entry per test, the
/// counts, and line coverage per policy file.
pub(crate) async fn test(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Upload>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    let files = checked_files(body.files)?;
    let policies = state.inner_policies();
    // Tests run the interpreter: off the async workers.
    let report =
        tokio::task::spawn_blocking(move || policies.test(files)).await.map_err(|_| ApiError::internal())?;
    let tests: Vec<serde_json::Value> = report
        .tests
        .iter()
        .map(|t| {
            let (status, error) = match &t.status {
                policy::TestStatus::Pass => ("pass", None),
                policy::TestStatus::Fail => ("fail", None),
                policy::TestStatus::Error(message) => ("error", Some(message.clone())),
            };
            serde_json::json!({
                "name": t.name, "file": t.path, "status": status, "error": error,
                "duration_us": t.duration.as_micros() as u64,
            })
        })
        .collect();
    let coverage = report.coverage.as_ref().map(|c| {
        let files: Vec<serde_json::Value> = c
            .files
            .iter()
            .map(|f| serde_json::json!({"file": f.path, "percent": f.percent(), "not_covered_lines": f.not_covered}))
            .collect();
        serde_json::json!({ "total_percent": c.percent(), "files": files })
    });
    Ok(Json(serde_json::json!({
        "success": report.success(),
        "passed": report.passed(),
        "failed": report.failed(),
        "error": report.error,
        "tests": tests,
        "coverage": coverage,
    })))
}
