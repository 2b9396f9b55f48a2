//! Credential routes: `whoami` for any caller, and license key administration (`admin:keys`), always within
//! the caller's own tenant. A new key appears once, in the response that created it.

use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::{KeyError, NewKey, RateLimitStatus, SessionError};
use license::{
    Environment, KeyKind, Permission, PermissionSet, ServiceIdentity, ServiceName, ServiceType, Tier,
};
use serde::{Deserialize, Serialize};
use store::CredentialRow;
use types::UnixMillis;

use crate::{ApiError, ApiJson, AppState, Caller};

#[derive(Serialize)]
struct WhoAmI {
    key_id: String,
    tenant_id: String,
    kind: &'static str,
    tier: &'static str,
    service: Option<ServiceDto>,
    permissions: Vec<String>,
    environment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_grace_seconds_remaining: Option<u64>,
    rate_limit: RateLimitDto,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceDto {
    name: String,
    #[serde(rename = "type")]
    service_type: String,
}

/// The shape the AxonFlow SDKs read as `rate_limit`.
#[derive(Serialize)]
pub(crate) struct RateLimitDto {
    limit: u32,
    remaining: u32,
    reset_at: String,
}

impl From<&RateLimitStatus> for RateLimitDto {
    fn from(status: &RateLimitStatus) -> Self {
        RateLimitDto {
            limit: status.limit,
            remaining: status.remaining,
            reset_at: status.reset_at.to_rfc3339(),
        }
    }
}

/// Who the caller is, what it may do, and where it stands (rate limit, license grace).
pub(crate) async fn whoami(
    State(state): State<AppState>,
    caller: Caller,
    rate: axum::Extension<RateLimitStatus>,
) -> Json<impl Serialize> {
    let principal = caller.0;
    Json(WhoAmI {
        key_id: principal.key_id,
        tenant_id: principal.tenant.as_str().to_owned(),
        kind: principal.kind.as_str(),
        tier: principal.tier.as_str(),
        service: principal.service.map(|s| ServiceDto {
            name: s.name.as_str().to_owned(),
            service_type: s.service_type.as_str().to_owned(),
        }),
        permissions: principal.permissions.iter().map(ToString::to_string).collect(),
        environment: state.security().authenticator.environment().as_str(),
        license_grace_seconds_remaining: principal.grace_remaining.map(|d| d.as_secs()),
        rate_limit: RateLimitDto::from(&rate.0),
    })
}

#[derive(Serialize)]
struct CredentialDto {
    key_id: String,
    tenant_id: String,
    kind: String,
    tier: String,
    service: Option<ServiceDto>,
    environment: String,
    permissions: Vec<String>,
    issued_at: String,
    expires_at: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<String>,
}

fn credential_dto(row: CredentialRow, now: UnixMillis) -> CredentialDto {
    let status = match row.revoked_at {
        Some(at) if at <= now => "revoked",
        _ if row.expires_at <= now => "expired",
        Some(_) => "revocation_scheduled",
        None => "active",
    };
    CredentialDto {
        service: match (row.service_name, row.service_type) {
            (Some(name), Some(service_type)) => Some(ServiceDto { name, service_type }),
            _ => None,
        },
        key_id: row.key_id,
        tenant_id: row.tenant_id,
        kind: row.kind,
        tier: row.tier,
        environment: row.environment,
        permissions: row.permissions.split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        issued_at: row.issued_at.to_rfc3339(),
        expires_at: row.expires_at.to_rfc3339(),
        status,
        revoked_at: row.revoked_at.map(UnixMillis::to_rfc3339),
        revocation_reason: row.revocation_reason,
        replaced_by: row.replaced_by,
    }
}

#[derive(Serialize)]
struct KeyList {
    keys: Vec<CredentialDto>,
    total: usize,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<impl Serialize>, ApiError> {
    caller.require(&Permission::AdminKeys)?;
    let rows = state.security().keys.list(Some(&caller.0.tenant)).await.map_err(key_error)?;
    let now = state.clock().now();
    let keys: Vec<_> = rows.into_iter().map(|row| credential_dto(row, now)).collect();
    Ok(Json(KeyList { total: keys.len(), keys }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<impl Serialize>, ApiError> {
    caller.require(&Permission::AdminKeys)?;
    let row = own_key(&state, &caller, &key_id).await?;
    Ok(Json(credential_dto(row, state.clock().now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueRequest {
    kind: String,
    tier: String,
    #[serde(default)]
    service: Option<ServiceDto>,
    #[serde(default)]
    environment: Option<String>,
    permissions: Vec<String>,
    expires_at: String,
}

#[derive(Serialize)]
struct IssuedKey {
    /// The license key. It is shown here once and stored nowhere.
    key: String,
    credential: CredentialDto,
}

pub(crate) async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<IssueRequest>,
) -> Result<Response, ApiError> {
    caller.require(&Permission::AdminKeys)?;
    let invalid = |field: &'static str, message: &'static str| {
        ApiError::bad_request("invalid_field", message).with_field(field)
    };
    let kind =
        KeyKind::from_str(&body.kind).map_err(|_| invalid("kind", "must be service, user or admin"))?;
    if kind == KeyKind::Emergency {
        return Err(invalid(
            "kind",
            "emergency credentials are granted with `axonflow emergency-access grant`",
        ));
    }
    let tier = Tier::from_str(&body.tier).map_err(|_| invalid("tier", "must be PRO, ENT or PLUS"))?;
    let environment = match &body.environment {
        Some(env) => {
            Environment::from_str(env).map_err(|_| invalid("environment", "must be dev, staging or prod"))?
        }
        None => state.security().authenticator.environment(),
    };
    let service = match body.service {
        Some(service) => Some(ServiceIdentity {
            name: ServiceName::new(&service.name)
                .map_err(|_| invalid("service.name", "must be 1-64 of A-Z a-z 0-9 . _ -"))?,
            service_type: ServiceType::new(&service.service_type)
                .map_err(|_| invalid("service.type", "must be 1-64 of A-Z a-z 0-9 . _ -"))?,
        }),
        None => None,
    };
    let permissions = parse_permissions(&body.permissions)?;
    let expires_at = UnixMillis::parse_date_or_rfc3339(&body.expires_at)
        .ok_or_else(|| invalid("expires_at", "must be a date (2027-12-31) or an RFC 3339 timestamp"))?;
    let new =
        NewKey { kind, tier, tenant: caller.0.tenant.clone(), service, environment, permissions, expires_at };
    let (key, row) = state.security().keys.issue(new, caller.0.display_name()).await.map_err(key_error)?;
    tracing::info!(key_id = %row.key_id, kind = %row.kind, by = caller.0.display_name(), "license key issued");
    let body = IssuedKey { key: key.expose().clone(), credential: credential_dto(row, state.clock().now()) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn parse_permissions(permissions: &[String]) -> Result<PermissionSet, ApiError> {
    let mut set = PermissionSet::new();
    for (index, text) in permissions.iter().enumerate() {
        let permission = Permission::from_str(text).map_err(|error| {
            let message = match error.kind() {
                license::ErrorKind::WildcardPermission => {
                    "wildcard permissions are refused: name each operation (least privilege)"
                }
                _ => "is not a known permission",
            };
            ApiError::bad_request("invalid_permission", message).with_field(format!("permissions[{index}]"))
        })?;
        set.insert(permission);
    }
    Ok(set)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    reason: String,
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<Json<impl Serialize>, ApiError> {
    caller.require(&Permission::AdminKeys)?;
    own_key(&state, &caller, &key_id).await?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::bad_request("invalid_field", "a reason of 1-500 characters is required")
            .with_field("reason"));
    }
    let row =
        state.security().keys.revoke(&key_id, reason, caller.0.display_name()).await.map_err(key_error)?;
    tracing::warn!(key_id = %key_id, by = caller.0.display_name(), "license key revoked");
    Ok(Json(credential_dto(row, state.clock().now())))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateRequest {
    #[serde(default)]
    overlap_hours: Option<u32>,
}

pub(crate) async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
    ApiJson(body): ApiJson<RotateRequest>,
) -> Result<Response, ApiError> {
    caller.require(&Permission::AdminKeys)?;
    own_key(&state, &caller, &key_id).await?;
    let hours = body.overlap_hours.unwrap_or(24);
    if hours > 24 * 30 {
        return Err(ApiError::bad_request("invalid_field", "at most 720 hours").with_field("overlap_hours"));
    }
    let overlap = Duration::from_secs(u64::from(hours) * 3600);
    let (key, row) =
        state.security().keys.rotate(&key_id, overlap, caller.0.display_name()).await.map_err(key_error)?;
    tracing::info!(old = %key_id, new = %row.key_id, overlap_hours = hours, "license key rotated");
    let body = IssuedKey { key: key.expose().clone(), credential: credential_dto(row, state.clock().now()) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The key if it belongs to the caller's tenant; another tenant's key is reported as not found.
async fn own_key(state: &AppState, caller: &Caller, key_id: &str) -> Result<CredentialRow, ApiError> {
    let row = state.security().keys.get(key_id).await.map_err(key_error)?;
    if row.tenant_id != caller.0.tenant.as_str() {
        return Err(key_error(KeyError::NotFound));
    }
    Ok(row)
}

fn key_error(error: KeyError) -> ApiError {
    match error {
        KeyError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such key"),
        KeyError::AlreadyRevoked => {
            ApiError::new(StatusCode::CONFLICT, "already_revoked", "the key is already revoked")
        }
        KeyError::NoSigningKey => ApiError::new(
            StatusCode::CONFLICT,
            "no_signing_key",
            "this node verifies keys only; issue keys with `axonflow license issue` where the issuer key is kept",
        ),
        KeyError::Invalid(error) => ApiError::bad_request("invalid_key_request", error.to_string()),
        KeyError::Store(error) => {
            tracing::error!(error = %error, "credential store failed");
            ApiError::unavailable("the credential store is unavailable")
        }
        KeyError::Audit(_) => {
            tracing::error!("a key change could not be audited");
            ApiError::unavailable("the audit trail is unavailable")
        }
        KeyError::Corrupt => {
            tracing::error!("a stored credential is malformed");
            ApiError::internal()
        }
    }
}

#[derive(Serialize)]
struct SessionOpened {
    /// The session token: send it as `Authorization: Bearer …` or the `axonflow_session` cookie. Shown once.
    session_token: String,
    idle_timeout_seconds: u64,
    idle_expires_at: String,
    expires_at: String,
}

/// Exchanges an admin credential for a session that logs off after the idle timeout.
pub(crate) async fn open_session(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let session = state.security().sessions.create(&caller.0).await.map_err(|error| match error {
        SessionError::Unavailable => {
            state.metrics().shared_state_unavailable("session");
            ApiError::unavailable("sessions cannot be opened right now")
        }
        _ => ApiError::new(StatusCode::FORBIDDEN, "forbidden", error.to_string()),
    })?;
    tracing::info!(key_id = %caller.0.key_id, "admin session opened");
    let body = SessionOpened {
        session_token: session.token.expose().clone(),
        idle_timeout_seconds: state.security().sessions.idle().as_secs(),
        idle_expires_at: session.idle_expires_at.to_rfc3339(),
        expires_at: session.expires_at.to_rfc3339(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Logs the presented session off.
pub(crate) async fn close_session(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(engine::sessions::SESSION_PREFIX))
        .ok_or_else(|| ApiError::bad_request("not_a_session", "present the session token to log it off"))?;
    // A log-off that did not reach the shared store must not look like a success.
    state.security().sessions.end(token).await.map_err(|_| {
        state.metrics().shared_state_unavailable("session");
        ApiError::unavailable("the session cannot be logged off right now")
    })?;
    Ok(StatusCode::NO_CONTENT)
}
