//! The policy lifecycle: upload (validated: parses, compiles in time, fits the size limit, its own tests
//! pass), versions with author, time, content hash and a change summary, promotion and rollback, and hot
//! reload: a promoted bundle replaces the live one atomically, and requests in flight finish with the policy
//! they started with.
//!
//! There is one *system* bundle (kept under [`SYSTEM_TENANT`]) and, optionally, one bundle per tenant that is
//! evaluated on top of it and can only make decisions stricter (see `ControlPlane`). Each has its own versions.
//! A promotion made on one node reaches the others through [`PolicyLifecycle::sync`], which the server runs
//! every few seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use policy::{Bundle, CompileOptions, CompiledPolicy, Limits, Stage};
use sha2::{Digest, Sha256};
use store::{PolicyVersionRow, Store, StoreError};
use types::Clock;

use crate::audit::{AuditEntry, AuditError, AuditLog};
use crate::control::ControlPlane;
use crate::static_policies::{self, StaticPolicy};

/// The tenant the deployment-wide bundle is kept under.
pub const SYSTEM_TENANT: &str = "system";

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("the bundle was refused: {}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("no such policy version")]
    NotFound,
    #[error("the policy store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the change could not be audited")]
    Audit(#[from] AuditError),
    #[error("a stored policy version is malformed")]
    Corrupt,
}

/// Policy versions and the live policies of a [`ControlPlane`].
#[derive(Debug)]
pub struct PolicyLifecycle {
    store: Arc<dyn Store>,
    control: Arc<ControlPlane>,
    options: CompileOptions,
    /// What an uploaded bundle must keep within.
    limits: Limits,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    /// Whether the system bundle follows the store (false when the node was started on a bundle directory).
    system_from_store: bool,
    /// The version live on this node, by scope (tenant id or [`SYSTEM_TENANT`]).
    live: Mutex<HashMap<String, String>>,
    static_changes: tokio::sync::Mutex<()>,
}

impl PolicyLifecycle {
    pub fn new(
        store: Arc<dyn Store>,
        control: Arc<ControlPlane>,
        options: CompileOptions,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
    ) -> PolicyLifecycle {
        PolicyLifecycle {
            store,
            control,
            options,
            limits: Limits::default(),
            audit,
            clock,
            system_from_store: true,
            live: Mutex::new(HashMap::new()),
            static_changes: tokio::sync::Mutex::new(()),
        }
    }

    /// Uploaded bundles are validated against `limits` instead of the guide's defaults.
    pub fn with_limits(mut self, limits: Limits) -> PolicyLifecycle {
        self.limits = limits;
        self
    }

    /// The system bundle comes from files, not from the store: [`PolicyLifecycle::sync`] leaves it alone.
    pub fn with_system_bundle_from_files(mut self) -> PolicyLifecycle {
        self.system_from_store = false;
        self
    }

    /// Brings this node's live policies in line with the active versions in the store: the system bundle
    /// (unless it comes from files) and every tenant's. Returns the scopes that changed. A stored version that
    /// no longer compiles (it did when it was uploaded) keeps the previous one live and is logged.
    pub async fn sync(&self) -> Result<Vec<String>, LifecycleError> {
        let active = self.store.active_policy_versions().await?;
        let mut changed = Vec::new();
        let live = self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for row in &active {
            let scope = row.tenant_id.as_str();
            if (scope == SYSTEM_TENANT && !self.system_from_store) || live.get(scope) == Some(&row.id) {
                continue;
            }
            let bundle = Bundle::from_layout(files_of(row)?, Stage::Production);
            match CompiledPolicy::compile(&bundle, &self.options) {
                Ok(compiled) => {
                    self.make_live(scope, &row.id, Arc::new(compiled));
                    changed.push(scope.to_owned());
                }
                Err(error) => {
                    tracing::error!(scope, version = %row.id, error = %error, "a stored policy version does not compile");
                }
            }
        }
        for scope in live.keys() {
            if scope != SYSTEM_TENANT && !active.iter().any(|r| &r.tenant_id == scope) {
                self.control.replace_tenant_policy(scope, None);
                self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(scope);
                changed.push(scope.clone());
            }
        }
        Ok(changed)
    }

    fn make_live(&self, scope: &str, version: &str, compiled: Arc<CompiledPolicy>) {
        if scope == SYSTEM_TENANT {
            self.control.replace_policy(compiled);
        } else {
            self.control.replace_tenant_policy(scope, Some(compiled));
        }
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(scope.to_owned(), version.to_owned());
    }

    /// The sources the node should start with: the active stored version, or `built_in` (stored as the first
    /// version and made active) when there is none.
    pub async fn startup_sources(
        store: &Arc<dyn Store>,
        built_in: Vec<(String, String)>,
        now: types::UnixMillis,
    ) -> Result<Vec<(String, String)>, LifecycleError> {
        let versions = store.list_policy_versions(SYSTEM_TENANT).await?;
        if let Some(active) = versions.iter().find(|v| v.active) {
            return files_of(active);
        }
        let row = version_row(
            SYSTEM_TENANT,
            &built_in,
            "built-in",
            "the bundle built into this binary".to_owned(),
            now,
        )?;
        store.insert_policy_version(&row).await?;
        store.activate_policy_version(SYSTEM_TENANT, &row.id).await?;
        Ok(built_in)
    }

    /// Validates and stores a new version of `scope`'s bundle (not yet active). `files` are paths in the guide's
    /// layout. `author` and `tenant` say who did it, for the version and the audit trail.
    pub async fn upload(
        &self,
        scope: &str,
        files: Vec<(String, String)>,
        author: &str,
        tenant: &str,
    ) -> Result<PolicyVersionRow, LifecycleError> {
        let bundle = Bundle::from_layout(files.clone(), Stage::Production);
        let problems = policy::validate(&bundle, &self.options, &self.limits);
        if !problems.is_empty() {
            return Err(LifecycleError::Refused(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path.as_deref().unwrap_or("bundle"), p.message))
                    .collect(),
            ));
        }
        let active = self.active(scope).await?;
        let summary = match &active {
            Some(active) => diff_summary(&files_of(active)?, &files),
            None => format!("{} files", files.len()),
        };
        let row = version_row(scope, &files, author, summary, self.clock.now())?;
        self.store.insert_policy_version(&row).await?;
        self.record("uploaded", author, tenant, &row).await?;
        Ok(row)
    }

    /// Makes a stored version of `scope`'s bundle live (promotion, or rollback to an older one).
    pub async fn promote(
        &self,
        scope: &str,
        id: &str,
        author: &str,
        tenant: &str,
    ) -> Result<PolicyVersionRow, LifecycleError> {
        let row = self.get(scope, id).await?;
        let bundle = Bundle::from_layout(files_of(&row)?, Stage::Production);
        let compiled = CompiledPolicy::compile(&bundle, &self.options)
            .map_err(|error| LifecycleError::Refused(vec![error.to_string()]))?;
        if !self.store.activate_policy_version(scope, id).await? {
            return Err(LifecycleError::NotFound);
        }
        if scope != SYSTEM_TENANT || self.system_from_store {
            self.make_live(scope, id, Arc::new(compiled));
        }
        self.record("promoted", author, tenant, &row).await?;
        Ok(PolicyVersionRow { active: true, ..row })
    }

    /// Runs the tests of `files` (a bundle in the guide's layout) with this node's builtins, with line coverage,
    /// without storing anything.
    pub fn test(&self, files: Vec<(String, String)>) -> policy::TestReport {
        let bundle = Bundle::from_layout(files, Stage::Production);
        policy::run_tests(&bundle, &self.options, &policy::TestOptions { coverage: true, fail_under: None })
    }

    /// The tenant's static policies, from its active bundle version.
    pub async fn static_policies(&self, tenant: &str) -> Result<Vec<StaticPolicy>, LifecycleError> {
        let Some(active) = self.active(tenant).await? else { return Ok(Vec::new()) };
        static_policies::read(&files_of(&active)?).map_err(|message| {
            tracing::error!(tenant, version = %active.id, message, "unreadable static policies");
            LifecycleError::Corrupt
        })
    }

    /// Changes the tenant's static policies with `change` and makes the result live: a new version of the
    /// tenant's bundle, validated (its tests run) and promoted, both audited. Changes on this node are made one
    /// at a time. When `change` refuses (the inner `Err`), nothing is stored.
    pub async fn change_static_policies<T, E>(
        &self,
        tenant: &str,
        author: &str,
        change: impl FnOnce(&mut Vec<StaticPolicy>) -> Result<T, E>,
    ) -> Result<Result<T, E>, LifecycleError> {
        let _one_at_a_time = self.static_changes.lock().await;
        let files = match self.active(tenant).await? {
            Some(active) => files_of(&active)?,
            None => Vec::new(),
        };
        let mut policies = static_policies::read(&files).map_err(|_| LifecycleError::Corrupt)?;
        let outcome = match change(&mut policies) {
            Ok(outcome) => outcome,
            Err(refused) => return Ok(Err(refused)),
        };
        let files = static_policies::write(files, &policies);
        let row = self.upload(tenant, files, author, tenant).await?;
        self.promote(tenant, &row.id, author, tenant).await?;
        Ok(Ok(outcome))
    }

    /// `scope`'s versions, newest first.
    pub async fn list(&self, scope: &str) -> Result<Vec<PolicyVersionRow>, LifecycleError> {
        Ok(self.store.list_policy_versions(scope).await?)
    }

    pub async fn get(&self, scope: &str, id: &str) -> Result<PolicyVersionRow, LifecycleError> {
        self.store.policy_version(id).await?.filter(|r| r.tenant_id == scope).ok_or(LifecycleError::NotFound)
    }

    async fn active(&self, scope: &str) -> Result<Option<PolicyVersionRow>, LifecycleError> {
        Ok(self.list(scope).await?.into_iter().find(|v| v.active))
    }

    async fn record(
        &self,
        verdict: &str,
        author: &str,
        tenant: &str,
        row: &PolicyVersionRow,
    ) -> Result<(), LifecycleError> {
        let entry = AuditEntry {
            kind: "policy_admin",
            tenant: tenant.to_owned(),
            actor: author.to_owned(),
            verdict: verdict.to_owned(),
            details: serde_json::json!({
                "version": row.id,
                "content_hash": row.content_hash,
                "summary": row.summary,
            })
            .into(),
        };
        self.audit.record(entry).await?;
        Ok(())
    }
}

