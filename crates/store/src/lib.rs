//! Persistence for AxonFlow: the traits the engine talks to and their SQLite and PostgreSQL implementations.
//!
//! This is the only crate that knows SQL. Both backends run the same versioned migrations (one directory per
//! dialect) at start and behave the same; the shared integration tests run against both.

mod error;
mod postgres;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use types::UnixMillis;

pub use error::{StoreError, StoreErrorKind};

/// Which database sits behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How far a committed write must have travelled before the commit returns (SQLite; PostgreSQL follows the
/// server's `synchronous_commit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the process (SQLite WAL with `synchronous=NORMAL`).
    #[default]
    ProcessCrash,
    /// Survives power loss: every commit is flushed to disk (`synchronous=FULL`).
    PowerLoss,
}

/// Options for [`open`]. The URL itself carries credentials and is never logged or put in an error.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub durability: Durability,
    /// PostgreSQL only: the schema to create (if missing) and use. Tests use a fresh schema each.
    pub postgres_schema: Option<String>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            durability: Durability::default(),
            postgres_schema: None,
        }
    }
}

/// One audit record as stored. The engine builds it (already redacted, hashed and chained); the store keeps it
/// exactly as given. `body` is a JSON document holding the rest of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub id: String,
    pub chain_id: String,
    pub seq: i64,
    pub ts: UnixMillis,
    pub tenant_id: String,
    pub actor: String,
    pub kind: String,
    pub verdict: String,
    pub body: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The last record of one chain: where the next append continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// Filters for [`AuditStore::search_audit`]; every field narrows the result. Results come newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub tenant_id: Option<String>,
    /// The record id (a decision id).
    pub id: Option<String>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    pub verdict: Option<String>,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    pub limit: u32,
    pub offset: u32,
}

/// A signed statement that a chain's record `seq` had hash `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRow {
    pub chain_id: String,
    pub seq: i64,
    pub hash: Vec<u8>,
    pub ts: UnixMillis,
    /// The signer's public key (base64url), to be matched against the keys the verifier trusts.
    pub public_key: String,
    pub signature: String,
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Every chain id present, sorted.
    async fn audit_chains(&self) -> Result<Vec<String>, StoreError>;
    /// Records of one chain with `seq > after_seq`, in `seq` order, at most `limit`.
    async fn audit_chain_page(
        &self,
        chain_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError>;
    async fn append_checkpoint(&self, checkpoint: &CheckpointRow) -> Result<(), StoreError>;
    /// Checkpoints of one chain in `seq` order.
    async fn audit_checkpoints(&self, chain_id: &str) -> Result<Vec<CheckpointRow>, StoreError>;
    /// Appends rows, and optionally a checkpoint, atomically: all of them are committed or none is. A
    /// `(chain_id, seq)` that already exists is a [`StoreErrorKind::Conflict`] and nothing is written.
    async fn append_audit(
        &self,
        rows: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<(), StoreError>;
    async fn audit_chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, StoreError>;
    async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError>;
    async fn count_audit(&self, query: &AuditQuery) -> Result<u64, StoreError>;
}

/// A credential as stored: everything about a license key but the key (only its keyed fingerprint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRow {
    pub key_id: String,
    pub fingerprint: String,
    pub tenant_id: String,
    pub kind: String,
    pub service_name: Option<String>,
    pub service_type: Option<String>,
    pub tier: String,
    pub environment: String,
    /// Canonical permission strings separated by single spaces.
    pub permissions: String,
    pub issued_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// When the credential stops working; in the future for a scheduled revocation.
    pub revoked_at: Option<UnixMillis>,
    pub revocation_reason: Option<String>,
    pub replaced_by: Option<String>,
    pub created_at: UnixMillis,
}

/// Credentials (license keys by fingerprint).
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Registers a credential; an existing key id or fingerprint is a [`StoreErrorKind::Conflict`].
    async fn insert_credential(&self, row: &CredentialRow) -> Result<(), StoreError>;
    async fn credential_by_fingerprint(&self, fingerprint: &str)
    -> Result<Option<CredentialRow>, StoreError>;
    async fn credential_by_key_id(&self, key_id: &str) -> Result<Option<CredentialRow>, StoreError>;
    /// Credentials of one tenant, or of all when `tenant_id` is `None`, oldest first.
    async fn list_credentials(&self, tenant_id: Option<&str>) -> Result<Vec<CredentialRow>, StoreError>;
    /// Sets when a credential stops working. A revocation can only be moved earlier, never later or undone.
    /// Returns whether the credential exists.
    async fn revoke_credential(
        &self,
        key_id: &str,
        at: UnixMillis,
        reason: &str,
        replaced_by: Option<&str>,
    ) -> Result<bool, StoreError>;
}

/// A stored policy bundle version. `files` is a JSON object of path → Rego text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersionRow {
    pub id: String,
    pub tenant_id: String,
    pub author: String,
    pub created_at: UnixMillis,
    pub content_hash: String,
    pub files: String,
    pub summary: String,
    pub active: bool,
}

/// Policy bundle versions.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    async fn insert_policy_version(&self, row: &PolicyVersionRow) -> Result<(), StoreError>;
    /// A tenant's versions, newest first.
    async fn list_policy_versions(&self, tenant_id: &str) -> Result<Vec<PolicyVersionRow>, StoreError>;
    async fn policy_version(&self, id: &str) -> Result<Option<PolicyVersionRow>, StoreError>;
    /// Makes `id` the tenant's only active version, atomically. Returns whether it exists for that tenant.
    async fn activate_policy_version(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
}

/// A connected, migrated database.
#[async_trait]
pub trait Store: AuditStore + CredentialStore + PolicyStore + fmt::Debug {
    fn backend(&self) -> Backend;
    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The newest migration version applied.
    async fn schema_version(&self) -> Result<i64, StoreError>;
    /// Waits for open connections to finish and closes them (flushes the SQLite WAL).
    async fn close(&self);
}

/// Opens (creating if needed) and migrates the database named by `url`: a `postgres://` or `postgresql://` URL,
/// or a `sqlite:` URL / plain file path for the embedded database.
pub async fn open(url: &str, options: &OpenOptions) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(url) {
        Ok(Arc::new(postgres::PostgresStore::open(url, options).await?))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::open(url, options).await?))
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn clamp_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, 10_000))
}
