//! Compiling a bundle into a prepared regorus engine, and the options that go with it.

use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use regorus::{Engine, Value};

use crate::bundle::{Bundle, FileKind, PolicyFile};
use crate::plan::Plan;

/// A native builtin's implementation: JSON arguments in, a JSON value or an error message out.
pub type ExtensionFn = Arc<dyn Fn(&[serde_json::Value]) -> Result<serde_json::Value, String> + Send + Sync>;

/// A native builtin callable from Rego, e.g. `axonflow.pii.redact(s)`, registered by the caller.
#[derive(Clone)]
pub struct Extension {
    /// The dotted name policies call it by.
    pub name: String,
    /// The number of arguments.
    pub arity: u8,
    pub function: ExtensionFn,
}

impl fmt::Debug for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension").field("name", &self.name).field("arity", &self.arity).finish()
    }
}

impl Extension {
    pub fn new(
        name: impl Into<String>,
        arity: u8,
        function: impl Fn(&[serde_json::Value]) -> Result<serde_json::Value, String> + Send + Sync + 'static,
    ) -> Extension {
        Extension { name: name.into(), arity, function: Arc::new(function) }
    }
}

/// How to compile a bundle.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The package whose rules make the decision (default `axonflow.policy`).
    pub entry_package: String,
    /// Native builtins to register.
    pub extensions: Vec<Extension>,
    /// The base data document (`data.*` besides the policies), e.g. `{"axonflow": {"hipaa": {...}}}`.
    pub data: serde_json::Value,
    /// Evaluate decisions with the compiled evaluator when the bundle allows it (default true); false keeps
    /// every decision in regorus' interpreter.
    pub compiled_evaluator: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            entry_package: "axonflow.policy".to_owned(),
            extensions: Vec::new(),
            data: serde_json::Value::Object(serde_json::Map::new()),
            compiled_evaluator: true,
        }
    }
}

/// Why a bundle could not be compiled. Messages carry file, line and column; never input values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("{message}")]
    Parse { path: String, message: String },
    #[error("{message}")]
    Compile { message: String },
    #[error("the bundle has no policy files")]
    Empty,
    #[error("package {package} is not defined by the bundle")]
    MissingPackage { package: String },
    #[error("invalid data document: {message}")]
    Data { message: String },
    #[error("extension {name}: {message}")]
    Extension { name: String, message: String },
}

/// What compiling cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileStats {
    /// Parse, analysis and preparation.
    pub duration: Duration,
    /// Bytes of policy compiled (tests excluded).
    pub bytes: usize,
    pub files: usize,
}

/// A compiled bundle, ready to evaluate from many threads (`Send + Sync`; share it in an `Arc`).
///
/// It holds the bundle's sources and what compiling them found out. The regorus state that evaluates them (a
/// prepared engine and a decision plan: the contract's rules gathered into one rule, and that rule compiled,
/// see [`crate::program`]) lives in an [`Instance`] per evaluating thread: this crate builds regorus without
/// its `arc` feature, so its values count references with plain increments (about 460 atomic instructions
/// per default-bundle decision saved, 13% of its time) and cannot cross threads. A thread builds its instance
/// from the same sources the first time it evaluates the policy (a few milliseconds; [`CompileStats`]), so
/// evaluations share no mutable state, no reference counts and no lock.
#[derive(Debug)]
pub struct CompiledPolicy {
    files: Vec<PolicyFile>,
    options: CompileOptions,
    pub(crate) entry_package: String,
    pub(crate) entry_query: String,
    pub(crate) packages: Vec<String>,
    /// Whether decisions run on the compiled evaluator, or why not (the same on every thread).
    evaluator: Result<(), String>,
    stats: CompileStats,
    /// Each thread's instance is kept while this lives (see [`INSTANCES`]).
    alive: Arc<()>,
}

/// One thread's regorus state for a [`CompiledPolicy`].
pub(crate) struct Instance {
    /// The prepared engine with the bundle loaded (evaluations clone it when there is no plan).
    pub(crate) engine: Engine,
    /// None when the contract rules cannot be gathered into one rule; the whole entry package is evaluated.
    pub(crate) plan: Option<Plan>,
}

