//! `/api/v1/static-policies`, the SDKs' pattern policies, mapped onto the caller's tenant bundle (see
//! `engine::static_policies`): every change is a validated, audited version of that bundle, live at once.
//! `admin:policies`, always within the caller's tenant.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::LifecycleError;
use engine::static_policies::StaticPolicy;
use license::Permission;
use serde::Deserialize;

use crate::{ApiError, ApiJson, AppState, Caller};

/// A policy as the SDKs read it: ours plus the tier it lives in.
fn wire(policy: &StaticPolicy) -> serde_json::Value {
    let mut value = serde_json::to_value(policy).unwrap_or_default();
    value["tier"] = "tenant".into();
    value
}

fn lifecycle_error(error: LifecycleError) -> ApiError {
    match error {
        LifecycleError::NotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such static policy")
        }
        LifecycleError::Refused(problems) => {
            tracing::error!(?problems, "a generated static policy bundle was refused");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bundle_refused",
                "the tenant's bundle does not accept this change (run its tests with `axonflow policy test`)",
            )
        }
        LifecycleError::Store(_) | LifecycleError::Audit(_) => {
            tracing::error!(error = %error, "static policy change failed");
            ApiError::unavailable("the policy store is unavailable")
        }
        LifecycleError::Corrupt => ApiError::internal(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListParams {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    let policies =
        state.policies().static_policies(caller.0.tenant.as_str()).await.map_err(lifecycle_error)?;
    let search = params.search.as_deref().map(str::to_lowercase);
    let mut selected: Vec<&StaticPolicy> = policies
        .iter()
        .filter(|p| params.category.as_ref().is_none_or(|c| *c == p.category))
        .filter(|p| params.enabled.is_none_or(|e| e == p.enabled))
        .filter(|_| params.tier.as_deref().is_none_or(|t| t == "tenant"))
        .filter(|p| {
            search.as_ref().is_none_or(|s| {
                p.name.to_lowercase().contains(s)
                    || p.description.as_deref().is_some_and(|d| d.to_lowercase().contains(s))
            })
        })
        .collect();
    // Lower priority values first, as the SDKs document.
    selected.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.name.cmp(&b.name)));
    let total = selected.len();
    let page: Vec<serde_json::Value> = selected
        .into_iter()
        .skip(params.offset.unwrap_or(0))
        .take(params.limit.unwrap_or(100).clamp(1, 1000))
        .map(wire)
        .collect();
    Ok(Json(serde_json::json!({ "policies": page, "total": total })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    let policies =
        state.policies().static_policies(caller.0.tenant.as_str()).await.map_err(lifecycle_error)?;
    let policy =
        policies.iter().find(|p| p.id == id).ok_or_else(|| lifecycle_error(LifecycleError::NotFound))?;
    Ok(Json(wire(policy)))
}

/// The fields a caller sets; on update, absent fields keep their value.
#[derive(Deserialize)]
pub(crate) struct PolicyFields {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Accepted for the SDKs; a tenant's policies are always tier `tenant`.
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    organization_id: Option<String>,
}

impl PolicyFields {
    fn apply(self, policy: &mut StaticPolicy) -> Result<(), ApiError> {
        if self.tier.as_deref().is_some_and(|t| t != "tenant") {
            return Err(ApiError::bad_request("invalid_field", "only tenant policies can be managed here")
                .with_field("tier"));
        }
        let _ = self.organization_id;
        macro_rules! set {
            ($($field:ident),*) => {$(if let Some(value) = self.$field { policy.$field = value; })*};
        }
        set!(name, pattern, category, severity, action, enabled, priority, tags);
        if self.description.is_some() {
            policy.description = self.description;
        }
        policy.validate().map_err(|(field, message)| {
            ApiError::bad_request("invalid_field", format!("`{field}` {message}")).with_field(field)
        })
    }
}

/// Runs `change` on the caller's static policies, turning refusals into the right API error.
async fn change<T>(
    state: &AppState,
    caller: &Caller,
    change: impl FnOnce(&mut Vec<StaticPolicy>, &str) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    caller.require(&Permission::AdminPolicies)?;
    let now = state.clock().now().to_rfc3339();
    state
        .policies()
        .change_static_policies(caller.0.tenant.as_str(), caller.0.display_name(), |policies| {
            change(policies, &now)
        })
        .await
        .map_err(lifecycle_error)?
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(fields): ApiJson<PolicyFields>,
) -> Result<Response, ApiError> {
    if fields.name.is_none() || fields.pattern.is_none() {
        let field = if fields.name.is_none() { "name" } else { "pattern" };
        return Err(ApiError::bad_request("missing_field", "is required").with_field(field));
    }
    let created = change(&state, &caller, move |policies, now| {
        let mut policy = StaticPolicy {
            id: format!("sp_{}", uuid::Uuid::now_v7().simple()),
            name: String::new(),
            pattern: String::new(),
            category: "custom".to_owned(),
            severity: "medium".to_owned(),
            action: "block".to_owned(),
            enabled: true,
            priority: 0,
            description: None,
            tags: Vec::new(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            version: 1,
        };
        fields.apply(&mut policy)?;
        if policies.len() >= 500 {
            return Err(ApiError::bad_request(
                "too_many_policies",
                "a tenant has at most 500 static policies",
            ));
        }
        policies.push(policy.clone());
        Ok(policy)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(wire(&created))).into_response())
}

/// Changes policy `id` with `edit`, stamping the change; returns the policy as changed.
async fn edit(
    state: &AppState,
    caller: &Caller,
    id: String,
    edit: impl FnOnce(&mut StaticPolicy) -> Result<(), ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let updated = change(state, caller, move |policies, now| {
        let policy = policies
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| lifecycle_error(LifecycleError::NotFound))?;
        edit(policy)?;
        policy.updated_at = now.to_owned();
        policy.version += 1;
        Ok(policy.clone())
    })
    .await?;
    Ok(Json(wire(&updated)))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(fields): ApiJson<PolicyFields>,
) -> Result<Json<serde_json::Value>, ApiError> {
    edit(&state, &caller, id, |policy| fields.apply(policy)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Toggle {
    enabled: bool,
}

pub(crate) async fn toggle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(toggle): ApiJson<Toggle>,
) -> Result<Json<serde_json::Value>, ApiError> {
    edit(&state, &caller, id, |policy| {
        policy.enabled = toggle.enabled;
        Ok(())
    })
    .await
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    change(&state, &caller, move |policies, _| {
        let before = policies.len();
        policies.retain(|p| p.id != id);
        if policies.len() == before { Err(lifecycle_error(LifecycleError::NotFound)) } else { Ok(()) }
    })
    .await?;
    Ok(Json(serde_json::json!({ "deleted": true })))
}
