//! The compiled evaluator: the decision plan's rules translated once, at compile time, from regorus' syntax tree
//! into a small program that a decision runs directly.
//!
//! regorus' interpreter walks the syntax tree on every request: it rebuilds path strings, resolves every rule
//! and builtin by name and schedules each body, which costs about a microsecond per statement. Here all of that
//! is done once: variables become slots in a frame, rule references become indices into a per-decision memo,
//! builtin names become function pointers, and constant parts of `data` are looked up ahead of time. Values,
//! builtins, comparisons, arithmetic and set operators are regorus' own (`regorus::Value`,
//! `regorus::unstable::BUILTINS`, `builtins::comparison`, `builtins::numbers`, `builtins::sets`), so the
//! program computes what the interpreter computes.
//!
//! It covers the Rego the decision path needs, not all of Rego. Compilation declines a bundle whose
//! reachable rules use anything else (`with`, `every`, `else`, unification against patterns, iteration over
//! unbound reference indices, `print`, partial objects, rule references with dots in the head, ...), and the
//! bundle is then evaluated by the interpreter alone. At run time the program only answers when it is sure:
//! any error (a builtin's, a conflict between rule values, a recursion, a panic) hands the decision to the
//! interpreter, which evaluates it from the start and reports the error its own way (fail closed). Only the
//! time budget is enforced here directly.
//!
//! One difference is deliberate. Like OPA, the program evaluates only the rules the decision needs. regorus'
//! interpreter also evaluates other rules of a package it enters, so an error in a rule that the decision does
//! not depend on (say, a connector's helper for a request to another connector) denies there and not here.
//! Every rule the decision depends on is evaluated, and an error in any of them still reaches the interpreter.
//! `tests/it/program.rs` evaluates the shipped bundle and a set of edge cases both ways and requires identical
//! decisions, except that one difference.

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use regorus::Value;
use regorus::unstable::{
    ArithOp, AssignOp, BUILTINS, BinOp, BoolOp, BuiltinFcn, Expr, ExprRef, Literal, LiteralStmt, Module,
    Query, Ref, Rule as AstRule, RuleHead, must_cache,
};

use crate::compile::{Extension, ExtensionFn, to_json};
use crate::plan::Slot;
use crate::redact::NativeFn;

/// Builtins the program does not call: they depend on interpreter state (prints, traces).
const INTERPRETER_ONLY: [&str; 2] = ["print", "trace"];

/// How many statements run between two looks at the clock.
const CLOCK_EVERY: u32 = 64;

/// The most regex patterns a program keeps compiled (patterns can come from input; beyond this they are
/// compiled per call).
const REGEX_CACHE: usize = 64;

/// regorus' limit on a compiled regex (`builtins/regex.rs`), kept the same so the same patterns compile.
const REGEX_SIZE_LIMIT: usize = 100 * 1024;

/// Why a decision left the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// An error or a case the program does not decide: the interpreter evaluates the request instead.
    Interpreter,
    /// The time budget ran out.
    Timeout,
}

type Slotted = u16;
/// A call's arguments: builtins take at most a few, kept off the heap.
type Args = smallvec::SmallVec<[Value; 4]>;
type RuleId = usize;

/// The compiled decision.
pub(crate) struct Program {
    rules: Vec<RuleCode>,
    /// The plan's slots, in order.
    outputs: Vec<RuleId>,
    /// The memo a decision starts from: rules that depend on neither the input nor the clock (tables,
    /// patterns, messages) are evaluated once, at compile time.
    initial: Vec<Memo>,
    extensions: Vec<(String, ExtensionFn)>,
    /// The patterns of `regex.match` and `regex.replace` known at compile time (constants and constant rules),
    /// compiled once and read without a lock. regorus' own cache hands out clones, and a cloned `Regex` starts
    /// with an empty matching cache, so each call rebuilt its automaton (about a third of a decision).
    patterns: Patterns,
    /// Patterns that only a decision's input names, compiled on first use.
    regexes: RwLock<HashMap<String, regex::Regex>>,
    /// The empty set, shared (see [`Run::set`]); `as_set_mut` copies it before the first insert.
    empty_set: Value,
    /// The rules a decision that reads only whether its `log_*` rules fired may settle without building
    /// their values (see [`Program::lean_rules`] and [`Run::fires`]).
    lean: Vec<bool>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("rules", &self.rules.len()).finish()
    }
}

/// The compiled constant patterns.
///
/// A `Regex` keeps a pool of matching caches: the first thread to use it takes its cache without
/// synchronisation, every other thread goes through a mutex. A program belongs to one thread (see
/// `compile::Instance`), so its patterns are only ever matched by that thread: no lock on the hot path.
#[derive(Default)]
struct Patterns {
    /// Pattern -> its position in `compiled`.
    index: HashMap<String, usize>,
    compiled: Vec<regex::Regex>,
}

impl Patterns {
    /// `pattern` compiled, if it is one of the constant patterns.
    fn get(&self, pattern: &str) -> Option<&regex::Regex> {
        self.compiled.get(*self.index.get(pattern)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Complete,
    Set,
    Function(usize),
}

struct RuleCode {
    kind: Kind,
    defs: Vec<Def>,
    default: Option<Code>,
    /// Every definition yields the same constant: the first solution decides the rule.
    uniform: bool,
}

impl RuleCode {
    /// The codes directly in the rule: its default, and each definition's value and body.
    fn codes<'c>(&'c self, out: &mut Vec<&'c Code>) {
        self.codes_but_copies(false, out);
    }

    /// [`RuleCode::codes`], leaving out, when `skip_copies`, a definition's value that is a plain copy of
    /// another rule (`log_x := data.pkg.log_x`; see [`Program::lean_rules`]).
    fn codes_but_copies<'c>(&'c self, skip_copies: bool, out: &mut Vec<&'c Code>) {
        out.extend(self.default.iter());
        for def in &self.defs {
            match &def.value {
                Some(Code::Rule(_)) if skip_copies => {}
                value => out.extend(value.iter()),
            }
            steps_codes(&def.query, out);
        }
    }
}

struct Def {
    /// Functions: the slot of each argument (`None` for `_`).
    params: Vec<Option<Slotted>>,
    query: Vec<Step>,
    /// The head's value (complete rules and functions: `true` when absent; sets: the element).
    value: Option<Code>,
    slots: usize,
}

enum Step {
    /// The expression must be defined and not `false`.
    Test(Code),
    /// The expression must be undefined or `false`.
    Not(Code),
    /// Bind a fresh variable; an undefined value fails the body.
    Bind(Slotted, Code),
    /// `some key, value in collection`.
    SomeIn { key: Option<Slotted>, value: Option<Slotted>, collection: Code },
}

/// A builtin's name, as regorus' table spells it.
type Name = &'static str;

enum Code {
    Const(Value),
    Var(Slotted),
    Input,
    Rule(RuleId),
    Index { base: Box<Code>, index: Box<Code>, data: bool },
    Array(Vec<Code>),
    Set(Vec<Code>),
    Object(Vec<(Code, Code)>),
    ArrayCompr { term: Box<Code>, query: Vec<Step> },
    SetCompr { term: Box<Code>, query: Vec<Step> },
    ObjectCompr { key: Box<Code>, value: Box<Code>, query: Vec<Step> },
    Builtin { name: Name, op: Op, fcn: BuiltinFcn, call: ExprRef, params: Vec<ExprRef>, args: Vec<Code> },
    Extension { index: usize, args: Vec<Code> },
    // A builtin of this crate (`crate::redact`).
    Native { function: NativeFn, args: Vec<Code> },
    Function { rule: RuleId, args: Vec<Code> },
    Compare { op: BoolOp, lhs: Box<Code>, rhs: Box<Code> },
    Arith { op: ArithOp, call: ExprRef, lhs: (Box<Code>, ExprRef), rhs: (Box<Code>, ExprRef) },
    SetOp { op: BinOp, lhs: (Box<Code>, ExprRef), rhs: (Box<Code>, ExprRef) },
    Member { key: Option<Box<Code>>, value: Box<Code>, collection: Box<Code> },
}

impl Program {
    /// Compile the rules the plan's slots need. `Err` names the first construct the program does not cover.
    pub(crate) fn build(
        modules: &[Ref<Module>],
        slots: &[Slot],
        data: &serde_json::Value,
        extensions: &[Extension],
    ) -> Result<Program, String> {
        let mut compiler = Compiler::new(modules, data, extensions)?;
        let mut outputs = Vec::with_capacity(slots.len());
        for slot in slots {
            let path = format!("{}.{}", slot.package, slot.rule);
            let id = compiler.rule_id(&path).ok_or_else(|| format!("{path} is not a rule"))?;
            outputs.push(id);
        }
        while let Some(id) = compiler.pending.pop() {
            let code = compiler.compile_rule(id)?;
            compiler.compiled[id] = Some(code);
        }
        // Every queued rule was compiled by the loop above.
        let rules =
            compiler.compiled.into_iter().collect::<Option<Vec<_>>>().ok_or("a rule was not compiled")?;
        let extensions = extensions.iter().map(|e| (e.name.clone(), e.function.clone())).collect();
        let mut program = Program {
            initial: vec![Memo::Unknown; rules.len()],
            rules,
            outputs,
            extensions,
            patterns: Patterns::default(),
            regexes: RwLock::new(HashMap::new()),
            empty_set: Value::new_set(),
            lean: Vec::new(),
        };
        program.lean = program.lean_rules(slots);
        program.initial = program.fold_constants();
        program.patterns = program.constant_patterns();
        Ok(program)
    }

    /// The regex patterns the rules name as constants, or as rules folded to constant strings, compiled. A
    /// pattern that does not compile is left out: its call goes to the interpreter, as any other would.
    fn constant_patterns(&self) -> Patterns {
        let mut codes: Vec<&Code> = Vec::new();
        for rule in &self.rules {
            rule.codes(&mut codes);
        }
        let mut patterns = Patterns::default();
        while let Some(code) = codes.pop() {
            let pattern = match code {
                Code::Builtin { op: Op::RegexMatch, args, .. } => args.first(),
                Code::Builtin { op: Op::RegexReplace, args, .. } => args.get(1),
                _ => None,
            };
            let pattern = match pattern {
                Some(Code::Const(Value::String(pattern))) => Some(pattern),
                Some(Code::Rule(id)) => match self.initial.get(*id) {
                    Some(Memo::Known(Value::String(pattern))) => Some(pattern),
                    _ => None,
                },
                _ => None,
            };
            if let Some(pattern) = pattern
                && !patterns.index.contains_key(pattern.as_ref())
                && let Ok(re) = regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build()
            {
                patterns.index.insert(pattern.to_string(), patterns.compiled.len());
                patterns.compiled.push(re);
            }
            children(code, &mut codes);
        }
        patterns
    }

