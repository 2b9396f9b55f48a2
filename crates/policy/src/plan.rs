//! The decision plan: only the rules the decision contract reads, gathered into one synthetic rule, evaluated
//! on an engine owned by the evaluating thread.
//!
//! Evaluating the whole entry package materialises every rule of every package below it (helpers, tables,
//! patterns), and cloning one shared engine per request makes every thread bump the same reference counts.
//! The plan loads one more module,
//!
//! ```rego
//! result := [[x | x := data.axonflow.policy.allow], [x | x := data.axonflow.policy.deny], ...]
//! ```
//!
//! with one element per contract rule (`allow` of the entry package; `deny`, `warn`, `require_approval`,
//! `redacted_query` and `log_*` of it and of every package below it, in a fixed order), so a decision is one
//! `eval_rule`, each dependency is evaluated once, and an undefined rule is an empty array. A plan belongs to
//! one thread's [`crate::compile::Instance`], built from the sources the first time that thread evaluates.
//!
//! regorus' RVM (`rvm` feature, a compiled register VM) was tried: it evaluates the default bundle a few times
//! faster, but it turns an error in a rule body (division by zero, a builtin's error, even with strict builtin
//! errors) into an undefined rule instead of an evaluation error, so a `deny` rule that errors would silently
//! not deny. That breaks fail-closed, so it is not used (see docs/policies.md).

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use regorus::Engine;

use crate::compile::{CompileOptions, PolicyError};
use crate::program::Program;

/// The decision contract's rule names, besides `log_*`.
const DECISION_RULES: [&str; 4] = ["deny", "warn", "require_approval", "redacted_query"];

/// One contract rule the plan evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) package: String,
    pub(crate) rule: String,
}

/// The synthetic rule and the engines that evaluate it.
pub(crate) struct Plan {
    pub(crate) slots: Vec<Slot>,
    /// `data.<synthetic package>.result`.
    pub(crate) rule: String,
    /// The prepared engine with the synthetic module; evaluations run on a clone of it.
    engine: Engine,
    /// The clone evaluations run on, kept between them.
    current: RefCell<Option<Engine>>,
    /// The slots' rules compiled (see [`crate::program`]), or why they are not.
    pub(crate) program: Result<Program, String>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan").field("slots", &self.slots).field("rule", &self.rule).finish()
    }
}

impl Plan {
    /// Build the plan for `engine` (prepared, with `files` loaded). None when the synthetic rule cannot be built
    /// (e.g. a contract rule is a function); the caller then evaluates the whole entry package.
    pub(crate) fn build(engine: &Engine, options: &CompileOptions, packages: &[String]) -> Option<Plan> {
        let slots = slots(engine, &options.entry_package);
        let synthetic = (0..)
            .map(|n| format!("axonflow_decision_plan_{n}"))
            .find(|name| !packages.iter().any(|p| p == name || p.starts_with(&format!("{name}."))))?;
        let elements: Vec<String> =
            slots.iter().map(|slot| format!("[x | x := data.{}.{}]", slot.package, slot.rule)).collect();
        let module = (
            format!("<{synthetic}>"),
            format!("package {synthetic}\n\nresult := [\n\t{},\n]\n", elements.join(",\n\t")),
        );
        let mut engine = engine.clone();
        add_module(&mut engine, &module).ok()?;
        let program = if options.compiled_evaluator {
            let modules = engine.clone().get_modules().clone();
            Program::build(&modules, &slots, &options.data, &options.extensions)
        } else {
            Err("the compiled evaluator is turned off".to_owned())
        };
        Some(Plan {
            slots,
            rule: format!("data.{synthetic}.result"),
            engine,
            current: RefCell::new(None),
            program,
        })
    }

