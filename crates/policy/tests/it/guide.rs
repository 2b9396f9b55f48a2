//! The guide's examples, verbatim (tests/guide/), load and behave as written, including where "as written" is
//! an error, and the shipped bundle carries the guide's test suite unchanged.

use std::time::Duration;

use policy::{CompileOptions, CompiledPolicy, TestOptions, TestStatus, run_tests};
use serde_json::json;

use crate::support::{repo_policies, sources};

const GUIDE_PII: &str = include_str!("../guide/pii.rego");
const GUIDE_HIPAA: &str = include_str!("../guide/hipaa.rego");
const GUIDE_TESTS: &str = include_str!("../guide/policy_test.rego");

const HIPAA_HELPERS: &str = r#"package axonflow.policy.hipaa
import rego.v1
is_patient_assigned_to_user(query, user_id) if contains(query, sprintf("patient %s", [data.assigned[user_id]]))
extract_patient_id(query) := "P-1"
"#;

fn outcome(files: &[(&str, &str)], entry: &str, input: serde_json::Value) -> String {
    let options = CompileOptions { entry_package: entry.to_owned(), ..CompileOptions::default() };
    let options = CompileOptions { data: json!({"assigned": {"d1": "P-1"}}), ..options };
    match CompiledPolicy::compile(&sources(files), &options) {
        Err(error) => format!("compile error: {error}"),
        Ok(compiled) => format!("{:?}", compiled.evaluate_json(&input, Duration::from_millis(100)).outcome),
    }
}

#[test]
fn hipaa_example_loads_without_its_future_keywords_import() {
    let files = [("hipaa.rego", GUIDE_HIPAA), ("helpers.rego", HIPAA_HELPERS)];
    let check = |role: &str, query: &str, expect: &str| {
        let input = json!({"query": query, "context": {"user_role": role, "user_id": "d1"}});
        assert_eq!(outcome(&files, "axonflow.policy.hipaa", input), expect, "{role}: {query}");
    };
    check("doctor", "labs for patient P-1", "Allow");
    check("doctor", "labs for patient P-2", "Deny { reasons: [\"not allowed by policy\"] }");
    check(
        "doctor",
        "list all patients of patient P-1",
        "Deny { reasons: [\"HIPAA violation: minimum necessary rule\"] }",
    );
}

#[test]
fn pii_example_fails_closed_as_written() {
    // The guide's `redacted_query` assigns `query` four times in one body: OPA rejects it ("var query assigned
    // above") and so does regorus: the bundle does not compile, so it can never be loaded to decide anything.
    let helpers = "package axonflow.policy\npii_violations := set()\n";
    let input = json!({"query": "SSN 123-45-6789", "context": {"user_id": "u"}});
    let got = outcome(&[("pii.rego", GUIDE_PII), ("helpers.rego", helpers)], "axonflow.policy", input);
    assert!(
        got.starts_with("compile error: pii.rego:23:5: var `query` used before definition below"),
        "{got}"
    );
}

#[test]
fn pii_example_with_the_assignment_fixed_behaves_as_the_guide_says() {
    let fixed = GUIDE_PII
        .replace(
            "query := regex.replace(input.query, ssn_pattern",
            "q1 := regex.replace(input.query, ssn_pattern",
        )
        .replace(
            "query := regex.replace(query, credit_card_pattern",
            "q2 := regex.replace(q1, credit_card_pattern",
        )
        .replace("query := regex.replace(query, email_pattern", "q3 := regex.replace(q2, email_pattern")
        .replace("query := regex.replace(query, phone_pattern", "query := regex.replace(q3, phone_pattern");
    let helpers = "package axonflow.policy\npii_violations := set()\n";
    let files = [("pii.rego", fixed.as_str()), ("helpers.rego", helpers)];
    let check = |query: &str, expect: &str| {
        let input = json!({"query": query, "context": {"user_id": "u"}});
        assert_eq!(outcome(&files, "axonflow.policy", input), expect, "{query}");
    };
    check("hello", "Allow");
    check("SSN 123-45-6789 mail a@b.io", "Redact { text: \"SSN ***-**-**** mail ***@***.***\" }");
    check(
        "call 555-123-4567, card 4111 1111 1111 1111",
        "Redact { text: \"call ***-***-****, card ****-****-****-****\" }",
    );

    // The conflict: with the guide's test suite in the same package, `test_deny_regular_user` fails, because
    // the PII example allows every query without PII. The shipped bundle separates the two (see main.rego).
    let mut files = files.to_vec();
    files.push(("policy_test.rego", GUIDE_TESTS));
    let report = run_tests(&sources(&files), &CompileOptions::default(), &TestOptions::default());
    let statuses: Vec<(String, bool)> =
        report.tests.iter().map(|t| (t.name.clone(), t.status == TestStatus::Pass)).collect();
    assert_eq!(
        statuses,
        vec![
            ("data.axonflow.policy.test_allow_admin".to_owned(), true),
            ("data.axonflow.policy.test_deny_regular_user".to_owned(), false),
            ("data.axonflow.policy.test_pii_redaction".to_owned(), true),
        ]
    );
}

#[test]
fn shipped_bundle_carries_the_guide_test_suite_verbatim() {
    let shipped = std::fs::read_to_string(repo_policies().join("tests/main_test.rego")).unwrap_or_default();
    let body = GUIDE_TESTS.split_once('\n').map(|(_, rest)| rest).unwrap_or_default();
    assert!(
        shipped.contains(body.trim_end()),
        "policies/tests/main_test.rego must contain the guide's suite"
    );
}