    /// The memo with every constant rule evaluated. A rule is constant when nothing it reaches reads the
    /// input, calls an extension or a builtin whose value changes between calls (`time.now_ns`, `http.send`,
    /// ...). One that fails is left to be evaluated (and fail) per decision.
    fn fold_constants(&self) -> Vec<Memo> {
        let mut constant: Vec<Option<bool>> = vec![None; self.rules.len()];
        for id in 0..self.rules.len() {
            self.is_constant(id, &mut constant);
        }
        let undefined = Value::Undefined;
        let memo = vec![Memo::Unknown; self.rules.len()];
        let mut run = Run::new(self, &undefined, memo, Vec::new(), Duration::from_millis(100), false);
        let mut initial = vec![Memo::Unknown; self.rules.len()];
        for (id, is_constant) in constant.iter().enumerate() {
            if *is_constant == Some(true)
                && !matches!(self.rules[id].kind, Kind::Function(_))
                && let Ok(Ok(value)) = catch_unwind(AssertUnwindSafe(|| run.rule(id)))
            {
                initial[id] = Memo::Known(value);
            }
        }
        initial
    }

    fn is_constant(&self, id: RuleId, constant: &mut Vec<Option<bool>>) -> bool {
        if let Some(known) = constant[id] {
            return known;
        }
        // A cycle is not constant (and fails at run time anyway).
        constant[id] = Some(false);
        let rule = &self.rules[id];
        let mut codes: Vec<&Code> = Vec::new();
        rule.codes(&mut codes);
        let mut result = true;
        while let Some(code) = codes.pop() {
            match code {
                Code::Input | Code::Extension { .. } => result = false,
                Code::Builtin { name, .. } if !deterministic(name) => result = false,
                Code::Rule(other) | Code::Function { rule: other, .. }
                    if !self.is_constant(*other, constant) =>
                {
                    result = false
                }
                _ => {}
            }
            if !result {
                break;
            }
            children(code, &mut codes);
        }
        constant[id] = Some(result);
        result
    }

    /// The `log_*` outputs whose value a lean decision need not build: one definition, no iteration in its
    /// body (so at most one solution, and no conflict between solutions to detect), no default, and read by
    /// no rule except as a plain copy by another such rule (`log_x := data.pkg.log_x`). Any other reader
    /// would see the stand-in value, so any other reference rules the rule out (repeated until nothing
    /// changes: a rule ruled out is evaluated in full, and its copies would then hold the stand-in).
    fn lean_rules(&self, slots: &[Slot]) -> Vec<bool> {
        let mut lean = vec![false; self.rules.len()];
        for (slot, id) in slots.iter().zip(&self.outputs) {
            let rule = &self.rules[*id];
            lean[*id] = slot.rule.starts_with("log_")
                && rule.kind == Kind::Complete
                && rule.default.is_none()
                && matches!(&rule.defs[..], [def] if !def.query.iter().any(|s| matches!(s, Step::SomeIn { .. })));
        }
        let mut changed = true;
        while changed {
            changed = false;
            for (id, rule) in self.rules.iter().enumerate() {
                let mut codes: Vec<&Code> = Vec::new();
                rule.codes_but_copies(lean[id], &mut codes);
                while let Some(code) = codes.pop() {
                    if let Code::Rule(other) | Code::Function { rule: other, .. } = code
                        && lean[*other]
                    {
                        lean[*other] = false;
                        changed = true;
                    }
                    children(code, &mut codes);
                }
            }
        }
        lean
    }

    /// Whether the plan's output number `index` may be settled without its value ([`Program::lean_rules`]).
    #[cfg(test)]
    pub(crate) fn lean_output(&self, index: usize) -> bool {
        self.outputs.get(index).is_some_and(|id| self.lean[*id])
    }

    /// The value of every output rule (`Value::Undefined` when undefined), in the plan's order. A `lean`
    /// decision only reads whether each `log_*` output fired (defined, not `false` or `null`): those of
    /// [`Program::lean_rules`] may hold `true` instead of their value.
    pub(crate) fn evaluate(&self, input: &Value, budget: Duration, lean: bool) -> Result<Vec<Value>, Stop> {
        let (mut memo, spare) = SCRATCH.with(|scratch| scratch.take());
        memo.clone_from(&self.initial);
        let mut run = Run::new(self, input, memo, spare, budget, lean);
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.outputs.iter().map(|id| run.rule(*id)).collect::<Result<Vec<_>, Stop>>()
        }));
        let Run { mut memo, spare, .. } = run;
        memo.clear();
        SCRATCH.with(|scratch| *scratch.borrow_mut() = (memo, spare));
        result.unwrap_or(Err(Stop::Interpreter))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Compilation.

struct RuleSource {
    module: usize,
    rules: Vec<Ref<AstRule>>,
}

struct Compiler {
    /// Each module's package path (without `data.`) and import aliases (alias -> path from `data`/`input`).
    packages: Vec<String>,
    aliases: Vec<HashMap<String, Vec<String>>>,
    /// Full rule path (`a.b.rule`) -> its definitions.
    sources: HashMap<String, RuleSource>,
    ids: HashMap<String, RuleId>,
    paths: Vec<String>,
    compiled: Vec<Option<RuleCode>>,
    pending: Vec<RuleId>,
    data: Value,
    extensions: HashMap<String, usize>,
}

/// Variables of the body being compiled: name -> slot, scoped.
struct Scope {
    names: Vec<(String, Slotted)>,
    slots: usize,
}

impl Scope {
    fn lookup(&self, name: &str) -> Option<Slotted> {
        self.names.iter().rev().find(|(n, _)| n == name).map(|(_, s)| *s)
    }

    fn fresh(&mut self, name: &str) -> Result<Slotted, String> {
        let slot = Slotted::try_from(self.slots).map_err(|_| "too many variables".to_owned())?;
        self.slots += 1;
        self.names.push((name.to_owned(), slot));
        Ok(slot)
    }
}

