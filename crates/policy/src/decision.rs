//! Evaluating a compiled policy: the decision contract, read from the entry package, failing closed.

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use crate::compile::{CompiledPolicy, tidy, to_json};
use crate::input::Input;
use crate::plan::Plan;
use crate::program::Stop;

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

/// A `log_*` rule of the entry package that is defined and not false, with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// The rule name, e.g. `log_pii_detection`.
    pub name: String,
    pub value: LogValue,
}

/// A log rule's value, as JSON (sets become arrays, as regorus serializes them); null from
/// [`CompiledPolicy::decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogValue(serde_json::Value);

impl LogValue {
    pub fn json(&self) -> serde_json::Value {
        self.0.clone()
    }
}

impl std::fmt::Display for LogValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.json().fmt(f)
    }
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
    /// The compiled evaluator decided (false: regorus' interpreter did, see [`CompiledPolicy::evaluator`]).
    pub compiled: bool,
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
        self.input_decision(input, budget, true)
    }

    /// [`CompiledPolicy::evaluate`] for the request paths, which record which `log_*` rules fired but not their
    /// values: each [`LogEvent`]'s value is left null, saving its conversion to JSON (about a tenth of a
    /// default-bundle decision), and a `log_*` rule whose value could only be a collection of parts that
    /// cannot fail is not built at all (see `program::Run::fires`: 12% of a default-bundle decision's
    /// instructions).
    pub fn decide(&self, input: &Input, budget: Duration) -> Decision {
        self.input_decision(input, budget, false)
    }

    /// [`CompiledPolicy::decide`] for a raw JSON input document (see [`CompiledPolicy::evaluate_json`]).
    pub fn decide_json(&self, input: &serde_json::Value, budget: Duration) -> Decision {
        self.json_decision(input, budget, false)
    }

    /// Evaluate a raw JSON input document (for `axonflow policy eval --input FILE`). Detection offsets in it are
    /// taken as character offsets.
    pub fn evaluate_json(&self, input: &serde_json::Value, budget: Duration) -> Decision {
        self.json_decision(input, budget, true)
    }

    fn input_decision(&self, input: &Input, budget: Duration, log_values: bool) -> Decision {
        let started = Instant::now();
        let value = input.to_value();
        self.evaluate_value(value, &input.query, budget, started, log_values)
    }

    fn json_decision(&self, input: &serde_json::Value, budget: Duration, log_values: bool) -> Decision {
        let started = Instant::now();
        let query = input.get("query").and_then(|q| q.as_str()).unwrap_or_default().to_owned();
        self.evaluate_value(crate::input::json_value(input), &query, budget, started, log_values)
    }

    fn evaluate_value(
        &self,
        input: Value,
        query: &str,
        budget: Duration,
        started: Instant,
        log_values: bool,
    ) -> Decision {
        let mut timings = Timings { input: started.elapsed(), ..Timings::default() };
        // This thread's engine and plan (built from the sources on the thread's first evaluation).
        let instance = match self.instance() {
            Ok(instance) => instance,
            Err(error) => {
                timings.total = started.elapsed();
                return Decision::fail_closed(format!("the policy could not be prepared: {error}"), timings);
            }
        };
        let (rules, evaluation, compiled) = match &instance.plan {
            Some(plan) => self.evaluate_plan(plan, input, budget, !log_values),
            None => {
                let (rules, evaluation) = self.evaluate_package(&instance.engine, input, budget);
                (rules, evaluation, false)
            }
        };
        timings.evaluation = evaluation;
        timings.compiled = compiled;
        let finish = |mut decision: Decision| {
            decision.timings.total = started.elapsed();
            decision
        };
        if timings.evaluation > budget {
            return finish(Decision::fail_closed(over_budget(budget), timings));
        }
        match rules {
            Ok(rules) => finish(self.read_decision(&rules, query, timings, log_values)),
            Err(reason) => finish(Decision::fail_closed(reason, timings)),
        }
    }

    /// The contract rules through the plan, on this thread's engine.
    fn evaluate_plan<'p>(
        &'p self,
        plan: &'p Plan,
        input: Value,
        budget: Duration,
        lean: bool,
    ) -> (Result<Vec<Fired<'p>>, String>, Duration, bool) {
        if let Ok(program) = &plan.program {
            let evaluating = Instant::now();
            let result = program.evaluate(&input, budget, lean);
            let evaluation = evaluating.elapsed();
            match result {
                Ok(values) => return (Ok(plan.fired(values)), evaluation, true),
                Err(Stop::Timeout) => return (Err(over_budget(budget)), evaluation, true),
                // Anything the program does not decide, the interpreter evaluates from the start.
                Err(Stop::Interpreter) => {}
            }
        }
        // The clock starts once the thread has its engine (the first evaluation on a thread builds it).
        let mut evaluation = Duration::ZERO;
        let result = plan.with_engine(|engine| {
            let evaluating = Instant::now();
            engine.set_execution_timer_config(timer(budget));
            engine.set_input(input);
            let result = engine.eval_rule(plan.rule.clone());
            evaluation = evaluating.elapsed();
            // Keep no request data in the engine between evaluations.
            engine.set_input(Value::Undefined);
            drop(engine.take_prints());
            result
        });
        let value = match interpreted(result) {
            Ok(value) => value,
            Err(reason) => return (Err(reason), evaluation, false),
        };
        let Value::Array(results) = &value else {
            return (Err(format!("policy package {} is not defined", self.entry_package)), evaluation, false);
        };
        let values = results
            .iter()
            .map(|result| match result {
                Value::Array(values) => values.first().cloned().unwrap_or(Value::Undefined),
                _ => Value::Undefined,
            })
            .collect();
        (Ok(plan.fired(values)), evaluation, false)
    }

    /// The whole entry package in the interpreter (when the bundle has no [`Plan`]).
    fn evaluate_package(
        &self,
        engine: &Engine,
        input: Value,
        budget: Duration,
    ) -> (Result<Vec<Fired<'_>>, String>, Duration) {
        let evaluating = Instant::now();
        let result = self.evaluate_package_rules(engine.clone(), input, budget);
        (result, evaluating.elapsed())
    }

    fn evaluate_package_rules(
        &self,
        mut engine: Engine,
        input: Value,
        budget: Duration,
    ) -> Result<Vec<Fired<'_>>, String> {
        engine.set_execution_timer_config(timer(budget));
        engine.set_input(input);
        let results = interpreted(catch_unwind(AssertUnwindSafe(|| {
            engine.eval_query(self.entry_query.clone(), false)
        })))?;
        let root = match results.result.first().and_then(|r| r.expressions.first()) {
            Some(expression) if matches!(expression.value, Value::Object(_)) => &expression.value,
            _ => return Err(format!("policy package {} is not defined", self.entry_package)),
        };
        let prefix = format!("{}.", self.entry_package);
        let mut out = Vec::new();
        for package in &self.packages {
            let value = if *package == self.entry_package {
                root
            } else if let Some(rest) = package.strip_prefix(&prefix) {
                rest.split('.').fold(root, |value, part| &value[part])
            } else {
                continue;
            };
            for (name, value) in fired(value) {
                let wanted = (name == "allow" && *package == self.entry_package)
                    || matches!(name, "deny" | "warn" | "require_approval" | "redacted_query")
                    || name.starts_with("log_");
                if wanted {
                    out.push(Fired { package, rule: Cow::Owned(name.to_owned()), value: value.clone() });
                }
            }
        }
        Ok(out)
    }

    fn read_decision(
        &self,
        rules: &[Fired<'_>],
        query: &str,
        timings: Timings,
        log_values: bool,
    ) -> Decision {
        let entry = |name: &str| {
            rules
                .iter()
                .find(|r| r.package == self.entry_package && r.rule == name)
                .map_or(&Value::Undefined, |r| &r.value)
        };
        let deny = reasons(entry("deny"), "denied by policy");
        let approval = reasons(entry("require_approval"), "approval required by policy");
        let redacted = match entry("redacted_query") {
            Value::String(text) if text.as_ref() != query => Some(text.to_string()),
            _ => None,
        };
        let allowed = *entry("allow") == Value::Bool(true);
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
        let logs = rules
            .iter()
            .filter(|r| r.package == self.entry_package && r.rule.starts_with("log_"))
            .map(|r| LogEvent {
                name: r.rule.to_string(),
                value: LogValue(if log_values {
                    to_json(&r.value).unwrap_or_default()
                } else {
                    serde_json::Value::Null
                }),
            })
            .collect();
        Decision {
            outcome,
            warnings: reasons(entry("warn"), "warned by policy"),
            matched: matches(rules, query),
            logs,
            timings,
        }
    }
}