std::thread_local! {
    /// This thread's instances, each with its policy's liveness token: an instance whose policy is gone is
    /// dropped the next time this thread builds one.
    static INSTANCES: std::cell::RefCell<Vec<(Weak<()>, Rc<Instance>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Instance {
    fn build(
        files: &[&PolicyFile],
        options: &CompileOptions,
    ) -> Result<(Instance, Vec<String>), PolicyError> {
        let prepared = prepare(files, options)?;
        if !prepared.packages.contains(&options.entry_package) {
            return Err(PolicyError::MissingPackage { package: options.entry_package.clone() });
        }
        let plan = Plan::build(&prepared.engine, options, &prepared.packages);
        Ok((Instance { engine: prepared.engine, plan }, prepared.packages))
    }
}

impl CompiledPolicy {
    /// Compile the bundle's policy files (tests excluded) with the given options.
    pub fn compile(bundle: &Bundle, options: &CompileOptions) -> Result<CompiledPolicy, PolicyError> {
        let started = Instant::now();
        let files: Vec<&PolicyFile> = bundle.policy_files().collect();
        let (instance, packages) = Instance::build(&files, options)?;
        let stats = CompileStats {
            duration: started.elapsed(),
            bytes: files.iter().map(|f| f.text.len()).sum(),
            files: files.len(),
        };
        let evaluator = match &instance.plan {
            None => Err("the decision rules could not be gathered into a plan".to_owned()),
            Some(plan) => plan.program.as_ref().map(|_| ()).map_err(Clone::clone),
        };
        let policy = CompiledPolicy {
            files: files.into_iter().cloned().collect(),
            options: options.clone(),
            entry_query: format!("data.{}", options.entry_package),
            entry_package: options.entry_package.clone(),
            packages,
            evaluator,
            stats,
            alive: Arc::new(()),
        };
        // The compiling thread keeps what it built.
        policy.keep(Rc::new(instance));
        Ok(policy)
    }

    /// This thread's instance, built on first use. An error only if the sources no longer compile here
    /// (they did when the policy was compiled; the caller fails closed).
    pub(crate) fn instance(&self) -> Result<Rc<Instance>, PolicyError> {
        let found = INSTANCES.with(|instances| {
            instances.borrow().iter().find(|(token, _)| self.owns(token)).map(|(_, i)| i.clone())
        });
        if let Some(instance) = found {
            return Ok(instance);
        }
        let files: Vec<&PolicyFile> = self.files.iter().collect();
        // The sources compiled once already; a panic here is regorus' and becomes an error (fail closed).
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Instance::build(&files, &self.options)))
                .unwrap_or_else(|_| {
                    Err(PolicyError::Compile { message: "preparing the policy panicked".to_owned() })
                });
        let instance = Rc::new(built?.0);
        self.keep(instance.clone());
        Ok(instance)
    }

    /// Keeps `instance` as this thread's for this policy, dropping those of policies that are gone.
    fn keep(&self, instance: Rc<Instance>) {
        INSTANCES.with(|instances| {
            let mut instances = instances.borrow_mut();
            instances.retain(|(token, _)| token.strong_count() > 0);
            instances.push((Arc::downgrade(&self.alive), instance));
        });
    }

    /// Whether an entry of [`INSTANCES`] is this policy's: by the address of its liveness token. A token's
    /// allocation lives as long as any `Weak` to it, so no other policy's token can take that address while an
    /// entry for it remains.
    fn owns(&self, token: &Weak<()>) -> bool {
        std::ptr::eq(token.as_ptr(), Arc::as_ptr(&self.alive))
    }

    pub fn stats(&self) -> CompileStats {
        self.stats
    }

    /// Whether decisions run on the compiled evaluator (`Ok`), or why they run on the interpreter (`Err`, e.g.
    /// "with" or "every" in a rule the decision needs).
    pub fn evaluator(&self) -> Result<(), String> {
        self.evaluator.clone()
    }

    /// The package the decision is read from.
    pub fn entry_package(&self) -> &str {
        &self.entry_package
    }

    /// Every package the bundle defines, sorted.
    pub fn packages(&self) -> &[String] {
        &self.packages
    }
}

impl Drop for CompiledPolicy {
    /// This thread's instance goes with the policy; other threads drop theirs when they next build one.
    fn drop(&mut self) {
        // `try_with`: the thread may be exiting, its instances already gone.
        let _ = INSTANCES.try_with(|instances| {
            if let Ok(mut instances) = instances.try_borrow_mut() {
                instances.retain(|(token, _)| !self.owns(token));
            }
        });
    }
}

