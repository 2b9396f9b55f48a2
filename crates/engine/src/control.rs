//! The governed request paths, free of HTTP: every check goes authorize → detect → evaluate → act → audit, and
//! every decision is audited (durably) before its result is returned.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use detect::{Category, DetectorSet, Finding};
use license::{McpOperation, Permission};
use policy::{CompiledPolicy, Decision, Input, Outcome};
use types::{Clock, UnixMillis};

use crate::audit::{AuditEntry, AuditError, AuditLog, AuditReceipt, Details};
use crate::auth::Principal;
pub use crate::contexts::CONTEXT_TTL;
use crate::contexts::{ApprovalStats, Contexts, NewApproval};
use crate::subjects::{RESTRICTED_REASON, Subject, SubjectError, Subjects};

/// Why a check could not be made. Each maps to one HTTP status in the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("this credential does not grant `{0}`")]
    Forbidden(String),
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("the audit trail cannot record this decision")]
    Audit(#[from] AuditError),
    /// A dependency (the data subject store) cannot answer: the request fails closed.
    #[error("{0}")]
    Unavailable(&'static str),
}

impl From<SubjectError> for EngineError {
    fn from(error: SubjectError) -> Self {
        match error {
            SubjectError::Audit(e) => EngineError::Audit(e),
            _ => EngineError::Unavailable("the data subject store is unavailable"),
        }
    }
}

/// A request to check, as the engine needs it.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    pub principal: &'a Principal,
    /// What is being checked: `pre_check`, `decide`, `llm_chat`, `mcp_input`, …
    pub request_type: &'a str,
    pub query: &'a str,
    /// The end user, as asserted by the calling service or its verified user token. Recorded only sealed with
    /// the user's own key (see [`crate::subjects`]).
    pub user: Option<&'a str>,
    /// Caller context passed to policies (`user_role`, `connector`, …).
    pub context: serde_json::Map<String, serde_json::Value>,
    pub request_id: &'a str,
}

/// Time spent per stage, for metrics and the benchmark breakdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimings {
    pub detection: Duration,
    pub policy: Duration,
    pub audit: Duration,
}

/// The result of a check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub decision: Decision,
    pub findings: Vec<Finding>,
    /// The query with every finding redacted (the form the audit record keeps).
    pub redacted_query: String,
    pub receipt: AuditReceipt,
    pub timings: StageTimings,
}

impl Checked {
    /// The decision id clients see: the audit record's id.
    pub fn decision_id(&self) -> &str {
        &self.receipt.id
    }

    pub fn verdict(&self) -> &'static str {
        verdict_of(&self.decision.outcome)
    }

    /// Why the request may not proceed: deny reasons, or the approval reasons.
    pub fn block_reasons(&self) -> Vec<String> {
        match &self.decision.outcome {
            Outcome::Deny { reasons } | Outcome::RequireApproval { reasons, .. } => reasons.clone(),
            Outcome::Allow | Outcome::Redact { .. } => Vec::new(),
        }
    }

    /// The packages that contributed, e.g. `axonflow.policy.pii`.
    pub fn policies(&self) -> Vec<String> {
        self.decision.matched.iter().map(|m| m.package.clone()).collect()
    }

    /// The policy's replacement text, when it redacted.
    pub fn policy_redaction(&self) -> Option<&str> {
        match &self.decision.outcome {
            Outcome::Redact { text } => Some(text),
            Outcome::RequireApproval { redacted, .. } => redacted.as_deref(),
            _ => None,
        }
    }
}

fn verdict_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Allow => "allow",
        Outcome::Redact { .. } => "redact",
        Outcome::RequireApproval { .. } => "require_approval",
        Outcome::Deny { .. } => "deny",
    }
}

/// An approval from a pre-check, to be matched by the audit of the LLM call it allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedContext {
    pub context_id: String,
    pub expires_at: UnixMillis,
}

/// What an LLM call used: who served it, how many tokens, how long it took.
#[derive(Debug, Clone, Copy)]
pub struct LlmUsage<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: u64,
}

/// An LLM call made after a pre-check (gateway mode), to be audited.
#[derive(Debug, Clone)]
pub struct LlmCall<'a> {
    pub principal: &'a Principal,
    pub context_id: &'a str,
    pub usage: LlmUsage<'a>,
    /// Scanned, and recorded only redacted.
    pub response_summary: &'a str,
    pub request_id: &'a str,
}