/// A contract rule that is defined and not `false` or `null`.
struct Fired<'p> {
    package: &'p str,
    rule: Cow<'p, str>,
    value: Value,
}

impl Plan {
    /// The slots' rules that are defined and not `false` or `null`, from their values in slot order.
    fn fired(&self, values: Vec<Value>) -> Vec<Fired<'_>> {
        self.slots
            .iter()
            .zip(values)
            .filter(|(_, value)| defined(value))
            .map(|(slot, value)| Fired { package: &slot.package, rule: Cow::Borrowed(&slot.rule), value })
            .collect()
    }
}

fn over_budget(budget: Duration) -> String {
    format!("policy evaluation exceeded its time budget of {budget:?}")
}

fn timer(budget: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig { limit: budget, check_interval: NonZeroU32::MIN.saturating_add(31) }
}

/// The interpreter's result, or its error or panic as a deny reason.
fn interpreted<T>(result: std::thread::Result<anyhow::Result<T>>) -> Result<T, String> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("policy evaluation failed: {}", tidy(&error.to_string()))),
        Err(_) => Err("policy evaluation panicked".to_owned()),
    }
}

fn defined(value: &Value) -> bool {
    !matches!(value, Value::Bool(false) | Value::Undefined | Value::Null)
}

/// Every package (the fired rules are sorted by package) with a decision rule that fired, with those rules.
fn matches(rules: &[Fired<'_>], query: &str) -> Vec<Match> {
    let mut matched: Vec<Match> = Vec::new();
    for fired in rules {
        let counts = match fired.rule.as_ref() {
            "deny" | "warn" | "require_approval" => has_reasons(&fired.value),
            "redacted_query" => fired.value.as_string().is_ok_and(|text| text.as_ref() != query),
            name => name.starts_with("log_"),
        };
        if !counts {
            continue;
        }
        match matched.last_mut() {
            Some(last) if last.package == fired.package => last.rules.push(fired.rule.to_string()),
            _ => {
                matched.push(Match { package: fired.package.to_owned(), rules: vec![fired.rule.to_string()] })
            }
        }
    }
    for m in &mut matched {
        m.rules.sort();
    }
    matched
}

/// The rules of a package value that are defined and not `false`.
fn fired(package: &Value) -> impl Iterator<Item = (&str, &Value)> {
    let entries = match package {
        Value::Object(map) => Some(map.iter()),
        _ => None,
    };
    entries
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| defined(value).then_some((key.as_string().ok()?.as_ref(), value)))
}

/// Whether [`reasons`] of `value` is non-empty, without formatting them.
fn has_reasons(value: &Value) -> bool {
    match value {
        Value::Bool(true) | Value::String(_) => true,
        Value::Set(set) => !set.is_empty(),
        Value::Array(array) => !array.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_reasons_agrees_with_reasons() {
        let values = [
            "true",
            "false",
            "null",
            "\"\"",
            "\"x\"",
            "[]",
            "[\"a\"]",
            "[1, 1]",
            "{}",
            "{\"a\": 1}",
            "0",
            "1.5",
        ];
        for text in values {
            let value = Value::from_json_str(text).unwrap_or(Value::Undefined);
            assert_eq!(has_reasons(&value), !reasons(&value, "").is_empty(), "{text}");
        }
        let mut set = Value::new_set();
        assert_eq!(has_reasons(&set), !reasons(&set, "").is_empty());
        if let Ok(items) = set.as_set_mut() {
            items.insert(Value::from("r"));
        }
        assert_eq!(has_reasons(&set), !reasons(&set, "").is_empty());
        assert!(has_reasons(&set));
        assert!(!has_reasons(&Value::Undefined));
    }
}
