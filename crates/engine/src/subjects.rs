//! Data subjects: the end users named in audit records, and their GDPR rights.
//!
//! An audit record never holds a user's identifier in the clear. It holds the subject's random id and the
//! identifier sealed with the subject's own key (AES-256-GCM), and that key is stored only sealed by the
//! deployment's data key (envelope encryption). Subjects are found by a keyed hash of (tenant, user id).
//!
//! Erasure (the guide's "right to be forgotten") destroys the subject's key, profile and lookup at once
//! (crypto-shredding): every record about them now reads `DELETED_USER`, while the records and the hash chain
//! over them stay exactly as they were, so `axonflow audit verify` still passes. The remaining tombstone (the
//! random id and the erasure time, nothing personal) is deleted for good after a grace period (30 days). Every
//! request about a subject's rights is itself audited, by subject id only.
//!
//! Resolved subjects are cached in memory (30 seconds by default, at most five minutes); a restriction or
//! erasure made on another node or by the command line reaches this one within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto::DataKey;
use hmac::Mac;
use sha2::Sha256;
use store::{AuditQuery, Store, StoreError, StoreErrorKind, SubjectRow};
use types::{Clock, Secret, UnixMillis};

use crate::audit::{AuditEntry, AuditError, AuditLog};
use crate::auth::Principal;
use crate::vault::{Vault, VaultError};

/// What records about an erased subject say instead of who they were.
pub const DELETED_USER: &str = "DELETED_USER";
/// Why a restricted subject's requests are refused.
pub const RESTRICTED_REASON: &str = "processing of this user's data is restricted at their request (GDPR Art. 18): the request was not processed";

#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error("the data subject store is unavailable")]
    Unavailable,
    #[error("no data is held about this user")]
    Unknown,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the audit trail cannot record this request")]
    Audit(#[from] AuditError),
}

impl From<StoreError> for SubjectError {
    fn from(error: StoreError) -> Self {
        tracing::error!(error = %error, "data subject store");
        SubjectError::Unavailable
    }
}

impl From<VaultError> for SubjectError {
    fn from(error: VaultError) -> Self {
        tracing::error!(error = %error, "data subject keys");
        SubjectError::Unavailable
    }
}

/// Settings of [`Subjects`].
#[derive(Debug, Clone, Copy)]
pub struct SubjectOptions {
    /// How long a resolved subject is cached (at most 5 minutes; zero: not cached).
    pub cache_ttl: Duration,
    /// How long an erased subject's tombstone is kept before it is deleted for good.
    pub erasure_grace: Duration,
}

