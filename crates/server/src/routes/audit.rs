//! Audit access for auditors (`admin:audit`), always within the caller's tenant: search and per-tenant
//! listing. End users appear by name (or `DELETED_USER` once erased), revealed from their sealed form.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures_util::StreamExt as _;
use license::Permission;
use serde::{Deserialize, Serialize};
use store::{AuditQuery, AuditRow};
use types::UnixMillis;

use crate::{ApiError, ApiJson, AppState, Caller};

#[derive(Deserialize)]
pub(crate) struct SearchRequest {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    offset: Option<u32>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    request_type: Option<String>,
    #[serde(default)]
    decision_id: Option<String>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    user_email: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    policy_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    override_id: Option<String>,
}

#[derive(Serialize)]
struct Entry {
    id: String,
    timestamp: String,
    tenant_id: String,
    actor: String,
    kind: String,
    verdict: String,
    chain_id: String,
    seq: i64,
    hash: String,
    details: serde_json::Value,
}

#[derive(Serialize)]
pub(crate) struct Page {
    entries: Vec<Entry>,
    total: u64,
    limit: u32,
    offset: u32,
}

fn entry(row: AuditRow) -> Entry {
    Entry {
        timestamp: row.ts.to_rfc3339(),
        hash: row.hash.iter().map(|b| format!("{b:02x}")).collect(),
        details: serde_json::from_str(&row.body).unwrap_or(serde_json::Value::Null),
        id: row.id,
        tenant_id: row.tenant_id,
        actor: row.actor,
        kind: row.kind,
        verdict: row.verdict,
        chain_id: row.chain_id,
        seq: row.seq,
    }
}

fn time(value: Option<&str>, field: &'static str) -> Result<Option<UnixMillis>, ApiError> {
    value
        .map(|text| {
            UnixMillis::parse_date_or_rfc3339(text).ok_or_else(|| {
                ApiError::bad_request("invalid_field", "must be an RFC 3339 timestamp").with_field(field)
            })
        })
        .transpose()
}

/// Waits until the records acknowledged so far can be read (the audit journal stores them a moment later).
async fn settled(state: &AppState) -> Result<(), ApiError> {
    state.audit().settled().await.map_err(|error| {
        tracing::error!(error = %error, "audit records are not yet readable");
        ApiError::unavailable("the audit store is unavailable")
    })
}

async fn page(state: &AppState, query: AuditQuery) -> Result<Page, ApiError> {
    settled(state).await?;
    let store = state.store();
    let unavailable = |error: store::StoreError| {
        tracing::error!(error = %error, "audit search failed");
        ApiError::unavailable("the audit store is unavailable")
    };
    let total = store.count_audit(&query).await.map_err(unavailable)?;
    let rows = store.search_audit(&query).await.map_err(unavailable)?;
    let mut entries: Vec<Entry> = rows.into_iter().map(entry).collect();
    let details: Vec<&mut serde_json::Value> = entries.iter_mut().map(|e| &mut e.details).collect();
    state.subjects().reveal_all(details).await;
    Ok(Page { entries, total, limit: query.limit, offset: query.offset })
}

pub(crate) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SearchRequest>,
) -> Result<Json<Page>, ApiError> {
    caller.require(&Permission::AdminAudit)?;
    let query = AuditQuery {
        tenant_id: Some(caller.0.tenant.as_str().to_owned()),
        id: body.decision_id,
        actor: body.client_id,
        kind: body.request_type.or(body.action),
        verdict: body.verdict,
        since: time(body.start_time.as_deref(), "start_time")?,
        until: time(body.end_time.as_deref(), "end_time")?,
        limit: body.limit.unwrap_or(100).clamp(1, 1000),
        offset: body.offset.unwrap_or(0),
        contains: None,
    };
    Ok(Json(page(&state, query).await?))
}

#[derive(Deserialize)]
pub(crate) struct PageParams {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    offset: Option<u32>,
}

pub(crate) async fn tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Page>, ApiError> {
    caller.require(&Permission::AdminAudit)?;
    if tenant_id != caller.0.tenant.as_str() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a credential can only read its own tenant's audit",
        ));
    }
    let query = AuditQuery {
        tenant_id: Some(tenant_id),
        limit: params.limit.unwrap_or(100).clamp(1, 1000),
        offset: params.offset.unwrap_or(0),
        ..AuditQuery::default()
    };
    Ok(Json(page(&state, query).await?))
}

#[derive(Deserialize)]
pub(crate) struct ExportParams {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// Streams the caller's tenant's audit records, newest first, as JSON lines (default) or CSV, exactly as stored
/// (with hashes; end users stay sealed), for auditors (`admin:audit`).
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ExportParams>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    caller.require(&Permission::AdminAudit)?;
    let csv = match params.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => false,
        "csv" => true,
        _ => return Err(ApiError::bad_request("invalid_field", "must be jsonl or csv").with_field("format")),
    };
    let query = AuditQuery {
        tenant_id: Some(caller.0.tenant.as_str().to_owned()),
        kind: params.kind,
        verdict: params.verdict,
        since: time(params.since.as_deref(), "since")?,
        until: time(params.until.as_deref(), "until")?,
        limit: 1000,
        ..AuditQuery::default()
    };
    // The first page is read before answering, so an unavailable store is a 503, not a cut-off 200.
    settled(&state).await?;
    let store = state.store().clone();
    let first = store.search_audit(&query).await.map_err(|error| {
        tracing::error!(error = %error, "audit export failed");
        ApiError::unavailable("the audit store is unavailable")
    })?;
    let header = csv.then(|| format!("{}\n", engine::audit::EXPORT_CSV_HEADER));
    let pages = futures_util::stream::unfold(Some((query, first)), move |state| {
        let store = store.clone();
        async move {
            let (mut query, page) = state?;
            let mut chunk = String::new();
            for row in &page {
                let line = if csv {
                    engine::audit::export_csv(row)
                } else {
                    engine::audit::export_json(row).to_string()
                };
                chunk.push_str(&line);
                chunk.push('\n');
            }
            let next = if page.len() < query.limit as usize {
                None
            } else {
                query.offset += query.limit;
                match store.search_audit(&query).await {
                    Ok(next) => Some((query, next)),
                    Err(error) => {
                        // Headers are sent: end the body early, and say so in the log.
                        tracing::error!(error = %error, "audit export cut short");
                        return Some((Err(std::io::Error::other("audit store unavailable")), None));
                    }
                }
            };
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    let body = futures_util::stream::iter(header.map(Ok)).chain(pages);
    let content_type = if csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" };
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], axum::body::Body::from_stream(body))
        .into_response())
}