impl Compiler {
    fn new(
        modules: &[Ref<Module>],
        data: &serde_json::Value,
        extensions: &[Extension],
    ) -> Result<Compiler, String> {
        let mut packages = Vec::new();
        let mut aliases = Vec::new();
        let mut sources: HashMap<String, RuleSource> = HashMap::new();
        for (index, module) in modules.iter().enumerate() {
            let mut package = path_of(&module.package.refr).ok_or("package path")?;
            if package.first().map(String::as_str) == Some("data") {
                package.remove(0);
            }
            let package = package.join(".");
            let mut module_aliases = HashMap::new();
            for import in &module.imports {
                let path = path_of(&import.refr).ok_or("import path")?;
                match path.first().map(String::as_str) {
                    Some("future" | "rego") => continue,
                    Some("data" | "input") => {}
                    _ => return Err(format!("import {}", path.join("."))),
                }
                let alias = match &import.r#as {
                    Some(span) => span.text().to_owned(),
                    None => path.last().cloned().unwrap_or_default(),
                };
                module_aliases.insert(alias, path);
            }
            for rule in &module.policy {
                let name = rule_name(rule)?;
                let entry = sources
                    .entry(format!("{package}.{name}"))
                    .or_insert_with(|| RuleSource { module: index, rules: Vec::new() });
                if entry.module != index && packages.get(entry.module) != Some(&package) {
                    return Err(format!("{package}.{name} defined in two packages"));
                }
                entry.rules.push(rule.clone());
            }
            packages.push(package);
            aliases.push(module_aliases);
        }
        Ok(Compiler {
            packages,
            aliases,
            sources,
            ids: HashMap::new(),
            paths: Vec::new(),
            compiled: Vec::new(),
            pending: Vec::new(),
            data: Value::from(data.clone()),
            extensions: extensions.iter().enumerate().map(|(i, e)| (e.name.clone(), i)).collect(),
        })
    }

    /// The id of a rule by full path, queueing it for compilation the first time.
    fn rule_id(&mut self, path: &str) -> Option<RuleId> {
        if let Some(id) = self.ids.get(path) {
            return Some(*id);
        }
        if !self.sources.contains_key(path) {
            return None;
        }
        let id = self.paths.len();
        self.ids.insert(path.to_owned(), id);
        self.paths.push(path.to_owned());
        self.compiled.push(None);
        self.pending.push(id);
        Some(id)
    }

    fn kind_of(&self, path: &str) -> Option<Kind> {
        let source = self.sources.get(path)?;
        kind(source.rules.first()?).ok()
    }

    fn compile_rule(&mut self, id: RuleId) -> Result<RuleCode, String> {
        let path = self.paths[id].clone();
        let source = self.sources.get(&path).ok_or("rule")?;
        let module = source.module;
        let rules = source.rules.clone();
        let kind = kind(rules.first().ok_or("rule")?)?;
        let mut defs = Vec::new();
        let mut default = None;
        for rule in &rules {
            if self::kind(rule)? != kind {
                return Err(format!("{path}: rules of different kinds"));
            }
            match rule.as_ref() {
                AstRule::Default { args, value, .. } => {
                    if !args.is_empty() || default.is_some() {
                        return Err(format!("{path}: default function"));
                    }
                    let mut scope = Scope { names: Vec::new(), slots: 0 };
                    default = Some(self.expr(module, &mut scope, value)?);
                }
                AstRule::Spec { head, bodies, .. } => {
                    if bodies.iter().any(|b| b.is_else || b.assign.is_some()) {
                        return Err(format!("{path}: else"));
                    }
                    let bodies: Vec<Option<&Ref<Query>>> = if bodies.is_empty() {
                        vec![None]
                    } else {
                        bodies.iter().map(|b| Some(&b.query)).collect()
                    };
                    for query in bodies {
                        defs.push(self.definition(module, head, query)?);
                    }
                }
            }
        }
        let constant = |def: &Def| match &def.value {
            None => Some(Value::Bool(true)),
            Some(Code::Const(v)) => Some(v.clone()),
            Some(_) => None,
        };
        let first = defs.first().and_then(constant);
        let uniform = kind == Kind::Complete && first.is_some() && defs.iter().all(|d| constant(d) == first);
        Ok(RuleCode { kind, defs, default, uniform })
    }

    fn definition(
        &mut self,
        module: usize,
        head: &RuleHead,
        query: Option<&Ref<Query>>,
    ) -> Result<Def, String> {
        let mut scope = Scope { names: Vec::new(), slots: 0 };
        let mut params = Vec::new();
        if let RuleHead::Func { args, .. } = head {
            for arg in args {
                match arg.as_ref() {
                    Expr::Var { span, .. } if span.text() == "_" => params.push(None),
                    Expr::Var { span, .. } => params.push(Some(scope.fresh(span.text())?)),
                    _ => return Err("function argument pattern".to_owned()),
                }
            }
        }
        let steps = match query {
            Some(query) => self.query(module, &mut scope, query)?,
            None => Vec::new(),
        };
        let value = match head {
            RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => match assign {
                Some(assign) => Some(self.expr(module, &mut scope, &assign.value)?),
                None => None,
            },
            RuleHead::Set { key: Some(key), .. } => Some(self.expr(module, &mut scope, key)?),
            RuleHead::Set { refr, key: None, .. } => match refr.as_ref() {
                Expr::RefBrack { index, .. } => Some(self.expr(module, &mut scope, index)?),
                _ => return Err("set rule without element".to_owned()),
            },
        };
        Ok(Def { params, query: steps, value, slots: scope.slots })
    }

    fn query(&mut self, module: usize, scope: &mut Scope, query: &Ref<Query>) -> Result<Vec<Step>, String> {
        query.stmts.iter().map(|stmt| self.step(module, scope, stmt)).collect()
    }

    fn step(&mut self, module: usize, scope: &mut Scope, stmt: &LiteralStmt) -> Result<Step, String> {
        if !stmt.with_mods.is_empty() {
            return Err("with".to_owned());
        }
        match &stmt.literal {
            Literal::Expr { expr, .. } => match expr.as_ref() {
                Expr::AssignExpr { op, lhs, rhs, .. } => self.assign(module, scope, op, lhs, rhs),
                _ => Ok(Step::Test(self.expr(module, scope, expr)?)),
            },
            Literal::NotExpr { expr, .. } => Ok(Step::Not(self.expr(module, scope, expr)?)),
            Literal::SomeIn { key, value, collection, .. } => {
                let collection = self.expr(module, scope, collection)?;
                let key = match key {
                    Some(key) => fresh_var(scope, key)?,
                    None => None,
                };
                let value = fresh_var(scope, value)?;
                Ok(Step::SomeIn { key, value, collection })
            }
            Literal::SomeVars { .. } => Err("some without in".to_owned()),
            Literal::Every { .. } => Err("every".to_owned()),
        }
    }

    fn assign(
        &mut self,
        module: usize,
        scope: &mut Scope,
        op: &AssignOp,
        lhs: &ExprRef,
        rhs: &ExprRef,
    ) -> Result<Step, String> {
        let Expr::Var { span, .. } = lhs.as_ref() else {
            return match op {
                AssignOp::ColEq => Err("destructuring".to_owned()),
                AssignOp::Eq => self.unify(module, scope, lhs, rhs),
            };
        };
        let name = span.text();
        if name == "_" {
            return Err("assignment to _".to_owned());
        }
        match op {
            AssignOp::ColEq => {
                let value = self.expr(module, scope, rhs)?;
                Ok(Step::Bind(scope.fresh(name)?, value))
            }
            AssignOp::Eq if self.is_free(module, scope, name) => {
                let value = self.expr(module, scope, rhs)?;
                Ok(Step::Bind(scope.fresh(name)?, value))
            }
            AssignOp::Eq => self.unify(module, scope, lhs, rhs),
        }
    }

    /// `a = b` with `a` not a free variable: a free `b` is bound, otherwise both sides are compared.
    fn unify(
        &mut self,
        module: usize,
        scope: &mut Scope,
        lhs: &ExprRef,
        rhs: &ExprRef,
    ) -> Result<Step, String> {
        if let Expr::Var { span, .. } = rhs.as_ref()
            && span.text() != "_"
            && self.is_free(module, scope, span.text())
        {
            let value = self.expr(module, scope, lhs)?;
            return Ok(Step::Bind(scope.fresh(span.text())?, value));
        }
        let lhs = self.expr(module, scope, lhs)?;
        let rhs = self.expr(module, scope, rhs)?;
        Ok(Step::Test(Code::Compare { op: BoolOp::Eq, lhs: Box::new(lhs), rhs: Box::new(rhs) }))
    }

    /// A name that is not a variable, rule, import or root document here.
    fn is_free(&self, module: usize, scope: &Scope, name: &str) -> bool {
        scope.lookup(name).is_none()
            && !matches!(name, "input" | "data")
            && !self.aliases[module].contains_key(name)
            && !self.sources.contains_key(&format!("{}.{name}", self.packages[module]))
    }

    fn exprs(&mut self, module: usize, scope: &mut Scope, items: &[ExprRef]) -> Result<Vec<Code>, String> {
        items.iter().map(|item| self.expr(module, scope, item)).collect()
    }

    fn boxed(&mut self, module: usize, scope: &mut Scope, expr: &ExprRef) -> Result<Box<Code>, String> {
        Ok(Box::new(self.expr(module, scope, expr)?))
    }

    fn expr(&mut self, module: usize, scope: &mut Scope, expr: &ExprRef) -> Result<Code, String> {
        Ok(match expr.as_ref() {
            Expr::String { value, .. }
            | Expr::RawString { value, .. }
            | Expr::Number { value, .. }
            | Expr::Bool { value, .. }
            | Expr::Null { value, .. } => Code::Const(value.clone()),
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                self.reference(module, scope, expr)?
            }
            // Literals of constants are built once, here (e.g. the path in `object.get(input, ["a", "b"], x)`).
            Expr::Array { items, .. } => {
                let items = self.exprs(module, scope, items)?;
                match constants(&items) {
                    Some(values) => Code::Const(Value::from(values)),
                    None => Code::Array(items),
                }
            }
            Expr::Set { items, .. } => {
                let items = self.exprs(module, scope, items)?;
                match constants(&items) {
                    Some(values) => Code::Const(Value::from(values.into_iter().collect::<BTreeSet<_>>())),
                    None => Code::Set(items),
                }
            }
            Expr::Object { fields, .. } => {
                let mut out = Vec::with_capacity(fields.len());
                for (_, key, value) in fields {
                    out.push((self.expr(module, scope, key)?, self.expr(module, scope, value)?));
                }
                Code::Object(out)
            }
            Expr::ArrayCompr { term, query, .. } => {
                let (query, term) =
                    self.comprehension(module, scope, query, |c, scope| c.boxed(module, scope, term))?;
                Code::ArrayCompr { term, query }
            }
            Expr::SetCompr { term, query, .. } => {
                let (query, term) =
                    self.comprehension(module, scope, query, |c, scope| c.boxed(module, scope, term))?;
                Code::SetCompr { term, query }
            }
            Expr::ObjectCompr { key, value, query, .. } => {
                let (query, (key, value)) = self.comprehension(module, scope, query, |c, scope| {
                    Ok((c.boxed(module, scope, key)?, c.boxed(module, scope, value)?))
                })?;
                Code::ObjectCompr { key, value, query }
            }
            Expr::Call { fcn, params, .. } => self.call(module, scope, expr, fcn, params)?,
            Expr::UnaryExpr { expr: inner, .. } => match inner.as_ref() {
                Expr::Number { .. } if !inner.span().text().starts_with('-') => Code::Arith {
                    op: ArithOp::Sub,
                    call: expr.clone(),
                    lhs: (Box::new(Code::Const(Value::from(0))), expr.clone()),
                    rhs: (self.boxed(module, scope, inner)?, inner.clone()),
                },
                _ => return Err("unary minus".to_owned()),
            },
            Expr::BinExpr { op, lhs, rhs, .. } => Code::SetOp {
                op: op.clone(),
                lhs: (self.boxed(module, scope, lhs)?, lhs.clone()),
                rhs: (self.boxed(module, scope, rhs)?, rhs.clone()),
            },
            Expr::BoolExpr { op, lhs, rhs, .. } => Code::Compare {
                op: op.clone(),
                lhs: self.boxed(module, scope, lhs)?,
                rhs: self.boxed(module, scope, rhs)?,
            },
            Expr::ArithExpr { op, lhs, rhs, .. } => Code::Arith {
                op: op.clone(),
                call: expr.clone(),
                lhs: (self.boxed(module, scope, lhs)?, lhs.clone()),
                rhs: (self.boxed(module, scope, rhs)?, rhs.clone()),
            },
            Expr::AssignExpr { .. } => return Err("assignment inside an expression".to_owned()),
            Expr::Membership { key, value, collection, .. } => Code::Member {
                key: match key {
                    Some(key) => Some(self.boxed(module, scope, key)?),
                    None => None,
                },
                value: self.boxed(module, scope, value)?,
                collection: self.boxed(module, scope, collection)?,
            },
            // Variants behind regorus features this crate does not enable (`OrExpr`).
            #[allow(unreachable_patterns)]
            _ => return Err("expression".to_owned()),
        })
    }

    /// A comprehension's query, then its terms (`build`), compiled in a scope of their own: the variables the
    /// query binds are not visible after it.
    fn comprehension<T>(
        &mut self,
        module: usize,
        scope: &mut Scope,
        query: &Ref<Query>,
        build: impl FnOnce(&mut Self, &mut Scope) -> Result<T, String>,
    ) -> Result<(Vec<Step>, T), String> {
        let mark = scope.names.len();
        let query = self.query(module, scope, query)?;
        let terms = build(self, scope)?;
        scope.names.truncate(mark);
        Ok((query, terms))
    }

    fn call(
        &mut self,
        module: usize,
        scope: &mut Scope,
        expr: &ExprRef,
        fcn: &ExprRef,
        params: &[ExprRef],
    ) -> Result<Code, String> {
        let mut name = path_of(fcn).ok_or("function name")?;
        if let Some(target) = name.first().and_then(|first| self.aliases[module].get(first)) {
            let mut full = target.clone();
            full.extend(name.drain(1..));
            name = full;
        }
        let dotted = name.join(".");
        let args = self.exprs(module, scope, params)?;
        let local = format!("{}.{dotted}", self.packages[module]);
        let absolute = dotted.strip_prefix("data.").map(str::to_owned);
        for path in [Some(local), absolute].into_iter().flatten() {
            if let Some(Kind::Function(arity)) = self.kind_of(&path) {
                if arity != args.len() {
                    return Err(format!("{path}: wrong number of arguments"));
                }
                let rule = self.rule_id(&path).ok_or("function")?;
                return Ok(Code::Function { rule, args });
            }
            if self.sources.contains_key(&path) {
                return Err(format!("{path} called but not a function"));
            }
        }
        if INTERPRETER_ONLY.contains(&dotted.as_str()) {
            return Err(format!("builtin {dotted}"));
        }
        if let Some((name, fcn)) = BUILTINS.get_key_value(dotted.as_str()) {
            if usize::from(fcn.1) != args.len() {
                return Err(format!("{dotted}: wrong number of arguments"));
            }
            let (op, call, params) = (Op::of(name), expr.clone(), params.to_vec());
            return Ok(Code::Builtin { name, op, fcn: *fcn, call, params, args });
        }
        if let Some((_, arity, function)) = crate::redact::BUILTINS.iter().find(|(name, ..)| *name == dotted)
        {
            if usize::from(*arity) != args.len() {
                return Err(format!("{dotted}: wrong number of arguments"));
            }
            return Ok(Code::Native { function: *function, args });
        }
        if let Some(index) = self.extensions.get(&dotted) {
            return Ok(Code::Extension { index: *index, args });
        }
        Err(format!("unknown function {dotted}"))
    }

    /// A variable or a reference chain (`a.b[c]`).
    fn reference(&mut self, module: usize, scope: &mut Scope, expr: &ExprRef) -> Result<Code, String> {
        // Unwind the chain to its root variable, keeping the index expressions in order.
        let mut indices: Vec<&ExprRef> = Vec::new();
        let mut fields: Vec<Option<Value>> = Vec::new();
        let mut node = expr;
        let root = loop {
            match node.as_ref() {
                Expr::RefDot { refr, field, .. } => {
                    fields.push(Some(field.1.clone()));
                    indices.push(node);
                    node = refr;
                }
                Expr::RefBrack { refr, index, .. } => {
                    fields.push(constant(index));
                    indices.push(index);
                    node = refr;
                }
                Expr::Var { span, .. } => break span.text().to_owned(),
                _ => return Err("reference root".to_owned()),
            }
        };
        indices.reverse();
        fields.reverse();
        let mut components: Vec<Component> = indices
            .into_iter()
            .zip(fields)
            .map(|(index, field)| match field {
                Some(value) => Component::Const(value),
                None => Component::Dynamic(index.clone()),
            })
            .collect();
        if root == "_" {
            return Err("wildcard".to_owned());
        }
        let (base, data_root) = if let Some(slot) = scope.lookup(&root) {
            (Code::Var(slot), false)
        } else if let Some(id) = self.package_rule(module, &root)? {
            (Code::Rule(id), false)
        } else {
            let mut path: Vec<Component> = match self.aliases[module].get(&root) {
                Some(target) => target.iter().map(|c| Component::Const(Value::from(c.as_str()))).collect(),
                None => vec![Component::Const(Value::from(root.as_str()))],
            };
            path.append(&mut components);
            let head = match path.first() {
                Some(Component::Const(Value::String(s))) => s.to_string(),
                _ => return Err("reference root".to_owned()),
            };
            components = path.split_off(1);
            match head.as_str() {
                "input" => (Code::Input, false),
                "data" => {
                    let (base, rest) = self.data_reference(&components)?;
                    components = rest;
                    (base, true)
                }
                _ => return Err(format!("unbound variable {root}")),
            }
        };
        let mut code = base;
        for component in components {
            let index = match component {
                Component::Const(Value::String(key)) => {
                    Code::Const(crate::input::shared_key(&key).unwrap_or(Value::String(key)))
                }
                Component::Const(value) => Code::Const(value),
                Component::Dynamic(expr) => self.expr(module, scope, &expr)?,
            };
            code = Code::Index { base: Box::new(code), index: Box::new(index), data: data_root };
        }
        Ok(code)
    }

    /// A rule of this module's package named `name`, as a value (functions are not values).
    fn package_rule(&mut self, module: usize, name: &str) -> Result<Option<RuleId>, String> {
        let path = format!("{}.{name}", self.packages[module]);
        match self.kind_of(&path) {
            None => Ok(None),
            Some(Kind::Function(_)) => Err(format!("function {path} used as a value")),
            Some(_) => Ok(self.rule_id(&path)),
        }
    }

    /// `data.<components>`: the longest constant prefix naming a rule, or a constant part of the base data
    /// document. Returns the base and the components left to index.
    fn data_reference(&mut self, components: &[Component]) -> Result<(Code, Vec<Component>), String> {
        let mut prefix: Vec<String> = Vec::new();
        for component in components {
            match component {
                Component::Const(Value::String(s)) => prefix.push(s.to_string()),
                _ => break,
            }
        }
        for len in (1..=prefix.len()).rev() {
            let path = prefix[..len].join(".");
            match self.kind_of(&path) {
                Some(Kind::Function(_)) => return Err(format!("function {path} used as a value")),
                Some(_) => {
                    let id = self.rule_id(&path).ok_or("rule")?;
                    return Ok((Code::Rule(id), components[len..].to_vec()));
                }
                None => {}
            }
        }
        // No rule on the way: the reference must not reach into, above or beside rules, only into base data.
        let whole = prefix.join(".");
        let touches = |path: &String| {
            *path == whole || path.starts_with(&format!("{whole}.")) || whole.starts_with(&format!("{path}."))
        };
        if prefix.is_empty() || self.sources.keys().any(touches) || self.packages.iter().any(touches) {
            return Err(format!("reference to data.{whole} is not a rule or base data"));
        }
        let mut value = self.data.clone();
        for part in &prefix {
            value = value[&Value::from(part.as_str())].clone();
        }
        Ok((Code::Const(value), components[prefix.len()..].to_vec()))
    }
}

