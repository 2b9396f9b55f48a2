//! Authentication at the edge: reads the credential the SDKs send (`X-License-Key`, `Authorization: Bearer`,
//! `Authorization: Basic client_id:key`), asks the engine who it is, applies the brute-force and per-client rate
//! limits, and hands the [`Principal`] to handlers. Handlers state the permission they need with
//! [`Caller::require`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use engine::{AuthFailure, LimitError, PresentedCredential, Principal, RateLimitStatus, SessionError};
use license::Permission;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl Caller {
    /// 403 unless the caller holds `permission`.
    pub fn require(&self, permission: &Permission) -> Result<(), ApiError> {
        if self.0.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this credential does not grant `{permission}`"),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// Fails closed: a route reached without the authentication layer has no caller and answers 401.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().map(Caller).ok_or_else(unauthorized)
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "invalid or missing credentials")
}

/// The credential in the request headers, if any: a license key, or an admin session token (as a bearer token or
/// the `axonflow_session` cookie the portal uses).
fn presented(headers: &HeaderMap) -> Option<(PresentedCredential<'_>, Option<&str>)> {
    if let Some(session) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("axonflow_session="))
    {
        return Some((PresentedCredential::LicenseKey(session.trim()), None));
    }
    if let Some(key) = headers.get("x-license-key").and_then(|v| v.to_str().ok()) {
        return Some((PresentedCredential::LicenseKey(key.trim()), None));
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = authorization.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((PresentedCredential::LicenseKey(value.trim()), None));
    }
    None
}

/// Decodes `Authorization: Basic`, which needs an owned buffer.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (client_id, secret) = text.split_once(':')?;
    Some((client_id.to_owned(), secret.to_owned()))
}

/// The authentication layer of every protected route.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let started = std::time::Instant::now();
    let basic = basic(request.headers());
    let now = state.clock().now();
    let security = state.security();
    let outcome = {
        let (credential, client_id) = match (presented(request.headers()), &basic) {
            (Some((credential, _)), _) => (Some(credential), None),
            (None, Some((client_id, secret))) => {
                (Some(PresentedCredential::Basic { client_id, secret }), Some(client_id.as_str()))
            }
            (None, None) => (None, None),
        };
        let blocked = match security.failures.blocked_until(peer, client_id, now).await {
            Ok(blocked) => blocked,
            Err(_) => return shared_state_unavailable(&state, "lockout"),
        };
        if let Some(until) = blocked {
            state.metrics().auth_failed("locked_out");
            let seconds =
                RateLimitStatus { limit: 0, remaining: 0, reset_at: until }.retry_after_seconds(now);
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failed_attempts",
                "too many failed authentication attempts; try again later",
            )
            .with_retry_after(seconds)
            .into_response();
        }
        match credential {
            Some(PresentedCredential::LicenseKey(token))
                if token.starts_with(engine::sessions::SESSION_PREFIX) =>
            {
                security.sessions.resume(token).await.map_err(|error| match error {
                    SessionError::Unavailable => {
                        state.metrics().shared_state_unavailable("session");
                        AuthFailure::Unavailable
                    }
                    _ => AuthFailure::Revoked,
                })
            }
            Some(credential) => security.authenticator.authenticate(credential).await,
            None => Err(AuthFailure::Missing),
        }
        .map_err(|failure| (failure, client_id.map(str::to_owned)))
    };
    let principal = match outcome {
        Ok(principal) => principal,
        Err((failure, client_id)) => {
            state.metrics().auth_failed(failure.code());
            tracing::warn!(reason = failure.code(), peer = %peer, "authentication failed");
            return match failure {
                AuthFailure::Unavailable => {
                    ApiError::unavailable("credentials cannot be checked right now").into_response()
                }
                AuthFailure::DeprecatedFormat => {
                    record_failure(&state, peer, client_id.as_deref(), now).await;
                    ApiError::new(StatusCode::UNAUTHORIZED, "deprecated_license_key", failure.to_string())
                        .into_response()
                }
                _ => {
                    record_failure(&state, peer, client_id.as_deref(), now).await;
                    unauthorized().into_response()
                }
            };
        }
    };
    let rate = match security.requests.check(&principal.key_id, principal.tier, now).await {
        Ok(rate) => rate,
        Err(LimitError::Unavailable) => return shared_state_unavailable(&state, "rate_limit"),
        Err(LimitError::Limited(rate)) => {
            state.metrics().rate_limited(principal.tier.as_str());
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("rate limit of {} requests per minute exceeded", rate.limit),
            )
            .with_retry_after(rate.retry_after_seconds(now))
            .into_response();
            rate_headers(response.headers_mut(), &rate);
            return response;
        }
    };
    tracing::Span::current().record("client", principal.display_name());
    if principal.kind == license::KeyKind::Emergency {
        state.metrics().emergency_access_used();
        tracing::warn!(key_id = %principal.key_id, tenant = %principal.tenant, flagged = true, "emergency credential used");
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
        let entry = engine::AuditEntry {
            kind: "emergency_access",
            tenant: principal.tenant.as_str().to_owned(),
            actor: principal.key_id.clone(),
            verdict: "used".to_owned(),
            details:
                serde_json::json!({"route": route, "method": request.method().as_str(), "flagged": true})
                    .into(),
        };
        if state.audit().record(entry).await.is_err() {
            return ApiError::unavailable("the audit trail is unavailable").into_response();
        }
    }
    let grace = principal.grace_remaining;
    if grace.is_some() {
        state.metrics().license_in_grace(principal.tenant.as_str());
    }
    request.extensions_mut().insert(rate);
    request.extensions_mut().insert(principal);
    state.metrics().observe_stage("auth", started.elapsed());
    let mut response = next.run(request).await;
    rate_headers(response.headers_mut(), &rate);
    if let Some(grace) = grace {
        response.headers_mut().insert("x-axonflow-license-grace-seconds", HeaderValue::from(grace.as_secs()));
    }
    response
}

