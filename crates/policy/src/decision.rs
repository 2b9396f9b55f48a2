//! Evaluating a compiled policy: the decision contract, read from the entry package, failing closed.

use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;

use crate::compile::{CompiledPolicy, tidy, to_json};
use crate::input::Input;

/// What happens to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `allow` is true, nothing is denied, redacted or held.
    Allow,
    /// Allowed with the query replaced by the policy's `redacted_query`.
    Redact { text: String },
    /// Held for a human: `require_approval` fired. `redacted` is the text to approve when it was also redacted.
    RequireApproval { reasons: Vec<String>, redacted: Option<String> },
    /// Refused: `deny` reasons, or `allow` not true, or the evaluation failed (fail closed).
    Deny { reasons: Vec<String> },
}

/// A package that contributed to the decision and the rules of it that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// e.g. `axonflow.policy.pii`.
    pub package: String,
    /// e.g. `["deny", "log_pii_detection"]`.
    pub rules: Vec<String>,
}

/// A `log_*` rule of the entry package that is defined and not false, with its value (for the audit record).
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// The rule name, e.g. `log_pii_detection`.
    pub name: String,
    pub value: serde_json::Value,
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Building the input document.
    pub input: Duration,
    /// Running the policy.
    pub evaluation: Duration,
    /// Everything, including reading the results.
    pub total: Duration,
}

/// The result of evaluating a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    /// `warn` reasons; they never change the outcome.
    pub warnings: Vec<String>,
    pub matched: Vec<Match>,
    pub logs: Vec<LogEvent>,
    pub timings: Timings,
}

impl Decision {
    /// True for `Allow` and `Redact`: the request may proceed now.
    pub fn proceeds(&self) -> bool {
        matches!(self.outcome, Outcome::Allow | Outcome::Redact { .. })
    }

    /// The deny reasons, empty unless the outcome is `Deny`.
    pub fn deny_reasons(&self) -> &[String] {
        match &self.outcome {
            Outcome::Deny { reasons } => reasons,
            _ => &[],
        }
    }

    fn fail_closed(reason: String, timings: Timings) -> Decision {
        Decision {
            outcome: Outcome::Deny { reasons: vec![reason] },
            warnings: Vec::new(),
            matched: Vec::new(),
            logs: Vec::new(),
            timings,
        }
    }
}

/// The fixed reason when `allow` is not true and no `deny` rule gave one.
pub const NOT_ALLOWED: &str = "not allowed by policy";

impl CompiledPolicy {
    /// Evaluate one request. Never panics; any failure, and any evaluation longer than `budget`, is a `Deny`.
    pub fn evaluate(&self, input: &Input, budget: Duration) -> Decision {
        let started = Instant::now();
        let value = input.to_value();
        self.evaluate_value(value, &input.query, budget, started)
    }

    /// Evaluate a raw JSON input document (for `axonflow policy eval --input FILE`). Detection offsets in it are
    /// taken as character offsets.
    pub fn evaluate_json(&self, input: &serde_json::Value, budget: Duration) -> Decision {
        let started = Instant::now();
        let query = input.get("query").and_then(|q| q.as_str()).unwrap_or_default().to_owned();
        self.evaluate_value(Value::from(input.clone()), &query, budget, started)
    }