#[derive(Clone)]
enum Component {
    Const(Value),
    Dynamic(ExprRef),
}

fn fresh_var(scope: &mut Scope, expr: &ExprRef) -> Result<Option<Slotted>, String> {
    match expr.as_ref() {
        Expr::Var { span, .. } if span.text() == "_" => Ok(None),
        Expr::Var { span, .. } => Ok(Some(scope.fresh(span.text())?)),
        _ => Err("some ... in with a pattern".to_owned()),
    }
}

fn constant(expr: &ExprRef) -> Option<Value> {
    match expr.as_ref() {
        Expr::String { value, .. } | Expr::RawString { value, .. } | Expr::Number { value, .. } => {
            Some(value.clone())
        }
        _ => None,
    }
}

/// `a.b.c` as its names, for package paths, imports and function names.
fn path_of(expr: &ExprRef) -> Option<Vec<String>> {
    match expr.as_ref() {
        Expr::Var { span, .. } => Some(vec![span.text().to_owned()]),
        Expr::RefDot { refr, field, .. } => {
            let mut path = path_of(refr)?;
            path.push(field.1.as_string().ok()?.to_string());
            Some(path)
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut path = path_of(refr)?;
            path.push(constant(index)?.as_string().ok()?.to_string());
            Some(path)
        }
        _ => None,
    }
}

fn rule_name(rule: &Ref<AstRule>) -> Result<String, String> {
    let refr = match rule.as_ref() {
        AstRule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } | RuleHead::Func { refr, .. } => refr,
            RuleHead::Set { refr, key: Some(_), .. } => refr,
            RuleHead::Set { refr, key: None, .. } => match refr.as_ref() {
                Expr::RefBrack { refr, .. } => refr,
                _ => refr,
            },
        },
        AstRule::Default { refr, .. } => refr,
    };
    match refr.as_ref() {
        Expr::Var { span, .. } => Ok(span.text().to_owned()),
        // Rule names with dots (`a.b := 1`) or brackets in the head: the program does not cover them.
        other => Ok(format!("<{}>", other.span().text())),
    }
}

fn kind(rule: &Ref<AstRule>) -> Result<Kind, String> {
    match rule.as_ref() {
        AstRule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } => match refr.as_ref() {
                Expr::Var { .. } => Ok(Kind::Complete),
                _ => Err("partial object or dotted rule head".to_owned()),
            },
            RuleHead::Set { refr, key, .. } => match (refr.as_ref(), key) {
                (Expr::Var { .. }, Some(_)) => Ok(Kind::Set),
                (Expr::RefBrack { refr, .. }, None) if matches!(refr.as_ref(), Expr::Var { .. }) => {
                    Ok(Kind::Set)
                }
                _ => Err("set rule head".to_owned()),
            },
            RuleHead::Func { refr, args, .. } => match refr.as_ref() {
                Expr::Var { .. } => Ok(Kind::Function(args.len())),
                _ => Err("dotted function name".to_owned()),
            },
        },
        AstRule::Default { args, .. } if args.is_empty() => Ok(Kind::Complete),
        AstRule::Default { args, .. } => Ok(Kind::Function(args.len())),
    }
}

/// Builtins whose value depends only on their arguments.
fn deterministic(name: &str) -> bool {
    must_cache(name).is_none()
        && !["http.", "net.lookup", "rand.", "uuid.", "time.now", "opa.", "crypto.x509", "io."]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

fn steps_codes<'c>(steps: &'c [Step], out: &mut Vec<&'c Code>) {
    for step in steps {
        match step {
            Step::Test(code) | Step::Not(code) | Step::Bind(_, code) => out.push(code),
            Step::SomeIn { collection, .. } => out.push(collection),
        }
    }
}

