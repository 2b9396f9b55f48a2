//! Authentication: a presented license key is verified (signature, environment, dates) with the public key
//! only, then looked up by its keyed fingerprint to check that it was registered and is not revoked.
//!
//! Nothing here logs, prints or returns the key: failures carry a reason code, never input.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use license::{
    Environment, ErrorKind, Fingerprint, FingerprintKey, KeyKind, Permission, PermissionSet, ServiceIdentity,
    SignedLicense, TenantId, Tier, Verifier,
};
use store::{CredentialRow, Store, StoreErrorKind};
use subtle::ConstantTimeEq;
use types::{Clock, UnixMillis};

/// A credential as it arrived, before anything about it is known.
#[derive(Clone, Copy)]
pub enum PresentedCredential<'a> {
    /// `X-License-Key: …` or `Authorization: Bearer …`.
    LicenseKey(&'a str),
    /// `Authorization: Basic base64(client_id:secret)`, the AxonFlow SDKs' scheme: the secret is the license key
    /// and the client id must name the key's service (or its key id).
    Basic { client_id: &'a str, secret: &'a str },
}

impl fmt::Debug for PresentedCredential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresentedCredential::LicenseKey(_) => f.write_str("LicenseKey([redacted])"),
            PresentedCredential::Basic { client_id, .. } => {
                write!(f, "Basic {{ client_id: {client_id:?}, secret: [redacted] }}")
            }
        }
    }
}

/// Who is calling, as established by a verified, registered, unrevoked key. Everything here comes from the
/// signed claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub tenant: TenantId,
    pub kind: KeyKind,
    pub tier: Tier,
    pub service: Option<ServiceIdentity>,
    pub permissions: PermissionSet,
    /// `Some` while the key is past its expiry but inside the configured grace period.
    pub grace_remaining: Option<Duration>,
}

impl Principal {
    pub fn allows(&self, permission: &Permission) -> bool {
        self.permissions.allows(permission)
    }

    /// The name the caller is known by in logs and audit records: its service name, else its key id.
    pub fn display_name(&self) -> &str {
        self.service.as_ref().map_or(self.key_id.as_str(), |s| s.name.as_str())
    }
}

/// Why authentication failed. The HTTP layer answers 401 with a generic message for every reason but
/// [`AuthFailure::DeprecatedFormat`] (which tells the caller to rotate) and [`AuthFailure::Unavailable`] (503).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials were presented")]
    Missing,
    #[error("the credentials are not a well-formed license key")]
    Malformed,
    #[error("V1 license keys are deprecated and no longer accepted: rotate to a V2 key")]
    DeprecatedFormat,
    #[error("the license key signature does not verify")]
    BadSignature,
    #[error("the license key is for another environment")]
    WrongEnvironment,
    #[error("the license key has expired")]
    Expired,
    #[error("the license key is not valid yet")]
    NotYetValid,
    #[error("the license key is not registered on this deployment")]
    Unknown,
    #[error("the license key has been revoked")]
    Revoked,
    #[error("the client id does not match the license key")]
    ClientIdMismatch,
    #[error("credentials cannot be checked right now")]
    Unavailable,
}

impl AuthFailure {
    /// A stable code for metrics and logs.
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::DeprecatedFormat => "deprecated_format",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::WrongEnvironment => "wrong_environment",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::Unknown => "unknown_key",
            AuthFailure::Revoked => "revoked",
            AuthFailure::ClientIdMismatch => "client_id_mismatch",
            AuthFailure::Unavailable => "unavailable",
        }
    }
}

/// Settings of an [`Authenticator`].
#[derive(Debug)]
pub struct AuthenticatorConfig {
    pub verifier: Verifier,
    pub fingerprint_key: Arc<FingerprintKey>,
    pub environment: Environment,
    /// How long after expiry a key keeps working (visible to the caller); zero turns grace off.
    pub grace: Duration,
    /// How long a successful lookup is reused before the store is asked again (revocations made through this
    /// node take effect at once; those made elsewhere within this time).
    pub cache_ttl: Duration,
}

/// Authenticates presented credentials. Built once, shared by every request.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthenticatorConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<Fingerprint, Cached>>,
}

#[derive(Debug)]
struct Cached {
    /// Shared with the requests it serves, which only read the registration and the claims: not copied (a
    /// dozen strings and the permission list) for each request.
    credential: Arc<Registered>,
    fetched_at: UnixMillis,
}

