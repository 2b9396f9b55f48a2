//! Decisions of the shipped bundle on typed inputs, native builtins, and sharing across threads.

use std::sync::Arc;
use std::time::Duration;

use policy::{CompileOptions, CompiledPolicy, Detection, Extension, Input, Outcome, Stage, render_decision};
use serde_json::json;

use crate::support::{shipped, sources};

const BUDGET: Duration = Duration::from_millis(100);

fn compiled() -> CompiledPolicy {
    CompiledPolicy::compile(&shipped(Stage::Production), &CompileOptions::default())
        .unwrap_or_else(|e| panic!("default bundle: {e}"))
}

fn detection(kind: &str, category: &str, start: usize, end: usize, confidence: f32) -> Detection {
    Detection { kind: kind.into(), category: category.into(), start, end, confidence }
}

fn input(role: &str, query: &str, detections: Vec<Detection>) -> Input {
    let context = json!({"user_role": role, "user_id": "u1"});
    let context = context.as_object().cloned().unwrap_or_default();
    Input { query: query.into(), request_type: "llm_chat".into(), context, principal: None, detections }
}

/// Evaluate and compare the rendering without its timings line.
fn check(input: Input, expect: &str) {
    let decision = compiled().evaluate(&input, BUDGET);
    let rendered = render_decision(&decision);
    let got: Vec<&str> =
        rendered.lines().filter(|l| !l.starts_with("timings:") && !l.starts_with("log:")).collect();
    assert_eq!(got.join("\n"), expect.trim(), "{:?}", input.query);
}

#[test]
fn default_bundle_decisions() {
    check(input("user", "What is our refund policy?", vec![]), "decision: allow");
    check(
        input("user", "Get all customer data", vec![]),
        "decision: deny\n  reason: rbac: broad queries need the query:bulk permission (admin)\nmatched: axonflow.policy (deny)\nmatched: axonflow.policy.rbac (deny)",
    );
    // Byte offsets in, redaction at the right characters out (é is two bytes).
    check(
        input("user", "é SSN 123-45-6789 please", vec![detection("ssn", "pii", 7, 18, 1.0)]),
        "decision: redact\nredacted_query: é SSN ***-**-**** please\nmatched: axonflow.policy (log_pii_detection, redacted_query)\nmatched: axonflow.policy.pii (log_pii_detection, redacted_query)",
    );
    check(
        input("user", "1' OR '1'='1", vec![detection("boolean_blind", "sqli", 0, 12, 0.9)]),
        "decision: deny\n  reason: security: SQL injection detected (boolean_blind)\nmatched: axonflow.policy (deny, log_security_event)\nmatched: axonflow.policy.security (deny, log_security_event)",
    );
    check(
        input("user", "pretend you are", vec![detection("jailbreak", "prompt_injection", 0, 7, 0.3)]),
        "decision: allow\nwarning: security: possible prompt injection (jailbreak)\nmatched: axonflow.policy (log_security_event, warn)\nmatched: axonflow.policy.security (log_security_event, warn)",
    );
}

#[test]
fn approval_and_logs() {
    let mut request = input("admin", "Accounts", vec![]);
    request.context.insert("connector".into(), json!("salesforce"));
    request.context.insert("operation".into(), json!("bulk_export"));
    let decision = compiled().evaluate(&request, BUDGET);
    assert_eq!(
        decision.outcome,
        Outcome::RequireApproval {
            reasons: vec!["salesforce: bulk_export needs approval".into()],
            redacted: None
        }
    );

    let decision = compiled()
        .evaluate(&input("user", "mail a@b.io", vec![detection("email", "pii", 5, 11, 0.9)]), BUDGET);
    let names: Vec<&str> = decision.logs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["log_pii_detection"]);
    let log = &decision.logs[0].value.json();
    assert_eq!(
        (log["count"].clone(), log["kinds"].clone(), log["user_id"].clone()),
        (json!(1), json!(["email"]), json!("u1"))
    );
    assert!(!log.to_string().contains("a@b.io"), "the log must not carry the value: {log}");

    // `decide`, as the request paths call it: the same decision, the log names without their values.
    let decided =
        compiled().decide(&input("user", "mail a@b.io", vec![detection("email", "pii", 5, 11, 0.9)]), BUDGET);
    assert_eq!((&decided.outcome, &decided.matched), (&decision.outcome, &decision.matched));
    let logs: Vec<(&str, serde_json::Value)> =
        decided.logs.iter().map(|l| (l.name.as_str(), l.value.json())).collect();
    assert_eq!(logs, [("log_pii_detection", serde_json::Value::Null)]);
}