/// The codes directly inside `code`.
fn children<'c>(code: &'c Code, out: &mut Vec<&'c Code>) {
    match code {
        Code::Const(_) | Code::Var(_) | Code::Input | Code::Rule(_) => {}
        Code::Index { base, index, .. } => out.extend([&**base, &**index]),
        Code::Array(items) | Code::Set(items) => out.extend(items.iter()),
        Code::Object(fields) => out.extend(fields.iter().flat_map(|(k, v)| [k, v])),
        Code::ArrayCompr { term, query } | Code::SetCompr { term, query } => {
            out.push(term);
            steps_codes(query, out);
        }
        Code::ObjectCompr { key, value, query } => {
            out.extend([&**key, &**value]);
            steps_codes(query, out);
        }
        Code::Builtin { args, .. }
        | Code::Extension { args, .. }
        | Code::Native { args, .. }
        | Code::Function { args, .. } => out.extend(args.iter()),
        Code::Compare { lhs, rhs, .. } => out.extend([&**lhs, &**rhs]),
        Code::Arith { lhs, rhs, .. } | Code::SetOp { lhs, rhs, .. } => out.extend([&*lhs.0, &*rhs.0]),
        Code::Member { key, value, collection } => {
            out.extend(key.iter().map(|k| &**k));
            out.extend([&**value, &**collection]);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation.

#[derive(Clone)]
enum Memo {
    Unknown,
    Running,
    Known(Value),
}

/// One decision's state.
struct Run<'p> {
    program: &'p Program,
    input: &'p Value,
    memo: Vec<Memo>,
    /// Builtins that must return the same value throughout a decision (`time.now_ns`).
    cached: Vec<(&'static str, Args, Value)>,
    /// The last `lower` call's argument and result: policies lower the same `input.query` in several rules
    /// (three times in the default bundle), a copy of the whole text each time.
    lowered: Option<(Value, Value)>,
    deadline: Instant,
    ticks: u32,
    /// Emptied frames, kept for the next rule body (and, through [`SCRATCH`], the next decision).
    spare: Vec<Vec<Value>>,
    /// Whether the decision reads only whether its `log_*` outputs fired (see [`Program::evaluate`]).
    lean: bool,
}

std::thread_local! {
    /// Each thread's buffers from its last decision: the memo and the frames, reused so a decision allocates
    /// neither (a `Value` is `Send`; nothing of a decision survives in them but empty capacity).
    static SCRATCH: std::cell::RefCell<(Vec<Memo>, Vec<Vec<Value>>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether to look for more solutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    More,
    Done,
}

type Solutions<'a, 'p> = dyn FnMut(&mut Run<'p>, &mut [Value]) -> Result<Flow, Stop> + 'a;

impl<'p> Run<'p> {
    /// A decision on `input` that must end within `budget` from now.
    fn new(
        program: &'p Program,
        input: &'p Value,
        memo: Vec<Memo>,
        spare: Vec<Vec<Value>>,
        budget: Duration,
        lean: bool,
    ) -> Run<'p> {
        let started = Instant::now();
        let deadline = started.checked_add(budget).unwrap_or(started);
        Run { program, input, memo, cached: Vec::new(), lowered: None, deadline, ticks: 0, spare, lean }
    }

    fn tick(&mut self) -> Result<(), Stop> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(CLOCK_EVERY) && Instant::now() > self.deadline {
            return Err(Stop::Timeout);
        }
        Ok(())
    }

    fn rule(&mut self, id: RuleId) -> Result<Value, Stop> {
        self.ensure(id)?;
        match &self.memo[id] {
            Memo::Known(value) => Ok(value.clone()),
            _ => Err(Stop::Interpreter),
        }
    }

    /// Evaluate rule `id` into the memo unless it is there.
    fn ensure(&mut self, id: RuleId) -> Result<(), Stop> {
        match &self.memo[id] {
            Memo::Known(_) => return Ok(()),
            Memo::Running => return Err(Stop::Interpreter),
            Memo::Unknown => {}
        }
        self.memo[id] = Memo::Running;
        let program = self.program;
        let rule = &program.rules[id];
        let value = match rule.kind {
            Kind::Complete if self.lean && program.lean[id] => self.fires(rule)?,
            Kind::Complete => self.complete(rule)?,
            Kind::Set => self.set(rule)?,
            Kind::Function(_) => return Err(Stop::Interpreter),
        };
        self.memo[id] = Memo::Known(value);
        Ok(())
    }

    /// Evaluate the rule at the root of a reference chain, so that [`Run::borrowed`] can follow it.
    fn prime(&mut self, code: &Code) -> Result<(), Stop> {
        let mut node = code;
        loop {
            match node {
                Code::Index { base, .. } => node = base,
                Code::Rule(id) => return self.ensure(*id),
                _ => return Ok(()),
            }
        }
    }

    /// Whether `code` holds (defined and not `false`), comparing and following references without cloning
    /// where it can.
    fn holds(&mut self, code: &'p Code, frame: &mut [Value]) -> Result<bool, Stop> {
        let defined = |value: &Value| !matches!(value, Value::Undefined | Value::Bool(false));
        match code {
            Code::Compare { op, lhs, rhs } => {
                self.prime(lhs)?;
                self.prime(rhs)?;
                if let (Some(l), Some(r)) = (self.borrowed(lhs, frame), self.borrowed(rhs, frame)) {
                    if undefined(l) || undefined(r) {
                        return Ok(false);
                    }
                    let value =
                        regorus::unstable::comparison::compare(op, l, r).map_err(|_| Stop::Interpreter)?;
                    return Ok(defined(&value));
                }
            }
            _ => {
                self.prime(code)?;
                if let Some(value) = self.borrowed(code, frame) {
                    return Ok(defined(value));
                }
            }
        }
        Ok(defined(&self.eval(code, frame)?))
    }

    fn complete(&mut self, rule: &'p RuleCode) -> Result<Value, Stop> {
        let mut result: Option<Value> = None;
        for def in &rule.defs {
            let mut frame = self.frame(def.slots);
            let solved = self.run(&def.query, &mut frame, &mut |run, frame| {
                let value = match &def.value {
                    Some(code) => run.eval(code, frame)?,
                    None => Value::Bool(true),
                };
                agree(&mut result, value, rule.uniform)
            });
            self.release(frame);
            solved?;
            if rule.uniform && result.is_some() {
                break;
            }
        }
        match (result, &rule.default) {
            (Some(value), _) => Ok(value),
            (None, Some(default)) => self.eval(default, &mut []),
            (None, None) => Ok(Value::Undefined),
        }
    }

    /// A lean rule (see [`Program::lean_rules`]) for a decision that reads only whether it fired: `true` when
    /// its value would be an object, array or set made only of parts that are defined and cannot fail
    /// ([`Run::safe`]): such a value is defined and is neither `false` nor `null`. Otherwise the value itself,
    /// evaluated in full. The body always runs in full, and a value that is bound by the body's last step
    /// (`log_x := m if { ...; m := {...} }`) is judged the same way as a value in the head.
    fn fires(&mut self, rule: &'p RuleCode) -> Result<Value, Stop> {
        let [def] = &rule.defs[..] else { return self.complete(rule) };
        let (steps, value) = match (def.query.split_last(), &def.value) {
            (Some((Step::Bind(slot, code), rest)), Some(Code::Var(var))) if var == slot => (rest, code),
            (_, Some(code)) => (&def.query[..], code),
            (_, None) => return self.complete(rule),
        };
        let mut frame = self.frame(def.slots);
        let mut result = Value::Undefined;
        let solved = self.run(steps, &mut frame, &mut |run, frame| {
            result = if run.built_of_safe_parts(value, frame)? {
                Value::Bool(true)
            } else {
                run.eval(value, frame)?
            };
            Ok(Flow::Done)
        });
        self.release(frame);
        solved?;
        Ok(result)
    }

    /// Whether `code` is an object, array or set literal, or an array or set comprehension, that [`Run::safe`]
    /// finds certain to evaluate without an error.
    fn built_of_safe_parts(&mut self, code: &'p Code, frame: &[Value]) -> Result<bool, Stop> {
        match code {
            Code::Object(fields) => {
                for (key, value) in fields {
                    if !self.safe(key, frame)? || !self.safe(value, frame)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Code::Array(items) | Code::Set(items) => {
                for item in items {
                    if !self.safe(item, frame)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Code::ArrayCompr { term, query } | Code::SetCompr { term, query } => {
                // `[t | some k, v in c]` over a collection, `t` a variable of the loop or one of them indexed
                // by a constant: an index that does not apply is undefined, which only leaves the element out.
                let [Step::SomeIn { key, value, collection }] = &query[..] else { return Ok(false) };
                let bound = |slot: &Slotted| Some(*slot) == *key || Some(*slot) == *value;
                let term_safe = match &**term {
                    Code::Var(slot) => bound(slot),
                    Code::Index { base, index, data: false } => {
                        matches!((&**base, &**index), (Code::Var(slot), Code::Const(_)) if bound(slot))
                    }
                    _ => false,
                };
                Ok(term_safe
                    && self.safe(collection, frame)?
                    && matches!(
                        self.borrowed(collection, frame),
                        Some(Value::Array(_) | Value::Set(_) | Value::Object(_))
                    ))
            }
            _ => Ok(false),
        }
    }

    /// Whether evaluating `code` now is certain to give a defined value without an error, judged without
    /// evaluating it, except for evaluating the rules it reads (as evaluating it would). `false` when unsure.
    fn safe(&mut self, code: &'p Code, frame: &[Value]) -> Result<bool, Stop> {
        Ok(match code {
            Code::Const(value) => !undefined(value),
            Code::Var(slot) => frame.get(usize::from(*slot)).is_some_and(|value| !undefined(value)),
            Code::Input => !undefined(self.input),
            Code::Rule(id) => {
                self.ensure(*id)?;
                matches!(&self.memo[*id], Memo::Known(value) if !undefined(value))
            }
            // A chain of constant indices (`input.context.user_id`), followed without evaluating anything.
            Code::Index { .. } => {
                self.prime(code)?;
                self.borrowed(code, frame).is_some_and(|value| !undefined(value))
            }
            Code::Object(_)
            | Code::Array(_)
            | Code::Set(_)
            | Code::ArrayCompr { .. }
            | Code::SetCompr { .. } => self.built_of_safe_parts(code, frame)?,
            // `object.get` of an object, with any key or path and default (see `native`).
            Code::Builtin { op: Op::ObjectGet, args, .. } => match &args[..] {
                [object, key, default] => {
                    self.safe(object, frame)?
                        && matches!(self.borrowed(object, frame), Some(Value::Object(_)))
                        && self.safe(key, frame)?
                        && self.safe(default, frame)?
                }
                _ => false,
            },
            Code::Builtin { op: Op::Count, args, .. } => match &args[..] {
                [collection] => {
                    self.safe(collection, frame)?
                        && matches!(
                            self.borrowed(collection, frame),
                            Some(Value::Array(_) | Value::Set(_) | Value::Object(_) | Value::String(_))
                        )
                }
                _ => false,
            },
            Code::Builtin { name: "time.now_ns", args, .. } => args.is_empty(),
            _ => false,
        })
    }

    fn set(&mut self, rule: &'p RuleCode) -> Result<Value, Stop> {
        // Most partial sets of a decision stay empty (deny and warn rules that did not fire): they share one
        // empty set instead of allocating each.
        let mut set = self.program.empty_set.clone();
        for def in &rule.defs {
            let mut frame = self.frame(def.slots);
            let solved = self.run(&def.query, &mut frame, &mut |run, frame| {
                let element = match &def.value {
                    Some(code) => run.eval(code, frame)?,
                    None => Value::Bool(true),
                };
                if !undefined(&element) {
                    set.as_set_mut().map_err(|_| Stop::Interpreter)?.insert(element);
                }
                Ok(Flow::More)
            });
            self.release(frame);
            solved?;
        }
        Ok(set)
    }

    /// A frame of `slots` undefined values, from the spare ones when there is one.
    fn frame(&mut self, slots: usize) -> Vec<Value> {
        // Bodies without variables (about half of the default bundle's) need no buffer.
        if slots == 0 {
            return Vec::new();
        }
        let mut frame = self.spare.pop().unwrap_or_default();
        frame.resize(slots, Value::Undefined);
        frame
    }

    fn release(&mut self, mut frame: Vec<Value>) {
        if frame.capacity() == 0 {
            return;
        }
        frame.clear();
        self.spare.push(frame);
    }

    fn function(&mut self, id: RuleId, args: &[Value]) -> Result<Value, Stop> {
        let program = self.program;
        let rule = &program.rules[id];
        if args.iter().any(undefined) {
            return Ok(Value::Undefined);
        }
        let mut result: Option<Value> = None;
        for def in &rule.defs {
            let mut frame = self.frame(def.slots);
            for (param, arg) in def.params.iter().zip(args) {
                if let Some(slot) = param {
                    frame[usize::from(*slot)] = arg.clone();
                }
            }
            let mut found: Option<Value> = None;
            let solved = self.run(&def.query, &mut frame, &mut |run, frame| {
                let value = match &def.value {
                    Some(code) => run.eval(code, frame)?,
                    None => Value::Bool(true),
                };
                agree(&mut found, value, false)
            });
            self.release(frame);
            solved?;
            if let Some(value) = found {
                agree(&mut result, value, false)?;
            }
        }
        Ok(result.unwrap_or(Value::Undefined))
    }

    /// Run `steps` from the start, calling `solution` with the frame of every way they all hold.
    fn run(
        &mut self,
        steps: &'p [Step],
        frame: &mut [Value],
        solution: &mut Solutions<'_, 'p>,
    ) -> Result<Flow, Stop> {
        let Some((step, rest)) = steps.split_first() else {
            return solution(self, frame);
        };
        self.tick()?;
        match step {
            Step::Test(code) => {
                if !self.holds(code, frame)? {
                    return Ok(Flow::More);
                }
                self.run(rest, frame, solution)
            }
            Step::Not(code) => {
                if self.holds(code, frame)? {
                    return Ok(Flow::More);
                }
                self.run(rest, frame, solution)
            }
            Step::Bind(slot, code) => {
                let value = self.eval(code, frame)?;
                if undefined(&value) {
                    return Ok(Flow::More);
                }
                frame[usize::from(*slot)] = value;
                self.run(rest, frame, solution)
            }
            Step::SomeIn { key, value, collection } => {
                let collection = self.eval(collection, frame)?;
                let mut visit = |run: &mut Run<'p>, frame: &mut [Value], k: Value, v: &Value| {
                    if let Some(slot) = key {
                        frame[usize::from(*slot)] = k;
                    }
                    if let Some(slot) = value {
                        frame[usize::from(*slot)] = v.clone();
                    }
                    run.run(rest, frame, solution)
                };
                match &collection {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if visit(self, frame, Value::from(i), item)? == Flow::Done {
                                return Ok(Flow::Done);
                            }
                        }
                    }
                    Value::Set(items) => {
                        for item in items.iter() {
                            if visit(self, frame, item.clone(), item)? == Flow::Done {
                                return Ok(Flow::Done);
                            }
                        }
                    }
                    Value::Object(items) => {
                        for (k, item) in items.iter() {
                            if visit(self, frame, k.clone(), item)? == Flow::Done {
                                return Ok(Flow::Done);
                            }
                        }
                    }
                    Value::Undefined => {}
                    // The interpreter's error: `some .. in collection` expects array/set/object.
                    _ => return Err(Stop::Interpreter),
                }
                Ok(Flow::More)
            }
        }
    }

    fn eval(&mut self, code: &'p Code, frame: &mut [Value]) -> Result<Value, Stop> {
        Ok(match code {
            Code::Const(value) => value.clone(),
            Code::Var(slot) => frame[usize::from(*slot)].clone(),
            Code::Input => self.input.clone(),
            Code::Rule(id) => self.rule(*id)?,
            Code::Index { base, index, data } => {
                // A chain of constant indices on the input, a variable, a constant or a known rule: walk it by
                // reference and clone the end only (each clone and drop is an atomic reference count).
                self.prime(code)?;
                if let Some(value) = self.borrowed(code, frame) {
                    return Ok(value.clone());
                }
                let index = self.eval(index, frame)?;
                // The base borrowed when it can be (a rule's table indexed by a variable), cloned otherwise.
                self.prime(base)?;
                let owned;
                let base = match self.borrowed(base, frame) {
                    Some(base) => base,
                    None => {
                        owned = self.eval(base, frame)?;
                        &owned
                    }
                };
                let value = field(base, &index).clone();
                if undefined(&value) && *data && matches!(index, Value::Number(_)) {
                    field(base, &Value::from(index.to_string())).clone()
                } else {
                    value
                }
            }
            Code::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let value = self.eval(item, frame)?;
                    if undefined(&value) {
                        return Ok(Value::Undefined);
                    }
                    out.push(value);
                }
                Value::from(out)
            }
            Code::Set(items) => {
                let mut set = Value::new_set();
                for item in items {
                    let value = self.eval(item, frame)?;
                    if undefined(&value) {
                        return Ok(Value::Undefined);
                    }
                    set.as_set_mut().map_err(|_| Stop::Interpreter)?.insert(value);
                }
                set
            }
            Code::Object(fields) => {
                let mut object = Value::new_object();
                for (key, value) in fields {
                    let key = self.eval(key, frame)?;
                    let value = self.eval(value, frame)?;
                    if undefined(&key) || undefined(&value) {
                        return Ok(Value::Undefined);
                    }
                    object.as_object_mut().map_err(|_| Stop::Interpreter)?.insert(key, value);
                }
                object
            }
            Code::ArrayCompr { term, query } => {
                let mut out = Vec::new();
                self.run(query, frame, &mut |run, frame| {
                    let value = run.eval(term, frame)?;
                    if !undefined(&value) {
                        out.push(value);
                    }
                    Ok(Flow::More)
                })?;
                Value::from(out)
            }
            Code::SetCompr { term, query } => {
                let mut set = self.program.empty_set.clone();
                self.run(query, frame, &mut |run, frame| {
                    let value = run.eval(term, frame)?;
                    if !undefined(&value) {
                        set.as_set_mut().map_err(|_| Stop::Interpreter)?.insert(value);
                    }
                    Ok(Flow::More)
                })?;
                set
            }
            Code::ObjectCompr { key, value, query } => {
                let mut object = Value::new_object();
                self.run(query, frame, &mut |run, frame| {
                    let k = run.eval(key, frame)?;
                    let v = run.eval(value, frame)?;
                    if undefined(&k) || undefined(&v) {
                        return Ok(Flow::More);
                    }
                    let map = object.as_object_mut().map_err(|_| Stop::Interpreter)?;
                    match map.get(&k) {
                        Some(existing) if *existing != v => return Err(Stop::Interpreter),
                        _ => {
                            map.insert(k, v);
                        }
                    }
                    Ok(Flow::More)
                })?;
                object
            }
            Code::Builtin { name, op, fcn, call, params, args } => {
                let args = self.args(args, frame)?;
                if args.iter().any(undefined) {
                    return Ok(Value::Undefined);
                }
                let computed = match op {
                    Op::RegexMatch | Op::RegexReplace => self.regex(*op, &args)?,
                    Op::Lower => return self.lower(args, fcn, call, params),
                    Op::Cached | Op::Other => None,
                    _ => native(*op, &args),
                };
                if let Some(value) = computed {
                    return Ok(value);
                }
                let cache = *op == Op::Cached;
                if cache
                    && let Some((_, _, value)) = self.cached.iter().find(|(n, a, _)| n == name && *a == args)
                {
                    return Ok(value.clone());
                }
                let value = (fcn.0)(call.span(), params, &args, true).map_err(|_| Stop::Interpreter)?;
                if cache {
                    self.cached.push((name, args, value.clone()));
                }
                value
            }
            Code::Native { function, args } => {
                let args = self.args(args, frame)?;
                if args.iter().any(undefined) {
                    return Ok(Value::Undefined);
                }
                function(&args).map_err(|_| Stop::Interpreter)?
            }
            Code::Extension { index, args } => {
                let args = self.args(args, frame)?;
                if args.iter().any(undefined) {
                    return Ok(Value::Undefined);
                }
                let json: Vec<serde_json::Value> =
                    args.iter().map(to_json).collect::<Result<_, _>>().map_err(|_| Stop::Interpreter)?;
                let (_, function) = &self.program.extensions[*index];
                Value::from(function(&json).map_err(|_| Stop::Interpreter)?)
            }
            Code::Function { rule, args } => {
                let args = self.args(args, frame)?;
                self.function(*rule, &args)?
            }
            Code::Compare { op, lhs, rhs } => {
                let lhs = self.eval(lhs, frame)?;
                let rhs = self.eval(rhs, frame)?;
                if undefined(&lhs) || undefined(&rhs) {
                    return Ok(Value::Undefined);
                }
                regorus::unstable::comparison::compare(op, &lhs, &rhs).map_err(|_| Stop::Interpreter)?
            }
            Code::Arith { op, call, lhs, rhs } => {
                let l = self.eval(&lhs.0, frame)?;
                let r = self.eval(&rhs.0, frame)?;
                if undefined(&l) || undefined(&r) {
                    return Ok(Value::Undefined);
                }
                let result = match (op, &l, &r) {
                    // What `arithmetic_operation` computes for two numbers, without its per-call formatting of
                    // the operator's name (two allocations).
                    (ArithOp::Add, Value::Number(a), Value::Number(b)) => a.add(b).map(Value::from),
                    (ArithOp::Sub, Value::Number(a), Value::Number(b)) => a.sub(b).map(Value::from),
                    (ArithOp::Mul, Value::Number(a), Value::Number(b)) => a.mul(b).map(Value::from),
                    (ArithOp::Sub, Value::Set(_), _) | (ArithOp::Sub, _, Value::Set(_)) => {
                        regorus::unstable::sets::difference(&lhs.1, &rhs.1, l, r)
                    }
                    _ => regorus::unstable::numbers::arithmetic_operation(
                        call.span(),
                        op,
                        &lhs.1,
                        &rhs.1,
                        l,
                        r,
                        true,
                    ),
                };
                result.map_err(|_| Stop::Interpreter)?
            }
            Code::SetOp { op, lhs, rhs } => {
                let l = self.eval(&lhs.0, frame)?;
                let r = self.eval(&rhs.0, frame)?;
                if undefined(&l) || undefined(&r) {
                    return Ok(Value::Undefined);
                }
                let result = match op {
                    BinOp::Union => regorus::unstable::sets::union(&lhs.1, &rhs.1, l, r),
                    BinOp::Intersection => regorus::unstable::sets::intersection(&lhs.1, &rhs.1, l, r),
                };
                result.map_err(|_| Stop::Interpreter)?
            }
            Code::Member { key, value, collection } => {
                let value = self.eval(value, frame)?;
                let collection = self.eval(collection, frame)?;
                let found = match &collection {
                    Value::Array(array) => match key {
                        Some(key) => collection[&self.eval(key, frame)?] == value,
                        None => array.contains(&value),
                    },
                    Value::Object(object) => match key {
                        Some(key) => collection[&self.eval(key, frame)?] == value,
                        None => object.values().any(|item| *item == value),
                    },
                    Value::Set(set) => key.is_none() && set.contains(&value),
                    _ => false,
                };
                Value::Bool(found)
            }
        })
    }

    /// `regex.match(pattern, value)` and `regex.replace(s, pattern, value)` on string arguments, as regorus
    /// computes them (same size limit, `is_match`, `replace_all`), with the program's compiled patterns. None
    /// for any other call; anything unusual (a pattern that does not compile) goes to the interpreter.
    fn regex(&self, op: Op, args: &[Value]) -> Result<Option<Value>, Stop> {
        let (pattern, subject, replacement) = match (op, args) {
            (Op::RegexMatch, [Value::String(pattern), Value::String(value)]) => (pattern, value, None),
            (Op::RegexReplace, [Value::String(s), Value::String(pattern), Value::String(value)]) => {
                (pattern, s, Some(value))
            }
            _ => return Ok(None),
        };
        let apply = |re: &regex::Regex| match replacement {
            None => Value::Bool(re.is_match(subject)),
            Some(value) => Value::String(re.replace_all(subject, value.as_ref()).into()),
        };
        if let Some(re) = self.program.patterns.get(pattern) {
            return Ok(Some(apply(re)));
        }
        let cache = &self.program.regexes;
        if let Some(re) = cache.read().map_err(|_| Stop::Interpreter)?.get(pattern.as_ref()) {
            return Ok(Some(apply(re)));
        }
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|_| Stop::Interpreter)?;
        let value = apply(&re);
        let mut cache = cache.write().map_err(|_| Stop::Interpreter)?;
        if cache.len() < REGEX_CACHE {
            cache.insert(pattern.to_string(), re);
        }
        Ok(Some(value))
    }

    /// `lower(text)`, computed once per decision for the same string (the same allocation: a reference to
    /// the input or a rule's value, not merely equal text).
    fn lower(
        &mut self,
        args: Args,
        fcn: &BuiltinFcn,
        call: &ExprRef,
        params: &[ExprRef],
    ) -> Result<Value, Stop> {
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::String(a), Value::String(b)) => {
                std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
            }
            _ => false,
        };
        if let (Some((seen, lowered)), [arg]) = (&self.lowered, args.as_slice())
            && same(seen, arg)
        {
            return Ok(lowered.clone());
        }
        let value = match native(Op::Lower, &args) {
            Some(value) => value,
            None => (fcn.0)(call.span(), params, &args, true).map_err(|_| Stop::Interpreter)?,
        };
        if let [arg @ Value::String(_)] = args.as_slice() {
            self.lowered = Some((arg.clone(), value.clone()));
        }
        Ok(value)
    }

    /// The value of `code` without evaluating anything, when it is a reference that can be followed by
    /// borrowing: `input`, a variable, a constant or an already known rule, then constant indices. None
    /// otherwise (the caller evaluates). Indexing on a `data` reference with a number is left to the caller
    /// (it retries with the number as a string).
    fn borrowed<'a>(&'a self, code: &'a Code, frame: &'a [Value]) -> Option<&'a Value> {
        match code {
            Code::Input => Some(self.input),
            Code::Var(slot) => frame.get(usize::from(*slot)),
            Code::Const(value) => Some(value),
            Code::Rule(id) => match self.memo.get(*id)? {
                Memo::Known(value) => Some(value),
                _ => None,
            },
            Code::Index { base, index, data } => match &**index {
                Code::Const(key) if !(*data && matches!(key, Value::Number(_))) => {
                    Some(field(self.borrowed(base, frame)?, key))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn args(&mut self, args: &'p [Code], frame: &mut [Value]) -> Result<Args, Stop> {
        args.iter().map(|arg| self.eval(arg, frame)).collect()
    }
}

/// The builtins a decision calls most, computed here with the same values as regorus' implementations
/// (`builtins/{aggregates,strings,arrays,objects}.rs`), without their per-call argument checks and copies:
/// about 60–180 ns a call in regorus, most of it overhead. Only for the argument types each handles
/// completely; `None` sends anything else (other types, errors, non-ASCII text where regorus counts
/// characters) to regorus' builtin.
fn native(op: Op, args: &[Value]) -> Option<Value> {
    let string = |s: &str| Value::String(s.into());
    match (op, args) {
        (Op::Count, [Value::Array(a)]) => Some(Value::from(a.len())),
        (Op::Sort, [Value::Array(a)]) => {
            let mut sorted = a.to_vec();
            sorted.sort();
            Some(Value::from(sorted))
        }
        (Op::Count, [Value::Set(a)]) => Some(Value::from(a.len())),
        (Op::Count, [Value::Object(a)]) => Some(Value::from(a.len())),
        // regorus counts UTF-16 units; for ASCII that is the byte length.
        (Op::Count, [Value::String(s)]) if s.is_ascii() => Some(Value::from(s.len())),
        (Op::Max, [Value::Array(a)]) => Some(a.iter().max().cloned().unwrap_or(Value::Undefined)),
        (Op::Max, [Value::Set(a)]) => Some(a.iter().max().cloned().unwrap_or(Value::Undefined)),
        (Op::Concat, [Value::String(delimiter), Value::Array(items)]) => join(delimiter, items.iter()),
        (Op::Concat, [Value::String(delimiter), Value::Set(items)]) => join(delimiter, items.iter()),
        (Op::ArrayConcat, [Value::Array(a), Value::Array(b)]) => {
            Some(Value::from(a.iter().chain(b.iter()).cloned().collect::<Vec<_>>()))
        }
        (Op::ObjectGet, [object @ Value::Object(_), key, default]) => Some(match key {
            Value::Array(path) => {
                let mut value = object;
                for part in path.iter() {
                    value = field(value, part);
                    if undefined(value) {
                        value = default;
                        break;
                    }
                }
                value.clone()
            }
            key => member(object, key).unwrap_or(default).clone(),
        }),
        // For ASCII text the Unicode mappings are the ASCII ones, and the ASCII conversion is several times faster.
        (Op::Lower, [Value::String(s)]) if s.is_ascii() => Some(Value::String(s.to_ascii_lowercase().into())),
        (Op::Lower, [Value::String(s)]) => Some(Value::String(s.to_lowercase().into())),
        (Op::Upper, [Value::String(s)]) if s.is_ascii() => Some(Value::String(s.to_ascii_uppercase().into())),
        (Op::Upper, [Value::String(s)]) => Some(Value::String(s.to_uppercase().into())),
        // regorus splits on "" into characters (Go's behaviour); that case is left to it.
        (Op::Split, [Value::String(s), Value::String(delimiter)]) if !delimiter.is_empty() => {
            // One character (a space, most often) is searched for as a `char`: the same pieces, without the
            // two-way substring searcher's set-up and steps.
            let mut chars = delimiter.chars();
            let pieces: Vec<Value> = match (chars.next(), chars.next()) {
                (Some(c), None) => s.split(c).map(string).collect(),
                _ => s.split(delimiter.as_ref()).map(string).collect(),
            };
            Some(Value::from(pieces))
        }
        (Op::Trim, [Value::String(s), Value::String(cutset)]) => {
            Some(string(s.trim_matches(|c| cutset.contains(c))))
        }
        (Op::TrimLeft, [Value::String(s), Value::String(cutset)]) => {
            Some(string(s.trim_start_matches(|c| cutset.contains(c))))
        }
        (Op::TrimRight, [Value::String(s), Value::String(cutset)]) => {
            Some(string(s.trim_end_matches(|c| cutset.contains(c))))
        }
        (Op::Sprintf, [Value::String(format), Value::Array(items)]) => sprintf(format, items.iter()),
        (Op::TrimSpace, [Value::String(s)]) => Some(string(s.trim())),
        (Op::Contains, [Value::String(s), Value::String(part)]) => {
            Some(Value::Bool(s.contains(part.as_ref())))
        }
        (Op::StartsWith, [Value::String(s), Value::String(part)]) => {
            Some(Value::Bool(s.starts_with(part.as_ref())))
        }
        (Op::EndsWith, [Value::String(s), Value::String(part)]) => {
            Some(Value::Bool(s.ends_with(part.as_ref())))
        }
        (Op::Substring, [Value::String(s), Value::Number(offset), Value::Number(length)]) if s.is_ascii() => {
            let (offset, length) = match (offset.as_i64(), length.as_i64()) {
                (Some(offset), _) if offset < 0 => return None,
                (Some(offset), Some(length)) => (offset, length),
                _ => return Some(string("")),
            };
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(s.len());
            let end = match usize::try_from(length) {
                Ok(length) => start.saturating_add(length).min(s.len()),
                Err(_) => s.len(),
            };
            Some(string(&s[start..end]))
        }
        (Op::IndexOf, [Value::String(s), Value::String(needle)]) if s.is_ascii() => {
            let at = if s.is_empty() { None } else { s.find(needle.as_ref()) };
            Some(Value::from(at.and_then(|at| i64::try_from(at).ok()).unwrap_or(-1)))
        }
        _ => None,
    }
}

/// The builtins this module computes itself or treats specially, resolved from their names at compile time,
/// so that a call dispatches on a number instead of comparing its name with each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Count,
    Sort,
    Max,
    Concat,
    ArrayConcat,
    ObjectGet,
    Lower,
    Upper,
    Split,
    Trim,
    TrimLeft,
    TrimRight,
    Sprintf,
    TrimSpace,
    Contains,
    StartsWith,
    EndsWith,
    Substring,
    IndexOf,
    RegexMatch,
    RegexReplace,
    /// A builtin whose value must stay the same throughout a decision (`time.now_ns`: regorus' `must_cache`).
    Cached,
    /// Any other builtin: regorus computes it.
    Other,
}

impl Op {
    fn of(name: &str) -> Op {
        match name {
            "count" => Op::Count,
            "sort" => Op::Sort,
            "max" => Op::Max,
            "concat" => Op::Concat,
            "array.concat" => Op::ArrayConcat,
            "object.get" => Op::ObjectGet,
            "lower" => Op::Lower,
            "upper" => Op::Upper,
            "split" => Op::Split,
            "trim" => Op::Trim,
            "trim_left" => Op::TrimLeft,
            "trim_right" => Op::TrimRight,
            "sprintf" => Op::Sprintf,
            "trim_space" => Op::TrimSpace,
            "contains" => Op::Contains,
            "startswith" => Op::StartsWith,
            "endswith" => Op::EndsWith,
            "substring" => Op::Substring,
            "indexof" => Op::IndexOf,
            "regex.match" => Op::RegexMatch,
            "regex.replace" => Op::RegexReplace,
            name if must_cache(name).is_some() => Op::Cached,
            _ => Op::Other,
        }
    }
}

/// The objects [`field`] searches key by key rather than by regorus' binary search.
const SCAN_FIELDS: usize = 16;

/// `base[key]`, as regorus indexes (`Value`'s `Index`: undefined when absent or not indexable), with
/// string keys of small objects found by a scan that compares lengths and addresses before bytes. regorus'
/// binary search compares `Value`s (a `match` on both variants and a `memcmp` call per step), which was a
/// fifth of a decision: the input, its `context` and each detection are indexed by constant keys about fifty
/// times per decision. Object keys are unique, so the first equal key is the only one.
fn field<'v>(base: &'v Value, key: &Value) -> &'v Value {
    match base {
        Value::Object(_) => member(base, key).unwrap_or(&Value::Undefined),
        _ => &base[key],
    }
}