/// A prepared engine and the packages loaded into it.
pub(crate) struct Prepared {
    pub(crate) engine: Engine,
    pub(crate) packages: Vec<String>,
}

/// Load files into a fresh engine, register extensions and data, and prepare the engine (analysis, scheduling) so that clones evaluate straight away.
pub(crate) fn prepare(files: &[&PolicyFile], options: &CompileOptions) -> Result<Prepared, PolicyError> {
    if files.iter().all(|f| f.kind() == FileKind::Test) {
        return Err(PolicyError::Empty);
    }
    prepare_files(files, options)
}

/// [`prepare`] without the check that there is policy (the test runner compiles tests too).
pub(crate) fn prepare_files(
    files: &[&PolicyFile],
    options: &CompileOptions,
) -> Result<Prepared, PolicyError> {
    let mut engine = Engine::new();
    engine.set_gather_prints(true);
    let mut packages = Vec::new();
    for file in files {
        packages.push(add_file(&mut engine, file)?);
    }
    packages.sort();
    packages.dedup();
    for (name, arity, function) in crate::redact::BUILTINS {
        let callable =
            move |args: Vec<Value>| function(&args).map_err(|message| anyhow::anyhow!("{name}: {message}"));
        engine
            .add_extension(name.to_owned(), arity, Box::new(callable))
            .map_err(|e| PolicyError::Extension { name: name.to_owned(), message: e.to_string() })?;
    }
    for extension in &options.extensions {
        register(&mut engine, extension)?;
    }
    engine
        .add_data(Value::from(options.data.clone()))
        .map_err(|e| PolicyError::Data { message: e.to_string() })?;
    // Preparation happens on the first evaluation; a trivial query does it without running user rules.
    engine
        .eval_bool_query("true".to_owned(), false)
        .map_err(|e| PolicyError::Compile { message: tidy(&e.to_string()) })?;
    Ok(Prepared { engine, packages })
}