impl Default for SubjectOptions {
    fn default() -> Self {
        SubjectOptions {
            cache_ttl: Duration::from_secs(30),
            erasure_grace: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A resolved subject: its id, its key (to seal identifiers into records) and whether processing is
/// restricted.
#[derive(Debug)]
pub struct Subject {
    pub id: String,
    key: DataKey,
    pub restricted: bool,
}

/// The outcome of an erasure request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub subject_id: String,
    /// RFC 3339.
    pub erased_at: String,
    /// When the tombstone is deleted for good (RFC 3339).
    pub purge_after: String,
    pub audit_record: String,
}

/// Everything held about a subject (access and portability).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubjectExport {
    pub subject_id: String,
    pub tenant: String,
    pub profile: serde_json::Map<String, serde_json::Value>,
    pub restricted: bool,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    /// The audit records that name the subject, newest first, with the identifier revealed.
    pub records: Vec<serde_json::Value>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Subjects {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    lookup_key: Secret<[u8; crypto::KEY_LEN]>,
    options: SubjectOptions,
    cache: Mutex<HashMap<String, (UnixMillis, Arc<Subject>)>>,
}

const MAX_CACHED: usize = 100_000;
const KEY_CONTEXT: &[u8] = b"axonflow/subject-key/v1\0";
const PROFILE_CONTEXT: &[u8] = b"axonflow/subject-profile/v1\0";
const FIELD_CONTEXT: &[u8] = b"axonflow/subject-field/v1\0";

impl Subjects {
    /// Subjects are found by HMAC-SHA256 of (tenant, user id) under a key derived from the vault's first
    /// data key, so every node of a deployment finds the same subject.
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        options: SubjectOptions,
    ) -> Subjects {
        let lookup_key = vault.stable_key(b"axonflow/subject-lookup-key/v1");
        Subjects { store, vault, audit, clock, lookup_key, options, cache: Mutex::new(HashMap::new()) }
    }

    fn lookup(&self, tenant: &str, user: &str) -> Result<String, SubjectError> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.lookup_key.expose())
            .map_err(|_| SubjectError::Unavailable)?;
        mac.update(b"axonflow/subject-lookup/v1\0");
        mac.update(tenant.as_bytes());
        mac.update(b"\0");
        mac.update(user.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// The subject for `user` in `tenant`, registering it on first sight.
    pub async fn resolve(&self, tenant: &str, user: &str) -> Result<Arc<Subject>, SubjectError> {
        let lookup = self.lookup(tenant, user)?;
        let now = self.clock.now();
        let ttl = self.options.cache_ttl.as_millis() as i64;
        if let Some((at, subject)) = self.cache().get(&lookup)
            && now.0 - at.0 < ttl
        {
            return Ok(subject.clone());
        }
        let subject = match self.store.subject_by_lookup(&lookup).await? {
            Some(row) => self.unseal(&row).await?,
            None => match self.register(tenant, user, &lookup, now).await? {
                Some(subject) => subject,
                None => {
                    // Another request or node registered the same user first.
                    let row =
                        self.store.subject_by_lookup(&lookup).await?.ok_or(SubjectError::Unavailable)?;
                    self.unseal(&row).await?
                }
            },
        };
        let subject = Arc::new(subject);
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| now.0 - at.0 < ttl);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(lookup, (now, subject.clone()));
        Ok(subject)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (UnixMillis, Arc<Subject>)>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn register(
        &self,
        tenant: &str,
        user: &str,
        lookup: &str,
        now: UnixMillis,
    ) -> Result<Option<Subject>, SubjectError> {
        let id = format!("sub_{}", uuid::Uuid::new_v4().simple());
        let key_bytes = crypto::generate_key().map_err(VaultError::from)?;
        let key = DataKey::new(id.clone(), &key_bytes).map_err(VaultError::from)?;
        let sealed_key = self.vault.seal(key_bytes.expose(), &context(KEY_CONTEXT, &id))?;
        let profile = serde_json::json!({ "user_id": user });
        let sealed_profile = seal_json(&key, &profile, &id)?;
        let row = SubjectRow {
            subject_id: id.clone(),
            tenant_id: tenant.to_owned(),
            lookup: Some(lookup.to_owned()),
            sealed_key: Some(sealed_key),
            sealed_profile: Some(sealed_profile),
            restricted: false,
            created_at: now,
            updated_at: now,
            erased_at: None,
            purge_after: None,
        };
        match self.store.insert_subject(&row).await {
            Ok(()) => Ok(Some(Subject { id, key, restricted: false })),
            Err(e) if e.kind() == StoreErrorKind::Conflict => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn unseal(&self, row: &SubjectRow) -> Result<Subject, SubjectError> {
        let sealed = row.sealed_key.as_deref().ok_or(SubjectError::Unknown)?;
        let bytes = self.vault.open(sealed, &context(KEY_CONTEXT, &row.subject_id)).await?;
        let key = DataKey::from_slice(row.subject_id.clone(), bytes.expose()).map_err(VaultError::from)?;
        Ok(Subject { id: row.subject_id.clone(), key, restricted: row.restricted })
    }

    /// What an audit record says about its end user: the subject id and the user id sealed with the
    /// subject's key.
    pub fn record_field(&self, subject: &Subject, user: &str) -> Result<serde_json::Value, SubjectError> {
        let sealed = subject
            .key
            .seal(user.as_bytes(), &context(FIELD_CONTEXT, &subject.id))
            .map_err(VaultError::from)?;
        Ok(serde_json::json!({ "id": subject.id, "user": STANDARD.encode(sealed) }))
    }

    /// Replaces a record's sealed `subject` field with the user id in the clear, or [`DELETED_USER`] once the
    /// subject was erased. For auditors' exports and searches.
    pub async fn reveal(&self, details: &mut serde_json::Value) {
        self.reveal_all(vec![details]).await;
    }

    /// [`Subjects::reveal`] for many records, reading and unsealing each subject's key once.
    pub async fn reveal_all(&self, records: Vec<&mut serde_json::Value>) {
        let mut keys: HashMap<String, Option<DataKey>> = HashMap::new();
        for details in records {
            let Some(field) = details.get_mut("subject") else { continue };
            let (Some(id), Some(sealed)) = (
                field.get("id").and_then(|v| v.as_str()).map(str::to_owned),
                field.get("user").and_then(|v| v.as_str()).and_then(|s| STANDARD.decode(s).ok()),
            ) else {
                continue;
            };
            if !keys.contains_key(&id) {
                let key = self.key_by_id(&id).await.ok().flatten();
                keys.insert(id.clone(), key);
            }
            let user = keys.get(&id).and_then(Option::as_ref).and_then(|key| {
                let plain = key.open(&sealed, &context(FIELD_CONTEXT, &id)).ok()?;
                String::from_utf8(plain.expose().clone()).ok()
            });
            *field = serde_json::json!({ "id": id, "user": user.as_deref().unwrap_or(DELETED_USER) });
        }
    }

    async fn key_by_id(&self, subject_id: &str) -> Result<Option<DataKey>, SubjectError> {
        let Some(row) = self.store.subject_by_id(subject_id).await? else { return Ok(None) };
        if row.sealed_key.is_none() {
            return Ok(None);
        }
        Ok(Some(self.unseal(&row).await?.key))
    }

    async fn existing(&self, tenant: &str, user: &str) -> Result<(SubjectRow, Subject), SubjectError> {
        let lookup = self.lookup(tenant, user)?;
        let row = self.store.subject_by_lookup(&lookup).await?.ok_or(SubjectError::Unknown)?;
        if row.tenant_id != tenant {
            return Err(SubjectError::Unknown);
        }
        let subject = self.unseal(&row).await?;
        Ok((row, subject))
    }

    /// Access and portability: everything held about `user`, as JSON. The request is audited.
    pub async fn export(
        &self,
        actor: &Principal,
        tenant: &str,
        user: &str,
    ) -> Result<SubjectExport, SubjectError> {
        let (row, subject) = self.existing(tenant, user).await?;
        let profile = match &row.sealed_profile {
            Some(sealed) => open_json(&subject.key, sealed, &subject.id)?,
            None => serde_json::Map::new(),
        };
        let mut records = Vec::new();
        let mut query = AuditQuery {
            tenant_id: Some(tenant.to_owned()),
            contains: Some(subject.id.clone()),
            limit: 1000,
            ..AuditQuery::default()
        };
        self.audit.settled().await.map_err(|_| SubjectError::Unavailable)?;
        loop {
            let page = self.store.search_audit(&query).await?;
            let done = page.len() < query.limit as usize;
            for record in page {
                let details: serde_json::Value =
                    serde_json::from_str(&record.body).unwrap_or(serde_json::Value::Null);
                records.push(serde_json::json!({
                    "id": record.id,
                    "timestamp": record.ts.to_rfc3339(),
                    "kind": record.kind,
                    "actor": record.actor,
                    "verdict": record.verdict,
                    "details": details,
                }));
            }
            if done {
                break;
            }
            query.offset += query.limit;
        }
        self.reveal_all(records.iter_mut().map(|r| &mut r["details"]).collect()).await;
        self.audited(
            actor,
            tenant,
            "gdpr.access",
            &subject.id,
            serde_json::json!({ "records": records.len() }),
        )
        .await?;
        Ok(SubjectExport {
            subject_id: subject.id,
            tenant: tenant.to_owned(),
            profile,
            restricted: row.restricted,
            created_at: row.created_at.to_rfc3339(),
            updated_at: row.updated_at.to_rfc3339(),
            records,
        })
    }

    /// Rectification: sets (or, with `null`, removes) fields of the subject's profile. `user_id` names the
    /// subject and cannot change. The request is audited (field names only).
    pub async fn rectify(
        &self,
        actor: &Principal,
        tenant: &str,
        user: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, SubjectError> {
        if changes.contains_key("user_id") {
            return Err(SubjectError::Invalid("user_id names the subject and cannot be rectified"));
        }
        if changes.values().any(|v| !(v.is_string() || v.is_null())) {
            return Err(SubjectError::Invalid("profile fields are strings (or null to remove one)"));
        }
        let (row, subject) = self.existing(tenant, user).await?;
        let mut profile = match &row.sealed_profile {
            Some(sealed) => open_json(&subject.key, sealed, &subject.id)?,
            None => serde_json::Map::new(),
        };
        for (name, value) in changes {
            if value.is_null() {
                profile.remove(name);
            } else {
                profile.insert(name.clone(), value.clone());
            }
        }
        let sealed = seal_json(&subject.key, &serde_json::Value::Object(profile.clone()), &subject.id)?;
        if !self.store.update_subject(&subject.id, Some(&sealed), None, self.clock.now()).await? {
            return Err(SubjectError::Unknown);
        }
        let fields: Vec<&String> = changes.keys().collect();
        self.audited(
            actor,
            tenant,
            "gdpr.rectification",
            &subject.id,
            serde_json::json!({ "fields": fields }),
        )
        .await?;
        Ok(profile)
    }

    /// Restriction of processing: while set, requests on the user's behalf are refused. Audited.
    pub async fn restrict(
        &self,
        actor: &Principal,
        tenant: &str,
        user: &str,
        restricted: bool,
    ) -> Result<String, SubjectError> {
        let lookup = self.lookup(tenant, user)?;
        let (_, subject) = self.existing(tenant, user).await?;
        if !self.store.update_subject(&subject.id, None, Some(restricted), self.clock.now()).await? {
            return Err(SubjectError::Unknown);
        }
        self.cache().remove(&lookup);
        self.audited(
            actor,
            tenant,
            "gdpr.restriction",
            &subject.id,
            serde_json::json!({ "restricted": restricted }),
        )
        .await?;
        Ok(subject.id)
    }

    /// Erasure: destroys the subject's key, profile and lookup now; the tombstone goes after the grace
    /// period. Audited by subject id.
    pub async fn erase(&self, actor: &Principal, tenant: &str, user: &str) -> Result<Erasure, SubjectError> {
        let lookup = self.lookup(tenant, user)?;
        let row = self.store.subject_by_lookup(&lookup).await?.ok_or(SubjectError::Unknown)?;
        if row.tenant_id != tenant {
            return Err(SubjectError::Unknown);
        }
        let now = self.clock.now();
        let purge_after = now.plus_millis(self.options.erasure_grace.as_millis() as i64);
        if !self.store.erase_subject(&row.subject_id, now, purge_after).await? {
            return Err(SubjectError::Unknown);
        }
        self.cache().remove(&lookup);
        let receipt = self
            .audited(
                actor,
                tenant,
                "gdpr.erasure",
                &row.subject_id,
                serde_json::json!({
                    "compliance_type": "GDPR",
                    "method": "crypto-shredding",
                    "purge_after": purge_after.to_rfc3339(),
                }),
            )
            .await?;
        Ok(Erasure {
            subject_id: row.subject_id,
            erased_at: now.to_rfc3339(),
            purge_after: purge_after.to_rfc3339(),
            audit_record: receipt,
        })
    }

    /// Deletes the tombstones whose grace period is over; returns how many.
    pub async fn purge(&self, now: UnixMillis) -> Result<u64, SubjectError> {
        Ok(self.store.purge_erased_subjects(now).await?)
    }

    async fn audited(
        &self,
        actor: &Principal,
        tenant: &str,
        kind: &'static str,
        subject_id: &str,
        mut details: serde_json::Value,
    ) -> Result<String, SubjectError> {
        details["subject_id"] = subject_id.into();
        let entry = AuditEntry {
            kind,
            tenant: tenant.to_owned(),
            actor: actor.display_name().to_owned(),
            verdict: "recorded".to_owned(),
            details: details.into(),
        };
        Ok(self.audit.record(entry).await?.id)
    }
}

fn context(label: &[u8], subject_id: &str) -> Vec<u8> {
    let mut context = label.to_vec();
    context.extend_from_slice(subject_id.as_bytes());
    context
}

fn seal_json(key: &DataKey, value: &serde_json::Value, subject_id: &str) -> Result<Vec<u8>, SubjectError> {
    let plain =
        Secret::new(serde_json::to_vec(value).map_err(|_| SubjectError::Invalid("unencodable profile"))?);
    Ok(key.seal(plain.expose(), &context(PROFILE_CONTEXT, subject_id)).map_err(VaultError::from)?)
}

fn open_json(
    key: &DataKey,
    sealed: &[u8],
    subject_id: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, SubjectError> {
    let plain = key.open(sealed, &context(PROFILE_CONTEXT, subject_id)).map_err(VaultError::from)?;
    serde_json::from_slice(plain.expose()).map_err(|_| SubjectError::Unavailable)
}
