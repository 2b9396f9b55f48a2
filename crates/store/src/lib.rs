//! Persistence for AxonFlow: the traits the engine talks to and their SQLite and PostgreSQL implementations.
//!
//! This is the only crate that knows SQL. Both backends run the same versioned migrations (one directory per
//! dialect) at start and behave the same; the shared integration tests run against both.

mod error;
mod postgres;
mod sql;
mod sql_protect;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use types::UnixMillis;

pub use error::{StoreError, StoreErrorKind};
pub use sqlite::{
    BackgroundThread, FileSyncer, PAGE_SIZE as SQLITE_PAGE_SIZE, SQLITE_AUDIT_THREAD,
    SQLITE_CHECKPOINT_LOOP_THREAD, SQLITE_CHECKPOINT_THREAD, SQLITE_WAL_SYNC_THREAD, on_background_thread,
    spawn_lowest,
};

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
    /// SQLite only: a WAL longer than this many bytes after a background checkpoint is started over between two
    /// audit appends (the file is cut back to twice this when it starts over). Starting over waits for two
    /// syncs (tens of milliseconds on a slow disk), so a larger WAL means fewer such waits; the default, 64 MiB,
    /// is one about every second at 5,000 records/s. (Until 2026-12-05 this was a count of 4 KiB pages, and
    /// stayed one after new databases moved to 16 KiB pages: the WAL started over at four times the size meant.)
    pub wal_restart_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            durability: Durability::default(),
            postgres_schema: None,
            wal_restart_bytes: 64 * 1024 * 1024,
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
    /// Records whose body contains this text (e.g. a subject id).
    pub contains: Option<String>,
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
    /// Every chain id present (with records or a retention horizon), sorted.
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
    /// Called by the audit writer between two appends: housekeeping that must not run concurrently with
    /// them (SQLite: starting a long WAL over). Errors are logged, not returned: the next call tries again.
    async fn between_audit_appends(&self);
    /// Called once by an audit writer that no request waits for (the audit journal's indexer): its appends
    /// are background work from then on. SQLite: the appending connection's thread goes to the lowest priority
    /// (nice 19), so it no longer takes turns with the request workers (see the `sqlite` module).
    async fn audit_appends_in_background(&self);
    async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError>;
    async fn count_audit(&self, query: &AuditQuery) -> Result<u64, StoreError>;
    /// The retention horizon of a chain, if its oldest records were deleted.
    async fn audit_horizon(&self, chain_id: &str) -> Result<Option<HorizonRow>, StoreError>;
    /// The last record of the chain's oldest run of records that are all older than `before`, at most
    /// `max_records` of them: how far retention may delete in one batch.
    async fn audit_prune_point(
        &self,
        chain_id: &str,
        before: UnixMillis,
        max_records: u32,
    ) -> Result<Option<ChainHead>, StoreError>;
    /// Deletes the chain's records (and checkpoints) up to and including `horizon.through_seq` and records
    /// the horizon, atomically. Returns how many records went.
    async fn prune_audit(&self, horizon: &HorizonRow) -> Result<u64, StoreError>;
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
    /// The active version of every tenant (and of the system bundle), by tenant.
    async fn active_policy_versions(&self) -> Result<Vec<PolicyVersionRow>, StoreError>;
}

/// A data key in its stored form: sealed by master key `master_key_id` (see the `crypto` crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeyRow {
    pub id: String,
    pub master_key_id: String,
    pub wrapped: Vec<u8>,
    pub created_at: UnixMillis,
    /// Set once a newer key seals new data; a retired key still opens what it sealed.
    pub retired_at: Option<UnixMillis>,
}

/// Data keys for envelope encryption.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_data_key(&self, row: &DataKeyRow) -> Result<(), StoreError>;
    /// Every data key, oldest first.
    async fn data_keys(&self) -> Result<Vec<DataKeyRow>, StoreError>;
    /// Replaces the wrapping of data key `id` if it is still wrapped by `from_master` (so two concurrent
    /// rotations cannot lose one another's work). Returns whether it changed.
    async fn rewrap_data_key(
        &self,
        id: &str,
        from_master: &str,
        master_key_id: &str,
        wrapped: &[u8],
    ) -> Result<bool, StoreError>;
    /// Retires every data key but `keep` that is not retired yet; returns how many.
    async fn retire_data_keys(&self, keep: &str, at: UnixMillis) -> Result<u64, StoreError>;
}

/// A data subject (an end user named in audit records); see migration 0005.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRow {
    pub subject_id: String,
    pub tenant_id: String,
    /// Keyed hash of (tenant, user id); `None` once erased.
    pub lookup: Option<String>,
    /// The subject's key sealed by a data key; `None` once erased.
    pub sealed_key: Option<Vec<u8>>,
    /// The subject's identifiers sealed by the subject's key.
    pub sealed_profile: Option<Vec<u8>>,
    pub restricted: bool,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub erased_at: Option<UnixMillis>,
    pub purge_after: Option<UnixMillis>,
}

/// Data subjects.
#[async_trait]
pub trait SubjectStore: Send + Sync {
    /// Registers a subject; an existing lookup or id is a [`StoreErrorKind::Conflict`].
    async fn insert_subject(&self, row: &SubjectRow) -> Result<(), StoreError>;
    async fn subject_by_lookup(&self, lookup: &str) -> Result<Option<SubjectRow>, StoreError>;
    async fn subject_by_id(&self, subject_id: &str) -> Result<Option<SubjectRow>, StoreError>;
    /// Replaces the sealed profile and/or the restriction flag of a subject that is not erased. Returns
    /// whether such a subject exists.
    async fn update_subject(
        &self,
        subject_id: &str,
        sealed_profile: Option<&[u8]>,
        restricted: Option<bool>,
        at: UnixMillis,
    ) -> Result<bool, StoreError>;
    /// Destroys the subject's key, profile and lookup, leaving a tombstone to be purged after `purge_after`.
    /// Returns whether a not yet erased subject was erased.
    async fn erase_subject(
        &self,
        subject_id: &str,
        at: UnixMillis,
        purge_after: UnixMillis,
    ) -> Result<bool, StoreError>;
    /// Deletes the tombstones whose grace period ended before `now`; returns how many.
    async fn purge_erased_subjects(&self, now: UnixMillis) -> Result<u64, StoreError>;
}

/// A connector's credential, sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorSecretRow {
    pub tenant_id: String,
    pub connector: String,
    pub sealed: Vec<u8>,
    pub created_by: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// Connector and provider credentials, one per tenant and connector.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores the secret, replacing one already there (its creation time and author stay).
    async fn put_connector_secret(&self, row: &ConnectorSecretRow) -> Result<(), StoreError>;
    async fn connector_secret(
        &self,
        tenant_id: &str,
        connector: &str,
    ) -> Result<Option<ConnectorSecretRow>, StoreError>;
    /// A tenant's secrets, by connector name.
    async fn list_connector_secrets(&self, tenant_id: &str) -> Result<Vec<ConnectorSecretRow>, StoreError>;
    async fn delete_connector_secret(&self, tenant_id: &str, connector: &str) -> Result<bool, StoreError>;
}

/// Where a chain starts after retention deleted its oldest records: the last deleted record's seq and hash,
/// signed by the node's audit key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HorizonRow {
    pub chain_id: String,
    pub through_seq: i64,
    pub through_hash: Vec<u8>,
    pub ts: UnixMillis,
    pub public_key: String,
    pub signature: String,
}

/// A connected, migrated database.
#[async_trait]
pub trait Store:
    AuditStore + CredentialStore + PolicyStore + KeyStore + SubjectStore + SecretStore + fmt::Debug
{
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
