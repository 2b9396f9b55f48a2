//! Validation on load and on upload: syntax, size, compile time, and passing tests
//! ("never deploy untested policies").

use std::time::Duration;

use regorus::Engine;

use crate::bundle::Bundle;
use crate::compile::{CompileOptions, CompiledPolicy, PolicyError, add_file};
use crate::testing::{TestOptions, TestStatus, run_tests};

/// The guide's limits (section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of policy, tests not counted.
    pub max_bytes: usize,
    pub max_compile_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 100 * 1024, max_compile_time: Duration::from_millis(100) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    Empty,
    Parse,
    Compile,
    MissingPackage,
    TooLarge,
    CompileTooSlow,
    NoTests,
    TestFailed,
}

/// One reason a bundle cannot be deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The file concerned, when there is one.
    pub path: Option<String>,
    pub message: String,
}

/// What `axonflow policy check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub files: usize,
    pub bytes: usize,
    /// Set when the bundle compiled.
    pub compile_time: Option<Duration>,
    /// Set when the bundle compiled: `Ok` when decisions run on the compiled evaluator, else why they run on
    /// the interpreter (see [`CompiledPolicy::evaluator`]).
    pub evaluator: Option<Result<(), String>>,
    pub problems: Vec<Problem>,
}

/// Syntax of every file (each problem reported, not only the first), size, compilation and its time.
pub fn check(bundle: &Bundle, options: &CompileOptions, limits: &Limits) -> CheckReport {
    let mut report = CheckReport {
        files: bundle.files().len(),
        bytes: bundle.policy_bytes(),
        compile_time: None,
        evaluator: None,
        problems: Vec::new(),
    };
    let problem =
        |kind, path: Option<&str>, message: String| Problem { kind, path: path.map(str::to_owned), message };
    if report.bytes > limits.max_bytes {
        report.problems.push(problem(
            ProblemKind::TooLarge,
            None,
            format!("policy is {} bytes, more than the limit of {} bytes", report.bytes, limits.max_bytes),
        ));
    }
    for file in bundle.files() {
        if let Err(error) = add_file(&mut Engine::new(), file) {
            report.problems.push(problem(ProblemKind::Parse, Some(&file.path), error.to_string()));
        }
    }
    if report.problems.iter().any(|p| p.kind == ProblemKind::Parse) {
        return report;
    }
    match CompiledPolicy::compile(bundle, options) {
        Ok(compiled) => {
            let took = compiled.stats().duration;
            report.compile_time = Some(took);
            report.evaluator = Some(compiled.evaluator());
            if took > limits.max_compile_time {
                report.problems.push(problem(
                    ProblemKind::CompileTooSlow,
                    None,
                    format!("compiling took {took:?}, more than the limit of {:?}", limits.max_compile_time),
                ));
            }
        }
        Err(error) => {
            let kind = match &error {
                PolicyError::Empty => ProblemKind::Empty,
                PolicyError::MissingPackage { .. } => ProblemKind::MissingPackage,
                PolicyError::Parse { .. } => ProblemKind::Parse,
                _ => ProblemKind::Compile,
            };
            report.problems.push(problem(kind, None, error.to_string()));
        }
    }
    report
}

/// Everything that stops a bundle from being loaded or deployed: [`check`]'s problems, then missing or
/// failing tests. Empty means valid.
pub fn validate(bundle: &Bundle, options: &CompileOptions, limits: &Limits) -> Vec<Problem> {
    let mut problems = check(bundle, options, limits).problems;
    if problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::Parse | ProblemKind::Compile | ProblemKind::Empty))
    {
        return problems;
    }
    let report = run_tests(bundle, options, &TestOptions::default());
    if let Some(error) = report.error {
        let kind = if report.tests.is_empty() && error.starts_with("no tests") {
            ProblemKind::NoTests
        } else {
            ProblemKind::Compile
        };
        problems.push(Problem { kind, path: None, message: error });
    }
    for test in report.tests {
        let message = match test.status {
            TestStatus::Pass => continue,
            TestStatus::Fail => format!("{} failed", test.name),
            TestStatus::Error(error) => format!("{} raised an error: {error}", test.name),
        };
        problems.push(Problem { kind: ProblemKind::TestFailed, path: Some(test.path), message });
    }
    problems
}
