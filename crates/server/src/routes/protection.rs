//! Data subjects' rights (GDPR: access and portability, rectification, restriction, erasure) for auditors
//! (`admin:audit`), and connector credentials (`admin:connectors`), always within the caller's tenant.
//!
//! Subject requests name the user in the JSON body, never in the URL, so identifiers do not reach access logs.
//! Connector credentials are accepted once and never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{SecretError, SubjectError};
use license::Permission;
use serde::Deserialize;
use types::Secret;

use crate::{ApiError, ApiJson, AppState, Caller};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectRequest {
    /// The user id as the services send it (`user_token`, or the verified token's subject).
    user: String,
    #[serde(default)]
    profile: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    restricted: Option<bool>,
}

impl SubjectRequest {
    fn user(&self) -> Result<&str, ApiError> {
        if self.user.is_empty() || self.user.len() > 512 {
            return Err(ApiError::bad_request("invalid_field", "must be 1-512 bytes").with_field("user"));
        }
        Ok(&self.user)
    }
}

fn subject_error(error: SubjectError) -> ApiError {
    match error {
        SubjectError::Unknown => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no data is held about this user")
        }
        SubjectError::Invalid(message) => {
            ApiError::bad_request("invalid_field", message).with_field("profile")
        }
        SubjectError::Audit(_) => ApiError::unavailable("the audit trail cannot record this request"),
        SubjectError::Unavailable => ApiError::unavailable("the data subject store is unavailable"),
    }
}

/// Access and portability: everything held about the user, as one JSON document.
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubjectRequest>,
) -> Result<Json<engine::SubjectExport>, ApiError> {
    caller.require(&Permission::AdminAudit)?;
    let tenant = caller.0.tenant.as_str();
    let export = state.subjects().export(&caller.0, tenant, body.user()?).await.map_err(subject_error)?;
    Ok(Json(export))
}

/// Erasure ("right to be forgotten") by crypto-shredding.
pub(crate) async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubjectRequest>,
) -> Result<Json<engine::Erasure>, ApiError> {
    caller.require(&Permission::AdminAudit)?;
    let tenant = caller.0.tenant.as_str();
    let erasure = state.subjects().erase(&caller.0, tenant, body.user()?).await.map_err(subject_error)?;
    Ok(Json(erasure))
}

/// Rectification of the user's profile fields.
pub(crate) async fn rectify(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubjectRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&Permission::AdminAudit)?;
    let Some(changes) = &body.profile else {
        return Err(
            ApiError::bad_request("missing_field", "an object of fields to set").with_field("profile")
        );
    };
    let tenant = caller.0.tenant.as_str();
    let profile =
        state.subjects().rectify(&caller.0, tenant, body.user()?, changes).await.map_err(subject_error)?;
    Ok(Json(serde_json::json!({ "profile": profile })))
}

/// Restriction of processing: while set, requests on the user's behalf are refused.
pub(crate) async fn restrict(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubjectRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&Permission::AdminAudit)?;
    let Some(restricted) = body.restricted else {
        return Err(ApiError::bad_request("missing_field", "true or false").with_field("restricted"));
    };
    let tenant = caller.0.tenant.as_str();
    let subject_id = state
        .subjects()
        .restrict(&caller.0, tenant, body.user()?, restricted)
        .await
        .map_err(subject_error)?;
    Ok(Json(serde_json::json!({ "subject_id": subject_id, "restricted": restricted })))
}

#[derive(Deserialize)]
pub(crate) struct InstallRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    options: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    credentials: serde_json::Map<String, serde_json::Value>,
}

fn secret_error(error: SecretError) -> ApiError {
    match error {
        SecretError::Unknown => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such connector"),
        SecretError::Invalid(message) => ApiError::bad_request("invalid_field", message).with_field("id"),
        SecretError::Audit(_) => ApiError::unavailable("the audit trail cannot record this change"),
        SecretError::Unavailable => ApiError::unavailable("the secret store is unavailable"),
    }
}

fn connector_json(info: &engine::SecretInfo) -> serde_json::Value {
    serde_json::json!({
        "id": info.connector,
        "name": info.connector,
        "type": info.connector,
        "installed": true,
        "has_credentials": true,
        "created_by": info.created_by,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "data_key_id": info.data_key_id,
    })
}

/// Installs (or reconfigures) a connector: its options and credentials are sealed together and never
/// returned.
pub(crate) async fn install(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InstallRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require(&Permission::AdminConnectors)?;
    if body.tenant_id.as_deref().is_some_and(|t| t != caller.0.tenant.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a credential can only configure its own tenant's connectors",
        ));
    }
    let document = Secret::new(
        serde_json::json!({
            "name": body.name.as_deref().unwrap_or(&id),
            "options": body.options,
            "credentials": body.credentials,
        })
        .to_string(),
    );
    let info = state.secrets().put(&caller.0, &id, &document).await.map_err(secret_error)?;
    Ok((StatusCode::CREATED, Json(connector_json(&info))))
}

/// The connectors installed for the caller's tenant (never their credentials).
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let installed = state.secrets().list(caller.0.tenant.as_str()).await.map_err(secret_error)?;
    let connectors: Vec<serde_json::Value> = installed.iter().map(connector_json).collect();
    Ok(Json(serde_json::json!({ "total": connectors.len(), "connectors": connectors })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let installed = state.secrets().list(caller.0.tenant.as_str()).await.map_err(secret_error)?;
    let info =
        installed.iter().find(|i| i.connector == id).ok_or_else(|| secret_error(SecretError::Unknown))?;
    Ok(Json(connector_json(info)))
}

pub(crate) async fn uninstall(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&Permission::AdminConnectors)?;
    state.secrets().delete(&caller.0, &id).await.map_err(secret_error)?;
    Ok(Json(serde_json::json!({ "id": id, "uninstalled": true })))
}