/// The settings of a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// The longest a policy evaluation may take before it is denied.
    pub policy_budget: Duration,
    /// Largest number of rows an MCP result may carry before it is treated as exfiltration.
    pub mcp_max_rows: u64,
    /// Largest MCP result (JSON bytes).
    pub mcp_max_bytes: usize,
    /// USD per 1,000 prompt and completion tokens, by model, for the cost of audited LLM calls.
    pub pricing: HashMap<String, (f64, f64)>,
    /// Most pre-check approvals held for their LLM call's audit; past it the oldest is dropped (its audit is
    /// then refused as an unknown context). Bounds the memory a sustained load of pre-checks takes.
    pub max_approvals: usize,
}

/// The engine every governed request goes through. Built once by the binary; shared by all requests.
#[derive(Debug)]
pub struct ControlPlane {
    detectors: Arc<DetectorSet>,
    policy: ArcSwap<CompiledPolicy>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    contexts: Contexts,
    /// Tenants' own bundles, evaluated on top of the system bundle (see [`ControlPlane::evaluate`]).
    tenant_policies: ArcSwap<HashMap<String, Arc<CompiledPolicy>>>,
    subjects: Arc<Subjects>,
    options: ControlOptions,
}

impl ControlPlane {
    pub fn new(
        detectors: Arc<DetectorSet>,
        policy: Arc<CompiledPolicy>,
        audit: AuditLog,
        subjects: Arc<Subjects>,
        clock: Arc<dyn Clock>,
        options: ControlOptions,
    ) -> ControlPlane {
        ControlPlane {
            detectors,
            policy: ArcSwap::new(policy),
            audit,
            clock,
            contexts: Contexts::new(options.max_approvals),
            tenant_policies: ArcSwap::from_pointee(HashMap::new()),
            subjects,
            options,
        }
    }