    /// Run `f` with the plan's engine, catching a panic. A re-entrant evaluation (an extension evaluating a
    /// policy) gets an engine of its own. After a panic the engine is dropped, so the next evaluation starts
    /// from a fresh clone.
    pub(crate) fn with_engine<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> std::thread::Result<T> {
        let Ok(mut slot) = self.current.try_borrow_mut() else {
            let mut engine = self.engine.clone();
            return catch_unwind(AssertUnwindSafe(|| f(&mut engine)));
        };
        let engine = slot.get_or_insert_with(|| self.engine.clone());
        let result = catch_unwind(AssertUnwindSafe(|| f(engine)));
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

/// The contract rules of the entry package and every package below it, sorted by package then rule.
fn slots(engine: &Engine, entry_package: &str) -> Vec<Slot> {
    let mut engine = engine.clone();
    let prefix = format!("{entry_package}.");
    let mut slots = Vec::new();
    for module in engine.get_modules() {
        let package = module.package.refr.span().text().to_owned();
        if package != entry_package && !package.starts_with(&prefix) {
            continue;
        }
        for rule in &module.policy {
            let refr = match rule.as_ref() {
                regorus::unstable::Rule::Spec { head, .. } => match head {
                    regorus::unstable::RuleHead::Compr { refr, .. }
                    | regorus::unstable::RuleHead::Set { refr, .. } => refr,
                    regorus::unstable::RuleHead::Func { .. } => continue,
                },
                regorus::unstable::Rule::Default { refr, args, .. } if args.is_empty() => refr,
                regorus::unstable::Rule::Default { .. } => continue,
            };
            let text = refr.span().text();
            let name: String = text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let wanted = (name == "allow" && package == entry_package)
                || DECISION_RULES.contains(&name.as_str())
                || name.starts_with("log_");
            if wanted {
                slots.push(Slot { package: package.clone(), rule: name });
            }
        }
    }
    slots.sort_by(|a, b| (&a.package, &a.rule).cmp(&(&b.package, &b.rule)));
    slots.dedup();
    slots
}

fn add_module(engine: &mut Engine, (path, text): &(String, String)) -> Result<(), PolicyError> {
    engine
        .add_policy(path.clone(), text.clone())
        .map_err(|e| PolicyError::Compile { message: e.to_string() })?;
    // Prepare now (analysis, scheduling) rather than on the first request.
    engine
        .eval_bool_query("true".to_owned(), false)
        .map(drop)
        .map_err(|e| PolicyError::Compile { message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use crate::{Bundle, CompileOptions, CompiledPolicy, Stage};

    fn shipped() -> Bundle {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    let relative =
                        path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                    files.push((relative, text));
                }
            }
        }
        Bundle::from_layout(files, Stage::Production)
    }

    #[test]
    fn the_default_bundle_is_evaluated_through_a_plan() {
        let compiled = CompiledPolicy::compile(&shipped(), &CompileOptions::default())
            .unwrap_or_else(|e| panic!("default bundle: {e}"));
        let instance = compiled.instance().unwrap_or_else(|e| panic!("instance: {e}"));
        let plan = instance.plan.as_ref().unwrap_or_else(|| panic!("no plan"));
        let slots: Vec<String> = plan.slots.iter().map(|s| format!("{}.{}", s.package, s.rule)).collect();
        assert_eq!(
            slots.join("\n"),
            "axonflow.policy.allow
axonflow.policy.deny
axonflow.policy.log_phi_access
axonflow.policy.log_pii_detection
axonflow.policy.log_security_event
axonflow.policy.redacted_query
axonflow.policy.require_approval
axonflow.policy.warn
axonflow.policy.connectors.salesforce.deny
axonflow.policy.connectors.salesforce.require_approval
axonflow.policy.connectors.slack.deny
axonflow.policy.connectors.snowflake.deny
axonflow.policy.connectors.snowflake.require_approval
axonflow.policy.hipaa.deny
axonflow.policy.hipaa.log_phi_access
axonflow.policy.pii.log_pii_detection
axonflow.policy.pii.redacted_query
axonflow.policy.rbac.deny
axonflow.policy.security.deny
axonflow.policy.security.log_security_event
axonflow.policy.security.warn"
        );
        // A decision that only reads which log rules fired builds none of their values.
        let program = plan.program.as_ref().unwrap_or_else(|e| panic!("not compiled: {e}"));
        let lean: Vec<&str> =
            (0..slots.len()).filter(|i| program.lean_output(*i)).map(|i| &*slots[i]).collect();
        assert_eq!(
            lean,
            [
                "axonflow.policy.log_phi_access",
                "axonflow.policy.log_pii_detection",
                "axonflow.policy.log_security_event",
                "axonflow.policy.hipaa.log_phi_access",
                "axonflow.policy.pii.log_pii_detection",
                "axonflow.policy.security.log_security_event",
            ]
        );
    }
}