fn version_row(
    scope: &str,
    files: &[(String, String)],
    author: &str,
    summary: String,
    now: types::UnixMillis,
) -> Result<PolicyVersionRow, LifecycleError> {
    let sorted: BTreeMap<&str, &str> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let mut hasher = Sha256::new();
    for (path, text) in &sorted {
        hasher.update((path.len() as u64).to_be_bytes());
        hasher.update(path.as_bytes());
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    let hash: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(PolicyVersionRow {
        id: format!("pv_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: scope.to_owned(),
        author: author.to_owned(),
        created_at: now,
        content_hash: hash,
        files: serde_json::to_string(&sorted).map_err(|_| LifecycleError::Corrupt)?,
        summary,
        active: false,
    })
}

fn files_of(row: &PolicyVersionRow) -> Result<Vec<(String, String)>, LifecycleError> {
    let map: BTreeMap<String, String> =
        serde_json::from_str(&row.files).map_err(|_| LifecycleError::Corrupt)?;
    Ok(map.into_iter().collect())
}

/// "N added, N changed, N removed" between two versions' files.
fn diff_summary(old: &[(String, String)], new: &[(String, String)]) -> String {
    let old: BTreeMap<&str, &str> = old.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let new: BTreeMap<&str, &str> = new.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let added = new.keys().filter(|p| !old.contains_key(*p)).count();
    let removed = old.keys().filter(|p| !new.contains_key(*p)).count();
    let changed = new.iter().filter(|(p, t)| old.get(*p).is_some_and(|o| o != *t)).count();
    format!("{added} added, {changed} changed, {removed} removed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_added_changed_and_removed_files() {
        let v = |files: &[(&str, &str)]| {
            files.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect::<Vec<_>>()
        };
        assert_eq!(
            diff_summary(&v(&[("a", "1"), ("b", "2")]), &v(&[("a", "1"), ("b", "3"), ("c", "4")])),
            "1 added, 1 changed, 0 removed"
        );
        assert_eq!(diff_summary(&v(&[("a", "1")]), &v(&[])), "0 added, 0 changed, 1 removed");
    }
}
