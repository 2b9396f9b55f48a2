//! The test runner: every `test_*` rule of the bundle's test files, like `opa test`, with line coverage.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::{Duration, Instant};

use regorus::Value;

use crate::bundle::{Bundle, FileKind, PolicyFile};
use crate::compile::{CompileOptions, prepare_files, tidy};

/// What to run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TestOptions {
    /// Gather line coverage of the policy files.
    pub coverage: bool,
    /// Fail the run when total coverage is below this percentage (implies `coverage`).
    pub fail_under: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestStatus {
    Pass,
    /// The rule is false or undefined.
    Fail,
    /// Evaluating the rule raised an error.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// `data.<package>.<rule>`.
    pub name: String,
    /// The test file it was found in.
    pub path: String,
    pub status: TestStatus,
    pub duration: Duration,
}

/// Line coverage of one policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCoverage {
    pub path: String,
    pub covered: usize,
    /// Lines with an expression that no test evaluated.
    pub not_covered: Vec<u32>,
}

impl FileCoverage {
    pub fn percent(&self) -> f64 {
        let total = self.covered + self.not_covered.len();
        if total == 0 { 100.0 } else { self.covered as f64 * 100.0 / total as f64 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CoverageReport {
    /// Policy files only (tests are not measured), ordered by path.
    pub files: Vec<FileCoverage>,
}

impl CoverageReport {
    pub fn percent(&self) -> f64 {
        let covered: usize = self.files.iter().map(|f| f.covered).sum();
        let total: usize = self.files.iter().map(|f| f.covered + f.not_covered.len()).sum();
        if total == 0 { 100.0 } else { covered as f64 * 100.0 / total as f64 }
    }

    pub fn file(&self, path: &str) -> Option<&FileCoverage> {
        self.files.iter().find(|f| f.path == path)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestReport {
    pub tests: Vec<TestCase>,
    /// Set when coverage was asked for and the bundle compiled.
    pub coverage: Option<CoverageReport>,
    /// Why nothing could run (the bundle does not compile, or has no tests).
    pub error: Option<String>,
    pub fail_under: Option<f64>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.status == TestStatus::Pass).count()
    }

    pub fn failed(&self) -> usize {
        self.tests.len() - self.passed()
    }

    /// True when coverage is below `fail_under`.
    pub fn below_fail_under(&self) -> bool {
        match (self.fail_under, &self.coverage) {
            (Some(bar), Some(coverage)) => coverage.percent() < bar,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Tests ran, all passed, and coverage meets `fail_under`: the CLI exits 0 exactly when this holds.
    pub fn success(&self) -> bool {
        self.error.is_none() && !self.tests.is_empty() && self.failed() == 0 && !self.below_fail_under()
    }

    /// The `axonflow policy test` output: one line per test, coverage per file, a closing
    /// `N passed, N failed` line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(error) = &self.error {
            let _ = writeln!(out, "error: {error}");
        }
        for test in &self.tests {
            let _ = match &test.status {
                TestStatus::Pass => writeln!(out, "{}: PASS ({:?})", test.name, test.duration),
                TestStatus::Fail => {
                    writeln!(out, "{}: FAIL ({:?}) in {}", test.name, test.duration, test.path)
                }
                TestStatus::Error(e) => {
                    writeln!(out, "{}: ERROR ({:?}) in {}: {e}", test.name, test.duration, test.path)
                }
            };
        }
        if let Some(coverage) = &self.coverage {
            for file in &coverage.files {
                let _ = write!(out, "coverage: {} {:.2}%", file.path, file.percent());
                if !file.not_covered.is_empty() {
                    let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
                    let _ = write!(out, " (not covered: lines {})", lines.join(", "));
                }
                out.push('\n');
            }
            let _ = writeln!(out, "coverage: total {:.2}%", coverage.percent());
        }
        if let (Some(bar), true) = (self.fail_under, self.below_fail_under()) {
            let _ = writeln!(out, "coverage is below --fail-under {bar}");
        }
        let _ = writeln!(out, "{} passed, {} failed", self.passed(), self.failed());
        out
    }
}

/// Run every `test_*` rule in the bundle's test files against the whole bundle (policies and tests).
pub fn run_tests(bundle: &Bundle, options: &CompileOptions, test_options: &TestOptions) -> TestReport {
    let fail_under = test_options.fail_under;
    let mut report = TestReport { tests: Vec::new(), coverage: None, error: None, fail_under };
    let files: Vec<&PolicyFile> = bundle.files().iter().collect();
    let discovered: Vec<(String, &PolicyFile)> = bundle
        .test_files()
        .flat_map(|file| test_rules(&file.text).into_iter().map(move |rule| (rule, file)))
        .collect();
    if discovered.is_empty() {
        report.error =
            Some("no tests: a bundle must ship `test_*` rules in tests/ or *_test.rego files".to_owned());
        return report;
    }
    let mut engine = match prepare_files(&files, options) {
        Ok(prepared) => prepared.engine,
        Err(error) => {
            report.error = Some(error.to_string());
            return report;
        }
    };
    let coverage = test_options.coverage || fail_under.is_some();
    engine.set_enable_coverage(coverage);
    for (name, file) in discovered {
        let started = Instant::now();
        let status = match engine.eval_rule(name.clone()) {
            Ok(Value::Bool(true)) => TestStatus::Pass,
            Ok(_) => TestStatus::Fail,
            Err(error) => TestStatus::Error(tidy(&error.to_string())),
        };
        report.tests.push(TestCase { name, path: file.path.clone(), status, duration: started.elapsed() });
    }
    if coverage {
        report.coverage = Some(coverage_report(&engine, bundle));
    }
    report
}

fn coverage_report(engine: &regorus::Engine, bundle: &Bundle) -> CoverageReport {
    let mut files: Vec<FileCoverage> = match engine.get_coverage_report() {
        Ok(report) => report
            .files
            .into_iter()
            .filter(|f| bundle.files().iter().any(|b| b.path == f.path && b.kind() == FileKind::Policy))
            .map(|f| FileCoverage {
                path: f.path,
                covered: f.covered.len(),
                not_covered: f.not_covered.into_iter().collect(),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    // A policy file no test reached at all is still reported, fully uncovered.
    for file in bundle.policy_files() {
        if !files.iter().any(|f| f.path == file.path) {
            files.push(FileCoverage { path: file.path.clone(), covered: 0, not_covered: Vec::new() });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    CoverageReport { files }
}

/// `data.<package>.<rule>` for every rule head named `test_*` in a file, in order, each once.
fn test_rules(text: &str) -> Vec<String> {
    let mut package = None;
    let mut seen = BTreeSet::new();
    let mut rules = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("package ") {
            package = rest.split([';', '#']).next().map(|p| p.trim().to_owned());
            continue;
        }
        let Some(package) = &package else { continue };
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let rest = line[name.len()..].trim_start();
        let is_head = rest.starts_with('{')
            || rest.starts_with("if")
            || rest.starts_with(":=")
            || rest.starts_with('=')
            || rest.is_empty();
        if is_head && seen.insert(name.clone()) {
            rules.push(format!("data.{package}.{name}"));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[&str]) {
        assert_eq!(test_rules(text), expect, "{text}");
    }

    #[test]
    fn discovery() {
        check("package a\ntest_x { true }\n", &["data.a.test_x"]);
        check(
            "package a.b\nimport rego.v1\ntest_x if true\n  test_y := true\ntest_x if false\n",
            &["data.a.b.test_x", "data.a.b.test_y"],
        );
        check("test_x { true }\npackage a # c\n", &[]);
        check("package a\nnot_test_x { true }\ntest_helper(x) := x\n", &[]);
        check("package a\n# test_commented { true }\n", &[]);
    }
}
