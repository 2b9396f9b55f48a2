//! Fail closed: every way a policy can break denies with a reason, never allows.

use std::time::Duration;

use policy::{CompileOptions, CompiledPolicy, Extension, Outcome, PolicyError};
use serde_json::json;

use crate::support::sources;

const BUDGET: Duration = Duration::from_millis(50);

/// Compile `policy` as package `axonflow.policy`, evaluate `input`, and compare the outcome's first reason with
/// `expect` (a prefix), or the compile error's text.
fn check(policy: &str, input: serde_json::Value, budget: Duration, expect: &str) {
    let bundle = sources(&[("main.rego", policy)]);
    let options = CompileOptions {
        extensions: vec![Extension::new("axonflow.fail", 1, |_| Err("detector unavailable".to_owned()))],
        ..CompileOptions::default()
    };
    let got = match CompiledPolicy::compile(&bundle, &options) {
        Err(error) => format!("compile: {error}"),
        Ok(compiled) => match compiled.evaluate_json(&input, budget).outcome {
            Outcome::Deny { reasons } => format!("deny: {}", reasons.join("; ")),
            other => format!("NOT DENIED: {other:?}"),
        },
    };
    assert!(got.starts_with(expect), "policy:\n{policy}\nexpected prefix: {expect}\ngot: {got}");
}

#[test]
fn failures_deny() {
    let input = json!({"query": "hello", "context": {}});
    check("package axonflow.policy\nallow {", input.clone(), BUDGET, "compile: main.rego:3:7: expecting }");
    check(
        "package other\nallow := true",
        input.clone(),
        BUDGET,
        "compile: package axonflow.policy is not defined",
    );
    check("package axonflow.policy\nx := 1", input.clone(), BUDGET, "deny: not allowed by policy");
    check(
        "package axonflow.policy\nallow := 1 / 0 == 1",
        input.clone(),
        BUDGET,
        "deny: policy evaluation failed: main.rego:2:",
    );
    check(
        "package axonflow.policy\nimport rego.v1\nallow := true if input.query\nallow := false if input.context",
        input.clone(),
        BUDGET,
        "deny: policy evaluation failed:",
    );
    check(
        "package axonflow.policy\nimport rego.v1\nallow if axonflow.fail(input.query)",
        input.clone(),
        BUDGET,
        "deny: policy evaluation failed: main.rego:3:",
    );
    check(
        "package axonflow.policy\nimport rego.v1\nallow if count([x | some x in numbers.range(1, 2000000); x % 7 == 0]) > 0",
        input.clone(),
        Duration::from_millis(5),
        "deny: policy evaluation exceeded its time budget of 5ms",
    );
    check(
        "package axonflow.policy\nimport rego.v1\nallow := \"yes\"",
        input.clone(),
        BUDGET,
        "deny: not allowed by policy",
    );
    check(
        "package axonflow.policy\nimport rego.v1\nallow := true\ndeny contains \"no\" if true",
        input.clone(),
        BUDGET,
        "deny: no",
    );
    check(
        "package axonflow.policy\nimport rego.v1\nallow := true\ndeny := true",
        input,
        BUDGET,
        "deny: denied by policy",
    );
}

#[test]
fn an_empty_bundle_and_a_test_only_bundle_do_not_compile() {
    let options = CompileOptions::default();
    assert_eq!(CompiledPolicy::compile(&sources(&[]), &options).err(), Some(PolicyError::Empty));
    let tests_only = sources(&[("tests/a_test.rego", "package axonflow.policy\ntest_a { true }")]);
    assert_eq!(CompiledPolicy::compile(&tests_only, &options).err(), Some(PolicyError::Empty));
}

#[test]
fn a_thread_reuses_its_engine_after_failures() {
    // Each thread keeps one engine across evaluations: an error, a timeout or a previous input must not leak
    // into the next decision.
    let policy = "package axonflow.policy\nimport rego.v1\nallow if {\n\tnot input.flag\n\t10 / input.d == 5\n\tcount([x | some x in numbers.range(1, input.n); x % 7 == 0]) >= 0\n}\n";
    let compiled = CompiledPolicy::compile(&sources(&[("main.rego", policy)]), &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let eval =
        |input: serde_json::Value| match compiled.evaluate_json(&input, Duration::from_millis(5)).outcome {
            Outcome::Deny { reasons } => reasons.join("; "),
            other => format!("{other:?}"),
        };
    let ok = json!({"d": 2, "n": 10});
    assert_eq!(eval(ok.clone()), "Allow");
    assert!(eval(json!({"d": 0, "n": 10})).starts_with("policy evaluation failed: main.rego:5:"));
    assert_eq!(eval(ok.clone()), "Allow");
    assert!(eval(json!({"d": 2, "n": 5000000})).starts_with("policy evaluation exceeded its time budget"));
    assert_eq!(eval(ok.clone()), "Allow");
    assert_eq!(eval(json!({"d": 2, "n": 10, "flag": true})), "not allowed by policy");
    assert_eq!(eval(ok), "Allow");
}