/// A key's registration and its claims, the signature checked.
#[derive(Debug)]
struct Registered {
    row: CredentialRow,
    signed: SignedLicense,
}

const CACHE_LIMIT: usize = 100_000;

impl Authenticator {
    pub fn new(config: AuthenticatorConfig, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Authenticator {
        Authenticator { config, store, clock, cache: RwLock::new(HashMap::new()) }
    }

    pub fn environment(&self) -> Environment {
        self.config.environment
    }

    pub async fn authenticate(&self, presented: PresentedCredential<'_>) -> Result<Principal, AuthFailure> {
        let (key, client_id) = match presented {
            PresentedCredential::LicenseKey(key) => (key, None),
            PresentedCredential::Basic { client_id, secret } => (secret, Some(client_id)),
        };
        if key.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let now = self.clock.now();
        let fingerprint = Fingerprint::of(&self.config.fingerprint_key, key);
        let registered = self.registered(key, &fingerprint, now).await?;
        let Registered { row, signed } = &*registered;
        let verified = self
            .config
            .verifier
            .check(signed, self.config.environment, now, self.config.grace)
            .map_err(|error| failure_of(error.kind()))?;
        let claims = verified.claims();
        let row_fingerprint = Fingerprint::from_hex(&row.fingerprint).map_err(|_| AuthFailure::Unknown)?;
        let same_key: bool = row_fingerprint.ct_eq(&fingerprint).into();
        if !same_key || row.key_id != claims.key_id.as_str() {
            return Err(AuthFailure::Unknown);
        }
        if row.revoked_at.is_some_and(|at| at <= now) {
            return Err(AuthFailure::Revoked);
        }
        if let Some(client_id) = client_id {
            let service_name = claims.service.as_ref().map(|s| s.name.as_str());
            if client_id != claims.key_id.as_str() && Some(client_id) != service_name {
                return Err(AuthFailure::ClientIdMismatch);
            }
        }
        let grace_remaining = match verified.validity() {
            license::Validity::InGrace { grace_remaining } => Some(grace_remaining),
            license::Validity::Valid { .. } => None,
        };
        let claims = verified.into_claims();
        Ok(Principal {
            key_id: claims.key_id.as_str().to_owned(),
            tenant: claims.tenant,
            kind: claims.kind,
            tier: claims.tier,
            service: claims.service,
            permissions: claims.permissions,
            grace_remaining,
        })
    }

    /// Drops cached lookups, so that a revocation made through this node applies to the next request.
    pub fn forget_cached(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }

    /// The key's signed claims and its registration. A key seen within the cache time is served from the
    /// cache, keyed by its fingerprint (a keyed hash of the exact key), so its signature is checked once rather
    /// than on every request; otherwise the signature is checked first, so a forged key never reaches the store.
    async fn registered(
        &self,
        key: &str,
        fingerprint: &Fingerprint,
        now: UnixMillis,
    ) -> Result<Arc<Registered>, AuthFailure> {
        let ttl = i64::try_from(self.config.cache_ttl.as_millis()).unwrap_or(i64::MAX);
        if let Ok(cache) = self.cache.read()
            && let Some(cached) = cache.get(fingerprint)
            && now.0.saturating_sub(cached.fetched_at.0) < ttl
        {
            return Ok(Arc::clone(&cached.credential));
        }
        let signed = self.config.verifier.verify_signature(key).map_err(|error| failure_of(error.kind()))?;
        let row = match self.store.credential_by_fingerprint(&fingerprint.to_hex()).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(AuthFailure::Unknown),
            Err(error) => {
                tracing::warn!(error = %error, kind = ?error.kind(), "credential lookup failed");
                return Err(if error.kind() == StoreErrorKind::Corrupt {
                    AuthFailure::Unknown
                } else {
                    AuthFailure::Unavailable
                });
            }
        };
        let registered = Arc::new(Registered { row, signed });
        if ttl > 0
            && let Ok(mut cache) = self.cache.write()
        {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(*fingerprint, Cached { credential: Arc::clone(&registered), fetched_at: now });
        }
        Ok(registered)
    }
}

fn failure_of(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::DeprecatedV1 => AuthFailure::DeprecatedFormat,
        ErrorKind::BadSignature => AuthFailure::BadSignature,
        ErrorKind::WrongEnvironment { .. } => AuthFailure::WrongEnvironment,
        ErrorKind::Expired => AuthFailure::Expired,
        ErrorKind::NotYetValid => AuthFailure::NotYetValid,
        _ => AuthFailure::Malformed,
    }
}