/// The value of `key` in `object` (None when absent or `object` is not an object); see [`field`].
fn member<'v>(object: &'v Value, key: &Value) -> Option<&'v Value> {
    let Value::Object(object) = object else { return None };
    let Value::String(wanted) = key else { return object.get(key) };
    if object.len() > SCAN_FIELDS {
        return object.get(key);
    }
    let wanted: &str = wanted;
    object.iter().find_map(|(k, value)| match k {
        Value::String(k)
            if k.len() == wanted.len() && (std::ptr::eq(k.as_ptr(), wanted.as_ptr()) || **k == *wanted) =>
        {
            Some(value)
        }
        _ => None,
    })
}

/// `sprintf` for formats of `%s` with strings, `%d` with non-negative integers and `%%`, as regorus formats
/// them (`builtins/strings.rs`). None for anything else (other verbs, widths, other argument types, a
/// missing or extra argument): regorus formats it or reports the error.
fn sprintf<'v>(format: &str, mut items: impl Iterator<Item = &'v Value>) -> Option<Value> {
    let mut out = String::with_capacity(format.len() + 32);
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        match rest.as_bytes().get(at + 1)? {
            b'%' => out.push('%'),
            b's' => out.push_str(items.next()?.as_string().ok()?),
            b'd' => match items.next()? {
                // regorus prints a negative integer's sign twice; only non-negative ones are done here.
                Value::Number(n) if n.is_integer() && n.as_u64().is_some() => {
                    out.push_str(&n.format_decimal())
                }
                _ => return None,
            },
            _ => return None,
        }
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    match items.next() {
        Some(_) => None,
        None => Some(Value::String(out.into())),
    }
}