    /// Replaces the policy for every request that starts from now on; requests in flight finish with the one
    /// they started with.
    pub fn replace_policy(&self, policy: Arc<CompiledPolicy>) {
        self.policy.store(policy);
    }

    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.policy.load_full()
    }

    /// Sets (or with `None` removes) a tenant's own bundle, atomically for requests that start from now on.
    pub fn replace_tenant_policy(&self, tenant: &str, policy: Option<Arc<CompiledPolicy>>) {
        self.tenant_policies.rcu(|current| {
            let mut next = HashMap::clone(current);
            match &policy {
                Some(policy) => next.insert(tenant.to_owned(), policy.clone()),
                None => next.remove(tenant),
            };
            next
        });
    }

    /// A tenant's own bundle, if it has one.
    pub fn tenant_policy(&self, tenant: &str) -> Option<Arc<CompiledPolicy>> {
        self.tenant_policies.load().get(tenant).cloned()
    }

    pub fn detectors(&self) -> &DetectorSet {
        &self.detectors
    }

    /// Decision mode (`/api/v1/decide`) and the common path of every check.
    pub async fn check(&self, check: &Check<'_>) -> Result<Checked, EngineError> {
        require(check.principal, &Permission::PolicyEvaluate)?;
        self.evaluate(check, "decide").await
    }

    /// Gateway mode: a check whose approval is remembered for the LLM call that follows.
    pub async fn pre_check(
        &self,
        check: &Check<'_>,
    ) -> Result<(Checked, Option<ApprovedContext>), EngineError> {
        require(check.principal, &Permission::PolicyEvaluate)?;
        let checked = self.evaluate(check, "pre_check").await?;
        if !checked.decision.proceeds() {
            return Ok((checked, None));
        }
        let now = self.clock.now();
        let expires_at = now.plus_millis(CONTEXT_TTL.as_millis() as i64);
        let approval = NewApproval {
            tenant: check.principal.tenant.as_str(),
            key_id: &check.principal.key_id,
            query: check.query,
            decision_id: &checked.receipt.id,
            expires_at,
        };
        let context = ApprovedContext { context_id: self.contexts.approve(approval, now), expires_at };
        Ok((checked, Some(context)))
    }

    /// The pre-check approvals held and dropped early, for the metrics.
    pub fn approval_stats(&self) -> ApprovalStats {
        self.contexts.stats()
    }

    /// Gateway mode: audits the LLM call a pre-check approved. The context must exist, be unexpired, belong to
    /// the same client, and is used once.
    pub async fn audit_llm_call(&self, call: &LlmCall<'_>) -> Result<AuditReceipt, EngineError> {
        let now = self.clock.now();
        let record = self
            .contexts
            .take(call.context_id, call.principal.tenant.as_str(), &call.principal.key_id, now)
            .map_err(|e| EngineError::Invalid { field: "context_id", message: e.message().to_owned() })?;
        let findings = self.detectors.scan(call.response_summary);
        let summary = self.detectors.redact(call.response_summary, &findings).into_owned();
        let mut details = self.usage_details(&call.usage);
        details["request_id"] = call.request_id.into();
        details["decision_id"] = record.decision_id.as_ref().into();
        details["response_summary"] = summary.into();
        details["detections"] = serde_json::json!(counts(&findings));
        details["query_sha256"] = hex::encode(record.query_hash).into();
        let entry = AuditEntry {
            kind: "llm_call",
            tenant: call.principal.tenant.as_str().to_owned(),
            actor: call.principal.display_name().to_owned(),
            verdict: "recorded".to_owned(),
            details: details.into(),
        };
        Ok(self.audit.record(entry).await?)
    }

    /// Proxy mode: after an allowed check, the provider's answer is scanned, redacted and audited (one record
    /// for the response, linked to the decision). Returns the text the caller may see.
    pub async fn record_proxy_response(
        &self,
        response: &ProxyResponse<'_>,
    ) -> Result<(String, AuditReceipt), EngineError> {
        let findings = self.detectors.scan(response.text);
        let redacted = self.detectors.redact(response.text, &findings).into_owned();
        let mut details = self.usage_details(&response.usage);
        details["request_id"] = response.request_id.into();
        details["decision_id"] = response.decision_id.into();
        details["response_redacted"] = redacted.clone().into();
        details["detections"] = serde_json::json!(counts(&findings));
        let entry = AuditEntry {
            kind: "llm_response",
            tenant: response.principal.tenant.as_str().to_owned(),
            actor: response.principal.display_name().to_owned(),
            verdict: if findings.is_empty() { "allow" } else { "redact" }.to_owned(),
            details: details.into(),
        };
        let receipt = self.audit.record(entry).await?;
        Ok((redacted, receipt))
    }

    /// The audit details of an LLM call's usage, with its cost when the model is priced.
    fn usage_details(&self, usage: &LlmUsage<'_>) -> serde_json::Value {
        let cost = self.options.pricing.get(usage.model).map(|(prompt, completion)| {
            (usage.prompt_tokens as f64 * prompt + usage.completion_tokens as f64 * completion) / 1000.0
        });
        serde_json::json!({
            "provider": usage.provider,
            "model": usage.model,
            "token_usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
            "latency_ms": usage.latency_ms,
            "cost_usd": cost,
        })
    }

    /// Proxy mode's check: `query` permission, then the common pipeline.
    pub async fn check_query(&self, check: &Check<'_>) -> Result<Checked, EngineError> {
        require(check.principal, &Permission::Query)?;
        self.evaluate(check, "request").await
    }

    /// MCP: a statement (and its parameters) about to reach a connector. Needs `mcp:<connector>:<operation>`.
    pub async fn mcp_check_input(
        &self,
        check: &Check<'_>,
        connector: &str,
        operation: &str,
    ) -> Result<Checked, EngineError> {
        let operation = McpOperation::new(connector, operation).map_err(|_| EngineError::Invalid {
            field: "connector_type",
            message: "connector and operation must be 1-64 of A-Z a-z 0-9 . _ -".to_owned(),
        })?;
        require(check.principal, &Permission::Mcp(operation))?;
        self.evaluate(check, "mcp_input").await
    }

    /// MCP: a connector's result about to reach an agent. Every string in the rows is scanned and redacted; a
    /// result over the row or size limit is refused as possible exfiltration.
    pub async fn mcp_check_output(
        &self,
        principal: &Principal,
        connector: &str,
        rows: &[serde_json::Value],
        message: Option<&str>,
        request_id: &str,
    ) -> Result<McpOutput, EngineError> {
        require(principal, &Permission::PolicyEvaluate)?;
        let started = Instant::now();
        let mut findings = Vec::new();
        let redacted_rows: Vec<serde_json::Value> =
            rows.iter().map(|row| self.redact_value(row, &mut findings)).collect();
        let redacted_message = message.map(|m| {
            let found = self.detectors.scan(m);
            let redacted = self.detectors.redact(m, &found).into_owned();
            findings.extend(found);
            redacted
        });
        let bytes = serde_json::to_vec(rows).map_or(0, |v| v.len());
        let row_count = rows.len() as u64;
        let exfiltration = row_count > self.options.mcp_max_rows || bytes > self.options.mcp_max_bytes;
        let reason = exfiltration.then(|| {
            format!(
                "result too large for one response ({row_count} rows, {bytes} bytes; limits {} rows, {} bytes): \
                 possible data exfiltration",
                self.options.mcp_max_rows, self.options.mcp_max_bytes
            )
        });
        let redactions = findings.len();
        let details = serde_json::json!({
            "request_id": request_id,
            "connector": connector,
            "rows": row_count,
            "bytes": bytes,
            "detections": counts(&findings),
            "redactions": redactions,
            "reason": reason,
            "latency_us": started.elapsed().as_micros() as u64,
        });
        let entry = AuditEntry {
            kind: "mcp_output",
            tenant: principal.tenant.as_str().to_owned(),
            actor: principal.display_name().to_owned(),
            verdict: if exfiltration {
                "deny"
            } else if redactions > 0 {
                "redact"
            } else {
                "allow"
            }
            .to_owned(),
            details: details.into(),
        };
        let receipt = self.audit.record(entry).await?;
        Ok(McpOutput {
            allowed: !exfiltration,
            block_reason: reason,
            redacted_rows,
            redacted_message,
            redactions,
            row_count,
            bytes,
            receipt,
        })
    }

    /// Audits a tool call an agent made (`/api/v1/audit/tool-call`). Inputs and outputs are stored redacted.
    pub async fn audit_tool_call(&self, call: &ToolCall<'_>) -> Result<AuditReceipt, EngineError> {
        require(call.principal, &Permission::PolicyEvaluate)?;
        let mut findings = Vec::new();
        let input = call.input.map(|v| self.redact_value(v, &mut findings));
        let output = call.output.map(|v| self.redact_value(v, &mut findings));
        let error = call.error_message.map(|m| {
            let found = self.detectors.scan(m);
            let redacted = self.detectors.redact(m, &found).into_owned();
            findings.extend(found);
            redacted
        });
        let subject = self.subject_field(call.principal, call.user).await?.map(|(_, field)| field);
        let details = serde_json::json!({
            "request_id": call.request_id,
            "tool_name": call.tool_name,
            "tool_type": call.tool_type,
            "caller_name": call.caller_name,
            "workflow_id": call.workflow_id,
            "step_id": call.step_id,
            "subject": subject,
            "duration_ms": call.duration_ms,
            "policies_applied": call.policies_applied,
            "success": call.success,
            "error_message": error,
            "input": input,
            "output": output,
            "detections": counts(&findings),
        });
        let entry = AuditEntry {
            kind: "tool_call",
            tenant: call.principal.tenant.as_str().to_owned(),
            actor: call.principal.display_name().to_owned(),
            verdict: if call.success.unwrap_or(true) { "success" } else { "failure" }.to_owned(),
            details: details.into(),
        };
        Ok(self.audit.record(entry).await?)
    }

    fn redact_value(&self, value: &serde_json::Value, findings: &mut Vec<Finding>) -> serde_json::Value {
        match value {
            serde_json::Value::String(text) => {
                let found = self.detectors.scan(text);
                let redacted = self.detectors.redact(text, &found).into_owned();
                findings.extend(found);
                serde_json::Value::String(redacted)
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(|v| self.redact_value(v, findings)).collect())
            }
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), self.redact_value(v, findings))).collect(),
            ),
            other => other.clone(),
        }
    }

    async fn evaluate(&self, check: &Check<'_>, kind: &'static str) -> Result<Checked, EngineError> {
        let subject = self.subject_field(check.principal, check.user).await?;
        let restricted = subject.as_ref().is_some_and(|(s, _)| s.restricted);
        let subject = subject.map(|(_, field)| field);
        let started = Instant::now();
        let findings = self.detectors.scan(check.query);
        let redacted_query = self.detectors.redact(check.query, &findings).into_owned();
        let detection = started.elapsed();

        let policy_started = Instant::now();
        let input = Input {
            query: check.query.to_owned(),
            request_type: check.request_type.to_owned(),
            context: check.context.clone(),
            principal: Some(policy_principal(check.principal)),
            detections: findings.iter().map(policy_detection).collect(),
        };
        let mut decision = self.policy.load().decide(&input, self.options.policy_budget);
        if let Some(tenant_policy) = self.tenant_policy(check.principal.tenant.as_str()) {
            decision = self.layer(decision, &tenant_policy, input);
        }
        if restricted {
            decision.outcome = Outcome::Deny { reasons: vec![RESTRICTED_REASON.to_owned()] };
        }
        let policy_time = policy_started.elapsed();

        let audit_started = Instant::now();
        let verdict = verdict_of(&decision.outcome);
        let reasons: Vec<&String> = match &decision.outcome {
            Outcome::Deny { reasons } | Outcome::RequireApproval { reasons, .. } => reasons.iter().collect(),
            _ => Vec::new(),
        };
        let details = Details::of(&DecisionDetails {
            detections: counts(&findings),
            latency_us: StageMicros {
                detection: detection.as_micros() as u64,
                policy: policy_time.as_micros() as u64,
            },
            logs: decision.logs.iter().map(|l| l.name.as_str()).collect(),
            policies: decision.matched.iter().map(|m| m.package.as_str()).collect(),
            query_redacted: &redacted_query,
            reasons,
            request_id: check.request_id,
            request_type: check.request_type,
            subject: subject.as_ref(),
            warnings: &decision.warnings,
        });
        let entry = AuditEntry {
            kind,
            tenant: check.principal.tenant.as_str().to_owned(),
            actor: check.principal.display_name().to_owned(),
            verdict: verdict.to_owned(),
            details,
        };
        let receipt = self.audit.record(entry).await?;
        Ok(Checked {
            decision,
            findings,
            redacted_query,
            receipt,
            timings: StageTimings { detection, policy: policy_time, audit: audit_started.elapsed() },
        })
    }

    /// Evaluates a tenant's bundle on top of the system decision. The tenant sees the system's redaction (the
    /// query as it would go out, scanned again) and can only make the outcome stricter: deny beats approval
    /// beats redaction beats allow, and reasons, warnings, matches and log events add up.
    fn layer(&self, system: Decision, tenant_policy: &CompiledPolicy, mut input: Input) -> Decision {
        if let Outcome::Redact { text } = &system.outcome {
            input.detections = self.detectors.scan(text).iter().map(policy_detection).collect();
            input.query.clone_from(text);
        }
        let tenant = tenant_policy.decide(&input, self.options.policy_budget);
        let outcome = stricter(system.outcome, tenant.outcome);
        Decision {
            outcome,
            warnings: system.warnings.into_iter().chain(tenant.warnings).collect(),
            matched: system.matched.into_iter().chain(tenant.matched).collect(),
            logs: system.logs.into_iter().chain(tenant.logs).collect(),
            timings: policy::Timings {
                input: system.timings.input + tenant.timings.input,
                evaluation: system.timings.evaluation + tenant.timings.evaluation,
                total: system.timings.total + tenant.timings.total,
                compiled: system.timings.compiled && tenant.timings.compiled,
            },
        }
    }

    /// The end user's subject and the audit field naming them (sealed), when a user was given.
    async fn subject_field(
        &self,
        principal: &Principal,
        user: Option<&str>,
    ) -> Result<Option<(Arc<Subject>, serde_json::Value)>, EngineError> {
        let Some(user) = user else { return Ok(None) };
        let subject = self.subjects.resolve(principal.tenant.as_str(), user).await?;
        let field = self.subjects.record_field(&subject, user)?;
        Ok(Some((subject, field)))
    }
}