/// Counts a failed authentication towards the lockout. The request is refused either way; a failure that cannot
/// be counted (Redis down) is logged where it happened and counted in metrics.
async fn record_failure(state: &AppState, peer: IpAddr, client_id: Option<&str>, now: types::UnixMillis) {
    if state.security().failures.record_failure(peer, client_id, now).await.is_err() {
        state.metrics().shared_state_unavailable("lockout");
    }
}

/// The shared limits (Redis) cannot be checked: refuse with 503 rather than let the request through unlimited.
fn shared_state_unavailable(state: &AppState, operation: &'static str) -> Response {
    state.metrics().shared_state_unavailable(operation);
    ApiError::unavailable("limits cannot be checked right now").into_response()
}

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn rate_headers(headers: &mut HeaderMap, rate: &RateLimitStatus) {
    headers.insert(X_RATELIMIT_LIMIT.clone(), HeaderValue::from(rate.limit));
    // Never indexed by HPACK: a count that changes with every response would only fill the connection's table
    // with values that never repeat, evicting those that do, and make each later lookup walk them all.
    let mut remaining = HeaderValue::from(rate.remaining);
    remaining.set_sensitive(true);
    headers.insert(X_RATELIMIT_REMAINING.clone(), remaining);
    headers.insert(X_RATELIMIT_RESET.clone(), HeaderValue::from(rate.reset_at.0 / 1000));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn credentials_are_read_from_the_sdk_headers() {
        let key = |map: &HeaderMap| match presented(map) {
            Some((PresentedCredential::LicenseKey(key), _)) => Some(key.to_owned()),
            _ => None,
        };
        assert_eq!(key(&headers(&[("x-license-key", "AXON-V2-a-b")])), Some("AXON-V2-a-b".to_owned()));
        assert_eq!(key(&headers(&[("authorization", "Bearer AXON-V2-a-b")])), Some("AXON-V2-a-b".to_owned()));
        assert_eq!(key(&headers(&[("authorization", "bearer  k ")])), Some("k".to_owned()));
        assert_eq!(key(&headers(&[("authorization", "Basic Y29tbXVuaXR5Og==")])), None);
        assert_eq!(
            basic(&headers(&[("authorization", "Basic Y29tbXVuaXR5Og==")])),
            Some(("community".to_owned(), String::new()))
        );
        assert_eq!(basic(&headers(&[("authorization", "Basic !!!")])), None);
        assert_eq!(basic(&headers(&[("authorization", "Basic bm9jb2xvbg==")])), None, "no colon");
        assert_eq!(key(&headers(&[])), None);
    }
}