/// The values of `items` when every one is a defined constant (a literal of them is a constant too).
fn constants(items: &[Code]) -> Option<Vec<Value>> {
    items
        .iter()
        .map(|item| match item {
            Code::Const(value) if !undefined(value) => Some(value.clone()),
            _ => None,
        })
        .collect()
}

/// Whether a value is undefined (a pattern match; `==` would call `Value`'s comparison).
#[inline]
fn undefined(value: &Value) -> bool {
    matches!(value, Value::Undefined)
}

/// `concat`: the strings joined, or None when an item is not a string (regorus' error).
fn join<'v>(delimiter: &str, items: impl Iterator<Item = &'v Value> + Clone) -> Option<Value> {
    // Sized first: growing the string as it is built costs a reallocation every few pieces.
    let size = items.clone().map(|item| item.as_string().map_or(0, |s| s.len() + delimiter.len())).sum();
    let mut out = String::with_capacity(size);
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(delimiter);
        }
        out.push_str(item.as_string().ok()?);
    }
    Some(Value::String(out.into()))
}

/// Record one solution's value of a complete rule or function: a second, different value is a conflict (the
/// interpreter reports it). With `uniform`, the first value ends the search.
fn agree(result: &mut Option<Value>, value: Value, uniform: bool) -> Result<Flow, Stop> {
    if undefined(&value) {
        return Ok(Flow::More);
    }
    match result {
        Some(existing) if *existing != value => Err(Stop::Interpreter),
        Some(_) => Ok(Flow::More),
        None => {
            *result = Some(value);
            Ok(if uniform { Flow::Done } else { Flow::More })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_patterns_are_found_by_their_text() {
        let mut patterns = Patterns::default();
        patterns.index.insert("a+b".to_owned(), 0);
        patterns.compiled.push(regex::Regex::new("a+b").expect("a pattern"));
        assert!(patterns.get("a+b").is_some_and(|re| re.is_match("xaab")));
        assert!(patterns.get("c").is_none(), "only the constant patterns");
    }

    const LOGS: &str = r#"package axonflow.policy
import rego.v1
allow := true
log_built := m if {
	input.go
	m := {"n": count(input.items), "kinds": {i[0] | some i in input.items}, "at": time.now_ns()}
}
log_copy := data.axonflow.policy.log_built
log_unsure := {"x": input.missing} if true
log_read := {"a": 1} if true
deny contains "read" if log_read.a == 2
log_iterates := {"v": v} if some v in input.items
log_default := {"a": 1} if input.b
default log_default := {"a": 0}
"#;

    #[test]
    fn lean_decisions_skip_only_values_they_may_skip() {
        let bundle = crate::Bundle::from_sources(vec![("main.rego".to_owned(), LOGS.to_owned())]);
        let compiled = crate::CompiledPolicy::compile(&bundle, &crate::CompileOptions::default())
            .unwrap_or_else(|e| panic!("compile: {e}"));
        let instance = compiled.instance().unwrap_or_else(|e| panic!("instance: {e}"));
        let plan = instance.plan.as_ref().unwrap_or_else(|| panic!("no plan"));
        let program = plan.program.as_ref().unwrap_or_else(|e| panic!("not compiled: {e}"));
        let lean: Vec<&str> = (0..plan.slots.len())
            .filter(|i| program.lean_output(*i))
            .map(|i| plan.slots[i].rule.as_str())
            .collect();
        // Read by a deny rule, able to have more than one solution, or with a default: evaluated in full.
        assert_eq!(lean, ["log_built", "log_copy", "log_unsure"]);
        let input = crate::input::json_value(&serde_json::json!({"go": true, "items": [["a"]]}));
        let values = |lean: bool| -> Vec<(String, Value)> {
            let values = program.evaluate(&input, Duration::from_secs(5), lean).expect("decided");
            plan.slots.iter().map(|slot| slot.rule.clone()).zip(values).collect()
        };
        let (full, lean) = (values(false), values(true));
        let of = |values: &[(String, Value)], name: &str| {
            values.iter().find(|(rule, _)| rule == name).map(|(_, v)| v.clone()).unwrap_or(Value::Undefined)
        };
        assert!(matches!(of(&full, "log_built"), Value::Object(_)));
        assert_eq!(of(&lean, "log_built"), Value::Bool(true), "built of safe parts: not built");
        assert_eq!(of(&lean, "log_copy"), Value::Bool(true));
        assert_eq!(of(&lean, "log_unsure"), Value::Undefined, "evaluated: its field is undefined");
        assert_eq!(of(&full, "log_unsure"), Value::Undefined);
        for name in ["log_read", "log_iterates", "log_default"] {
            assert_eq!(of(&lean, name), of(&full, name), "{name}");
        }
    }
}