/// A provider's answer in proxy mode.
#[derive(Debug, Clone)]
pub struct ProxyResponse<'a> {
    pub principal: &'a Principal,
    pub decision_id: &'a str,
    pub usage: LlmUsage<'a>,
    pub text: &'a str,
    pub request_id: &'a str,
}

/// A tool call an agent reports for the audit trail.
#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub principal: &'a Principal,
    pub tool_name: &'a str,
    pub tool_type: Option<&'a str>,
    pub caller_name: Option<&'a str>,
    pub workflow_id: Option<&'a str>,
    pub step_id: Option<&'a str>,
    pub user: Option<&'a str>,
    pub duration_ms: Option<u64>,
    pub policies_applied: &'a [String],
    pub success: Option<bool>,
    pub error_message: Option<&'a str>,
    pub input: Option<&'a serde_json::Value>,
    pub output: Option<&'a serde_json::Value>,
    pub request_id: &'a str,
}

/// What an MCP result check found and decided.
#[derive(Debug, Clone)]
pub struct McpOutput {
    pub allowed: bool,
    pub block_reason: Option<String>,
    pub redacted_rows: Vec<serde_json::Value>,
    pub redacted_message: Option<String>,
    pub redactions: usize,
    pub row_count: u64,
    pub bytes: usize,
    pub receipt: AuditReceipt,
}