/// Parse one file, trying OPA v1 syntax, then v0 (which honours `import rego.v1` and `import future.keywords`),
/// then v0 with the future keywords enabled (the guide's HIPAA example uses `in` without importing it).
/// Returns the file's package without the `data.` prefix.
pub(crate) fn add_file(engine: &mut Engine, file: &PolicyFile) -> Result<String, PolicyError> {
    let mut errors = Vec::new();
    for attempt in [Syntax::V1, Syntax::V0, Syntax::V0FutureKeywords] {
        let Some(text) = attempt.source(&file.text) else { continue };
        let mut candidate = engine.clone();
        candidate.set_rego_v0(attempt != Syntax::V1);
        match candidate.add_policy(file.path.clone(), text) {
            Ok(package) => {
                *engine = candidate;
                return Ok(package.strip_prefix("data.").unwrap_or(&package).to_owned());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    // Report the attempt that got furthest into the file: the most plausible reading of the author's intent.
    let message = errors.into_iter().max_by_key(|e| error_line(e)).unwrap_or_default();
    Err(PolicyError::Parse { path: file.path.clone(), message: tidy(&message) })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    V1,
    V0,
    V0FutureKeywords,
}

impl Syntax {
    fn source(self, text: &str) -> Option<String> {
        match self {
            Syntax::V1 | Syntax::V0 => Some(text.to_owned()),
            Syntax::V0FutureKeywords => with_future_keywords(text),
        }
    }
}

/// The text with `import future.keywords` on the line after its `package` line: in place of that line when it
/// is blank (line numbers unchanged), inserted otherwise. None when the file already imports the keywords or
/// has no package line.
fn with_future_keywords(text: &str) -> Option<String> {
    if text.contains("import future.keywords") || text.contains("import rego.v1") {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let package = lines.iter().position(|line| line.trim_start().starts_with("package "))?;
    let mut out: Vec<&str> = Vec::with_capacity(lines.len() + 1);
    out.extend_from_slice(&lines[..=package]);
    out.push("import future.keywords");
    let rest = &lines[package + 1..];
    match rest.first() {
        Some(line) if line.trim().is_empty() => out.extend_from_slice(&rest[1..]),
        _ => out.extend_from_slice(rest),
    }
    Some(out.join("\n"))
}

fn error_line(message: &str) -> u32 {
    // regorus errors read "--> path:line:col".
    message
        .split("--> ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|location| location.split(':').rev().nth(1))
        .and_then(|line| line.parse().ok())
        .unwrap_or(0)
}

/// Collapse regorus' multi-line error rendering into one line.
pub(crate) fn tidy(message: &str) -> String {
    let mut location = "";
    let mut text = Vec::new();
    for line in message.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("--> ") {
            if location.is_empty() {
                location = rest;
            }
        } else if let Some(rest) = line.strip_prefix("error: ") {
            text.push(rest.trim());
        } else if !line.is_empty()
            && !line.starts_with('|')
            && !line.chars().next().is_some_and(|c| c.is_ascii_digit())
        {
            text.push(line);
        }
    }
    let text = text.join(" ");
    if location.is_empty() { text } else { format!("{location}: {text}") }
}

fn register(engine: &mut Engine, extension: &Extension) -> Result<(), PolicyError> {
    let function = extension.function.clone();
    let name = extension.name.clone();
    let callable = move |args: Vec<Value>| -> anyhow::Result<Value> {
        let args: Vec<serde_json::Value> = args.iter().map(to_json).collect::<Result<_, _>>()?;
        let result = function(&args).map_err(|message| anyhow::anyhow!("{name}: {message}"))?;
        Ok(Value::from(result))
    };
    engine
        .add_extension(extension.name.clone(), extension.arity, Box::new(callable))
        .map_err(|e| PolicyError::Extension { name: extension.name.clone(), message: e.to_string() })
}

/// A policy value as JSON, as regorus serializes it. Strings, integers, arrays, sets and objects with string
/// keys are converted directly (regorus' serializer prints every number and parses it back); anything else
/// (floats, big integers, non-string keys, undefined) goes through regorus' serializer.
pub(crate) fn to_json(value: &Value) -> anyhow::Result<serde_json::Value> {
    match direct_json(value) {
        Some(json) => Ok(json),
        None => Ok(serde_json::to_value(value)?),
    }
}

fn direct_json(value: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as Json;
    Some(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.to_string()),
        Value::Number(n) if n.is_integer() => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(i)) => Json::from(i),
            (None, None) => return None,
        },
        Value::Array(items) => Json::Array(items.iter().map(direct_json).collect::<Option<_>>()?),
        Value::Set(items) => Json::Array(items.iter().map(direct_json).collect::<Option<_>>()?),
        Value::Object(map) => Json::Object(
            map.iter_sorted()
                .map(|(k, v)| Some((k.as_string().ok()?.to_string(), direct_json(v)?)))
                .collect::<Option<_>>()?,
        ),
        Value::Number(_) | Value::Undefined => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances_here() -> usize {
        INSTANCES.with(|instances| instances.borrow().len())
    }

    fn policy(allow: bool) -> CompiledPolicy {
        let text = format!("package axonflow.policy\nallow := {allow}\n");
        let bundle = Bundle::from_sources(vec![("main.rego".to_owned(), text)]);
        CompiledPolicy::compile(&bundle, &CompileOptions::default())
            .unwrap_or_else(|e| panic!("compile: {e}"))
    }

    #[test]
    fn each_thread_builds_its_own_instance_and_drops_those_of_dropped_policies() {
        let budget = Duration::from_secs(5);
        let checked = std::thread::spawn(move || {
            let first = Arc::new(policy(true));
            assert_eq!(instances_here(), 1, "the compiling thread keeps its instance");
            let other = Arc::clone(&first);
            let elsewhere = std::thread::spawn(move || {
                let proceeds = other.evaluate(&crate::Input::default(), budget).proceeds();
                let built = instances_here();
                drop(other);
                // The policy lives on in the first thread: this thread's copy stays until it builds another.
                let second = policy(false);
                (
                    proceeds,
                    built,
                    instances_here(),
                    second.evaluate(&crate::Input::default(), budget).proceeds(),
                )
            })
            .join()
            .ok();
            assert_eq!(elsewhere, Some((true, 1, 2, false)));
            assert!(first.evaluate(&crate::Input::default(), budget).proceeds());
            assert_eq!(instances_here(), 1, "evaluating reuses the instance");
            drop(first);
            assert_eq!(instances_here(), 0, "dropping the policy drops this thread's instance");
            let second = policy(false);
            let third = policy(true);
            drop(second);
            assert_eq!(instances_here(), 1);
            assert!(third.evaluate(&crate::Input::default(), budget).proceeds());
        })
        .join();
        assert!(checked.is_ok(), "a check failed (see the panic above)");
    }
}