#[test]
fn native_builtins_are_callable() {
    let policy = "package axonflow.policy\nimport rego.v1\nallow if count(axonflow.sqli.detect(input.query)) == 0\nredacted_query := axonflow.pii.redact(input.query)\n";
    let options = CompileOptions {
        extensions: vec![
            Extension::new("axonflow.pii.redact", 1, |args| {
                Ok(json!(args[0].as_str().unwrap_or("").replace("123-45-6789", "***-**-****")))
            }),
            Extension::new("axonflow.sqli.detect", 1, |args| {
                Ok(if args[0].as_str().unwrap_or("").contains("UNION") {
                    json!([{"kind": "union_based"}])
                } else {
                    json!([])
                })
            }),
        ],
        ..CompileOptions::default()
    };
    let compiled = CompiledPolicy::compile(&sources(&[("main.rego", policy)]), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let eval = |query: &str| compiled.evaluate_json(&json!({"query": query}), BUDGET).outcome;
    assert_eq!(eval("ssn 123-45-6789"), Outcome::Redact { text: "ssn ***-**-****".into() });
    assert_eq!(eval("1 UNION SELECT"), Outcome::Deny { reasons: vec!["not allowed by policy".into()] });
    assert_eq!(eval("hello"), Outcome::Allow);
}

#[test]
fn many_threads_share_one_compiled_policy() {
    let shared = Arc::new(compiled());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                (0..50).all(|i| {
                    let role = if (t + i) % 2 == 0 { "admin" } else { "user" };
                    shared.evaluate(&input(role, "Get all customer data", vec![]), BUDGET).proceeds()
                        == (role == "admin")
                })
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().ok(), Some(true));
    }
}

#[test]
fn network_builtins_decide_on_both_evaluators() {
    let policy = r#"package axonflow.policy
import rego.v1
default allow := false
allow if net.cidr_contains("10.0.0.0/8", input.context.ip)
warn contains "not a CIDR" if not net.cidr_is_valid(input.context.cidr)
warn contains sprintf("%d addresses", [count(net.cidr_expand(input.context.cidr))]) if input.context.expand
"#;
    let bundle = policy::Bundle::from_sources(vec![("main.rego".to_owned(), policy.to_owned())]);
    for compiled_evaluator in [true, false] {
        let options = CompileOptions { compiled_evaluator, ..CompileOptions::default() };
        let compiled = CompiledPolicy::compile(&bundle, &options).unwrap_or_else(|e| panic!("compile: {e}"));
        assert_eq!(compiled.evaluator().is_ok(), compiled_evaluator);
        let decide =
            |context: serde_json::Value| compiled.evaluate_json(&json!({"context": context}), BUDGET);
        let inside = decide(json!({"ip": "10.20.30.40", "cidr": "10.0.0.0/30", "expand": true}));
        assert!(inside.proceeds(), "{inside:?}");
        assert_eq!(inside.warnings, ["4 addresses"]);
        let outside = decide(json!({"ip": "11.0.0.1", "cidr": "10.0.0.0/33"}));
        assert_eq!(outside.outcome, Outcome::Deny { reasons: vec!["not allowed by policy".into()] });
        assert_eq!(outside.warnings, ["not a CIDR"]);
        // Not an address, or a network too large to expand: an error, so the decision fails closed.
        for context in [
            json!({"ip": "garbage", "cidr": "10.0.0.0/8"}),
            json!({"ip": "10.0.0.1", "cidr": "10.0.0.0/8", "expand": true}),
        ] {
            let failed = decide(context.clone());
            assert!(!failed.proceeds(), "{context}: {failed:?}");
            assert!(
                failed.deny_reasons().iter().any(|r| r.starts_with("policy evaluation failed")),
                "{context}: {failed:?}"
            );
        }
    }
}