fn require(principal: &Principal, permission: &Permission) -> Result<(), EngineError> {
    if principal.allows(permission) { Ok(()) } else { Err(EngineError::Forbidden(permission.to_string())) }
}

fn policy_principal(principal: &Principal) -> policy::Principal {
    policy::Principal {
        key_id: principal.key_id.clone(),
        kind: principal.kind.as_str().to_owned(),
        tenant: principal.tenant.as_str().to_owned(),
        service: principal.service.as_ref().map(|s| s.name.as_str().to_owned()),
        permissions: principal.permissions.iter().map(ToString::to_string).collect(),
    }
}

/// The outcome of a tenant's bundle layered on the system's: the stricter one (deny, then approval, then
/// redaction, then allow), with the reasons of both when both deny or both hold for approval. A tenant's
/// redaction was made on the system's redacted text, so it replaces it.
fn stricter(system: Outcome, tenant: Outcome) -> Outcome {
    let rank = |outcome: &Outcome| match outcome {
        Outcome::Allow => 0,
        Outcome::Redact { .. } => 1,
        Outcome::RequireApproval { .. } => 2,
        Outcome::Deny { .. } => 3,
    };
    match (system, tenant) {
        (Outcome::Deny { mut reasons }, Outcome::Deny { reasons: more }) => {
            reasons.extend(more);
            Outcome::Deny { reasons }
        }
        (
            Outcome::RequireApproval { mut reasons, redacted },
            Outcome::RequireApproval { reasons: more, redacted: further },
        ) => {
            reasons.extend(more);
            Outcome::RequireApproval { reasons, redacted: further.or(redacted) }
        }
        // The tenant holds for approval what the system redacted: the redaction stays with it.
        (Outcome::Redact { text }, Outcome::RequireApproval { reasons, redacted: None }) => {
            Outcome::RequireApproval { reasons, redacted: Some(text) }
        }
        (system, tenant) => {
            if rank(&tenant) >= rank(&system) && rank(&tenant) > 0 {
                tenant
            } else {
                system
            }
        }
    }
}

