use crate::support::binary;

#[test]
fn the_built_in_bundle_passes_its_tests_with_full_coverage() {
    let output =
        binary().args(["policy", "test", "--coverage", "--fail-under", "100"]).output().expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    assert!(text.contains("coverage: production/main.rego 100.00%"), "{text}");
    assert!(text.contains("data.axonflow.policy.test_deny_regular_user: PASS"), "{text}");
}

#[test]
fn a_failing_or_broken_bundle_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.rego"),
        "package axonflow.policy\nimport rego.v1\ndefault allow := false\nallow if input.ok\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("p_test.rego"),
        "package axonflow.policy\nimport rego.v1\ntest_ok if allow with input as {\"ok\": true}\ntest_wrong if allow with input as {\"ok\": false}\n",
    )
    .expect("write");
    let output = binary().args(["policy", "test"]).arg(dir.path()).output().expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.trim_end().ends_with("1 passed, 1 failed"), "{text}");

    std::fs::write(dir.path().join("p.rego"), "package axonflow.policy\nallow if {\n").expect("write");
    let output = binary().args(["policy", "check", "--json"]).arg(dir.path()).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["ok"], false);
    assert!(json["problems"][0]["path"].as_str().unwrap_or_default().ends_with("p.rego"), "{json}");
}

#[test]
fn eval_prints_the_decision_for_an_input_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.json");
    std::fs::write(&input, r#"{"query": "Get data for SSN 123-45-6789", "context": {"user_role": "admin"}}"#)
        .expect("write");
    let output = binary().args(["policy", "eval", "--detect", "--input"]).arg(&input).output().expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("***-**-****"), "{text}");
    assert!(!text.contains("123-45-6789"), "{text}");
}

#[test]
fn check_says_which_evaluator_decides() {
    let output = binary().args(["policy", "check"]).output().expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("decisions: compiled evaluator"), "{text}");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.rego"),
        "package axonflow.policy\nimport rego.v1\nallow if every x in input.items { x > 0 }\n",
    )
    .expect("write");
    let output = binary().args(["policy", "check", "--json"]).arg(dir.path()).output().expect("run");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        (json["ok"].clone(), json["evaluator"].clone()),
        (true.into(), "interpreter".into()),
        "{json}"
    );
    assert_eq!(json["interpreter_reason"], "every", "{json}");
}

#[test]
fn check_refuses_a_bundle_that_compiles_slower_than_max_compile_ms() {
    let check = |limit: &str| {
        let output =
            binary().args(["policy", "check", "--json", "--max-compile-ms", limit]).output().expect("run");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        (output.status.code(), json)
    };
    // The built-in bundle takes well over a millisecond to compile (it has dozens of rules and tests).
    let (code, json) = check("1");
    assert_eq!(code, Some(1), "{json}");
    assert!(json["compile_ms"].as_f64().expect("compile_ms") > 1.0, "{json}");
    assert!(json["problems"][0]["message"].as_str().unwrap_or_default().ends_with("limit of 1ms"), "{json}");
    let (code, json) = check("60000");
    assert_eq!((code, json["ok"].clone()), (Some(0), true.into()), "{json}");
    let (code, _) = check("0");
    assert_eq!(code, Some(2), "a limit of 0 ms is a usage error");
}
