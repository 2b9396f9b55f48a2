//! Retention: records are kept as long as their category requires and then deleted, by a background job and by
//! `axonflow retention run`.
//!
//! Categories and their periods:
//! - `audit`: audit records, 365 days by default and never less than 90; the HIPAA profile keeps 6 years.
//!   Records leave each chain from its oldest end only, so what stays still verifies: the deletion moves the
//!   chain's signed *retention horizon* (the last deleted record's seq and hash) forward.
//! - `erased_subjects`: the tombstones of erased data subjects, deleted when their grace period (30 days by
//!   default) ends.
//!
//! Each deletion batch is itself audited (`retention.purge`), with its category, how many went and the cutoff;
//! audit deletions are recorded before they happen. Retention deletes only records whose chain is intact up to
//! them, so it never hides tampering behind a horizon.

use std::sync::Arc;
use std::time::Duration;

use license::SigningKey;
use store::Store;
use types::{Clock, UnixMillis};

use crate::audit::{AuditEntry, AuditError, AuditLog, record_hash, sign_horizon};
use crate::subjects::Subjects;

const DAY: Duration = Duration::from_secs(24 * 3600);
/// The least an operator may configure for audit records.
pub const MIN_AUDIT_DAYS: u32 = 90;
/// Records deleted per transaction (and per audited batch).
const BATCH: u32 = 5_000;

/// Retention profiles: the defaults and HIPAA's six years.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionProfile {
    Default,
    Hipaa,
}

impl RetentionProfile {
    pub fn audit_days(self) -> u32 {
        match self {
            RetentionProfile::Default => 365,
            RetentionProfile::Hipaa => 6 * 365 + 2,
        }
    }
}

/// How long each category is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub audit_days: u32,
}

impl RetentionPolicy {
    /// The profile's periods, with `audit_days` overriding its audit period. Less than [`MIN_AUDIT_DAYS`] is
    /// refused.
    pub fn new(profile: RetentionProfile, audit_days: Option<u32>) -> Result<RetentionPolicy, String> {
        let audit_days = audit_days.unwrap_or_else(|| profile.audit_days());
        if audit_days < MIN_AUDIT_DAYS {
            return Err(format!(
                "audit records are kept at least {MIN_AUDIT_DAYS} days (asked: {audit_days})"
            ));
        }
        if profile == RetentionProfile::Hipaa && audit_days < RetentionProfile::Hipaa.audit_days() {
            return Err(format!(
                "the HIPAA profile keeps audit records at least {} days (6 years)",
                RetentionProfile::Hipaa.audit_days()
            ));
        }
        Ok(RetentionPolicy { audit_days })
    }
}

/// What one retention run deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Records deleted older than this (RFC 3339).
    pub audit_cutoff: String,
    pub audit_records_deleted: u64,
    pub erased_subjects_purged: u64,
    /// Deletion batches, each audited.
    pub batches: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("the store is unavailable: {0}")]
    Store(#[from] store::StoreError),
    #[error("the audit trail cannot record the deletion: {0}")]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Subjects(#[from] crate::subjects::SubjectError),
    /// The chain does not verify where retention would delete: nothing is deleted until it is looked at.
    #[error(
        "audit chain {chain} is not intact at record {seq}: retention deletes nothing there; run `axonflow audit \
         verify`"
    )]
    Broken { chain: String, seq: i64 },
}

/// See the module documentation.
#[derive(Debug)]
pub struct Retention {
    store: Arc<dyn Store>,
    audit: AuditLog,
    signer: SigningKey,
    subjects: Arc<Subjects>,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
}

impl Retention {
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        signer: SigningKey,
        subjects: Arc<Subjects>,
        clock: Arc<dyn Clock>,
        policy: RetentionPolicy,
    ) -> Retention {
        Retention { store, audit, signer, subjects, clock, policy }
    }

    /// Deletes everything past its retention period.
    pub async fn run(&self) -> Result<RetentionReport, RetentionError> {
        let now = self.clock.now();
        let cutoff = UnixMillis(now.0 - (DAY.as_millis() as i64) * i64::from(self.policy.audit_days));
        let mut report = RetentionReport { audit_cutoff: cutoff.to_rfc3339(), ..RetentionReport::default() };
        for chain in self.store.audit_chains().await? {
            while let Some(point) = self.store.audit_prune_point(&chain, cutoff, BATCH).await? {
                let first = self.intact_through(&chain, point.seq).await?;
                let count = point.seq - first + 1;
                self.record(
                    "audit",
                    serde_json::json!({
                        "chain_id": chain,
                        "from_seq": first,
                        "through_seq": point.seq,
                        "records": count,
                        "cutoff": cutoff.to_rfc3339(),
                        "retention_days": self.policy.audit_days,
                    }),
                )
                .await?;
                let horizon = sign_horizon(&self.signer, &chain, point.seq, &point.hash, now);
                report.audit_records_deleted += self.store.prune_audit(&horizon).await?;
                report.batches += 1;
            }
        }
        report.erased_subjects_purged = self.subjects.purge(now).await?;
        if report.erased_subjects_purged > 0 {
            self.record("erased_subjects", serde_json::json!({ "subjects": report.erased_subjects_purged }))
                .await?;
            report.batches += 1;
        }
        Ok(report)
    }

    /// Checks that the records about to go (up to `through`) are an intact continuation of the chain's
    /// horizon, so retention never hides a tampered record behind a signed horizon. Returns the first seq.
    async fn intact_through(&self, chain: &str, through: i64) -> Result<i64, RetentionError> {
        let horizon = self.store.audit_horizon(chain).await?;
        let (mut expected, mut prev) =
            horizon.map_or((1, vec![0; 32]), |h| (h.through_seq + 1, h.through_hash));
        let first = expected;
        while expected <= through {
            let page = self.store.audit_chain_page(chain, expected - 1, 1000).await?;
            if page.is_empty() {
                return Err(RetentionError::Broken { chain: chain.to_owned(), seq: expected });
            }
            for row in page.into_iter().take_while(|r| r.seq <= through) {
                let intact = row.seq == expected
                    && row.prev_hash == prev
                    && record_hash(&row).as_slice() == row.hash.as_slice();
                if !intact {
                    return Err(RetentionError::Broken { chain: chain.to_owned(), seq: expected });
                }
                (expected, prev) = (row.seq + 1, row.hash);
            }
        }
        Ok(first)
    }

    async fn record(&self, category: &str, mut details: serde_json::Value) -> Result<(), RetentionError> {
        details["category"] = category.into();
        let entry = AuditEntry {
            kind: "retention.purge",
            tenant: crate::policies::SYSTEM_TENANT.to_owned(),
            actor: "retention".to_owned(),
            verdict: "recorded".to_owned(),
            details: details.into(),
        };
        self.audit.record(entry).await?;
        Ok(())
    }
}
