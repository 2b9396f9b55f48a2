//! Connector and provider credentials: one secret per tenant and connector, sealed with the deployment's data
//! key (bound to its tenant and connector, so a sealed value moved to another row does not open) and never
//! returned by any API once stored. Setting and deleting are audited, without the value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::{ConnectorSecretRow, Store};
use types::{Clock, Secret, UnixMillis};

use crate::audit::{AuditEntry, AuditError, AuditLog};
use crate::auth::Principal;
use crate::vault::{Vault, VaultError};

/// The longest secret accepted.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret store is unavailable")]
    Unavailable,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("no secret is stored for this connector")]
    Unknown,
    #[error("the audit trail cannot record this change")]
    Audit(#[from] AuditError),
}

impl From<store::StoreError> for SecretError {
    fn from(error: store::StoreError) -> Self {
        tracing::error!(error = %error, "connector secret store");
        SecretError::Unavailable
    }
}

impl From<VaultError> for SecretError {
    fn from(error: VaultError) -> Self {
        tracing::error!(error = %error, "connector secret keys");
        SecretError::Unavailable
    }
}

/// What may be shown about a stored secret: everything but the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretInfo {
    pub connector: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    /// The data key that sealed it (changes when it is set again after a rotation).
    pub data_key_id: String,
}

/// How long an opened secret is kept in memory for the engine's own use.
const CACHE_TTL_MS: i64 = 300_000;

type Cached = HashMap<(String, String), (UnixMillis, Option<Arc<Secret<String>>>)>;

/// See the module documentation.
#[derive(Debug)]
pub struct ConnectorSecrets {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    /// Opened secrets (and known absences) for [`ConnectorSecrets::cached`], at most 5 minutes old.
    cache: Mutex<Cached>,
}

impl ConnectorSecrets {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>, audit: AuditLog, clock: Arc<dyn Clock>) -> Self {
        ConnectorSecrets { store, vault, audit, clock, cache: Mutex::new(HashMap::new()) }
    }

    /// Stores (or replaces) the secret of `connector` for the actor's tenant.
    pub async fn put(
        &self,
        actor: &Principal,
        connector: &str,
        secret: &Secret<String>,
    ) -> Result<SecretInfo, SecretError> {
        check_name(connector)?;
        if secret.expose().is_empty() || secret.expose().len() > MAX_SECRET_BYTES {
            return Err(SecretError::Invalid("a secret is 1 to 16384 bytes"));
        }
        let tenant = actor.tenant.as_str();
        // A rare admin operation: make sure it seals with the newest data key even right after a rotation made
        // by another process.
        self.vault.refresh().await?;
        let sealed = self.vault.seal(secret.expose().as_bytes(), &context(tenant, connector))?;
        let now = self.clock.now();
        let row = ConnectorSecretRow {
            tenant_id: tenant.to_owned(),
            connector: connector.to_owned(),
            sealed,
            created_by: actor.display_name().to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.audited(actor, "connector.secret.set", connector).await?;
        self.store.put_connector_secret(&row).await?;
        self.forget(tenant, connector);
        let stored = self.store.connector_secret(tenant, connector).await?.ok_or(SecretError::Unavailable)?;
        info(&stored)
    }

    /// The tenant's stored secrets, without their values.
    pub async fn list(&self, tenant: &str) -> Result<Vec<SecretInfo>, SecretError> {
        self.store.list_connector_secrets(tenant).await?.iter().map(info).collect()
    }

    pub async fn delete(&self, actor: &Principal, connector: &str) -> Result<(), SecretError> {
        check_name(connector)?;
        self.audited(actor, "connector.secret.delete", connector).await?;
        let deleted = self.store.delete_connector_secret(actor.tenant.as_str(), connector).await?;
        self.forget(actor.tenant.as_str(), connector);
        if deleted { Ok(()) } else { Err(SecretError::Unknown) }
    }

    /// Like [`ConnectorSecrets::reveal`], but served from memory for up to 5 minutes (a change made on
    /// another node reaches this one within that time; one made here, at once). `None`: nothing is stored.
    pub async fn cached(
        &self,
        tenant: &str,
        connector: &str,
    ) -> Result<Option<Arc<Secret<String>>>, SecretError> {
        let key = (tenant.to_owned(), connector.to_owned());
        let now = self.clock.now();
        if let Some((at, value)) = self.cache_lock().get(&key)
            && now.0 - at.0 < CACHE_TTL_MS
        {
            return Ok(value.clone());
        }
        let value = match self.reveal(tenant, connector).await {
            Ok(secret) => Some(Arc::new(secret)),
            Err(SecretError::Unknown) => None,
            Err(other) => return Err(other),
        };
        let mut cache = self.cache_lock();
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(key, (now, value.clone()));
        Ok(value)
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget(&self, tenant: &str, connector: &str) {
        self.cache_lock().remove(&(tenant.to_owned(), connector.to_owned()));
    }

    /// The secret itself, for the engine's own use when it calls the connector. No API returns it.
    pub async fn reveal(&self, tenant: &str, connector: &str) -> Result<Secret<String>, SecretError> {
        let row = self.store.connector_secret(tenant, connector).await?.ok_or(SecretError::Unknown)?;
        let plain = self.vault.open(&row.sealed, &context(tenant, connector)).await?;
        String::from_utf8(plain.expose().clone()).map(Secret::new).map_err(|_| SecretError::Unavailable)
    }

    async fn audited(
        &self,
        actor: &Principal,
        kind: &'static str,
        connector: &str,
    ) -> Result<(), SecretError> {
        let entry = AuditEntry {
            kind,
            tenant: actor.tenant.as_str().to_owned(),
            actor: actor.display_name().to_owned(),
            verdict: "recorded".to_owned(),
            details: serde_json::json!({ "connector": connector }).into(),
        };
        self.audit.record(entry).await?;
        Ok(())
    }
}

fn check_name(connector: &str) -> Result<(), SecretError> {
    let valid = !connector.is_empty()
        && connector.len() <= 64
        && connector.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid { Ok(()) } else { Err(SecretError::Invalid("a connector name is 1-64 of A-Z a-z 0-9 . _ -")) }
}

fn context(tenant: &str, connector: &str) -> Vec<u8> {
    let mut context = b"axonflow/connector-secret/v1\0".to_vec();
    context.extend_from_slice(tenant.as_bytes());
    context.push(0);
    context.extend_from_slice(connector.as_bytes());
    context
}

fn info(row: &ConnectorSecretRow) -> Result<SecretInfo, SecretError> {
    Ok(SecretInfo {
        connector: row.connector.clone(),
        created_by: row.created_by.clone(),
        created_at: row.created_at.to_rfc3339(),
        updated_at: row.updated_at.to_rfc3339(),
        data_key_id: crypto::Sealed::key_id_of(&row.sealed).map_err(|_| SecretError::Unavailable)?.to_owned(),
    })
}