    fn evaluate_value(&self, input: Value, query: &str, budget: Duration, started: Instant) -> Decision {
        let mut timings = Timings { input: started.elapsed(), ..Timings::default() };
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: budget,
            check_interval: NonZeroU32::MIN.saturating_add(31),
        });
        engine.set_input(input);
        let evaluating = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| engine.eval_query(self.entry_query.clone(), false)));
        timings.evaluation = evaluating.elapsed();
        let finish = |mut decision: Decision| {
            decision.timings.total = started.elapsed();
            decision
        };
        if timings.evaluation > budget {
            return finish(Decision::fail_closed(
                format!("policy evaluation exceeded its time budget of {budget:?}"),
                timings,
            ));
        }
        let results = match result {
            Ok(Ok(results)) => results,
            Ok(Err(error)) => {
                return finish(Decision::fail_closed(
                    format!("policy evaluation failed: {}", tidy(&error.to_string())),
                    timings,
                ));
            }
            Err(_) => return finish(Decision::fail_closed("policy evaluation panicked".to_owned(), timings)),
        };
        let package = match results.result.first().and_then(|r| r.expressions.first()) {
            Some(expression) if matches!(expression.value, Value::Object(_)) => &expression.value,
            _ => {
                return finish(Decision::fail_closed(
                    format!("policy package {} is not defined", self.entry_package),
                    timings,
                ));
            }
        };
        finish(self.read_decision(package, query, timings))
    }

    fn read_decision(&self, package: &Value, query: &str, timings: Timings) -> Decision {
        let deny = reasons(&package["deny"], "denied by policy");
        let approval = reasons(&package["require_approval"], "approval required by policy");
        let redacted = match &package["redacted_query"] {
            Value::String(text) if text.as_ref() != query => Some(text.to_string()),
            _ => None,
        };
        let allowed = package["allow"] == Value::Bool(true);
        let outcome = if !deny.is_empty() {
            Outcome::Deny { reasons: deny }
        } else if !allowed {
            Outcome::Deny { reasons: vec![NOT_ALLOWED.to_owned()] }
        } else if !approval.is_empty() {
            Outcome::RequireApproval { reasons: approval, redacted }
        } else if let Some(text) = redacted {
            Outcome::Redact { text }
        } else {
            Outcome::Allow
        };
        let logs = fired(package)
            .filter(|(name, _)| name.starts_with("log_"))
            .map(|(name, value)| LogEvent {
                name: name.to_owned(),
                value: to_json(value).unwrap_or_default(),
            })
            .collect();
        Decision {
            outcome,
            warnings: reasons(&package["warn"], "warned by policy"),
            matched: self.matches(package, query),
            logs,
            timings,
        }
    }

    /// Every package under the entry package (and the entry package itself) with a decision rule that fired.
    fn matches(&self, root: &Value, query: &str) -> Vec<Match> {
        let prefix = format!("{}.", self.entry_package);
        let mut matched = Vec::new();
        for package in &self.packages {
            let value = if *package == self.entry_package {
                root
            } else if let Some(rest) = package.strip_prefix(&prefix) {
                rest.split('.').fold(root, |value, part| &value[part])
            } else {
                continue;
            };
            let mut rules: Vec<String> = fired(value)
                .filter(|(name, value)| match *name {
                    "deny" | "warn" | "require_approval" => !reasons(value, "").is_empty(),
                    "redacted_query" => value.as_string().is_ok_and(|text| text.as_ref() != query),
                    name => name.starts_with("log_"),
                })
                .map(|(name, _)| name.to_owned())
                .collect();
            if !rules.is_empty() {
                rules.sort();
                matched.push(Match { package: package.clone(), rules });
            }
        }
        matched
    }
}

/// The rules of a package value that are defined and not `false`.
fn fired(package: &Value) -> impl Iterator<Item = (&str, &Value)> {
    let entries = match package {
        Value::Object(map) => Some(map.iter()),
        _ => None,
    };
    entries.into_iter().flatten().filter_map(|(key, value)| {
        let name = key.as_string().ok()?;
        (!matches!(value, Value::Bool(false) | Value::Undefined | Value::Null))
            .then_some((name.as_ref(), value))
    })
}

/// Reasons from a decision rule: a set or array of messages, or `true` (the fallback message).
fn reasons(value: &Value, fallback: &str) -> Vec<String> {
    let message = |v: &Value| match v {
        Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_default(),
    };
    let mut out: Vec<String> = match value {
        Value::Bool(true) => vec![fallback.to_owned()],
        Value::String(s) => vec![s.to_string()],
        Value::Set(set) => set.iter().map(message).collect(),
        Value::Array(array) => array.iter().map(message).collect(),
        Value::Object(map) if !map.is_empty() => map.keys().map(message).collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}
