//! Key management: issuing (and registering) license keys, rotation with an overlap window, revocation.
//!
//! A key is shown exactly once, to whoever issued it; the store keeps only its keyed fingerprint.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use license::{
    Claims, Environment, Fingerprint, FingerprintKey, Issuer, KeyId, KeyKind, LicenseError, PermissionSet,
    ServiceIdentity, ServiceName, ServiceType, TenantId, Tier,
};
use store::{CredentialRow, Store, StoreError};
use types::{Clock, Secret, UnixMillis};

use crate::audit::{AuditEntry, AuditError, AuditLog};
use crate::auth::Authenticator;

/// What a new key is for. Its id and issue time are chosen by the service.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub kind: KeyKind,
    pub tier: Tier,
    pub tenant: TenantId,
    pub service: Option<ServiceIdentity>,
    pub environment: Environment,
    pub permissions: PermissionSet,
    pub expires_at: UnixMillis,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("this node holds no signing key: issue keys where the issuer key is kept")]
    NoSigningKey,
    #[error("no such key")]
    NotFound,
    #[error("the key is already revoked")]
    AlreadyRevoked,
    #[error("{0}")]
    Invalid(#[from] LicenseError),
    #[error("the credential store failed: {0}")]
    Store(#[from] StoreError),
    #[error("a stored credential is malformed")]
    Corrupt,
    #[error("the change was made but could not be audited")]
    Audit(#[from] AuditError),
}

/// Issues, rotates, revokes and lists keys.
#[derive(Debug)]
pub struct KeyService {
    issuer: Option<Issuer>,
    fingerprint_key: Arc<FingerprintKey>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    authenticator: Option<Arc<Authenticator>>,
    audit: Option<AuditLog>,
}

impl KeyService {
    pub fn new(
        issuer: Option<Issuer>,
        fingerprint_key: Arc<FingerprintKey>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> KeyService {
        KeyService { issuer, fingerprint_key, store, clock, authenticator: None, audit: None }
    }

    /// Revocations then take effect on this node's next request, not after its cache expires.
    pub fn with_authenticator(mut self, authenticator: Arc<Authenticator>) -> KeyService {
        self.authenticator = Some(authenticator);
        self
    }

    /// Every issue, rotation and revocation is then recorded in the audit trail.
    pub fn with_audit(mut self, audit: AuditLog) -> KeyService {
        self.audit = Some(audit);
        self
    }

    pub fn can_issue(&self) -> bool {
        self.issuer.is_some()
    }

    /// Signs and registers a new key on behalf of `by`. The returned secret is the only copy.
    pub async fn issue(&self, new: NewKey, by: &str) -> Result<(Secret<String>, CredentialRow), KeyError> {
        let (key, row) = self.issue_unaudited(new).await?;
        self.record(&row, "issued", by, serde_json::json!({})).await?;
        Ok((key, row))
    }

    /// Issues a break-glass credential; the grant and its reason are audited and flagged.
    pub async fn grant_emergency(
        &self,
        new: NewKey,
        by: &str,
        reason: &str,
    ) -> Result<(Secret<String>, CredentialRow), KeyError> {
        if new.kind != KeyKind::Emergency {
            return Err(KeyError::Invalid(
                license::ErrorKind::InvalidClaims("not an emergency credential").into(),
            ));
        }
        let (key, row) = self.issue_unaudited(new).await?;
        self.record(&row, "emergency_granted", by, serde_json::json!({"reason": reason})).await?;
        Ok((key, row))
    }

    async fn issue_unaudited(&self, new: NewKey) -> Result<(Secret<String>, CredentialRow), KeyError> {
        let issuer = self.issuer.as_ref().ok_or(KeyError::NoSigningKey)?;
        let now = self.clock.now();
        let claims = Claims {
            key_id: KeyId::random()?,
            kind: new.kind,
            tier: new.tier,
            tenant: new.tenant,
            service: new.service,
            environment: new.environment,
            permissions: new.permissions,
            issued_at: now,
            expires_at: new.expires_at,
        };
        let key = issuer.issue(&claims)?;
        let fingerprint = Fingerprint::of(&self.fingerprint_key, key.expose());
        let row = row_of(&claims, &fingerprint, now);
        self.store.insert_credential(&row).await?;
        Ok((key, row))
    }

    /// Issues a successor with the same claims and lifetime, and schedules the old key's revocation after
    /// `overlap` (the guide's "revoke old license key after 24 hours").
    pub async fn rotate(
        &self,
        key_id: &str,
        overlap: Duration,
        by: &str,
    ) -> Result<(Secret<String>, CredentialRow), KeyError> {
        let old = self.get(key_id).await?;
        let now = self.clock.now();
        if old.revoked_at.is_some_and(|at| at <= now) {
            return Err(KeyError::AlreadyRevoked);
        }
        let lifetime = old.expires_at.0.saturating_sub(old.issued_at.0).max(1);
        let new = NewKey {
            kind: KeyKind::from_str(&old.kind).map_err(|_| KeyError::Corrupt)?,
            tier: Tier::from_str(&old.tier).map_err(|_| KeyError::Corrupt)?,
            tenant: TenantId::new(&old.tenant_id).map_err(|_| KeyError::Corrupt)?,
            service: match (&old.service_name, &old.service_type) {
                (Some(name), Some(kind)) => Some(ServiceIdentity {
                    name: ServiceName::new(name).map_err(|_| KeyError::Corrupt)?,
                    service_type: ServiceType::new(kind).map_err(|_| KeyError::Corrupt)?,
                }),
                _ => None,
            },
            environment: Environment::from_str(&old.environment).map_err(|_| KeyError::Corrupt)?,
            permissions: PermissionSet::parse(old.permissions.split(' ').filter(|p| !p.is_empty()))
                .map_err(|_| KeyError::Corrupt)?,
            expires_at: now.plus_millis(lifetime),
        };
        let (key, row) = self.issue_unaudited(new).await?;
        let overlap_ms = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX);
        self.store
            .revoke_credential(key_id, now.plus_millis(overlap_ms), "rotated", Some(&row.key_id))
            .await?;
        self.forget_cached();
        let details = serde_json::json!({"replaces": key_id, "overlap_seconds": overlap.as_secs()});
        self.record(&row, "rotated", by, details).await?;
        Ok((key, row))
    }

    /// Revokes a key now (emergency rotation). Returns the updated record.
    pub async fn revoke(&self, key_id: &str, reason: &str, by: &str) -> Result<CredentialRow, KeyError> {
        let now = self.clock.now();
        if !self.store.revoke_credential(key_id, now, reason, None).await? {
            return Err(KeyError::NotFound);
        }
        self.forget_cached();
        let row = self.get(key_id).await?;
        self.record(&row, "revoked", by, serde_json::json!({"reason": reason})).await?;
        Ok(row)
    }

    async fn record(
        &self,
        row: &CredentialRow,
        verdict: &str,
        by: &str,
        mut details: serde_json::Value,
    ) -> Result<(), KeyError> {
        let Some(audit) = &self.audit else { return Ok(()) };
        if let Some(map) = details.as_object_mut() {
            map.insert("key_id".to_owned(), row.key_id.clone().into());
            map.insert("key_kind".to_owned(), row.kind.clone().into());
            map.insert("flagged".to_owned(), (row.kind == "emergency").into());
        }
        let entry = AuditEntry {
            kind: "key_admin",
            tenant: row.tenant_id.clone(),
            actor: by.to_owned(),
            verdict: verdict.to_owned(),
            details: details.into(),
        };
        audit.record(entry).await?;
        Ok(())
    }

    pub async fn get(&self, key_id: &str) -> Result<CredentialRow, KeyError> {
        self.store.credential_by_key_id(key_id).await?.ok_or(KeyError::NotFound)
    }

    /// Keys of one tenant, or of every tenant.
    pub async fn list(&self, tenant: Option<&TenantId>) -> Result<Vec<CredentialRow>, KeyError> {
        Ok(self.store.list_credentials(tenant.map(TenantId::as_str)).await?)
    }

    fn forget_cached(&self) {
        if let Some(authenticator) = &self.authenticator {
            authenticator.forget_cached();
        }
    }
}

fn row_of(claims: &Claims, fingerprint: &Fingerprint, now: UnixMillis) -> CredentialRow {
    CredentialRow {
        key_id: claims.key_id.as_str().to_owned(),
        fingerprint: fingerprint.to_hex(),
        tenant_id: claims.tenant.as_str().to_owned(),
        kind: claims.kind.as_str().to_owned(),
        service_name: claims.service.as_ref().map(|s| s.name.as_str().to_owned()),
        service_type: claims.service.as_ref().map(|s| s.service_type.as_str().to_owned()),
        tier: claims.tier.as_str().to_owned(),
        environment: claims.environment.as_str().to_owned(),
        permissions: claims.permissions.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        issued_at: claims.issued_at,
        expires_at: claims.expires_at,
        revoked_at: None,
        revocation_reason: None,
        replaced_by: None,
        created_at: now,
    }
}