fn policy_detection(finding: &Finding) -> policy::Detection {
    policy::Detection {
        kind: finding.kind.as_str().to_owned(),
        category: finding.category().as_str().to_owned(),
        start: finding.start,
        end: finding.end,
        confidence: finding.confidence,
    }
}

/// The details of a decision's audit record. Fields in alphabetical order: the record's text is what the
/// `json!` object this replaced produced (serde_json's maps sort their keys), so records before and after
/// read alike.
#[derive(serde::Serialize)]
struct DecisionDetails<'a> {
    detections: BTreeMap<&'static str, usize>,
    latency_us: StageMicros,
    logs: Vec<&'a str>,
    policies: Vec<&'a str>,
    query_redacted: &'a str,
    reasons: Vec<&'a String>,
    request_id: &'a str,
    request_type: &'a str,
    subject: Option<&'a serde_json::Value>,
    warnings: &'a [String],
}

#[derive(serde::Serialize)]
struct StageMicros {
    detection: u64,
    policy: u64,
}

/// Detection counts by kind, for audit records (never the matched text).
pub fn counts(findings: &[Finding]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.kind.as_str()).or_insert(0) += 1;
    }
    counts
}

/// The highest-risk category present, as the SDKs' `risk_level`.
pub fn risk_level(findings: &[Finding]) -> &'static str {
    let has = |category: Category| findings.iter().any(|f| f.category() == category);
    if has(Category::Sqli) || has(Category::Secret) {
        "critical"
    } else if has(Category::PromptInjection) {
        "high"
    } else if has(Category::Pii) {
        "medium"
    } else {
        "low"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(reason: &str) -> Outcome {
        Outcome::Deny { reasons: vec![reason.to_owned()] }
    }

    fn approval(reason: &str, redacted: Option<&str>) -> Outcome {
        Outcome::RequireApproval { reasons: vec![reason.to_owned()], redacted: redacted.map(str::to_owned) }
    }

    fn redact(text: &str) -> Outcome {
        Outcome::Redact { text: text.to_owned() }
    }

    #[test]
    fn a_tenant_layer_only_makes_outcomes_stricter() {
        assert_eq!(stricter(Outcome::Allow, Outcome::Allow), Outcome::Allow);
        assert_eq!(stricter(deny("system"), Outcome::Allow), deny("system"), "a tenant cannot loosen");
        assert_eq!(stricter(redact("a ***"), Outcome::Allow), redact("a ***"));
        assert_eq!(stricter(Outcome::Allow, deny("tenant")), deny("tenant"));
        assert_eq!(stricter(redact("a ***"), redact("a *** ###")), redact("a *** ###"), "redactions compose");
        assert_eq!(
            stricter(deny("system"), deny("tenant")),
            Outcome::Deny { reasons: vec!["system".into(), "tenant".into()] }
        );
        assert_eq!(stricter(redact("a ***"), approval("review", None)), approval("review", Some("a ***")));
        assert_eq!(
            stricter(approval("s", Some("x")), approval("t", None)),
            Outcome::RequireApproval { reasons: vec!["s".into(), "t".into()], redacted: Some("x".into()) }
        );
        assert_eq!(stricter(approval("s", None), redact("b")), approval("s", None));
        assert_eq!(stricter(approval("s", None), deny("t")), deny("t"));
    }

    #[test]
    fn decision_details_read_as_the_json_object_they_replaced() {
        let reason = "rbac: not allowed".to_owned();
        let warnings = vec!["security: prompt injection suspected".to_owned()];
        let subject = serde_json::json!({"sealed": "v1.abc"});
        let mut detections = BTreeMap::new();
        detections.insert("email", 2);
        let typed = Details::of(&DecisionDetails {
            detections: detections.clone(),
            latency_us: StageMicros { detection: 3, policy: 17 },
            logs: vec!["log_pii_detection"],
            policies: vec!["axonflow.policy"],
            query_redacted: "mail \"[REDACTED:email]\"\n",
            reasons: vec![&reason],
            request_id: "req-1",
            request_type: "llm_chat",
            subject: Some(&subject),
            warnings: &warnings,
        });
        let value: Details = serde_json::json!({
            "request_id": "req-1",
            "request_type": "llm_chat",
            "policies": ["axonflow.policy"],
            "reasons": [reason],
            "warnings": warnings,
            "detections": detections,
            "query_redacted": "mail \"[REDACTED:email]\"\n",
            "subject": subject,
            "logs": ["log_pii_detection"],
            "latency_us": {"detection": 3, "policy": 17},
        })
        .into();
        assert_eq!(typed, value, "byte for byte, so stored records read the same");
        let none = Details::of(&DecisionDetails {
            detections: BTreeMap::new(),
            latency_us: StageMicros { detection: 0, policy: 0 },
            logs: vec![],
            policies: vec![],
            query_redacted: "",
            reasons: vec![],
            request_id: "r",
            request_type: "t",
            subject: None,
            warnings: &[],
        });
        assert!(none.as_str().contains(r#""subject":null"#), "{}", none.as_str());
    }
}
